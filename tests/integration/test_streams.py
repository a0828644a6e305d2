"""Stream queues (x-queue-type = stream) over AMQP 0-9-1, as RabbitMQ 3.10 has them: an
append-only log that consumers read from an offset of their choice (x-stream-offset: first,
last, next, a number, a timestamp or an age such as "10m"), without taking messages away.
Every test of StreamTest also runs against RabbitMQ (WARREN_TEST_BROKER=host:port, and
WARREN_TEST_HTTP=host:port for the management API); StreamRestartTest needs its own warrend.

As RabbitMQ 3.10.8 answers:
- a stream must be durable, not exclusive, not auto-delete: 406 "invalid property
  'non-durable' | 'exclusive-owner' | 'auto-delete' for queue 'q' in vhost '/'";
- arguments of other queue types are refused: 406 "invalid arg 'x-max-length' for queue 'q'
  in vhost '/' of queue type rabbit_stream_queue";
- redeclaring a stream as another type, or the reverse: 406 inequivalent arg 'x-queue-type';
- basic.get: connection error 540 "basic.get not supported by stream queues ...";
- a consumer needs a prefetch (basic.qos, per consumer): 406 "consumer prefetch count is not
  set for 'queue 'q' in vhost '/''"; with one but no_ack: connection error 540 "automatic
  acknowledgement not supported by stream queues ...";
- nack and reject: connection error 540 "basic.nack and basic.reject not supported by stream
  queues ...";
- each delivered message carries the header x-stream-offset (a signed 64-bit integer); acks
  give credit back and remove nothing.
"""

import datetime
import os
import subprocess
import time
import unittest

import pika
import pika.exceptions as pex

from harness import BrokerTestCase, close_quietly, unique, wait_until
from test_persistence import NodeCase

EXTERNAL = os.environ.get("WARREN_TEST_BROKER")
CONSUMER = os.environ.get("WARREN_CONSOLE_CONSUMER")
PRODUCER = os.environ.get("WARREN_CONSOLE_PRODUCER")
WARREND = os.environ.get("WARREND")

STREAM = {"x-queue-type": "stream"}


def where(q):
    return "queue '%s' in vhost '/'" % q


class StreamCase(BrokerTestCase):

    def stream(self, prefix, **args):
        """A new stream, deleted after the test."""
        name = unique(prefix)
        ch = self.channel()
        ch.queue_declare(name, durable=True, arguments=dict(STREAM, **args))
        return self.queue_later(name)

    def publish(self, q, bodies, **props):
        """Each body in a publish of its own, confirmed one by one."""
        ch = self.channel()
        ch.confirm_delivery()
        for b in bodies:
            ch.basic_publish("", q, b, pika.BasicProperties(**props) if props else None)

    def read(self, q, offset=None, want=None, prefetch=100, seconds=1.0, ack=True):
        """Consumes q from `offset` until `want` messages came (or, with want None, for
        `seconds`); returns [(body, x-stream-offset, redelivered)]."""
        conn = self.connect()
        ch = conn.channel()
        ch.basic_qos(prefetch_count=prefetch)
        got = []

        def on(c, m, p, b):
            got.append((b, (p.headers or {}).get("x-stream-offset"), m.redelivered))
            if ack:
                c.basic_ack(m.delivery_tag)
        args = {} if offset is None else {"x-stream-offset": offset}
        ch.basic_consume(q, on, arguments=args)
        if want is None:
            self.idle(conn, seconds)
        else:
            self.pump(conn, lambda: len(got) >= want, timeout=10)
            self.idle(conn, 0.3)  # nothing more than wanted
        close_quietly(conn)
        return got

    def expect_channel_error(self, code, text, fn):
        with self.assertRaises(pex.ChannelClosedByBroker) as cm:
            fn()
        self.assertEqual(cm.exception.reply_code, code)
        self.assertEqual(cm.exception.reply_text, text)

    def expect_connection_error(self, code, text, fn):
        with self.assertRaises(pex.ConnectionClosedByBroker) as cm:
            fn()
        self.assertEqual(cm.exception.reply_code, code)
        self.assertEqual(cm.exception.reply_text, text)


class StreamTest(StreamCase):

    # -- declaring ---------------------------------------------------------------------
    def test_a_stream_is_durable_and_neither_exclusive_nor_auto_delete(self):
        for kw, prop in (({"durable": False}, "non-durable"),
                         ({"durable": True, "exclusive": True}, "exclusive-owner"),
                         ({"durable": True, "auto_delete": True}, "auto-delete")):
            q = unique("stream.prop")
            ch = self.channel()
            self.expect_channel_error(
                406, "PRECONDITION_FAILED - invalid property '%s' for %s" % (prop, where(q)),
                lambda: ch.queue_declare(q, arguments=STREAM, **kw))
        q = self.stream("stream.ok")
        ok = self.channel().queue_declare(q, durable=True, arguments=STREAM)
        self.assertEqual((ok.method.message_count, ok.method.consumer_count), (0, 0))

    def test_stream_arguments_and_the_arguments_of_other_queue_types(self):
        self.stream("stream.args", **{"x-max-length-bytes": 10000000, "x-max-age": "7D",
                                      "x-stream-max-segment-size-bytes": 1000000,
                                      "x-queue-leader-locator": "balanced",
                                      "x-initial-cluster-size": 1})
        for age in ("1Y", "1M", "1h", "30m", "10s"):
            self.stream("stream.age", **{"x-max-age": age})
        for key, value in (("x-max-length", 100), ("x-message-ttl", 1000),
                           ("x-dead-letter-exchange", "dlx"), ("x-max-priority", 5),
                           ("x-overflow", "drop-head"), ("x-single-active-consumer", True),
                           ("x-expires", 60000)):
            q = unique("stream.bad")
            ch = self.channel()
            self.expect_channel_error(
                406, "PRECONDITION_FAILED - invalid arg '%s' for %s of queue type "
                     "rabbit_stream_queue" % (key, where(q)),
                lambda: ch.queue_declare(q, durable=True, arguments=dict(STREAM, **{key: value})))
        q = unique("stream.bad")
        ch = self.channel()
        self.expect_channel_error(
            406, "PRECONDITION_FAILED - invalid arg 'x-max-age' for %s: "
                 "{unacceptable_type,signedint}" % where(q),
            lambda: ch.queue_declare(q, durable=True, arguments=dict(STREAM, **{"x-max-age": 10})))
        for age in ("10x", "1d", "0s", "1.5h"):
            ch = self.channel()
            self.expect_channel_error(
                406, "PRECONDITION_FAILED - invalid arg 'x-max-age' for %s: invalid_max_age"
                     % where(q),
                lambda: ch.queue_declare(q, durable=True,
                                         arguments=dict(STREAM, **{"x-max-age": age})))

    def test_the_queue_type_cannot_change(self):
        s = self.stream("stream.type")
        c = unique("classic.type")
        ch = self.channel()
        ch.queue_declare(c, durable=True)
        self.addCleanup(lambda: self.channel().queue_delete(c))
        base = "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for %s: "
        self.expect_channel_error(
            406, base % where(s) + "received none but current is the value 'stream' of type "
                                   "'longstr'",
            lambda: self.channel().queue_declare(s, durable=True))
        self.expect_channel_error(
            406, base % where(s) + "received 'classic' but current is 'stream'",
            lambda: self.channel().queue_declare(s, durable=True,
                                                 arguments={"x-queue-type": "classic"}))
        self.expect_channel_error(
            406, base % where(c) + "received the value 'stream' of type 'longstr' but current "
                                   "is none",
            lambda: self.channel().queue_declare(c, durable=True, arguments=STREAM))
        # A passive declare and an equal one are fine.
        self.channel().queue_declare(s, passive=True)
        self.channel().queue_declare(s, durable=True, arguments=STREAM)

    # -- reading -------------------------------------------------------------------------
    def test_offsets_first_next_a_number_and_out_of_range(self):
        q = self.stream("stream.offsets")
        self.publish(q, [b"m%d" % i for i in range(10)])
        every = [(b"m%d" % i, i, False) for i in range(10)]
        self.assertEqual(self.read(q, "first", want=10), every)
        self.assertEqual(self.read(q, 0, want=10), every)
        self.assertEqual(self.read(q, 5, want=5), every[5:])
        self.assertEqual(self.read(q, -5, want=10), every)  # before the start: the start
        self.assertEqual(self.read(q, "next"), [])
        self.assertEqual(self.read(q), [])                   # no argument: next
        # The header is a signed 64-bit integer ('l') whatever type the offset came in.
        conn = self.connect()
        ch = conn.channel()
        ch.basic_qos(prefetch_count=10)
        got = []
        ch.basic_consume(q, lambda c, m, p, b: got.append(p.headers),
                         arguments={"x-stream-offset": 9})
        self.pump(conn, lambda: got)
        self.assertEqual(got[0]["x-stream-offset"], 9)
        self.assertIsInstance(got[0]["x-stream-offset"], int)

    def test_a_consumer_at_next_gets_what_comes_while_it_waits(self):
        q = self.stream("stream.next")
        self.publish(q, [b"old"])
        conn = self.connect()
        ch = conn.channel()
        ch.basic_qos(prefetch_count=10)
        got = []
        ch.basic_consume(q, lambda c, m, p, b: (got.append((b, p.headers["x-stream-offset"])),
                                                c.basic_ack(m.delivery_tag)),
                         arguments={"x-stream-offset": "next"})
        self.idle(conn, 0.3)
        self.publish(q, [b"new1", b"new2"])
        self.assertTrue(self.pump(conn, lambda: len(got) == 2))
        self.assertEqual(got, [(b"new1", 1), (b"new2", 2)])

    def test_an_offset_past_the_end_waits_for_that_offset(self):
        q = self.stream("stream.ahead")
        self.publish(q, [b"m%d" % i for i in range(3)])
        conn = self.connect()
        ch = conn.channel()
        ch.basic_qos(prefetch_count=10)
        got = []
        ch.basic_consume(q, lambda c, m, p, b: (got.append(b), c.basic_ack(m.delivery_tag)),
                         arguments={"x-stream-offset": 5})
        self.publish(q, [b"m%d" % i for i in range(3, 7)])  # offsets 3..6
        self.assertTrue(self.pump(conn, lambda: len(got) >= 2, timeout=10))
        self.idle(conn, 0.3)
        self.assertEqual(got, [b"m5", b"m6"])

    def test_last_starts_at_the_latest_chunk(self):
        # Messages published one by one with confirms are chunks of one message each.
        q = self.stream("stream.last")
        self.publish(q, [b"m%d" % i for i in range(5)])
        self.assertEqual(self.read(q, "last", want=1), [(b"m4", 4, False)])

    def test_timestamps_and_ages(self):
        q = self.stream("stream.time")
        self.publish(q, [b"a0", b"a1"])
        time.sleep(3.2)
        between = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        time.sleep(1.2)
        self.publish(q, [b"b0", b"b1"])
        bodies = lambda got: [b for b, _, _ in got]
        # At once: a0 and a1 are more than 4 s old, b0 and b1 (much) less.
        self.assertEqual(bodies(self.read(q, "4s", want=2)), [b"b0", b"b1"])
        self.assertEqual(bodies(self.read(q, between, want=2)), [b"b0", b"b1"])
        past = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
        self.assertEqual(bodies(self.read(q, past, want=4)), [b"a0", b"a1", b"b0", b"b1"])
        future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        self.assertEqual(self.read(q, future), [])
        self.assertEqual(bodies(self.read(q, "10m", want=4)), [b"a0", b"a1", b"b0", b"b1"])

    def test_bad_offsets_are_refused(self):
        q = self.stream("stream.badoffset")
        for value in ("5", "10x", "1.5h", "0s"):
            ch = self.channel()
            ch.basic_qos(prefetch_count=1)
            self.expect_channel_error(
                406, "PRECONDITION_FAILED - invalid arg 'x-stream-offset' for %s: "
                     "{invalid_stream_offset_arg,{longstr,<<\"%s\">>}}" % (where(q), value),
                lambda: ch.basic_consume(q, lambda *a: None,
                                         arguments={"x-stream-offset": value}))

    def test_reading_does_not_consume_and_properties_are_kept(self):
        q = self.stream("stream.keep")
        self.publish(q, [b"p0"], content_type="text/plain", delivery_mode=2, priority=3,
                     correlation_id="corr-1", message_id="mid-1", timestamp=1641092645,
                     headers={"foo": "bar", "n": 7})
        for _ in range(2):  # two readers, one after the other: both see everything
            conn = self.connect()
            ch = conn.channel()
            ch.basic_qos(prefetch_count=10)
            got = []
            ch.basic_consume(q, lambda c, m, p, b: (got.append((m, p, b)),
                                                    c.basic_ack(m.delivery_tag)),
                             arguments={"x-stream-offset": "first"})
            self.assertTrue(self.pump(conn, lambda: got))
            m, p, b = got[0]
            self.assertEqual(b, b"p0")
            self.assertFalse(m.redelivered)
            self.assertEqual((p.content_type, p.delivery_mode, p.priority, p.correlation_id,
                              p.message_id, p.timestamp),
                             ("text/plain", 2, 3, "corr-1", "mid-1", 1641092645))
            self.assertEqual(p.headers, {"foo": "bar", "n": 7, "x-stream-offset": 0})
            close_quietly(conn)
        # RabbitMQ counts from statistics that lag by a few seconds.
        self.assertTrue(wait_until(lambda: self.channel().queue_declare(
            q, passive=True).method.message_count == 1, timeout=10, interval=0.5))

    def test_prefetch_bounds_what_is_unacknowledged_and_acks_give_credit(self):
        q = self.stream("stream.credit")
        self.publish(q, [b"m%d" % i for i in range(6)])
        conn = self.connect()
        ch = conn.channel()
        ch.basic_qos(prefetch_count=2)
        got = []
        ch.basic_consume(q, lambda c, m, p, b: got.append(m.delivery_tag),
                         arguments={"x-stream-offset": "first"})
        self.pump(conn, lambda: len(got) >= 2)
        self.idle(conn, 0.5)
        self.assertEqual(len(got), 2)
        ch.basic_ack(got[-1], multiple=True)
        self.pump(conn, lambda: len(got) >= 4)
        self.idle(conn, 0.5)
        self.assertEqual(len(got), 4)

    # -- what a stream refuses -----------------------------------------------------------
    def test_consumers_need_a_prefetch_and_manual_acks(self):
        q = self.stream("stream.consume")
        text = ("PRECONDITION_FAILED - consumer prefetch count is not set for '%s'" % where(q))
        ch = self.channel()
        self.expect_channel_error(406, text, lambda: ch.basic_consume(q, lambda *a: None))
        ch = self.channel()
        ch.basic_qos(prefetch_count=10, global_qos=True)  # a channel-wide limit is not one
        self.expect_channel_error(406, text, lambda: ch.basic_consume(q, lambda *a: None))
        ch = self.channel()
        ch.basic_qos(prefetch_count=10)
        self.expect_connection_error(
            540, "NOT_IMPLEMENTED - automatic acknowledgement not supported by stream queues "
                 + where(q),
            lambda: ch.basic_consume(q, lambda *a: None, auto_ack=True))

    def test_basic_get_is_not_supported(self):
        q = self.stream("stream.get")
        ch = self.channel()
        self.expect_connection_error(
            540, "NOT_IMPLEMENTED - basic.get not supported by stream queues " + where(q),
            lambda: ch.basic_get(q))

    def test_nack_and_reject_are_not_supported(self):
        q = self.stream("stream.nack")
        self.publish(q, [b"m0"])
        for settle in (lambda ch, tag: ch.basic_nack(tag, requeue=True),
                       lambda ch, tag: ch.basic_nack(tag, requeue=False),
                       lambda ch, tag: ch.basic_reject(tag, requeue=False)):
            conn = self.connect()
            ch = conn.channel()
            ch.basic_qos(prefetch_count=10)
            tags = []
            ch.basic_consume(q, lambda c, m, p, b: tags.append(m.delivery_tag),
                             arguments={"x-stream-offset": "first"})
            self.pump(conn, lambda: tags)
            settle(ch, tags[0])
            with self.assertRaises(pex.ConnectionClosedByBroker) as cm:
                self.idle(conn, 2)
            self.assertEqual(cm.exception.reply_code, 540)
            self.assertEqual(cm.exception.reply_text,
                             "NOT_IMPLEMENTED - basic.nack and basic.reject not supported by "
                             "stream queues " + where(q))
        self.assert_broker_usable()

    # -- publishing ----------------------------------------------------------------------
    def test_confirms_routing_and_a_large_body(self):
        q = self.stream("stream.route")
        x = unique("stream.fanout")
        ch = self.channel()
        ch.exchange_declare(x, "fanout", auto_delete=True)
        ch.queue_bind(q, x)
        ch.confirm_delivery()
        big = os.urandom(300000)
        ch.basic_publish(x, "", b"via exchange")
        ch.basic_publish("", q, big)
        got = self.read(q, "first", want=2)
        self.assertEqual([(b, o) for b, o, _ in got], [(b"via exchange", 0), (big, 1)])

    def test_management_api_shows_the_type(self):
        try:
            from mgmt_support import Api
        except ImportError:
            self.skipTest("mgmt_support not available")
        if EXTERNAL and not os.environ.get("WARREN_TEST_HTTP"):
            self.skipTest("WARREN_TEST_HTTP not set")
        api = Api(*self.broker.wait_listener("http"))
        q = self.stream("stream.api", **{"x-max-age": "1h"})
        self.publish(q, [b"a", b"b"])
        body = api.get("/api/queues/%2F/" + q)
        self.assertEqual(body["type"], "stream")
        self.assertEqual(body["arguments"], {"x-queue-type": "stream", "x-max-age": "1h"})
        self.assertTrue(wait_until(
            lambda: api.get("/api/queues/%2F/" + q).get("messages") == 2, timeout=15))
        self.assertEqual(api.get("/api/queues/%2F/" + q)["messages_unacknowledged"], 0)


class StompStreamTest(StreamCase):
    """RabbitMQ's STOMP adapter reads a stream through /amq/queue/NAME with the headers
    x-stream-offset and prefetch-count and a client acknowledgement mode."""

    def stomp(self):
        from stomp_raw import RawStomp
        c = RawStomp(*self.broker.wait_listener("stomp"))
        self.addCleanup(c.close)
        self.assertEqual(c.connect(version="1.2").command, "CONNECTED")
        return c

    def test_subscribe_from_an_offset_and_send_into_a_stream(self):
        q = self.stream("stream.stomp")
        self.publish(q, [b"m%d" % i for i in range(5)])
        c = self.stomp()
        c.receipt("SUBSCRIBE", {"id": "s1", "destination": "/amq/queue/" + q,
                                "ack": "client-individual", "prefetch-count": "10",
                                "x-stream-offset": "first"})
        frames = [c.expect("MESSAGE") for _ in range(5)]
        self.assertEqual([f.body for f in frames], [b"m%d" % i for i in range(5)])
        self.assertEqual([f.header("x-stream-offset") for f in frames],
                         [str(i) for i in range(5)])
        # The adapter's other forms: offset=N, timestamp=SECONDS; a bare number is next.
        for sid, value, want in (("s2", "offset=3", [b"m3", b"m4"]),
                                 ("s3", "timestamp=0", [b"m%d" % i for i in range(5)]),
                                 ("s4", "last", [b"m4"])):
            c.receipt("SUBSCRIBE", {"id": sid, "destination": "/amq/queue/" + q,
                                    "ack": "client", "prefetch-count": "10",
                                    "x-stream-offset": value})
            got = [c.expect("MESSAGE") for _ in want]
            self.assertEqual([f.body for f in got], want)
            self.assertEqual({f.header("subscription") for f in got}, {sid})
            c.receipt("UNSUBSCRIBE", {"id": sid})
        c.receipt("SUBSCRIBE", {"id": "s5", "destination": "/amq/queue/" + q, "ack": "client",
                                "prefetch-count": "10", "x-stream-offset": "3"})
        self.assertIsNone(c.poll_frame(0.5))
        c.receipt("SEND", {"destination": "/amq/queue/" + q, "x-custom": "hello"},
                  b"stomp-sent")
        f = c.expect("MESSAGE")  # the subscription is at the end now: it gets it too
        self.assertEqual((f.body, f.header("x-stream-offset"), f.header("x-custom")),
                         (b"stomp-sent", "5", "hello"))
        self.assertEqual(self.read(q, "last", want=1)[0][:2], (b"stomp-sent", 5))

    def test_a_nack_kills_the_session_as_basic_nack_kills_a_channel(self):
        q = self.stream("stream.stomp.nack")
        self.publish(q, [b"n0", b"n1"])
        c = self.stomp()
        c.receipt("SUBSCRIBE", {"id": "s1", "destination": "/amq/queue/" + q,
                                "ack": "client-individual", "prefetch-count": "10",
                                "x-stream-offset": "first"})
        first = c.expect("MESSAGE")
        c.expect("MESSAGE")
        c.send("NACK", {"id": first.header("ack"), "receipt": "r-nack"}.items())
        self.assertEqual(c.expect("RECEIPT").header("receipt-id"), "r-nack")
        f = c.expect("ERROR")
        self.assertEqual(f.header("message"), "AMQP channel died")
        body = f.body.decode()
        self.assertIn("540", body)
        self.assertIn("basic.nack and basic.reject not supported by stream queues %s"
                      % where(q), " ".join(body.split()))
        c.wait_closed()
        # The log is untouched: a new reader gets both messages from the start.
        self.assertEqual([m[:2] for m in self.read(q, "first", want=2)],
                         [(b"n0", 0), (b"n1", 1)])
        self.assert_broker_usable()

    def test_a_stream_subscription_needs_a_prefetch_count(self):
        q = self.stream("stream.stomp.noprefetch")
        c = self.stomp()
        c.send("SUBSCRIBE", {"id": "s1", "destination": "/amq/queue/" + q, "ack": "client",
                             "x-stream-offset": "first"}.items())
        f = c.expect("ERROR")
        self.assertEqual(f.header("message"), "precondition_failed")
        self.assertEqual(f.body.decode(),
                         "PRECONDITION_FAILED - consumer prefetch count is not set for '%s'"
                         % where(q))
        c.wait_closed()
        self.assert_broker_usable()


@unittest.skipIf(EXTERNAL, "fault injection is Warren's")
class StreamSupervisionTest(StreamCase):
    """A stream that crashes is restarted from its file: its consumers get basic.cancel, and
    the log, offsets and all, is back for the next reader."""

    broker_args = ("--fault-injection", "--max-restarts", "100")

    def test_a_crashed_stream_comes_back_whole(self):
        from mgmt_support import Api
        api = Api(*self.broker.wait_listener("http"))
        q = self.stream("stream.crash")
        self.publish(q, [b"m%d" % i for i in range(50)])
        conn = self.connect()
        ch = conn.channel()
        ch.basic_qos(prefetch_count=100)
        cancelled, got = [], []
        ch.add_on_cancel_callback(lambda frame: cancelled.append(frame))
        ch.basic_consume(q, lambda c, m, p, b: (got.append(b), c.basic_ack(m.delivery_tag)),
                         arguments={"x-stream-offset": "first"})
        self.assertTrue(self.pump(conn, lambda: len(got) == 50))
        status, _, raw, _ = api.call("POST", "/api/debug/crash/queue/%2F/" + q)
        self.assertEqual(status, 204, raw)
        self.assertTrue(self.pump(conn, lambda: cancelled, timeout=10), "no basic.cancel")
        self.assertTrue(wait_until(lambda: "restarted" in self.broker.log_text(), timeout=10))
        self.publish(q, [b"after"])
        again = self.read(q, "first", want=51)
        self.assertEqual([(b, o) for b, o, _ in again],
                         [(b"m%d" % i, i) for i in range(50)] + [(b"after", 50)])


@unittest.skipIf(EXTERNAL, "needs its own warrend processes")
class StreamRestartTest(NodeCase):
    """What a stream keeps: its messages and offsets across restarts and kill -9, bodies read
    back from disk beyond the memory limit, and retention by size, a segment at a time."""

    def read(self, node, q, offset, want, prefetch=200):
        conn = node.connect()
        ch = conn.channel()
        ch.basic_qos(prefetch_count=prefetch)
        got = []

        def on(c, m, p, b):
            got.append((p.headers["x-stream-offset"], b))
            c.basic_ack(m.delivery_tag)
        ch.basic_consume(q, on, arguments={"x-stream-offset": offset})
        deadline = time.monotonic() + 30
        while len(got) < want and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.1)
        conn.process_data_events(time_limit=0.3)
        conn.close()
        return got

    def publish(self, node, q, bodies):
        conn = node.connect()
        ch = conn.channel()
        ch.confirm_delivery()
        for b in bodies:
            ch.basic_publish("", q, b)  # transient: a stream keeps it all the same
        conn.close()

    def test_messages_and_offsets_survive_restart_and_kill(self):
        n = self.start()
        ch = n.connect().channel()
        ch.queue_declare("log", durable=True, arguments=STREAM)
        self.publish(n, "log", [b"a%d" % i for i in range(100)])
        self.assertEqual(n.stop(), 0)
        n = self.start()
        self.assertEqual(self.read(n, "log", "first", 100),
                         [(i, b"a%d" % i) for i in range(100)])
        self.publish(n, "log", [b"b%d" % i for i in range(10)])  # offsets go on from 100
        n.kill()
        n = self.start()
        got = self.read(n, "log", 95, 15)
        self.assertEqual(got, [(i, b"a%d" % i) for i in range(95, 100)] +
                              [(100 + i, b"b%d" % i) for i in range(10)])
        ok = n.connect().channel().queue_declare("log", passive=True)
        self.assertEqual(ok.method.message_count, 110)

    def test_bodies_beyond_the_memory_limit_are_read_from_disk_in_order(self):
        conf = os.path.join(self.data, "small.conf")
        with open(conf, "w") as f:
            f.write("persistence.queue_memory_mb = 1\n")
        n = self.start("--config", conf)
        ch = n.connect().channel()
        ch.queue_declare("deep", durable=True, arguments=STREAM)
        total = 2000  # about 4 MB of bodies: most of them on disk only
        bodies = [b"%06d" % i + b"s" * 2048 for i in range(total)]
        self.publish(n, "deep", bodies)
        for offset in ("first", 1234):  # two readers, from disk
            start = 0 if offset == "first" else offset
            got = self.read(n, "deep", offset, total - start)
            self.assertEqual([o for o, _ in got], list(range(start, total)))
            self.assertEqual([b for _, b in got], bodies[start:])

    def test_retention_by_size_drops_whole_old_segments(self):
        n = self.start()
        ch = n.connect().channel()
        ch.queue_declare("short", durable=True, arguments=dict(
            STREAM, **{"x-max-length-bytes": 2000, "x-stream-max-segment-size-bytes": 500}))
        self.publish(n, "short", [b"%03d" % i + b"r" * 97 for i in range(100)])  # 100 B each
        got = self.read(n, "short", "first", 1)
        first = got[0][0]
        # Segments of 5 messages; at most 2000 bytes (20 messages) kept beyond the active one.
        self.assertGreaterEqual(first, 75)
        self.assertEqual(first % 5, 0)
        everything = self.read(n, "short", "first", 100 - first)
        self.assertEqual([o for o, _ in everything], list(range(first, 100)))
        self.assertEqual(n.stop(), 0)
        n = self.start()  # what retention removed stays removed
        again = self.read(n, "short", "first", 100 - first)
        self.assertEqual([o for o, _ in again], list(range(first, 100)))


@unittest.skipUnless(CONSUMER and PRODUCER, "WARREN_CONSOLE_CONSUMER / _PRODUCER name the tools")
class ConsoleStreamTest(StreamCase):
    """The Kafka seed: `kafka-console-consumer.sh --topic T --from-beginning > file &`."""

    def test_console_consumer_from_beginning_reads_the_whole_stream_again_and_again(self):
        q = self.stream("stream.console")
        uri = "%s:%d" % (self.host, self.port)
        lines = b"".join(b"log line %d\n" % i for i in range(500))
        r = subprocess.run([PRODUCER, "-h", uri, "-q", q], input=lines, capture_output=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        for _ in range(2):
            r = subprocess.run([CONSUMER, "-h", uri, "-q", q, "--from-beginning",
                                "--timeout-ms", "1500"], capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, lines)
            self.assertIn(b"Processed a total of 500 messages", r.stderr)
        r = subprocess.run([CONSUMER, "-h", uri, "-q", q, "--offset", "495",
                            "--timeout-ms", "1000"], capture_output=True, timeout=60)
        self.assertEqual(r.stdout, b"".join(b"log line %d\n" % i for i in range(495, 500)))
        # Without --from-beginning a stream is read from what comes next: nothing here.
        r = subprocess.run([CONSUMER, "-h", uri, "-q", q, "--timeout-ms", "1000"],
                           capture_output=True, timeout=60)
        self.assertEqual((r.returncode, r.stdout), (0, b""))


def murmur3_32(data, seed):
    """MurmurHash3 x86 32-bit, written out here to check the broker's partitioning."""
    c1, c2, mask = 0xcc9e2d51, 0x1b873593, 0xffffffff
    rotl = lambda x, r: ((x << r) | (x >> (32 - r))) & mask
    h = seed
    n = len(data) // 4
    for i in range(n):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = rotl((k * c1) & mask, 15) * c2 & mask
        h = (rotl(h ^ k, 13) * 5 + 0xe6546b64) & mask
    tail, k = data[4 * n:], 0
    for i in reversed(range(len(tail))):
        k = (k << 8) | tail[i]
    if tail:
        h ^= rotl((k * c1) & mask, 15) * c2 & mask
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85ebca6b) & mask
    h ^= h >> 13
    h = (h * 0xc2b2ae35) & mask
    return h ^ (h >> 16)


@unittest.skipIf(EXTERNAL, "super streams are Warren's exchange type x-super-stream")
@unittest.skipUnless(os.environ.get("WARRENCTL"), "WARRENCTL names warrenctl")
class SuperStreamTest(StreamCase):
    """Partitioned streams, the Kafka seed's `kafka-topics.sh --alter --topic T --partitions
    24`: warrenctl add_super_stream / alter_super_stream / delete_super_stream, routing by a
    hash of the routing key, and the console tools reading and writing all partitions."""

    def ctl(self, *args):
        host, port = self.broker.wait_listener("http")
        return subprocess.run([os.environ["WARRENCTL"], "--host", host, "--http-port",
                               str(port), *args], capture_output=True, timeout=60)

    def partitions(self, name):
        r = self.ctl("--no-table-headers", "list_super_stream_partitions", name)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [line.split("\t")[1] for line in r.stdout.decode().splitlines()]

    def read_all(self, name, parts, want):
        got = {}
        for i, p in enumerate(parts):
            got[i] = [b for b, _, _ in self.read(p, "first", want=want.get(i, 0))]
        return got

    def test_the_hash_is_murmur3(self):
        # Reference values of MurmurHash3 x86_32.
        self.assertEqual(murmur3_32(b"", 0), 0)
        self.assertEqual(murmur3_32(b"hello", 0), 0x248bfa47)
        self.assertEqual(murmur3_32(b"The quick brown fox jumps over the lazy dog", 0x9747b28c),
                         0x2fa826cd)

    def test_keys_stay_in_their_partition_and_partitions_can_only_grow(self):
        name = unique("invoices")
        r = self.ctl("add_super_stream", name, "--partitions", "3", "--max-age", "7D")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(self.ctl, "delete_super_stream", name)
        parts = self.partitions(name)
        self.assertEqual(parts, ["%s-%d" % (name, i) for i in range(3)])
        ch = self.channel()
        ch.confirm_delivery()
        keys = ["customer-%d" % i for i in range(30)]
        for k in keys:
            for j in range(3):
                ch.basic_publish(name, k, ("%s/%d" % (k, j)).encode())
        for j in range(6):  # no key: the partitions in turn
            ch.basic_publish(name, "", b"nokey-%d" % j)
        expect = {i: [] for i in range(3)}
        for k in keys:
            expect[murmur3_32(k.encode(), 104729) % 3] += [("%s/%d" % (k, j)).encode()
                                                           for j in range(3)]
        got = self.read_all(name, parts, {i: len(v) + 2 for i, v in expect.items()})
        for i in range(3):
            self.assertEqual([b for b in got[i] if not b.startswith(b"nokey")], expect[i])
            self.assertEqual(len([b for b in got[i] if b.startswith(b"nokey")]), 2)
        self.assertTrue(all(expect[i] for i in range(3)), "some partition got no key")
        # The seed's --alter --partitions 24; new partitions take the first one's arguments.
        r = self.ctl("alter_super_stream", name, "--partitions", "24")
        self.assertEqual(r.returncode, 0, r.stderr)
        parts = self.partitions(name)
        self.assertEqual(parts, ["%s-%d" % (name, i) for i in range(24)])
        info = self.channel().queue_declare(parts[23], passive=True)
        self.assertEqual(info.method.message_count, 0)
        ch.basic_publish(name, "customer-0", b"after")
        target = murmur3_32(b"customer-0", 104729) % 24
        self.assertEqual(self.read(parts[target], "last", want=1)[0][0], b"after")
        r = self.ctl("alter_super_stream", name, "--partitions", "2")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"can only be increased", r.stderr)
        self.assertEqual(len(self.partitions(name)), 24)
        r = self.ctl("delete_super_stream", name)
        self.assertEqual(r.returncode, 0, r.stderr)
        with self.assertRaises(pex.ChannelClosedByBroker):
            self.channel().queue_declare(parts[0], passive=True)
        self.assertEqual(self.ctl("list_super_stream_partitions", name).returncode, 1)

    @unittest.skipUnless(CONSUMER and PRODUCER, "WARREN_CONSOLE_CONSUMER / _PRODUCER")
    def test_console_tools_write_keyed_lines_and_read_every_partition(self):
        name = unique("k8s_log")
        r = self.ctl("add_super_stream", name, "--partitions", "4")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(self.ctl, "delete_super_stream", name)
        uri = "%s:%d" % (self.host, self.port)
        lines = [b"pod-%d:line %d" % (i % 7, i) for i in range(200)]
        r = subprocess.run([PRODUCER, "-h", uri, "-e", name, "--key-separator", ":"],
                           input=b"\n".join(lines) + b"\n", capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([CONSUMER, "-h", uri, "--super-stream", name, "--from-beginning",
                            "--print-key", "--timeout-ms", "1500"], capture_output=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.splitlines()
        self.assertEqual(sorted(out), sorted(l.replace(b":", b"\t", 1) for l in lines))
        # Within a key (one partition) the order is kept.
        for pod in range(7):
            mine = [l for l in out if l.startswith(b"pod-%d\t" % pod)]
            self.assertEqual(mine, [l.replace(b":", b"\t", 1) for l in lines
                                    if l.startswith(b"pod-%d:" % pod)])
        r = subprocess.run([CONSUMER, "-h", uri, "--super-stream", unique("none"),
                            "--timeout-ms", "500"], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 3)


if __name__ == "__main__":
    unittest.main()
