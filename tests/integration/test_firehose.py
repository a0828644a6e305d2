"""The firehose tracer as RabbitMQ 3.10 has it: every vhost has the internal topic exchange
amq.rabbitmq.trace; with tracing on ("tracing": true on PUT /api/vhosts/{vhost}, or warrenctl
trace_on), every publish and delivery in the vhost is copied there as publish.<exchange> or
deliver.<queue>, with the body and headers that say where the message went. The expected
values are those RabbitMQ 3.10.8 gives for the same steps."""

import os
import time
import unittest

import pika
import pika.exceptions as pex

from harness import BrokerTestCase, unique
from mgmt_support import Api, warrenctl
from stomp_support import StompTestCase

TRACE = "amq.rabbitmq.trace"
EXTERNAL = os.environ.get("WARREN_TEST_BROKER")


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def texts(values):
    return [text(v) for v in values]


class Firehose:
    """Helpers shared by the AMQP and the STOMP cases; the class's broker answers HTTP."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.api = Api(*cls.broker.wait_listener("http"))
        except BaseException:
            cls.tearDownClass()
            raise

    def tracing(self, on, vhost="%2F"):
        status, _, raw, _ = self.api.call("PUT", "/api/vhosts/" + vhost, body={"tracing": on})
        self.assertIn(status, (201, 204), raw)
        if on:
            self.addCleanup(self.api.call, "PUT", "/api/vhosts/" + vhost,
                            body={"tracing": False})

    def trace_queue(self, ch, key="#"):
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(q, TRACE, key)
        return q

    def traces(self, ch, queue, n, timeout=5.0):
        """The first n traces in `queue`: (routing key, headers, body) each."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            m, props, body = ch.basic_get(queue, auto_ack=True)
            if m is None:
                time.sleep(0.05)
                continue
            self.assertEqual(m.exchange, TRACE)
            got.append((m.routing_key, props.headers or {}, body))
        return got

    def assert_no_more(self, ch, queue):
        time.sleep(0.3)
        m, _, body = ch.basic_get(queue, auto_ack=True)
        self.assertIsNone(m, "unexpected trace %r" % (body,))

    def assert_origin(self, h, channel=1):
        self.assertEqual(text(h["vhost"]), "/")
        self.assertEqual(text(h["user"]), "guest")
        self.assertEqual(h["channel"], channel)
        self.assertIn(" -> ", text(h["connection"]))
        self.assertTrue(text(h["node"]))


class AmqpTraceTest(Firehose, BrokerTestCase):

    def test_the_trace_exchange_is_internal_and_in_every_vhost(self):
        ch = self.channel()
        ch.exchange_declare(TRACE, "topic", passive=True)
        ex = self.api.get("/api/exchanges/%2F/" + TRACE)
        self.assertEqual((ex["type"], ex["durable"], ex["internal"]), ("topic", True, True))
        with self.assertRaises(pex.ChannelClosedByBroker) as e:
            ch.basic_publish(TRACE, "x", b"y")
            ch.queue_declare("", exclusive=True)  # a round trip to see the error
        self.assertEqual(e.exception.reply_code, 403)
        self.assertEqual(e.exception.reply_text,
                         "ACCESS_REFUSED - cannot publish to internal exchange "
                         "'amq.rabbitmq.trace' in vhost '/'")

    def test_publishes_and_deliveries_are_traced(self):
        ch = self.channel()
        tq = self.trace_queue(ch)
        q = unique("traced")
        ch.queue_declare(q, auto_delete=True)
        self.addCleanup(lambda: self.channel().queue_delete(q))
        ex = unique("fan")
        ch.exchange_declare(ex, "fanout", auto_delete=True)
        ch.queue_bind(q, ex)
        self.tracing(True)
        self.assertTrue(self.api.get("/api/vhosts/%2F")["tracing"])
        props = pika.BasicProperties(content_type="text/plain", delivery_mode=2, priority=3,
                                     timestamp=1234, message_id="m1",
                                     headers={"a": 1, "CC": ["cc-" + q]})
        ch.basic_publish(ex, "rk", b"hello", props)
        ch.basic_publish("", q, b"direct")
        ch.basic_publish("", "nowhere-" + q, b"lost")
        first = ch.basic_get(q, auto_ack=False)[0]
        ch.basic_nack(first.delivery_tag, requeue=True)
        self.assertEqual(ch.basic_get(q, auto_ack=True)[2], b"hello")
        got = self.traces(ch, tq, 5)
        self.assertEqual([(k, b) for k, _, b in got], [
            ("publish." + ex, b"hello"), ("publish.", b"direct"), ("publish.", b"lost"),
            ("deliver." + q, b"hello"), ("deliver." + q, b"hello")])
        key, h, _ = got[0]
        self.assertEqual(text(h["exchange_name"]), ex)
        self.assertEqual(texts(h["routing_keys"]), ["rk", "cc-" + q])
        self.assertEqual(texts(h["routed_queues"]), [q])
        p = h["properties"]
        self.assertEqual((text(p["content_type"]), p["delivery_mode"], p["priority"],
                          p["timestamp"], text(p["message_id"])),
                         ("text/plain", 2, 3, 1234, "m1"))
        self.assertEqual(p["headers"]["a"], 1)
        self.assert_origin(h)
        self.assertNotIn("redelivered", h)
        h = got[1][1]
        self.assertEqual((text(h["exchange_name"]), texts(h["routing_keys"]),
                          texts(h["routed_queues"]), h["properties"]), ("", [q], [q], {}))
        # The default exchange names the queue whether or not it exists, as RabbitMQ's does.
        self.assertEqual(texts(got[2][1]["routed_queues"]), ["nowhere-" + q])
        self.assertEqual([h["redelivered"] for _, h, _ in got[3:5]], [0, 1])
        self.assertNotIn("routed_queues", got[3][1])
        self.assert_origin(got[3][1])
        # Traces are not traced: getting them above made no deliver.<trace queue>.
        self.assertEqual(ch.basic_get(q, auto_ack=True)[2], b"direct")
        self.assertEqual([(k, b) for k, _, b in self.traces(ch, tq, 1)],
                         [("deliver." + q, b"direct")])
        self.assert_no_more(ch, tq)

    def test_consumers_and_transactions_are_traced(self):
        ch = self.channel()
        tq = self.trace_queue(ch, "deliver.#")
        q = ch.queue_declare("", exclusive=True).method.queue
        self.tracing(True)
        pub = self.connect().channel()
        pub.tx_select()
        pub.basic_publish("amq.direct", "nowhere", b"a")
        pub.basic_publish("", q, b"b")
        pub.tx_commit()
        got = []
        for m, _, body in ch.consume(q, auto_ack=True, inactivity_timeout=5):
            self.assertIsNotNone(m)
            got.append(body)
            break
        ch.cancel()
        (key, h, body), = self.traces(ch, tq, 1)
        self.assertEqual((key, body, h["redelivered"]), ("deliver." + q, b"b", 0))

    def test_tracing_off_stops_the_traces(self):
        ch = self.channel()
        tq = self.trace_queue(ch)
        self.tracing(True)
        ch.basic_publish("amq.topic", "on", b"1")
        self.assertEqual(len(self.traces(ch, tq, 1)), 1)
        self.tracing(False)
        self.assertFalse(self.api.get("/api/vhosts/%2F")["tracing"])
        ch.basic_publish("amq.topic", "off", b"2")
        ch.basic_publish("", "off", b"3")
        self.assert_no_more(ch, tq)

    def test_other_vhosts_are_not_traced(self):
        vhost = unique("untraced")
        status, _, raw, _ = self.api.call("PUT", "/api/vhosts/" + vhost)
        self.assertIn(status, (201, 204), raw)
        self.addCleanup(self.api.call, "DELETE", "/api/vhosts/" + vhost)
        other = self.connect(virtual_host=vhost).channel()
        other.exchange_declare(TRACE, "topic", passive=True)
        ch = self.channel()
        tq = self.trace_queue(ch)
        self.tracing(True)
        other.basic_publish("amq.topic", "x", b"elsewhere")
        other.basic_publish("", "x", b"elsewhere")
        self.assert_no_more(ch, tq)

    @unittest.skipIf(EXTERNAL, "warrenctl talks to warrend")
    def test_warrenctl_trace_on_and_off(self):
        ch = self.channel()
        tq = self.trace_queue(ch)
        port = self.api.base.rsplit(":", 1)[1]
        r = warrenctl(port, "trace_on")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(warrenctl, port, "trace_off")
        ch.basic_publish("amq.topic", "k", b"on")
        self.assertEqual(self.traces(ch, tq, 1)[0][0], "publish.amq.topic")
        r = warrenctl(port, "trace_off")
        self.assertEqual(r.returncode, 0, r.stderr)
        ch.basic_publish("amq.topic", "k", b"off")
        self.assert_no_more(ch, tq)
        r = warrenctl(port, "-p", unique("no-such-vhost"), "trace_on")
        self.assertNotEqual(r.returncode, 0)


class StompTraceTest(Firehose, StompTestCase):

    def test_stomp_sends_and_messages_are_traced(self):
        ch = self.connect().channel()
        tq = self.trace_queue(ch)
        name = self.queue_name("traced")
        self.declare_stomp_queue(ch, name)
        self.tracing(True)
        st = self.raw("1.2")
        st.receipt("SEND", {"destination": "/queue/" + name}, b"to queue")
        st.receipt("SEND", {"destination": "/topic/" + name}, b"to topic")
        st.receipt("SUBSCRIBE", {"destination": "/queue/" + name, "id": "s"})
        self.assertEqual(st.expect("MESSAGE").body, b"to queue")
        got = self.traces(ch, tq, 3)
        self.assertEqual([(k, b) for k, _, b in got],
                         [("publish.", b"to queue"), ("publish.amq.topic", b"to topic"),
                          ("deliver." + name, b"to queue")])
        self.assertEqual(texts(got[0][1]["routed_queues"]), [name])
        self.assertEqual(texts(got[1][1]["routed_queues"]), [])
        self.assertEqual(got[2][1]["redelivered"], 0)
        for _, h, _ in got:
            self.assertEqual((text(h["vhost"]), text(h["user"])), ("/", "guest"))


if __name__ == "__main__":
    unittest.main()
