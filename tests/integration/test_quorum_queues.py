"""Quorum queues (x-queue-type quorum) as RabbitMQ 3.10 has them on one node: what their
declaration accepts and refuses (properties, arguments of other queue types, server-named
queues, equivalence), the count of returns (x-delivery-count) and x-delivery-limit with
dead-lettering (reason delivery_limit), no global QoS, every message kept on disk whatever its
delivery mode, the management API's type, leader, members and online, the dead-letter counters
of /metrics, and a STOMP subscription that declares one.

Every expectation here holds against RabbitMQ 3.10.8 (run with WARREN_TEST_BROKER=host:port,
WARREN_TEST_HTTP and WARREN_TEST_STOMP); the restart test needs warrend processes of its own,
and the /metrics test warrend's /metrics (RabbitMQ serves it from a plugin's own port).
"""

import os
import time
import unittest

import pika
import pika.exceptions as pex

from harness import BrokerTestCase, RestartCase, close_quietly, unique, wait_until
from mgmt_support import Api, quote, sample
from stomp_support import StompTestCase

EXTERNAL = os.environ.get("WARREN_TEST_BROKER")
QUORUM = {"x-queue-type": "quorum"}


def quorum(**more):
    return dict(QUORUM, **more)


class QuorumTestCase(BrokerTestCase):

    def publisher(self):
        """A channel in confirm mode: a publish returns once the queue has the message."""
        ch = self.channel()
        ch.confirm_delivery()
        return ch

    def declare(self, ch, prefix="qq", arguments=None, durable=True, **kw):
        name = self.queue_later(unique(prefix))
        ch.queue_declare(queue=name, durable=durable, arguments=quorum(**(arguments or {})),
                         **kw)
        return name

    def refused(self, code, **declare):
        """The text of the channel error a declaration gets (asserting its code)."""
        ch = self.channel()
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            ch.queue_declare(**declare)
        self.assertEqual(ctx.exception.reply_code, code, ctx.exception.reply_text)
        return ctx.exception.reply_text

    def get(self, ch, queue, timeout=5.0):
        """basic.get until a message comes: (method, properties, body)."""
        got = []
        wait_until(lambda: got.append(ch.basic_get(queue)) or got[-1][0] is not None,
                   timeout=timeout, interval=0.02)
        self.assertIsNotNone(got[-1][0], "nothing in %s" % queue)
        return got[-1]


class DeclareTest(QuorumTestCase):

    def test_declared_durable_and_redeclared(self):
        ch = self.channel()
        q = self.declare(ch, arguments={"x-delivery-limit": 3})
        ok = ch.queue_declare(queue=q, durable=True, arguments=quorum(**{"x-delivery-limit": 3}))
        self.assertEqual(ok.method.message_count, 0)
        self.assertEqual(ch.queue_declare(queue=q, passive=True).method.queue, q)

    def test_delete_if_unused_or_if_empty_is_not_implemented(self):
        # RabbitMQ 3.10: a connection error, naming if-unused when both flags are set.
        q = self.declare(self.channel())
        for flags, named in (({"if_empty": True}, "if-empty"), ({"if_unused": True}, "if-unused"),
                             ({"if_empty": True, "if_unused": True}, "if-unused")):
            with self.assertRaises(pex.ConnectionClosedByBroker) as ctx:
                self.channel().queue_delete(q, **flags)
            self.assertEqual((ctx.exception.reply_code, ctx.exception.reply_text),
                             (540, "NOT_IMPLEMENTED - cannot delete queue '%s' in vhost '/'. "
                              "queue.delete operations with %s flag set are not supported by "
                              "quorum queues" % (q, named)))
        self.channel().queue_declare(q, passive=True)  # still there
        self.channel().queue_delete(q)

    def test_properties_a_quorum_queue_cannot_have(self):
        for prop, declare in [("non-durable", {}),
                              ("exclusive-owner", {"durable": True, "exclusive": True}),
                              ("auto-delete", {"durable": True, "auto_delete": True}),
                              ("auto-delete", {"durable": True, "exclusive": True,
                                               "auto_delete": True})]:
            q = unique("qq-prop")
            text = self.refused(406, queue=q, arguments=QUORUM, **declare)
            self.assertEqual(text, "PRECONDITION_FAILED - invalid property '%s' for queue '%s' "
                             "in vhost '/'" % (prop, q))

    def test_no_server_named_quorum_queue(self):
        self.assertEqual(self.refused(406, queue="", durable=True, arguments=QUORUM),
                         "PRECONDITION_FAILED - Cannot declare a server-named queue for type "
                         "rabbit_quorum_queue")

    def test_arguments_of_other_queue_types_are_refused(self):
        for key, value in [("x-max-priority", 5), ("x-queue-mode", "lazy"),
                           ("x-queue-master-locator", "min-masters"), ("x-queue-version", 2),
                           ("x-max-age", "1D"), ("x-stream-max-segment-size-bytes", 1000),
                           ("x-initial-cluster-size", 1)]:
            q = unique("qq-arg")
            text = self.refused(406, queue=q, durable=True, arguments=quorum(**{key: value}))
            self.assertEqual(text, "PRECONDITION_FAILED - invalid arg '%s' for queue '%s' in "
                             "vhost '/' of queue type rabbit_quorum_queue" % (key, q))
        # Arguments come before properties, as in RabbitMQ.
        q = unique("qq-arg")
        self.assertIn("invalid arg 'x-max-priority'", self.refused(
            406, queue=q, durable=False, arguments=quorum(**{"x-max-priority": 1})))

    def test_quorum_arguments_are_refused_for_a_classic_queue(self):
        for key, value in [("x-delivery-limit", 3), ("x-dead-letter-strategy", "at-most-once"),
                           ("x-quorum-initial-group-size", 3),
                           ("x-queue-leader-locator", "balanced"),
                           ("x-max-in-memory-length", 10), ("x-max-in-memory-bytes", 10)]:
            q = unique("classic-arg")
            text = self.refused(406, queue=q, durable=True, arguments={key: value})
            self.assertEqual(text, "PRECONDITION_FAILED - invalid arg '%s' for queue '%s' in "
                             "vhost '/' of queue type rabbit_classic_queue" % (key, q))

    def test_values_checked_as_rabbitmq_checks_them(self):
        for key, value, reason in [
                ("x-dead-letter-strategy", "bogus", "invalid_dlx_strategy"),
                ("x-dead-letter-strategy", 1, "{unacceptable_type,signedint}"),
                ("x-quorum-initial-group-size", 0, "{value_zero,0}"),
                ("x-quorum-initial-group-size", -1, "{value_negative,-1}"),
                ("x-quorum-initial-group-size", "x", '"expected integer, got longstr"'),
                ("x-queue-leader-locator", "bogus", "invalid_queue_locator_arg"),
                ("x-max-in-memory-bytes", -1, "{value_negative,-1}")]:
            q = unique("qq-val")
            text = self.refused(406, queue=q, durable=True, arguments=quorum(**{key: value}))
            self.assertEqual(text, "PRECONDITION_FAILED - invalid arg '%s' for queue '%s' in "
                             "vhost '/': %s" % (key, q, reason))

    def test_what_a_quorum_queue_takes(self):
        ch = self.channel()
        for args in [{"x-overflow": "reject-publish"}, {"x-overflow": "reject-publish-dlx"},
                     {"x-message-ttl": 1000}, {"x-expires": 60000}, {"x-max-length": 10},
                     {"x-max-length-bytes": 100}, {"x-single-active-consumer": True},
                     {"x-dead-letter-strategy": "at-least-once"},
                     {"x-quorum-initial-group-size": 3}, {"x-queue-leader-locator": "balanced"},
                     {"x-max-in-memory-length": 3}, {"x-delivery-limit": -1},
                     {"x-delivery-limit": "3"}, {"x-custom": 1}]:
            self.declare(ch, "qq-ok", args)

    def test_equivalence(self):
        ch = self.channel()
        q = self.declare(ch, arguments={"x-delivery-limit": 3,
                                        "x-quorum-initial-group-size": 1})
        for args, detail in [
                ({"x-quorum-initial-group-size": 1},
                 "inequivalent arg 'x-queue-type' for queue '%s' in vhost '/': received none but "
                 "current is the value 'quorum' of type 'longstr'"),
                ({"x-queue-type": "classic", "x-quorum-initial-group-size": 1},
                 "inequivalent arg 'x-queue-type' for queue '%s' in vhost '/': received "
                 "'classic' but current is 'quorum'"),
                (quorum(**{"x-delivery-limit": 4, "x-quorum-initial-group-size": 1}),
                 "inequivalent arg 'x-delivery-limit' for queue '%s' in vhost '/': received '4' "
                 "but current is '3'"),
                (quorum(**{"x-delivery-limit": 3}),
                 "inequivalent arg 'x-quorum-initial-group-size' for queue '%s' in vhost '/': "
                 "received none but current is the value '1' of type 'signedint'")]:
            text = self.refused(406, queue=q, durable=True, arguments=args)
            self.assertEqual(text, "PRECONDITION_FAILED - " + detail % q)


class LimitScenarios:
    """x-delivery-limit, with and without a dead-letter exchange (for QuorumTestCase)."""

    def dead_letter_target(self, ch):
        dlx = unique("qq-dlx")
        ch.exchange_declare(dlx, "fanout", auto_delete=True)
        target = self.queue_later(unique("qq-dead"))
        ch.queue_declare(target)
        ch.queue_bind(target, dlx)
        return dlx, target

    def dead_lettered_past_the_limit(self):
        ch = self.publisher()
        dlx, target = self.dead_letter_target(ch)
        q = self.declare(ch, arguments={"x-delivery-limit": 2, "x-dead-letter-exchange": dlx})
        ch.basic_publish("", q, b"poison", pika.BasicProperties(headers={"a": 1}))
        for _ in range(3):  # delivered limit + 1 times
            method, _, _ = self.get(ch, q)
            ch.basic_nack(method.delivery_tag, requeue=True)
        _, props, body = self.get(ch, target)
        self.assertEqual(body, b"poison")
        self.assertEqual(ch.basic_get(q)[0], None)
        self.assertEqual(props.headers["x-first-death-reason"], "delivery_limit")
        self.assertEqual(props.headers["x-first-death-queue"], q)
        death = props.headers["x-death"][0]
        self.assertEqual((death["reason"], death["queue"], death["count"], death["exchange"],
                          death["routing-keys"]), ("delivery_limit", q, 1, "", [q]))
        self.assertEqual(props.headers["a"], 1)
        self.assertNotIn("x-delivery-count", props.headers)
        # A reject without requeue is "rejected", as for any queue.
        ch.basic_publish("", q, b"refused")
        method, _, _ = self.get(ch, q)
        ch.basic_reject(method.delivery_tag, requeue=False)
        _, props, body = self.get(ch, target)
        self.assertEqual((body, props.headers["x-first-death-reason"]), (b"refused", "rejected"))

    def dropped_past_the_limit(self):
        ch = self.publisher()
        for limit, deliveries in [(0, 1), (-1, 1), (1, 2), ("1", 4)]:
            q = self.declare(ch, arguments={"x-delivery-limit": limit})
            ch.basic_publish("", q, b"m")
            seen = 0
            for _ in range(deliveries):
                method, _, _ = self.get(ch, q)
                seen += 1
                ch.basic_nack(method.delivery_tag, requeue=True)
            # A limit that is not an integer is none: the message stays.
            expected = 1 if limit == "1" else 0
            left = []
            wait_until(lambda: left.append(
                ch.queue_declare(queue=q, passive=True).method.message_count) or
                left[-1] == expected)
            self.assertEqual((limit, seen, left[-1]), (limit, deliveries, expected))


class DeliveryCountTest(LimitScenarios, QuorumTestCase):

    def test_past_the_delivery_limit_a_message_is_dead_lettered(self):
        self.dead_lettered_past_the_limit()

    def test_without_a_dead_letter_exchange_it_is_dropped(self):
        self.dropped_past_the_limit()

    def test_consumers_see_the_count_once_a_message_came_back(self):
        pub = self.publisher()
        q = self.declare(pub)
        pub.basic_publish("", q, b"m", pika.BasicProperties(headers={"a": 1}))
        conn = self.connect()
        ch = conn.channel()
        ch.basic_qos(prefetch_count=1)
        got = []

        def on_message(c, m, p, body):
            got.append((body, m.redelivered, p.headers))
            if len(got) < 3:
                c.basic_nack(m.delivery_tag, requeue=True)
            else:
                c.basic_ack(m.delivery_tag)
        ch.basic_consume(q, on_message)
        self.assertTrue(self.pump(conn, lambda: len(got) == 3))
        self.assertEqual(got, [(b"m", False, {"a": 1}),
                               (b"m", True, {"a": 1, "x-delivery-count": 1}),
                               (b"m", True, {"a": 1, "x-delivery-count": 2})])

    def test_basic_get_always_has_the_count(self):
        ch = self.publisher()
        q = self.declare(ch)
        ch.basic_publish("", q, b"m")
        counts = []
        for _ in range(3):
            method, props, _ = self.get(ch, q)
            counts.append((method.redelivered, props.headers))
            ch.basic_reject(method.delivery_tag, requeue=True)
        self.assertEqual(counts, [(False, {"x-delivery-count": 0}),
                                  (True, {"x-delivery-count": 1}),
                                  (True, {"x-delivery-count": 2})])

    def test_a_closed_channel_gives_its_messages_back_counted(self):
        pub = self.publisher()
        q = self.declare(pub)
        pub.basic_publish("", q, b"m")
        ch = self.channel()
        method, _, _ = self.get(ch, q)
        ch.close()
        method, props, _ = self.get(pub, q)
        self.assertTrue(method.redelivered)
        self.assertEqual(props.headers, {"x-delivery-count": 1})

    def test_reject_publish_dlx_is_drop_head(self):
        # RabbitMQ 3.10 takes the argument, logs it as an invalid strategy for a quorum queue
        # and keeps drop-head: the head is dead-lettered, the publish confirmed.
        ch = self.publisher()
        dlx, target = self.dead_letter_target(ch)
        q = self.declare(ch, arguments={"x-max-length": 1, "x-overflow": "reject-publish-dlx",
                                        "x-dead-letter-exchange": dlx})
        for body in (b"first", b"second"):
            ch.basic_publish("", q, body)
        self.assertEqual(self.get(ch, target)[2], b"first")
        self.assertEqual(self.get(ch, q)[2], b"second")

    def test_global_qos_is_refused_with_540(self):
        ch = self.publisher()
        q = self.declare(ch)
        conn = self.connect()
        c = conn.channel()
        c.basic_qos(prefetch_count=5, global_qos=True)
        with self.assertRaises(pex.ConnectionClosedByBroker) as ctx:
            c.basic_consume(q, lambda *a: None)
        self.assertEqual((ctx.exception.reply_code, ctx.exception.reply_text),
                         (540, "NOT_IMPLEMENTED - queue '%s' in vhost '/' does not support "
                               "global qos" % q))
        # Per-consumer prefetch, or none, and consumer priorities are fine.
        c = self.channel()
        c.basic_qos(prefetch_count=5)
        c.basic_consume(q, lambda *a: None, arguments={"x-priority": 3})
        self.channel().basic_consume(q, lambda *a: None)


@unittest.skipIf(EXTERNAL and not os.environ.get("WARREN_TEST_HTTP"),
                 "needs the broker's management API (WARREN_TEST_HTTP)")
class RejectPublishTest(QuorumTestCase):
    """x-overflow reject-publish on a quorum queue works as RabbitMQ's rabbit_fifo: the
    publish that takes the queue over its limit is still taken, later ones are refused (nacked)
    until the ready messages are down to 80% of the limit (max-length 5: 4)."""

    def publishes(self, ch, q, n, expect_count):
        """Publishes n messages, one at a time with confirms: a string of a (acked) and n
        (nacked). First waits until the queue holds `expect_count` ready messages."""
        self.assertEqual(self.ready(ch, q, expect_count), expect_count)
        if EXTERNAL:  # RabbitMQ tells the channel of the queue's state after the count changed
            time.sleep(0.3)
        out = ""
        for _ in range(n):
            try:
                ch.basic_publish("", q, b"m")
                out += "a"
            except pex.NackError:
                out += "n"
        return out

    def ready(self, ch, q, want):
        count = []
        wait_until(lambda: count.append(ch.queue_declare(q, passive=True).method.message_count)
                   or count[-1] == want, timeout=5, interval=0.02)
        return count[-1]

    def drain_to(self, ch, q, n):
        while ch.queue_declare(q, passive=True).method.message_count > n:
            ch.basic_get(q, auto_ack=True)

    def test_the_publish_that_goes_over_is_taken_and_then_publishes_wait_for_80_percent(self):
        ch = self.publisher()
        q = self.declare(ch, arguments={"x-max-length": 5, "x-overflow": "reject-publish"})
        self.assertEqual(self.publishes(ch, q, 8, 0), "aaaaaann")
        other = self.publisher()  # another channel is refused as well
        self.assertEqual(self.publishes(other, q, 2, 6), "nn")
        self.drain_to(ch, q, 5)  # at the limit, above 80% of it
        self.assertEqual(self.publishes(ch, q, 2, 5), "nn")
        self.drain_to(ch, q, 4)
        self.assertEqual(self.publishes(ch, q, 3, 4), "aan")

    def test_max_length_one(self):
        ch = self.publisher()
        q = self.declare(ch, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
        self.assertEqual(self.publishes(ch, q, 3, 0), "aan")
        self.drain_to(ch, q, 1)
        self.assertEqual(self.publishes(ch, q, 1, 1), "n")
        self.drain_to(ch, q, 0)
        self.assertEqual(self.publishes(ch, q, 3, 0), "aan")

    def test_max_length_bytes(self):
        # 10 bytes, bodies of 1 byte: the eleventh is taken, 80% is 8 bytes.
        ch = self.publisher()
        q = self.declare(ch, arguments={"x-max-length-bytes": 10, "x-overflow": "reject-publish"})
        self.assertEqual(self.publishes(ch, q, 13, 0), "a" * 11 + "nn")
        self.drain_to(ch, q, 9)
        self.assertEqual(self.publishes(ch, q, 1, 9), "n")
        self.drain_to(ch, q, 8)
        self.assertEqual(self.publishes(ch, q, 4, 8), "aaan")

    def test_messages_given_back_count_from_the_lowest_point(self):
        # Taken out (ready 3, below 4: publishes may resume), then 2 of them given back: the
        # queue holds 5, not over 5, so the next publish is taken, and the one after refused.
        ch = self.publisher()
        q = self.declare(ch, arguments={"x-max-length": 5, "x-overflow": "reject-publish"})
        self.assertEqual(self.publishes(ch, q, 7, 0), "aaaaaan")
        consumer = self.channel()
        tags = [self.get(consumer, q)[0].delivery_tag for _ in range(3)]
        consumer.basic_ack(tags[0])
        consumer.basic_nack(tags[2], multiple=True, requeue=True)
        self.assertEqual(self.publishes(ch, q, 2, 5), "an")
        # Taken out and all given back: 6 again, over the limit.
        tags = [self.get(consumer, q)[0].delivery_tag for _ in range(3)]
        consumer.basic_nack(tags[2], multiple=True, requeue=True)
        self.assertEqual(self.publishes(ch, q, 1, 6), "n")


class ManagementTest(QuorumTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.api = Api(*cls.broker.wait_listener("http"))

    def test_type_leader_members_online(self):
        ch = self.channel()
        q = self.declare(ch, arguments={"x-delivery-limit": 1})
        info = self.api.get("/api/queues/%s/%s" % (quote("/"), quote(q)))
        node = info["leader"]
        self.assertTrue(node)
        self.assertEqual((info["type"], info["durable"], info["members"], info["online"],
                          info["arguments"]),
                         ("quorum", True, [node], [node],
                          {"x-delivery-limit": 1, "x-queue-type": "quorum"}))
        listed = [x for x in self.api.get("/api/queues/%s" % quote("/")) if x["name"] == q]
        self.assertEqual(listed[0]["type"], "quorum")


@unittest.skipIf(EXTERNAL, "warrend's /metrics (RabbitMQ serves it from a plugin's own port)")
class DeadLetterMetricsTest(LimitScenarios, QuorumTestCase):
    """rabbitmq_global_messages_dead_lettered_*_total by queue_type: quorum queues have the
    reason delivery_limit too."""

    def counters(self):
        samples = Api(*self.broker.wait_listener("http")).metrics()
        return {(qtype, reason, strategy): sample(
                    samples, "rabbitmq_global_messages_dead_lettered_%s_total" % reason,
                    queue_type=qtype, dead_letter_strategy=strategy)
                for qtype in ("rabbit_classic_queue", "rabbit_quorum_queue")
                for reason in ("expired", "rejected", "maxlen", "delivery_limit")
                for strategy in ("at_most_once", "disabled")}

    def test_counters(self):
        before = self.counters()
        missing = [k for k, v in before.items()
                   if v is None and k[:2] != ("rabbit_classic_queue", "delivery_limit")]
        self.assertEqual(missing, [])
        self.assertIsNone(before[("rabbit_classic_queue", "delivery_limit", "disabled")])
        self.dead_lettered_past_the_limit()
        self.dropped_past_the_limit()

        def grown():
            after = self.counters()
            return {k: after[k] - before[k] for k in after
                    if after[k] is not None and after[k] != before[k]}
        expected = {("rabbit_quorum_queue", "delivery_limit", "at_most_once"): 1,
                    ("rabbit_quorum_queue", "rejected", "at_most_once"): 1,
                    ("rabbit_quorum_queue", "delivery_limit", "disabled"): 3}
        wait_until(lambda: grown() == expected, timeout=10)
        self.assertEqual(grown(), expected)


class StompTest(StompTestCase):

    def test_a_subscription_declares_a_quorum_queue(self):
        name = self.queue_name("stomp-qq")
        conn, col = self.client()
        self.receipt_of(conn, col, conn.subscribe, "/queue/" + name, id="s1",
                        ack="client-individual",
                        headers={"x-queue-type": "quorum", "prefetch-count": "1"})
        info = self.channel().queue_declare(queue=name, passive=True)
        self.assertEqual(info.method.message_count, 0)
        ch = self.channel()
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:  # it is a quorum queue
            ch.queue_declare(queue=name, durable=True)
        self.assertIn("inequivalent arg 'x-queue-type'", ctx.exception.reply_text)
        conn.send("/queue/" + name, "hello", headers={"persistent": "false"})
        self.assertTrue(col.wait_messages(1))
        first = col.messages[0]
        conn.nack(first.headers["ack"])
        self.assertTrue(col.wait_messages(2))
        again = col.messages[1]
        self.assertEqual((again.body, again.headers.get("redelivered"),
                          again.headers.get("x-delivery-count")), ("hello", "true", "1"))
        self.assertNotIn("x-delivery-count", first.headers)
        rid = unique("ack")
        conn.ack(again.headers["ack"], receipt=rid)
        self.assertTrue(col.wait_receipt(rid), "no RECEIPT for ACK; errors %r" % col.errors)


@unittest.skipIf(EXTERNAL, "needs its own warrend processes (restarts)")
class RestartTest(RestartCase):
    """Every message of a quorum queue is kept on disk, transient ones too; one that had been
    delivered comes back counted."""

    data_prefix = "warren-quorum-"

    def start(self):
        self.start_broker()
        return self.connect_running()

    def stop(self, conn):
        close_quietly(conn)
        broker, self.running = self.running, None
        broker.stop()

    def test_transient_messages_survive_a_restart(self):
        conn = self.start()
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("qq", durable=True, arguments=quorum(**{"x-delivery-limit": 5}))
        ch.queue_declare("classic", durable=True)
        for q in ("qq", "classic"):
            ch.basic_publish("", q, b"transient", pika.BasicProperties(delivery_mode=1))
            ch.basic_publish("", q, b"persistent", pika.BasicProperties(delivery_mode=2))
        method, _, _ = ch.basic_get("qq")  # delivered, not acked, when the broker stops
        self.assertIsNotNone(method)
        self.stop(conn)

        ch = self.start().channel()
        self.assertEqual(ch.queue_declare("classic", passive=True).method.message_count, 1)
        got = []
        while True:
            method, props, body = ch.basic_get("qq", auto_ack=True)
            if method is None:
                break
            got.append((body, method.redelivered, props.headers))
        self.assertEqual(got, [(b"transient", True, {"x-delivery-count": 1}),
                               (b"persistent", False, {"x-delivery-count": 0})])
        info = ch.queue_declare("qq", durable=True, arguments=quorum(**{"x-delivery-limit": 5}))
        self.assertEqual(info.method.message_count, 0)


if __name__ == "__main__":
    unittest.main()
