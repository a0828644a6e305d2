"""AMQP 0-9-1 semantics as seen through pika's BlockingConnection."""

import decimal
import socket
import time
import unittest

import amqp
import pika
import pika.exceptions as pex

import harness
from harness import BrokerTestCase, unique, wait_until


def close_quietly_amqp(conn):
    """Cleanup for a python3-amqp connection the test may have closed already."""
    try:
        conn.close()
    except Exception:  # cleanup only
        pass


class PikaTestCase(BrokerTestCase):

    def publisher(self):
        """A channel in confirm mode: basic_publish returns once the broker
        has routed (and enqueued) the message."""
        conn = self.connect()
        ch = conn.channel()
        ch.confirm_delivery()
        return conn, ch

    def get_all(self, ch, queue, limit=100):
        return harness.get_all(ch, queue, limit)

    def assert_closed_by_broker(self, ctx, code, text=None, text_prefix=None):
        exc = ctx.exception
        self.assertEqual(exc.reply_code, code, exc)
        if text is not None:
            self.assertEqual(exc.reply_text, text)
        if text_prefix is not None:
            self.assertTrue(exc.reply_text.startswith(text_prefix), exc)

    def queue_exists(self, name):
        """Passive declare on a fresh connection (an exclusive queue of another
        connection answers 405, which also means it exists)."""
        ch = self.connect().channel()
        try:
            ch.queue_declare(queue=name, passive=True)
            return True
        except pex.ChannelClosedByBroker as e:
            self.assertIn(e.reply_code, (404, 405), e)
            return e.reply_code == 405
        finally:
            ch.connection.close()

    def exchange_exists(self, name):
        ch = self.connect().channel()
        try:
            ch.exchange_declare(exchange=name, passive=True)
            return True
        except pex.ChannelClosedByBroker as e:
            self.assertEqual(e.reply_code, 404, e)
            return False
        finally:
            ch.connection.close()


class RoutingTest(PikaTestCase):

    def test_default_exchange_routes_by_queue_name(self):
        _, ch = self.publisher()
        q = ch.queue_declare(queue=unique("dflt"), exclusive=True).method.queue
        ch.basic_publish(exchange="", routing_key=q, body=b"direct to queue")
        ch.basic_publish(exchange="", routing_key=unique("no-such-queue"), body=b"dropped")
        self.assertEqual(self.get_all(ch, q), [b"direct to queue"])

    def test_binding_to_default_exchange_is_refused(self):
        ch = self.channel()
        q = ch.queue_declare(queue=unique("dflt"), exclusive=True).method.queue
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            ch.queue_bind(queue=q, exchange="", routing_key="x")
        self.assert_closed_by_broker(
            ctx, 403, text="ACCESS_REFUSED - operation not permitted on the default exchange")

    def test_fanout_delivers_a_copy_to_every_bound_queue(self):
        _, ch = self.publisher()
        ex = unique("fan")
        ch.exchange_declare(exchange=ex, exchange_type="fanout", auto_delete=True)
        queues = []
        for _ in range(3):
            q = ch.queue_declare(queue="", exclusive=True).method.queue
            ch.queue_bind(queue=q, exchange=ex, routing_key="ignored-%d" % len(queues))
            queues.append(q)
        ch.basic_publish(exchange=ex, routing_key="anything", body=b"broadcast")
        for q in queues:
            self.assertEqual(self.get_all(ch, q), [b"broadcast"], q)

    def test_direct_exchange_routes_by_exact_key(self):
        _, ch = self.publisher()
        ex = unique("direct")
        ch.exchange_declare(exchange=ex, exchange_type="direct", auto_delete=True)
        qa = ch.queue_declare(queue="", exclusive=True).method.queue
        qb = ch.queue_declare(queue="", exclusive=True).method.queue
        ch.queue_bind(queue=qa, exchange=ex, routing_key="a")
        ch.queue_bind(queue=qb, exchange=ex, routing_key="b")
        ch.queue_bind(queue=qb, exchange=ex, routing_key="a")
        ch.basic_publish(exchange=ex, routing_key="a", body=b"1")
        ch.basic_publish(exchange=ex, routing_key="b", body=b"2")
        ch.basic_publish(exchange=ex, routing_key="A", body=b"3")
        self.assertEqual(self.get_all(ch, qa), [b"1"])
        self.assertEqual(self.get_all(ch, qb), [b"1", b"2"])

    def test_topic_wildcards(self):
        _, ch = self.publisher()
        ex = unique("topic")
        ch.exchange_declare(exchange=ex, exchange_type="topic", auto_delete=True)
        q_hash = ch.queue_declare(queue="", exclusive=True).method.queue
        q_star = ch.queue_declare(queue="", exclusive=True).method.queue
        q_mid = ch.queue_declare(queue="", exclusive=True).method.queue
        ch.queue_bind(queue=q_hash, exchange=ex, routing_key="audit.#")
        ch.queue_bind(queue=q_star, exchange=ex, routing_key="audit.*")
        ch.queue_bind(queue=q_mid, exchange=ex, routing_key="*.irs.#")
        for key in ("audit.irs.corporate", "audit.irs", "audit", "auditing.irs", "x.irs"):
            ch.basic_publish(exchange=ex, routing_key=key, body=key.encode())
        self.assertEqual(self.get_all(ch, q_hash),
                         [b"audit.irs.corporate", b"audit.irs", b"audit"])
        self.assertEqual(self.get_all(ch, q_star), [b"audit.irs"])
        self.assertEqual(self.get_all(ch, q_mid),
                         [b"audit.irs.corporate", b"audit.irs", b"auditing.irs", b"x.irs"])

    def test_headers_exchange_all_and_any(self):
        _, ch = self.publisher()
        ex = unique("headers")
        ch.exchange_declare(exchange=ex, exchange_type="headers", auto_delete=True)
        q_all = ch.queue_declare(queue="", exclusive=True).method.queue
        q_any = ch.queue_declare(queue="", exclusive=True).method.queue
        match = {"format": "pdf", "type": "report"}
        ch.queue_bind(queue=q_all, exchange=ex, arguments=dict(match, **{"x-match": "all"}))
        ch.queue_bind(queue=q_any, exchange=ex, arguments=dict(match, **{"x-match": "any"}))
        cases = [
            (b"both", {"format": "pdf", "type": "report", "extra": 1}),
            (b"one", {"format": "pdf", "type": "log"}),
            (b"other", {"format": "zip"}),
            (b"none", None),
        ]
        for body, headers in cases:
            ch.basic_publish(exchange=ex, routing_key="",
                             properties=pika.BasicProperties(headers=headers), body=body)
        self.assertEqual(self.get_all(ch, q_all), [b"both"])
        self.assertEqual(self.get_all(ch, q_any), [b"both", b"one"])

    def test_headers_binding_with_an_unknown_x_match_is_refused(self):
        conn = self.connect()
        ch = conn.channel()
        ex = unique("headers-bad")
        ch.exchange_declare(exchange=ex, exchange_type="headers", auto_delete=True)
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        expected = "; expected all, any, all-with-x, or any-with-x"
        for value, text in (("bogus", 'Invalid x-match field value <<"bogus">>' + expected),
                            ("ANY", 'Invalid x-match field value <<"ANY">>' + expected),
                            ("", "Invalid x-match field value <<>>" + expected),
                            (5, "Invalid x-match field type signedint (value 5); "
                                "expected longstr")):
            for bind in ("queue", "exchange"):
                ch = conn.channel()
                with self.assertRaises(pex.ChannelClosedByBroker, msg=(value, bind)) as ctx:
                    arguments = {"x-match": value, "k": "v"}
                    if bind == "queue":
                        ch.queue_bind(queue=q, exchange=ex, arguments=arguments)
                    else:
                        ch.exchange_bind(destination="amq.fanout", source=ex,
                                         arguments=arguments)
                self.assert_closed_by_broker(ctx, 406, text="PRECONDITION_FAILED - " + text)
        # The four modes are taken; other exchange types do not look at x-match.
        ch = conn.channel()
        for mode in ("all", "any", "all-with-x", "any-with-x"):
            ch.queue_bind(queue=q, exchange=ex, arguments={"x-match": mode, "k": "v"})
        ch.queue_bind(queue=q, exchange="amq.direct", routing_key=q,
                      arguments={"x-match": "bogus"})
        # The exchange refuses the binding before the queue's owner is looked at.
        for value, code in (("bogus", 406), ("any", 405)):
            with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                self.channel().queue_bind(queue=q, exchange=ex, arguments={"x-match": value})
            self.assertEqual(ctx.exception.reply_code, code, ctx.exception)

    def test_exchange_to_exchange_binding(self):
        _, ch = self.publisher()
        src, dst = unique("e2e-src"), unique("e2e-dst")
        ch.exchange_declare(exchange=src, exchange_type="direct")
        self.addCleanup(lambda: self.channel().exchange_delete(exchange=src))
        ch.exchange_declare(exchange=dst, exchange_type="fanout", auto_delete=True)
        ch.exchange_bind(destination=dst, source=src, routing_key="k")
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        ch.queue_bind(queue=q, exchange=dst)
        ch.basic_publish(exchange=src, routing_key="k", body=b"via e2e")
        ch.basic_publish(exchange=src, routing_key="other", body=b"not routed")
        self.assertEqual(self.get_all(ch, q), [b"via e2e"])
        ch.exchange_unbind(destination=dst, source=src, routing_key="k")
        ch.basic_publish(exchange=src, routing_key="k", body=b"after unbind")
        self.assertEqual(self.get_all(ch, q), [])

    def test_auto_delete_source_exchange_goes_with_its_last_e2e_binding(self):
        ch = self.channel()
        src, dst = unique("e2e-src"), unique("e2e-dst")
        ch.exchange_declare(exchange=src, exchange_type="direct", auto_delete=True)
        ch.exchange_declare(exchange=dst, exchange_type="fanout")
        self.addCleanup(lambda: self.channel().exchange_delete(exchange=dst))
        ch.exchange_bind(destination=dst, source=src, routing_key="k")
        ch.exchange_unbind(destination=dst, source=src, routing_key="k")
        self.assertTrue(wait_until(lambda: not self.exchange_exists(src), timeout=5))
        self.assertTrue(self.exchange_exists(dst))

    def test_alternate_exchange_receives_unroutable(self):
        conn, ch = self.publisher()
        ae, main = unique("ae"), unique("main")
        ch.exchange_declare(exchange=ae, exchange_type="fanout", auto_delete=True)
        ch.exchange_declare(exchange=main, exchange_type="direct", auto_delete=True,
                            arguments={"alternate-exchange": ae})
        q_ae = ch.queue_declare(queue="", exclusive=True).method.queue
        q_main = ch.queue_declare(queue="", exclusive=True).method.queue
        ch.queue_bind(queue=q_ae, exchange=ae)
        ch.queue_bind(queue=q_main, exchange=main, routing_key="key")
        returned = []
        ch.add_on_return_callback(lambda *a: returned.append(a))
        ch.basic_publish(exchange=main, routing_key="key", body=b"routed")
        # Routed through the alternate exchange counts as routed: no basic.return.
        ch.basic_publish(exchange=main, routing_key="nokey", body=b"unroutable",
                         mandatory=True)
        self.assertEqual(self.get_all(ch, q_main), [b"routed"])
        self.assertEqual(self.get_all(ch, q_ae), [b"unroutable"])
        self.idle(conn, 0.2)
        self.assertEqual(returned, [])


class SenderSelectedTest(PikaTestCase):
    """RabbitMQ's sender-selected distribution: the CC and BCC headers (arrays of strings)
    add routing keys; each queue still gets one copy; BCC is taken off the message; a CC or
    BCC that is not an array is 406 "invalid message"."""

    def queues(self, ch, n):
        return [ch.queue_declare(queue=unique("ssd"), exclusive=True).method.queue
                for _ in range(n)]

    def test_default_exchange_cc_and_bcc(self):
        conn, ch = self.publisher()
        a, b, c = self.queues(ch, 3)
        missing = unique("missing")
        ch.basic_publish("", a, b"m", pika.BasicProperties(
            headers={"CC": [b, a, missing], "BCC": [c], "x": 1}))
        for q in (a, b, c):  # one copy each, by the publish's routing key, without BCC
            m, props, body = ch.basic_get(q, auto_ack=True)
            self.assertIsNotNone(m, q)
            self.assertEqual((body, m.routing_key, props.headers),
                             (b"m", a, {"CC": [b, a, missing], "x": 1}))
        self.assertEqual([self.get_all(ch, q) for q in (a, b, c)], [[], [], []])

    def test_exchanges_route_by_every_key(self):
        _, ch = self.publisher()
        a, b, c, d = self.queues(ch, 4)
        topic = unique("ssd-topic")
        ch.exchange_declare(topic, "topic", auto_delete=True)
        ch.queue_bind(a, topic, "main.#")
        ch.queue_bind(b, topic, "cc.*")
        ch.queue_bind(c, topic, "bcc.one")
        ch.queue_bind(d, topic, "#")  # matched by every key: one copy
        ch.basic_publish(topic, "main.k", b"t", pika.BasicProperties(
            headers={"CC": ["cc.x", "nothing.here"], "BCC": ["bcc.one"]}))
        for q in (a, b, c, d):
            self.assertEqual(self.get_all(ch, q), [b"t"], q)
        # Through an exchange-to-exchange binding, and to the alternate exchange.
        src, alt = unique("ssd-src"), unique("ssd-alt")
        ch.exchange_declare(alt, "direct", auto_delete=True)
        ch.exchange_declare(src, "direct", auto_delete=True, arguments={"alternate-exchange": alt})
        ch.exchange_bind(topic, src, "cc.y")
        ch.queue_bind(c, alt, "bcc.two")
        ch.basic_publish(src, "none", b"e", pika.BasicProperties(headers={"CC": ["cc.y"]}))
        ch.basic_publish(src, "none", b"alt", pika.BasicProperties(headers={"BCC": ["bcc.two"]}))
        self.assertEqual(self.get_all(ch, b), [b"e"])
        self.assertEqual(self.get_all(ch, c), [b"alt"])

    def test_confirms_mandatory_and_transactions(self):
        conn, ch = self.publisher()
        a, b = self.queues(ch, 2)
        returned = []
        ch.add_on_return_callback(lambda *args: returned.append(args[3]))
        # Confirmed once both queues have it; routed by CC alone: not returned.
        ch.basic_publish("", unique("none"), b"cc-only", pika.BasicProperties(
            headers={"CC": [a, b]}), mandatory=True)
        # No key names a queue: returned.
        with self.assertRaises(pex.UnroutableError):
            ch.basic_publish("", unique("none"), b"lost", pika.BasicProperties(
                headers={"CC": [unique("none")]}), mandatory=True)
        self.assertEqual([self.get_all(ch, q) for q in (a, b)], [[b"cc-only"], [b"cc-only"]])
        tx = self.channel()
        tx.tx_select()
        tx.basic_publish("", a, b"in-tx", pika.BasicProperties(headers={"BCC": [b]}))
        self.assertEqual([self.get_all(ch, q) for q in (a, b)], [[], []])
        tx.tx_commit()
        self.assertEqual([self.get_all(ch, q) for q in (a, b)], [[b"in-tx"], [b"in-tx"]])

    def test_dead_lettering_keeps_the_keys(self):
        _, ch = self.publisher()
        dlx = unique("ssd-dlx")
        ch.exchange_declare(dlx, "direct", auto_delete=True)
        by_key, by_cc, by_dl_key = self.queues(ch, 3)
        ch.queue_bind(by_key, dlx, "k")
        ch.queue_bind(by_cc, dlx, "c")
        ch.queue_bind(by_dl_key, dlx, "dl")
        # Without a dead-letter routing key the copy goes by the keys it was published with,
        # BCC's included; x-death names the routing key and CC's.
        src = ch.queue_declare(unique("ssd-src"), exclusive=True,
                               arguments={"x-dead-letter-exchange": dlx}).method.queue
        ch.queue_bind(src, "amq.direct", "k")
        ch.basic_publish("amq.direct", "k", b"d", pika.BasicProperties(
            headers={"CC": ["c"], "BCC": ["dl"]}))
        m = ch.basic_get(src)[0]
        ch.basic_reject(m.delivery_tag, requeue=False)
        for q in (by_key, by_cc, by_dl_key):
            got = harness.get_one(ch.connection, ch, q)
            self.assertIsNotNone(got, q)
            headers = got[1].headers
            self.assertEqual((got[2], headers["CC"], headers["x-death"][0]["routing-keys"]),
                             (b"d", ["c"], ["k", "c"]))
        # With one, that key alone, and CC is taken off.
        src2 = ch.queue_declare(unique("ssd-src"), exclusive=True, arguments={
            "x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "dl"}).method.queue
        ch.basic_publish("", src2, b"e", pika.BasicProperties(headers={"CC": ["k"]}))
        m = ch.basic_get(src2)[0]
        ch.basic_reject(m.delivery_tag, requeue=False)
        got = harness.get_one(ch.connection, ch, by_dl_key)
        self.assertIsNotNone(got)
        self.assertNotIn("CC", got[1].headers)
        self.assertEqual(got[1].headers["x-death"][0]["routing-keys"], [src2, "k"])
        self.assertEqual([self.get_all(ch, q) for q in (by_key, by_cc)], [[], []])

    def test_a_cc_or_bcc_that_is_not_an_array_is_refused(self):
        for headers, text in (
                ({"CC": "q"}, '{unacceptable_type_in_header,"CC",longstr}'),
                ({"CC": ["ok"], "BCC": {"a": 1}}, '{unacceptable_type_in_header,"BCC",table}')):
            ch = self.channel()
            with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                ch.basic_publish("amq.direct", "k", b"x", pika.BasicProperties(headers=headers))
                ch.queue_declare("", exclusive=True)
            self.assert_closed_by_broker(ctx, 406,
                                         text="PRECONDITION_FAILED - invalid message: " + text)
        # Elements that are not strings are passed over.
        _, ch = self.publisher()
        (a,) = self.queues(ch, 1)
        ch.basic_publish("", unique("none"), b"y", pika.BasicProperties(headers={"CC": [1, a]}))
        self.assertEqual(self.get_all(ch, a), [b"y"])


class PublishTest(PikaTestCase):

    def test_mandatory_unroutable_is_returned(self):
        conn = self.connect()
        ch = conn.channel()
        ex = unique("ret")
        ch.exchange_declare(exchange=ex, exchange_type="direct", auto_delete=True)
        returned = []
        ch.add_on_return_callback(lambda c, m, p, b: returned.append((m, p, b)))
        ch.basic_publish(exchange=ex, routing_key="nobody", body=b"bounce",
                         properties=pika.BasicProperties(message_id="m-1"),
                         mandatory=True)
        self.assertTrue(self.pump(conn, lambda: returned), "no basic.return")
        method, props, body = returned[0]
        self.assertEqual((method.reply_code, method.reply_text), (312, "NO_ROUTE"))
        self.assertEqual((method.exchange, method.routing_key), (ex, "nobody"))
        self.assertEqual(body, b"bounce")
        self.assertEqual(props.message_id, "m-1")
        # Without mandatory an unroutable message is silently dropped.
        ch.basic_publish(exchange=ex, routing_key="nobody", body=b"dropped")
        self.idle(conn, 0.3)
        self.assertEqual(len(returned), 1)

    def test_mandatory_unroutable_with_confirms_raises(self):
        _, ch = self.publisher()
        with self.assertRaises(pex.UnroutableError) as ctx:
            ch.basic_publish(exchange="", routing_key=unique("nobody"), body=b"x",
                             mandatory=True)
        self.assertEqual(len(ctx.exception.messages), 1)
        self.assertEqual(ctx.exception.messages[0].method.reply_code, 312)
        self.assertEqual(ctx.exception.messages[0].body, b"x")
        # The channel is still usable.
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        ch.basic_publish(exchange="", routing_key=q, body=b"ok", mandatory=True)

    def test_publisher_confirms(self):
        _, ch = self.publisher()
        q = ch.queue_declare(queue=unique("confirm"), exclusive=True).method.queue
        for i in range(200):
            ch.basic_publish(exchange="", routing_key=q, body=b"%d" % i)  # raises if nacked
        self.assertEqual(ch.queue_declare(queue=q, passive=True).method.message_count, 200)

    def test_publish_to_missing_exchange_closes_only_that_channel(self):
        conn = self.connect()
        bad = conn.channel()
        good = conn.channel()
        missing = unique("missing-ex")
        bad.basic_publish(exchange=missing, routing_key="k", body=b"x")
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            bad.queue_declare(queue="", exclusive=True)   # a synchronous call after it
        self.assert_closed_by_broker(ctx, 404,
                                     text="NOT_FOUND - no exchange '%s' in vhost '/'"
                                     % missing)
        self.assertTrue(bad.is_closed)
        self.assertTrue(conn.is_open)
        q = good.queue_declare(queue="", exclusive=True).method.queue
        good.basic_publish(exchange="", routing_key=q, body=b"fine")
        self.assertTrue(wait_until(lambda: good.basic_get(q, auto_ack=True)[2] == b"fine",
                                   timeout=2))
        third = conn.channel()
        third.queue_declare(queue=q, passive=True)

    def test_user_id_must_match_authenticated_user(self):
        ch = self.channel()
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        ch.basic_publish(exchange="", routing_key=q, body=b"x",
                         properties=pika.BasicProperties(user_id="mallory"))
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            ch.queue_declare(queue=q, passive=True)
        self.assert_closed_by_broker(
            ctx, 406,
            text="PRECONDITION_FAILED - user_id property set to 'mallory' but "
                 "authenticated user was 'guest'")

    def test_message_properties_round_trip(self):
        _, ch = self.publisher()
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        headers = {
            "str": "value",
            "int": 42,
            "neg": -7,
            "big": 1 << 40,
            "bool": True,
            "decimal": decimal.Decimal("12.345"),
            "bytes": b"\x00\x01binary",
            "void": None,
            "list": [1, "two", False],
            "nested": {"a": {"b": [1, {"c": "deep"}]}, "n": 3},
        }
        props = pika.BasicProperties(
            content_type="application/json", content_encoding="utf-8",
            headers=headers, delivery_mode=2, priority=7,
            correlation_id="corr-1", reply_to="reply.here", expiration="60000",
            message_id="msg-1", timestamp=1700000000, type="test.kind",
            user_id="guest", app_id="warren-tests")
        body = bytes(range(256)) * 3
        ch.basic_publish(exchange="", routing_key=q, body=body, properties=props)
        method, got, got_body = ch.basic_get(q, auto_ack=True)
        self.assertIsNotNone(method)
        self.assertEqual(got_body, body)
        for name in ("content_type", "content_encoding", "delivery_mode", "priority",
                     "correlation_id", "reply_to", "expiration", "message_id",
                     "timestamp", "type", "user_id", "app_id"):
            self.assertEqual(getattr(got, name), getattr(props, name), name)
        self.assertEqual(got.headers, headers)
        self.assertIsNone(got.cluster_id)

    def test_empty_and_multi_frame_bodies(self):
        _, ch = self.publisher()
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        big = b"0123456789abcdef" * 40000          # 640 KB: many body frames
        ch.basic_publish(exchange="", routing_key=q, body=b"")
        ch.basic_publish(exchange="", routing_key=q, body=big)
        self.assertEqual(self.get_all(ch, q), [b"", big])


class ConsumeTest(PikaTestCase):

    def fill(self, q, n):
        _, pub = self.publisher()
        for i in range(n):
            pub.basic_publish(exchange="", routing_key=q, body=b"m%d" % i)

    def test_basic_get_on_empty_queue(self):
        ch = self.channel()
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        self.assertEqual(ch.basic_get(q), (None, None, None))

    def test_basic_get_reports_remaining_count(self):
        ch = self.channel()
        q = ch.queue_declare(queue=unique("count"), exclusive=False,
                             auto_delete=True).method.queue
        self.fill(q, 3)
        method, _, body = ch.basic_get(q, auto_ack=True)
        self.assertEqual((body, method.message_count, method.redelivered), (b"m0", 2, False))

    def test_prefetch_count_is_respected(self):
        n = 3
        conn = self.connect()
        ch = conn.channel()
        q = ch.queue_declare(queue=unique("qos"), auto_delete=True).method.queue
        self.fill(q, 10)
        ch.basic_qos(prefetch_count=n)
        got = []
        ch.basic_consume(q, lambda c, m, p, b: got.append((m.delivery_tag, b)))
        self.assertTrue(self.pump(conn, lambda: len(got) >= n), "got %r" % got)
        self.idle(conn, 0.5)
        self.assertEqual([b for _, b in got], [b"m0", b"m1", b"m2"],
                         "more than prefetch_count unacked deliveries")
        ch.basic_ack(got[0][0])
        self.assertTrue(self.pump(conn, lambda: len(got) >= n + 1))
        self.idle(conn, 0.5)
        self.assertEqual([b for _, b in got], [b"m0", b"m1", b"m2", b"m3"])
        ch.basic_ack(got[-1][0], multiple=True)       # acks m1..m3
        self.assertTrue(self.pump(conn, lambda: len(got) >= 2 * n + 1))
        self.idle(conn, 0.3)
        self.assertEqual(len(got), 2 * n + 1)

    def test_nack_and_reject_requeue_sets_redelivered(self):
        ch = self.channel()
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        self.fill(q, 1)
        m, _, body = ch.basic_get(q)
        self.assertEqual((body, m.redelivered), (b"m0", False))
        ch.basic_nack(m.delivery_tag, requeue=True)
        m, _, body = ch.basic_get(q)
        self.assertEqual((body, m.redelivered), (b"m0", True))
        ch.basic_reject(m.delivery_tag, requeue=True)
        m, _, body = ch.basic_get(q)
        self.assertEqual((body, m.redelivered), (b"m0", True))
        ch.basic_reject(m.delivery_tag, requeue=False)   # discarded
        self.assertEqual(ch.basic_get(q), (None, None, None))

    def test_nack_multiple_requeues_in_order(self):
        ch = self.channel()
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        self.fill(q, 4)
        tags = []
        for _ in range(3):
            m, _, _ = ch.basic_get(q)
            tags.append(m.delivery_tag)
        ch.basic_nack(tags[-1], multiple=True, requeue=True)
        seen = []
        for _ in range(4):
            m, _, body = ch.basic_get(q, auto_ack=True)
            self.assertIsNotNone(m)
            seen.append((body, m.redelivered))
        self.assertEqual(seen, [(b"m0", True), (b"m1", True), (b"m2", True),
                                (b"m3", False)])
        self.assertEqual(ch.basic_get(q), (None, None, None))

    def test_nack_multiple_without_requeue_discards(self):
        ch = self.channel()
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        self.fill(q, 3)
        last = None
        for _ in range(2):
            last, _, _ = ch.basic_get(q)
        ch.basic_nack(last.delivery_tag, multiple=True, requeue=False)
        self.assertEqual(self.get_all(ch, q), [b"m2"])

    def test_basic_recover_requeue(self):
        ch = self.channel()
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        self.fill(q, 2)
        first, _, _ = ch.basic_get(q)
        second, _, _ = ch.basic_get(q)
        self.assertFalse(first.redelivered or second.redelivered)
        ch.basic_recover(requeue=True)
        again = []
        for _ in range(2):
            m, _, body = ch.basic_get(q, auto_ack=True)
            self.assertIsNotNone(m, "recovered message missing")
            again.append((body, m.redelivered))
        self.assertEqual(again, [(b"m0", True), (b"m1", True)])

    def test_ack_of_unknown_delivery_tag_is_a_channel_error(self):
        ch = self.channel()
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        ch.basic_ack(delivery_tag=99)
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            ch.queue_declare(queue=q, passive=True)
        self.assert_closed_by_broker(ctx, 406,
                                     text="PRECONDITION_FAILED - unknown delivery tag 99")

    def test_server_cancels_consumer_when_queue_deleted(self):
        conn = self.connect()
        ch = conn.channel()
        q = ch.queue_declare(queue=unique("cancelme")).method.queue
        cancelled = []
        ch.add_on_cancel_callback(lambda frame: cancelled.append(frame))
        tag = ch.basic_consume(q, lambda *a: None)
        other = self.channel()
        other.queue_delete(queue=q)
        self.assertTrue(self.pump(conn, lambda: cancelled), "no basic.cancel from broker")
        self.assertEqual(cancelled[0].method.consumer_tag, tag)
        self.assertTrue(conn.is_open and ch.is_open)

    def test_exclusive_consumer(self):
        ch = self.channel()
        q = ch.queue_declare(queue=unique("excl-consumer"), auto_delete=True).method.queue
        ch.basic_consume(q, lambda *a: None, exclusive=True)
        other = self.channel()
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            other.basic_consume(q, lambda *a: None)
        self.assert_closed_by_broker(
            ctx, 403, text="ACCESS_REFUSED - queue '%s' in vhost '/' in exclusive use" % q)

    def test_consume_redelivers_unacked_on_channel_close(self):
        conn = self.connect()
        ch = conn.channel()
        q = ch.queue_declare(queue=unique("redeliver"), auto_delete=False).method.queue
        self.addCleanup(lambda: self.channel().queue_delete(queue=q))
        self.fill(q, 2)
        got = []
        ch.basic_consume(q, lambda c, m, p, b: got.append(b))
        self.assertTrue(self.pump(conn, lambda: len(got) == 2))
        ch.close()
        ch2 = conn.channel()
        again = []
        ch2.basic_consume(q, lambda c, m, p, b: (again.append((b, m.redelivered)),
                                                 c.basic_ack(m.delivery_tag)))
        self.assertTrue(self.pump(conn, lambda: len(again) == 2))
        self.assertEqual(again, [(b"m0", True), (b"m1", True)])

    def test_channel_close_requeues_past_its_own_auto_ack_consumer(self):
        # A channel with unacked deliveries and an auto-ack consumer on the same queue closes
        # (python3-amqp sends channel.close with its consumers still on; pika would cancel
        # them first): the deliveries must come back to the queue, not go to the auto-ack
        # consumer that is leaving with the channel.
        q = unique("release")
        self.addCleanup(lambda: self.channel().queue_delete(queue=q))
        client = amqp.Connection(host="%s:%d" % (self.host, self.port), connect_timeout=5)
        client.connect()
        self.addCleanup(close_quietly_amqp, client)
        ch = client.channel()
        ch.queue_declare(q, auto_delete=False)
        for i in range(3):
            ch.basic_publish(amqp.Message(b"m%d" % i), routing_key=q)
        manual, auto = [], []
        ch.basic_consume(q, callback=lambda m: manual.append(m.body))
        deadline = time.monotonic() + 5
        while len(manual) < 3 and time.monotonic() < deadline:
            try:
                client.drain_events(timeout=0.2)
            except socket.timeout:
                pass
        self.assertEqual(manual, [b"m0", b"m1", b"m2"])
        ch.basic_consume(q, callback=lambda m: auto.append(m.body), no_ack=True)
        ch.close()
        client.close()
        counted = self.channel()
        self.assertTrue(wait_until(
            lambda: counted.queue_declare(q, passive=True).method.message_count == 3,
            timeout=5), counted.queue_declare(q, passive=True).method.message_count)
        self.assertEqual(self.get_all(counted, q), [b"m0", b"m1", b"m2"])

    def test_direct_reply_to_rpc(self):
        server_conn = self.connect()
        server = server_conn.channel()
        service = server.queue_declare(queue=unique("rpc"), exclusive=True).method.queue
        seen_reply_to = []

        def on_request(c, method, props, body):
            seen_reply_to.append(props.reply_to)
            c.basic_publish(exchange="", routing_key=props.reply_to, body=body.upper(),
                            properties=pika.BasicProperties(
                                correlation_id=props.correlation_id))
            c.basic_ack(method.delivery_tag)
        server.basic_consume(service, on_request)

        client_conn = self.connect()
        client = client_conn.channel()
        replies = []
        client.basic_consume("amq.rabbitmq.reply-to",
                             lambda c, m, p, b: replies.append((p.correlation_id, b)),
                             auto_ack=True)
        client.basic_publish(exchange="", routing_key=service, body=b"ping",
                             properties=pika.BasicProperties(
                                 reply_to="amq.rabbitmq.reply-to", correlation_id="c-42"))

        def both():
            server_conn.process_data_events(time_limit=0)
            client_conn.process_data_events(time_limit=0.05)
            return replies
        self.assertTrue(wait_until(both, timeout=5, interval=0), "no RPC reply")
        self.assertEqual(replies, [("c-42", b"PING")])
        self.assertEqual(len(seen_reply_to), 1)
        self.assertTrue(seen_reply_to[0].startswith("amq.rabbitmq.reply-to."),
                        seen_reply_to[0])

    def test_direct_reply_to_requires_consumer(self):
        ch = self.channel()
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        ch.basic_publish(exchange="", routing_key=q, body=b"x",
                         properties=pika.BasicProperties(reply_to="amq.rabbitmq.reply-to"))
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            ch.queue_declare(queue=q, passive=True)
        self.assert_closed_by_broker(
            ctx, 406, text="PRECONDITION_FAILED - fast reply consumer does not exist")


class QueueLifecycleTest(PikaTestCase):

    def test_server_named_queue(self):
        ch = self.channel()
        ok = ch.queue_declare(queue="", exclusive=True).method
        self.assertRegex(ok.queue, r"^amq\.gen-[A-Za-z0-9_-]{22}$")
        self.assertEqual((ok.message_count, ok.consumer_count), (0, 0))
        other = ch.queue_declare(queue="", exclusive=True).method.queue
        self.assertNotEqual(ok.queue, other)

    def test_reserved_amq_prefix_is_refused(self):
        ch = self.channel()
        name = "amq.%s" % unique("mine")
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            ch.queue_declare(queue=name)
        self.assert_closed_by_broker(
            ctx, 403,
            text="ACCESS_REFUSED - queue name '%s' contains reserved prefix 'amq.*'" % name)

    def test_passive_declare_of_missing_queue(self):
        ch = self.channel()
        name = unique("missing")
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            ch.queue_declare(queue=name, passive=True)
        self.assert_closed_by_broker(ctx, 404,
                                     text="NOT_FOUND - no queue '%s' in vhost '/'" % name)

    def test_passive_declare_of_missing_exchange(self):
        ch = self.channel()
        name = unique("missing")
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            ch.exchange_declare(exchange=name, passive=True)
        self.assert_closed_by_broker(ctx, 404,
                                     text="NOT_FOUND - no exchange '%s' in vhost '/'" % name)

    def test_queue_redeclare_with_other_durability(self):
        ch = self.channel()
        name = unique("redeclare")
        ch.queue_declare(queue=name, durable=False, auto_delete=True)
        self.addCleanup(lambda: self.channel().queue_delete(queue=name))
        ch.queue_declare(queue=name, durable=False, auto_delete=True)   # equivalent: fine
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            ch.queue_declare(queue=name, durable=True, auto_delete=True)
        self.assert_closed_by_broker(
            ctx, 406,
            text="PRECONDITION_FAILED - inequivalent arg 'durable' for queue '%s' in "
                 "vhost '/': received 'true' but current is 'false'" % name)

    def test_queue_redeclare_looks_at_exclusivity_first(self):
        # A declaration that differs in exclusivity is locked out (405) whatever else differs;
        # one that differs in durability only gets the 406.
        ch = self.channel()
        name = unique("redeclare-ex")
        ch.queue_declare(queue=name, durable=True)
        self.addCleanup(lambda: self.channel().queue_delete(queue=name))
        for kw, code in ((dict(durable=False, exclusive=True), 405),
                         (dict(durable=False, auto_delete=True, exclusive=True), 405),
                         (dict(durable=True, exclusive=True), 405),
                         (dict(durable=False, auto_delete=True), 406)):
            with self.assertRaises(pex.ChannelClosedByBroker, msg=kw) as ctx:
                self.channel().queue_declare(queue=name, **kw)
            self.assertEqual(ctx.exception.reply_code, code, kw)
            self.assertTrue(ctx.exception.reply_text.startswith(
                "RESOURCE_LOCKED - cannot obtain exclusive access" if code == 405
                else "PRECONDITION_FAILED - inequivalent arg 'durable'"), ctx.exception)

    def test_exchange_redeclare_with_other_type(self):
        ch = self.channel()
        name = unique("ex-redeclare")
        ch.exchange_declare(exchange=name, exchange_type="direct")
        self.addCleanup(lambda: self.channel().exchange_delete(exchange=name))
        ch.exchange_declare(exchange=name, exchange_type="direct")
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            ch.exchange_declare(exchange=name, exchange_type="fanout")
        self.assert_closed_by_broker(
            ctx, 406,
            text="PRECONDITION_FAILED - inequivalent arg 'type' for exchange '%s' in "
                 "vhost '/': received 'fanout' but current is 'direct'" % name)

    def test_unknown_exchange_type(self):
        ch = self.channel()
        with self.assertRaises(pex.ConnectionClosedByBroker) as ctx:
            ch.exchange_declare(exchange=unique("ex"), exchange_type="no-such-type")
        # A connection-level error in RabbitMQ, not a channel error.
        self.assertEqual((ctx.exception.reply_code, ctx.exception.reply_text),
                         (503, "COMMAND_INVALID - unknown exchange type 'no-such-type'"))

    def test_exclusive_queue_is_locked_to_its_connection(self):
        owner = self.channel()
        q = owner.queue_declare(queue=unique("mine"), exclusive=True).method.queue
        for attempt in ("declare", "passive", "consume", "get"):
            ch = self.channel()
            with self.assertRaises(pex.ChannelClosedByBroker, msg=attempt) as ctx:
                if attempt == "declare":
                    ch.queue_declare(queue=q, exclusive=True)
                elif attempt == "passive":
                    ch.queue_declare(queue=q, passive=True)
                elif attempt == "consume":
                    ch.basic_consume(q, lambda *a: None)
                else:
                    ch.basic_get(q)
            self.assert_closed_by_broker(
                ctx, 405,
                text="RESOURCE_LOCKED - cannot obtain exclusive access to locked queue "
                     "'%s' in vhost '/'. It could be originally declared on another "
                     "connection or the exclusive property value does not match that "
                     "of the original declaration." % q)
        # The owner keeps full access.
        owner.queue_declare(queue=q, passive=True)

    def test_exclusive_queue_is_deleted_with_its_connection(self):
        conn = self.connect()
        q = conn.channel().queue_declare(queue=unique("gone"), exclusive=True).method.queue
        self.assertTrue(self.queue_exists(q))
        conn.close()
        self.assertTrue(wait_until(lambda: not self.queue_exists(q), timeout=5),
                        "exclusive queue outlived its connection")

    def test_auto_delete_queue_goes_with_last_consumer(self):
        ch = self.channel()
        q = ch.queue_declare(queue=unique("autodel"), auto_delete=True).method.queue
        self.addCleanup(lambda: self.channel().queue_delete(queue=q))
        # Never consumed: not deleted.
        ch.queue_declare(queue=q, passive=True)
        t1 = ch.basic_consume(q, lambda *a: None)
        t2 = ch.basic_consume(q, lambda *a: None)
        ch.basic_cancel(t1)
        self.assertTrue(self.queue_exists(q), "deleted while a consumer remained")
        ch.basic_cancel(t2)
        self.assertTrue(wait_until(lambda: not self.queue_exists(q), timeout=5),
                        "auto-delete queue survived its last consumer")

    def test_auto_delete_exchange_goes_with_last_binding(self):
        ch = self.channel()
        ex = unique("autodel-ex")
        ch.exchange_declare(exchange=ex, exchange_type="fanout", auto_delete=True)
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        ch.queue_bind(queue=q, exchange=ex)
        ch.queue_unbind(queue=q, exchange=ex)
        self.assertTrue(wait_until(lambda: not self.exchange_exists(ex), timeout=5))

    def test_purge_returns_count(self):
        _, ch = self.publisher()
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        for i in range(5):
            ch.basic_publish(exchange="", routing_key=q, body=b"%d" % i)
        self.assertEqual(ch.queue_purge(q).method.message_count, 5)
        self.assertEqual(ch.queue_purge(q).method.message_count, 0)
        self.assertEqual(ch.basic_get(q), (None, None, None))

    def test_delete_if_empty_and_if_unused(self):
        _, ch = self.publisher()
        q = ch.queue_declare(queue=unique("cond-del")).method.queue
        self.addCleanup(lambda: self.channel().queue_delete(queue=q))
        ch.basic_publish(exchange="", routing_key=q, body=b"x")
        ch.basic_publish(exchange="", routing_key=q, body=b"y")

        c1 = self.channel()
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            c1.queue_delete(queue=q, if_empty=True)
        self.assert_closed_by_broker(
            ctx, 406, text="PRECONDITION_FAILED - queue '%s' in vhost '/' not empty" % q)

        consumer_conn = self.connect()
        consumer = consumer_conn.channel()
        got = []
        tag = consumer.basic_consume(q, lambda c, m, p, b: got.append(b))
        self.assertTrue(self.pump(consumer_conn, lambda: len(got) == 2))
        c2 = self.channel()
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            c2.queue_delete(queue=q, if_unused=True)
        self.assert_closed_by_broker(
            ctx, 406, text="PRECONDITION_FAILED - queue '%s' in vhost '/' in use" % q)
        consumer.basic_cancel(tag)
        # Unacked deliveries are not part of the count reported by queue.delete.
        c3 = self.channel()
        self.assertEqual(c3.queue_delete(queue=q, if_unused=True).method.message_count, 0)
        self.assertFalse(self.queue_exists(q))

    def test_delete_reports_ready_messages(self):
        _, ch = self.publisher()
        q = ch.queue_declare(queue=unique("del-count")).method.queue
        self.addCleanup(lambda: self.channel().queue_delete(queue=q))
        for body in (b"a", b"b", b"c"):
            ch.basic_publish(exchange="", routing_key=q, body=body)
        consumer_conn = self.connect()
        consumer = consumer_conn.channel()
        consumer.basic_qos(prefetch_count=1)
        got = []
        consumer.basic_consume(q, lambda c, m, p, b: got.append(b))
        self.assertTrue(self.pump(consumer_conn, lambda: got))
        consumer.close()            # the unacked delivery is requeued
        self.assertTrue(wait_until(
            lambda: ch.queue_declare(queue=q, passive=True).method.message_count == 3))
        self.assertEqual(ch.queue_delete(queue=q).method.message_count, 3)

    def test_delete_of_missing_queue_is_ok(self):
        ch = self.channel()
        self.assertEqual(ch.queue_delete(queue=unique("never")).method.message_count, 0)


class TransactionTest(PikaTestCase):

    def ready(self, q):
        return self.channel().queue_declare(queue=q, passive=True).method.message_count

    def test_commit_and_rollback(self):
        conn = self.connect()
        tx = conn.channel()
        q = tx.queue_declare(queue=unique("tx"), auto_delete=False).method.queue
        self.addCleanup(lambda: self.channel().queue_delete(queue=q))
        tx.tx_select()
        for i in range(3):
            tx.basic_publish(exchange="", routing_key=q, body=b"t%d" % i)
        self.assertEqual(self.ready(q), 0, "uncommitted publishes are visible")
        tx.tx_commit()
        self.assertEqual(self.ready(q), 3)

        tx.basic_publish(exchange="", routing_key=q, body=b"rolled back")
        tx.tx_rollback()
        self.assertEqual(self.ready(q), 3)

        # An ack inside a rolled-back transaction is discarded too: the message
        # stays unacknowledged and returns to the queue when the channel closes.
        m, _, body = tx.basic_get(q)
        self.assertEqual(body, b"t0")
        tx.basic_ack(m.delivery_tag)
        tx.tx_rollback()
        self.assertEqual(self.ready(q), 2)
        tx.close()
        self.assertTrue(wait_until(lambda: self.ready(q) == 3, timeout=5))
        ch = self.channel()
        m, _, body = ch.basic_get(q, auto_ack=True)
        self.assertEqual((body, m.redelivered), (b"t0", True))

        # A committed ack is final.
        tx2 = conn.channel()
        tx2.tx_select()
        m, _, body = tx2.basic_get(q)
        self.assertEqual(body, b"t1")
        tx2.basic_ack(m.delivery_tag)
        tx2.tx_commit()
        tx2.close()
        self.assertEqual(self.get_all(self.channel(), q), [b"t2"])

    def test_acks_in_a_transaction_are_checked_when_sent(self):
        # RabbitMQ takes an ack in a transaction off the unacked list at once: a second ack of
        # it, or an ack of a tag never delivered, closes the channel then, not at commit; a
        # rollback puts it back.
        conn = self.connect()
        q = conn.channel().queue_declare(queue="", exclusive=True).method.queue
        owner = conn.channel()
        for i in range(3):
            owner.basic_publish(exchange="", routing_key=q, body=b"t%d" % i)
        for second in ("again", "unknown"):
            tx = conn.channel()
            tx.tx_select()
            m, _, _ = tx.basic_get(q)
            tx.basic_ack(m.delivery_tag)
            with self.assertRaises(pex.ChannelClosedByBroker, msg=second) as ctx:
                tx.basic_ack(m.delivery_tag if second == "again" else 99)
                tx.basic_qos(prefetch_count=0)  # a round trip: the close comes before its ok
            self.assert_closed_by_broker(
                ctx, 406, text="PRECONDITION_FAILED - unknown delivery tag %d"
                % (m.delivery_tag if second == "again" else 99))
        # Nothing was committed: both messages are back.
        ready = lambda: conn.channel().queue_declare(queue=q, passive=True).method.message_count
        self.assertTrue(wait_until(lambda: ready() == 3, timeout=5))
        tx = conn.channel()
        tx.tx_select()
        m, _, _ = tx.basic_get(q)
        tx.basic_ack(m.delivery_tag)
        tx.tx_rollback()
        tx.basic_ack(m.delivery_tag)  # unacked again after the rollback
        tx.tx_commit()
        self.assertEqual(ready(), 2)

    def test_commit_without_select_is_an_error(self):
        ch = self.channel()
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            ch.tx_commit()
        self.assert_closed_by_broker(
            ctx, 406, text="PRECONDITION_FAILED - channel is not transactional")


class RabbitOrderTest(PikaTestCase):
    """Which of several faults RabbitMQ reports, and what it lets pass."""

    def test_a_missing_exchange_comes_before_the_properties(self):
        ch = self.channel()
        missing = unique("nowhere")
        for props in (pika.BasicProperties(expiration="bad"),
                      pika.BasicProperties(user_id="somebody-else")):
            ch = self.channel()
            with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                ch.basic_publish(exchange=missing, routing_key="k", body=b"x", properties=props)
                ch.basic_qos(prefetch_count=0)
            self.assert_closed_by_broker(
                ctx, 404, text="NOT_FOUND - no exchange '%s' in vhost '/'" % missing)

    def test_the_source_exchange_is_looked_for_first(self):
        missing_x, missing_q = unique("no-x"), unique("no-q")
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            self.channel().queue_bind(queue=missing_q, exchange=missing_x, routing_key="k")
        self.assert_closed_by_broker(
            ctx, 404, text="NOT_FOUND - no exchange '%s' in vhost '/'" % missing_x)
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            self.channel().exchange_bind(destination=unique("no-dest"), source=missing_x)
        self.assert_closed_by_broker(
            ctx, 404, text="NOT_FOUND - no exchange '%s' in vhost '/'" % missing_x)

    def test_unbinding_what_does_not_exist_is_done(self):
        ch = self.channel()
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        missing_x, missing_q = unique("no-x"), unique("no-q")
        ch.queue_unbind(queue=missing_q, exchange=missing_x, routing_key="k")
        ch.queue_unbind(queue=missing_q, exchange="amq.direct", routing_key="k")
        ch.queue_unbind(queue=q, exchange=missing_x, routing_key="k")
        ch.queue_unbind(queue=q, exchange="amq.direct", routing_key="never-bound")
        ch.exchange_unbind(destination=unique("no-dest"), source=missing_x, routing_key="k")
        ch.exchange_unbind(destination=missing_x, source="amq.direct", routing_key="k")
        ch.queue_declare(queue=q, passive=True)  # the channel is still open

    def test_a_multiple_ack_needs_its_tag_outstanding(self):
        # RabbitMQ's collect_acks: the tag itself must be unacked, multiple or not.
        conn = self.connect()
        q = conn.channel().queue_declare(queue="", exclusive=True).method.queue
        for case in ("past the last", "acked already", "fine"):
            ch = conn.channel()
            for i in range(3):
                ch.basic_publish(exchange="", routing_key=q, body=b"m")
            tags = [ch.basic_get(q)[0].delivery_tag for _ in range(3)]
            if case == "fine":
                ch.basic_ack(tags[1])
                ch.basic_ack(tags[2], multiple=True)
                ch.basic_qos(prefetch_count=0)
                self.assertEqual(ch.queue_declare(q, passive=True).method.message_count, 0)
                continue
            tag = tags[2] + 2 if case == "past the last" else tags[1]
            if case == "acked already":
                ch.basic_ack(tags[1])
            with self.assertRaises(pex.ChannelClosedByBroker, msg=case) as ctx:
                ch.basic_nack(tag, multiple=True)
                ch.basic_qos(prefetch_count=0)
            self.assert_closed_by_broker(
                ctx, 406, text="PRECONDITION_FAILED - unknown delivery tag %d" % tag)
            self.assertTrue(wait_until(
                lambda: conn.channel().queue_declare(q, passive=True).method.message_count
                == (3 if case == "past the last" else 2), timeout=5), case)
            conn.channel().queue_purge(q)

    def test_no_exclusive_consumer_on_a_single_active_consumer_queue(self):
        ch = self.channel()
        q = ch.queue_declare(queue="", exclusive=True,
                             arguments={"x-single-active-consumer": True}).method.queue
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            ch.basic_consume(q, lambda *a: None, exclusive=True)
        self.assert_closed_by_broker(
            ctx, 403, text="ACCESS_REFUSED - queue '%s' in vhost '/' in exclusive use" % q)

    def test_consumer_arguments_each_queue_type_takes(self):
        names = {}
        for kind, args in (("classic", {}), ("quorum", {"x-queue-type": "quorum"}),
                           ("stream", {"x-queue-type": "stream"})):
            names[kind] = unique("cargs-" + kind)
            self.channel().queue_declare(names[kind], durable=True, arguments=args)
            self.addCleanup(lambda n=names[kind]: self.channel().queue_delete(n))
        foreign = "PRECONDITION_FAILED - invalid arg '%s' for queue '%s' in vhost '/' of " \
                  "queue type rabbit_%s_queue"
        cases = [
            ("classic", {"x-priority": 1}, None),
            ("classic", {"x-cancel-on-ha-failover": True}, None),
            ("classic", {"x-priority": "x"}, "PRECONDITION_FAILED - invalid arg 'x-priority' "
             "for queue '{q}' in vhost '/': \"expected integer, got longstr\""),
            ("classic", {"x-cancel-on-ha-failover": 1}, "PRECONDITION_FAILED - invalid arg "
             "'x-cancel-on-ha-failover' for queue '{q}' in vhost '/': "
             "{{unacceptable_type,signedint}}"),
            ("classic", {"x-stream-offset": "first"}, "x-stream-offset"),
            ("quorum", {"x-priority": 1}, None),
            ("quorum", {"x-cancel-on-ha-failover": True}, "x-cancel-on-ha-failover"),
            ("quorum", {"x-stream-offset": 5}, "x-stream-offset"),
            ("stream", {"x-stream-offset": "first"}, None),
            ("stream", {"x-priority": 1}, "x-priority"),
            ("stream", {"x-cancel-on-ha-failover": True}, "x-cancel-on-ha-failover"),
        ]
        for kind, arguments, refused in cases:
            with self.subTest(kind=kind, arguments=arguments):
                ch = self.channel()
                ch.basic_qos(prefetch_count=10)
                q = names[kind]
                if refused is None:
                    ch.basic_cancel(ch.basic_consume(q, lambda *a: None, arguments=arguments))
                    continue
                with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                    ch.basic_consume(q, lambda *a: None, arguments=arguments)
                text = (foreign % (refused, q, kind) if not refused.startswith("PRECONDITION")
                        else refused.format(q=q))
                self.assert_closed_by_broker(ctx, 406, text=text)

    def test_an_alternate_exchange_must_be_a_string(self):
        for value, kind in ((5, "signedint"), (b"ab", "binary")):
            name = unique("ae-type")
            with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                self.channel().exchange_declare(name, "direct", auto_delete=True,
                                                arguments={"alternate-exchange": value})
            self.assert_closed_by_broker(
                ctx, 406, text="PRECONDITION_FAILED - invalid type '%s' for arg "
                "'alternate-exchange' in exchange '%s' in vhost '/'" % (kind, name))
        # An existing exchange only compares it.
        name = unique("ae-type")
        self.channel().exchange_declare(name, "direct", auto_delete=True)
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            self.channel().exchange_declare(name, "direct", auto_delete=True,
                                            arguments={"alternate-exchange": 5})
        self.assert_closed_by_broker(
            ctx, 406, text="PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for "
            "exchange '%s' in vhost '/': received the value '5' of type 'signedint' but current "
            "is none" % name)
        # The reserved prefix and an unknown type come first.
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            self.channel().exchange_declare("amq." + unique("x"), "direct",
                                            arguments={"alternate-exchange": 5})
        self.assertEqual(ctx.exception.reply_code, 403)
        with self.assertRaises(pex.ConnectionClosedByBroker) as ctx:
            self.channel().exchange_declare("amq." + unique("x"), "bogus",
                                            arguments={"alternate-exchange": 5})
        self.assertEqual(ctx.exception.reply_code, 503)

    def test_an_exclusive_queue_is_never_durable(self):
        conn = self.connect()
        q = unique("exclusive-durable")
        conn.channel().queue_declare(q, durable=True, exclusive=True)
        conn.channel().queue_declare(q, durable=False, exclusive=True)  # equivalent
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            conn.channel().queue_declare(q, durable=False, exclusive=True, auto_delete=True)
        self.assert_closed_by_broker(
            ctx, 406, text="PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue "
            "'%s' in vhost '/': received 'true' but current is 'false'" % q)

    def test_an_alternate_exchange_missing_on_one_side(self):
        name = unique("ae")
        ch = self.channel()
        ch.exchange_declare(name, "direct", auto_delete=True)
        for arguments, detail in (
                ({"alternate-exchange": "other"},
                 "received the value 'other' of type 'longstr' but current is none"),):
            with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                self.channel().exchange_declare(name, "direct", auto_delete=True,
                                                arguments=arguments)
            self.assert_closed_by_broker(
                ctx, 406, text="PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' "
                "for exchange '%s' in vhost '/': %s" % (name, detail))


class ConnectionTest(PikaTestCase):

    def test_heartbeats_keep_idle_connection_open(self):
        conn = self.connect(heartbeat=2)
        ch = conn.channel()
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        self.assertEqual(conn._impl.params.heartbeat, 2)
        self.idle(conn, 6.0)
        self.assertTrue(conn.is_open, "idle connection with heartbeats was closed")
        ch.basic_publish(exchange="", routing_key=q, body=b"after idle")
        self.assertTrue(wait_until(
            lambda: ch.basic_get(q, auto_ack=True)[2] == b"after idle", timeout=2))

    def test_server_properties_and_capabilities(self):
        conn = self.connect()
        props = conn._impl.server_properties
        caps = props.get("capabilities", {})
        for cap in ("publisher_confirms", "exchange_exchange_bindings", "basic.nack",
                    "consumer_cancel_notify", "connection.blocked",
                    "authentication_failure_close", "per_consumer_qos",
                    "direct_reply_to"):
            self.assertIs(caps.get(cap), True, cap)
        self.assertIn("product", props)
        self.assertIn("version", props)

    def test_wrong_password_is_refused(self):
        with self.assertRaises(pex.ProbableAuthenticationError) as ctx:
            pika.BlockingConnection(self.params(
                credentials=pika.PlainCredentials("guest", "not-the-password")))
        self.assertIn("ACCESS_REFUSED - Login was refused using authentication mechanism "
                      "PLAIN", str(ctx.exception))
        self.assert_broker_usable()

    def test_unknown_vhost_is_refused(self):
        vhost = unique("no-vhost")
        with self.assertRaises(pex.ProbableAccessDeniedError) as ctx:
            pika.BlockingConnection(self.params(virtual_host=vhost))
        self.assertIn("(530) 'NOT_ALLOWED - vhost %s not found'" % vhost, str(ctx.exception))

    def test_many_channels_on_one_connection(self):
        conn = self.connect()
        chans = [conn.channel() for _ in range(50)]
        numbers = [c.channel_number for c in chans]
        self.assertEqual(len(set(numbers)), 50)
        q = chans[0].queue_declare(queue="", exclusive=True).method.queue
        for c in chans:
            c.basic_publish(exchange="", routing_key=q, body=b"%d" % c.channel_number)
        self.assertTrue(wait_until(
            lambda: chans[0].queue_declare(queue=q, passive=True).method.message_count == 50,
            timeout=5))


if __name__ == "__main__":
    unittest.main()
