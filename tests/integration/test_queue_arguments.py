"""Queue arguments and what follows from them, seen through pika: message TTL (x-message-ttl
and the per-message expiration property), queue expiry (x-expires), length limits
(x-max-length, x-max-length-bytes) with each x-overflow mode, dead-lettering
(x-dead-letter-exchange, x-dead-letter-routing-key) with the x-death header it adds, dead-letter
cycles, the validation of the arguments on declare and the message counts that expiry changes.

RabbitMQ 3.10 is the reference: every expectation here holds against it (run with
WARREN_TEST_BROKER=host:port). The restart tests need warrend processes of their own and are
skipped against an external broker; the STOMP test needs the broker's STOMP port
(WARREN_TEST_STOMP with an external broker).

The TTLs waited for are short (100-600 ms, 1 s across a restart), so waits are short too: a
wait_until poll where something can be polled, a fixed wait only where the check is that
something has not happened yet (or where looking would change the outcome, as a passive
declare renews an x-expires lease).
"""

import datetime
import os
import shutil
import tempfile
import time
import unittest

import pika
import pika.exceptions as pex

from harness import Broker, BrokerTestCase, close_quietly, unique, wait_until
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

    def count(self, ch, queue):
        return ch.queue_declare(queue=queue, passive=True).method.message_count

    def wait_count(self, ch, queue, n, timeout=5.0):
        """Polls the passive-declare count until it is n; returns the last count seen."""
        last = [None]

        def check():
            last[0] = self.count(ch, queue)
            return last[0] == n
        wait_until(check, timeout=timeout, interval=0.02)
        return last[0]

    def get_all(self, ch, queue, limit=100):
        """Bodies of all ready messages (auto-ack), bounded by limit."""
        bodies = []
        for _ in range(limit):
            method, _props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                break
            bodies.append(body)
        return bodies

    def wait_get(self, conn, ch, queue, timeout=5.0, auto_ack=True):
        """basic_get retried until a message comes: (method, properties, body) or None."""
        deadline = time.monotonic() + timeout
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=auto_ack)
            if method is not None:
                return method, props, body
            if time.monotonic() >= deadline:
                return None
            conn.process_data_events(time_limit=0.02)

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

    def test_invalid_expiration_closes_the_channel_with_406(self):
        # RabbitMQ: "PRECONDITION_FAILED - invalid expiration 'abc': no_integer" and
        # "... invalid expiration '-5': {value_negative,-5}".
        conn = self.connect()
        for value in ("abc", "-5"):
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

    def delete_quietly(self, name):
        conn = pika.BlockingConnection(self.params())
        try:
            conn.channel().queue_delete(name)
        except pex.ChannelClosedByBroker:
            pass
        finally:
            close_quietly(conn)

    def exists(self, conn, name):
        ch = conn.channel()
        try:
            ch.queue_declare(queue=name, passive=True)
        except pex.ChannelClosedByBroker as e:
            self.assertEqual(e.reply_code, 404, e)
            return False
        ch.close()
        return True

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
            ("x-expires", {"x-expires": 0}),
            ("x-expires", {"x-expires": -1}),
            ("x-max-length", {"x-max-length": -1}),
            ("x-max-length-bytes", {"x-max-length-bytes": -1}),
            ("x-overflow", {"x-overflow": "bogus"}),
            ("x-dead-letter-exchange", {"x-dead-letter-exchange": 5}),
            ("x-dead-letter-routing-key", {"x-dead-letter-routing-key": "k"}),
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


@unittest.skipIf(EXTERNAL, "needs its own warrend processes (restarts)")
class RestartTest(unittest.TestCase):
    """Queue arguments and dead-lettered messages across a graceful restart on the same
    data directory."""

    def setUp(self):
        self.data = tempfile.mkdtemp(prefix="warren-qargs-")
        self.addCleanup(shutil.rmtree, self.data, True)
        self.running = None
        self.conns = []

    def tearDown(self):
        if self.running is not None:
            self.running.stop_quietly()

    def start(self):
        self.running = Broker(binary=os.environ.get("WARREND"), data_dir=self.data).start()
        return self.running

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
        return ch.queue_declare(queue=queue, passive=True).method.message_count

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

    def test_persisted_messages_in_a_ttl_queue_still_expire_after_a_restart(self):
        ch = self.connect(self.start()).channel()
        ch.confirm_delivery()
        ch.queue_declare("dead-letters", durable=True)
        ch.queue_declare("timed", durable=True, arguments={
            "x-message-ttl": 1000, "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "dead-letters"})
        ch.basic_publish("", "timed", b"stale", pika.BasicProperties(delivery_mode=2))
        self.stop()

        ch = self.connect(self.start()).channel()
        self.assertTrue(wait_until(lambda: self.count(ch, "timed") == 0, timeout=10),
                        "the message outlived its TTL across the restart")
        self.assertTrue(wait_until(lambda: self.count(ch, "dead-letters") == 1))
        _, props, body = ch.basic_get("dead-letters", auto_ack=True)
        self.assertEqual(body, b"stale")
        self.assertEqual(text(props.headers["x-first-death-reason"]), "expired")
        self.stop()


if __name__ == "__main__":
    unittest.main()
