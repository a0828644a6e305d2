"""The HTTP management API (RabbitMQ's paths, fields and status codes), /metrics after real
traffic, durable users and vhosts, and warrenctl end to end. Each class starts its own
warrend; the metrics classes need one whose totals no other test disturbs."""

import os
import shutil
import socket
import subprocess
import tempfile
import unittest

import pika
import pika.exceptions as pex

from harness import Broker, BrokerTestCase, unique, wait_until, write_config
from mgmt_support import Api, quote, rows, sample, warrenctl
from stomp_raw import RawStomp

EXTERNAL = os.environ.get("WARREN_TEST_BROKER")


class ManagementCase(BrokerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.http_host, cls.http_port = cls.broker.wait_listener("http")
        cls.api = Api(cls.http_host, cls.http_port)

    def queue(self, name, vhost="/"):
        return self.api.get("/api/queues/%s/%s" % (quote(vhost), quote(name)))

    def wait_queue(self, name, predicate, timeout=5):
        last = {}

        def check():
            last["q"] = self.queue(name)
            return predicate(last["q"])
        self.assertTrue(wait_until(check, timeout), "queue %s: %r" % (name, last.get("q")))
        return last["q"]


class ApiTest(ManagementCase):
    def test_auth_is_required(self):
        status, body, _, headers = self.api.call("GET", "/api/overview", auth=False)
        self.assertEqual(status, 401)
        self.assertIn("error", body)
        self.assertIn("reason", body)
        self.assertIn("Basic", headers.get("WWW-Authenticate", ""))
        status, body, _, _ = self.api.call("GET", "/api/queues", password="wrong")
        self.assertEqual(status, 401)
        self.assertEqual(self.api.call("GET", "/api/whoami")[1]["name"], "guest")

    def test_overview_and_nodes(self):
        o = self.api.get("/api/overview")
        for key in ("node", "object_totals", "queue_totals", "message_stats", "listeners"):
            self.assertIn(key, o)
        protocols = {l["protocol"]: l["port"] for l in o["listeners"]}
        self.assertEqual(protocols.get("amqp"), self.port)
        nodes = self.api.get("/api/nodes")
        self.assertEqual(len(nodes), 1)
        self.assertTrue(nodes[0]["running"])
        self.assertGreater(nodes[0]["fd_used"], 0)
        self.assertEqual(self.api.get("/api/nodes/" + quote(nodes[0]["name"]))["name"],
                         nodes[0]["name"])

    def test_lists(self):
        names = {(x["vhost"], x["name"]) for x in self.api.get("/api/exchanges")}
        for x in ("", "amq.direct", "amq.fanout", "amq.topic", "amq.headers"):
            self.assertIn(("/", x), names)
        self.assertIn("/", [v["name"] for v in self.api.get("/api/vhosts")])
        users = {u["name"]: u for u in self.api.get("/api/users")}
        self.assertIn("administrator", users["guest"]["tags"])
        self.assertEqual(users["guest"]["hashing_algorithm"], "rabbit_password_hashing_sha256")
        perms = self.api.get("/api/permissions")
        self.assertIn({"user": "guest", "vhost": "/", "configure": ".*", "write": ".*",
                       "read": ".*"}, perms)
        for path in ("/api/queues", "/api/bindings", "/api/connections", "/api/channels",
                     "/api/consumers", "/api/queues/%2F", "/api/exchanges/%2F",
                     "/api/bindings/%2F", "/api/vhosts/%2F/permissions"):
            self.assertIsInstance(self.api.get(path), list, path)

    def test_errors(self):
        self.assertEqual(self.api.call("GET", "/api/queues/nosuchvhost")[0], 404)
        self.assertEqual(self.api.call("GET", "/api/queues/%2F/" + unique("none"))[0], 404)
        status, body, _, _ = self.api.call("GET", "/api/nothing-here")
        self.assertEqual(status, 404)
        self.assertEqual(set(body), {"error", "reason"})
        self.assertEqual(self.api.call("POST", "/api/overview")[0], 405)
        self.assertEqual(self.api.call("DELETE", "/api/queues/%2F/" + unique("none"))[0], 404)
        status, body, _, _ = self.api.call("PUT", "/api/queues/%2F/" + unique("q"),
                                           body={"durable": "yes"})
        self.assertEqual(status, 400)
        self.assertEqual(body["error"], "bad_request")

    def test_declare_and_delete_queue_exchange_binding(self):
        q, x = unique("mq"), unique("mx")
        self.assertEqual(self.api.call("PUT", "/api/queues/%2F/" + q,
                                       body={"durable": True, "arguments": {}})[0], 201)
        self.assertEqual(self.api.call("PUT", "/api/queues/%2F/" + q,
                                       body={"durable": True})[0], 204)
        status, body, _, _ = self.api.call("PUT", "/api/queues/%2F/" + q,
                                           body={"durable": False})
        self.assertEqual(status, 400)
        self.assertIn("inequivalent arg 'durable'", body["reason"])
        info = self.queue(q)
        self.assertTrue(info["durable"])
        self.assertEqual(info["vhost"], "/")
        self.assertEqual(self.api.call("PUT", "/api/exchanges/%2F/" + x,
                                       body={"type": "topic", "durable": False})[0], 201)
        self.assertEqual(self.api.get("/api/exchanges/%2F/" + x)["type"], "topic")
        status, _, _, headers = self.api.call("POST", "/api/bindings/%%2F/e/%s/q/%s" % (x, q),
                                              body={"routing_key": "a.*", "arguments": {}})
        self.assertEqual(status, 201)
        self.assertIn("/api/bindings/", headers.get("Location", ""))
        bindings = self.api.get("/api/queues/%%2F/%s/bindings" % q)
        self.assertIn(("", q), [(b["source"], b["routing_key"]) for b in bindings])
        mine = [b for b in bindings if b["source"] == x]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["routing_key"], "a.*")
        self.assertEqual(mine[0]["destination_type"], "queue")
        # The binding routes: publishing through the exchange reaches the queue.
        r = self.api.call("POST", "/api/exchanges/%%2F/%s/publish" % x,
                          body={"routing_key": "a.b", "payload": "via binding",
                                "payload_encoding": "string", "properties": {}})[1]
        self.assertEqual(r, {"routed": True})
        self.assertEqual(self.api.call(
            "DELETE", "/api/bindings/%%2F/e/%s/q/%s/%s" % (x, q, quote(mine[0]["properties_key"])))[0],
            204)
        self.assertEqual(self.api.get("/api/bindings/%%2F/e/%s/q/%s" % (x, q)), [])
        self.assertEqual(self.api.call("DELETE", "/api/exchanges/%2F/" + x)[0], 204)
        self.assertEqual(self.api.call("GET", "/api/exchanges/%2F/" + x)[0], 404)
        self.assertEqual(self.api.call("DELETE", "/api/queues/%2F/" + q)[0], 204)
        self.assertEqual(self.api.call("GET", "/api/queues/%2F/" + q)[0], 404)

    def test_publish_get_and_purge(self):
        q = unique("pq")
        self.api.call("PUT", "/api/queues/%2F/" + q, body={})
        for i in range(3):
            status, body, _, _ = self.api.call(
                "POST", "/api/exchanges/%2F/amq.default/publish",
                body={"routing_key": q, "payload": "m%d" % i, "payload_encoding": "string",
                      "properties": {"delivery_mode": 1, "headers": {"n": i},
                                     "content_type": "text/plain"}})
            self.assertEqual((status, body), (200, {"routed": True}))
        self.assertEqual(self.api.call("POST", "/api/exchanges/%2F/amq.default/publish",
                                       body={"routing_key": unique("none"), "payload": "x",
                                             "properties": {}})[1], {"routed": False})
        self.wait_queue(q, lambda x: x["messages_ready"] == 3)
        got = self.api.call("POST", "/api/queues/%%2F/%s/get" % q,
                            body={"count": 2, "ackmode": "ack_requeue_true",
                                  "encoding": "auto"})[1]
        self.assertEqual([m["payload"] for m in got], ["m0", "m1"])
        self.assertEqual(got[0]["properties"]["headers"], {"n": 0})
        self.assertEqual(got[0]["properties"]["content_type"], "text/plain")
        self.assertEqual(got[0]["routing_key"], q)
        self.assertFalse(got[0]["redelivered"])
        # Requeued: still there, now redelivered.
        again = self.api.call("POST", "/api/queues/%%2F/%s/get" % q,
                              body={"count": 5, "ackmode": "ack_requeue_false",
                                    "encoding": "base64"})[1]
        self.assertEqual(len(again), 3)
        self.assertTrue(again[0]["redelivered"])
        self.assertEqual(again[0]["payload_encoding"], "base64")
        self.wait_queue(q, lambda x: x["messages"] == 0)
        for i in range(4):
            self.api.call("POST", "/api/exchanges/%2F/amq.default/publish",
                          body={"routing_key": q, "payload": "p", "properties": {}})
        self.wait_queue(q, lambda x: x["messages_ready"] == 4)
        self.assertEqual(self.api.call("DELETE", "/api/queues/%%2F/%s/contents" % q)[0], 204)
        self.wait_queue(q, lambda x: x["messages_ready"] == 0)
        self.assertEqual(self.api.call("POST", "/api/queues/%%2F/%s/get" % q,
                                       body={"count": 1, "ackmode": "bogus"})[0], 400)

    def test_connections_channels_consumers(self):
        conn = self.connect()
        ch = conn.channel()
        ch.basic_qos(prefetch_count=7)
        q = ch.queue_declare(queue=unique("cq"), exclusive=True).method.queue
        tag = ch.basic_consume(q, lambda *a: None)

        def mine():  # this test's connection: its channel has prefetch 7 and a consumer
            chans = {c["connection_details"]["name"]: (c["prefetch_count"], c["consumer_count"])
                     for c in self.api.get("/api/channels")}
            return [c for c in self.api.get("/api/connections")
                    if chans.get(c["name"]) == (7, 1) and c["user"] == "guest"]
        self.assertTrue(wait_until(mine, 5), self.api.get("/api/connections"))
        c = mine()[0]
        self.assertEqual(c["vhost"], "/")
        self.assertEqual(c["protocol"], "AMQP 0-9-1")
        self.assertIn(" -> ", c["name"])
        chans = self.api.get("/api/connections/%s/channels" % quote(c["name"]))
        self.assertEqual(chans[0]["consumer_count"], 1)
        self.assertEqual(chans[0]["prefetch_count"], 7)
        self.assertTrue(wait_until(
            lambda: [k for k in self.api.get("/api/consumers/%2F") if k["consumer_tag"] == tag],
            5))
        k = [k for k in self.api.get("/api/consumers") if k["consumer_tag"] == tag][0]
        self.assertEqual(k["queue"], {"name": q, "vhost": "/"})
        self.assertEqual(k["channel_details"]["connection_name"], c["name"])
        self.assertTrue(k["ack_required"])
        self.assertIn("owner_pid_details", self.queue(q))
        # Closing it through the API: the client gets 320 with the reason.
        status = self.api.call("DELETE", "/api/connections/" + quote(c["name"]),
                               headers={"X-Reason": "test says bye"})[0]
        self.assertEqual(status, 204)
        with self.assertRaises(pex.ConnectionClosedByBroker) as ctx:
            self.pump(conn, lambda: False, timeout=5)
        self.assertEqual(ctx.exception.reply_code, 320)
        self.assertIn("test says bye", ctx.exception.reply_text)

    def test_stomp_connection_is_listed(self):
        host, port = self.broker.wait_listener("stomp")
        s = RawStomp(host, port)
        self.addCleanup(s.close)
        self.assertEqual(s.connect(version="1.2").command, "CONNECTED")
        self.assertTrue(wait_until(lambda: [c for c in self.api.get("/api/connections")
                                            if c["protocol"].startswith("STOMP")], 5))

    def test_vhost_lifecycle_with_amqp_clients(self):
        v = unique("vh")
        self.assertEqual(self.api.call("PUT", "/api/vhosts/" + quote(v))[0], 201)
        self.assertEqual(self.api.call("PUT", "/api/vhosts/" + quote(v))[0], 204)
        # As RabbitMQ's API does, creating the vhost gave its creator full permissions there.
        self.assertEqual(self.api.get("/api/permissions/%s/guest" % quote(v))["configure"], ".*")
        self.assertEqual(self.api.call("PUT", "/api/permissions/%s/guest" % quote(v),
                                       body={"configure": ".*", "write": ".*", "read": ".*"})[0],
                         204)
        conn = self.connect(virtual_host=v)
        ch = conn.channel()
        ch.confirm_delivery()
        q = ch.queue_declare(queue="inside", durable=True).method.queue
        ch.basic_publish("", q, b"in the new vhost")
        self.assertTrue(wait_until(lambda: self.api.call(
            "GET", "/api/queues/%s/inside" % quote(v))[1].get("messages") == 1, 5))
        self.assertEqual(self.api.get("/api/vhosts/" + quote(v))["name"], v)
        # Deleting the vhost closes its connections and refuses new ones.
        self.assertEqual(self.api.call("DELETE", "/api/vhosts/" + quote(v))[0], 204)
        with self.assertRaises(pex.ConnectionClosedByBroker) as ctx:
            self.pump(conn, lambda: False, timeout=5)
        self.assertEqual(ctx.exception.reply_code, 320)
        with self.assertRaises(pex.AMQPConnectionError):
            self.connect(virtual_host=v)
        self.assertEqual(self.api.call("GET", "/api/vhosts/" + quote(v))[0], 404)
        self.assertEqual(self.api.call("GET", "/api/queues/" + quote(v))[0], 404)
        self.assertEqual(self.api.call("DELETE", "/api/vhosts/" + quote(v))[0], 404)

    def test_users_log_in_over_amqp(self):
        u = unique("user")
        self.assertEqual(self.api.call("PUT", "/api/users/" + u,
                                       body={"password": "s3cret", "tags": "monitoring"})[0], 201)
        self.assertEqual(self.api.get("/api/users/" + u)["tags"], ["monitoring"])
        self.assertEqual(self.api.call("GET", "/api/whoami", user=u, password="s3cret")[1]["name"],
                         u)
        self.assertEqual(self.api.call("PUT", "/api/permissions/%s/%s" % (quote("/"), u),
                                       body={"configure": "", "write": "", "read": ""})[0], 201)
        creds = pika.PlainCredentials(u, "s3cret")
        self.connect(credentials=creds).close()
        self.assertEqual(self.api.call("PUT", "/api/users/" + u,
                                       body={"password": "n3w", "tags": ""})[0], 204)
        with self.assertRaises(pex.AMQPConnectionError):
            self.connect(credentials=creds)
        self.connect(credentials=pika.PlainCredentials(u, "n3w")).close()
        self.assertEqual(self.api.call("DELETE", "/api/users/" + u)[0], 204)
        self.assertEqual(self.api.call("GET", "/api/whoami", user=u, password="n3w")[0], 401)


@unittest.skipIf(EXTERNAL, "warrenctl talks to warrend")
class WarrenctlTest(ManagementCase):
    def ctl(self, *args, ok=True):
        r = warrenctl(self.http_port, *args)
        if ok:
            self.assertEqual(r.returncode, 0, "%s: %s%s" % (args, r.stdout, r.stderr))
        return r

    def test_definitions(self):
        q, x = unique("cq"), unique("cx")
        self.ctl("declare", "queue", "name=" + q, "durable=true")
        self.ctl("declare", "exchange", "name=" + x, "type=fanout")
        self.ctl("declare", "binding", "source=" + x, "destination=" + q, "routing_key=k")
        self.assertIn([q, "0", "0"], rows(self.ctl("list_queues").stdout))
        got = rows(self.ctl("list_queues", "name", "durable", "messages_ready").stdout)
        self.assertIn([q, "true", "0"], got)
        self.assertIn([x, "fanout"], rows(self.ctl("list_exchanges").stdout))
        self.assertIn([x, "exchange", q, "queue", "k", "{}"],
                      rows(self.ctl("list_bindings").stdout))
        for i in range(3):
            self.api.call("POST", "/api/exchanges/%%2F/%s/publish" % x,
                          body={"routing_key": "", "payload": "x", "properties": {}})
        self.assertTrue(wait_until(lambda: [q, "3", "0"] in rows(self.ctl("list_queues").stdout),
                                   5))
        self.ctl("purge_queue", q)
        self.assertTrue(wait_until(lambda: [q, "0", "0"] in rows(self.ctl("list_queues").stdout),
                                   5))
        self.ctl("delete", "binding", "source=" + x, "destination=" + q, "routing_key=k")
        self.assertNotIn(x, [r[0] for r in rows(self.ctl("list_bindings").stdout)])
        self.ctl("delete", "exchange", "name=" + x)
        self.ctl("delete", "queue", "name=" + q)
        self.assertNotIn(q, [r[0] for r in rows(self.ctl("list_queues").stdout)])

    def test_queue_types(self):
        # queue_type=T sets x-queue-type, as rabbitmqadmin's does; list_queues shows the type.
        quorum, stream, plain = unique("cq-quorum"), unique("cq-stream"), unique("cq-classic")
        self.ctl("declare", "queue", "name=" + quorum, "durable=true", "queue_type=quorum")
        self.ctl("declare", "queue", "name=" + stream, "durable=true", "queue_type=stream")
        self.ctl("declare", "queue", "name=" + plain)
        for q in (quorum, stream, plain):
            self.addCleanup(self.ctl, "delete", "queue", "name=" + q)
        got = rows(self.ctl("list_queues", "name", "type", "arguments").stdout)
        self.assertIn([quorum, "quorum", '{"x-queue-type":"quorum"}'], got)
        self.assertIn([stream, "stream", '{"x-queue-type":"stream"}'], got)
        self.assertIn([plain, "classic", "{}"], got)
        # A quorum queue must be durable: the API's 400 says why.
        r = self.ctl("declare", "queue", "name=" + unique("cq-transient"), "queue_type=quorum",
                     ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("invalid property 'non-durable'", r.stdout + r.stderr)

    def test_connections_channels_consumers(self):
        conn = self.connect()
        ch = conn.channel()
        q = ch.queue_declare(queue=unique("lq"), exclusive=True).method.queue
        tag = ch.basic_consume(q, lambda *a: None, consumer_tag=unique("tag"))
        self.assertTrue(wait_until(lambda: rows(self.ctl("list_connections").stdout), 5))
        self.assertEqual(rows(self.ctl("list_connections").stdout)[0][0], "guest")
        self.assertTrue(wait_until(
            lambda: [r for r in rows(self.ctl("list_channels").stdout) if r[2] == "1"], 5))
        self.assertTrue(wait_until(
            lambda: [r for r in rows(self.ctl("list_consumers").stdout)
                     if r[0] == q and r[2] == tag], 5))

    def test_users_vhosts_permissions(self):
        u, v = unique("cu"), unique("cv")
        self.ctl("add_user", u, "pw1")
        self.ctl("set_user_tags", u, "management")  # RabbitMQ: the API is for tagged users
        self.assertEqual(self.ctl("add_user", u, "pw1", ok=False).returncode, 1)
        self.assertIn(u, [r[0] for r in rows(self.ctl("list_users").stdout)])
        self.ctl("add_vhost", v)
        self.assertIn([v], rows(self.ctl("list_vhosts").stdout))
        self.ctl("set_permissions", "-p", v, u, ".*", ".*", "")
        self.assertIn([u, ".*", ".*", ""], rows(self.ctl("list_permissions", "-p", v).stdout))
        self.connect(credentials=pika.PlainCredentials(u, "pw1"), virtual_host=v).close()
        self.ctl("change_password", u, "pw2")
        self.assertEqual(warrenctl(self.http_port, "list_vhosts", user=u,
                                   password="pw1").returncode, 1)
        self.assertEqual(warrenctl(self.http_port, "list_vhosts", user=u,
                                   password="pw2").returncode, 0)
        self.ctl("delete_vhost", v)
        self.assertNotIn([v], rows(self.ctl("list_vhosts").stdout))
        r = self.ctl("delete_vhost", v, ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("Error", r.stderr)
        self.ctl("delete_user", u)
        self.assertNotIn(u, [r[0] for r in rows(self.ctl("list_users").stdout)])

    def test_status_help_and_failures(self):
        out = self.ctl("status").stdout
        self.assertIn("Status of node", out)
        self.assertIn("amqp", out)
        self.assertIn("Running Nodes", self.ctl("cluster_status").stdout)
        self.assertIn("list_queues", self.ctl("--help").stdout)
        self.assertIn("Usage: warrenctl", self.ctl("declare", "--help").stdout)
        self.assertEqual(warrenctl(self.http_port, "list_queues", password="bad").returncode, 1)
        self.assertEqual(self.ctl("no_such_command", ok=False).returncode, 64)
        self.assertEqual(self.ctl("declare", "queue", ok=False).returncode, 64)
        r = subprocess.run([os.environ["WARRENCTL"], "--http-port", "1", "status"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(r.returncode, 69)
        self.assertIn("cannot reach", r.stderr)


@unittest.skipIf(EXTERNAL, "Warren's /metrics")
class MetricsTest(ManagementCase):
    """Aggregated series (the default): one per family, no object labels."""

    def test_totals_after_traffic(self):
        conn = self.connect()
        ch = conn.channel()
        ch.confirm_delivery()
        q = ch.queue_declare(queue=unique("agg")).method.queue
        for i in range(5):
            ch.basic_publish("", q, b"x" * 10)
        ch.basic_publish("amq.direct", unique("nowhere"), b"lost")

        def current():
            m = self.api.metrics()
            return m if sample(m, "rabbitmq_queue_messages_ready") == 5 and \
                sample(m, "rabbitmq_channel_messages_published_total") == 6 and \
                sample(m, "warren_exchange_messages_unroutable_total") == 1 else None
        m = wait_until(current, 5)
        self.assertTrue(m, self.api.metrics())
        self.assertEqual(sample(m, "rabbitmq_queue_messages_published_total"), 5)
        self.assertEqual(sample(m, "rabbitmq_connections"), 1)
        self.assertEqual(sample(m, "rabbitmq_queues"), 1)
        self.assertGreater(sample(m, "rabbitmq_connection_incoming_bytes_total"), 60)
        self.assertGreater(sample(m, "rabbitmq_process_resident_memory_bytes"), 1 << 20)
        self.assertGreater(sample(m, "rabbitmq_process_open_fds"), 3)
        self.assertGreater(sample(m, "warren_store_bytes"), 0)
        self.assertEqual(sample(m, "warren_actor_restarts_total", actor="queue"), 0)
        self.assertIsNotNone(sample(m, "warren_actor_mailbox_length", actor="queue"))
        labelled = [k for k in m if any(l[0] in ("queue", "exchange", "connection", "channel")
                                        for l in k[1])]
        self.assertEqual(labelled, [])
        # Counters keep what closed connections and deleted queues did.
        ch.queue_delete(q)
        conn.close()
        m = wait_until(lambda: (lambda m: m if sample(m, "rabbitmq_connections") == 0
                                else None)(self.api.metrics()), 5)
        self.assertTrue(m)
        self.assertEqual(sample(m, "rabbitmq_channel_messages_published_total"), 6)
        self.assertEqual(sample(m, "rabbitmq_queue_messages_published_total"), 5)
        self.assertEqual(sample(m, "rabbitmq_connections_closed_total"), 1)


@unittest.skipIf(EXTERNAL, "Warren's /metrics")
class PerObjectMetricsTest(ManagementCase):
    @classmethod
    def setUpClass(cls):
        conf = write_config(cls, "prometheus.return_per_object_metrics = true\n"
                                 "collect_statistics_interval = 500\n")
        cls.broker_args = ("--config", conf)
        super().setUpClass()

    def test_series_per_queue_exchange_connection_channel(self):
        conn = self.connect()
        ch = conn.channel()
        ch.confirm_delivery()
        q = ch.queue_declare(queue=unique("po")).method.queue
        x = unique("pox")
        ch.exchange_declare(x, "direct")
        ch.queue_bind(q, x, routing_key="k")
        for i in range(4):
            ch.basic_publish(x, "k", b"hello")
        ch.basic_publish(x, "other", b"nobody")
        got = []
        ch.basic_qos(prefetch_count=10)
        ch.basic_consume(q, lambda c, m, p, b: got.append(m))
        self.assertTrue(self.pump(conn, lambda: len(got) == 4))
        ch.basic_ack(got[0].delivery_tag)
        ch.basic_ack(got[1].delivery_tag)
        lq = {"vhost": "/", "queue": q}

        def current():
            m = self.api.metrics()
            ok = (sample(m, "rabbitmq_queue_messages_unacked", **lq) == 2 and
                  sample(m, "rabbitmq_queue_messages_acked_total", **lq) == 2)
            return m if ok else None
        m = wait_until(current, 5)
        self.assertTrue(m, "\n".join(str(k) for k in self.api.metrics() if q in str(k)))
        self.assertEqual(sample(m, "rabbitmq_queue_messages_ready", **lq), 0)
        self.assertEqual(sample(m, "rabbitmq_queue_messages", **lq), 2)
        self.assertEqual(sample(m, "rabbitmq_queue_consumers", **lq), 1)
        self.assertEqual(sample(m, "rabbitmq_queue_messages_published_total", **lq), 4)
        self.assertEqual(sample(m, "rabbitmq_queue_messages_delivered_total", **lq), 4)
        self.assertEqual(sample(m, "rabbitmq_queue_messages_redelivered_total", **lq), 0)
        self.assertEqual(sample(m, "warren_actor_mailbox_length", actor="queue", **lq), 0)
        lx = {"vhost": "/", "exchange": x}
        self.assertEqual(sample(m, "warren_exchange_messages_routed_total", **lx), 4)
        self.assertEqual(sample(m, "warren_exchange_messages_unroutable_total", **lx), 1)
        conns = [dict(k[1]) for k in m if k[0] == "rabbitmq_connection_channels"]
        self.assertEqual(len(conns), 1)
        lc = conns[0]
        self.assertEqual(sample(m, "rabbitmq_connection_channels", **lc), 1)
        self.assertGreater(sample(m, "rabbitmq_connection_incoming_bytes_total", **lc), 100)
        self.assertGreater(sample(m, "rabbitmq_connection_outgoing_bytes_total", **lc), 100)
        chan = {"vhost": "/", "channel": lc["connection"] + " (1)"}
        self.assertEqual(sample(m, "rabbitmq_channel_messages_published_total", **chan), 5)
        # RabbitMQ's split: deliveries to a consumer that acknowledges, none without acks.
        self.assertEqual(sample(m, "rabbitmq_channel_messages_delivered_ack_total", **chan), 4)
        self.assertEqual(sample(m, "rabbitmq_channel_messages_delivered_total", **chan), 0)
        self.assertEqual(sample(m, "rabbitmq_channel_messages_acked_total", **chan), 2)
        # Every publish was confirmed; the one that reached no queue was dropped.
        self.assertEqual(sample(m, "rabbitmq_channel_messages_confirmed_total", **chan), 5)
        self.assertEqual(sample(m, "rabbitmq_channel_messages_unroutable_dropped_total", **chan),
                         1)
        self.assertEqual(sample(m, "rabbitmq_channel_messages_unconfirmed", **chan), 0)
        self.assertEqual(sample(m, "rabbitmq_channel_messages_unacked", **chan), 2)
        self.assertEqual(sample(m, "rabbitmq_channel_consumers", **chan), 1)
        self.assertEqual(sample(m, "rabbitmq_channel_prefetch", **chan), 10)
        # A requeued message comes back redelivered.
        ch.basic_nack(got[2].delivery_tag, requeue=True)
        m = wait_until(lambda: (lambda m: m if sample(
            m, "rabbitmq_queue_messages_redelivered_total", **lq) == 1 else None)(
                self.api.metrics()), 5)
        self.assertTrue(m)
        self.assertEqual(sample(m, "rabbitmq_channel_messages_redelivered_total", **chan), 1)


class MessageStatsTest(ManagementCase):
    """A channel's message_stats split as RabbitMQ 3.10 splits them (the management API runs
    against RabbitMQ too, with WARREN_TEST_BROKER), and the Prometheus metrics that RabbitMQ's
    own Overview dashboard reads."""

    # What RabbitMQ's Grafana dashboard "RabbitMQ-Overview" queries, every one of them.
    DASHBOARD_METRICS = (
        "rabbitmq_build_info", "rabbitmq_channel_consumers", "rabbitmq_channel_get_ack_total",
        "rabbitmq_channel_get_empty_total", "rabbitmq_channel_get_total",
        "rabbitmq_channel_messages_acked_total", "rabbitmq_channel_messages_confirmed_total",
        "rabbitmq_channel_messages_delivered_ack_total",
        "rabbitmq_channel_messages_delivered_total",
        "rabbitmq_channel_messages_published_total",
        "rabbitmq_channel_messages_redelivered_total", "rabbitmq_channel_messages_unconfirmed",
        "rabbitmq_channel_messages_unroutable_dropped_total",
        "rabbitmq_channel_messages_unroutable_returned_total", "rabbitmq_channels",
        "rabbitmq_channels_closed_total", "rabbitmq_channels_opened_total",
        "rabbitmq_connections", "rabbitmq_connections_closed_total",
        "rabbitmq_connections_opened_total", "rabbitmq_disk_space_available_bytes",
        "rabbitmq_identity_info", "rabbitmq_process_max_fds",
        "rabbitmq_process_max_tcp_sockets", "rabbitmq_process_open_fds",
        "rabbitmq_process_open_tcp_sockets", "rabbitmq_process_resident_memory_bytes",
        "rabbitmq_queue_messages_published_total", "rabbitmq_queue_messages_ready",
        "rabbitmq_queue_messages_unacked", "rabbitmq_queues", "rabbitmq_queues_created_total",
        "rabbitmq_queues_declared_total", "rabbitmq_queues_deleted_total",
        "rabbitmq_resident_memory_limit_bytes")

    # The split, and what the workload below makes of it on its one channel.
    SPLIT = {"publish": 7, "confirm": 7, "return_unroutable": 1, "drop_unroutable": 1,
             "get_no_ack": 1, "get": 1, "get_empty": 1, "deliver_no_ack": 1, "deliver": 3,
             "redeliver": 1, "ack": 3, "deliver_get": 6}

    def workload(self, ch, q):
        """SPLIT's numbers on channel ch, with queue q (empty, its own)."""
        ch.confirm_delivery()
        for i in range(3):
            ch.basic_publish("", q, b"m%d" % i)
        with self.assertRaises(pex.UnroutableError):
            ch.basic_publish("amq.direct", unique("nowhere"), b"returned", mandatory=True)
        ch.basic_publish("amq.direct", unique("nowhere"), b"dropped")
        self.assertIsNotNone(ch.basic_get(q, auto_ack=True)[0])
        method, _, _ = ch.basic_get(q, auto_ack=False)
        ch.basic_ack(method.delivery_tag)
        got = []
        tag = ch.basic_consume(q, lambda c, m, p, b: got.append(m), auto_ack=True)
        self.assertTrue(self.pump(ch.connection, lambda: got))
        ch.basic_cancel(tag)
        self.assertIsNone(ch.basic_get(q, auto_ack=True)[0])
        for i in range(2):
            ch.basic_publish("", q, b"n%d" % i)
        got = []
        ch.basic_qos(prefetch_count=10)
        ch.basic_consume(q, lambda c, m, p, b: got.append(m))
        self.assertTrue(self.pump(ch.connection, lambda: len(got) == 2))
        ch.basic_nack(got[0].delivery_tag, requeue=True)
        self.assertTrue(self.pump(ch.connection, lambda: len(got) == 3))
        self.assertTrue(got[2].redelivered)
        ch.basic_ack(got[1].delivery_tag)
        ch.basic_ack(got[2].delivery_tag)

    def test_a_channels_message_stats_split_as_rabbitmq_splits_them(self):
        name = unique("split")
        conn = self.connect(client_properties={"connection_name": name})
        ch = conn.channel()
        q = ch.queue_declare(unique("split"), exclusive=True).method.queue
        self.workload(ch, q)

        def channel_stats():
            for c in self.api.get("/api/channels"):
                if c["connection_details"]["name"] in names and c["number"] == ch.channel_number:
                    stats = c.get("message_stats", {})
                    if {k: stats.get(k) for k in self.SPLIT} == self.SPLIT:
                        return stats
            return None
        names = wait_until(lambda: {
            c["name"] for c in self.api.get("/api/connections")
            if c.get("client_properties", {}).get("connection_name") == name}, 15, 0.25)
        self.assertEqual(len(names), 1)
        stats = wait_until(channel_stats, 15, 0.25)
        self.assertTrue(stats, "message_stats of the channel: %r" % [
            c.get("message_stats") for c in self.api.get("/api/channels")
            if c["connection_details"]["name"] in names])
        for key in self.SPLIT:
            self.assertIn("rate", stats[key + "_details"])
        # The queue's, split the same way (its publishes: 5 of the channel's 7).
        want = {"publish": 5, "get_no_ack": 1, "get": 1, "get_empty": 1, "deliver_no_ack": 1,
                "deliver": 3, "redeliver": 1, "ack": 3, "deliver_get": 6}

        def queue_stats():
            got = self.queue(q).get("message_stats", {})
            return got if {k: got.get(k) for k in want} == want else None
        self.assertTrue(wait_until(queue_stats, 15, 0.25), self.queue(q).get("message_stats"))
        # The overview's totals count this channel too.
        totals = self.api.get("/api/overview")["message_stats"]
        for key, n in self.SPLIT.items():
            self.assertGreaterEqual(totals.get(key, 0), n, key)


@unittest.skipIf(EXTERNAL, "Warren's /metrics")
class DashboardMetricsTest(MessageStatsTest):
    """The same workload on a warrend of its own, whose totals no other test disturbs."""

    test_a_channels_message_stats_split_as_rabbitmq_splits_them = None

    def test_prometheus_has_every_series_of_rabbitmqs_overview_dashboard(self):
        before = self.api.metrics()
        conn = self.connect()
        ch = conn.channel()
        q = unique("split")
        ch.queue_declare(q)
        ch.queue_declare(q)                # declared again
        ch.queue_declare(q, passive=True)  # not a declaration
        self.workload(ch, q)
        ch.queue_delete(q)
        extra = conn.channel()
        extra.close()
        m = self.api.metrics()
        self.assertGreaterEqual(sample(m, "rabbitmq_process_open_tcp_sockets"), 2, "the "
                                "listeners and this connection")
        conn.close()
        counters = {"rabbitmq_channel_messages_%s_total" % k: v for k, v in (
            ("published", 7), ("confirmed", 7), ("unroutable_returned", 1),
            ("unroutable_dropped", 1), ("delivered", 1), ("delivered_ack", 3),
            ("redelivered", 1), ("acked", 3))}
        counters.update({"rabbitmq_channel_get_total": 1, "rabbitmq_channel_get_ack_total": 1,
                         "rabbitmq_channel_get_empty_total": 1,
                         "rabbitmq_channels_opened_total": 2,
                         "rabbitmq_channels_closed_total": 2,
                         "rabbitmq_queues_declared_total": 2,
                         "rabbitmq_queues_created_total": 1,
                         "rabbitmq_queues_deleted_total": 1})

        def grown():
            now = self.api.metrics()
            got = {k: sample(now, k) - (sample(before, k) or 0) for k in counters}
            last["got"] = got
            return now if got == counters else None
        last = {}
        m = wait_until(grown, 10, 0.25)
        self.assertTrue(m, last.get("got"))
        names = {name for name, _ in m}
        self.assertEqual([n for n in self.DASHBOARD_METRICS if n not in names], [])
        for gauge in ("rabbitmq_channel_consumers", "rabbitmq_channel_messages_unconfirmed",
                      "rabbitmq_channel_messages_unacked"):
            self.assertEqual(sample(m, gauge), 0, gauge)
        identity = [dict(k) for n, k in m if n == "rabbitmq_identity_info"]
        self.assertEqual(len(identity), 1)
        self.assertEqual(set(identity[0]), {"rabbitmq_node", "rabbitmq_cluster"})
        build = [dict(k) for n, k in m if n == "rabbitmq_build_info"]
        self.assertEqual(build, [{"rabbitmq_version": "3.10.8", "product_name": "Warren",
                                  "product_version": "0.1.0"}])


@unittest.skipIf(EXTERNAL, "needs its own warrend processes")
class DurableAccessTest(unittest.TestCase):
    """Users, vhosts and permissions survive a restart; guest is created once."""

    def test_users_and_vhosts_survive_restart(self):
        data = tempfile.mkdtemp(prefix="warren-acc-")
        self.addCleanup(shutil.rmtree, data, True)
        b = Broker(binary=os.environ.get("WARREND"), data_dir=data).start()
        try:
            api = Api(*b.wait_listener("http"))
            api.call("PUT", "/api/users/keeper",
                     body={"password": "pw", "tags": "administrator"})
            api.call("PUT", "/api/vhosts/kept")
            api.call("PUT", "/api/permissions/kept/keeper",
                     body={"configure": ".*", "write": ".*", "read": ""})
            api.call("DELETE", "/api/users/guest")
            self.assertEqual(api.call("PUT", "/api/queues/kept/dq", body={"durable": True},
                                      user="keeper", password="pw")[0], 201)
        finally:
            b.stop()
        b = Broker(binary=os.environ.get("WARREND"), data_dir=data).start()
        try:
            api = Api(*b.wait_listener("http"), user="keeper", password="pw")
            self.assertEqual(api.call("GET", "/api/whoami")[0], 200)
            self.assertEqual(api.call("GET", "/api/whoami", user="guest",
                                      password="guest")[0], 401)  # not created again
            self.assertIn("kept", [v["name"] for v in api.get("/api/vhosts")])
            perms = api.get("/api/permissions/kept/keeper")
            self.assertEqual((perms["write"], perms["read"]), (".*", ""))
            self.assertEqual(api.get("/api/queues/kept/dq")["name"], "dq")
            conn = pika.BlockingConnection(pika.ConnectionParameters(
                host=b.host, port=b.port, virtual_host="kept",
                credentials=pika.PlainCredentials("keeper", "pw")))
            conn.channel().queue_declare("dq", passive=True)
            conn.close()
        finally:
            b.stop()


@unittest.skipIf(EXTERNAL, "needs its own warrend process")
class StartupTest(unittest.TestCase):
    def test_busy_http_port_stops_the_start(self):
        with socket.socket() as busy, tempfile.TemporaryDirectory() as d:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            r = subprocess.run([os.environ.get("WARREND"), "--amqp-port", "0", "--stomp-port",
                                "0", "--http-port", str(busy.getsockname()[1]),
                                "--data-dir", d], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=20)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot listen for HTTP", r.stderr)


if __name__ == "__main__":
    unittest.main()
