"""Queue arguments and what follows from them, seen through pika: message TTL (x-message-ttl
and the per-message expiration property), queue expiry (x-expires), length limits
(x-max-length, x-max-length-bytes) with each x-overflow mode, dead-lettering
(x-dead-letter-exchange, x-dead-letter-routing-key) with the x-death header it adds, dead-letter
cycles, priority queues (x-max-priority), single active consumer (x-single-active-consumer),
the validation of the arguments on declare and the message counts that expiry changes.

RabbitMQ 3.10 is the reference: every expectation here holds against it (run with
WARREN_TEST_BROKER=host:port). The restart tests need warrend processes of their own, the crash
test warrend's fault injection, and the tests of TTLs above RabbitMQ's 10-year limit warrend
itself: these are skipped against an external broker. The STOMP test needs the broker's STOMP
port (WARREN_TEST_STOMP with an external broker) and the management API test its HTTP port
(WARREN_TEST_HTTP, RabbitMQ's management plugin).

The TTLs waited for are short (100-600 ms, 1 s across a restart), so waits are short too: a
wait_until poll where something can be polled, a fixed wait only where the check is that
something has not happened yet (or where looking would change the outcome, as a passive
declare renews an x-expires lease).
"""

import datetime
import os
import time
import unittest

import pika
import pika.exceptions as pex

import harness
from harness import BrokerTestCase, close_quietly, unique, wait_until
from mgmt_support import Api, quote, sample
from stomp_support import StompTestCase

EXTERNAL = os.environ.get("WARREN_TEST_BROKER")

# The fields RabbitMQ 3.10 puts in each x-death entry; "original-expiration" is added only
# when the message carried an expiration property.
X_DEATH_FIELDS = {"count", "reason", "queue", "time", "exchange", "routing-keys"}


def text(value):
    """A header value as str (pika gives longstr values as str or bytes)."""
    return value.decode() if isinstance(value, bytes) else value


class QueueArgsTestCase(BrokerTestCase):
    """Helpers shared by the classes below."""

    def publisher(self):
        """(connection, channel) in confirm mode: basic_publish returns once the broker has
        routed and enqueued the message (or raises NackError when the queue refused it)."""
        conn = self.connect()
        ch = conn.channel()
        ch.confirm_delivery()
        return conn, ch

    def declare(self, ch, prefix, arguments=None, exclusive=True, **kw):
        """Declares a fresh queue (exclusive unless told) and returns its name."""
        name = unique(prefix)
        ch.queue_declare(queue=name, exclusive=exclusive, arguments=arguments, **kw)
        return name

    def get_all(self, ch, queue, limit=100):
        return harness.get_all(ch, queue, limit)

    def wait_get(self, conn, ch, queue, timeout=5.0, auto_ack=True):
        return harness.get_one(conn, ch, queue, timeout, auto_ack)

    def dead_letter_target(self, ch, exchange_type="fanout", binding_key=""):
        """(exchange, queue): a fresh exchange with a fresh queue bound to it."""
        ex = unique("dlx")
        ch.exchange_declare(exchange=ex, exchange_type=exchange_type, auto_delete=True)
        q = self.declare(ch, "dlq")
        ch.queue_bind(queue=q, exchange=ex, routing_key=binding_key)
        return ex, q

    def assert_refused(self, ctx, code, *words):
        """The channel was closed by the broker with `code`, its text naming each word."""
        exc = ctx.exception
        self.assertEqual(exc.reply_code, code, exc)
        for word in words:
            self.assertIn(word, exc.reply_text, exc)

    def assert_x_death(self, props, entries, first=None):
        """The x-death header is the list `entries` (dicts of expected fields; each entry must
        have exactly RabbitMQ's fields, plus original-expiration where expected), newest first;
        x-first-death-* name the first entry given in `first` (reason, queue, exchange)."""
        headers = props.headers or {}
        deaths = headers.get("x-death")
        self.assertIsInstance(deaths, list, "x-death: %r" % (headers,))
        self.assertEqual(len(deaths), len(entries), deaths)
        for got, want in zip(deaths, entries):
            self.assertIsInstance(got, dict, deaths)
            fields = set(X_DEATH_FIELDS)
            if "original-expiration" in want:
                fields.add("original-expiration")
            self.assertEqual(set(got), fields, got)
            self.assertIsInstance(got["count"], int, got)
            self.assertIsInstance(got["time"], datetime.datetime, got)  # an AMQP timestamp
            self.assertIsInstance(got["routing-keys"], list, got)
            for key, value in want.items():
                actual = got[key]
                if key == "routing-keys":
                    actual = [text(k) for k in actual]
                elif isinstance(actual, bytes):
                    actual = actual.decode()
                self.assertEqual(actual, value, "x-death field %s: %r" % (key, got))
        if first is not None:
            reason, queue, exchange = first
            self.assertEqual(text(headers.get("x-first-death-reason")), reason, headers)
            self.assertEqual(text(headers.get("x-first-death-queue")), queue, headers)
            self.assertEqual(text(headers.get("x-first-death-exchange")), exchange, headers)


class MessageTtlTest(QueueArgsTestCase):
    """x-message-ttl."""

    def test_messages_expire_without_anyone_touching_the_queue(self):
        # The broker removes expired messages on its own: the count drops with no get,
        # consume or publish on the queue.
        _, ch = self.publisher()
        q = self.declare(ch, "ttl", {"x-message-ttl": 500})
        for i in range(3):
            ch.basic_publish("", q, b"m%d" % i)
        self.assertEqual(self.wait_count(ch, q, 0), 0)
        self.assertIsNone(ch.basic_get(q, auto_ack=True)[0])

    def test_requeued_message_keeps_its_original_expiry(self):
        # Held unacked past its TTL, then requeued: it is not given a new TTL but
        # is already expired, so it is gone at once.
        conn, ch = self.publisher()
        q = self.declare(ch, "ttl-requeue", {"x-message-ttl": 400})
        ch.basic_publish("", q, b"late")
        published = time.monotonic()
        method, _, body = ch.basic_get(q)
        self.assertEqual(body, b"late")
        self.idle(conn, 0.7 - (time.monotonic() - published))
        ch.basic_reject(method.delivery_tag, requeue=True)
        self.assertIsNone(ch.basic_get(q, auto_ack=True)[0])
        self.assertEqual(self.count(ch, q), 0)

    def test_requeued_message_before_its_expiry_is_delivered_again(self):
        conn, ch = self.publisher()
        q = self.declare(ch, "ttl-requeue", {"x-message-ttl": 600})
        ch.basic_publish("", q, b"again")
        method, _, _ = ch.basic_get(q)
        ch.basic_reject(method.delivery_tag, requeue=True)
        method, _, body = ch.basic_get(q, auto_ack=True)
        self.assertEqual(body, b"again")
        self.assertTrue(method.redelivered)

    def test_ttl_zero_delivers_only_to_a_consumer_with_credit(self):
        conn, ch = self.publisher()
        q = self.declare(ch, "ttl0", {"x-message-ttl": 0})
        ch.basic_publish("", q, b"nobody listening")
        self.assertIsNone(ch.basic_get(q, auto_ack=True)[0])
        self.assertEqual(self.count(ch, q), 0)

        ch.basic_qos(prefetch_count=1)
        got = []
        ch.basic_consume(q, lambda c, m, p, b: got.append((m, b)))
        ch.basic_publish("", q, b"one")   # the consumer has credit: delivered
        ch.basic_publish("", q, b"two")   # no credit left: expires at once
        self.assertTrue(self.pump(conn, lambda: got), "the consumer got nothing")
        ch.basic_ack(got[0][0].delivery_tag)
        self.idle(conn, 0.3)
        self.assertEqual([b for _, b in got], [b"one"])
        self.assertEqual(self.count(ch, q), 0)


class PerMessageExpirationTest(QueueArgsTestCase):
    """The expiration property (milliseconds as a string)."""

    def test_expiration_property_expires_the_message(self):
        _, ch = self.publisher()
        q = self.declare(ch, "exp")
        ch.basic_publish("", q, b"short-lived", pika.BasicProperties(expiration="300"))
        ch.basic_publish("", q, b"kept")
        self.assertEqual(self.wait_count(ch, q, 1), 1)
        self.assertEqual(self.get_all(ch, q), [b"kept"])

    def test_lower_of_queue_ttl_and_expiration_wins(self):
        _, ch = self.publisher()
        queue_lower = self.declare(ch, "exp-qttl", {"x-message-ttl": 300})
        message_lower = self.declare(ch, "exp-mttl", {"x-message-ttl": 60000})
        ch.basic_publish("", queue_lower, b"a", pika.BasicProperties(expiration="60000"))
        ch.basic_publish("", message_lower, b"b", pika.BasicProperties(expiration="300"))
        self.assertEqual(self.wait_count(ch, queue_lower, 0), 0)
        self.assertEqual(self.wait_count(ch, message_lower, 0), 0)

    def test_expired_message_behind_a_live_head_is_counted_but_never_delivered(self):
        # RabbitMQ 3.10 only drops expired messages from the head of the queue: one that
        # expired behind a live head still counts, but is dropped when it reaches the head,
        # before anything is handed out (basic.get's message_count already leaves it out).
        conn, ch = self.publisher()
        for_get = self.declare(ch, "exp-hol")
        for_consume = self.declare(ch, "exp-hol")
        for q in (for_get, for_consume):
            ch.basic_publish("", q, b"long", pika.BasicProperties(expiration="60000"))
            ch.basic_publish("", q, b"short", pika.BasicProperties(expiration="100"))
            ch.basic_publish("", q, b"plain")
        self.idle(conn, 0.4)
        self.assertEqual(self.count(ch, for_get), 3)
        self.assertEqual(self.count(ch, for_consume), 3)

        method, _, body = ch.basic_get(for_get, auto_ack=True)
        self.assertEqual(body, b"long")
        self.assertEqual(method.message_count, 1)
        self.assertEqual(self.get_all(ch, for_get), [b"plain"])

        got = []
        ch.basic_consume(for_consume, lambda c, m, p, b: got.append(b), auto_ack=True)
        self.assertTrue(self.pump(conn, lambda: len(got) >= 2))
        self.idle(conn, 0.2)
        self.assertEqual(got, [b"long", b"plain"])
        self.assertEqual(self.count(ch, for_consume), 0)

    def test_basic_get_arms_the_timer_of_the_new_head(self):
        # Only the head's deadline has a timer. m1 has none, so nothing is armed while it leads;
        # taking it with basic.get makes m2 the head, and m2's timer must be set then. Without
        # that, m2 would sit past its expiration until some later, unrelated event on the queue
        # (a publish, a get, a passive declare): nothing here touches the queue again.
        conn, ch = self.publisher()
        dlx, dlq = self.dead_letter_target(ch)
        q = self.declare(ch, "exp-get", {"x-dead-letter-exchange": dlx})
        ch.basic_publish("", q, b"m1")
        ch.basic_publish("", q, b"m2", pika.BasicProperties(expiration="300"))
        self.assertEqual(ch.basic_get(q, auto_ack=True)[2], b"m1")
        got = self.wait_get(conn, ch, dlq, timeout=2.0)
        self.assertIsNotNone(got, "m2 was not dead-lettered once it became the head")
        _, props, body = got
        self.assertEqual(body, b"m2")
        self.assert_x_death(props, [{"count": 1, "reason": "expired", "queue": q,
                                     "original-expiration": "300"}])

    def test_expiration_at_the_limit_does_not_expire_early(self):
        # 315360000000 ms (ten years) is the largest expiration RabbitMQ takes; a deadline
        # that far out must not come out in the past.
        conn, ch = self.publisher()
        q = self.declare(ch, "exp-huge")
        ch.basic_publish("", q, b"forever",
                         pika.BasicProperties(expiration="315360000000"))
        self.idle(conn, 0.5)
        self.assertEqual(self.count(ch, q), 1)
        self.assertEqual(self.get_all(ch, q), [b"forever"])

    def test_invalid_expiration_closes_the_channel_with_406(self):
        # RabbitMQ: "PRECONDITION_FAILED - invalid expiration 'abc': no_integer" and
        # "... invalid expiration '-5': {value_negative,-5}".
        conn = self.connect()
        # Above ten years: "... invalid expiration '315360000001': {value_too_large,...}".
        for value in ("abc", "-5", "315360000001"):
            with self.subTest(expiration=value):
                ch = conn.channel()
                ch.confirm_delivery()
                q = self.declare(ch, "exp-bad")
                with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                    ch.basic_publish("", q, b"x", pika.BasicProperties(expiration=value))
                self.assert_refused(ctx, 406, "expiration", value)
                self.assertTrue(conn.is_open)
        # Only the channel was closed: the connection still works.
        ch = conn.channel()
        ch.queue_declare(queue="", exclusive=True)


class QueueExpiryTest(QueueArgsTestCase):
    """x-expires: a queue unused for that long is deleted. Using it means having a consumer,
    a basic.get or a (passive or not) redeclare, so the checks below wait past the lease
    before each passive declare instead of polling: polling would keep the queue alive."""

    EXPIRES_MS = 300

    def expiring_queue(self, ch, expires=EXPIRES_MS):
        name = self.declare(ch, "xexp", {"x-expires": expires}, exclusive=False)
        self.addCleanup(self.delete_quietly, name)
        return name

    def wait_expired(self, conn, name, expires=EXPIRES_MS, tries=4):
        """True once a passive declare made more than `expires` after the last use answers
        404 (each look that finds the queue renews its lease, so the next waits again)."""
        for _ in range(tries):
            self.idle(conn, expires / 1000.0 + 0.25)
            if not self.exists(conn, name):
                return True
        return False

    def test_unused_queue_is_deleted(self):
        conn = self.connect()
        q = self.expiring_queue(conn.channel())
        self.assertTrue(self.wait_expired(conn, q), "queue %s was not deleted" % q)

    def test_queue_with_a_consumer_is_kept_until_it_cancels(self):
        conn = self.connect()
        q = self.expiring_queue(conn.channel())
        consumer_conn = self.connect()
        consumer_ch = consumer_conn.channel()
        tag = consumer_ch.basic_consume(q, lambda c, m, p, b: None)
        self.idle(consumer_conn, 3 * self.EXPIRES_MS / 1000.0)
        self.assertTrue(self.exists(conn, q), "queue deleted while it had a consumer")
        consumer_ch.basic_cancel(tag)
        self.assertTrue(self.wait_expired(conn, q), "queue kept after its consumer left")

    def test_redeclare_renews_the_lease(self):
        conn = self.connect()
        ch = conn.channel()
        q = self.expiring_queue(ch, expires=500)
        started = time.monotonic()
        for _ in range(4):   # every 250 ms, each well within the 500 ms lease
            self.idle(conn, 0.25)
            ch.queue_declare(queue=q, exclusive=False, arguments={"x-expires": 500})
        self.assertGreater(time.monotonic() - started, 0.9)
        self.assertTrue(self.exists(conn, q), "queue deleted although redeclared")
        self.assertTrue(self.wait_expired(conn, q, expires=500))


class MaxLengthTest(QueueArgsTestCase):
    """x-max-length, x-max-length-bytes and x-overflow."""

    def test_drop_head_keeps_the_newest(self):
        _, ch = self.publisher()
        q = self.declare(ch, "maxlen", {"x-max-length": 3})
        for i in range(5):
            ch.basic_publish("", q, b"m%d" % i)
        self.assertEqual(self.count(ch, q), 3)
        self.assertEqual(self.get_all(ch, q), [b"m2", b"m3", b"m4"])

    def test_max_length_bytes_counts_body_bytes(self):
        _, ch = self.publisher()
        q = self.declare(ch, "maxbytes", {"x-max-length-bytes": 25})
        for i in range(5):
            ch.basic_publish("", q, (b"%d" % i) * 10)   # 10 bytes each: two fit
        self.assertEqual(self.get_all(ch, q), [b"3" * 10, b"4" * 10])
        # A body larger than the limit does not stay even in an empty queue.
        ch.basic_publish("", q, b"x" * 30)
        self.assertEqual(self.count(ch, q), 0)

    def test_max_length_zero(self):
        # Nothing stays in the queue; as with TTL 0, a message handed straight to a waiting
        # consumer is delivered (RabbitMQ 3.10).
        conn, ch = self.publisher()
        q = self.declare(ch, "maxlen0", {"x-max-length": 0})
        ch.basic_publish("", q, b"dropped")
        self.assertEqual(self.count(ch, q), 0)
        self.assertIsNone(ch.basic_get(q, auto_ack=True)[0])
        got = []
        ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
        ch.basic_publish("", q, b"delivered")
        self.assertTrue(self.pump(conn, lambda: got))
        self.assertEqual(got, [b"delivered"])

    def test_reject_publish_nacks_past_the_limit(self):
        _, ch = self.publisher()
        q = self.declare(ch, "rejpub", {"x-max-length": 2, "x-overflow": "reject-publish"})
        ch.basic_publish("", q, b"p0")
        ch.basic_publish("", q, b"p1")
        for body in (b"p2", b"p3"):
            with self.assertRaises(pex.NackError, msg=body):
                ch.basic_publish("", q, body)
        self.assertEqual(self.count(ch, q), 2)
        # Room again once one is taken: the next publish is accepted.
        self.assertEqual(ch.basic_get(q, auto_ack=True)[2], b"p0")
        ch.basic_publish("", q, b"p4")
        self.assertEqual(self.get_all(ch, q), [b"p1", b"p4"])

    def test_reject_publish_without_confirms_drops_silently(self):
        ch = self.channel()
        q = self.declare(ch, "rejpub", {"x-max-length": 2, "x-overflow": "reject-publish"})
        for i in range(4):
            ch.basic_publish("", q, b"p%d" % i)
        # Without confirms nothing orders the publishes before the count (RabbitMQ's
        # passive declare can overtake them): poll.
        self.assertEqual(self.wait_count(ch, q, 2), 2)
        self.assertTrue(ch.is_open)
        self.assertEqual(self.get_all(ch, q), [b"p0", b"p1"])

    def test_reject_publish_does_not_dead_letter(self):
        conn, ch = self.publisher()
        dlq = self.declare(ch, "dlq")
        q = self.declare(ch, "rejpub", {"x-max-length": 1, "x-overflow": "reject-publish",
                                        "x-dead-letter-exchange": "",
                                        "x-dead-letter-routing-key": dlq})
        ch.basic_publish("", q, b"kept")
        with self.assertRaises(pex.NackError):
            ch.basic_publish("", q, b"refused")
        self.idle(conn, 0.2)
        self.assertEqual(self.count(ch, dlq), 0)
        self.assertEqual(self.get_all(ch, q), [b"kept"])

    def test_reject_publish_dlx_nacks_and_dead_letters_the_refused(self):
        # RabbitMQ 3.10: the publisher gets a nack and the refused message is dead-lettered
        # with reason "maxlen"; the queue keeps the oldest.
        conn, ch = self.publisher()
        dlx, dlq = self.dead_letter_target(ch)
        q = self.declare(ch, "rejdlx", {"x-max-length": 2, "x-overflow": "reject-publish-dlx",
                                        "x-dead-letter-exchange": dlx})
        for i in range(2):
            ch.basic_publish("", q, b"p%d" % i)
        for body in (b"p2", b"p3"):
            with self.assertRaises(pex.NackError, msg=body):
                ch.basic_publish("", q, body)
        self.assertEqual(self.wait_count(ch, dlq, 2), 2)
        for body in (b"p2", b"p3"):
            _, props, got = ch.basic_get(dlq, auto_ack=True)
            self.assertEqual(got, body)
            self.assert_x_death(props, [{"count": 1, "reason": "maxlen", "queue": q,
                                         "exchange": "", "routing-keys": [q]}],
                                first=("maxlen", q, ""))
        self.assertEqual(self.get_all(ch, q), [b"p0", b"p1"])


class DeadLetterTest(QueueArgsTestCase):
    """x-dead-letter-exchange and x-dead-letter-routing-key; the x-death header."""

    def test_rejected_message_x_death_layout(self):
        # RabbitMQ 3.10: x-death is an array of tables, newest first, each with count (long),
        # reason, queue, time (timestamp), exchange and routing-keys (array); plus the
        # x-first-death-reason/-queue/-exchange strings. The other properties are kept, and
        # the message is routed through the DLX with its original routing key.
        conn, ch = self.publisher()
        dlx, dlq = self.dead_letter_target(ch)
        q = self.declare(ch, "src", {"x-dead-letter-exchange": dlx})
        ch.basic_publish("", q, b"refused body", pika.BasicProperties(
            delivery_mode=2, content_type="text/plain", message_id="mid-1",
            headers={"app": "value"}))
        method, _, _ = ch.basic_get(q)
        ch.basic_reject(method.delivery_tag, requeue=False)
        got = self.wait_get(conn, ch, dlq)
        self.assertIsNotNone(got, "nothing was dead-lettered")
        method, props, body = got
        self.assertEqual(body, b"refused body")
        self.assertEqual(method.exchange, dlx)
        self.assertEqual(method.routing_key, q)
        self.assertEqual(props.delivery_mode, 2)
        self.assertEqual(props.content_type, "text/plain")
        self.assertEqual(props.message_id, "mid-1")
        self.assertEqual(text(props.headers.get("app")), "value")
        self.assert_x_death(props, [{"count": 1, "reason": "rejected", "queue": q,
                                     "exchange": "", "routing-keys": [q]}],
                            first=("rejected", q, ""))
        self.assertEqual(self.count(ch, q), 0)

    def test_nack_single_and_multiple_dead_letter_as_rejected(self):
        conn, ch = self.publisher()
        dlx, dlq = self.dead_letter_target(ch)
        q = self.declare(ch, "src", {"x-dead-letter-exchange": dlx})
        for i in range(4):
            ch.basic_publish("", q, b"n%d" % i)
        tags = [ch.basic_get(q)[0].delivery_tag for _ in range(4)]
        ch.basic_nack(tags[0], multiple=False, requeue=False)
        ch.basic_nack(tags[3], multiple=True, requeue=False)   # n1, n2 and n3
        self.assertEqual(self.wait_count(ch, dlq, 4), 4)
        for i in range(4):
            _, props, body = ch.basic_get(dlq, auto_ack=True)
            self.assertEqual(body, b"n%d" % i)
            self.assertNotEqual(props.delivery_mode, 2)   # transient stays transient
            self.assert_x_death(props, [{"count": 1, "reason": "rejected", "queue": q}],
                                first=("rejected", q, ""))

    def test_expired_by_queue_ttl(self):
        # Published through a named exchange: x-death records that exchange and the key,
        # and the DLX routes by the original key.
        conn, ch = self.publisher()
        dlx, dlq = self.dead_letter_target(ch, "direct", binding_key="orig-key")
        entry = unique("entry")
        ch.exchange_declare(exchange=entry, exchange_type="direct", auto_delete=True)
        q = self.declare(ch, "ttl-src", {"x-message-ttl": 150, "x-dead-letter-exchange": dlx})
        ch.queue_bind(queue=q, exchange=entry, routing_key="orig-key")
        ch.basic_publish(entry, "orig-key", b"timed out")
        got = self.wait_get(conn, ch, dlq)
        self.assertIsNotNone(got, "nothing was dead-lettered")
        method, props, body = got
        self.assertEqual(body, b"timed out")
        self.assertEqual(method.routing_key, "orig-key")
        self.assertIsNone(props.expiration)
        self.assert_x_death(props, [{"count": 1, "reason": "expired", "queue": q,
                                     "exchange": entry, "routing-keys": ["orig-key"]}],
                            first=("expired", q, entry))
        self.assertEqual(self.count(ch, q), 0)

    def test_expired_by_per_message_expiration(self):
        # The dead-lettered copy loses its expiration property (it would expire again);
        # x-death keeps it as original-expiration.
        conn, ch = self.publisher()
        dlx, dlq = self.dead_letter_target(ch)
        q = self.declare(ch, "exp-src", {"x-dead-letter-exchange": dlx})
        ch.basic_publish("", q, b"timed out", pika.BasicProperties(expiration="150",
                                                                   delivery_mode=2))
        got = self.wait_get(conn, ch, dlq)
        self.assertIsNotNone(got, "nothing was dead-lettered")
        _, props, body = got
        self.assertEqual(body, b"timed out")
        self.assertIsNone(props.expiration)
        self.assertEqual(props.delivery_mode, 2)
        self.assert_x_death(props, [{"count": 1, "reason": "expired", "queue": q,
                                     "exchange": "", "routing-keys": [q],
                                     "original-expiration": "150"}],
                            first=("expired", q, ""))

    def test_maxlen_drop_head_dead_letters_the_oldest(self):
        conn, ch = self.publisher()
        dlx, dlq = self.dead_letter_target(ch)
        q = self.declare(ch, "maxlen-src", {"x-max-length": 1, "x-dead-letter-exchange": dlx})
        ch.basic_publish("", q, b"old")
        ch.basic_publish("", q, b"new")
        got = self.wait_get(conn, ch, dlq)
        self.assertIsNotNone(got, "nothing was dead-lettered")
        self.assertEqual(got[2], b"old")
        self.assert_x_death(got[1], [{"count": 1, "reason": "maxlen", "queue": q,
                                      "exchange": "", "routing-keys": [q]}],
                            first=("maxlen", q, ""))
        self.assertEqual(self.get_all(ch, q), [b"new"])

    def test_dead_letter_routing_key_replaces_the_key(self):
        conn, ch = self.publisher()
        dlx, by_new_key = self.dead_letter_target(ch, "direct", binding_key="new-key")
        by_old_key = self.declare(ch, "old-key")
        q = self.declare(ch, "src", {"x-dead-letter-exchange": dlx,
                                     "x-dead-letter-routing-key": "new-key"})
        ch.queue_bind(queue=by_old_key, exchange=dlx, routing_key=q)
        ch.basic_publish("", q, b"rerouted")
        method, _, _ = ch.basic_get(q)
        ch.basic_reject(method.delivery_tag, requeue=False)
        got = self.wait_get(conn, ch, by_new_key)
        self.assertIsNotNone(got, "nothing was dead-lettered")
        method, props, body = got
        self.assertEqual(body, b"rerouted")
        self.assertEqual(method.routing_key, "new-key")
        # x-death keeps the key the message was published with.
        self.assert_x_death(props, [{"reason": "rejected", "queue": q, "routing-keys": [q]}])
        self.assertEqual(self.count(ch, by_old_key), 0)

    def test_default_exchange_as_dlx_routes_to_the_named_queue(self):
        conn, ch = self.publisher()
        dlq = self.declare(ch, "dlq")
        q = self.declare(ch, "src", {"x-dead-letter-exchange": "",
                                     "x-dead-letter-routing-key": dlq})
        ch.basic_publish("", q, b"to the default exchange")
        method, _, _ = ch.basic_get(q)
        ch.basic_reject(method.delivery_tag, requeue=False)
        got = self.wait_get(conn, ch, dlq)
        self.assertIsNotNone(got, "nothing was dead-lettered")
        method, props, body = got
        self.assertEqual(body, b"to the default exchange")
        self.assertEqual(method.exchange, "")
        self.assertEqual(method.routing_key, dlq)
        self.assert_x_death(props, [{"count": 1, "reason": "rejected", "queue": q}])

    def test_count_grows_when_dead_lettered_again_for_the_same_reason(self):
        # A -> B -> A by rejection (a cycle with a rejection in it is allowed): the entry
        # for (A, rejected) counts 2 and moves to the front; x-first-death-* stay on A.
        conn, ch = self.publisher()
        a, b = unique("cycle-a"), unique("cycle-b")
        ch.queue_declare(queue=a, exclusive=True, arguments={
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": b})
        ch.queue_declare(queue=b, exclusive=True, arguments={
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": a})
        ch.basic_publish("", a, b"bounced", pika.BasicProperties(delivery_mode=2))
        for q in (a, b, a):
            got = self.wait_get(conn, ch, q, auto_ack=False)
            self.assertIsNotNone(got, "message did not reach %s" % q)
            ch.basic_reject(got[0].delivery_tag, requeue=False)
        got = self.wait_get(conn, ch, b)
        self.assertIsNotNone(got, "message did not come back to %s" % b)
        _, props, body = got
        self.assertEqual(body, b"bounced")
        self.assertEqual(props.delivery_mode, 2)
        self.assert_x_death(props, [
            {"count": 2, "reason": "rejected", "queue": a, "exchange": "", "routing-keys": [a]},
            {"count": 1, "reason": "rejected", "queue": b, "exchange": "", "routing-keys": [b]},
        ], first=("rejected", a, ""))

    def test_missing_dlx_drops_the_message_and_keeps_the_channel(self):
        conn, ch = self.publisher()
        q = self.declare(ch, "src", {"x-dead-letter-exchange": unique("no-such-exchange")})
        ch.basic_publish("", q, b"nowhere to go")
        method, _, _ = ch.basic_get(q)
        ch.basic_reject(method.delivery_tag, requeue=False)
        self.idle(conn, 0.2)
        self.assertTrue(ch.is_open)
        self.assertEqual(self.count(ch, q), 0)
        ch.basic_publish("", q, b"next")
        self.assertEqual(self.get_all(ch, q), [b"next"])


class DeadLetterCycleTest(QueueArgsTestCase):
    """A queue that dead-letters into itself for an automatic reason (expiry): RabbitMQ 3.10
    drops the message at the first dead-lettering back into the same queue for the same
    reason, so it never loops."""

    def test_expired_message_dead_lettered_to_itself_is_dropped(self):
        # A fanout DLX bound to the queue itself and to an observer: the observer gets
        # exactly one copy, the queue none.
        conn, ch = self.publisher()
        dlx = unique("dlx-self")
        ch.exchange_declare(exchange=dlx, exchange_type="fanout", auto_delete=True)
        q = self.declare(ch, "self-ttl", {"x-message-ttl": 100, "x-dead-letter-exchange": dlx})
        observer = self.declare(ch, "observer")
        ch.queue_bind(queue=q, exchange=dlx)
        ch.queue_bind(queue=observer, exchange=dlx)
        ch.basic_publish("", q, b"looping")
        self.assertEqual(self.wait_count(ch, observer, 1), 1)
        self.idle(conn, 0.5)
        self.assertEqual(self.count(ch, q), 0)
        self.assertEqual(self.count(ch, observer), 1)
        _, props, body = ch.basic_get(observer, auto_ack=True)
        self.assertEqual(body, b"looping")
        self.assert_x_death(props, [{"count": 1, "reason": "expired", "queue": q}],
                            first=("expired", q, ""))
        self.assert_broker_usable()

    def test_ttl_zero_queue_dead_lettering_to_itself_ends_empty(self):
        conn, ch = self.publisher()
        q = unique("self-ttl0")
        ch.queue_declare(queue=q, exclusive=True, arguments={
            "x-message-ttl": 0, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": q})
        for i in range(3):
            ch.basic_publish("", q, b"loop %d" % i)
        self.idle(conn, 0.3)
        self.assertEqual(self.count(ch, q), 0)
        self.assertIsNone(ch.basic_get(q, auto_ack=True)[0])
        self.assert_broker_usable()


class ArgumentValidationTest(QueueArgsTestCase):
    """Bad values are refused on declare; a redeclare must match."""

    def test_invalid_values_are_refused_with_406(self):
        # RabbitMQ's texts: "PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q'
        # in vhost '/': {value_negative,-1}", ... "{value_zero,0}" for x-expires 0,
        # "invalid_overflow" for x-overflow, "expected integer, got longstr" for a string
        # TTL, "routing_key_but_no_dlx_defined" for a dead-letter key without exchange, and
        # "invalid type 'signedint' for arg 'x-dead-letter-exchange' ..." for a number DLX.
        cases = [
            ("x-message-ttl", {"x-message-ttl": -1}),
            ("x-message-ttl", {"x-message-ttl": "1000"}),
            ("x-message-ttl", {"x-message-ttl": 315360000001}),   # {value_too_large,N}
            ("x-expires", {"x-expires": 315360000001}),
            ("x-expires", {"x-expires": 0}),
            ("x-expires", {"x-expires": -1}),
            ("x-max-length", {"x-max-length": -1}),
            ("x-max-length-bytes", {"x-max-length-bytes": -1}),
            ("x-overflow", {"x-overflow": "bogus"}),
            ("x-dead-letter-exchange", {"x-dead-letter-exchange": 5}),
            ("x-dead-letter-routing-key", {"x-dead-letter-routing-key": "k"}),
            ("x-queue-mode", {"x-queue-mode": "LAZY"}),    # "unsupported queue mode 'LAZY'"
            ("x-queue-mode", {"x-queue-mode": 7}),         # {unacceptable_type,signedint}
            ("x-queue-version", {"x-queue-version": 3}),   # "unsupported queue version '3'"
            ("x-queue-version", {"x-queue-version": "2"}),
            # The type first, whatever else: "unsupported queue type 'bogus'", a channel error.
            ("x-queue-type", {"x-queue-type": "bogus", "x-message-ttl": -1}),
            ("x-queue-type", {"x-queue-type": 5}),         # {unacceptable_type,signedint}
            ("x-queue-type", {"x-queue-type": "Quorum"}),
        ]
        conn = self.connect()
        for name, arguments in cases:
            with self.subTest(arguments=arguments):
                q = unique("invalid")
                with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                    conn.channel().queue_declare(queue=q, arguments=arguments)
                self.assert_refused(ctx, 406, name)
                with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                    conn.channel().queue_declare(queue=q, passive=True)
                self.assert_refused(ctx, 404)   # nothing was created

    def test_the_fault_reported_is_the_first_in_rabbitmqs_order(self):
        # With several faults, RabbitMQ names the first in its own order of arguments, not
        # the table's; a quorum queue compares a redeclare in an order of its own.
        conn = self.connect()
        for arguments, key in (({"x-max-length": -1, "x-message-ttl": -1}, "x-message-ttl"),
                               ({"x-overflow": "bad", "x-expires": 0}, "x-expires"),
                               ({"x-queue-type": "quorum", "x-max-length": -1,
                                 "x-dead-letter-exchange": 5}, "x-dead-letter-exchange")):
            with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                conn.channel().queue_declare(queue=unique("order"), durable=True,
                                             arguments=arguments)
            self.assertIn("'%s'" % key, ctx.exception.reply_text, arguments)

        def order(first, second, base):
            q = unique("order")
            conn.channel().queue_declare(q, durable=True, arguments=dict(base, **first))
            self.addCleanup(lambda: self.channel().queue_delete(q))
            differing, reported = dict(second), []
            while differing:
                with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                    conn.channel().queue_declare(
                        q, durable=True, arguments=dict(base, **dict(first, **differing)))
                key = ctx.exception.reply_text.split("'")[1]
                reported.append(key)
                differing.pop(key)
            return reported

        classic = [("x-expires", 100000, 200000), ("x-message-ttl", 1000, 2000),
                   ("x-dead-letter-exchange", "a", "b"), ("x-dead-letter-routing-key", "a", "b"),
                   ("x-max-length", 5, 6), ("x-max-length-bytes", 500, 600),
                   ("x-max-priority", 3, 4), ("x-overflow", "drop-head", "reject-publish"),
                   ("x-queue-mode", "lazy", "default"), ("x-queue-version", 1, 2),
                   ("x-single-active-consumer", True, False)]
        self.assertEqual(order({k: a for k, a, _ in reversed(classic)},
                               {k: b for k, _, b in reversed(classic)}, {}),
                         [k for k, _, _ in classic])
        quorum = [("x-dead-letter-exchange", "a", "b"), ("x-dead-letter-routing-key", "a", "b"),
                  ("x-dead-letter-strategy", "at-most-once", "at-least-once"),
                  ("x-expires", 100000, 200000), ("x-max-length", 5, 6),
                  ("x-max-length-bytes", 500, 600), ("x-max-in-memory-length", 5, 6),
                  ("x-max-in-memory-bytes", 5, 6), ("x-overflow", "drop-head", "reject-publish"),
                  ("x-single-active-consumer", True, False),
                  ("x-quorum-initial-group-size", 1, 3), ("x-delivery-limit", 5, 6),
                  ("x-message-ttl", 1000, 2000),
                  ("x-queue-leader-locator", "balanced", "client-local")]
        self.assertEqual(order({k: a for k, a, _ in reversed(quorum)},
                               {k: b for k, _, b in reversed(quorum)},
                               {"x-queue-type": "quorum"}),
                         [k for k, _, _ in quorum])

    def test_a_redeclare_compares_the_arguments_of_the_queues_type(self):
        # Each type compares its own arguments only, in its own order (RabbitMQ 3.10.8).
        conn = self.connect()
        cases = [({}, {"x-delivery-limit": 5}, None),
                 ({}, {"x-max-age": "1D"}, None),
                 ({}, {"x-queue-master-locator": "random"}, "x-queue-master-locator"),
                 ({"x-queue-type": "stream"}, {"x-queue-type": "stream", "x-message-ttl": 5},
                  None),
                 ({"x-queue-type": "stream"}, {"x-queue-type": "stream", "x-max-age": "1D"},
                  "x-max-age"),
                 ({"x-queue-type": "stream"}, {"x-dead-letter-routing-key": "k"},
                  "x-queue-type"),
                 ({"x-queue-type": "quorum"}, {"x-queue-type": "quorum", "x-max-priority": 5},
                  None),
                 ({"x-queue-type": "quorum"}, {"x-single-active-consumer": True},
                  "x-single-active-consumer"),
                 ({"x-queue-type": "quorum", "x-quorum-initial-group-size": 1},
                  {"x-quorum-initial-group-size": 3}, "x-queue-type")]
        for current, received, refused in cases:
            with self.subTest(current=current, received=received):
                q = unique("type-args")
                conn.channel().queue_declare(q, durable=True, arguments=current)
                self.addCleanup(lambda q=q: self.channel().queue_delete(q))
                if refused is None:
                    conn.channel().queue_declare(q, durable=True, arguments=received)
                    continue
                with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                    conn.channel().queue_declare(q, durable=True, arguments=received)
                self.assert_refused(ctx, 406, "inequivalent arg '%s'" % refused)

    def test_redeclare_with_other_arguments_is_refused(self):
        # RabbitMQ: "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q' in
        # vhost '/': received '2000' but current is '1000'" (without the argument: "received
        # none but current is the value '1000' of type 'signedint'").
        conn = self.connect()
        ch = conn.channel()
        q = self.declare(ch, "redeclare", {"x-message-ttl": 1000})
        for arguments in ({"x-message-ttl": 2000}, None):
            with self.subTest(arguments=arguments):
                with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                    conn.channel().queue_declare(queue=q, exclusive=True, arguments=arguments)
                self.assert_refused(ctx, 406, "inequivalent arg", "x-message-ttl")
        ch = conn.channel()
        ch.queue_declare(queue=q, exclusive=True, arguments={"x-message-ttl": 1000})
        ch.queue_declare(queue=q, passive=True)

        plain = self.declare(ch, "redeclare")
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            conn.channel().queue_declare(queue=plain, exclusive=True,
                                         arguments={"x-max-length": 2})
        self.assert_refused(ctx, 406, "inequivalent arg", "x-max-length")

        # A classic queue's mode and version count too, from RabbitMQ's lists of values.
        lazy = self.declare(ch, "redeclare", {"x-queue-mode": "lazy", "x-queue-version": 2})
        for arguments, key in (({"x-queue-mode": "default", "x-queue-version": 2},
                                "x-queue-mode"),
                               ({"x-queue-mode": "lazy", "x-queue-version": 1},
                                "x-queue-version")):
            with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                conn.channel().queue_declare(queue=lazy, exclusive=True, arguments=arguments)
            self.assert_refused(ctx, 406, "inequivalent arg", key)


class ExpiryCountsTest(QueueArgsTestCase):
    """Message counts (queue.declare-ok and basic.get-ok) follow expiry."""

    def test_counts_drop_as_messages_expire(self):
        _, ch = self.publisher()
        q = self.declare(ch, "counts")
        for i in range(2):
            ch.basic_publish("", q, b"brief %d" % i, pika.BasicProperties(expiration="600"))
        for i in range(2):
            ch.basic_publish("", q, b"lasting %d" % i)
        self.assertEqual(self.count(ch, q), 4)
        self.assertEqual(self.wait_count(ch, q, 2), 2)
        method, _, body = ch.basic_get(q, auto_ack=True)
        self.assertEqual((body, method.message_count), (b"lasting 0", 1))
        method, _, body = ch.basic_get(q, auto_ack=True)
        self.assertEqual((body, method.message_count), (b"lasting 1", 0))


class PriorityQueueTest(QueueArgsTestCase):
    """x-max-priority: ready messages leave highest priority first, in order of arrival within
    one priority. A priority above the maximum counts as the maximum, a message without one
    as 0; the property itself is delivered as published."""

    def priority_queue(self, ch, max_priority=5, **more):
        return self.declare(ch, "prio", dict(more, **{"x-max-priority": max_priority}))

    def publish(self, ch, queue, messages):
        """Publishes (body, priority) pairs in order; priority None leaves the property out."""
        for body, priority in messages:
            ch.basic_publish("", queue, body, pika.BasicProperties(priority=priority))

    def test_basic_get_takes_the_highest_priority_first(self):
        _, ch = self.publisher()
        q = self.priority_queue(ch, 5)
        self.publish(ch, q, [(b"a0", None), (b"b1", 1), (b"c5", 5), (b"d9", 9), (b"e1", 1),
                             (b"f0", 0), (b"g5", 5), (b"h3", 3)])
        self.assertEqual(self.count(ch, q), 8)
        got = []
        for _ in range(9):
            method, props, body = ch.basic_get(q, auto_ack=True)
            if method is None:
                break
            got.append((body, props.priority, method.message_count))
        # d9 queues as a 5, behind c5; a0 (no property) and f0 share the band of 0.
        self.assertEqual(got, [(b"c5", 5, 7), (b"d9", 9, 6), (b"g5", 5, 5), (b"h3", 3, 4),
                               (b"b1", 1, 3), (b"e1", 1, 2), (b"a0", None, 1), (b"f0", 0, 0)])

    def test_consumer_with_prefetch_one_gets_the_highest_ready_each_time(self):
        conn, ch = self.publisher()
        q = self.priority_queue(ch, 9)
        self.publish(ch, q, [(b"a1", 1), (b"b5", 5), (b"c1", 1), (b"d5", 5), (b"e", None)])
        ch.basic_qos(prefetch_count=1)
        got = []
        ch.basic_consume(q, lambda c, m, p, b: got.append((m.delivery_tag, b)))
        self.assertTrue(self.pump(conn, lambda: got), "the consumer got nothing")
        # Published while b5 is unacked: it overtakes everything still waiting.
        self.publish(ch, q, [(b"z9", 9)])
        for n in range(2, 7):
            ch.basic_ack(got[-1][0])
            self.assertTrue(self.pump(conn, lambda: len(got) >= n),
                            "delivery %d did not come: %r" % (n, got))
        ch.basic_ack(got[-1][0])
        self.idle(conn, 0.2)
        self.assertEqual([b for _, b in got], [b"b5", b"z9", b"d5", b"a1", b"c1", b"e"])
        self.assertEqual(self.count(ch, q), 0)

    def test_requeued_message_goes_back_to_its_place(self):
        # Back in its own priority, ahead of what arrived after it there, and still behind
        # every higher priority; basic.reject and basic.nack alike.
        _, ch = self.publisher()
        q = self.priority_queue(ch, 5)
        self.publish(ch, q, [(b"hi1", 5), (b"hi2", 5), (b"lo1", 1), (b"lo2", 1)])
        tags = {}
        for _ in range(3):
            method, _, body = ch.basic_get(q)
            tags[body] = method.delivery_tag
        self.assertEqual(sorted(tags), [b"hi1", b"hi2", b"lo1"])
        self.publish(ch, q, [(b"hi3", 5)])
        ch.basic_reject(tags[b"lo1"], requeue=True)
        ch.basic_reject(tags[b"hi2"], requeue=True)
        ch.basic_nack(tags[b"hi1"], multiple=False, requeue=True)
        got = []
        for _ in range(6):
            method, _, body = ch.basic_get(q, auto_ack=True)
            if method is None:
                break
            got.append((body, method.redelivered))
        self.assertEqual(got, [(b"hi1", True), (b"hi2", True), (b"hi3", False),
                               (b"lo1", True), (b"lo2", False)])

    def test_drop_head_drops_the_highest_priority(self):
        # RabbitMQ 3.10 drops the head, the message that would be delivered next: in a
        # priority queue the highest priority one, so a newcomer above all the others is
        # dropped at once. Dead-lettering shows what was dropped, in order.
        conn, ch = self.publisher()
        dlx, dlq = self.dead_letter_target(ch)
        q = self.priority_queue(ch, 5, **{"x-max-length": 3, "x-dead-letter-exchange": dlx})
        self.publish(ch, q, [(b"a1", 1), (b"b1", 1), (b"c5", 5), (b"d5", 5), (b"e0", None),
                             (b"f3", 3), (b"g9", 9)])
        self.assertEqual(self.wait_count(ch, dlq, 4), 4)
        self.assertEqual(self.count(ch, q), 3)
        self.assertEqual(self.get_all(ch, q), [b"a1", b"b1", b"e0"])
        dropped = []
        for _ in range(4):
            _, props, body = ch.basic_get(dlq, auto_ack=True)
            dropped.append(body)
            self.assert_x_death(props, [{"count": 1, "reason": "maxlen", "queue": q}])
        self.assertEqual(dropped, [b"c5", b"d5", b"f3", b"g9"])

    def test_messages_expire_in_every_priority(self):
        _, ch = self.publisher()
        q = self.priority_queue(ch, 5, **{"x-message-ttl": 200})
        self.publish(ch, q, [(b"low", None), (b"high", 5), (b"mid", 3)])
        ch.basic_publish("", q, b"brief", pika.BasicProperties(priority=1, expiration="100"))
        self.assertEqual(self.count(ch, q), 4)
        self.assertEqual(self.wait_count(ch, q, 0), 0)
        self.assertIsNone(ch.basic_get(q, auto_ack=True)[0])

    def test_invalid_max_priority_is_refused_with_406(self):
        # RabbitMQ: "PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'q' in vhost
        # '/': {value_negative,-1}", "... {max_value_exceeded,256}" and "... \"expected
        # integer, got longstr\"" (a bool: "got bool"). 0 and 255 are accepted.
        conn = self.connect()
        for value in (-1, 256, "5", True):
            with self.subTest(value=value):
                q = unique("prio-bad")
                with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                    conn.channel().queue_declare(queue=q, arguments={"x-max-priority": value})
                self.assert_refused(ctx, 406, "x-max-priority")
                with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                    conn.channel().queue_declare(queue=q, passive=True)
                self.assert_refused(ctx, 404)   # nothing was created
        ch = conn.channel()
        for value in (0, 255):
            self.declare(ch, "prio-edge", {"x-max-priority": value})

    def test_redeclare_with_another_max_priority_is_refused(self):
        # RabbitMQ: "PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'q' in
        # vhost '/': received '6' but current is '5'" ("received none but current is the value
        # '5' of type 'signedint'" without it; "received the value '5' of type 'signedint' but
        # current is none" on a plain queue).
        conn = self.connect()
        ch = conn.channel()
        q = self.priority_queue(ch, 5)
        for arguments in ({"x-max-priority": 6}, None):
            with self.subTest(arguments=arguments):
                with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                    conn.channel().queue_declare(queue=q, exclusive=True, arguments=arguments)
                self.assert_refused(ctx, 406, "inequivalent arg", "x-max-priority")
        ch.queue_declare(queue=q, exclusive=True, arguments={"x-max-priority": 5})
        plain = self.declare(ch, "plain")
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            conn.channel().queue_declare(queue=plain, exclusive=True,
                                         arguments={"x-max-priority": 5})
        self.assert_refused(ctx, 406, "inequivalent arg", "x-max-priority")


class SingleActiveConsumerTest(QueueArgsTestCase):
    """x-single-active-consumer: of a queue's consumers only the first registered gets
    messages; when it cancels or its connection goes, the next registered takes over. Each
    consumer has a connection of its own; the queue is shared, so not exclusive."""

    def sac_queue(self, ch, prefix="sac"):
        q = self.declare(ch, prefix, {"x-single-active-consumer": True}, exclusive=False)
        self.addCleanup(self.delete_quietly, q)
        return q

    def consumers(self, queue, n, prefetch=2):
        """n consumers of queue, registered one after the other (basic_consume waits for
        consume-ok): a list of dicts with conn, ch, tag and got, the (method, body) pairs
        delivered to it."""
        out = []
        for _ in range(n):
            conn = self.connect()
            ch = conn.channel()
            ch.basic_qos(prefetch_count=prefetch)
            got = []
            tag = ch.basic_consume(queue, lambda c, m, p, b, got=got: got.append((m, b)))
            out.append({"conn": conn, "ch": ch, "tag": tag, "got": got})
        return out

    def pump_all(self, consumers, until, timeout=5.0):
        """Processes events on every open consumer connection until until() or timeout."""
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() >= deadline:
                return until()
            for c in consumers:
                if c["conn"].is_open:
                    c["conn"].process_data_events(time_limit=0.01)
        return True

    def first_has_two(self, messages):
        """A single-active-consumer queue with three consumers (prefetch 2), `messages`
        published to it (m0, m1, ...), once the first consumer got two: (channel, queue,
        consumers)."""
        _, ch = self.publisher()
        q = self.sac_queue(ch)
        cs = self.consumers(q, 3)
        for i in range(messages):
            ch.basic_publish("", q, b"m%d" % i)
        self.assertTrue(self.pump_all(cs, lambda: len(cs[0]["got"]) >= 2))
        return ch, q, cs

    def bodies(self, consumer):
        return [b for _, b in consumer["got"]]

    def test_only_the_first_registered_consumer_gets_messages(self):
        ch, q, cs = self.first_has_two(5)
        first, second, third = cs
        # The others have credit, yet the rest waits in the queue for the active one.
        self.pump_all(cs, lambda: False, timeout=0.3)
        self.assertEqual(self.bodies(first), [b"m0", b"m1"])
        self.assertEqual((second["got"], third["got"]), ([], []))
        self.assertEqual(self.count(ch, q), 3)
        first["ch"].basic_ack(first["got"][-1][0].delivery_tag, multiple=True)
        self.assertTrue(self.pump_all(cs, lambda: len(first["got"]) >= 4))
        self.pump_all(cs, lambda: False, timeout=0.2)
        self.assertEqual(self.bodies(first), [b"m0", b"m1", b"m2", b"m3"])
        self.assertEqual((second["got"], third["got"]), ([], []))
        self.assertEqual(self.count(ch, q), 1)

    def test_next_consumer_takes_over_when_the_active_one_cancels(self):
        # The next registered becomes active at basic.cancel, while the cancelled one still
        # holds unacked messages; those stay with it (its channel can still ack or reject
        # them), and one it rejects goes back to its place, ahead of later messages, for the
        # new active consumer. The queue is empty at the cancel: RabbitMQ 3.10.8 does not
        # hand messages already waiting to the new active consumer until something else
        # (a requeue, an ack that frees its prefetch, a new consumer) makes the queue deliver
        # again; later versions deliver at once. The first has no credit left when it
        # cancels, so nothing is on the way to it.
        ch, q, cs = self.first_has_two(2)
        first, second, third = cs
        first["ch"].basic_cancel(first["tag"])
        for i in range(2, 5):
            ch.basic_publish("", q, b"m%d" % i)
        self.assertTrue(self.pump_all(cs, lambda: len(second["got"]) >= 2),
                        "the second consumer did not take over")
        self.assertEqual(self.bodies(second), [b"m2", b"m3"])
        self.assertEqual(self.count(ch, q), 1)
        first["ch"].basic_ack(first["got"][0][0].delivery_tag)
        first["ch"].basic_reject(first["got"][1][0].delivery_tag, requeue=True)
        # m1 back in the queue (beside m4) before the second consumer's ack makes room: the
        # two connections' frames would otherwise race.
        self.assertTrue(wait_until(lambda: self.count(ch, q) == 2))
        second["ch"].basic_ack(second["got"][-1][0].delivery_tag, multiple=True)
        self.assertTrue(self.pump_all(cs, lambda: len(second["got"]) >= 4))
        self.pump_all(cs, lambda: False, timeout=0.2)
        self.assertEqual([(b, m.redelivered) for m, b in second["got"][2:]],
                         [(b"m1", True), (b"m4", False)])
        self.assertEqual(self.bodies(first), [b"m0", b"m1"])
        self.assertEqual(third["got"], [])
        self.assertEqual(self.count(ch, q), 0)

    def test_unacked_messages_of_a_closed_connection_go_to_the_next_consumer(self):
        ch, q, cs = self.first_has_two(3)
        first, second, third = cs
        first["conn"].close()
        # pika cancels its consumers before it closes their channel. RabbitMQ 3.10.8 then
        # leaves the waiting m2 in the queue until the channel's unacked m0 and m1 come back
        # (see the cancel test above), so the second consumer sees m0, m1, m2; warrend hands
        # m2 on at the cancel, as later RabbitMQ versions do, and m0, m1 follow. Either way
        # the second consumer gets all three, the requeued ones marked redelivered.
        self.assertTrue(self.pump_all(cs, lambda: len(second["got"]) >= 2),
                        "the second consumer did not take over")
        second["ch"].basic_ack(second["got"][-1][0].delivery_tag, multiple=True)
        self.assertTrue(self.pump_all(cs, lambda: len(second["got"]) >= 3))
        self.pump_all(cs, lambda: False, timeout=0.2)
        self.assertEqual(sorted((b, m.redelivered) for m, b in second["got"]),
                         [(b"m0", True), (b"m1", True), (b"m2", False)])
        self.assertEqual(third["got"], [])

    @unittest.skipIf(EXTERNAL, "RabbitMQ 3.10.8 does not deliver waiting messages at a cancel")
    def test_waiting_messages_go_to_the_next_consumer_at_the_cancel(self):
        ch, q, cs = self.first_has_two(4)
        first, second, third = cs
        first["ch"].basic_cancel(first["tag"])
        # Nothing else happens to the queue: the cancel alone makes the second active and
        # hands it what waits.
        self.assertTrue(self.pump_all(cs, lambda: len(second["got"]) >= 2),
                        "the waiting messages stayed in the queue")
        self.assertEqual(self.bodies(second), [b"m2", b"m3"])
        self.assertEqual(third["got"], [])

    def test_non_bool_value_is_refused_with_406(self):
        # RabbitMQ: "PRECONDITION_FAILED - invalid arg 'x-single-active-consumer' for queue
        # 'q' in vhost '/': {unacceptable_type,longstr}" ("{unacceptable_type,signedint}" for
        # a number).
        conn = self.connect()
        for value in ("true", 1):
            with self.subTest(value=value):
                q = unique("sac-bad")
                with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                    conn.channel().queue_declare(
                        queue=q, arguments={"x-single-active-consumer": value})
                self.assert_refused(ctx, 406, "x-single-active-consumer")
                with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                    conn.channel().queue_declare(queue=q, passive=True)
                self.assert_refused(ctx, 404)

    def test_redeclare_with_the_flag_different_is_refused(self):
        # RabbitMQ: "PRECONDITION_FAILED - inequivalent arg 'x-single-active-consumer' for
        # queue 'q' in vhost '/': received 'false' but current is 'true'"; false is not the
        # same as leaving the argument out ("received the value 'false' of type 'bool' but
        # current is none").
        conn = self.connect()
        ch = conn.channel()
        q = self.declare(ch, "sac-re", {"x-single-active-consumer": True})
        for arguments in ({"x-single-active-consumer": False}, None):
            with self.subTest(arguments=arguments):
                with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                    conn.channel().queue_declare(queue=q, exclusive=True, arguments=arguments)
                self.assert_refused(ctx, 406, "inequivalent arg", "x-single-active-consumer")
        ch.queue_declare(queue=q, exclusive=True, arguments={"x-single-active-consumer": True})
        plain = self.declare(ch, "plain")
        for value in (False, True):
            with self.subTest(plain=value):
                with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                    conn.channel().queue_declare(queue=plain, exclusive=True,
                                                 arguments={"x-single-active-consumer": value})
                self.assert_refused(ctx, 406, "inequivalent arg", "x-single-active-consumer")


@unittest.skipIf(EXTERNAL, "warrend's /metrics (RabbitMQ serves it from a plugin's own port)")
class DeadLetterMetricsTest(QueueArgsTestCase):
    """/metrics has RabbitMQ's global dead-letter counters,
    rabbitmq_global_messages_dead_lettered_{expired,rejected,maxlen}_total, labelled with
    queue_type and dead_letter_strategy: at_most_once for queues with a dead-letter exchange,
    disabled for what queues without one dropped."""

    REASONS = ("expired", "rejected", "maxlen")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.api = Api(*cls.broker.wait_listener("http"))

    def counters(self):
        samples = self.api.metrics()
        return {(reason, strategy): sample(
                    samples, "rabbitmq_global_messages_dead_lettered_%s_total" % reason,
                    queue_type="rabbit_classic_queue", dead_letter_strategy=strategy)
                for reason in self.REASONS for strategy in ("at_most_once", "disabled")}

    def test_counters_by_reason_and_strategy(self):
        before = self.counters()
        self.assertNotIn(None, before.values(), "a series is missing: %r" % before)
        conn, ch = self.publisher()
        dlx, _ = self.dead_letter_target(ch)
        with_dlx = {"x-dead-letter-exchange": dlx}
        expiring = self.declare(ch, "m-ttl", dict(with_dlx, **{"x-message-ttl": 50}))
        for _ in range(2):
            ch.basic_publish("", expiring, b"x")
        short = self.declare(ch, "m-len", {"x-max-length": 1})
        for _ in range(3):
            ch.basic_publish("", short, b"x")
        refusing = self.declare(ch, "m-refuse", dict(
            with_dlx, **{"x-max-length": 0, "x-overflow": "reject-publish-dlx"}))
        with self.assertRaises(pika.exceptions.NackError):
            ch.basic_publish("", refusing, b"x")
        for queue, settle in ((self.declare(ch, "m-rej", with_dlx), "reject"),
                              (self.declare(ch, "m-nack"), "nack")):
            ch.basic_publish("", queue, b"x")
            method, _, _ = self.wait_get(conn, ch, queue, auto_ack=False)
            if settle == "reject":
                ch.basic_reject(method.delivery_tag, requeue=False)
            else:
                ch.basic_nack(method.delivery_tag, requeue=False)
        want = {("expired", "at_most_once"): 2, ("expired", "disabled"): 0,
                ("rejected", "at_most_once"): 1, ("rejected", "disabled"): 1,
                ("maxlen", "at_most_once"): 1, ("maxlen", "disabled"): 2}
        last = [None]

        def check():
            now = self.counters()
            last[0] = {k: now[k] - before[k] for k in want}
            return last[0] == want
        self.assertTrue(wait_until(check, timeout=10, interval=0.2), last[0])


@unittest.skipIf(EXTERNAL and not os.environ.get("WARREN_TEST_HTTP"),
                 "needs the external broker's management API (WARREN_TEST_HTTP)")
class ManagementApiTest(QueueArgsTestCase):
    """The management API and these arguments. /api/consumers shows which consumer of a
    single-active-consumer queue is active: "active" true with activity_status
    "single_active", the others false and "waiting"; a plain queue's consumer is "up".
    RabbitMQ's management plugin refreshes this every few seconds (5 s by default), hence the
    long polls. The test publish refuses an invalid expiration as basic.publish does."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.api = Api(*cls.broker.wait_listener("http"))

    def activity(self, *queues):
        """{consumer tag: (active, activity_status)} for the consumers of the queues."""
        return {c["consumer_tag"]: (c["active"], c["activity_status"])
                for c in self.api.get("/api/consumers/" + quote("/"))
                if c["queue"]["name"] in queues}

    def wait_activity(self, want, *queues):
        """Polls until the queues' consumers are exactly `want`; returns the last view."""
        last = [None]

        def check():
            last[0] = self.activity(*queues)
            return last[0] == want
        wait_until(check, timeout=15, interval=0.25)
        return last[0]

    def test_publish_with_an_invalid_expiration_is_a_400(self):
        # The API's test publish checks the expiration property as basic.publish does.
        q = self.declare(self.channel(), "api-exp")
        path = "/api/exchanges/%s/amq.default/publish" % quote("/")
        body = {"routing_key": q, "payload": "x", "payload_encoding": "string",
                "properties": {"expiration": "soon"}}
        status, parsed, raw, _ = self.api.call("POST", path, body=body)
        self.assertEqual(status, 400, raw)
        body["properties"]["expiration"] = "60000"
        status, parsed, raw, _ = self.api.call("POST", path, body=body)
        self.assertEqual((status, parsed), (200, {"routed": True}), raw)

    def test_activity_status_follows_the_active_consumer(self):
        ch = self.channel()
        q = self.declare(ch, "sac-api", {"x-single-active-consumer": True}, exclusive=False)
        self.addCleanup(self.delete_quietly, q)
        plain = self.declare(ch, "plain-api")
        ch.basic_consume(plain, lambda c, m, p, b: None, consumer_tag="plain")
        chans = {}
        for tag in ("first", "second", "third"):
            chans[tag] = self.channel()
            chans[tag].basic_consume(q, lambda c, m, p, b: None, consumer_tag=tag)
        waiting = (False, "waiting")
        want = {"plain": (True, "up"), "first": (True, "single_active"),
                "second": waiting, "third": waiting}
        self.assertEqual(self.wait_activity(want, q, plain), want)
        chans["first"].basic_cancel("first")
        want = {"second": (True, "single_active"), "third": waiting}
        self.assertEqual(self.wait_activity(want, q), want)


@unittest.skipIf(EXTERNAL, "needs warrend's fault injection")
class CrashRestartTest(QueueArgsTestCase):
    """A durable queue restarted by its supervisor after a crash (README "Supervision") reads
    its messages back with their TTL in force."""

    broker_args = ("--fault-injection",)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.api = Api(*cls.broker.wait_listener("http"))

    def test_reloaded_messages_expire_without_anyone_touching_the_queue(self):
        # The restarted queue must set the timer for the reloaded head. Without it the message
        # stays in the queue, never dead-lettered, until something (a publish, a get, a
        # declare) makes the queue look at its head: nothing here touches it after the crash.
        conn, ch = self.publisher()
        dlx, dlq, q = unique("dlx-crash"), unique("dlq-crash"), unique("ttl-crash")
        ch.exchange_declare(exchange=dlx, exchange_type="fanout", durable=True)
        self.addCleanup(lambda: self.channel().exchange_delete(dlx))
        for name, arguments in ((dlq, None),
                                (q, {"x-message-ttl": 500, "x-dead-letter-exchange": dlx})):
            ch.queue_declare(queue=name, durable=True, arguments=arguments)
            self.addCleanup(self.delete_quietly, name)
        ch.queue_bind(queue=dlq, exchange=dlx)
        ch.basic_publish("", q, b"outlives its queue", pika.BasicProperties(delivery_mode=2))
        status, _, raw, _ = self.api.call(
            "POST", "/api/debug/crash/queue/%s/%s" % (quote("/"), quote(q)))
        self.assertEqual(status, 204, raw)
        # The log says the message was still there when the queue read its file back (had it
        # expired before the crash, this test would prove nothing).
        reloaded = "queue '%s' in vhost '/': reloaded 1 message(s)" % q
        self.assertTrue(wait_until(lambda: reloaded in self.broker.log_text()),
                        "no %r in the log\n%s" % (reloaded, self.broker.log_tail(3000)))
        got = self.wait_get(conn, ch, dlq, timeout=5.0)
        self.assertIsNotNone(got, "the reloaded message was not dead-lettered after its TTL")
        _, props, body = got
        self.assertEqual(body, b"outlives its queue")
        self.assert_x_death(props, [{"count": 1, "reason": "expired", "queue": q}])


@unittest.skipIf(EXTERNAL and not os.environ.get("WARREN_TEST_STOMP"),
                 "needs the external broker's STOMP port (WARREN_TEST_STOMP)")
class StompDeadLetterTest(StompTestCase):
    """Dead-lettered messages are ordinary messages for the other protocol too."""

    def test_expired_message_reaches_a_stomp_subscriber_of_the_dead_letter_queue(self):
        target = self.queue_name("dl-stomp")
        conn = self.connect()
        ch = conn.channel()
        ch.confirm_delivery()
        self.declare_stomp_queue(ch, target)
        src = unique("dl-src")
        ch.queue_declare(queue=src, exclusive=True, arguments={
            "x-message-ttl": 150, "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": target})
        st = self.raw("1.2")
        st.receipt("SUBSCRIBE", {"destination": "/amq/queue/" + target, "id": "dl"})
        ch.basic_publish("", src, b"expired into STOMP",
                         pika.BasicProperties(content_type="text/plain"))
        msg = st.expect("MESSAGE")
        self.assertEqual(msg.body, b"expired into STOMP")
        self.assertEqual(msg.header("subscription"), "dl")
        self.assertEqual(msg.header("x-first-death-reason"), "expired", msg)
        self.assertEqual(msg.header("x-first-death-queue"), src, msg)


class StompExpirationTest(StompTestCase):
    """A STOMP SEND's expiration header is the message's TTL, checked as an AMQP publish's
    expiration is: a value that is not one is an ERROR, also inside a transaction."""

    def test_expiration_header_expires_the_message(self):
        q = self.queue_name("stomp-exp")
        conn = self.connect()
        ch = conn.channel()
        self.declare_stomp_queue(ch, q)
        st = self.raw("1.2")
        st.receipt("SEND", {"destination": "/amq/queue/" + q, "expiration": "100"}, b"brief")
        st.receipt("SEND", {"destination": "/amq/queue/" + q}, b"kept")
        self.assertTrue(wait_until(
            lambda: ch.queue_declare(queue=q, passive=True).method.message_count == 1))
        self.assertEqual(harness.get_all(ch, q), [b"kept"])

    @unittest.skipIf(EXTERNAL, "warrend's ERROR for a bad expiration header")
    def test_invalid_expiration_header_is_an_error(self):
        for transaction in (False, True):
            with self.subTest(transaction=transaction):
                st = self.raw("1.2")
                headers = {"destination": "/queue/" + unique("stomp-bad-exp"),
                           "expiration": "soon"}
                if transaction:
                    st.receipt("BEGIN", {"transaction": "t"})
                    headers["transaction"] = "t"
                st.send("SEND", headers, b"x")
                frame = st.expect("ERROR")
                self.assertIn("invalid expiration 'soon'", frame.body.decode(), frame)
                self.assertTrue(st.wait_closed(15), "connection not closed after the ERROR")


@unittest.skipIf(EXTERNAL, "needs its own warrend processes (restarts)")
class RestartTest(harness.RestartCase):
    """Queue arguments and dead-lettered messages across a graceful restart on the same
    data directory."""

    data_prefix = "warren-qargs-"

    def setUp(self):
        super().setUp()
        self.conns = []

    def start(self, *extra_args):
        return self.start_broker(*extra_args)

    def stop(self):
        """Closes this test's connections, then stops warrend (SIGTERM, clean exit)."""
        for conn in self.conns:
            close_quietly(conn)
        self.conns = []
        broker, self.running = self.running, None
        broker.stop()

    def connect(self, broker):
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            host=broker.host, port=broker.port, connection_attempts=1, socket_timeout=5,
            stack_timeout=10, blocked_connection_timeout=10))
        self.addCleanup(close_quietly, conn)
        self.conns.append(conn)
        return conn

    def count(self, ch, queue):
        return harness.message_count(ch, queue)

    def test_durable_queue_arguments_survive_a_restart(self):
        args = {"x-message-ttl": 300, "x-dead-letter-exchange": "dead", "x-max-length": 10}
        ch = self.connect(self.start()).channel()
        ch.exchange_declare("dead", "fanout", durable=True)
        ch.queue_declare("dead-letters", durable=True)
        ch.queue_bind("dead-letters", "dead")
        ch.queue_declare("timed", durable=True, arguments=args)
        self.stop()

        conn = self.connect(self.start())
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("timed", durable=True, arguments=args)   # equivalent: accepted
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            conn.channel().queue_declare("timed", durable=True,
                                         arguments=dict(args, **{"x-message-ttl": 500}))
        self.assertEqual(ctx.exception.reply_code, 406)
        self.assertIn("x-message-ttl", ctx.exception.reply_text)
        # The arguments are in force, not only remembered.
        ch.basic_publish("", "timed", b"expires after restart")
        self.assertTrue(wait_until(lambda: self.count(ch, "dead-letters") == 1))
        _, props, body = ch.basic_get("dead-letters", auto_ack=True)
        self.assertEqual(body, b"expires after restart")
        self.assertEqual(text(props.headers["x-first-death-reason"]), "expired")
        self.stop()

    def test_dead_lettered_persistent_messages_survive_a_restart(self):
        conn = self.connect(self.start())
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("dead-letters", durable=True)
        ch.queue_declare("work", durable=True, arguments={
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead-letters"})
        for i in range(3):
            ch.basic_publish("", "work", b"job %d" % i, pika.BasicProperties(delivery_mode=2))
        for _ in range(3):
            method, _, _ = ch.basic_get("work")
            ch.basic_reject(method.delivery_tag, requeue=False)
        self.assertTrue(wait_until(lambda: self.count(ch, "dead-letters") == 3))
        self.stop()

        ch = self.connect(self.start()).channel()
        self.assertEqual(self.count(ch, "work"), 0)
        for i in range(3):
            method, props, body = ch.basic_get("dead-letters", auto_ack=True)
            self.assertIsNotNone(method, "dead-lettered message %d lost in the restart" % i)
            self.assertEqual(body, b"job %d" % i)
            self.assertEqual(props.delivery_mode, 2)
            self.assertEqual(text(props.headers["x-death"][0]["reason"]), "rejected")
            self.assertEqual(text(props.headers["x-first-death-queue"]), "work")
        self.stop()

    def publish_stale(self, ttl):
        """A started warrend with a durable queue "timed" (x-message-ttl `ttl`, dead-lettering
        to the durable queue "dead-letters") holding one confirmed persistent message."""
        ch = self.connect(self.start()).channel()
        ch.confirm_delivery()
        ch.queue_declare("dead-letters", durable=True)
        ch.queue_declare("timed", durable=True, arguments={
            "x-message-ttl": ttl, "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "dead-letters"})
        ch.basic_publish("", "timed", b"stale", pika.BasicProperties(delivery_mode=2))

    def assert_stale_dead_lettered(self, ch):
        self.assertTrue(wait_until(lambda: self.count(ch, "dead-letters") == 1))
        _, props, body = ch.basic_get("dead-letters", auto_ack=True)
        self.assertEqual(body, b"stale")
        self.assertEqual(text(props.headers["x-first-death-reason"]), "expired")

    def test_persisted_messages_in_a_ttl_queue_still_expire_after_a_restart(self):
        self.publish_stale(1000)
        self.stop()

        ch = self.connect(self.start()).channel()
        self.assertTrue(wait_until(lambda: self.count(ch, "timed") == 0, timeout=10),
                        "the message outlived its TTL across the restart")
        self.assert_stale_dead_lettered(ch)
        self.stop()

    def test_the_time_the_broker_was_down_counts_against_the_ttl(self):
        # The store keeps each persistent message's deadline, as RabbitMQ does: a message whose
        # TTL ran out while warrend was stopped is expired as the queue comes back, not given
        # a new TTL from the restart.
        self.publish_stale(1500)
        confirmed = time.monotonic()
        self.stop()
        time.sleep(max(0.0, confirmed + 2.0 - time.monotonic()))

        ch = self.connect(self.start()).channel()
        self.assertEqual(self.count(ch, "timed"), 0, "the TTL started again at the restart")
        self.assert_stale_dead_lettered(ch)
        self.stop()

    def test_durable_priority_queue_keeps_its_order_across_a_restart(self):
        # The order is the priority order, not the order of arrival; the message held unacked
        # at shutdown was requeued to its place (the head) and stays marked redelivered.
        # (RabbitMQ 3.10.8 across rabbitmqctl stop_app/start_app does the same.)
        args = {"x-max-priority": 5}
        conn = self.connect(self.start())
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("ranked", durable=True, arguments=args)
        for body, priority in [(b"a1", 1), (b"b5", 5), (b"c0", None), (b"d9", 9), (b"e1", 1)]:
            ch.basic_publish("", "ranked", body,
                             pika.BasicProperties(delivery_mode=2, priority=priority))
        self.assertEqual(ch.basic_get("ranked")[2], b"b5")   # not acked
        self.stop()

        conn = self.connect(self.start())
        ch = conn.channel()
        ch.confirm_delivery()
        self.assertEqual(self.count(ch, "ranked"), 5)
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            conn.channel().queue_declare("ranked", durable=True, arguments={"x-max-priority": 9})
        self.assertEqual(ctx.exception.reply_code, 406)
        self.assertIn("x-max-priority", ctx.exception.reply_text)
        ch.queue_declare("ranked", durable=True, arguments=args)
        # Still a priority queue: a new 5 goes behind the old ones, ahead of the rest.
        ch.basic_publish("", "ranked", b"f5", pika.BasicProperties(delivery_mode=2, priority=5))
        got = []
        for _ in range(7):
            method, _, body = ch.basic_get("ranked", auto_ack=True)
            if method is None:
                break
            got.append((body, method.redelivered))
        self.assertEqual(got, [(b"b5", True), (b"d9", False), (b"f5", False), (b"a1", False),
                               (b"e1", False), (b"c0", False)])
        self.stop()

    def test_paged_out_messages_of_a_ttl_queue_survive_a_restart(self):
        # With 1 MB of bodies in memory per queue, the 2nd and 3rd message are paged out to the
        # queue's file, at publish and again when it is read back at start-up. A recovered
        # message's deadline is now + x-message-ttl, here RabbitMQ's largest (ten years): a
        # deadline computed wrongly for paged-out messages would expire them at once and
        # delete them from the store.
        conf = os.path.join(self.data, "small-memory.conf")
        with open(conf, "w") as f:
            f.write("persistence.queue_memory_mb = 1\n")
        args = {"x-message-ttl": 315360000000}
        bodies = [b"%d" % i + b"p" * 600 * 1024 for i in range(3)]
        ch = self.connect(self.start("--config", conf)).channel()
        ch.confirm_delivery()
        ch.queue_declare("forever", durable=True, arguments=args)
        for body in bodies:
            ch.basic_publish("", "forever", body, pika.BasicProperties(delivery_mode=2))
        self.assertEqual(self.count(ch, "forever"), 3)
        self.stop()

        ch = self.connect(self.start("--config", conf)).channel()
        ch.queue_declare("forever", durable=True, arguments=args)   # equivalent: accepted
        self.assertEqual(self.count(ch, "forever"), 3)
        got = []
        for _ in range(4):
            method, _, body = ch.basic_get("forever", auto_ack=True)
            if method is None:
                break
            got.append(body)
        self.assertEqual([b[:1] for b in got], [b"0", b"1", b"2"])
        self.assertEqual(got, bodies)
        self.stop()

if __name__ == "__main__":
    unittest.main()
