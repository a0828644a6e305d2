"""Clustering: warrend nodes on 127.0.0.1 join by name and address (--cluster-name,
--cluster-port, --cluster-join, POST /api/cluster/join, warrenctl join_cluster), show the same
definitions on every node, carry messages to and from queues that live on another node, notice
a killed node and take it back when it restarts on its data directory, and let a node leave.
Each test starts its own nodes, each with its own data directory and ports. PartitionTest
puts two nodes in two network namespaces of its own and takes their link down and up again."""

import glob
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import pika
import pika.exceptions as pex

from harness import LISTENING_RE, START_TIMEOUT_S, Broker, BrokerError, close_quietly, get_one, \
    namespace_prefix, netns_id, wait_until
from mgmt_support import WARRENCTL, Api, quote, warrenctl
from stomp_raw import RawStomp
from test_prometheus import free_port

WARREND = os.environ.get("WARREND")
HOST = "127.0.0.1"
SYNC_S = 10.0     # a change made on one node shows on the others
DETECT_S = 15.0   # a killed node shows as down, a restarted one as running again
DELIVER_S = 10.0  # messages reach a consumer on another node

needs_warrenctl = unittest.skipUnless(WARRENCTL, "WARRENCTL names warrenctl")
# Debian's faketime: a node whose wall clock is off (LD_PRELOAD).
FAKETIME_LIB = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))), None)


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


def nodes_running(api, **kw):
    """{node name: running} from a node's /api/nodes."""
    return {n["name"]: n["running"] for n in api.get("/api/nodes", **kw)}


def queue_homes(api, vhost="/", **kw):
    """{queue name: node it lives on} from a node's /api/queues/{vhost}."""
    return {q["name"]: q.get("node") for q in api.get("/api/queues/" + quote(vhost), **kw)}


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

    def start(self, join=None, cookie=None, extra=(), env=None):
        args = list(extra)
        if self.cluster:
            args += ["--cluster-name=" + self.name, "--cluster-port=%d" % self.cluster_port]
        if cookie is not None:
            args.append("--cluster-cookie=" + cookie)
        if join is not None:
            args.append("--cluster-join=" + join.address)
        self.broker = Broker(binary=WARREND, data_dir=self.data_dir, extra_args=args,
                             env=env).start()
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
    def node(self, short, join=None, cluster=True, cookie=None, extra=(), env=None):
        """Starts node `short` (its name short@localhost), again on its data directory and
        cluster port when it ran before in this test."""
        m = self.members.get(short)
        if m is None:
            name = short + "@localhost" if cluster else "warren@" + socket.gethostname()
            m = self.members[short] = Member(name, os.path.join(self.root, short), cluster)
        self.runs.append((m.name, m.start(join, cookie, extra, env)))
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
        return nodes_running(m.api)

    def queues_of(self, m, vhost="/"):
        """{queue name: node it lives on} from m's /api/queues/{vhost}."""
        return queue_homes(m.api, vhost)

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
        # /api/overview lists every node's listeners, as RabbitMQ's does.
        expected = sorted(
            (m.name, proto, port) for m in members
            for proto, port in (("amqp", m.broker.port), ("stomp", m.broker.listeners["stomp"][1]),
                                ("http", m.http_port), ("clustering", m.cluster_port)))
        for m in members:
            self.settle(lambda: sorted((l["node"], l["protocol"], l["port"])
                                       for l in m.api.get("/api/overview")["listeners"]),
                        expected, "the listeners in /api/overview of " + m.name)

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

    def test_a_node_with_another_cookie_cannot_join(self):
        a = self.node("a", cookie="first-secret")
        b = self.node("b", cookie="other-secret")
        c = self.node("c", cookie="first-secret")
        status, parsed, raw, _ = b.api.call("POST", "/api/cluster/join", {"address": a.address})
        self.assertEqual(status, 502, raw)
        self.assertIn("cookie", parsed["reason"])
        self.assertEqual(self.members_of(a), {a.name: True})
        self.assertEqual(self.members_of(b), {b.name: True})
        # b's queue stays b's alone; a node with the same cookie joins.
        self.connect(b).channel().queue_declare("cl.outsider", durable=True)
        status, _, raw, _ = c.api.call("POST", "/api/cluster/join", {"address": a.address})
        self.assertEqual(status, 204, raw)
        self.wait_members([a, c], {a.name: True, c.name: True})
        self.assertNotIn("cl.outsider", self.queues_of(a))
        # Nor can b join through c.
        status, _, raw, _ = b.api.call("POST", "/api/cluster/join", {"address": c.address})
        self.assertEqual(status, 502, raw)
        self.assertEqual(self.members_of(c), {a.name: True, c.name: True})

    def tls_config(self, name, cert, certs):
        """--config for a node whose cluster traffic is TLS with certs/<cert>.pem and .key,
        trusting certs/ca.pem."""
        path = os.path.join(self.root, name + ".conf")
        with open(path, "w") as f:
            f.write("cluster.ssl_options.certfile = {d}/{c}.pem\n"
                    "cluster.ssl_options.keyfile = {d}/{c}.key\n"
                    "cluster.ssl_options.cacertfile = {d}/ca.pem\n".format(d=certs, c=cert))
        return ["--config", path]

    def test_nodes_speak_tls_to_each_other_and_refuse_other_certificates(self):
        from test_tls import make_certs
        certs = make_certs(os.path.join(self.root, "certs"))
        a = self.node("a", extra=self.tls_config("a", "server", certs))
        b = self.node("b", join=a, extra=self.tls_config("b", "client", certs))
        self.wait_members([a, b], {a.name: True, b.name: True})
        self.assertIn("listening cluster (TLS)", a.broker.log_tail(4000))
        cha = self.connect(a).channel()
        cha.queue_declare("cl.tls", durable=True)
        self.settle(lambda: self.queues_of(b).get("cl.tls"), a.name, "cl.tls on b")
        chb = self.connect(b).channel()
        chb.confirm_delivery()
        chb.basic_publish("", "cl.tls", b"sealed", mandatory=True)
        self.assertEqual(cha.basic_get("cl.tls", auto_ack=True)[2], b"sealed")

        # The cluster port speaks TLS and shows a's certificate to a client with one of the
        # same CA.
        ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
        ctx.check_hostname = False
        ctx.load_cert_chain(os.path.join(certs, "client.pem"), os.path.join(certs, "client.key"))
        with socket.create_connection((HOST, a.cluster_port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as tls:
                subject = dict(x[0] for x in tls.getpeercert()["subject"])
        self.assertEqual(subject["commonName"], "localhost")
        # The certificate expiration health check covers the cluster listener too.
        status, body, raw, _ = a.api.call(
            "GET", "/api/health/checks/certificate-expiration/5/weeks")
        self.assertEqual(status, 503, raw)
        self.assertEqual([(e["protocol"], e["port"], e["certfile"]) for e in body["expired"]],
                         [("clustering", a.cluster_port, os.path.join(certs, "server.pem"))])
        # That client, one that hangs up at once and one that sends junk do not disturb the
        # link between a and b (OpenSSL errors they leave behind once made a and b see each
        # other down): nothing goes down for longer than the heartbeats' 3 s timeout.
        socket.create_connection((HOST, a.cluster_port), timeout=5).close()
        with socket.create_connection((HOST, a.cluster_port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.0\r\n\r\n" * 50)
        time.sleep(4)
        for m in (a, b):
            self.assertNotIn("is down", m.broker.log_tail(20000), m.name)

        # A node whose certificate another CA signed, and one without TLS, cannot join.
        rogue = self.node("rogue", extra=self.tls_config("rogue", "rogue", certs))
        plain = self.node("plain")
        for m in (rogue, plain):
            status, _, raw, _ = m.api.call("POST", "/api/cluster/join", {"address": a.address})
            self.assertTrue(400 <= status < 600, (m.name, status, raw))
            self.assertEqual(self.members_of(m), {m.name: True})
        self.assertEqual(self.members_of(a), {a.name: True, b.name: True})
        # A member that dies is noticed over TLS as well.
        self.kill(b)
        self.settle(lambda: self.members_of(a), {a.name: True, b.name: False}, "b down on a",
                    DETECT_S)

        # Half a setting does not start.
        path = os.path.join(self.root, "half.conf")
        with open(path, "w") as f:
            f.write("cluster.ssl_options.certfile = %s/server.pem\n" % certs)
        with self.assertRaises(BrokerError) as ctx:
            self.node("half", extra=["--config", path])
        self.assertIn("needs certfile, keyfile and cacertfile", str(ctx.exception))

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

    def test_a_policy_set_on_one_node_holds_for_the_queues_of_every_node(self):
        a, b = self.cluster("a", "b")
        cha = self.connect(a).channel()
        cha.confirm_delivery()
        cha.queue_declare("cl.pol.a", durable=True)  # before the policy, on a
        status, _, raw, _ = b.api.call("PUT", "/api/policies/%2F/cl-cap", {
            "pattern": "^cl\\.pol\\.", "definition": {"max-length": 2}, "priority": 4})
        self.assertEqual(status, 201, raw)
        self.settle(lambda: a.api.call("GET", "/api/policies/%2F/cl-cap")[1],
                    {"vhost": "/", "name": "cl-cap", "pattern": "^cl\\.pol\\.",
                     "apply-to": "all", "definition": {"max-length": 2}, "priority": 4},
                    "cl-cap on a")
        chb = self.connect(b).channel()
        chb.confirm_delivery()
        chb.queue_declare("cl.pol.b", durable=True)  # after it, on b
        for ch in (cha, chb):  # each node publishes to both queues
            for q in ("cl.pol.a", "cl.pol.b"):
                for i in range(2):
                    ch.basic_publish("", q, b"%d" % i)
        for q in ("cl.pol.a", "cl.pol.b"):
            self.assertEqual(chb.queue_declare(q, passive=True).method.message_count, 2, q)
        # Cleared on a: gone on b, and the queues are no longer limited.
        self.assertEqual(a.api.call("DELETE", "/api/policies/%2F/cl-cap")[0], 204)
        self.settle(lambda: self.status_of(b, "/api/policies/%2F/cl-cap"), 404, "cl-cap on b")
        for q in ("cl.pol.a", "cl.pol.b"):
            chb.basic_publish("", q, b"more")
            self.assertEqual(cha.queue_declare(q, passive=True).method.message_count, 3, q)

    def test_a_node_with_quorum_queues_is_quorum_critical(self):
        a, b = self.cluster("a", "b")
        ch = self.connect(a).channel()
        ch.queue_declare("cl.qq", durable=True, arguments={"x-queue-type": "quorum"})
        ch.queue_declare("cl.classic", durable=True)
        path = "/api/health/checks/node-is-quorum-critical"
        status, body, raw, _ = a.api.call("GET", path)
        self.assertEqual(status, 503, raw)
        self.assertEqual(body, {
            "status": "failed",
            "reason": "There are quorum queues that would lose their quorum if the target "
                      "node is shut down",
            "queues": [{"name": "cl.qq", "readable_name": "queue 'cl.qq' in vhost '/'",
                        "virtual_host": "/", "type": "quorum"}]})
        self.settle(lambda: self.queues_of(b).get("cl.qq"), a.name, "cl.qq on b")
        self.assertEqual(b.api.call("GET", path)[:2], (200, {"status": "ok"}))
        self.assertEqual(a.api.call("GET", "/api/health/checks/node-is-mirror-sync-critical")[:2],
                         (200, {"status": "ok"}))

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

        # BCC from b to two queues on a; its key goes along with the message to a, where the
        # dead-lettered copy is routed by it again (the header itself is gone).
        cha.exchange_declare("cl.dlx", "direct")
        cha.queue_declare("cl.dl")
        cha.queue_bind("cl.dl", "cl.dlx", "cl.work")
        cha.queue_declare("cl.src", arguments={"x-dead-letter-exchange": "cl.dlx"})
        self.settle(lambda: self.queues_of(b).get("cl.src"), a.name, "cl.src on b")
        pub.basic_publish("", "cl.src", b"bcc", pika.BasicProperties(headers={"BCC": ["cl.work"]}),
                          mandatory=True)
        m, p, body = cha.basic_get("cl.work", auto_ack=True)
        self.assertEqual((body, p.headers), (b"bcc", {}))
        m, _, body = cha.basic_get("cl.src")
        cha.basic_reject(m.delivery_tag, requeue=False)
        self.settle(lambda: cha.queue_declare("cl.dl", passive=True).method.message_count, 1,
                    "the dead-lettered copy in cl.dl")

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

    def test_queue_numbers_and_consumers_show_on_every_node(self):
        """As RabbitMQ's management API: any node lists the depth, rates and consumers of
        every queue of the cluster, and of a queue whose node is down, none."""
        a, b = self.cluster("a", "b")
        cha = self.connect(a).channel()
        cha.queue_declare("cl.numbers", durable=True)
        cha.confirm_delivery()
        for i in range(5):
            cha.basic_publish("", "cl.numbers", b"n-%d" % i, mandatory=True)
        cons = self.connect(b)
        chb = cons.channel()
        chb.basic_qos(prefetch_count=3)
        got = []
        tag = chb.basic_consume("cl.numbers", lambda _c, m, p, body: got.append(m),
                                arguments={"x-priority": 4})
        pump(cons, lambda: len(got) == 3, DELIVER_S)
        self.assertEqual(len(got), 3)
        b_conn = wait_until(lambda: [c["name"] for c in b.api.get("/api/connections")
                                     if c["name"].endswith(":%d" % b.broker.port)], SYNC_S)
        self.assertEqual(len(b_conn or []), 1, b.api.get("/api/connections"))

        def numbers(m):
            status, q, _, _ = m.api.call("GET", "/api/queues/%2F/cl.numbers")
            if status != 200:
                return status
            return (q["node"], q["messages"], q["messages_ready"],
                    q["messages_unacknowledged"], q["consumers"],
                    q.get("message_stats", {}).get("publish"))

        def consumers(m):
            return [(k["queue"]["name"], k["consumer_tag"], k["prefetch_count"], k["priority"],
                     k["arguments"], k["ack_required"], k["channel_details"].get("connection_name"),
                     k["channel_details"].get("user"), k["channel_details"].get("node"))
                    for k in m.api.get("/api/consumers/%2F")]

        want = (a.name, 5, 2, 3, 1, 5)
        consumer = [("cl.numbers", tag, 3, 4, {"x-priority": 4}, True, b_conn[0], "guest",
                     b.name)]
        for m in (a, b):
            self.settle(lambda: numbers(m), want, "cl.numbers's numbers on " + m.name)
            self.settle(lambda: consumers(m), consumer, "/api/consumers on " + m.name)
            totals = m.api.get("/api/overview")
            self.assertEqual((totals["queue_totals"]["messages"],
                              totals["object_totals"]["queues"],
                              totals["object_totals"]["consumers"]), (5, 1, 1), m.name)
        details = b.api.get("/api/queues/%2F/cl.numbers")["consumer_details"]
        self.assertEqual([(k["consumer_tag"], k["channel_details"]["connection_name"])
                          for k in details], [(tag, b_conn[0])])

        # A queue of a node that is down has no numbers, and its consumers are gone.
        self.kill(a)
        self.settle(lambda: self.members_of(b)[a.name], False, "a down on b", DETECT_S)
        self.settle(lambda: numbers(b), (a.name, 0, 0, 0, 0, None), "cl.numbers on b, a down")
        self.assertEqual(consumers(b), [])
        self.assertEqual(b.api.get("/api/queues/%2F/cl.numbers")["state"], "down")

    def test_connections_of_every_node_are_listed_and_closed_from_any_node(self):
        a, b = self.cluster("a", "b")
        conn_a = self.connect(a)
        ch = conn_a.channel()
        ch.basic_qos(prefetch_count=9)
        conn_b = self.connect(b)
        conn_b.channel()

        def listed(m):
            """{connection name: (node, user, channels)} and {channel name: (node, prefetch)}
            of m's API, for the connections of this test's clients."""
            ports = (a.broker.port, b.broker.port)
            conns = {c["name"]: (c["node"], c["user"], c["channels"])
                     for c in m.api.get("/api/connections")
                     if int(c["name"].rsplit(":", 1)[1]) in ports}
            chans = {c["name"]: (c["node"], c["prefetch_count"])
                     for c in m.api.get("/api/channels")
                     if c["connection_details"]["name"] in conns}
            return conns, chans

        def complete(view):  # both connections, each with its channel reported
            conns, chans = view
            return len(conns) == 2 and len(chans) == 2 and all(
                n == 1 for _, _, n in conns.values())
        seen = wait_until(lambda: (lambda view: view if complete(view) else None)(listed(a)),
                          SYNC_S)
        self.assertTrue(seen, listed(a))
        conns, chans = seen
        name_a = [n for n in conns if n.endswith(":%d" % a.broker.port)][0]
        name_b = [n for n in conns if n.endswith(":%d" % b.broker.port)][0]
        self.assertEqual(conns, {name_a: (a.name, "guest", 1), name_b: (b.name, "guest", 1)})
        self.assertEqual(chans, {name_a + " (1)": (a.name, 9), name_b + " (1)": (b.name, 0)})
        self.settle(lambda: listed(b), seen, "the same connections and channels on b")
        for m in (a, b):
            totals = m.api.get("/api/overview")["object_totals"]
            self.assertEqual((totals["connections"], totals["channels"]), (2, 2), m.name)
        self.assertEqual(b.api.get("/api/connections/" + quote(name_a))["node"], a.name)
        # Closed through b's API, the connection of a's client gets 320 with the reason.
        status = b.api.call("DELETE", "/api/connections/" + quote(name_a),
                            headers={"X-Reason": "closed from b"})[0]
        self.assertEqual(status, 204)
        with self.assertRaises(pex.ConnectionClosedByBroker) as ctx:
            pump(conn_a, lambda: False, DELIVER_S)
        self.assertEqual((ctx.exception.reply_code, ctx.exception.reply_text),
                         (320, "CONNECTION_FORCED - closed from b"))
        self.settle(lambda: sorted(listed(b)[0]), [name_b], "b lists only b's connection")
        self.assertTrue(conn_b.is_open)

    def test_direct_reply_to_across_nodes(self):
        """A client of node a asks through amq.rabbitmq.reply-to; the server that answers is a
        client of node b, which finds the asking connection on a."""
        a, b = self.cluster("a", "b")
        client_conn = self.connect(a)
        client = client_conn.channel()
        client.queue_declare("cl.rpc")
        self.settle(lambda: self.queues_of(b).get("cl.rpc"), a.name, "cl.rpc on b")
        server_conn = self.connect(b)
        server = server_conn.channel()
        server.confirm_delivery()
        asked = []
        server.basic_consume("cl.rpc", lambda c, m, p, body: asked.append((m, p, body)))
        replies = []
        client.basic_consume("amq.rabbitmq.reply-to",
                             lambda c, m, p, body: replies.append((p.correlation_id, body)),
                             auto_ack=True)
        for i in range(3):
            client.basic_publish("", "cl.rpc", b"question %d" % i, pika.BasicProperties(
                reply_to="amq.rabbitmq.reply-to", correlation_id="c-%d" % i))
        pump(server_conn, lambda: len(asked) == 3, DELIVER_S)
        self.assertEqual(len(asked), 3)
        for m, p, body in asked:
            self.assertTrue(p.reply_to.startswith("amq.rabbitmq.reply-to."), p.reply_to)
            # Confirmed and not returned: b found the consumer of that name on a.
            server.basic_publish("", p.reply_to, body.upper(), pika.BasicProperties(
                correlation_id=p.correlation_id), mandatory=True)
            server.basic_ack(m.delivery_tag)
        pump(client_conn, lambda: len(replies) == 3, DELIVER_S)
        self.assertEqual(replies, [("c-%d" % i, b"QUESTION %d" % i) for i in range(3)])
        # A name no client of any node consumes from is returned to a mandatory publisher.
        with self.assertRaises(pex.UnroutableError):
            server.basic_publish("", "amq.rabbitmq.reply-to.nobody", b"lost", mandatory=True)

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

    def test_confirms_pending_with_a_queue_whose_node_dies_become_nacks_and_a_get_ends(self):
        a = self.node("a", extra=["--fault-injection"])
        b = self.node("b", join=a)
        self.wait_members([a, b], {a.name: True, b.name: True})
        cha = self.connect(a).channel()
        cha.queue_declare("cl.stalled", durable=True)
        cha.queue_bind("cl.stalled", "amq.direct", "stall")
        self.settle(lambda: any(x["source"] == "amq.direct" and x["destination"] == "cl.stalled"
                                for x in b.api.get("/api/bindings/%2F")),
                    True, "amq.direct -> cl.stalled on b")
        # The queue on a takes nothing for a while: a confirm for a message routed to it on b
        # is pending when a dies.
        status, _, raw, _ = a.api.call("POST", "/api/debug/stall/queue/%2F/cl.stalled",
                                       {"ms": 30000})
        self.assertEqual(status, 204, raw)
        outcome = []

        def publish():
            try:
                conn = pika.BlockingConnection(pika.ConnectionParameters(
                    host=HOST, port=b.broker.port, connection_attempts=1, socket_timeout=5))
                ch = conn.channel()
                ch.confirm_delivery()
                try:
                    ch.basic_publish("amq.direct", "stall", b"in flight")
                    outcome.append("confirmed")
                except pex.NackError:
                    outcome.append("nacked")
                close_quietly(conn)
            except Exception as e:  # reported to the test below
                outcome.append(repr(e))

        fetched = []

        def fetch():  # a basic.get on b, waiting for the stalled queue on a
            try:
                conn = pika.BlockingConnection(pika.ConnectionParameters(
                    host=HOST, port=b.broker.port, connection_attempts=1, socket_timeout=5))
                fetched.append(conn.channel().basic_get("cl.stalled"))
                close_quietly(conn)
            except pex.ConnectionClosedByBroker as e:
                fetched.append(e.reply_code)
            except Exception as e:  # reported to the test below
                fetched.append(repr(e))

        publisher = threading.Thread(target=publish, daemon=True)
        publisher.start()
        getter = threading.Thread(target=fetch, daemon=True)
        getter.start()
        publisher.join(1.5)
        self.assertTrue(publisher.is_alive(), "the confirm came before the node died: %s"
                        % outcome)
        self.assertTrue(getter.is_alive(), "the get was answered before the node died: %s"
                        % fetched)
        self.kill(a)
        publisher.join(DETECT_S)
        self.assertFalse(publisher.is_alive(), "the publisher still waits for its confirm")
        self.assertEqual(outcome, ["nacked"])
        # The get's answer cannot come: b gives up after its deadline for requests to other
        # nodes (10 s) and closes that connection, instead of waiting a minute.
        getter.join(DETECT_S)
        self.assertFalse(getter.is_alive(), "the basic.get still waits for the dead node")
        self.assertEqual(fetched, [541])

    def test_a_restarted_vhost_learns_the_other_nodes_queues_again(self):
        a = self.node("a")
        b = self.node("b", join=a, extra=["--fault-injection"])
        self.wait_members([a, b], {a.name: True, b.name: True})
        cha = self.connect(a).channel()
        cha.queue_declare("cl.on_a", durable=True)
        chb = self.connect(b).channel()
        chb.queue_declare("cl.on_b", durable=True)
        chb.queue_bind("cl.on_a", "amq.fanout")
        chb.queue_bind("cl.on_b", "amq.fanout")
        self.settle(lambda: self.queues_of(b), {"cl.on_a": a.name, "cl.on_b": b.name},
                    "queues on b")
        status, _, raw, _ = b.api.call("POST", "/api/debug/crash/vhost/%2F")
        self.assertEqual(status, 204, raw)
        # b's vhost comes back from its catalog with its own queue under a new handle; it
        # learns a's queue (and the binding to it) again, and a routes to b's new queue.
        self.settle(lambda: self.queues_of(b), {"cl.on_a": a.name, "cl.on_b": b.name},
                    "queues on b after its vhost restarted")

        def routed_from(m, body):
            ch = self.connect(m).channel()
            ch.confirm_delivery()
            ch.basic_publish("amq.fanout", "", body, mandatory=True)
            got_a = cha.basic_get("cl.on_a", auto_ack=True)[2]
            got_b = self.connect(b).channel().basic_get("cl.on_b", auto_ack=True)[2]
            return got_a, got_b
        self.settle(lambda: routed_from(b, b"from b"), (b"from b", b"from b"),
                    "a publish on b reaches both queues")
        self.settle(lambda: routed_from(a, b"from a"), (b"from a", b"from a"),
                    "a publish on a reaches both queues")

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
        status, _, raw, _ = b.api.call("PUT", "/api/operator-policies/%2F/cl-late", {
            "pattern": "^cl\\.late", "definition": {"message-ttl": 60000}})
        self.assertEqual(status, 201, raw)

        a = self.node("a")  # no --cluster-join
        self.wait_members([a, b], {a.name: True, b.name: True}, DETECT_S)
        self.settle(lambda: self.status_of(a, "/api/vhosts/cl-late"), 200, "cl-late on a")
        self.settle(lambda: self.queues_of(a).get("cl.late.q"), b.name, "cl.late.q on a")
        self.settle(lambda: self.status_of(a, "/api/exchanges/%2F/cl.late"), 200,
                    "cl.late on a")
        self.settle(lambda: self.status_of(a, "/api/operator-policies/%2F/cl-late"), 200,
                    "cl-late on a")
        cha = self.connect(a).channel()
        cha.confirm_delivery()
        cha.basic_publish("cl.late", "", b"through a", mandatory=True)
        self.assertEqual(chb.basic_get("cl.late.q", auto_ack=True)[2], b"through a")

    def test_deletions_made_while_a_node_is_down_hold_when_it_comes_back(self):
        a, b = self.cluster("a", "b")
        cha = self.connect(a).channel()
        cha.exchange_declare("cl.gone", "fanout", durable=True)
        cha.exchange_declare("cl.kept", "direct", durable=True)
        cha.queue_declare("cl.on_a", durable=True)
        chb = self.connect(b).channel()
        chb.queue_declare("cl.on_b", durable=True)
        chb.queue_declare("cl.tmp_b", durable=False)
        chb.queue_bind("cl.on_b", "cl.kept", "k")
        bindings = "/api/exchanges/%2F/cl.kept/bindings/source"
        # Users, vhosts and permissions: cl-gone goes while b is down, cl-kept stays.
        for user in ("cl-gone", "cl-kept"):
            for path, body in (("/api/vhosts/" + user, {}),
                               ("/api/users/" + user, {"password": "pw", "tags": ""}),
                               ("/api/permissions/%s/%s" % (user, user),
                                {"configure": ".*", "write": ".*", "read": ".*"})):
                status, _, raw, _ = a.api.call("PUT", path, body)
                self.assertIn(status, (201, 204), raw)
        registry = ("/api/users/cl-gone", "/api/vhosts/cl-gone",
                    "/api/permissions/cl-gone/cl-gone", "/api/users/cl-kept",
                    "/api/vhosts/cl-kept", "/api/permissions/cl-kept/cl-kept")

        def keys(m):
            return sorted(x["routing_key"] for x in m.api.get(bindings))
        for m in (a, b):
            self.settle(lambda: {q: n for q, n in self.queues_of(m).items()
                                 if q.startswith("cl.")},
                        {"cl.on_a": a.name, "cl.on_b": b.name, "cl.tmp_b": b.name},
                        "the queues on " + m.name)
            self.settle(lambda: self.status_of(m, "/api/exchanges/%2F/cl.gone"), 200,
                        "cl.gone on " + m.name)
            self.settle(lambda: keys(m), ["k"], "cl.kept's bindings on " + m.name)
            self.settle(lambda: [self.status_of(m, p) for p in registry], [200] * 6,
                        "users, vhosts and permissions on " + m.name)

        b.broker.stop()
        self.settle(lambda: self.members_of(a), {a.name: True, b.name: False},
                    "/api/nodes of a after b stopped", DETECT_S)
        # As in RabbitMQ: a transient queue goes with its node, a durable one is down.
        probe = self.connect(a)
        for queue, code, text in (("cl.tmp_b", 404, "NOT_FOUND - no queue 'cl.tmp_b'"),
                                  ("cl.on_b", 404, "down")):
            with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                probe.channel().queue_declare(queue, passive=True)
            self.assertEqual(ctx.exception.reply_code, code, ctx.exception)
            self.assertIn(text, ctx.exception.reply_text)
        # Deleted on a while b is down; b still has them in its catalog.
        cha = self.connect(a).channel()
        cha.exchange_delete("cl.gone")
        cha.queue_unbind("cl.on_b", "cl.kept", "k")
        for path in ("/api/permissions/cl-kept/cl-kept", "/api/users/cl-gone",
                     "/api/vhosts/cl-gone"):
            status, _, raw, _ = a.api.call("DELETE", path)
            self.assertEqual(status, 204, raw)

        b = self.node("b")
        self.wait_members([a, b], {a.name: True, b.name: True}, DETECT_S)
        # Both have met: each knows the other's queues again (b's transient one is gone).
        for m in (a, b):
            self.settle(lambda: {q: n for q, n in self.queues_of(m).items()
                                 if q.startswith("cl.")},
                        {"cl.on_a": a.name, "cl.on_b": b.name}, "the queues on " + m.name)
        self.assertEqual(self.connect(a).channel().queue_declare(
            "cl.on_b", passive=True).method.message_count, 0)
        for m in (a, b):
            self.assertEqual(self.status_of(m, "/api/exchanges/%2F/cl.gone"), 404,
                             "cl.gone came back on " + m.name)
            self.assertEqual(keys(m), [], "cl.kept's binding came back on " + m.name)
            self.assertEqual(self.status_of(m, "/api/exchanges/%2F/cl.kept"), 200)
            self.assertEqual([self.status_of(m, p) for p in registry],
                             [404, 404, 404, 200, 200, 404],
                             "users, vhosts and permissions on " + m.name + " (%s)"
                             % ", ".join(registry))

    def test_what_changed_while_a_node_was_down_holds_for_a_vhost_and_user_made_again(self):
        """A vhost and a user deleted and made again while b is down come back to b empty:
        what b had of the old ones (permissions, topic permissions, limits, policies, queues,
        exchanges) goes, on both nodes. A changed password and policy reach b."""
        a, b = self.cluster("a", "b")
        puts = (("/api/vhosts/cl-v", {}),
                ("/api/users/cl-u", {"password": "pw", "tags": ""}),
                ("/api/users/cl-pw", {"password": "old", "tags": ""}),
                ("/api/permissions/cl-v/guest", {"configure": ".*", "write": ".*", "read": ".*"}),
                ("/api/permissions/cl-v/cl-u", {"configure": ".*", "write": ".*", "read": ".*"}),
                ("/api/permissions/%2F/cl-u", {"configure": ".*", "write": ".*", "read": ".*"}),
                ("/api/topic-permissions/cl-v/cl-u",
                 {"exchange": "amq.topic", "write": ".*", "read": ".*"}),
                ("/api/vhost-limits/cl-v/max-queues", {"value": 7}),
                ("/api/user-limits/cl-u/max-connections", {"value": 3}),
                ("/api/policies/cl-v/cl-p", {"pattern": ".*", "definition": {"max-length": 1}}),
                ("/api/operator-policies/cl-v/cl-op",
                 {"pattern": ".*", "definition": {"max-length": 2}}),
                ("/api/policies/%2F/cl-change",
                 {"pattern": "^cl-change$", "definition": {"message-ttl": 1000}}))
        for path, body in puts:
            status, _, raw, _ = a.api.call("PUT", path, body)
            self.assertIn(status, (201, 204), "%s: %r" % (path, raw))
        self.connect(a, vhost="cl-v").channel().exchange_declare("cl.old.x", "fanout",
                                                                  durable=True)
        self.connect(b, vhost="cl-v").channel().queue_declare("cl.old.q", durable=True)
        old = ["/api/permissions/cl-v/cl-u", "/api/permissions/%2F/cl-u",
               "/api/topic-permissions/cl-v/cl-u", "/api/policies/cl-v/cl-p",
               "/api/operator-policies/cl-v/cl-op", "/api/exchanges/cl-v/cl.old.x",
               "/api/queues/cl-v/cl.old.q"]

        def limits(m):
            return (m.api.get("/api/vhost-limits/cl-v"), m.api.get("/api/user-limits/cl-u"))
        for m in (a, b):
            self.settle(lambda: [self.status_of(m, p) for p in old], [200] * len(old),
                        "the old vhost's and user's definitions on " + m.name)
            self.settle(lambda: [len(x) for x in limits(m)], [1, 1], "limits on " + m.name)

        b.broker.stop()
        self.settle(lambda: self.members_of(a), {a.name: True, b.name: False},
                    "/api/nodes of a after b stopped", DETECT_S)
        for path in ("/api/vhosts/cl-v", "/api/users/cl-u"):
            self.assertEqual(a.api.call("DELETE", path)[0], 204, path)
        for path, body in puts[:4] + (("/api/users/cl-pw", {"password": "new", "tags": ""}),
                                      ("/api/policies/%2F/cl-change",
                                       {"pattern": "^cl-change$",
                                        "definition": {"message-ttl": 2000}})):
            status, _, raw, _ = a.api.call("PUT", path, body)
            self.assertIn(status, (201, 204), "%s: %r" % (path, raw))
        new_hash = a.api.get("/api/users/cl-pw")["password_hash"]
        new_u = a.api.get("/api/users/cl-u")["password_hash"]  # another salt than the old one

        b = self.node("b")
        self.wait_members([a, b], {a.name: True, b.name: True}, DETECT_S)
        self.settle(lambda: b.api.get("/api/users/cl-pw")["password_hash"], new_hash,
                    "cl-pw's new password on b")
        self.settle(lambda: b.api.get("/api/policies/%2F/cl-change")["definition"],
                    {"message-ttl": 2000}, "cl-change's new definition on b")
        for m in (b, a):
            self.settle(lambda: [self.status_of(m, p) for p in old], [404] * len(old),
                        "the old vhost's and user's definitions on %s (%s)"
                        % (m.name, ", ".join(old)))
            self.settle(lambda: limits(m), ([], []), "limits on " + m.name)
            self.assertEqual(self.status_of(m, "/api/vhosts/cl-v"), 200)
            self.assertEqual(self.status_of(m, "/api/users/cl-u"), 200)
        time.sleep(1)  # nothing of b's old definitions reaches a later
        self.assertEqual([self.status_of(a, p) for p in old], [404] * len(old))
        self.assertEqual(a.api.get("/api/policies/%2F/cl-change")["definition"],
                         {"message-ttl": 2000})
        for m in (a, b):
            self.assertEqual(m.api.get("/api/users/cl-u")["password_hash"], new_u, m.name)
        # The vhost made again works on both nodes.
        ch = self.connect(b, vhost="cl-v").channel()
        ch.queue_declare("cl.new.q", durable=True)
        self.settle(lambda: self.queues_of(a, "cl-v"), {"cl.new.q": b.name}, "cl-v's queues on a")
        # What was made again stays when the node that made it restarts (its tombstones are
        # kept, its stamps are not), a queue of that node with its messages too.
        cha = self.connect(a, vhost="cl-v").channel()
        cha.confirm_delivery()
        cha.queue_declare("cl.new.a", durable=True)
        cha.basic_publish("", "cl.new.a", b"kept", pika.BasicProperties(delivery_mode=2))
        a.broker.stop()
        a = self.node("a")
        self.wait_members([a, b], {a.name: True, b.name: True}, DETECT_S)
        time.sleep(1)
        for m in (a, b):
            self.settle(lambda: self.queues_of(m, "cl-v"),
                        {"cl.new.q": b.name, "cl.new.a": a.name},
                        "cl-v's queues on %s after a restarted" % m.name)
            self.assertEqual([self.status_of(m, p) for p in
                              ("/api/vhosts/cl-v", "/api/users/cl-u",
                               "/api/permissions/cl-v/guest")], [200, 200, 200], m.name)
            self.assertEqual(m.api.get("/api/users/cl-u")["password_hash"], new_u, m.name)
        self.assertEqual(self.connect(b, vhost="cl-v").channel().queue_declare(
            "cl.new.a", passive=True).method.message_count, 1)

    def test_deletions_hold_across_a_restart_of_the_node_that_made_them(self):
        a, b = self.cluster("a", "b")
        self.connect(a).channel().exchange_declare("cl.gone", "fanout", durable=True)
        chb = self.connect(b).channel()
        chb.queue_declare("cl.on_b", durable=True)
        chb.queue_bind("cl.on_b", "amq.direct", "k")
        chb.queue_bind("cl.on_b", "amq.direct", "k\x00z")  # a key may hold any byte
        status, _, raw, _ = a.api.call("PUT", "/api/users/cl-gone",
                                       {"password": "pw", "tags": ""})
        self.assertEqual(status, 201, raw)
        gone = ("/api/exchanges/%2F/cl.gone", "/api/users/cl-gone")

        def keys(m):
            return [x["routing_key"] for x in
                    m.api.get("/api/exchanges/%2F/amq.direct/bindings/source")]
        self.settle(lambda: ([self.status_of(b, p) for p in gone], sorted(keys(a))),
                    ([200, 200], ["k", "k\x00z"]),
                    "b has a's exchange and user, a has b's bindings")
        b.broker.stop()
        self.settle(lambda: self.members_of(a), {a.name: True, b.name: False},
                    "/api/nodes of a after b stopped", DETECT_S)
        cha = self.connect(a).channel()
        cha.exchange_delete("cl.gone")
        cha.queue_unbind("cl.on_b", "amq.direct", "k")
        cha.queue_unbind("cl.on_b", "amq.direct", "k\x00z")
        self.assertEqual(a.api.call("DELETE", "/api/users/cl-gone")[0], 204)
        # a restarts before b is back: what it deleted is kept in its catalog. (One binding's
        # tombstone is rewritten as older builds kept it, NUL between the parts.)
        a.broker.stop()
        catalog = sqlite3.connect(os.path.join(a.data_dir, "catalog.db"))
        with catalog:
            rows = catalog.execute("UPDATE deletions SET key = ? WHERE kind = 'binding' AND"
                                   " key = ?", (b"amq.direct\0cl.on_b\0qk\0\0\0\0\0",
                                                b"\x0110:amq.direct7:cl.on_b" + b"q1:k\0\0\0\0"))
            self.assertEqual(rows.rowcount, 1)
        catalog.close()
        a = self.node("a")
        b = self.node("b")
        self.wait_members([a, b], {a.name: True, b.name: True}, DETECT_S)
        for m in (a, b):
            self.settle(lambda: self.queues_of(m).get("cl.on_b"), b.name, "cl.on_b on " + m.name)
        for m in (a, b):
            self.assertEqual([self.status_of(m, p) for p in gone], [404, 404],
                             "the exchange and the user on " + m.name)
            self.assertEqual(keys(m), [], "amq.direct's bindings on " + m.name)

    def deletions_kept(self, m, kind, key):
        """How many deletions of `kind` and `key` m's catalog keeps (read while m runs)."""
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(m.data_dir, "catalog.db"),
                             uri=True, timeout=5)
        try:
            return db.execute("SELECT count(*) FROM deletions WHERE kind = ? AND key = ?",
                              (kind, key)).fetchone()[0]
        finally:
            db.close()

    def join(self, m, seed):
        status, _, raw, _ = m.api.call("POST", "/api/cluster/join", {"address": seed.address})
        self.assertEqual(status, 204, raw)

    def test_deletions_are_forgotten_once_every_member_has_run_for_keep_deletions(self):
        conf = os.path.join(self.root, "keep.conf")
        with open(conf, "w") as f:
            f.write("cluster.keep_deletions = 2\n")
        keep = ("--config", conf)
        a = self.node("a", extra=keep)
        b = self.node("b", join=a, extra=keep)
        self.wait_members([a, b], {a.name: True, b.name: True})
        # d and e run alone, each with an exchange declared before a's.
        d, e = self.node("d", extra=keep), self.node("e", extra=keep)
        for m in (d, e):
            self.connect(m).channel().exchange_declare("cl.old", "fanout", durable=True)
        cha = self.connect(a).channel()
        cha.exchange_declare("cl.old", "fanout", durable=True)
        self.settle(lambda: self.exchange_of(b, "cl.old"), ("fanout", True), "cl.old on b")
        b.broker.stop()
        self.wait_members([a], {a.name: True, b.name: False}, DETECT_S)
        cha.exchange_delete("cl.old")
        # While b is down, a keeps the deletion, also past keep_deletions.
        time.sleep(3)
        self.assertEqual(self.deletions_kept(a, "exchange", b"cl.old"), 1)
        self.join(d, a)
        self.settle(lambda: self.exchange_of(d, "cl.old"), None, "d's older cl.old")
        b = self.node("b", extra=keep)
        self.wait_members([a, b, d], {a.name: True, b.name: True, d.name: True}, DETECT_S)
        self.settle(lambda: self.exchange_of(b, "cl.old"), None, "cl.old on b")
        # Every member runs: the deletion, older than keep_deletions, is forgotten, in the
        # catalogs too.
        for m in (a, b, d):
            self.settle(lambda: self.deletions_kept(m, "exchange", b"cl.old"), 0,
                        "the deletion in the catalog of " + m.name)
        # So e's cl.old, declared before the deletion, is no longer deleted when e joins.
        self.join(e, a)
        self.wait_members([a, b, d, e], {m.name: True for m in (a, b, d, e)})
        for m in (a, b, d, e):
            self.settle(lambda: self.exchange_of(m, "cl.old"), ("fanout", True),
                        "e's cl.old on " + m.name)

    def test_one_queue_name_on_two_nodes_that_join_becomes_one_queue_with_all_messages(self):
        a, c = self.cluster("a", "c")
        b = self.node("b")  # a cluster of one
        cha = self.connect(a).channel()
        cha.confirm_delivery()
        cha.queue_declare("cl.both", durable=True)
        persistent = pika.BasicProperties(delivery_mode=2)
        for i in range(3):
            cha.basic_publish("", "cl.both", b"a-%d" % i, persistent, mandatory=True)
        chb = self.connect(b).channel()
        chb.confirm_delivery()
        chb.queue_declare("cl.both", durable=True)  # later than a's
        chb.queue_bind("cl.both", "amq.direct", "both")
        for i in range(2):
            chb.basic_publish("", "cl.both", b"b-%d" % i, persistent, mandatory=True)
        # A consumer on b holds b-0 unacknowledged.
        cons = self.connect(b)
        cch = cons.channel()
        cch.basic_qos(prefetch_count=1)
        cancels, got = [], []
        cch.add_on_cancel_callback(cancels.append)
        tag = cch.basic_consume("cl.both", lambda _c, m, p, body: got.append(body))
        self.assertTrue(pump(cons, lambda: got, DELIVER_S), "the consumer on b got nothing")
        self.assertEqual(got, [b"b-0"])

        status, _, raw, _ = b.api.call("POST", "/api/cluster/join", {"address": a.address})
        self.assertEqual(status, 204, raw)
        self.wait_members([a, b, c], {a.name: True, b.name: True, c.name: True})
        # The earlier declaration (a's) stays, on every node: b's queue cancels its consumer
        # and moves its messages there, the unacknowledged one marked redelivered.
        self.assertTrue(pump(cons, lambda: cancels, DELIVER_S),
                        "no basic.cancel for the consumer of b's queue")
        self.assertEqual([f.method.consumer_tag for f in cancels], [tag])
        for m in (a, b, c):
            self.settle(lambda: self.queues_of(m).get("cl.both"), a.name,
                        "the node of cl.both on " + m.name)
        probe = self.connect(b).channel()
        self.settle(lambda: probe.queue_declare("cl.both", passive=True).method.message_count,
                    5, "cl.both's depth seen from b")
        seen = []
        for _ in range(5):
            method, _, body = probe.basic_get("cl.both", auto_ack=True)
            seen.append((body, method.redelivered))
        self.assertEqual(seen, [(b"a-0", False), (b"a-1", False), (b"a-2", False),
                                (b"b-0", True), (b"b-1", False)])
        # b's binding holds, to the queue that stays.
        chb = self.connect(b).channel()
        chb.confirm_delivery()
        chb.basic_publish("amq.direct", "both", b"routed on b", persistent, mandatory=True)
        self.assertEqual(probe.basic_get("cl.both", auto_ack=True)[2], b"routed on b")
        # b's catalog no longer has its queue: restarted, b knows only a's.
        b.broker.stop()
        b = self.node("b")
        self.wait_members([a, b, c], {a.name: True, b.name: True, c.name: True}, DETECT_S)
        self.settle(lambda: self.queues_of(b).get("cl.both"), a.name,
                    "the node of cl.both on b after b restarted")
        probe = self.connect(b).channel()
        self.settle(lambda: probe.queue_declare("cl.both", passive=True).method.message_count,
                    0, "cl.both's depth after b restarted")
        self.assertEqual(self.queues_of(a).get("cl.both"), a.name)

    def test_one_stream_name_on_two_nodes_that_join_becomes_one_stream_with_all_messages(self):
        # b keeps 1 MiB of a stream's bodies in memory: most of what it has is on disk only.
        conf = os.path.join(self.root, "small.conf")
        with open(conf, "w") as f:
            f.write("persistence.queue_memory_mb = 1\n")
        a, b = self.node("a"), self.node("b", extra=("--config", conf))  # two clusters of one
        stream = {"x-queue-type": "stream"}
        # 600 bodies of 32 KiB: more than a page of the store, more than a window of credit.
        big = [b"big-%03d:" % i + bytes([65 + i % 26]) * 32768 for i in range(600)]
        for m, bodies in ((a, [b"a-0", b"a-1", b"a-2"]), (b, [b"b-0", b"b-1"] + big)):
            ch = self.connect(m).channel()  # a's first
            ch.queue_declare("cl.log", durable=True, arguments=stream)
            ch.confirm_delivery()
            for body in bodies:
                ch.basic_publish("", "cl.log", body)
        # A consumer of b's stream, from its first offset.
        cons = self.connect(b)
        cch = cons.channel()
        cch.basic_qos(prefetch_count=10)
        cancels, got = [], []
        cch.add_on_cancel_callback(cancels.append)
        cch.basic_consume("cl.log", lambda _c, m, p, body: got.append(body),
                          arguments={"x-stream-offset": "first"})
        self.assertTrue(pump(cons, lambda: len(got) >= 2, DELIVER_S), got)

        self.join(b, a)
        self.wait_members([a, b], {a.name: True, b.name: True})
        self.assertTrue(pump(cons, lambda: cancels, DELIVER_S),
                        "no basic.cancel for the consumer of b's stream")
        for m in (a, b):
            self.settle(lambda: self.queues_of(m).get("cl.log"), a.name,
                        "the node of cl.log on " + m.name)
        # a's stream has them all, b's after a's, with offsets of its own; read from b.
        reader = self.connect(b)
        rch = reader.channel()
        rch.basic_qos(prefetch_count=10)
        seen = []
        rch.basic_consume("cl.log", lambda _c, m, p, body: (seen.append(
            (body, p.headers["x-stream-offset"])), _c.basic_ack(m.delivery_tag)),
            arguments={"x-stream-offset": "first"})
        expected = [b"a-0", b"a-1", b"a-2", b"b-0", b"b-1"] + big
        self.assertTrue(pump(reader, lambda: len(seen) >= len(expected), DELIVER_S), len(seen))
        pump(reader, lambda: False, 0.3)
        self.assertEqual([o for _, o in seen], list(range(len(expected))))
        self.assertTrue([body for body, _ in seen] == expected,
                        "the bodies differ: %r" % [body[:8] for body, _ in seen])
        # b's catalog no longer has its stream: restarted, b knows only a's.
        b.broker.stop()
        b = self.node("b")
        self.wait_members([a, b], {a.name: True, b.name: True}, DETECT_S)
        self.settle(lambda: self.queues_of(b).get("cl.log"), a.name,
                    "the node of cl.log on b after b restarted")
        self.assertIn("yields to the queue of the same name", "".join(
            r.log_text() for n, r in self.runs if n == b.name))

    def test_publishes_that_reach_a_queue_after_it_yields_follow_its_messages(self):
        self.publish_through_a_yield(self.node("b"), 0)

    def test_a_long_paged_out_queue_moves_a_page_and_a_window_at_a_time_in_order(self):
        # b keeps 1 MiB of a queue's bodies in memory: most of the 30,000 messages (6 MB) are on
        # disk only, read back a page at a time as the move gets to them; and the move waits
        # for a's grants after each window of 20,000. The publisher's messages that reach the
        # queue meanwhile wait, and follow.
        conf = os.path.join(self.root, "small.conf")
        with open(conf, "w") as f:
            f.write("persistence.queue_memory_mb = 1\n")
        b = self.node("b", extra=("--config", conf))
        moved = self.publish_through_a_yield(b, 30000)
        self.assertGreaterEqual(moved, 30000)

    # -- a move cut short --------------------------------------------------------
    CUT_N = 20000  # messages of 2 KB in the queue that moves
    CUT_BACK = (r"after (\d+) of (\d+) sent were confirmed; (\d+) message\(s\) come back "
                r"and it stays")

    def move_under_way(self, name, a_extra=(), stream=False):
        """a (a cluster of one) has queue `name` and b a later one of that name, with CUT_N
        persistent messages (most of them on disk only: b keeps 1 MiB of bodies in memory).
        b joins a, and this returns once a has taken a tenth of them, while the rest moves:
        (a, b, a channel on a, the queue's arguments, the channel on b that published them)."""
        conf = os.path.join(self.root, "small.conf")
        with open(conf, "w") as f:
            f.write("persistence.queue_memory_mb = 1\n")
        args = {"x-queue-type": "stream"} if stream else None
        a = self.node("a", extra=a_extra)
        watch = self.connect(a).channel()
        watch.queue_declare(name, durable=True, arguments=args)  # earlier: it stays
        b = self.node("b", extra=("--config", conf))
        ch = self.connect(b).channel()
        ch.queue_declare(name, durable=True, arguments=args)
        persistent = pika.BasicProperties(delivery_mode=2)
        for i in range(self.CUT_N):
            ch.basic_publish("", name, b"%05d:" % i + b"x" * 2000, persistent)
        self.settle(lambda: ch.queue_declare(name, passive=True,
                                             arguments=args).method.message_count,
                    self.CUT_N, name + "'s depth on b")
        threading.Thread(target=lambda: b.api.call("POST", "/api/cluster/join",
                                                   {"address": a.address}),
                         daemon=True).start()
        self.assertTrue(wait_until(lambda: "this node's moves its messages there"
                                   in b.broker.log_text(), SYNC_S, 0.005),
                        "b's queue did not yield")
        self.assertTrue(wait_until(lambda: watch.queue_declare(
            name, passive=True, arguments=args).method.message_count >= self.CUT_N // 10,
                                   SYNC_S, 0.002), "the move did not reach a")
        return a, b, watch, args, ch

    def cut_short(self, b):
        """(confirmed, sent, came back) as b's queue logs them once the move is cut short."""
        found = wait_until(lambda: re.search(self.CUT_BACK, b.broker.log_text()), DETECT_S,
                           0.05)
        self.assertTrue(found, "b's queue did not take back what a had not confirmed")
        confirmed, sent, came_back = map(int, found.groups())
        self.assertEqual(confirmed + came_back, sent)
        self.assertLess(confirmed, self.CUT_N)
        return confirmed, sent, came_back

    def read_all(self, m, name, count, stream=False):
        """The numbers of the messages of m's queue `name` (at least `count`, from the first
        offset of a stream), in the order they come."""
        conn = self.connect(m)
        ch = conn.channel()
        got = []
        if stream:
            ch.basic_qos(prefetch_count=500)
            ch.basic_consume(name, lambda c, d, p, body: (
                got.append(int(body.split(b":")[0])), c.basic_ack(d.delivery_tag)),
                arguments={"x-stream-offset": "first"})
        else:
            ch.basic_consume(name, lambda c, d, p, body: got.append(int(body.split(b":")[0])),
                             auto_ack=True)
        pump(conn, lambda: len(got) >= count, DELIVER_S * 3)
        pump(conn, lambda: False, 0.5)
        conn.close()
        return got

    def assert_every_message_in_order(self, got, came_back, n=None):
        """Every message (0 to n - 1, CUT_N by default) is there, in order of first coming;
        what a had stored but not yet confirmed when the move was cut comes twice (b sent it
        again), and nothing else."""
        n = n or self.CUT_N
        self.assertEqual(sorted(set(range(n)) - set(got)), [], "lost")
        self.assertEqual(list(dict.fromkeys(got)), list(range(n)), "out of order")
        self.assertLessEqual(len(got) - n, came_back, "more twice than were in flight")

    def moved_again_when_back(self, a, b, name):
        """a came back: its queue stays, b's moves what it kept there."""
        self.wait_members([a, b], {a.name: True, b.name: True}, DETECT_S)
        for m in (a, b):
            self.settle(lambda: self.queues_of(m).get(name), a.name,
                        "the node of %s on %s after a came back" % (name, m.name), DETECT_S)
        self.assertTrue(wait_until(lambda: "yields to the queue of the same name on node"
                                   in b.broker.log_text(), DETECT_S, 0.2),
                        "b's queue did not move its messages to a's once a was back")

    def test_a_queue_whose_move_loses_the_queue_that_stays_keeps_what_that_one_had_not_confirmed(self):
        # a is killed mid-move. What it had not confirmed stays with b's queue, which goes on
        # as the queue of its name; once a is back, the move starts over.
        a, b, _, _, _ = self.move_under_way("cl.cut")
        self.kill(a)
        confirmed, _, came_back = self.cut_short(b)
        self.settle(lambda: self.queues_of(b).get("cl.cut"), b.name, "cl.cut's node on b",
                    DETECT_S)
        probe = self.connect(b).channel()
        self.settle(lambda: probe.queue_declare("cl.cut", passive=True).method.message_count,
                    self.CUT_N - confirmed, "cl.cut's depth on b after a went")
        a = self.node("a")  # same data directory and cluster port
        self.moved_again_when_back(a, b, "cl.cut")
        self.assert_every_message_in_order(self.read_all(a, "cl.cut", self.CUT_N), came_back)

    def test_a_queue_whose_move_loses_the_queue_that_stays_to_a_crash_moves_to_its_restart(self):
        # a's queue crashes mid-move (and nacks what its store had not committed); a starts it
        # again from its store, and b's queue moves the rest to that one.
        a, b, _, _, _ = self.move_under_way("cl.crash", a_extra=["--fault-injection"])
        status, _, raw, _ = a.api.call("POST", "/api/debug/crash/queue/%2F/cl.crash")
        self.assertEqual(status, 204, raw)
        _, _, came_back = self.cut_short(b)
        self.assertTrue(wait_until(lambda: len(re.findall(
            "yields to the queue of the same name on node", b.broker.log_text())) == 1,
                                   DETECT_S, 0.1),
                        "b's queue did not move its messages to a's restarted queue")
        for m in (a, b):
            self.settle(lambda: self.queues_of(m).get("cl.crash"), a.name,
                        "the node of cl.crash on %s" % m.name)
        self.assert_every_message_in_order(self.read_all(a, "cl.crash", self.CUT_N), came_back)

    def test_what_the_queue_that_stays_refuses_for_its_limits_is_not_moved_and_the_move_ends(self):
        # a's queue takes at most 100 messages and refuses more (reject-publish); b's, declared
        # later without a limit, has 1,000. The move ends with a's first 100, and b's queue
        # with it: what a refused is not kept, nor sent again.
        a, b = self.node("a"), self.node("b")
        limit = {"x-max-length": 100, "x-overflow": "reject-publish"}
        self.connect(a).channel().queue_declare("cl.limit", durable=True, arguments=limit)
        ch = self.connect(b).channel()
        ch.queue_declare("cl.limit", durable=True)
        for i in range(1000):
            ch.basic_publish("", "cl.limit", b"%05d:" % i, pika.BasicProperties(delivery_mode=2))
        self.settle(lambda: ch.queue_declare("cl.limit", passive=True).method.message_count,
                    1000, "cl.limit's depth on b")
        self.join(b, a)
        self.wait_members([a, b], {a.name: True, b.name: True})
        refused = r"the queue on node \S+ refused (\d+) of the moved message\(s\)"
        found = wait_until(lambda: re.search(refused, b.broker.log_text()), SYNC_S, 0.1)
        self.assertTrue(found, "the move did not end")
        self.assertEqual(int(found.group(1)), 900)
        self.assertIn("declared earlier: 100 message(s) moved there", b.broker.log_text())
        self.assertEqual(self.read_all(a, "cl.limit", 100), list(range(100)))

    def test_a_queue_deleted_while_another_moves_its_messages_to_it_goes_on_both_nodes(self):
        a, b, watch, _, _ = self.move_under_way("cl.gone")
        watch.queue_delete("cl.gone")
        for m in (a, b):
            self.settle(lambda: "cl.gone" in self.queues_of(m), False,
                        "cl.gone on %s after its deletion" % m.name)
        # Nor does it come back from b's catalog or files.
        b.broker.stop()
        b = self.node("b")
        self.wait_members([a, b], {a.name: True, b.name: True}, DETECT_S)
        pump(self.connect(b), lambda: False, 1.0)
        for m in (a, b):
            self.assertNotIn("cl.gone", self.queues_of(m), m.name)

    def test_a_stream_whose_move_loses_the_stream_that_stays_keeps_the_rest(self):
        # As for a queue: b's stream goes on with what a had not confirmed, and with what was
        # published to it meanwhile (without confirms: nothing can tell that publisher to try
        # again), after it.
        a, b, _, _, ch = self.move_under_way("cl.cutlog", stream=True)
        late = 20  # (b's connection sends them to b's stream, which holds them)
        for i in range(late):
            ch.basic_publish("", "cl.cutlog", b"%05d:late" % (self.CUT_N + i))
        self.kill(a)
        confirmed, _, came_back = self.cut_short(b)
        self.assertTrue(wait_until(lambda: "stays on this node: the queue it moved its messages "
                                   "to went away" in b.broker.log_text(), DETECT_S, 0.05),
                        "b's stream did not stay")
        self.settle(lambda: self.queues_of(b).get("cl.cutlog"), b.name,
                    "cl.cutlog's node on b", DETECT_S)
        # b's stream holds what a had not confirmed, then what came during the move.
        total = self.CUT_N + late
        self.assertEqual(self.read_all(b, "cl.cutlog", total - confirmed, stream=True),
                         list(range(confirmed, total)))
        a = self.node("a")
        self.moved_again_when_back(a, b, "cl.cutlog")
        self.assert_every_message_in_order(
            self.read_all(a, "cl.cutlog", total, stream=True), came_back, total)

    def publish_through_a_yield(self, b, prefill):
        """b (a cluster of one) has queue cl.flow, declared after a's, with `prefill` messages,
        and a publisher with confirms before, during and after b joins a: every acknowledged
        message ends up in a's queue once, the prefill first, all in order. Returns how many
        messages b's queue moved."""
        a = self.node("a")
        self.connect(a).channel().queue_declare("cl.flow", durable=True)  # earlier: it stays
        conn = self.connect(b)
        ch = conn.channel()
        ch.queue_declare("cl.flow", durable=True)
        persistent = pika.BasicProperties(delivery_mode=2)
        for i in range(prefill):
            ch.basic_publish("", "cl.flow", b"%d:" % (i - prefill) + b"x" * 190, persistent)
        self.settle(lambda: ch.queue_declare("cl.flow", passive=True).method.message_count,
                    prefill, "cl.flow's depth on b")
        ch.confirm_delivery()
        joined = threading.Event()
        answers = []

        def join():
            answers.append(b.api.call("POST", "/api/cluster/join", {"address": a.address}))
            joined.set()
        threading.Thread(target=join, daemon=True).start()
        # What b's connection sends its (cached) queue after the yield is forwarded to a's.
        acked, nacked = [], []
        deadline, stop_at = time.monotonic() + 20, None
        for i in range(20000):
            if joined.is_set() and stop_at is None:
                stop_at = time.monotonic() + 2
            if time.monotonic() > min(deadline, stop_at or deadline):
                break
            try:
                ch.basic_publish("", "cl.flow", b"%d:" % i, persistent)
                acked.append(i)
            except pex.NackError:
                nacked.append(i)
        self.assertTrue(joined.wait(10), "the join did not end")
        self.assertEqual(answers[0][0], 204, answers[0][2])
        self.wait_members([a, b], {a.name: True, b.name: True})
        self.settle(lambda: self.queues_of(b).get("cl.flow"), a.name, "cl.flow's node on b")
        # The old queue moved its messages and forwarded what b's connection sent it after the
        # yield, and ended.
        pattern = r"forwarded (\d+) message\(s\) published to it after it yielded"
        self.assertTrue(wait_until(lambda: re.search(pattern, b.broker.log_text()), 30, 0.2),
                        "the yielding queue did not end within its 10 s")
        forwarded = int(re.search(pattern, b.broker.log_text()).group(1))
        moved = int(re.search(r"declared earlier: (\d+) message\(s\) moved there",
                              b.broker.log_text()).group(1))
        # Every acknowledged message is in a's queue, once, in the order it was published.
        probe = self.connect(a).channel()
        got = []
        while True:
            method, _, body = probe.basic_get("cl.flow", auto_ack=True)
            if method is None:
                break
            got.append(int(body.split(b":")[0]))
        self.assertEqual(len(got), len(set(got)), "a message came twice")
        self.assertEqual(got[:prefill], list(range(-prefill, 0)), "the prefill is not whole")
        self.assertEqual(got, sorted(got))
        missing = sorted(set(acked) - set(got))
        self.assertEqual(missing, [], "acknowledged but lost (of %d acked, %d nacked)"
                         % (len(acked), len(nacked)))
        self.assertGreater(forwarded, 0)
        self.assertGreater(len(acked), forwarded)
        return moved

    def exchange_of(self, m, name, vhost="/"):
        """(type, durable) of exchange `name` from m's /api/exchanges, None if it has none."""
        status, x, raw, _ = m.api.call("GET", "/api/exchanges/%s/%s" % (quote(vhost), quote(name)))
        if status == 404:
            return None
        self.assertEqual(status, 200, raw)
        return x["type"], x["durable"]

    def test_one_exchange_name_declared_two_ways_on_two_nodes_takes_the_later_definition(self):
        a, b = self.node("a"), self.node("b")  # two clusters of one
        ca = self.connect(a)
        cha = ca.channel()
        cha.queue_declare("cl.kind.q", durable=True)
        cha.exchange_declare("cl.kind", "direct", durable=True)
        cha.queue_bind("cl.kind.q", "cl.kind", "k")
        cha.exchange_declare("cl.kind.src", "fanout", durable=True)
        cha.exchange_bind("cl.kind", "cl.kind.src")
        cha.exchange_declare("cl.gone", "direct", durable=True)
        cha.queue_bind("cl.kind.q", "cl.gone", "k")
        cha.exchange_declare("cl.same", "topic", durable=True)
        chb = self.connect(b).channel()
        chb.exchange_declare("cl.kind", "fanout", durable=True)  # later than a's
        chb.exchange_declare("cl.gone", "direct", durable=False)
        chb.exchange_declare("cl.same", "topic", durable=True)
        chb.exchange_declare("cl.late", "topic")
        cha.exchange_declare("cl.late", "headers")  # later than b's

        status, _, raw, _ = b.api.call("POST", "/api/cluster/join", {"address": a.address})
        self.assertEqual(status, 204, raw)
        self.wait_members([a, b], {a.name: True, b.name: True})
        # The later declaration is the definition on every node.
        for m in (a, b):
            for name, definition in (("cl.kind", ("fanout", True)), ("cl.gone", ("direct", False)),
                                     ("cl.late", ("headers", False)),
                                     ("cl.same", ("topic", True))):
                self.settle(lambda: self.exchange_of(m, name), definition,
                            "%s on %s" % (name, m.name))
        # a's bindings hold, and route as a fanout exchange does: any key, also through the
        # exchange bound to it.
        cha.confirm_delivery()
        cha.basic_publish("cl.kind", "not-k", b"direct", mandatory=True)
        cha.basic_publish("cl.kind.src", "other", b"via src", mandatory=True)
        cha.basic_publish("cl.gone", "k", b"gone", mandatory=True)
        self.assertEqual([get_one(ca, cha, "cl.kind.q")[2] for _ in range(3)],
                         [b"direct", b"via src", b"gone"])
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            cha.exchange_declare("cl.kind", "direct", durable=True)
        self.assertEqual(ctx.exception.reply_code, 406, ctx.exception)
        self.assertIn("inequivalent arg 'type'", ctx.exception.reply_text)
        # a's catalog holds the definitions it took: restarted while b is down, a has them
        # alone, with the bindings of the durable ones.
        b.broker.stop()
        a.broker.stop()
        a = self.node("a")
        self.assertEqual(self.exchange_of(a, "cl.kind"), ("fanout", True))
        self.assertEqual(self.exchange_of(a, "cl.gone"), None)
        self.assertEqual(self.exchange_of(a, "cl.same"), ("topic", True))
        self.assertEqual(
            sorted((x["source"], x["destination"], x["routing_key"])
                   for x in a.api.get("/api/bindings/%2F") if x["source"]),
            [("cl.kind", "cl.kind.q", "k"), ("cl.kind.src", "cl.kind", "")])

    @unittest.skipUnless(FAKETIME_LIB, "needs Debian's faketime")
    def test_a_node_whose_clock_is_far_off_is_logged_when_the_nodes_meet(self):
        a = self.node("a")
        ahead = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": "+20s",
                 "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                 "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
        b = self.node("b", join=a, env=ahead)
        c = self.node("c", join=a)
        everyone = {a.name: True, b.name: True, c.name: True}
        self.wait_members([a, b, c], everyone)
        # Each side of each meeting checks: b (which met a, and c when c joined) finds their
        # clocks about 20 s behind its own; a and c find b's ahead, and each other's in step.
        pattern = r"the clock of node (\S+) is ([0-9.]+) s (ahead of|behind) this node's"

        def logged(m, count):
            wait_until(lambda: len(set(re.findall(pattern, m.broker.log_text()))) >= count,
                       SYNC_S, 0.1)
            found = re.findall(pattern, m.broker.log_text())
            for _, seconds, _ in found:
                self.assertTrue(19.0 <= float(seconds) <= 21.0, found)
            return sorted({(n, way) for n, _, way in found})
        self.assertEqual(logged(b, 2), sorted([(a.name, "behind"), (c.name, "behind")]))
        self.assertEqual(logged(a, 1), [(b.name, "ahead of")])
        self.assertEqual(logged(c, 1), [(b.name, "ahead of")])

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

    def three_with_a_queue_on_c(self):
        """Nodes a, b and c, with c's durable queue cl.on_c known on a and b."""
        a, b, c = self.cluster("a", "b", "c")
        self.connect(c).channel().queue_declare("cl.on_c", durable=True)
        for m in (a, b):
            self.settle(lambda: self.queues_of(m).get("cl.on_c"), c.name, "cl.on_c on " + m.name)
        return a, b, c

    @needs_warrenctl
    def test_a_node_down_for_good_is_forgotten_and_refused_until_it_joins_again(self):
        a, b, c = self.three_with_a_queue_on_c()
        # A running member is not forgotten: it can leave by itself.
        r = warrenctl(a.http_port, "forget_cluster_node", c.name)
        self.assertNotIn(r.returncode, (0, 64), r.stdout + r.stderr)
        self.assertIn("running", r.stdout + r.stderr)
        r = warrenctl(a.http_port, "forget_cluster_node", "nobody@localhost")
        self.assertNotIn(r.returncode, (0, 64), r.stdout + r.stderr)
        self.kill(c)
        self.wait_members([a, b], {a.name: True, b.name: True, c.name: False}, DETECT_S)
        r = warrenctl(a.http_port, "forget_cluster_node", c.name)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.wait_members([a, b], {a.name: True, b.name: True})
        self.assertEqual(self.cluster_status(b), ([a.name, b.name], [a.name, b.name]))
        for m in (a, b):
            self.settle(lambda: "cl.on_c" in self.queues_of(m), False,
                        "cl.on_c forgotten on " + m.name)
        # c comes back on its data directory, which still names a and b: they refuse it
        # (RabbitMQ's forgotten node is not taken back either), and it forgets them.
        c = self.node("c")
        self.settle(lambda: self.members_of(c), {c.name: True}, "c alone after its restart",
                    DETECT_S)
        self.assertIn("removed this node from the cluster", c.broker.log_tail(4000))
        self.assertEqual(set(self.queues_of(c)), {"cl.on_c"})
        time.sleep(1.5)  # a and b do not take it back meanwhile (retries are every second)
        for m in (a, b):
            self.assertEqual(self.members_of(m), {a.name: True, b.name: True}, m.name)
            self.assertNotIn("cl.on_c", self.queues_of(m))
        # Joined again, it is a member like any other, with its queue.
        r = warrenctl(c.http_port, "join_cluster", a.address)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.wait_members([a, b, c], {a.name: True, b.name: True, c.name: True})
        for m in (a, b):
            self.settle(lambda: self.queues_of(m).get("cl.on_c"), c.name,
                        "cl.on_c back on " + m.name)

    @needs_warrenctl
    def test_a_removal_reaches_a_member_that_was_down_and_a_join_after_it_holds(self):
        a, b, c = self.three_with_a_queue_on_c()
        self.kill(b)
        self.kill(c)
        self.wait_members([a], {a.name: True, b.name: False, c.name: False}, DETECT_S)
        r = warrenctl(a.http_port, "forget_cluster_node", c.name)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # c comes back first: a refuses it; b, down, cannot. Then b comes back, remembering c
        # as a member: it learns of the removal from a, forgets c and tells it so.
        c = self.node("c")
        self.settle(lambda: self.members_of(c), {c.name: True, b.name: False},
                    "c, refused by a", DETECT_S)
        b = self.node("b")
        for m, expected in ((a, {a.name: True, b.name: True}), (b, {a.name: True, b.name: True}),
                            (c, {c.name: True})):
            self.settle(lambda: self.members_of(m), expected, "/api/nodes of " + m.name,
                        DETECT_S)
        time.sleep(1.5)  # and it stays so (retries are every second)
        self.assertEqual(self.members_of(b), {a.name: True, b.name: True})
        self.assertEqual(self.members_of(c), {c.name: True})
        self.assertNotIn("cl.on_c", self.queues_of(b))
        self.assertIn("removed from the cluster", c.broker.log_tail(6000))
        # c joins again while b is down: b, which knows of the removal, takes c back when they
        # meet, since c joined after it.
        self.kill(b)
        self.wait_members([a], {a.name: True, b.name: False}, DETECT_S)
        r = warrenctl(c.http_port, "join_cluster", a.address)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.wait_members([a, c], {a.name: True, b.name: False, c.name: True})
        b = self.node("b")
        everyone = {a.name: True, b.name: True, c.name: True}
        self.wait_members([a, b, c], everyone, DETECT_S)
        time.sleep(1.5)
        for m in (a, b, c):
            self.assertEqual(self.members_of(m), everyone, m.name)
            self.settle(lambda: self.queues_of(m).get("cl.on_c"), c.name, "cl.on_c on " + m.name)


# -- a partition between two network namespaces ----------------------------------------------
#
# The test process starts a child (this file with PARTITION_CHILD_FLAG) in a new network
# namespace A. The child makes a second one, B (held by a sleeping process), joins the two
# with a veth pair wa (A, ADDRESS_A) - wb (B, ADDRESS_B), and runs node a in A and node b in
# B (nsenter). Clients run in A; what b sees while the link is down is looked at from inside
# B (this file with IN_B_FLAG, under nsenter). The child reports its steps as one JSON line.

PARTITION_CHILD_FLAG = "--partition-child"
IN_B_FLAG = "--partition-in-b"
PARENT_NETNS_VAR = "WARREN_CLUSTER_PARENT_NETNS"
PARTITION_DIR_VAR = "WARREN_CLUSTER_PARTITION_DIR"
ADDRESS_A, ADDRESS_B = "10.77.0.1", "10.77.0.2"
NAME_A, NAME_B = "a@localhost", "b@localhost"
# Each node is alone in its namespace: fixed ports are free there.
AMQP_PORT, HTTP_PORT, CLUSTER_PORT = 5672, 15672, 25672
PARTITION_CHILD_TIMEOUT_S = 120.0
PARTITION_S = 20.0  # the nodes see each other down (heartbeats, 3 s connection timeout)
HEAL_S = 30.0       # after the link is back, both see both running again
STAY_S = 5.0        # a view that must not change: longer than the connection timeout and a
                    # retry (every second) of the cluster
BOTH = {NAME_A: True, NAME_B: True}


def in_namespace_of(pid):
    return ["nsenter", "-t", str(pid), "-n"]


def run_short(cmd, timeout=10):
    """None when cmd succeeds, else what it said."""
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "%s: %s" % (" ".join(cmd), exc)
    return None if r.returncode == 0 else "%s: %s" % (" ".join(cmd), r.stdout.strip())


def start_holder():
    """(a process that holds a new network namespace B, None) or (None, why not)."""
    holder = subprocess.Popen(["unshare", "-n", "sleep", "600"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def moved():
        try:
            return holder.poll() is not None or netns_id(holder.pid) != netns_id()
        except OSError:
            return True
    wait_until(moved, 5.0, 0.02)
    if holder.poll() is not None:
        return None, "unshare -n: %s" % holder.stderr.read().decode(errors="replace").strip()
    if netns_id(holder.pid) == netns_id():
        stop_process(holder)
        return None, "unshare -n left its process in this network namespace"
    return holder, None


def make_link(holder_pid):
    """Joins this namespace (A) and the holder's (B) with the veth pair wa - wb, ADDRESS_A on
    wa, ADDRESS_B on wb, every link up; None, or the step that failed."""
    b = in_namespace_of(holder_pid)
    steps = (["ip", "link", "add", "wa", "type", "veth", "peer", "name", "wb"],
             ["ip", "link", "set", "wb", "netns", str(holder_pid)],
             ["ip", "addr", "add", ADDRESS_A + "/24", "dev", "wa"],
             ["ip", "link", "set", "wa", "up"],
             b + ["ip", "link", "set", "lo", "up"],
             b + ["ip", "addr", "add", ADDRESS_B + "/24", "dev", "wb"],
             b + ["ip", "link", "set", "wb", "up"])
    for step in steps:
        problem = run_short(step)
        if problem:
            return problem
    return None


def stop_process(proc):
    if proc.poll() is None:
        proc.kill()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass


def log_tail(path, max_chars=3000):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError as exc:
        return "(no log: %s)" % exc
    return text if len(text) <= max_chars else "...\n" + text[-max_chars:]


def start_partition_node(root, short, name, address, prefix=(), join=None):
    """warrend on `address` (every listener; fixed ports), its stderr in <root>/<short>.log;
    returns the process once it listens for AMQP, HTTP and the cluster."""
    log = os.path.join(root, short + ".log")
    cmd = [*prefix, os.environ["WARREND"], "--bind", address,
           "--amqp-port", str(AMQP_PORT), "--stomp-port", "0", "--http-port", str(HTTP_PORT),
           "--cluster-port", str(CLUSTER_PORT), "--cluster-name=" + name,
           "--data-dir", os.path.join(root, short), "--log-level", "info",
           # guest logs in through ADDRESS_A/ADDRESS_B: there is no loopback listener.
           "--config", os.path.join(root, "warren.conf")]
    if join:
        cmd.append("--cluster-join=" + join)
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=out)

    def listening():
        protos = {m.group("proto") for m in LISTENING_RE.finditer(log_tail(log, 10 ** 6))}
        return proc.poll() is not None or {"amqp", "http", "cluster"} <= protos
    wait_until(listening, START_TIMEOUT_S, 0.1)
    if proc.poll() is not None or not listening():
        stop_process(proc)
        raise BrokerError("node %s did not start listening (exit code %s)"
                          % (name, proc.returncode))
    return proc


def amqp(address):
    return pika.BlockingConnection(pika.ConnectionParameters(
        host=address, port=AMQP_PORT, credentials=pika.PlainCredentials("guest", "guest"),
        connection_attempts=1, socket_timeout=5, stack_timeout=10,
        blocked_connection_timeout=30))


def on_channel(address, action):
    """action(channel) on a new connection to the node at address, closed afterwards."""
    conn = amqp(address)
    try:
        return action(conn.channel())
    finally:
        close_quietly(conn)


def declare_queue(address, queue):
    on_channel(address, lambda ch: ch.queue_declare(queue, durable=True))
    return "done"


def passive_declare(address, queue):
    """[200, ""] when the node at address has the queue, else [reply code, reply text]."""
    try:
        on_channel(address, lambda ch: ch.queue_declare(queue, passive=True))
        return [200, ""]
    except pex.ChannelClosedByBroker as exc:
        return [exc.reply_code, exc.reply_text]


def declare_fanout(address, exchange):
    on_channel(address, lambda ch: ch.exchange_declare(exchange, "fanout", durable=True))
    return "done"


def delete_exchange(address, exchange):
    on_channel(address, lambda ch: ch.exchange_delete(exchange))
    return "done"


def publish_confirmed(address, queue, body):
    """Publishes body to `queue` through the default exchange, mandatory, and waits for the
    confirm (pika raises on a nack or a return)."""
    def publish(ch):
        ch.confirm_delivery()
        ch.basic_publish("", queue, body.encode(), pika.BasicProperties(delivery_mode=2),
                         mandatory=True)
    on_channel(address, publish)
    return "done"


def fetch(address, queue):
    """The body of the next message of `queue` (basic.get, auto-ack) or None."""
    method, _, body = on_channel(address, lambda ch: ch.basic_get(queue, auto_ack=True))
    return None if method is None else body.decode("utf-8", "replace")


def node_api(address):
    return Api(address, HTTP_PORT)


def says_down(reply):
    """Whether a passive declare was answered as for a queue whose node is down."""
    return isinstance(reply, list) and reply[0] == 404 and "down" in reply[1]


# What a client in B can look at (IN_B_FLAG), and the checks other than equality, by name.
LOOKS_IN_B = {
    "nodes": lambda arg: nodes_running(node_api(ADDRESS_B), timeout=5),
    "declare_queue": lambda arg: declare_queue(ADDRESS_B, arg),
    "passive_declare": lambda arg: passive_declare(ADDRESS_B, arg),
    "publish": lambda arg: publish_confirmed(ADDRESS_B, arg[0], arg[1]),
}
CHECKS = {"says_down": says_down}


def observe(get, ok, timeout, interval=0.2):
    """Calls get() until ok(its value) or timeout passes (once when timeout is 0): (the last
    value, the seconds it took). An exception counts as a value: its type and text."""
    start = time.monotonic()
    last = []

    def attempt():
        try:
            last.append(get())
        except Exception as exc:  # part of what is seen, the test reports it
            last.append("%s: %s" % (type(exc).__name__, exc))
        return ok(last[-1])
    wait_until(attempt, timeout, interval)
    return last[-1], round(time.monotonic() - start, 1)


class StepFailed(Exception):
    pass


class Steps:
    """The observations of the partition scenario, in order: {step, want, got, ok, seconds};
    the first that is not as wanted ends the scenario."""

    def __init__(self, holder_pid):
        self.records, self.holder_pid = [], holder_pid

    def record(self, what, want, got, seconds, ok):
        self.records.append({"step": what, "want": want, "got": got, "ok": ok,
                             "seconds": seconds})
        sys.stderr.write("%s: %s after %.1f s\n" % (what, "ok" if ok else "NOT OK", seconds))
        sys.stderr.flush()
        if not ok:
            raise StepFailed(what)

    def expect(self, what, get, want, timeout, ok=None):
        """Polls get() until it gives want (or ok(value), want then saying what is wanted)."""
        got, seconds = observe(get, ok or (lambda v: v == want), timeout)
        self.record(what, want, got, seconds, (ok or (lambda v: v == want))(got))

    def hold(self, what, get, want, seconds):
        """get() gives want every time it is called for `seconds`."""
        got, took = observe(get, lambda v: v != want, seconds)
        self.record(what, want, got, took, got == want)

    def do(self, what, action):
        """Runs action() once; it fails by raising."""
        self.expect(what, lambda: action() or "done", "done", 0)

    def expect_in_b(self, what, look, want, timeout=0.0, arg=None, check=None):
        """As expect, with a client inside namespace B (LOOKS_IN_B[look](arg)); check: a name
        in CHECKS, want then saying what is wanted."""
        request = json.dumps({"look": look, "arg": arg, "want": want, "timeout": timeout,
                              "check": check})
        cmd = in_namespace_of(self.holder_pid) + [sys.executable, os.path.abspath(__file__),
                                                  IN_B_FLAG, request]
        start = time.monotonic()
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=timeout + 30,
                               cwd=os.path.dirname(os.path.abspath(__file__)))
            lines = r.stdout.strip().splitlines()
            seen = json.loads(lines[-1]) if lines else {
                "got": "no answer from inside B (exit code %s): %s" % (r.returncode,
                                                                       r.stderr[-2000:]),
                "seconds": round(time.monotonic() - start, 1)}
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            seen = {"got": "%s: %s" % (type(exc).__name__, exc),
                    "seconds": round(time.monotonic() - start, 1)}
        ok = CHECKS[check](seen["got"]) if check else seen["got"] == want
        self.record(what + " (seen from inside B)", want, seen["got"], seen["seconds"], ok)


def partition_scenario(steps):
    a, b = node_api(ADDRESS_A), node_api(ADDRESS_B)
    # (1) One cluster across the link.
    steps.expect("a lists both nodes running", lambda: nodes_running(a, timeout=5), BOTH,
                 SYNC_S + START_TIMEOUT_S)
    steps.expect("b lists both nodes running", lambda: nodes_running(b, timeout=5), BOTH, SYNC_S)
    steps.do("declare durable queue p.on_a on a", lambda: declare_queue(ADDRESS_A, "p.on_a"))
    steps.do("declare durable queue p.on_b on b", lambda: declare_queue(ADDRESS_B, "p.on_b"))
    homes = {"p.on_a": NAME_A, "p.on_b": NAME_B}
    for short, api in (("a", a), ("b", b)):
        steps.expect("p.on_a and p.on_b with their nodes on " + short,
                     lambda: {q: n for q, n in queue_homes(api, timeout=5).items() if q in homes},
                     homes, SYNC_S)
    steps.do("declare durable exchange p.x.gone on a",
             lambda: declare_fanout(ADDRESS_A, "p.x.gone"))
    steps.expect("b knows p.x.gone",
                 lambda: b.call("GET", "/api/exchanges/%2F/p.x.gone", timeout=5)[0], 200, SYNC_S)

    # (2) The partition.
    steps.do("ip link set wa down", lambda: run_short(["ip", "link", "set", "wa", "down"]))
    steps.expect("a lists b as not running", lambda: nodes_running(a, timeout=5),
                 {NAME_A: True, NAME_B: False}, PARTITION_S)
    steps.expect_in_b("b lists a as not running", "nodes", {NAME_A: False, NAME_B: True},
                      PARTITION_S)
    steps.hold("a keeps listing b as not running while the link is down (its retries fail)",
               lambda: nodes_running(a, timeout=5), {NAME_A: True, NAME_B: False}, STAY_S)
    steps.expect_in_b("b still lists a as not running", "nodes", {NAME_A: False, NAME_B: True})
    down = "[404, '... down ...']"
    steps.expect("a answers a passive declare of p.on_b with 404 and 'down'",
                 lambda: passive_declare(ADDRESS_A, "p.on_b"), down, SYNC_S, ok=says_down)
    steps.expect_in_b("b answers a passive declare of p.on_a with 404 and 'down'",
                      "passive_declare", down, SYNC_S, arg="p.on_a", check="says_down")

    # (3) Both sides go on alone.
    def declare_exchange():
        on_channel(ADDRESS_A, lambda ch: ch.exchange_declare("p.x.a", "topic", durable=True))
    steps.do("declare durable exchange p.x.a on a", declare_exchange)
    steps.expect_in_b("declare durable queue p.q.b on b", "declare_queue", "done", arg="p.q.b")
    steps.do("delete exchange p.x.gone on a", lambda: delete_exchange(ADDRESS_A, "p.x.gone"))
    # One name, a queue on each side: a's is declared first.
    on_a, on_b = "published on a to its p.both", "published on b to its p.both"
    steps.do("declare durable queue p.both on a", lambda: declare_queue(ADDRESS_A, "p.both"))
    steps.do("publish to p.both on a", lambda: publish_confirmed(ADDRESS_A, "p.both", on_a))
    steps.expect_in_b("declare durable queue p.both on b", "declare_queue", "done", arg="p.both")
    steps.expect_in_b("publish to p.both on b", "publish", "done", arg=["p.both", on_b])

    # (4) The link is back.
    steps.do("ip link set wa up", lambda: run_short(["ip", "link", "set", "wa", "up"]))
    steps.expect("a lists both nodes running again", lambda: nodes_running(a, timeout=5), BOTH,
                 HEAL_S)
    steps.expect("b lists both nodes running again", lambda: nodes_running(b, timeout=5), BOTH,
                 HEAL_S)
    steps.hold("a and b keep listing both nodes running",
               lambda: {"a": nodes_running(a, timeout=5), "b": nodes_running(b, timeout=5)},
               {"a": BOTH, "b": BOTH}, STAY_S)
    steps.expect("a knows p.q.b, made on b during the partition",
                 lambda: queue_homes(a, timeout=5).get("p.q.b"), NAME_B, SYNC_S)
    steps.expect("b knows p.x.a, made on a during the partition",
                 lambda: b.call("GET", "/api/exchanges/%2F/p.x.a", timeout=5)[0], 200, SYNC_S)
    steps.expect("a answers a passive declare of p.on_b again",
                 lambda: passive_declare(ADDRESS_A, "p.on_b"), [200, ""], SYNC_S)
    steps.expect("b answers a passive declare of p.on_a again",
                 lambda: passive_declare(ADDRESS_B, "p.on_a"), [200, ""], SYNC_S)
    steps.expect("b no longer has p.x.gone, deleted on a during the partition",
                 lambda: b.call("GET", "/api/exchanges/%2F/p.x.gone", timeout=5)[0], 404, SYNC_S)
    steps.expect("nor has a", lambda: a.call("GET", "/api/exchanges/%2F/p.x.gone",
                                             timeout=5)[0], 404, 0)
    steps.expect("p.both lives on a, seen from both nodes",
                 lambda: [queue_homes(api, timeout=5).get("p.both") for api in (a, b)],
                 [NAME_A, NAME_A], SYNC_S)
    steps.expect("basic.get of p.both on b: a's message", lambda: fetch(ADDRESS_B, "p.both"),
                 on_a, DELIVER_S)
    steps.expect("basic.get of p.both on b: b's message, moved to a's queue",
                 lambda: fetch(ADDRESS_B, "p.both"), on_b, DELIVER_S)
    steps.expect("p.both is empty after them", lambda: fetch(ADDRESS_B, "p.both"), None, 0)
    for (writer, writer_addr), queue, (reader, reader_addr) in (
            (("a", ADDRESS_A), "p.on_b", ("b", ADDRESS_B)),
            (("a", ADDRESS_A), "p.q.b", ("b", ADDRESS_B)),
            (("b", ADDRESS_B), "p.on_a", ("a", ADDRESS_A))):
        body = "published on %s for %s after the partition" % (writer, queue)
        steps.do("publish on %s to %s (confirmed, mandatory)" % (writer, queue),
                 lambda: publish_confirmed(writer_addr, queue, body))
        steps.expect("basic.get of %s on %s" % (queue, reader),
                     lambda: fetch(reader_addr, queue), body, DELIVER_S)
        steps.expect(queue + " is empty after it", lambda: fetch(reader_addr, queue), None, 0)


def partition_child():
    """Runs in network namespace A; prints {"steps": [...], "complete": bool, "error",
    "exited": {node: code}} or {"no_namespace": why} as one JSON line."""
    parent, root = os.environ.get(PARENT_NETNS_VAR), os.environ.get(PARTITION_DIR_VAR)
    if not parent or str(netns_id()) == parent or not root:
        # Never change the links of a namespace this process did not make.
        print(json.dumps({"same_namespace": "parent %s, here %s" % (parent, netns_id())}))
        return 0
    report = {"steps": [], "complete": False}
    holder, nodes = None, {}
    try:
        problem = run_short(["ip", "link", "set", "lo", "up"])
        if not problem:
            holder, problem = start_holder()
        if not problem:
            problem = make_link(holder.pid)
        if problem:
            report = {"no_namespace": problem}
            return 0
        with open(os.path.join(root, "warren.conf"), "w") as f:
            f.write("loopback_users = none\n")
        nodes[NAME_A] = start_partition_node(root, "a", NAME_A, ADDRESS_A)
        nodes[NAME_B] = start_partition_node(root, "b", NAME_B, ADDRESS_B,
                                             prefix=in_namespace_of(holder.pid),
                                             join="%s:%d" % (ADDRESS_A, CLUSTER_PORT))
        steps = Steps(holder.pid)
        report["steps"] = steps.records
        partition_scenario(steps)
        report["complete"] = True
    except StepFailed:
        pass
    except Exception as exc:  # reported with the steps so far; the test fails on it
        report["error"] = "%s: %s" % (type(exc).__name__, exc)
    finally:
        report["exited"] = {name: p.returncode for name, p in nodes.items()
                            if p.poll() is not None}
        for proc in list(nodes.values()) + ([holder] if holder else []):
            stop_process(proc)
        print(json.dumps(report))
    return 0


def in_b_main(request):
    """Inside namespace B: one look (LOOKS_IN_B), repeated until it shows what is wanted or
    the time is up; prints {"got", "seconds"}."""
    req = json.loads(request)
    look = LOOKS_IN_B[req["look"]]
    ok = CHECKS[req["check"]] if req["check"] else (lambda v: v == req["want"])
    got, seconds = observe(lambda: look(req["arg"]), ok, req["timeout"])
    print(json.dumps({"got": got, "seconds": seconds}))
    return 0


@unittest.skipIf(os.environ.get("WARREN_TEST_BROKER"), "needs its own warrend processes")
class PartitionTest(unittest.TestCase):
    """Two nodes in two network namespaces joined by a veth pair: the link goes down (a
    partition) and comes back. Each side sees the other down, answers for the other's queues
    with 404 '... down or inaccessible', goes on with its own definitions, and after the link
    is back both are one cluster again with what each side made meanwhile (an exchange
    deleted on one side is gone on both; of a queue declared on both sides, the earlier one
    stays, with the other's messages), and messages cross again."""

    def test_partition_between_two_namespaces_and_its_healing(self):
        binary = WARREND
        if not binary or not os.access(binary, os.X_OK):
            raise BrokerError("WARREND=%r must name the warrend binary" % binary)
        prefix = namespace_prefix(needs=("ip", "unshare", "nsenter"), nested=True)
        root = tempfile.mkdtemp(prefix="warren-partition-")
        self.addCleanup(shutil.rmtree, root, True)
        env = dict(os.environ, WARREND=os.path.abspath(binary))
        env[PARENT_NETNS_VAR] = str(netns_id())
        env[PARTITION_DIR_VAR] = root
        child = subprocess.Popen(prefix + [sys.executable, os.path.abspath(__file__),
                                           PARTITION_CHILD_FLAG],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=env, start_new_session=True,
                                 cwd=os.path.dirname(os.path.abspath(__file__)))

        def logs():
            return "".join("\n--- log of node %s (tail) ---\n%s" % (short, log_tail(
                os.path.join(root, short + ".log"))) for short in ("a", "b"))
        try:
            out, err = child.communicate(timeout=PARTITION_CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # the child, its nodes and the holder of B
            out, err = child.communicate(timeout=10)
            self.fail("the scenario did not finish within %.0f s\n--- its progress ---\n%s%s"
                      % (PARTITION_CHILD_TIMEOUT_S, err[-3000:], logs()))
        lines = [l for l in out.splitlines() if l.strip()]
        try:
            report = json.loads(lines[-1])
        except (IndexError, ValueError):
            self.fail("the scenario exited with %s and no report\n--- stdout ---\n%s\n"
                      "--- stderr ---\n%s%s" % (child.returncode, out[-2000:], err[-3000:],
                                                logs()))
        if "same_namespace" in report:
            self.fail("the scenario did not run in a network namespace of its own (%s)"
                      % report["same_namespace"])
        if "no_namespace" in report:
            raise unittest.SkipTest("cannot make the second namespace and the veth pair: %s"
                                    % report["no_namespace"])
        for step in report["steps"]:
            self.assertTrue(step["ok"], "step %r: wanted %r, got %r (after %.1f s)%s"
                            % (step["step"], step["want"], step["got"], step["seconds"],
                               logs()))
        self.assertNotIn("error", report, "%s%s" % (report.get("error"), logs()))
        self.assertEqual(report["exited"], {}, "nodes exited on their own" + logs())
        self.assertTrue(report["complete"], "the scenario stopped early\n%s%s"
                        % (err[-3000:], logs()))


if __name__ == "__main__":
    if sys.argv[1:2] == [PARTITION_CHILD_FLAG]:
        sys.exit(partition_child())
    if sys.argv[1:2] == [IN_B_FLAG]:
        sys.exit(in_b_main(sys.argv[2]))
    unittest.main()
