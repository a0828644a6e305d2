"""The classic "Rabbits and Warrens" walk-through, driven by python3-amqp."""

import socket
import time
import unittest

import amqp

from harness import BrokerTestCase, unique


class RabbitsAndWarrensTest(BrokerTestCase):

    def drain_until(self, conn, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                conn.drain_events(timeout=min(0.2, left))
            except socket.timeout:
                pass
        return predicate()

    def test_rabbits_and_warrens(self):
        # Names carry a unique suffix so runs on a shared broker never collide.
        exchange = unique("sorting_room")
        queue = unique("po_box")

        conn = self.amqp_connect()
        ch = conn.channel()
        ch.exchange_declare(exchange=exchange, type="direct", durable=True,
                            auto_delete=False)
        declared = ch.queue_declare(queue=queue, durable=True, exclusive=False,
                                    auto_delete=False)
        self.assertEqual(tuple(declared), (queue, 0, 0))
        ch.queue_bind(queue=queue, exchange=exchange, routing_key="jason")

        # Clean up the durable entities even if an assertion below fails.
        def delete_entities():
            c = self.amqp_connect()
            d = c.channel()
            d.queue_delete(queue=queue)
            d.exchange_delete(exchange=exchange)
            c.close()
        self.addCleanup(delete_entities)

        ch.basic_publish(amqp.Message("Test message!", delivery_mode=2),
                         exchange=exchange, routing_key="jason")

        msg = ch.basic_get(queue=queue)
        self.assertIsNotNone(msg, "basic_get returned nothing after the publish")
        self.assertEqual(msg.body, "Test message!")
        self.assertEqual(msg.properties.get("delivery_mode"), 2)
        self.assertEqual(msg.delivery_info["exchange"], exchange)
        self.assertEqual(msg.delivery_info["routing_key"], "jason")
        self.assertFalse(msg.delivery_info["redelivered"])
        self.assertEqual(msg.delivery_info["message_count"], 0)
        ch.basic_ack(msg.delivery_tag)
        self.assertIsNone(ch.basic_get(queue=queue), "acked message came back")

        received = []

        def recv_callback(m):
            received.append(m)
            ch.basic_ack(m.delivery_tag)

        tag = ch.basic_consume(queue=queue, callback=recv_callback,
                               consumer_tag="testtag")
        self.assertEqual(tag, "testtag")
        self.assertEqual(ch.queue_declare(queue=queue, passive=True).consumer_count, 1)

        ch.basic_publish(amqp.Message("Second message!", delivery_mode=2),
                         exchange=exchange, routing_key="jason")
        self.assertTrue(self.drain_until(conn, lambda: received),
                        "consumer callback was not called")
        self.assertEqual([m.body for m in received], ["Second message!"])
        self.assertEqual(received[0].delivery_info["consumer_tag"], "testtag")
        self.assertEqual(received[0].delivery_info["routing_key"], "jason")
        self.assertFalse(received[0].delivery_info["redelivered"])

        ch.basic_cancel("testtag")
        after = ch.queue_declare(queue=queue, passive=True)
        self.assertEqual((after.message_count, after.consumer_count), (0, 0))
        ch.close()
        conn.close()

    def test_unacked_get_returns_to_queue_on_channel_close(self):
        queue = unique("po_box")
        conn = self.amqp_connect()
        ch = conn.channel()
        ch.queue_declare(queue=queue, exclusive=True)
        ch.basic_publish(amqp.Message("again"), exchange="", routing_key=queue)
        first = ch.basic_get(queue=queue)
        self.assertIsNotNone(first)
        self.assertFalse(first.delivery_info["redelivered"])
        ch.close()                                   # never acked

        ch2 = conn.channel()
        again = ch2.basic_get(queue=queue, no_ack=True)
        self.assertIsNotNone(again, "unacked message was lost on channel close")
        self.assertEqual(again.body, "again")
        self.assertTrue(again.delivery_info["redelivered"])
        self.assertIsNone(ch2.basic_get(queue=queue))

    def test_durable_queue_survives_reconnect(self):
        queue = unique("po_box")
        conn = self.amqp_connect(confirm_publish=True)
        ch = conn.channel()
        ch.queue_declare(queue=queue, durable=True, auto_delete=False)
        self.addCleanup(lambda: self.amqp_connect().channel().queue_delete(queue=queue))
        # With confirm_publish the call returns once the broker acked the message.
        ch.basic_publish(amqp.Message("kept", delivery_mode=2), exchange="",
                         routing_key=queue)
        self.assertEqual(ch.queue_declare(queue=queue, passive=True).message_count, 1)
        conn.close()

        ch = self.amqp_connect().channel()
        msg = ch.basic_get(queue=queue, no_ack=True)
        self.assertIsNotNone(msg)
        self.assertEqual(msg.body, "kept")


if __name__ == "__main__":
    unittest.main()
