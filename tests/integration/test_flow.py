"""Publishers paced by consumers (queue_actor.cpp, "Publishers are paced by consumers").

While a queue has consumers and a backlog beyond its mark (20,000 ready messages or 16 MiB of
bodies), each publish batch blocks its publisher until the backlog is down to half; without
consumers a backlog builds freely. These tests check the behaviour, not speed:

- with a consumer slower than the publisher, the queue's depth stays near the mark (plus what
  was on its way when the queue said stop) instead of growing with what was published;
- a connection that publishes to and consumes from the same queue, acking on that same
  connection, finishes (the queue lets publishers go while its consumers take nothing, so
  acks queued behind a blocked publish get through);
- without consumers, everything published is queued (no pacing);
- a message larger than what a connection may hold unprocessed (4 MiB) arrives whole: the
  frames of a body still being assembled must not count as unprocessed, or reading stalls.

Every loop is bounded in count and time.
"""

import os
import threading
import time
import unittest

import struct

import pika

import amqp_raw as raw
from harness import BrokerTestCase, close_quietly, unique, wait_until

EXTERNAL = os.environ.get("WARREN_TEST_BROKER")
BODY = b"x" * 16


def depth(conn, queue):
    return conn.channel().queue_declare(queue, passive=True).method.message_count


def publish_frames(channel, queue, body, count):
    """`count` publishes to the default exchange, encoded once (a raw client publishes far
    faster than a pika consumer takes)."""
    args = struct.pack("!H", 0) + raw.shortstr("") + raw.shortstr(queue) + b"\x00"
    one = (raw.method_frame(channel, raw.BASIC_PUBLISH, args)
           + raw.content_header_frame(channel, 60, len(body))
           + raw.frame(raw.FRAME_BODY, channel, body))
    return one * count


@unittest.skipIf(EXTERNAL, "Warren's pacing marks")
class PacingTest(BrokerTestCase):

    def test_slow_consumer_bounds_the_queue(self):
        q = unique("flow.slow")
        total = 200000
        setup = self.channel()
        setup.queue_declare(q)

        consumed = {"n": 0}
        stop = threading.Event()

        def consumer():
            conn = pika.BlockingConnection(self.params())
            try:
                ch = conn.channel()
                ch.basic_qos(prefetch_count=50)

                def on_message(c, method, props, body):
                    consumed["n"] += 1
                    c.basic_ack(method.delivery_tag)
                ch.basic_consume(q, on_message)
                deadline = time.monotonic() + 120
                while not stop.is_set() and time.monotonic() < deadline:
                    conn.process_data_events(time_limit=0.05)
            finally:
                close_quietly(conn)

        t = threading.Thread(target=consumer, daemon=True)
        t.start()
        watcher = self.connect()
        self.assertTrue(wait_until(
            lambda: watcher.channel().queue_declare(q, passive=True).method.consumer_count == 1,
            10, 0.05), "the consumer did not start")
        publisher = raw.RawConnection(self.host, self.port, timeout=30)
        self.addCleanup(publisher.close)
        publisher.handshake()
        publisher.open_channel(1)
        highest = 0
        chunk = publish_frames(1, q, BODY, 5000)
        deadline = time.monotonic() + 120
        for _ in range(total // 5000):
            publisher.send(chunk)  # blocks while the broker paces this publisher
            highest = max(highest, depth(watcher, q))
            self.assertLess(time.monotonic(), deadline, "publishing did not finish")
        highest = max(highest, depth(watcher, q))
        stop.set()
        t.join(10)
        # Unpaced, the backlog is about what was published minus what the (slower) consumer
        # took meanwhile (an unpaced build reached 99,199 of 100,000). Paced, it stays near
        # the 20,000-message mark plus what was on its way when the queue said stop: up to
        # the 4 MiB a connection may hold unprocessed, about 50,000 of these messages.
        self.assertLess(highest, 120000,
                        "queue depth reached %d of %d published (consumed %d)"
                        % (highest, total, consumed["n"]))
        self.assertGreater(consumed["n"], 0)

    def test_publish_and_consume_on_one_connection_finishes(self):
        q = unique("flow.same")
        total = 60000
        conn = self.connect()
        ch = conn.channel()
        ch.queue_declare(q)
        ch.basic_qos(prefetch_count=20)
        got = {"n": 0}

        def on_message(c, method, props, body):
            got["n"] += 1
            c.basic_ack(method.delivery_tag)
        ch.basic_consume(q, on_message)
        pub = conn.channel()
        deadline = time.monotonic() + 120
        for i in range(total):
            pub.basic_publish("", q, BODY)
            if i % 1000 == 0:
                conn.process_data_events(time_limit=0)
            self.assertLess(time.monotonic(), deadline, "publishing did not finish")
        while got["n"] < total and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.1)
        self.assertEqual(got["n"], total)

    def test_no_consumer_no_pacing(self):
        q = unique("flow.backlog")
        total = 50000
        ch = self.channel()
        ch.queue_declare(q)
        deadline = time.monotonic() + 60
        for _ in range(total):
            ch.basic_publish("", q, BODY)
            self.assertLess(time.monotonic(), deadline, "publishing did not finish")
        watcher = self.connect()
        self.assertTrue(wait_until(lambda: depth(watcher, q) == total, 20, 0.1),
                        "depth %d, want %d" % (depth(watcher, q), total))


class LargeMessageTest(BrokerTestCase):
    def test_body_larger_than_the_unprocessed_limit(self):
        """12 MiB in 131,064-byte body frames from a raw client, whose writes time out after
        5 s if warrend stops reading; then a small message behind it on the same channel."""
        q = unique("flow.large")
        self.channel().queue_declare(q)
        body = os.urandom(12 << 20)
        c = raw.RawConnection(self.host, self.port)
        try:
            c.handshake()
            c.open_channel(1)
            chunk = c.frame_max - 8
            args = struct.pack("!H", 0) + raw.shortstr("") + raw.shortstr(q) + b"\x00"
            c.send(raw.method_frame(1, raw.BASIC_PUBLISH, args)
                   + raw.content_header_frame(1, 60, len(body)))
            for at in range(0, len(body), chunk):
                c.send(raw.frame(raw.FRAME_BODY, 1, body[at:at + chunk]))
            c.send(publish_frames(1, q, b"after", 1))
            ch = self.channel()
            deadline = time.monotonic() + 30
            got = []
            while len(got) < 2 and time.monotonic() < deadline:
                method, _, data = ch.basic_get(q, auto_ack=True)
                if method is None:
                    time.sleep(0.05)
                else:
                    got.append(data)
        finally:
            c.close()
        self.assertEqual(len(got), 2, "messages received: %d of 2" % len(got))
        self.assertEqual(len(got[0]), len(body))
        self.assertTrue(got[0] == body, "the large body came back changed")
        self.assertEqual(got[1], b"after")

if __name__ == "__main__":
    unittest.main()
