"""Clustering: warrend nodes on 127.0.0.1 join by name and address (--cluster-name,
--cluster-port, --cluster-join, POST /api/cluster/join, warrenctl join_cluster), show the same
definitions on every node, carry messages to and from queues that live on another node, notice
a killed node and take it back when it restarts on its data directory, and let a node leave.
Each test starts its own nodes, each with its own data directory and ports."""

import os
import shutil
import socket
import sys
import tempfile
import time
import unittest

import pika
import pika.exceptions as pex

from harness import Broker, BrokerError, close_quietly, get_one, wait_until
from mgmt_support import WARRENCTL, Api, quote, warrenctl
from stomp_raw import RawStomp
from test_prometheus import free_port

WARREND = os.environ.get("WARREND")
HOST = "127.0.0.1"
SYNC_S = 10.0     # a change made on one node shows on the others
DETECT_S = 15.0   # a killed node shows as down, a restarted one as running again
DELIVER_S = 10.0  # messages reach a consumer on another node

needs_warrenctl = unittest.skipUnless(WARRENCTL, "WARRENCTL names warrenctl")


def section(text, header):
    """The names under `header` in cluster_status output (rabbitmqctl's layout: the header
    line, a blank line, one name a line, a blank line), sorted."""
    lines = [l.strip() for l in text.splitlines()]
    if header not in lines:
        raise AssertionError("no %r section in cluster_status output:\n%s" % (header, text))
    names = []
    for line in lines[lines.index(header) + 1:]:
        if line:
            names.append(line)
        elif names:
            break
    return sorted(names)


def pump(conn, until, timeout):
    """Process events on conn until until() is truthy or timeout passes; until()'s value."""
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)
    return until()


class Member:
    """One cluster node: its name, cluster port and data directory outlive its process, so
    that the same node can be started again."""

    def __init__(self, name, data_dir, cluster=True):
        self.name, self.data_dir, self.cluster = name, data_dir, cluster
        self.cluster_port = free_port() if cluster else None
        self.broker = self.api = self.http_port = None
        os.makedirs(data_dir, exist_ok=True)

    @property
    def address(self):
        return "%s:%d" % (HOST, self.cluster_port)

    def start(self, join=None):
        args = []
        if self.cluster:
            args += ["--cluster-name=" + self.name, "--cluster-port=%d" % self.cluster_port]
        if join is not None:
            args.append("--cluster-join=" + join.address)
        self.broker = Broker(binary=WARREND, data_dir=self.data_dir, extra_args=args).start()
        host, self.http_port = self.broker.wait_listener("http")
        self.api = Api(host, self.http_port)
        return self.broker


@unittest.skipIf(os.environ.get("WARREN_TEST_BROKER"), "needs its own warrend processes")
class ClusterTest(unittest.TestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="warren-cluster-")
        self.members = {}
        self.runs = []       # (node name, Broker) of every process started
        self.killed = set()  # ids of the Brokers killed on purpose
        self.conns = []

    def tearDown(self):
        crashed = [(name, b) for name, b in self.runs
                   if b.proc is not None and b.proc.poll() is not None
                   and id(b) not in self.killed]
        for _, b in self.runs:
            if b.proc is not None and b.proc.poll() is None:
                b.proc.kill()
                b.proc.wait(10)
        for conn in self.conns:
            close_quietly(conn)
        shutil.rmtree(self.root, ignore_errors=True)
        if crashed:
            raise BrokerError("".join("node %s exited on its own (code %s)\n--- log ---\n%s\n"
                                      % (name, b.proc.returncode, b.log_tail(4000))
                                      for name, b in crashed))

    def run(self, result=None):
        before = (len(result.failures) + len(result.errors)) if result else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            for name, b in getattr(self, "runs", []):
                sys.stderr.write("\n--- warrend log of %s (tail) after %s ---\n%s\n"
                                 % (name, self.id(), b.log_tail(3000)))
        return out

    # -- nodes -----------------------------------------------------------------
    def node(self, short, join=None, cluster=True):
        """Starts node `short` (its name short@localhost), again on its data directory and
        cluster port when it ran before in this test."""
        m = self.members.get(short)
        if m is None:
            name = short + "@localhost" if cluster else "warren@" + socket.gethostname()
            m = self.members[short] = Member(name, os.path.join(self.root, short), cluster)
        self.runs.append((m.name, m.start(join)))
        return m

    def cluster(self, *shorts):
        """The first node alone, each next one joining the one before it; returns once every
        node lists every node as running."""
        members = [self.node(shorts[0])]
        for short in shorts[1:]:
            members.append(self.node(short, join=members[-1]))
        self.wait_members(members, {m.name: True for m in members})
        return members

    def kill(self, m):
        self.killed.add(id(m.broker))
        m.broker.proc.kill()
        m.broker.proc.wait(10)

    def connect(self, m, user="guest", password="guest", vhost="/"):
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            host=HOST, port=m.broker.port, virtual_host=vhost,
            credentials=pika.PlainCredentials(user, password), connection_attempts=1,
            socket_timeout=5, stack_timeout=10, blocked_connection_timeout=30))
        self.conns.append(conn)
        return conn

    # -- views of one node -----------------------------------------------------
    def members_of(self, m):
        """{node name: running} from m's /api/nodes."""
        return {n["name"]: n["running"] for n in m.api.get("/api/nodes")}

    def queues_of(self, m, vhost="/"):
        """{queue name: node it lives on} from m's /api/queues/{vhost}."""
        return {q["name"]: q.get("node") for q in m.api.get("/api/queues/" + quote(vhost))}

    def status_of(self, m, path):
        return m.api.call("GET", path)[0]

    def cluster_status(self, m):
        """(Disk Nodes, Running Nodes) of `warrenctl cluster_status` against m, each sorted."""
        r = warrenctl(m.http_port, "cluster_status")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return section(r.stdout, "Disk Nodes"), section(r.stdout, "Running Nodes")

    def settle(self, get, expected, what, timeout=SYNC_S):
        """Polls get() every 0.1 s until it returns expected; fails with the last value."""
        last = []
        wait_until(lambda: last.append(get()) or last[-1] == expected, timeout, 0.1)
        self.assertEqual(last[-1], expected, "%s (within %.0f s)" % (what, timeout))

    def wait_members(self, members, expected, timeout=SYNC_S):
        for m in members:
            self.settle(lambda: self.members_of(m), expected, "/api/nodes of " + m.name,
                        timeout)

    def assert_locked(self, ctx, queue):
        self.assertEqual(ctx.exception.reply_code, 405, ctx.exception)
        self.assertTrue(ctx.exception.reply_text.startswith(
            "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '%s'" % queue),
            ctx.exception.reply_text)

    # -- membership ------------------------------------------------------------
    @needs_warrenctl
    def test_node_without_a_cluster_port_is_a_cluster_of_one(self):
        m = self.node("solo", cluster=False)
        name = "warren@" + socket.gethostname()
        nodes = m.api.get("/api/nodes")
        self.assertEqual([(n["name"], n["running"], n["type"]) for n in nodes],
                         [(name, True, "disc")])
        self.connect(m).channel().queue_declare("cl.alone")
        self.assertEqual(self.queues_of(m), {"cl.alone": name})
        self.assertEqual(self.cluster_status(m), ([name], [name]))

    @needs_warrenctl
    def test_nodes_joined_at_start_list_each_other_and_share_one_cluster_name(self):
        members = self.cluster("a", "b", "c")
        names = sorted(m.name for m in members)
        self.assertEqual(names, ["a@localhost", "b@localhost", "c@localhost"])
        cluster_names = set()
        for m in members:
            nodes = m.api.get("/api/nodes")
            self.assertEqual(sorted((n["name"], n["running"], n["type"]) for n in nodes),
                             [(n, True, "disc") for n in names], m.name)
            self.assertEqual(self.cluster_status(m), (names, names), m.name)
            cluster_names.add(m.api.get("/api/cluster-name")["name"])
        self.assertEqual(len(cluster_names), 1, cluster_names)
        self.assertTrue(cluster_names.pop())

    @needs_warrenctl
    def test_join_and_leave_at_run_time_through_warrenctl_and_the_api(self):
        a, b, c = self.node("a"), self.node("b"), self.node("c")
        for m in (a, b, c):  # three separate clusters of one
            self.assertEqual(self.members_of(m), {m.name: True})
            self.assertEqual(self.cluster_status(m), ([m.name], [m.name]))
        r = warrenctl(b.http_port, "join_cluster", a.address)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        status, _, raw, _ = c.api.call("POST", "/api/cluster/join", {"address": a.address})
        self.assertEqual(status, 204, raw)
        everyone = {a.name: True, b.name: True, c.name: True}
        self.wait_members([a, b, c], everyone)
        self.assertEqual(self.cluster_status(b), (sorted(everyone), sorted(everyone)))
        # Definitions made after the join travel: a queue declared on c is known on a.
        self.connect(c).channel().queue_declare("cl.joined", durable=True)
        self.settle(lambda: self.queues_of(a).get("cl.joined"), c.name, "cl.joined on a")

        status, _, raw, _ = c.api.call("POST", "/api/cluster/leave")
        self.assertEqual(status, 204, raw)
        self.wait_members([a, b], {a.name: True, b.name: True})
        self.wait_members([c], {c.name: True})

    @needs_warrenctl
    def test_join_to_a_port_where_nothing_listens_fails_and_the_node_stays_alone(self):
        a = self.node("a")
        nowhere = "%s:%d" % (HOST, free_port())
        r = warrenctl(a.http_port, "join_cluster", nowhere)
        self.assertNotIn(r.returncode, (0, 64), r.stdout + r.stderr)
        self.assertTrue((r.stdout + r.stderr).strip(), "join_cluster failed without a word")
        status, parsed, raw, _ = a.api.call("POST", "/api/cluster/join", {"address": nowhere})
        self.assertTrue(400 <= status < 600, (status, raw))
        self.assertIsInstance(parsed, dict, raw)
        self.assertIn("error", parsed)
        self.assertIn("reason", parsed)
        status, _, raw, _ = a.api.call("POST", "/api/cluster/join", {"address": "no port"})
        self.assertTrue(400 <= status < 500, (status, raw))
        self.assertEqual(self.members_of(a), {a.name: True})
        self.assertEqual(self.cluster_status(a), ([a.name], [a.name]))
        ch = self.connect(a).channel()
        ch.confirm_delivery()
        ch.queue_declare("cl.still")
        ch.basic_publish("", "cl.still", b"alone and well", mandatory=True)
        self.assertEqual(ch.basic_get("cl.still", auto_ack=True)[2], b"alone and well")

    # -- definitions -----------------------------------------------------------
    def test_definitions_made_on_any_node_are_seen_on_every_node(self):
        a, b, c = self.cluster("a", "b", "c")
        cha = self.connect(a).channel()
        cha.exchange_declare("cl.x", "topic", durable=True)
        cha.queue_declare("cl.q", durable=True)
        cha.queue_bind("cl.q", "cl.x", "k.#")
        for path, body in (("/api/vhosts/cl-vhost", {}),
                           ("/api/users/cl-user", {"password": "cl-secret", "tags": ""}),
                           ("/api/permissions/cl-vhost/cl-user",
                            {"configure": "^cl\\.", "write": ".*", "read": ".*"})):
            status, _, raw, _ = b.api.call("PUT", path, body)
            self.assertIn(status, (201, 204), (path, raw))

        def binding(m):
            return any(x["source"] == "cl.x" and x["destination"] == "cl.q"
                       and x["routing_key"] == "k.#"
                       for x in m.api.get("/api/bindings/%2F"))

        def permissions(m):
            status, p, _, _ = m.api.call("GET", "/api/permissions/cl-vhost/cl-user")
            return status, (p["configure"], p["write"], p["read"]) if status == 200 else None

        def exchange(m):
            status, x, _, _ = m.api.call("GET", "/api/exchanges/%2F/cl.x")
            return status, (x["type"], x["durable"]) if status == 200 else None

        for m in (a, b, c):
            self.settle(lambda: self.queues_of(m).get("cl.q"), a.name, "cl.q on " + m.name)
            self.settle(lambda: exchange(m), (200, ("topic", True)), "cl.x on " + m.name)
            self.settle(lambda: binding(m), True, "cl.x -> cl.q on " + m.name)
            self.settle(lambda: self.status_of(m, "/api/vhosts/cl-vhost"), 200,
                        "cl-vhost on " + m.name)
            self.settle(lambda: self.status_of(m, "/api/users/cl-user"), 200,
                        "cl-user on " + m.name)
            self.settle(lambda: permissions(m), (200, ("^cl\\.", ".*", ".*")),
                        "permissions on " + m.name)

        # The binding routes on c; the message is in the queue on a, read from b.
        chc = self.connect(c).channel()
        chc.confirm_delivery()
        chc.basic_publish("cl.x", "k.1", b"routed on c", mandatory=True)
        chb = self.connect(b).channel()
        self.assertEqual(chb.basic_get("cl.q", auto_ack=True)[2], b"routed on c")
        self.assertEqual(chb.basic_get("cl.q", auto_ack=True), (None, None, None))

        # The user made on b logs in on c, with the permissions given on b.
        uconn = self.connect(c, "cl-user", "cl-secret", "cl-vhost")
        uconn.channel().queue_declare("cl.vq", durable=True)
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            uconn.channel().queue_declare("not-cl")
        self.assertEqual(ctx.exception.reply_code, 403)
        self.settle(lambda: self.queues_of(a, "cl-vhost"), {"cl.vq": c.name},
                    "cl-vhost's queues on a")
        uconn.close()

        # Deletions travel too.
        chc.exchange_delete("cl.x")
        chb.queue_delete("cl.q")  # from b, of the queue on a
        status, _, raw, _ = a.api.call("DELETE", "/api/users/cl-user")
        self.assertEqual(status, 204, raw)
        for m in (a, b, c):
            self.settle(lambda: self.status_of(m, "/api/exchanges/%2F/cl.x"), 404,
                        "cl.x deleted on " + m.name)
            self.settle(lambda: "cl.q" in self.queues_of(m), False, "cl.q deleted on " + m.name)
            self.settle(lambda: self.status_of(m, "/api/users/cl-user"), 404,
                        "cl-user deleted on " + m.name)
        with self.assertRaises(pex.AMQPConnectionError):
            self.connect(c, "cl-user", "cl-secret", "cl-vhost")

    # -- messages --------------------------------------------------------------
    def test_messages_cross_nodes_with_confirms_acks_order_and_properties(self):
        a, b, c = self.cluster("a", "b", "c")
        cha = self.connect(a).channel()
        cha.queue_declare("cl.work", durable=True)
        chc = self.connect(c).channel()
        self.settle(lambda: self.queues_of(c).get("cl.work"), a.name, "cl.work on c")
        chc.queue_bind("cl.work", "amq.direct", "to-work")  # made on c, for the queue on a
        self.settle(lambda: any(x["source"] == "amq.direct" and x["destination"] == "cl.work"
                                and x["routing_key"] == "to-work"
                                for x in b.api.get("/api/bindings/%2F")),
                    True, "amq.direct -> cl.work on b")

        def props(i):
            return pika.BasicProperties(
                content_type="text/plain", delivery_mode=2, message_id="id-%d" % i,
                correlation_id="corr-%d" % i, app_id="cluster-test",
                headers={"n": i, "origin": "node b", "flag": i % 3 == 0})

        pub = self.connect(b).channel()
        pub.confirm_delivery()
        for i in range(60):  # confirmed (and not returned) one by one, or basic_publish raises
            exchange, key = ("", "cl.work") if i % 2 == 0 else ("amq.direct", "to-work")
            pub.basic_publish(exchange, key, b"m-%d" % i, props(i), mandatory=True)

        cons = self.connect(c)
        ch = cons.channel()
        ch.basic_qos(prefetch_count=100)
        got = []
        ch.basic_consume("cl.work", lambda _c, m, p, body: got.append((m, p, body)))
        pump(cons, lambda: len(got) >= 60, DELIVER_S)
        self.assertEqual([body for _, _, body in got], [b"m-%d" % i for i in range(60)])
        for i, (m, p, _) in enumerate(got):
            want = props(i)
            self.assertFalse(m.redelivered)
            self.assertEqual((p.content_type, p.delivery_mode, p.message_id, p.correlation_id,
                              p.app_id, p.headers),
                             (want.content_type, 2, want.message_id, want.correlation_id,
                              want.app_id, want.headers), "properties of m-%d" % i)
        # One multiple ack for the first 50; the last 10 go back when the consumer's
        # connection closes, to the queue on a.
        ch.basic_ack(got[49][0].delivery_tag, multiple=True)
        cons.close()
        self.settle(lambda: cha.queue_declare("cl.work", passive=True).method.message_count,
                    10, "cl.work's depth on a after 50 acks from c")
        rest = []
        for _ in range(10):
            m, _, body = cha.basic_get("cl.work", auto_ack=True)
            rest.append((body, m.redelivered))
        self.assertEqual(rest, [(b"m-%d" % i, True) for i in range(50, 60)])
        self.assertEqual(cha.basic_get("cl.work", auto_ack=True), (None, None, None))

        # basic.get on b of what a client of c published.
        chc.confirm_delivery()
        chc.basic_publish("", "cl.work", b"for b", mandatory=True)
        m, _, body = self.connect(b).channel().basic_get("cl.work", auto_ack=True)
        self.assertEqual(body, b"for b")
        self.assertEqual(cha.queue_declare("cl.work", passive=True).method.message_count, 0)

    def test_stomp_clients_reach_a_queue_on_another_node(self):
        a, b = self.cluster("a", "b")
        conn = self.connect(a)
        cha = conn.channel()
        cha.queue_declare("cl.stomp", durable=True)
        self.settle(lambda: self.queues_of(b).get("cl.stomp"), a.name, "cl.stomp on b")
        s = RawStomp(*b.broker.wait_listener("stomp"))
        self.addCleanup(s.close)
        self.assertEqual(s.connect(version="1.2").command, "CONNECTED")
        s.receipt("SEND", {"destination": "/amq/queue/cl.stomp", "persistent": "true",
                           "x-note": "sent on b"}, b"over stomp")
        _, p, body = get_one(conn, cha, "cl.stomp", timeout=DELIVER_S) or (None, None, None)
        self.assertIsNotNone(p, "the STOMP message sent on b never reached the queue on a")
        self.assertEqual((body, p.delivery_mode, (p.headers or {}).get("x-note")),
                         (b"over stomp", 2, "sent on b"))

        cha.confirm_delivery()
        cha.basic_publish("", "cl.stomp", b"to stomp", mandatory=True)
        s.receipt("SUBSCRIBE", {"destination": "/amq/queue/cl.stomp", "id": "s1",
                                "ack": "client-individual"})
        frame = s.expect("MESSAGE", timeout=DELIVER_S)
        self.assertEqual(frame.body, b"to stomp")
        s.receipt("ACK", {"id": frame.header("ack")})
        s.receipt("UNSUBSCRIBE", {"id": "s1"})  # an unacked message would now go back
        self.settle(lambda: cha.queue_declare("cl.stomp", passive=True).method.message_count,
                    0, "cl.stomp's depth on a after the STOMP ACK on b")
        self.assertIsNone(s.poll_frame(0.3))

    def test_exclusive_queue_is_locked_from_another_node(self):
        a, b = self.cluster("a", "b")
        owner = self.connect(a)
        owner.channel().queue_declare("cl.excl", exclusive=True)
        self.settle(lambda: self.queues_of(b).get("cl.excl"), a.name, "cl.excl on b")
        other = self.connect(b)
        for attempt in ("declare", "passive", "consume", "get"):
            ch = other.channel()
            with self.assertRaises(pex.ChannelClosedByBroker, msg=attempt) as ctx:
                if attempt == "declare":
                    ch.queue_declare("cl.excl", exclusive=True)
                elif attempt == "passive":
                    ch.queue_declare("cl.excl", passive=True)
                elif attempt == "consume":
                    ch.basic_consume("cl.excl", lambda *_: None)
                else:
                    ch.basic_get("cl.excl")
            self.assert_locked(ctx, "cl.excl")
        # The owner's connection closes: the queue is gone everywhere, and the name is free
        # for a client of b, whose queue then lives on b.
        owner.close()
        self.settle(lambda: "cl.excl" in self.queues_of(b), False, "cl.excl gone on b")
        other.channel().queue_declare("cl.excl", exclusive=True)
        self.settle(lambda: self.queues_of(a).get("cl.excl"), b.name, "b's cl.excl on a")

    # -- failures --------------------------------------------------------------
    @needs_warrenctl
    def test_killed_node_is_detected_and_its_durable_queue_comes_back_with_it(self):
        b, a = self.cluster("b", "a")  # a joined b: restarted, it must find b by itself
        cha = self.connect(a).channel()
        for q in ("cl.kept", "cl.watched"):
            cha.queue_declare(q, durable=True)
            self.settle(lambda: self.queues_of(b).get(q), a.name, q + " on b")
        pub = self.connect(b).channel()
        pub.confirm_delivery()
        for i in range(20):
            pub.basic_publish("", "cl.kept", b"kept-%d" % i,
                              pika.BasicProperties(delivery_mode=2, headers={"i": i}),
                              mandatory=True)
        # A consumer on b of a queue on a, shown to work before the kill.
        cons = self.connect(b)
        cch = cons.channel()
        cancels, got = [], []
        cch.add_on_cancel_callback(cancels.append)
        tag = cch.basic_consume("cl.watched", lambda _c, m, p, body: got.append(body),
                                auto_ack=True)
        cha.basic_publish("", "cl.watched", b"watched")
        self.assertTrue(pump(cons, lambda: got, DELIVER_S), "consumer on b got nothing")
        self.assertEqual(got, [b"watched"])

        self.kill(a)
        self.assertTrue(pump(cons, lambda: cancels, DETECT_S),
                        "no basic.cancel for the consumer of a queue on the killed node")
        self.assertEqual([f.method.consumer_tag for f in cancels], [tag])
        self.assertTrue(cch.is_open)
        self.settle(lambda: self.members_of(b), {a.name: False, b.name: True},
                    "/api/nodes of b after a was killed", DETECT_S)
        self.assertEqual(self.cluster_status(b), ([a.name, b.name], [b.name]))
        probe = self.connect(b)
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            probe.channel().queue_declare("cl.kept", passive=True)
        self.assertEqual(ctx.exception.reply_code, 404, ctx.exception)
        self.assertIn("down", ctx.exception.reply_text)

        a = self.node("a")  # same data directory and cluster port, no --cluster-join
        self.wait_members([a, b], {a.name: True, b.name: True}, DETECT_S)
        self.assertEqual(self.cluster_status(a), ([a.name, b.name], [a.name, b.name]))

        def depth():
            try:
                return probe.channel().queue_declare("cl.kept", passive=True).method.message_count
            except pex.ChannelClosedByBroker as e:
                return e.reply_code, e.reply_text
        self.settle(depth, 20, "cl.kept's depth seen from b after a came back", DETECT_S)
        ch = probe.channel()
        back = []
        ch.basic_consume("cl.kept", lambda _c, m, p, body: back.append((m, p, body)))
        pump(probe, lambda: len(back) >= 20, DELIVER_S)
        self.assertEqual([(body, p.headers) for _, p, body in back],
                         [(b"kept-%d" % i, {"i": i}) for i in range(20)])
        ch.basic_ack(back[-1][0].delivery_tag, multiple=True)
        cha = self.connect(a).channel()
        self.settle(lambda: cha.queue_declare("cl.kept", passive=True).method.message_count,
                    0, "cl.kept's depth on a after the acks from b")

    def test_restarted_node_rejoins_by_itself_and_catches_up(self):
        a, b = self.cluster("a", "b")  # a is the one b joined
        a.broker.stop()  # SIGTERM, exit code 0
        self.settle(lambda: self.members_of(b), {a.name: False, b.name: True},
                    "/api/nodes of b after a stopped", DETECT_S)
        # Made while a is down.
        status, _, raw, _ = b.api.call("PUT", "/api/vhosts/cl-late", {})
        self.assertIn(status, (201, 204), raw)
        chb = self.connect(b).channel()
        chb.exchange_declare("cl.late", "fanout", durable=True)
        chb.queue_declare("cl.late.q", durable=True)
        chb.queue_bind("cl.late.q", "cl.late")

        a = self.node("a")  # no --cluster-join
        self.wait_members([a, b], {a.name: True, b.name: True}, DETECT_S)
        self.settle(lambda: self.status_of(a, "/api/vhosts/cl-late"), 200, "cl-late on a")
        self.settle(lambda: self.queues_of(a).get("cl.late.q"), b.name, "cl.late.q on a")
        self.settle(lambda: self.status_of(a, "/api/exchanges/%2F/cl.late"), 200,
                    "cl.late on a")
        cha = self.connect(a).channel()
        cha.confirm_delivery()
        cha.basic_publish("cl.late", "", b"through a", mandatory=True)
        self.assertEqual(chb.basic_get("cl.late.q", auto_ack=True)[2], b"through a")

    @needs_warrenctl
    def test_leave_cluster(self):
        a, b, c = self.cluster("a", "b", "c")
        self.connect(a).channel().queue_declare("cl.on_a", durable=True)
        chc = self.connect(c).channel()
        chc.queue_declare("cl.on_c", durable=True)
        self.settle(lambda: self.queues_of(a).get("cl.on_c"), c.name, "cl.on_c on a")
        self.settle(lambda: self.queues_of(c).get("cl.on_a"), a.name, "cl.on_a on c")

        r = warrenctl(c.http_port, "leave_cluster")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.settle(lambda: self.cluster_status(c), ([c.name], [c.name]),
                    "cluster_status of c after it left")
        self.wait_members([c], {c.name: True})
        self.wait_members([a, b], {a.name: True, b.name: True})
        for m in (a, b):
            self.settle(lambda: "cl.on_c" in self.queues_of(m), False,
                        "cl.on_c forgotten on " + m.name)
            self.assertEqual(self.queues_of(m).get("cl.on_a"), a.name)
        # c keeps its own queue and works alone.
        chc.confirm_delivery()
        chc.basic_publish("", "cl.on_c", b"c alone", mandatory=True)
        self.assertEqual(chc.basic_get("cl.on_c", auto_ack=True)[2], b"c alone")
        # a and b are still one cluster, which c no longer hears of.
        self.connect(b).channel().queue_declare("cl.after", durable=True)
        self.settle(lambda: self.queues_of(a).get("cl.after"), b.name, "cl.after on a")
        self.assertNotIn("cl.after", self.queues_of(c))


if __name__ == "__main__":
    unittest.main()
