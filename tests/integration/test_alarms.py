"""Memory and disk alarms, as RabbitMQ 3.10 raises them: warrend samples its resident memory
against the high watermark (vm_memory_high_watermark.relative, a fraction of the machine's
memory, or vm_memory_high_watermark.absolute, bytes) and the free disk of its data directory
against disk_free_limit.absolute (50MB by default), every second. While an alarm is raised, a
connection that publishes is blocked at its next basic.publish: a client that announces the
connection.blocked capability (pika does) gets connection.blocked with the reason "low on
memory" or "low on disk", nothing after that publish runs on that connection (the publish is
not routed) until every alarm clears, then connection.unblocked comes and the held publish is
routed. connection.blocked is not sent before the connection publishes, and connections that do
not publish (consumers, basic.get) go on, so that queues can drain. A STOMP SEND under an alarm
waits the same way, with its RECEIPT and every frame after it.

The limits change at runtime through PUT /api/nodes/{node}/limits (administrators only), which
warrenctl set_vm_memory_high_watermark and set_disk_free_limit use; /api/nodes, /metrics and
warrenctl status show the alarms and the limits, and /api/health/checks/alarms (and
local-alarms) answer 503 while an alarm is raised.

Almost everything here needs warrend itself (its config file, its limits endpoint, warrenctl),
so those classes are skipped against an external broker (WARREN_TEST_BROKER). Each class has a
broker of its own, and every test puts the limits back as the class's broker started with them,
so that the tests of a class do not depend on one another. Waits are bounded: a poll where
something can be polled, a fixed wait (about a second) only where the check is that something
has not happened.
"""

import os
import subprocess
import tempfile
import unittest

import pika

from harness import BrokerTestCase, close_quietly, get_all, get_one, unique, wait_until, \
    write_config
from mgmt_support import Api, quote, sample, warrenctl
from stomp_support import StompTestCase

EXTERNAL = os.environ.get("WARREN_TEST_BROKER")

DEFAULT_DISK_FREE_LIMIT = 50000000       # RabbitMQ's disk_free_limit.absolute, 50MB
NO_ALARM_LIMITS = {"vm_memory_high_watermark": 0.9, "disk_free_limit": 1}
DEFAULT_LIMITS = {"vm_memory_high_watermark": 0.4, "disk_free_limit": DEFAULT_DISK_FREE_LIMIT}
QUIET_S = 1.0                            # "nothing happens" waits


def machine_memory_bytes():
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def status_alarms(output):
    """The entries of the "Alarms" section of `warrenctl status` ("memory", "disk", "(none)")."""
    lines = output.splitlines()
    if "Alarms" not in [l.strip() for l in lines]:
        raise AssertionError("no Alarms section in warrenctl status:\n%s" % output)
    start = [l.strip() for l in lines].index("Alarms") + 1
    found = []
    for line in lines[start:]:
        if not line.strip() or not line.startswith("  "):
            break
        found.append(line.strip())
    return found


class BlockedEvents:
    """connection.blocked / connection.unblocked as pika reports them, in order:
    ("blocked", reason) and ("unblocked", None)."""

    def __init__(self, conn):
        self.events = []
        conn.add_on_connection_blocked_callback(self._blocked)
        conn.add_on_connection_unblocked_callback(self._unblocked)

    def _blocked(self, _conn, frame):
        reason = frame.method.reason
        self.events.append(("blocked", reason.decode() if isinstance(reason, bytes)
                            else reason))

    def _unblocked(self, _conn, _frame):
        self.events.append(("unblocked", None))


class AlarmCase(BrokerTestCase):
    """A warrend with its HTTP API; `config` (warren.conf text) when the class needs one.
    `start_limits` is the PUT /api/nodes/{node}/limits body that puts the limits back as the
    broker started with them (run after every test)."""

    config = None
    start_limits = DEFAULT_LIMITS

    @classmethod
    def setUpClass(cls):
        if cls.config is not None:
            cls.broker_args = ("--config", write_config(cls, cls.config))
        super().setUpClass()
        cls.http_host, cls.http_port = cls.broker.wait_listener("http")
        cls.api = Api(cls.http_host, cls.http_port)
        cls.node_name = cls.api.get("/api/nodes")[0]["name"]

    def setUp(self):
        super().setUp()
        # Registered first, so it runs last: after the test's connections are closed.
        self.addCleanup(self.restore_limits)

    # -- limits and alarms ---------------------------------------------------------
    def limits_path(self):
        return "/api/nodes/%s/limits" % quote(self.node_name)

    def set_limits(self, body):
        """PUT the limits; asserts 200 and returns the answer."""
        status, answer, raw, _ = self.api.call("PUT", self.limits_path(), body=body)
        self.assertEqual(status, 200, "PUT limits %r: %s %r" % (body, status, raw))
        return answer

    def restore_limits(self):
        if self.broker is not None and self.broker.running():
            self.set_limits(self.start_limits)

    def lift_alarms(self):
        """Clears every alarm (a cleanup registered after a publisher connects runs before
        that connection is closed, so a blocked connection is not closed while blocked)."""
        if self.broker is not None and self.broker.running():
            self.set_limits(NO_ALARM_LIMITS)

    def node(self):
        return self.api.get("/api/nodes/" + quote(self.node_name))

    def wait_node(self, predicate, what, timeout=5.0):
        last = {}

        def check():
            last["node"] = self.node()
            return predicate(last["node"])
        self.assertTrue(wait_until(check, timeout), "%s; node: %r" % (what, last.get("node")))
        return last["node"]

    def metrics_where(self, name, value, timeout=5.0):
        """/metrics once the series `name` has `value`; fails with the last value seen."""
        last = {}

        def check():
            last["m"] = self.api.metrics()
            return sample(last["m"], name) == value
        wait_until(check, timeout)
        self.assertEqual(sample(last["m"], name), value, name)
        return last["m"]

    def ctl(self, *args, ok=True, **kw):
        r = warrenctl(self.http_port, *args, **kw)
        if ok:
            self.assertEqual(r.returncode, 0, "warrenctl %s: %s%s" % (args, r.stdout, r.stderr))
        return r

    def status_alarms(self):
        return status_alarms(self.ctl("status").stdout)

    # -- connections ---------------------------------------------------------------
    def publisher(self):
        """(connection, channel, BlockedEvents) for a pika connection that will publish."""
        conn = self.connect()
        events = BlockedEvents(conn)
        self.addCleanup(self.lift_alarms)
        return conn, conn.channel(), events

    def consumer(self):
        """(connection, channel, BlockedEvents) for a connection that never publishes."""
        conn = self.connect()
        events = BlockedEvents(conn)
        return conn, conn.channel(), events

    def wait_events(self, conn, events, n, timeout=5.0):
        self.pump(conn, lambda: len(events.events) >= n, timeout=timeout)
        return list(events.events)

    def assert_reaches(self, conn, ch, queue, bodies):
        """Each of `bodies` comes, in order, from basic.get on queue (then nothing more)."""
        got = []
        for _ in bodies:
            one = get_one(conn, ch, queue, timeout=5.0)
            if one is None:
                break
            got.append(one[2])
        got.extend(get_all(ch, queue))
        self.assertEqual(got, list(bodies))


@unittest.skipIf(EXTERNAL, "warrend's config file and its limits endpoint")
class MemoryAlarmFromConfigTest(AlarmCase):
    """vm_memory_high_watermark.absolute = 1 (one byte): the memory alarm is raised from the
    first sample, before any client connects. A publishing connection is blocked at its first
    publish with "low on memory" and its publish is held; a connection that only consumes goes
    on. Raising the watermark clears the alarm: connection.unblocked, and the held publish is
    routed."""

    config = "vm_memory_high_watermark.absolute = 1\n"
    start_limits = {"vm_memory_high_watermark_absolute": 1,
                    "disk_free_limit": DEFAULT_DISK_FREE_LIMIT}

    def test_alarm_is_reported_from_the_start(self):
        node = self.node()
        self.assertIs(node["mem_alarm"], True, node)
        self.assertEqual(node["mem_limit"], 1)
        self.assertIs(node["disk_free_alarm"], False, node)
        self.assertEqual(node["disk_free_limit"], DEFAULT_DISK_FREE_LIMIT)
        self.assertEqual(node["alarms"], [{"resource": "memory", "node": self.node_name}])
        self.assertEqual(self.api.get("/api/nodes")[0]["alarms"],
                         [{"resource": "memory", "node": self.node_name}])
        m = self.api.metrics()
        self.assertEqual(sample(m, "rabbitmq_alarms_memory_used_watermark"), 1)
        self.assertEqual(sample(m, "rabbitmq_alarms_free_disk_space_watermark"), 0)
        self.assertEqual(sample(m, "rabbitmq_resident_memory_limit_bytes"), 1)
        self.assertEqual(sample(m, "rabbitmq_disk_space_available_limit_bytes"),
                         DEFAULT_DISK_FREE_LIMIT)
        self.assertEqual(self.status_alarms(), ["memory"])

    def test_publisher_is_blocked_until_the_alarm_clears(self):
        cconn, cch, cevents = self.consumer()
        q = cch.queue_declare(queue=unique("held"), exclusive=True).method.queue
        pconn, pch, pevents = self.publisher()
        pch.basic_publish("", q, b"held-1")
        self.assertEqual(self.wait_events(pconn, pevents, 1), [("blocked", "low on memory")])
        # Everything after the held publish waits with it.
        pch.basic_publish("", q, b"held-2")
        self.idle(pconn, QUIET_S)
        self.assertEqual(pevents.events, [("blocked", "low on memory")])
        # Not routed; the connection that only consumes is not blocked and works.
        self.assertEqual(get_all(cch, q), [])
        self.assertEqual(cch.queue_declare(queue=q, passive=True).method.message_count, 0)
        self.assertIsNone(cch.basic_get(q, auto_ack=True)[0])
        self.idle(cconn, 0.2)
        self.assertEqual(cevents.events, [])
        node = self.node()
        self.assertIs(node["mem_alarm"], True, node)
        self.assertEqual(node["alarms"], [{"resource": "memory", "node": self.node_name}])
        self.assertEqual(sample(self.api.metrics(), "rabbitmq_alarms_memory_used_watermark"), 1)
        self.assertEqual(self.status_alarms(), ["memory"])

        out = self.ctl("set_vm_memory_high_watermark", "0.9")
        self.assertEqual(out.returncode, 0)
        self.assertEqual(self.wait_events(pconn, pevents, 2),
                         [("blocked", "low on memory"), ("unblocked", None)])
        self.assert_reaches(cconn, cch, q, [b"held-1", b"held-2"])
        # The connection publishes normally again.
        pch.basic_publish("", q, b"after")
        confirmed = pconn.channel()
        confirmed.confirm_delivery()
        confirmed.basic_publish("", q, b"confirmed")
        self.assert_reaches(cconn, cch, q, [b"after", b"confirmed"])
        self.assertEqual(pevents.events, [("blocked", "low on memory"), ("unblocked", None)])
        node = self.wait_node(lambda n: n["mem_alarm"] is False, "memory alarm still raised")
        self.assertEqual(node["alarms"], [])
        self.assertEqual(node["mem_limit"], int(0.9 * machine_memory_bytes()))
        self.metrics_where("rabbitmq_alarms_memory_used_watermark", 0)
        self.assertEqual(self.status_alarms(), ["(none)"])

    def test_connection_opened_under_the_alarm_consumes(self):
        cconn, cch, cevents = self.consumer()
        q = cch.queue_declare(queue=unique("drain"), exclusive=True).method.queue
        cch.queue_bind(q, "amq.fanout")
        got = []
        cch.basic_consume(q, lambda c, m, p, b: (got.append(b), c.basic_ack(m.delivery_tag)))
        self.idle(cconn, QUIET_S)
        self.assertEqual(cevents.events, [])
        self.assertEqual(got, [])
        # Publishes through the API, which is no AMQP connection, are not blocked.
        for i in range(3):
            status, body, raw, _ = self.api.call(
                "POST", "/api/exchanges/%2F/amq.fanout/publish",
                body={"routing_key": "", "payload": "m%d" % i, "payload_encoding": "string",
                      "properties": {}})
            self.assertEqual(status, 200, raw)
            self.assertEqual(body, {"routed": True})
        self.assertTrue(self.pump(cconn, lambda: len(got) == 3), got)
        self.assertEqual(got, [b"m0", b"m1", b"m2"])
        self.assertEqual(cevents.events, [])
        self.assertIs(self.node()["mem_alarm"], True)


@unittest.skipIf(EXTERNAL, "warrend's limits endpoint")
class NoBlockedBeforePublishTest(AlarmCase):
    """connection.blocked is sent only when a connection publishes under the alarm (RabbitMQ
    3.10.8 does the same): connections that only declare, consume or get, whether open before
    the alarm was raised or opened under it, are never told and keep working, so queues
    drain."""

    def test_consumers_are_not_blocked(self):
        conn, ch, _ = self.publisher()
        ch.confirm_delivery()
        q = ch.queue_declare(queue=unique("ready")).method.queue
        self.addCleanup(self.delete_queue, q)
        for i in range(4):
            ch.basic_publish("", q, b"m%d" % i)
        # Opened before the alarm; it consumes, then (at the end) publishes.
        before_conn, before_ch, before = self.publisher()
        self.assertEqual(before_ch.queue_declare(queue=q, passive=True).method.message_count, 4)

        self.ctl("set_vm_memory_high_watermark", "absolute", "1")
        self.wait_node(lambda n: n["mem_alarm"] is True, "memory alarm not raised")
        self.assertEqual(self.status_alarms(), ["memory"])

        after_conn, after_ch, after = self.consumer()
        after_ch.queue_declare(queue=unique("own"), exclusive=True)
        self.idle(before_conn, QUIET_S)
        self.idle(after_conn, 0.2)
        self.assertEqual(before.events, [])
        self.assertEqual(after.events, [])

        # Both drain the queue: basic.get on one, a consumer with acks on the other.
        method, _props, body = before_ch.basic_get(q, auto_ack=False)
        self.assertEqual(body, b"m0")
        before_ch.basic_ack(method.delivery_tag)
        got = []
        after_ch.basic_qos(prefetch_count=10)
        after_ch.basic_consume(q, lambda c, m, p, b: (got.append(b),
                                                      c.basic_ack(m.delivery_tag)))
        self.assertTrue(self.pump(after_conn, lambda: len(got) == 3), got)
        self.assertEqual(got, [b"m1", b"m2", b"m3"])
        self.assertEqual(before_ch.queue_declare(queue=q, passive=True).method.message_count, 0)
        self.idle(after_conn, 0.2)
        self.assertEqual(before.events, [])
        self.assertEqual(after.events, [])

        # The alarm is in effect: the connection that consumed is blocked once it publishes.
        before_ch.basic_publish("", q, b"late")
        self.assertEqual(self.wait_events(before_conn, before, 1),
                         [("blocked", "low on memory")])
        self.assertEqual(after.events, [])
        self.ctl("set_vm_memory_high_watermark", "0.4")
        self.assertEqual(self.wait_events(before_conn, before, 2),
                         [("blocked", "low on memory"), ("unblocked", None)])
        self.assertTrue(self.pump(after_conn, lambda: len(got) == 4), got)
        self.assertEqual(got[3], b"late")
        self.assertEqual(after.events, [])

    def delete_queue(self, name):
        conn = pika.BlockingConnection(self.params())
        try:
            conn.channel().queue_delete(name)
        finally:
            close_quietly(conn)


@unittest.skipIf(EXTERNAL, "warrend's limits endpoint")
class DiskAlarmTest(AlarmCase):
    """disk_free_limit above the free space of the data directory's disk raises the disk
    alarm: publishers are blocked with "low on disk"; a limit of one byte clears it."""

    def test_disk_alarm_blocks_until_cleared(self):
        cconn, cch, _ = self.consumer()
        q = cch.queue_declare(queue=unique("disk"), exclusive=True).method.queue
        pconn, pch, pevents = self.publisher()
        pch.basic_publish("", q, b"before")
        self.assert_reaches(cconn, cch, q, [b"before"])

        self.ctl("set_disk_free_limit", "1000000GB")
        node = self.wait_node(lambda n: n["disk_free_alarm"] is True, "disk alarm not raised")
        self.assertEqual(node["disk_free_limit"], 10 ** 15)
        self.assertIs(node["mem_alarm"], False, node)
        self.assertEqual(node["alarms"], [{"resource": "disk space", "node": self.node_name}])
        m = self.metrics_where("rabbitmq_alarms_free_disk_space_watermark", 1)
        self.assertEqual(sample(m, "rabbitmq_alarms_memory_used_watermark"), 0)
        self.assertEqual(sample(m, "rabbitmq_disk_space_available_limit_bytes"), 1e15)
        self.assertEqual(self.status_alarms(), ["disk"])

        pch.basic_publish("", q, b"held")
        self.assertEqual(self.wait_events(pconn, pevents, 1), [("blocked", "low on disk")])
        self.idle(pconn, QUIET_S)
        self.assertEqual(get_all(cch, q), [])

        self.ctl("set_disk_free_limit", "1")
        self.assertEqual(self.wait_events(pconn, pevents, 2),
                         [("blocked", "low on disk"), ("unblocked", None)])
        self.assert_reaches(cconn, cch, q, [b"held"])
        node = self.wait_node(lambda n: n["disk_free_alarm"] is False, "disk alarm still raised")
        self.assertEqual(node["disk_free_limit"], 1)
        self.assertEqual(node["alarms"], [])
        self.metrics_where("rabbitmq_alarms_free_disk_space_watermark", 0)
        self.assertEqual(self.status_alarms(), ["(none)"])

    def test_reason_names_both_alarms(self):
        # RabbitMQ 3.10.8, with both alarms raised when the connection publishes (in either
        # order): connection.blocked with "low on disk & memory".
        cconn, cch, _ = self.consumer()
        q = cch.queue_declare(queue=unique("both"), exclusive=True).method.queue
        pconn, pch, pevents = self.publisher()
        self.set_limits({"vm_memory_high_watermark_absolute": 1})
        answer = self.set_limits({"disk_free_limit": "1000000GB"})
        self.assertEqual((answer["mem_alarm"], answer["disk_free_alarm"]), (True, True))
        pch.basic_publish("", q, b"held")
        self.assertEqual(self.wait_events(pconn, pevents, 1),
                         [("blocked", "low on disk & memory")])
        self.lift_alarms()
        self.assertEqual(self.wait_events(pconn, pevents, 2)[1:], [("unblocked", None)])
        self.assert_reaches(cconn, cch, q, [b"held"])

    def test_both_alarms_must_clear(self):
        cconn, cch, _ = self.consumer()
        q = cch.queue_declare(queue=unique("both"), exclusive=True).method.queue
        pconn, pch, pevents = self.publisher()
        answer = self.set_limits({"disk_free_limit": "1000000GB"})
        self.assertIs(answer["disk_free_alarm"], True, answer)
        pch.basic_publish("", q, b"held")
        self.assertEqual(self.wait_events(pconn, pevents, 1), [("blocked", "low on disk")])
        answer = self.set_limits({"vm_memory_high_watermark_absolute": 1})
        self.assertEqual((answer["mem_alarm"], answer["disk_free_alarm"]), (True, True))
        node = self.node()
        self.assertEqual(sorted(a["resource"] for a in node["alarms"]), ["disk space", "memory"])
        self.assertEqual(sorted(status_alarms(self.ctl("status").stdout)), ["disk", "memory"])
        # One alarm cleared, the other still raised: still blocked.
        answer = self.set_limits({"disk_free_limit": 1})
        self.assertEqual((answer["mem_alarm"], answer["disk_free_alarm"]), (True, False))
        self.idle(pconn, QUIET_S)
        self.assertEqual(pevents.events, [("blocked", "low on disk")])
        self.assertEqual(get_all(cch, q), [])
        answer = self.set_limits({"vm_memory_high_watermark": 0.4})
        self.assertEqual((answer["mem_alarm"], answer["disk_free_alarm"]), (False, False))
        self.assertEqual(self.wait_events(pconn, pevents, 2),
                         [("blocked", "low on disk"), ("unblocked", None)])
        self.assert_reaches(cconn, cch, q, [b"held"])


@unittest.skipIf(EXTERNAL, "warrend's limits endpoint")
class StompAlarmTest(StompTestCase):
    """As RabbitMQ 3.10.8's adapter does: under an alarm the first SEND still goes (routed, with
    its RECEIPT), and the connection stops after it: the frames after that SEND wait, with their
    RECEIPTs, until the alarms clear. A connection that only subscribes goes on."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.api = Api(*cls.broker.wait_listener("http"))
        cls.node_name = cls.api.get("/api/nodes")[0]["name"]

    def set_limits(self, body):
        status, answer, raw, _ = self.api.call(
            "PUT", "/api/nodes/%s/limits" % quote(self.node_name), body=body)
        self.assertEqual(status, 200, "PUT limits %r: %s %r" % (body, status, raw))
        return answer

    def setUp(self):
        super().setUp()
        self.addCleanup(self.set_limits, DEFAULT_LIMITS)

    def raise_memory_alarm(self):
        self.assertIs(self.set_limits({"vm_memory_high_watermark_absolute": 1})["mem_alarm"],
                      True)

    def test_send_waits_with_its_receipt(self):
        conn = self.connect()
        ch = conn.channel()
        q = self.queue_name("stomp-alarm")
        self.declare_stomp_queue(ch, q)
        s = self.raw("1.2")
        self.raise_memory_alarm()
        s.send("SEND", [("destination", "/queue/" + q), ("receipt", "first")], b"one")
        s.send("SEND", [("destination", "/queue/" + q), ("receipt", "second")], b"two")
        s.send("SEND", [("destination", "/queue/" + q), ("receipt", "third")], b"three")
        first = s.expect("RECEIPT")
        self.assertEqual(first.header("receipt-id"), "first")
        self.assertIsNone(s.poll_frame(QUIET_S))
        self.assertEqual(self.get_one(conn, ch, q)[2], b"one")
        self.assertEqual(get_all(ch, q), [])

        self.assertIs(self.set_limits(DEFAULT_LIMITS)["mem_alarm"], False)
        receipts = [s.expect("RECEIPT").header("receipt-id") for _ in range(2)]
        self.assertEqual(receipts, ["second", "third"])
        got = [self.get_one(conn, ch, q)]
        got.append(self.get_one(conn, ch, q))
        self.assertEqual([g[2] if g else None for g in got], [b"two", b"three"])
        # The connection goes on normally.
        rid = s.receipt("SEND", [("destination", "/queue/" + q)], b"four")
        self.assertEqual(rid.command, "RECEIPT")
        self.assertEqual(self.get_one(conn, ch, q)[2], b"four")

    def test_subscriber_goes_on(self):
        conn = self.connect()
        ch = conn.channel()
        ch.confirm_delivery()
        q = self.queue_name("stomp-drain")
        self.declare_stomp_queue(ch, q)
        for body in (b"a", b"b"):
            ch.basic_publish("", q, body)
        self.raise_memory_alarm()
        s = self.raw("1.2")
        receipt = s.receipt("SUBSCRIBE", [("destination", "/queue/" + q), ("id", "0"),
                                          ("ack", "auto")])
        self.assertEqual(receipt.command, "RECEIPT")
        bodies = [s.expect("MESSAGE").body, s.expect("MESSAGE").body]
        self.assertEqual(bodies, [b"a", b"b"])


@unittest.skipIf(EXTERNAL, "warrend's limits endpoint and warrenctl")
class LimitsApiTest(AlarmCase):
    """PUT /api/nodes/{node}/limits: for administrators only (401 "Not administrator user"),
    400 for a value that is no fraction or size; sizes as RabbitMQ's config takes them (bytes,
    50MB, 1GiB). Its answer is the node's limits and alarms after a new sample."""

    def user(self, tags):
        name = unique("u")
        status, _, raw, _ = self.api.call("PUT", "/api/users/" + quote(name),
                                          body={"password": "pw", "tags": tags})
        self.assertEqual(status, 201, raw)
        self.addCleanup(self.api.call, "DELETE", "/api/users/" + quote(name))
        return name

    def test_administrator_only(self):
        before = self.node()
        for tags in ("management", "monitoring"):
            u = self.user(tags)
            for body in ({"vm_memory_high_watermark_absolute": 1},
                         {"disk_free_limit": "1000000GB"}):
                status, answer, raw, _ = self.api.call("PUT", self.limits_path(), body=body,
                                                       user=u, password="pw")
                self.assertEqual(status, 401, (tags, raw))
                self.assertEqual(answer["reason"], "Not administrator user", (tags, answer))
        monitor = self.user("monitoring")
        r = self.ctl("set_vm_memory_high_watermark", "absolute", "1", user=monitor,
                     password="pw", ok=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        r = self.ctl("set_disk_free_limit", "1000000GB", user=monitor, password="pw", ok=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        after = self.node()
        for key in ("mem_limit", "mem_alarm", "disk_free_limit", "disk_free_alarm", "alarms"):
            self.assertEqual(after[key], before[key], key)
        self.assertEqual(after["alarms"], [])

    def test_bad_values(self):
        before = self.node()
        for body in ({"vm_memory_high_watermark": "x"}, {"vm_memory_high_watermark": 0},
                     {"vm_memory_high_watermark": -0.5},
                     {"vm_memory_high_watermark_absolute": "lots"},
                     {"vm_memory_high_watermark_absolute": 0},
                     {"vm_memory_high_watermark_absolute": -1},
                     {"disk_free_limit": "lots"}, {"disk_free_limit": "50XB"},
                     {"disk_free_limit": -1}, {"disk_free_limit": True}):
            status, answer, raw, _ = self.api.call("PUT", self.limits_path(), body=body)
            self.assertEqual(status, 400, (body, raw))
            self.assertEqual(answer["error"], "bad_request", (body, answer))
        after = self.node()
        for key in ("mem_limit", "disk_free_limit", "alarms"):
            self.assertEqual(after[key], before[key], key)
        r = self.ctl("set_vm_memory_high_watermark", "x", ok=False)
        self.assertEqual(r.returncode, 64, r.stdout + r.stderr)
        r = self.ctl("set_disk_free_limit", ok=False)
        self.assertEqual(r.returncode, 64, r.stdout + r.stderr)

    def test_sizes_and_fractions(self):
        memory = machine_memory_bytes()
        cases = [
            ({"vm_memory_high_watermark_absolute": "1GB"}, "mem_limit", 10 ** 9),
            ({"vm_memory_high_watermark_absolute": "1GiB"}, "mem_limit", 1 << 30),
            ({"vm_memory_high_watermark_absolute": 123456789000}, "mem_limit", 123456789000),
            ({"vm_memory_high_watermark": 0.5}, "mem_limit", int(0.5 * memory)),
            ({"disk_free_limit": "50MB"}, "disk_free_limit", 50 * 10 ** 6),
            ({"disk_free_limit": "2MiB"}, "disk_free_limit", 2 << 20),
            ({"disk_free_limit": 4096}, "disk_free_limit", 4096),
        ]
        for body, key, want in cases:
            answer = self.set_limits(body)
            self.assertEqual(set(answer), {"mem_limit", "mem_alarm", "disk_free_limit",
                                           "disk_free_alarm"}, answer)
            self.assertEqual(answer[key], want, body)
            self.assertIs(answer["mem_alarm"], False, (body, answer))
            self.assertIs(answer["disk_free_alarm"], False, (body, answer))
            self.assertEqual(self.node()[key], want, body)
        self.ctl("set_vm_memory_high_watermark", "absolute", "2GiB")
        node = self.node()
        self.assertEqual(node["mem_limit"], 2 << 30)
        self.assertEqual(sample(self.api.metrics(), "rabbitmq_resident_memory_limit_bytes"),
                         float(2 << 30))
        self.ctl("set_disk_free_limit", "1000000")
        self.assertEqual(self.node()["disk_free_limit"], 10 ** 6)
        self.ctl("set_vm_memory_high_watermark", "0.4")
        self.assertEqual(self.node()["mem_limit"], int(0.4 * memory))
        status = self.ctl("status").stdout
        self.assertIn("memory_high_watermark_bytes\t%d" % int(0.4 * memory), status)
        self.assertIn("disk_free_limit_bytes\t1000000", status)
        self.assertRegex(status, r"\n  sockets\t\d+ / [1-9]\d*\n")
        self.assertRegex(status, r"\n  actors\t[1-9]\d*\n")
        self.assertEqual(status_alarms(status), ["(none)"])


@unittest.skipIf(EXTERNAL, "warrend's limits endpoint")
class HealthCheckAlarmsTest(AlarmCase):
    """GET /api/health/checks/alarms and /api/health/checks/local-alarms, as RabbitMQ 3.10.8
    answers them: 200 {"status": "ok"} without alarms; while an alarm is raised, 503 with
    {"status": "failed", "reason": ..., "alarms": [{"node": <node>, "resource": "memory"}]},
    the reason "There are alarms in effect in the cluster" for `alarms` and "There are alarms
    in effect on the node" for `local-alarms`. Both answer "ok" again once the alarm clears."""

    CHECKS = {"/api/health/checks/alarms": "There are alarms in effect in the cluster",
              "/api/health/checks/local-alarms": "There are alarms in effect on the node"}

    def check(self, path):
        status, body, raw, _ = self.api.call("GET", path)
        return status, body if body is not None else raw

    def test_memory_alarm_fails_the_checks(self):
        for path in self.CHECKS:
            with self.subTest(path=path, alarm=None):
                self.assertEqual(self.check(path), (200, {"status": "ok"}))
        answer = self.set_limits({"vm_memory_high_watermark_absolute": 1})
        self.assertIs(answer["mem_alarm"], True, answer)
        for path, reason in self.CHECKS.items():
            with self.subTest(path=path, alarm="memory"):
                self.assertEqual(self.check(path),
                                 (503, {"status": "failed", "reason": reason,
                                        "alarms": [{"node": self.node_name,
                                                    "resource": "memory"}]}))
        answer = self.set_limits({"vm_memory_high_watermark": 0.4})
        self.assertIs(answer["mem_alarm"], False, answer)
        for path in self.CHECKS:
            with self.subTest(path=path, alarm="cleared"):
                self.assertEqual(self.check(path), (200, {"status": "ok"}))


@unittest.skipIf(EXTERNAL, "warrend's config file")
class ConfiguredLimitsTest(AlarmCase):
    """The limits from the config file, in RabbitMQ's keys and sizes."""

    config = ("vm_memory_high_watermark.absolute = 1GiB\n"
              "disk_free_limit.absolute = 2MB\n")
    start_limits = {"vm_memory_high_watermark_absolute": "1GiB", "disk_free_limit": "2MB"}

    def test_limits_from_config(self):
        node = self.node()
        self.assertEqual(node["mem_limit"], 1 << 30)
        self.assertEqual(node["disk_free_limit"], 2 * 10 ** 6)
        self.assertEqual(node["alarms"], [])
        m = self.api.metrics()
        self.assertEqual(sample(m, "rabbitmq_resident_memory_limit_bytes"), float(1 << 30))
        self.assertEqual(sample(m, "rabbitmq_disk_space_available_limit_bytes"), 2e6)
        self.assertEqual(sample(m, "rabbitmq_alarms_memory_used_watermark"), 0)
        self.assertEqual(sample(m, "rabbitmq_alarms_free_disk_space_watermark"), 0)
        ch = self.channel()
        ch.confirm_delivery()
        q = ch.queue_declare(queue=unique("ok"), exclusive=True).method.queue
        ch.basic_publish("", q, b"fine")
        self.assertEqual(get_all(ch, q), [b"fine"])


@unittest.skipIf(EXTERNAL, "warrend's config file and its relative watermark")
class RelativeWatermarkConfigTest(AlarmCase):
    config = "vm_memory_high_watermark.relative = 0.25\n"
    start_limits = {"vm_memory_high_watermark": 0.25, "disk_free_limit": DEFAULT_DISK_FREE_LIMIT}

    def test_fraction_of_machine_memory(self):
        node = self.node()
        self.assertEqual(node["mem_limit"], int(0.25 * machine_memory_bytes()))
        self.assertEqual(node["disk_free_limit"], DEFAULT_DISK_FREE_LIMIT)
        self.assertEqual(node["alarms"], [])


@unittest.skipIf(EXTERNAL, "needs its own warrend process")
class BadConfigTest(unittest.TestCase):
    """A limit that is no size or fraction stops warrend at start with exit status 2."""

    def run_warrend(self, text):
        with tempfile.TemporaryDirectory() as d:
            conf = os.path.join(d, "warren.conf")
            with open(conf, "w") as f:
                f.write(text)
            data = os.path.join(d, "data")
            os.mkdir(data)
            return subprocess.run([os.environ.get("WARREND"), "--amqp-port", "0",
                                   "--stomp-port", "0", "--http-port", "0", "--data-dir", data,
                                   "--config", conf], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  timeout=20)

    def test_bad_values_refuse_to_start(self):
        for line in ("vm_memory_high_watermark.absolute = lots",
                     "vm_memory_high_watermark.absolute = 0",
                     "vm_memory_high_watermark.relative = x",
                     "vm_memory_high_watermark.relative = 0",
                     "disk_free_limit.absolute = lots",
                     "disk_free_limit.absolute = 50XB"):
            key, _, value = (part.strip() for part in line.partition("="))
            r = self.run_warrend(line + "\n")
            self.assertEqual(r.returncode, 2, "%s: %s" % (line, r.stderr))
            self.assertIn(key, r.stderr, line)
            self.assertIn("'%s'" % value, r.stderr, line)


if __name__ == "__main__":
    unittest.main()
