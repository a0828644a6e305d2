"""The management API as RabbitMQ 3.10's management plugin has it, seen by its clients:
rabbitmqadmin (RabbitMQ's own command-line client) end to end, the list endpoints' query
parameters (paging, name filters, sorting, columns), definitions export and import, the aliveness
and health checks, per-vhost connection and channel lists, connection and queue fields, and the
string-typed values rabbitmqadmin sends. The expected answers, error bodies included, are
RabbitMQ 3.10.8's.

rabbitmqadmin comes from $WARREN_RABBITMQADMIN or tests/.tools/rabbitmqadmin (scripts/setup.sh
test takes it out of Debian's rabbitmq-server package) and runs under /usr/bin/python3."""

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.parse
import urllib.request

import pika
import pika.exceptions as pex

from harness import (Broker, BrokerError, BrokerTestCase, RestartCase, close_quietly, unique,
                     wait_until)
from mgmt_support import Api, quote

EXTERNAL = os.environ.get("WARREN_TEST_BROKER")
HERE = os.path.dirname(os.path.abspath(__file__))
RABBITMQADMIN = (os.environ.get("WARREN_RABBITMQADMIN")
                 or os.path.normpath(os.path.join(HERE, "..", ".tools", "rabbitmqadmin")))
PYTHON = "/usr/bin/python3"
ADMIN_TIMEOUT_S = 30


def rabbit_hash(password, salt=b"\x5a\x17\xc3\x09"):
    """A password_hash as RabbitMQ writes it (rabbit_password_hashing_sha256):
    base64(salt + sha256(salt + password)) with a 4-byte salt."""
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def table_rows(output):
    """The cells of rabbitmqadmin's table output (+---+ borders dropped), header row included."""
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in output.splitlines() if line.startswith("|")]


def is_rate(details):
    return (isinstance(details, dict) and set(details) == {"rate"}
            and isinstance(details["rate"], (int, float)) and not isinstance(details["rate"], bool))


class CompatCase(BrokerTestCase):
    api = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.http_host, cls.http_port = cls.broker.wait_listener("http")
        except BaseException:
            cls.tearDownClass()
            raise
        cls.api = Api(cls.http_host, cls.http_port)

    def api_ok(self, method, path, body=None, want=(200, 201, 204), api=None):
        status, parsed, raw, _ = (api or self.api).call(method, path, body=body)
        self.assertIn(status, want, "%s %s: %s %r" % (method, path, status, raw))
        return parsed

    def make_vhost(self, name=None, api=None):
        """A new vhost (guest gets full permissions there, as its creator), deleted at the end."""
        api = api or self.api
        v = name or unique("compat-vhost")
        self.api_ok("PUT", "/api/vhosts/" + quote(v), {}, api=api)
        self.addCleanup(api.call, "DELETE", "/api/vhosts/" + quote(v))
        return v

    def make_user(self, password, tags="management", api=None):
        api = api or self.api
        u = unique("compat-user")
        self.api_ok("PUT", "/api/users/" + quote(u), {"password": password, "tags": tags}, api=api)
        self.addCleanup(api.call, "DELETE", "/api/users/" + quote(u))
        return u

    def wait_get(self, path, predicate, timeout=10, api=None):
        """GET path until predicate(body) holds; the body, or a failure showing the last one."""
        api = api or self.api
        last = {}

        def check():
            status, body, _, _ = api.call("GET", path)
            last["v"] = (status, body)
            return status == 200 and predicate(body)
        self.assertTrue(wait_until(check, timeout), "GET %s: %r" % (path, last.get("v")))
        return last["v"][1]

    def queue_info(self, name, vhost="/"):
        return self.api.get("/api/queues/%s/%s" % (quote(vhost), quote(name)))

    def named_connection(self):
        """(pika connection, its connection_name, its name in the API) once the API lists it."""
        cname = unique("compat-conn")
        conn = self.connect(client_properties={"connection_name": cname})
        listed = self.wait_get("/api/connections", lambda cs: [
            c for c in cs if (c.get("client_properties") or {}).get("connection_name") == cname])
        mine = [c for c in listed
                if (c.get("client_properties") or {}).get("connection_name") == cname]
        return conn, cname, mine[0]["name"]


class RabbitmqadminTest(CompatCase):
    """rabbitmqadmin, unchanged, against the API: each command exits 0 and does what it says."""

    def admin(self, *args, ok=True):
        if not os.path.isfile(RABBITMQADMIN):
            self.fail("rabbitmqadmin not found at %s: run scripts/setup.sh test (it takes the "
                      "script out of Debian's rabbitmq-server package) or set "
                      "WARREN_RABBITMQADMIN to its path" % RABBITMQADMIN)
        cmd = [PYTHON, RABBITMQADMIN, "-H", self.http_host, "-P", str(self.http_port),
               "-u", "guest", "-p", "guest", *args]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=ADMIN_TIMEOUT_S)
        if ok:
            self.assertEqual(r.returncode, 0, "rabbitmqadmin %s: exit %s\n%s%s"
                             % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def admin_json(self, *args):
        out = self.admin("-f", "raw_json", *args).stdout
        try:
            return json.loads(out)
        except ValueError:
            self.fail("rabbitmqadmin -f raw_json %s printed no JSON: %r" % (" ".join(args), out))

    def declare_topology(self):
        """Exchange x (topic), queue q (durable, TTL argument), binding x -> q on a.#."""
        x, q = unique("adm-x"), unique("adm-q")
        self.addCleanup(self.api.call, "DELETE", "/api/exchanges/%2F/" + quote(x))
        self.addCleanup(self.api.call, "DELETE", "/api/queues/%2F/" + quote(q))
        self.admin("declare", "exchange", "name=" + x, "type=topic", "durable=true")
        self.admin("declare", "queue", "name=" + q, "durable=true",
                   'arguments={"x-message-ttl":60000}')
        self.admin("declare", "binding", "source=" + x, "destination=" + q, "routing_key=a.#")
        return x, q

    def assert_topology(self, x, q):
        ex = self.api.get("/api/exchanges/%2F/" + quote(x))
        self.assertEqual((ex["type"], ex["durable"]), ("topic", True))
        info = self.queue_info(q)
        self.assertTrue(info["durable"])
        self.assertEqual(info["arguments"], {"x-message-ttl": 60000})
        keys = [b["routing_key"] for b in
                self.api.get("/api/bindings/%%2F/e/%s/q/%s" % (quote(x), quote(q)))]
        self.assertEqual(keys, ["a.#"])

    def test_declare_publish_list_and_get(self):
        x, q = self.declare_topology()
        self.assert_topology(x, q)
        self.admin("publish", "exchange=" + x, "routing_key=a.b", "payload=hello")
        self.wait_get("/api/queues/%2F/" + quote(q), lambda i: i.get("messages") == 1)

        rows = table_rows(self.admin("list", "queues", "name", "messages").stdout)
        self.assertEqual(rows[0], ["name", "messages"])
        self.assertIn([q, "1"], rows[1:])
        # rabbitmqadmin asks for columns=name,messages: the server returns just those keys.
        listed = self.admin_json("list", "queues", "name", "messages")
        self.assertIn({"name": q, "messages": 1}, listed)
        self.assertTrue(all(set(item) == {"name", "messages"} for item in listed), listed)

        self.assertIn([x, "topic"], table_rows(self.admin("list", "exchanges").stdout))
        self.assertIn([x, q, "a.#"], table_rows(self.admin("list", "bindings").stdout))

        # Peek (requeue), then take it.
        got = self.admin_json("get", "queue=" + q, "ackmode=ack_requeue_true")
        self.assertEqual(len(got), 1, got)
        self.assertEqual((got[0]["payload"], got[0]["routing_key"], got[0]["exchange"]),
                         ("hello", "a.b", x))
        out = self.admin("get", "queue=" + q, "ackmode=ack_requeue_false").stdout
        self.assertIn("hello", out)
        self.wait_get("/api/queues/%2F/" + quote(q), lambda i: i.get("messages") == 0)
        self.assertEqual(self.admin_json("get", "queue=" + q, "ackmode=ack_requeue_false"), [])

    def test_declare_a_quorum_queue(self):
        # rabbitmqadmin turns queue_type=quorum into the argument x-queue-type.
        q = unique("adm-quorum")
        self.addCleanup(self.api.call, "DELETE", "/api/queues/%2F/" + quote(q))
        self.admin("declare", "queue", "name=" + q, "durable=true", "queue_type=quorum")
        info = self.queue_info(q)
        self.assertEqual((info["type"], info["durable"], info["arguments"]),
                         ("quorum", True, {"x-queue-type": "quorum"}))
        self.assertIn([q, "quorum"], table_rows(self.admin("list", "queues", "name",
                                                           "type").stdout))

    def test_export_delete_and_import(self):
        x, q = self.declare_topology()
        folder = tempfile.mkdtemp(prefix="warren-defs-")
        self.addCleanup(shutil.rmtree, folder, True)
        path = os.path.join(folder, "definitions.json")
        self.admin("export", path)
        with open(path) as f:
            exported = json.load(f)
        self.assertIn(q, [d["name"] for d in exported["queues"]])
        self.admin("delete", "queue", "name=" + q)
        self.admin("delete", "exchange", "name=" + x)
        self.assertEqual(self.api.call("GET", "/api/queues/%2F/" + quote(q))[0], 404)
        self.assertEqual(self.api.call("GET", "/api/exchanges/%2F/" + quote(x))[0], 404)
        self.admin("import", path)
        self.wait_get("/api/queues/%2F", lambda qs: q in [i["name"] for i in qs])
        self.assert_topology(x, q)

    def test_vhost_user_and_permission(self):
        v, u = unique("adm-v"), unique("adm-u")
        self.addCleanup(self.api.call, "DELETE", "/api/vhosts/" + quote(v))
        self.addCleanup(self.api.call, "DELETE", "/api/users/" + quote(u))
        self.admin("declare", "vhost", "name=" + v)
        self.assertEqual(self.api.get("/api/vhosts/" + quote(v))["name"], v)
        self.admin("declare", "user", "name=" + u, "password=p", "tags=management")
        self.assertEqual(self.api.call("GET", "/api/whoami", user=u, password="p")[1],
                         {"name": u, "tags": ["management"]})
        self.admin("declare", "permission", "vhost=" + v, "user=" + u,
                   "configure=.*", "write=.*", "read=.*")
        perm = self.api.get("/api/permissions/%s/%s" % (quote(v), quote(u)))
        self.assertEqual((perm["configure"], perm["write"], perm["read"]), (".*", ".*", ".*"))
        self.connect(credentials=pika.PlainCredentials(u, "p"), virtual_host=v).close()
        self.assertIn(u, [r[0] for r in table_rows(self.admin("list", "users").stdout)])
        users = {i["name"]: i for i in self.admin_json("list", "users", "name", "tags")}
        self.assertEqual(users[u], {"name": u, "tags": ["management"]})

        self.admin("delete", "user", "name=" + u)
        self.assertEqual(self.api.call("GET", "/api/users/" + quote(u))[0], 404)
        self.assertEqual(self.api.call("GET", "/api/whoami", user=u, password="p")[0], 401)
        self.admin("delete", "vhost", "name=" + v)
        self.assertEqual(self.api.call("GET", "/api/vhosts/" + quote(v))[0], 404)

    def test_close_connection(self):
        before = {c["name"] for c in self.api.get("/api/connections")}
        conn = self.connect()
        listed = self.wait_get("/api/connections",
                               lambda cs: {c["name"] for c in cs} - before)
        new = [c["name"] for c in listed if c["name"] not in before]
        self.assertEqual(len(new), 1, listed)
        name = new[0]
        self.admin("close", "connection", "name=" + name)
        with self.assertRaises(pex.ConnectionClosedByBroker) as ctx:
            self.pump(conn, lambda: False, timeout=5)
        self.assertEqual(ctx.exception.reply_code, 320)
        self.wait_get("/api/connections", lambda cs: name not in [c["name"] for c in cs])

    def test_purge_queue(self):
        q = unique("adm-purge")
        self.addCleanup(self.api.call, "DELETE", "/api/queues/%2F/" + quote(q))
        self.admin("declare", "queue", "name=" + q, "durable=false")
        for i in range(3):
            self.admin("publish", "routing_key=" + q, "payload=m%d" % i)  # via amq.default
        self.wait_get("/api/queues/%2F/" + quote(q), lambda i: i.get("messages") == 3)
        self.admin("purge", "queue", "name=" + q)
        self.wait_get("/api/queues/%2F/" + quote(q), lambda i: i.get("messages") == 0)

    def test_list_connections_by_client_property(self):
        _, cname, name = self.named_connection()
        rows = table_rows(self.admin("list", "connections", "name",
                                     "client_properties.connection_name").stdout)
        self.assertEqual(rows[0], ["name", "client_properties.connection_name"])
        self.assertIn([name, cname], rows[1:])
        listed = self.admin_json("list", "connections", "name",
                                 "client_properties.connection_name")
        mine = [c for c in listed if c["name"] == name]
        self.assertEqual(len(mine), 1, listed)
        self.assertEqual(set(mine[0]), {"name", "client_properties"})
        self.assertEqual(mine[0]["client_properties"]["connection_name"], cname)

    def test_missing_object_fails(self):
        # rabbitmqadmin exits non-zero on the API's 404.
        r = self.admin("delete", "queue", "name=" + unique("adm-none"), ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Not found", r.stdout + r.stderr)


class QueryParametersTest(CompatCase):
    """page, page_size, name, use_regex, sort, sort_reverse and columns on the list endpoints."""

    # Queue suffix -> messages in it.
    COUNTS = {"pa.one": 3, "pa.three": 5, "pa.two": 1, "pb.four": 0, "xpa.five": 2}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.tag = "t" + unique("")[-8:]  # a prefix no other queue or exchange has
            cls.vhost = unique("query-vhost")
            cls._class_api_ok("PUT", "/api/vhosts/" + quote(cls.vhost), {})
            conn = pika.BlockingConnection(pika.ConnectionParameters(
                host=cls.host, port=cls.port, virtual_host=cls.vhost,
                credentials=pika.PlainCredentials("guest", "guest"), connection_attempts=1,
                socket_timeout=5))
            try:
                ch = conn.channel()
                ch.confirm_delivery()
                for suffix, n in cls.COUNTS.items():
                    q = cls.tag + suffix
                    ch.queue_declare(q, durable=True)
                    for i in range(n):
                        ch.basic_publish("", q, b"x" * (i + 1))
                for suffix, kind in (("ex.alpha", "topic"), ("ex.beta", "fanout"),
                                     ("ex.gamma", "direct")):
                    ch.exchange_declare(cls.tag + suffix, kind)
            finally:
                close_quietly(conn)
            path = "/api/queues/%s?columns=name,messages" % quote(cls.vhost)
            want = {cls.tag + s: n for s, n in cls.COUNTS.items()}
            if not wait_until(lambda: {i["name"]: i.get("messages") for i in
                                       cls.api.get(path)} == want, 15):
                raise AssertionError("queue counts never showed: %r" % cls.api.get(path))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        vhost = getattr(cls, "vhost", None)
        if cls.api is not None and cls.broker is not None and vhost:
            cls.api.call("DELETE", "/api/vhosts/" + quote(vhost))
        super().tearDownClass()

    @classmethod
    def _class_api_ok(cls, method, path, body=None):
        status, _, raw, _ = cls.api.call(method, path, body=body)
        if status not in (200, 201, 204):
            raise AssertionError("%s %s: %s %r" % (method, path, status, raw))

    def q(self, *suffixes):
        return [self.tag + s for s in suffixes]

    def get(self, path, **params):
        """(status, body) of GET path?params (params URL-encoded in the given order)."""
        query = urllib.parse.urlencode(params, safe=",")
        status, body, raw, _ = self.api.call("GET", path + ("?" + query if query else ""))
        return status, body

    def queues(self, **params):
        status, body = self.get("/api/queues/" + quote(self.vhost), **params)
        self.assertEqual(status, 200, body)
        if "page" in params:
            self.assertIsInstance(body, dict, "?%s: not a page object" % params)
        return body

    def names(self, items):
        return [i["name"] for i in items]

    def test_queue_pages(self):
        self.assertEqual(self.queues(page=1, page_size=2, columns="name"), {
            "filtered_count": 5, "item_count": 2,
            "items": [{"name": n} for n in self.q("pa.one", "pa.three")],
            "page": 1, "page_count": 3, "page_size": 2, "total_count": 5})
        self.assertEqual(self.names(self.queues(page=2, page_size=2, columns="name")["items"]),
                         self.q("pa.two", "pb.four"))
        last = self.queues(page=3, page_size=2, columns="name")
        self.assertEqual((last["item_count"], self.names(last["items"]), last["page"]),
                         (1, self.q("xpa.five"), 3))
        self.assertEqual(self.get("/api/queues/" + quote(self.vhost), page=4, page_size=2), (
            400, {"error": "page_out_of_range",
                  "reason": "Page out of range, page: 4 page size: 2, len: 5"}))
        # page alone: page_size 100.
        whole = self.queues(page=1, columns="name")
        self.assertEqual((whole["page_size"], whole["item_count"], whole["page_count"]),
                         (100, 5, 1))
        # page_size alone does not page: the plain list.
        self.assertEqual(self.names(self.queues(page_size=2, columns="name")),
                         self.q("pa.one", "pa.three", "pa.two", "pb.four", "xpa.five"))

    def test_queue_name_filter(self):
        def filtered(**params):
            body = self.queues(page=1, page_size=10, columns="name", **params)
            self.assertEqual(body["total_count"], 5)
            self.assertEqual(body["filtered_count"], body["item_count"])
            return self.names(body["items"])
        # Without use_regex: a case-insensitive substring, "." being just a dot.
        self.assertEqual(filtered(name=self.tag + "pa."),
                         self.q("pa.one", "pa.three", "pa.two"))
        self.assertEqual(filtered(name="PA."), self.q("pa.one", "pa.three", "pa.two",
                                                      "xpa.five"))
        self.assertEqual(filtered(name=self.tag + "p."), [])
        self.assertEqual(filtered(name=self.tag + "p.", use_regex="false"), [])
        self.assertEqual(filtered(name=""), self.q(*self.COUNTS))
        # use_regex=true: a (case-insensitive) regular expression.
        self.assertEqual(filtered(name=self.tag + "p.", use_regex="true"),
                         self.q("pa.one", "pa.three", "pa.two", "pb.four"))
        self.assertEqual(filtered(name="^" + self.tag.upper() + "PA", use_regex="true"),
                         self.q("pa.one", "pa.three", "pa.two"))
        body = self.queues(page=1, page_size=10, name="zzz-none")
        self.assertEqual((body["filtered_count"], body["item_count"], body["page_count"],
                          body["items"]), (0, 0, 0, []))
        self.assertEqual(self.get("/api/queues/" + quote(self.vhost), page=1, name="[",
                                  use_regex="true"),
                         (400, {"error": "bad_request",
                                "reason": "Pagination parameters are invalid"}))
        # Without page the name filter is not applied.
        self.assertEqual(len(self.queues(name=self.tag + "pb", columns="name")), 5)
        # On the all-vhosts list too.
        status, body = self.get("/api/queues", page=1, page_size=2, name="^" + self.tag,
                                use_regex="true", columns="name,vhost")
        self.assertEqual(status, 200, body)
        self.assertEqual((body["filtered_count"], body["page_count"], body["items"]),
                         (5, 3, [{"name": n, "vhost": self.vhost}
                                 for n in self.q("pa.one", "pa.three")]))
        self.assertGreaterEqual(body["total_count"], 5)

    def test_name_filter_with_columns_and_hostile_patterns(self):
        # The filter looks at the name even when columns leave it out of the answer.
        body = self.queues(page=1, name=self.tag + "pa.t", columns="messages")
        self.assertEqual((body["filtered_count"], body["items"]),
                         (2, [{"messages": 5}, {"messages": 1}]))
        # Warren's own limits (RabbitMQ's regex engine differs): a pattern a backtracking
        # matcher needs exponential time for is answered (the call has a timeout), and one
        # with counted repetition or back-references is refused as an invalid filter.
        body = self.queues(page=1, use_regex="true", name="(.*)*(.*)*(.*)*!", columns="name")
        self.assertEqual(body["filtered_count"], 0)
        body = self.queues(page=1, use_regex="true", name="^" + self.tag + "(pa|pb)",
                           columns="name")
        self.assertEqual(body["filtered_count"], 4)
        invalid = (400, {"error": "bad_request", "reason": "Pagination parameters are invalid"})
        for pattern in ("(){40000}", "(a)\\1", "x" * 300):
            with self.subTest(pattern=pattern[:20]):
                self.assertEqual(self.get("/api/queues/" + quote(self.vhost), page=1,
                                          use_regex="true", name=pattern), invalid)

    def test_queue_sort(self):
        by_count = self.q("pb.four", "pa.two", "xpa.five", "pa.one", "pa.three")
        self.assertEqual(self.names(self.queues(sort="messages", columns="name,messages")),
                         by_count)
        self.assertEqual(self.names(self.queues(sort="messages", sort_reverse="true",
                                                columns="name")), by_count[::-1])
        self.assertEqual(self.names(self.queues(sort="message_stats.publish",
                                                sort_reverse="true", columns="name")),
                         by_count[::-1])
        by_name = self.q("pa.one", "pa.three", "pa.two", "pb.four", "xpa.five")
        self.assertEqual(self.names(self.queues(sort="name", sort_reverse="true",
                                                columns="name")), by_name[::-1])
        # sort_reverse alone reverses the default order (by name).
        self.assertEqual(self.names(self.queues(sort_reverse="true", columns="name")),
                         by_name[::-1])
        # Sorted, then paged.
        page = self.queues(page=1, page_size=2, sort="messages", sort_reverse="true",
                           columns="name,messages")
        self.assertEqual(page["items"], [{"name": self.tag + "pa.three", "messages": 5},
                                         {"name": self.tag + "pa.one", "messages": 3}])

    def test_queue_columns(self):
        got = self.queues(columns="name,messages")
        self.assertEqual(got, [{"name": self.tag + s, "messages": self.COUNTS[s]}
                               for s in ("pa.one", "pa.three", "pa.two", "pb.four", "xpa.five")])
        # Dotted columns keep the nesting; a column naming an object keeps all of it.
        dotted = {i["name"]: i for i in self.queues(columns="name,message_stats.publish")}
        for suffix, n in self.COUNTS.items():
            item = dotted[self.tag + suffix]
            self.assertLessEqual(set(item), {"name", "message_stats"}, item)
            if n:
                self.assertEqual(item["message_stats"], {"publish": n})
        whole = {i["name"]: i for i in self.queues(columns="name,message_stats")}
        stats = whole[self.tag + "pa.three"]["message_stats"]
        self.assertEqual(stats["publish"], 5)
        self.assertTrue(is_rate(stats["publish_details"]), stats)
        # An unknown column is left out.
        self.assertEqual(self.queues(columns="name,no_such_column")[0],
                         {"name": self.tag + "pa.one"})

    def test_exchange_parameters(self):
        status, body = self.get("/api/exchanges", page=1, page_size=2, name=self.tag + "ex.",
                                columns="name,type")
        self.assertEqual(status, 200, body)
        total = len(self.api.get("/api/exchanges"))
        self.assertEqual(body, {
            "filtered_count": 3, "item_count": 2,
            "items": [{"name": self.tag + "ex.alpha", "type": "topic"},
                      {"name": self.tag + "ex.beta", "type": "fanout"}],
            "page": 1, "page_count": 2, "page_size": 2, "total_count": total})
        path = "/api/exchanges/" + quote(self.vhost)
        status, body = self.get(path, page=2, page_size=2, name=self.tag, columns="name")
        self.assertEqual((status, body["items"]), (200, [{"name": self.tag + "ex.gamma"}]))
        self.assertEqual(body["total_count"], len(self.api.get(path)))
        status, listed = self.get(path, sort="name", sort_reverse="true", columns="name")
        names = self.names(listed)
        self.assertEqual(names, sorted(names, reverse=True))
        self.assertTrue(all(set(i) == {"name"} for i in listed), listed)
        mine = [n for n in names if n.startswith(self.tag)]
        self.assertEqual(mine, [self.tag + s for s in ("ex.gamma", "ex.beta", "ex.alpha")])

    def test_vhost_parameters(self):
        prefix = unique("vq")
        made = [self.make_vhost(prefix + s) for s in ("-a", "-b", "-c")]
        status, body = self.get("/api/vhosts", page=1, page_size=2, name=prefix, columns="name")
        self.assertEqual(status, 200, body)
        self.assertEqual(body, {
            "filtered_count": 3, "item_count": 2, "items": [{"name": n} for n in made[:2]],
            "page": 1, "page_count": 2, "page_size": 2,
            "total_count": len(self.api.get("/api/vhosts"))})
        status, listed = self.get("/api/vhosts", sort="name", sort_reverse="true",
                                  columns="name")
        self.assertTrue(all(set(i) == {"name"} for i in listed), listed)
        self.assertEqual([n for n in self.names(listed) if n.startswith(prefix)], made[::-1])

    def test_user_parameters(self):
        made = sorted(self.make_user("pw", tags="") for _ in range(2))
        status, listed = self.get("/api/users", columns="name")
        self.assertEqual(status, 200, listed)
        # Just the name: no password_hash, no other key.
        self.assertTrue(all(set(i) == {"name"} for i in listed), listed)
        self.assertLessEqual(set(made), set(self.names(listed)))
        status, listed = self.get("/api/users", sort="name", sort_reverse="true",
                                  columns="name,tags")
        self.assertEqual([i for i in listed if i["name"] in made],
                         [{"name": n, "tags": []} for n in made[::-1]])
        # RabbitMQ 3.10 does not page the user list: page and page_size leave it whole.
        status, listed = self.get("/api/users", page=1, page_size=1, columns="name")
        self.assertEqual(status, 200, listed)
        self.assertIsInstance(listed, list)
        self.assertLessEqual(set(made), set(self.names(listed)))

    def test_invalid_pagination(self):
        cases = [
            ({"page": 0}, 400, {"error": "invalid_pagination_parameters",
                                "reason": "Invalid pagination parameters: page number 0, "
                                          "page size undefined"}),
            ({"page": 0, "page_size": 2}, 400, {
                "error": "invalid_pagination_parameters",
                "reason": "Invalid pagination parameters: page number 0, page size 2"}),
            ({"page": 1, "page_size": 501}, 400, {
                "error": "invalid_pagination_parameters",
                "reason": "Invalid pagination parameters: page number 1, page size 501"}),
            ({"page": 1, "page_size": 0}, 400, {
                "error": "invalid_pagination_parameters",
                "reason": "Invalid pagination parameters: page number 1, page size 0"}),
            ({"page": "x"}, 400, {"error": "bad_request",
                                  "reason": "Pagination parameters are invalid"}),
            ({"page": 1, "page_size": "x"}, 400, {"error": "bad_request",
                                                  "reason": "Pagination parameters are invalid"}),
        ]
        for path in ("/api/queues", "/api/exchanges", "/api/vhosts", "/api/connections",
                     "/api/queues/" + quote(self.vhost)):
            for params, status, body in cases:
                with self.subTest(path=path, params=params):
                    self.assertEqual(self.get(path, **params), (status, body))
        # The largest page size is allowed.
        self.assertEqual(self.queues(page=1, page_size=500)["page_size"], 500)


class ConnectionListTest(CompatCase):
    """Paging, sorting, filtering and columns on /api/connections (a broker of its own, so that
    the connections listed are this test's)."""

    def test_connection_pages_sort_and_columns(self):
        tag = unique("cl")
        names = [tag + s for s in ("-b", "-a", "-c")]
        for n in names:
            self.connect(client_properties={"connection_name": n})

        def cname(item):
            return (item.get("client_properties") or {}).get("connection_name")
        listed = self.wait_get("/api/connections", lambda cs: sorted(
            cname(c) for c in cs if (cname(c) or "").startswith(tag)) == sorted(names))
        self.assertEqual(len(listed), 3, listed)
        by_cname = {cname(c): c["name"] for c in listed}

        status, body, raw, _ = self.api.call(
            "GET", "/api/connections?page=1&page_size=2&sort=client_properties.connection_name"
                   "&columns=name,client_properties.connection_name")
        self.assertEqual(status, 200, raw)
        self.assertEqual({k: v for k, v in body.items() if k != "items"},
                         {"filtered_count": 3, "item_count": 2, "page": 1, "page_count": 2,
                          "page_size": 2, "total_count": 3})
        self.assertEqual([cname(i) for i in body["items"]], [tag + "-a", tag + "-b"])
        self.assertEqual([i["name"] for i in body["items"]],
                         [by_cname[tag + "-a"], by_cname[tag + "-b"]])
        for item in body["items"]:
            self.assertEqual(set(item), {"name", "client_properties"}, item)

        status, listed, raw, _ = self.api.call(
            "GET", "/api/connections?sort=client_properties.connection_name&sort_reverse=true"
                   "&columns=client_properties.connection_name")
        self.assertEqual(status, 200, raw)
        self.assertEqual([cname(i) for i in listed if (cname(i) or "").startswith(tag)],
                         [tag + "-c", tag + "-b", tag + "-a"])

        # name filters on the connection's name ("host:port -> host:port").
        one = by_cname[tag + "-a"]
        status, body, raw, _ = self.api.call(
            "GET", "/api/connections?page=1&columns=name&name=" + quote(one))
        self.assertEqual(status, 200, raw)
        self.assertEqual((body["filtered_count"], body["items"]), (1, [{"name": one}]))
        status, body, raw, _ = self.api.call(
            "GET", "/api/connections?page=1&columns=name&use_regex=true&name="
                   + quote(r"-> [0-9.]+:%d$" % self.port))
        self.assertEqual(status, 200, raw)
        self.assertEqual((body["filtered_count"], {i["name"] for i in body["items"]}),
                         (3, {by_cname[n] for n in names}))
        # A connection_name is not the name the filter looks at.
        status, body, raw, _ = self.api.call(
            "GET", "/api/connections?page=1&columns=name&name=" + quote(tag))
        self.assertEqual((status, body["filtered_count"]), (200, 0), raw)

        status, listed, raw, _ = self.api.call("GET", "/api/connections?columns=user,vhost")
        self.assertEqual(status, 200, raw)
        self.assertIn({"user": "guest", "vhost": "/"}, listed)
        self.assertTrue(all(set(i) == {"user", "vhost"} for i in listed), listed)


class DefinitionsTest(CompatCase):
    """GET and POST /api/definitions and /api/definitions/{vhost}."""

    TOP_KEYS = {"rabbit_version", "rabbitmq_version", "product_name", "product_version",
                "users", "vhosts", "permissions", "topic_permissions", "parameters",
                "global_parameters", "policies", "queues", "exchanges", "bindings"}
    VHOST_KEYS = {"rabbit_version", "parameters", "policies", "queues", "exchanges", "bindings"}

    def populate(self):
        """A vhost with a user, permissions, queues, exchanges and bindings of each kind."""
        n = {"password": "defs-secret"}
        n["user"] = self.make_user(n["password"])
        n["vhost"] = v = self.make_vhost()
        self.api_ok("PUT", "/api/permissions/%s/%s" % (quote(v), quote(n["user"])),
                    {"configure": "^dq", "write": ".*", "read": "^d"})
        self.api_ok("PUT", "/api/topic-permissions/%s/%s" % (quote(v), quote(n["user"])),
                    {"exchange": "amq.topic", "write": "^a", "read": ".*"})
        self.api_ok("PUT", "/api/queues/%s/dq" % quote(v),
                    {"durable": True, "arguments": {"x-message-ttl": 60000, "x-max-length": 10}})
        self.api_ok("PUT", "/api/queues/%s/tq" % quote(v), {"durable": False, "auto_delete": True})
        self.api_ok("PUT", "/api/exchanges/%s/dx" % quote(v), {"type": "topic", "durable": True})
        self.api_ok("PUT", "/api/exchanges/%s/dx2" % quote(v),
                    {"type": "fanout", "durable": True, "internal": True,
                     "arguments": {"alternate-exchange": "dx"}})
        self.api_ok("POST", "/api/bindings/%s/e/dx/q/dq" % quote(v),
                    {"routing_key": "a.#", "arguments": {"x-k": "v"}})
        self.api_ok("POST", "/api/bindings/%s/e/dx/e/dx2" % quote(v), {"routing_key": "b.*"})
        # An exclusive queue, not exported: it lives only as long as its connection.
        ch = self.connect(virtual_host=v).channel()
        ch.queue_declare("exq", exclusive=True)
        return n

    def expected_objects(self, v, with_vhost=True):
        def tag(d):
            return dict(d, vhost=v) if with_vhost else d
        queues = [tag({"name": "dq", "durable": True, "auto_delete": False,
                       "arguments": {"x-message-ttl": 60000, "x-max-length": 10}}),
                  tag({"name": "tq", "durable": False, "auto_delete": True, "arguments": {}})]
        exchanges = [tag({"name": "dx", "type": "topic", "durable": True, "auto_delete": False,
                          "internal": False, "arguments": {}}),
                     tag({"name": "dx2", "type": "fanout", "durable": True,
                          "auto_delete": False, "internal": True,
                          "arguments": {"alternate-exchange": "dx"}})]
        bindings = [tag({"source": "dx", "destination": "dq", "destination_type": "queue",
                         "routing_key": "a.#", "arguments": {"x-k": "v"}}),
                    tag({"source": "dx", "destination": "dx2", "destination_type": "exchange",
                         "routing_key": "b.*", "arguments": {}})]
        return queues, exchanges, bindings

    def sorted_dicts(self, items):
        return sorted(items, key=lambda d: json.dumps(d, sort_keys=True))

    def fresh(self):
        """(Api, amqp port) of a broker that has only its defaults: a new warrend; for an
        external broker, that broker itself (the definitions use names of their own)."""
        if EXTERNAL:
            return self.api, self.port
        b = Broker(binary=os.environ.get("WARREND")).start()
        self.addCleanup(b.stop)
        return Api(*b.wait_listener("http")), b.port

    def test_export_shape(self):
        n = self.populate()
        v, u = n["vhost"], n["user"]
        status, defs, raw, headers = self.api.call("GET", "/api/definitions")
        self.assertEqual(status, 200, raw)
        self.assertEqual(set(defs), self.TOP_KEYS)
        o = self.api.get("/api/overview")
        self.assertEqual((defs["rabbit_version"], defs["rabbitmq_version"],
                          defs["product_name"], defs["product_version"]),
                         (o["rabbitmq_version"], o["rabbitmq_version"], o["product_name"],
                          o["product_version"]))
        for key in ("parameters", "global_parameters", "policies"):
            self.assertIsInstance(defs[key], list, key)

        users = {x["name"]: x for x in defs["users"]}
        self.assertEqual(users[u], {
            "name": u, "password_hash": self.api.get("/api/users/" + quote(u))["password_hash"],
            "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["management"],
            "limits": {}})
        self.assertIn("guest", users)
        self.assertIn({"name": v}, defs["vhosts"])
        self.assertIn({"name": "/"}, defs["vhosts"])
        self.assertIn({"user": u, "vhost": v, "configure": "^dq", "write": ".*", "read": "^d"},
                      defs["permissions"])
        self.assertIn({"user": u, "vhost": v, "exchange": "amq.topic", "write": "^a",
                       "read": ".*"}, defs["topic_permissions"])

        queues, exchanges, bindings = self.expected_objects(v)
        self.assertEqual(self.sorted_dicts(x for x in defs["queues"] if x["vhost"] == v),
                         self.sorted_dicts(queues))
        self.assertEqual(self.sorted_dicts(x for x in defs["exchanges"] if x["vhost"] == v),
                         self.sorted_dicts(exchanges))
        self.assertEqual(self.sorted_dicts(x for x in defs["bindings"] if x["vhost"] == v),
                         self.sorted_dicts(bindings))
        # Neither the predeclared exchanges nor the default exchange's implicit bindings.
        for x in defs["exchanges"]:
            self.assertFalse(x["name"] == "" or x["name"].startswith("amq."), x)
        for b in defs["bindings"]:
            self.assertNotEqual(b["source"], "", b)

        # ?download=name makes it an attachment of that name.
        status, again, _, headers = self.api.call("GET", "/api/definitions?download=defs.json")
        self.assertEqual(status, 200)
        self.assertEqual(set(again), self.TOP_KEYS)
        self.assertEqual(headers.get("Content-Disposition"), "attachment; filename=defs.json")

    def test_vhost_export_shape(self):
        v = self.populate()["vhost"]
        status, defs, raw, _ = self.api.call("GET", "/api/definitions/" + quote(v))
        self.assertEqual(status, 200, raw)
        self.assertEqual(set(defs), self.VHOST_KEYS)
        self.assertEqual(defs["rabbit_version"], self.api.get("/api/overview")["rabbitmq_version"])
        self.assertEqual((defs["parameters"], defs["policies"]), ([], []))
        queues, exchanges, bindings = self.expected_objects(v, with_vhost=False)
        self.assertEqual(self.sorted_dicts(defs["queues"]), self.sorted_dicts(queues))
        self.assertEqual(self.sorted_dicts(defs["exchanges"]), self.sorted_dicts(exchanges))
        self.assertEqual(self.sorted_dicts(defs["bindings"]), self.sorted_dicts(bindings))
        self.assertEqual(self.api.call("GET", "/api/definitions/" + unique("none"))[:2],
                         (400, {"error": "bad_request", "reason": "vhost_not_found"}))

    def test_import_rabbitmq_file_into_fresh_broker(self):
        # A file as RabbitMQ 3.10.8 exports it; the hash is RabbitMQ's for "imported-secret".
        u, v = unique("imp-user"), unique("imp-vhost")
        defs = {
            "rabbit_version": "3.10.8", "rabbitmq_version": "3.10.8",
            "product_name": "RabbitMQ", "product_version": "3.10.8",
            "users": [{"name": u, "password_hash": rabbit_hash("imported-secret"),
                       "hashing_algorithm": "rabbit_password_hashing_sha256",
                       "tags": ["management"], "limits": {}}],
            "vhosts": [{"name": v}],
            "permissions": [{"user": u, "vhost": v, "configure": ".*", "write": ".*",
                             "read": ".*"}],
            "topic_permissions": [], "parameters": [], "global_parameters": [], "policies": [],
            "queues": [{"name": "hq", "vhost": v, "durable": True, "auto_delete": False,
                        "arguments": {"x-message-ttl": 60000}},
                       {"name": "hq2", "vhost": v, "durable": True, "auto_delete": False,
                        "arguments": {}}],
            "exchanges": [{"name": "hx", "vhost": v, "type": "topic", "durable": True,
                           "auto_delete": False, "internal": False, "arguments": {}},
                          {"name": "hx2", "vhost": v, "type": "fanout", "durable": True,
                           "auto_delete": False, "internal": False, "arguments": {}}],
            "bindings": [{"source": "hx", "vhost": v, "destination": "hq",
                          "destination_type": "queue", "routing_key": "k.#", "arguments": {}},
                         {"source": "hx", "vhost": v, "destination": "hx2",
                          "destination_type": "exchange", "routing_key": "k.x",
                          "arguments": {}},
                         {"source": "hx2", "vhost": v, "destination": "hq2",
                          "destination_type": "queue", "routing_key": "", "arguments": {}}]}
        api, amqp_port = self.fresh()
        self.addCleanup(api.call, "DELETE", "/api/vhosts/" + quote(v))
        self.addCleanup(api.call, "DELETE", "/api/users/" + quote(u))
        status, body, raw, _ = api.call("POST", "/api/definitions", body=defs)
        self.assertEqual((status, raw), (204, b""))

        # The user logs in with the password behind the imported hash, and only with it.
        self.assertEqual(api.call("GET", "/api/whoami", user=u, password="imported-secret")[:2],
                         (200, {"name": u, "tags": ["management"]}))
        self.assertEqual(api.call("GET", "/api/whoami", user=u, password="wrong")[0], 401)
        self.assertEqual(api.get("/api/users/" + quote(u))["password_hash"],
                         rabbit_hash("imported-secret"))
        self.assertEqual(api.get("/api/vhosts/" + quote(v))["name"], v)
        perm = api.get("/api/permissions/%s/%s" % (quote(v), quote(u)))
        self.assertEqual((perm["configure"], perm["write"], perm["read"]), (".*", ".*", ".*"))
        hq = api.get("/api/queues/%s/hq" % quote(v))
        self.assertEqual((hq["durable"], hq["arguments"]), (True, {"x-message-ttl": 60000}))
        self.assertEqual(api.get("/api/exchanges/%s/hx" % quote(v))["type"], "topic")
        got = {(b["source"], b["destination"], b["destination_type"], b["routing_key"])
               for b in api.get("/api/bindings/" + quote(v)) if b["source"]}
        self.assertEqual(got, {("hx", "hq", "queue", "k.#"), ("hx", "hx2", "exchange", "k.x"),
                               ("hx2", "hq2", "queue", "")})

        # The imported user, over AMQP: the bindings route (to hq directly, to hq2 via hx2).
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            host=self.host, port=amqp_port, virtual_host=v, connection_attempts=1,
            socket_timeout=5, credentials=pika.PlainCredentials(u, "imported-secret")))
        self.addCleanup(close_quietly, conn)
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish("hx", "k.x", b"through the imported bindings")
        for q in ("hq", "hq2"):
            method, _, body = ch.basic_get(q, auto_ack=True)
            self.assertIsNotNone(method, q)
            self.assertEqual(body, b"through the imported bindings")

    def test_export_import_round_trip(self):
        n = self.populate()
        v, u = n["vhost"], n["user"]
        exported = self.api.get("/api/definitions")
        api, _ = self.fresh()
        if EXTERNAL:  # the same broker: take the objects away first
            self.api_ok("DELETE", "/api/vhosts/" + quote(v))
            self.api_ok("DELETE", "/api/users/" + quote(u))
        self.addCleanup(api.call, "DELETE", "/api/vhosts/" + quote(v))
        self.addCleanup(api.call, "DELETE", "/api/users/" + quote(u))
        status, _, raw, _ = api.call("POST", "/api/definitions", body=exported)
        self.assertEqual((status, raw), (204, b""))
        self.assertEqual(api.call("GET", "/api/whoami", user=u, password=n["password"])[:2],
                         (200, {"name": u, "tags": ["management"]}))
        again = api.get("/api/definitions")
        # The user (same hash), the vhost and the user's permissions there came across.
        for key, ours in (("users", lambda x: x["name"] == u),
                          ("vhosts", lambda x: x["name"] == v),
                          ("permissions", lambda x: (x["user"], x["vhost"]) == (u, v)),
                          ("topic_permissions", lambda x: (x["user"], x["vhost"]) == (u, v))):
            mine = [x for x in exported[key] if ours(x)]
            self.assertEqual(len(mine), 1, (key, exported[key]))
            self.assertIn(mine[0], again[key], key)
        for key in ("queues", "exchanges", "bindings"):
            self.assertEqual(self.sorted_dicts(x for x in again[key] if x["vhost"] == v),
                             self.sorted_dicts(x for x in exported[key] if x["vhost"] == v),
                             key)

    def test_vhost_import(self):
        source = self.populate()["vhost"]
        defs = self.api.get("/api/definitions/" + quote(source))
        target = self.make_vhost()
        status, _, raw, _ = self.api.call("POST", "/api/definitions/" + quote(target), body=defs)
        self.assertEqual((status, raw), (204, b""))
        queues, exchanges, bindings = self.expected_objects(target, with_vhost=False)
        again = self.api.get("/api/definitions/" + quote(target))
        self.assertEqual(self.sorted_dicts(again["queues"]), self.sorted_dicts(queues))
        self.assertEqual(self.sorted_dicts(again["exchanges"]), self.sorted_dicts(exchanges))
        self.assertEqual(self.sorted_dicts(again["bindings"]), self.sorted_dicts(bindings))
        self.assertEqual(self.queue_info("dq", target)["arguments"],
                         {"x-message-ttl": 60000, "x-max-length": 10})
        self.assertEqual(self.api.call("POST", "/api/definitions/" + unique("none"),
                                       body=defs)[:2],
                         (404, {"error": "not_found", "reason": "vhost_not_found"}))

    def test_import_errors(self):
        for raw in (b"{not json", b"[]"):
            with self.subTest(body=raw):
                status, body = self.post_raw("/api/definitions", raw)
                self.assertEqual((status, body),
                                 (400, {"error": "bad_request", "reason": "failed_to_parse_json"}))
        # An empty object, or no body at all, is a file with nothing in it.
        self.assertEqual(self.post_raw("/api/definitions", b"{}"), (204, None))
        self.assertEqual(self.post_raw("/api/definitions", b""), (204, None))

    def post_raw(self, path, data):
        """(status, parsed JSON or None) of a POST of the bytes data as application/json."""
        req = urllib.request.Request(self.api.base + path, data=data, method="POST")
        token = base64.b64encode(b"guest:guest").decode()
        req.add_header("Authorization", "Basic " + token)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=20) as res:
                status, raw = res.status, res.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        return status, (json.loads(raw) if raw else None)


@unittest.skipIf(EXTERNAL, "starts warrend with a configuration file")
class LoadDefinitionsTest(RestartCase):
    """RabbitMQ's load_definitions: a definitions file (or a directory of them, in name order)
    imported at every start, before the listeners open; one that cannot be imported stops the
    start."""

    data_prefix = "warren-loaddefs-"
    DEFS = {
        "users": [{"name": "defs-user", "password": "defs-secret", "tags": ""}],
        "vhosts": [{"name": "defs-vhost"}],
        "permissions": [{"user": "defs-user", "vhost": "defs-vhost", "configure": ".*",
                         "write": ".*", "read": ".*"}],
        "queues": [{"name": "defs.q", "vhost": "defs-vhost", "durable": True,
                    "auto_delete": False, "arguments": {}}],
        "policies": [{"vhost": "defs-vhost", "name": "defs-cap", "pattern": "^defs\\.",
                      "apply-to": "queues", "definition": {"max-length": 2}, "priority": 0}],
    }

    def write(self, name, content):
        folder = os.path.join(self.data + "-defs")
        os.makedirs(folder, exist_ok=True)
        self.addCleanup(shutil.rmtree, folder, True)
        path = os.path.join(folder, name)
        with open(path, "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))
        return path

    def start_with(self, where):
        conf = self.write("warren.conf", "load_definitions = %s\n" % where)
        return self.start_broker("--config", conf)

    def user_channel(self):
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            host=self.running.host, port=self.running.port, virtual_host="defs-vhost",
            credentials=pika.PlainCredentials("defs-user", "defs-secret"),
            connection_attempts=1, socket_timeout=5, stack_timeout=10))
        self.addCleanup(close_quietly, conn)
        ch = conn.channel()
        ch.confirm_delivery()
        return conn, ch

    def test_a_file_is_imported_at_every_start(self):
        path = self.write("definitions.json", self.DEFS)
        broker = self.start_with(path)
        self.assertIn("imported definitions from " + path, broker.log_text())
        conn, ch = self.user_channel()
        for i in range(3):
            ch.basic_publish("", "defs.q", b"%d" % i, pika.BasicProperties(delivery_mode=2))
        self.assertEqual(ch.queue_declare("defs.q", passive=True).method.message_count, 2)
        close_quietly(conn)
        self.running.stop()
        self.start_with(path)  # imported again over what is there: the queue keeps its messages
        _, ch = self.user_channel()
        self.assertEqual(ch.queue_declare("defs.q", passive=True).method.message_count, 2)

    def test_a_directory_is_imported_file_by_file_in_name_order(self):
        first = {k: self.DEFS[k] for k in ("users", "vhosts", "permissions")}
        then = {k: self.DEFS[k] for k in ("queues", "policies")}
        self.write("20-queues.json", then)
        self.write("10-access.json", first)
        self.write("30-notes.txt", "not JSON, and not read")
        self.start_with(self.data + "-defs")
        _, ch = self.user_channel()
        self.assertEqual(ch.queue_declare("defs.q", passive=True).method.message_count, 0)
        api = Api(*self.running.wait_listener("http"))
        self.assertEqual(api.get("/api/policies/defs-vhost/defs-cap")["definition"],
                         {"max-length": 2})

    def test_a_file_that_cannot_be_imported_stops_the_start(self):
        bad = dict(self.DEFS, policies=[dict(self.DEFS["policies"][0],
                                             definition={"max-length": -1})])
        for where, why in ((self.write("bad.json", bad),
                            "-1 is not a valid maximum length"),
                           (self.data + "-defs/missing.json", "cannot read"),
                           (self.write("broken.json", "{not json"), "failed_to_parse_json")):
            with self.subTest(where=where):
                with self.assertRaises(BrokerError) as ctx:
                    self.start_with(where)
                self.assertIn("exited with code 1", str(ctx.exception))
                self.assertIn(why, str(ctx.exception))
                self.running = None


class HealthAndVhostListsTest(CompatCase):
    """Aliveness test, health checks, /api/vhosts/{vhost}/connections and .../channels."""

    NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}

    def test_aliveness_test(self):
        self.assertEqual(self.api.call("GET", "/api/aliveness-test/%2F")[:2],
                         (200, {"status": "ok"}))
        v = self.make_vhost()
        self.assertEqual(self.api.call("GET", "/api/aliveness-test/" + quote(v))[:2],
                         (200, {"status": "ok"}))
        self.assertEqual(self.api.call("GET", "/api/aliveness-test/" + unique("none"))[:2],
                         (404, self.NOT_FOUND))

    def listening_ports(self):
        return {self.port, self.http_port, self.broker.wait_listener("stomp")[1]}

    def test_port_listener(self):
        for port in sorted(self.listening_ports()):
            with self.subTest(port=port):
                self.assertEqual(
                    self.api.call("GET", "/api/health/checks/port-listener/%d" % port)[:2],
                    (200, {"status": "ok", "port": port}))
        # A port held (bound, not listening) here, so that nobody listens on it.
        holder = socket.socket()
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        free = holder.getsockname()[1]
        status, body, raw, _ = self.api.call("GET", "/api/health/checks/port-listener/%d" % free)
        self.assertEqual(status, 503, raw)
        self.assertEqual(set(body), {"status", "reason", "missing", "ports"})
        self.assertEqual((body["status"], body["reason"], body["missing"]),
                         ("failed", "No active listener", free))
        self.assertLessEqual(self.listening_ports(), set(body["ports"]))
        self.assertEqual(self.api.call("GET", "/api/health/checks/port-listener/abc")[:2],
                         (400, {"error": "bad_request", "reason": "Invalid port"}))

    def test_protocol_listener(self):
        for proto in ("amqp", "stomp", "http"):
            with self.subTest(protocol=proto):
                self.assertEqual(self.api.call(
                    "GET", "/api/health/checks/protocol-listener/" + proto)[:2],
                    (200, {"status": "ok", "protocol": proto}))
        # RabbitMQ's name for AMQP 0-9-1 listeners is "amqp", whatever alias is asked.
        self.assertEqual(self.api.call(
            "GET", "/api/health/checks/protocol-listener/amqp091")[:2],
            (200, {"status": "ok", "protocol": "amqp"}))
        status, body, raw, _ = self.api.call(
            "GET", "/api/health/checks/protocol-listener/nosuchproto")
        self.assertEqual(status, 503, raw)
        self.assertEqual(set(body), {"status", "reason", "missing", "protocols"})
        self.assertEqual((body["status"], body["reason"], body["missing"]),
                         ("failed", "No active listener", "nosuchproto"))
        self.assertLessEqual({"amqp", "stomp", "http"}, set(body["protocols"]))

    def test_node_checks(self):
        single = (200, {"status": "ok", "reason": "single node cluster"})
        for path, expected in (("virtual-hosts", (200, {"status": "ok"})),
                               ("node-is-quorum-critical", single),
                               ("node-is-mirror-sync-critical", single),
                               ("certificate-expiration/1/weeks", (200, {"status": "ok"})),
                               ("no-such-check", (404, self.NOT_FOUND))):
            with self.subTest(path=path):
                self.assertEqual(self.api.call("GET", "/api/health/checks/" + path)[:2],
                                 expected)

    def test_auth_settings_are_open_and_extensions_listed(self):
        # What the management UI asks: /api/auth before login (no credentials needed).
        status, body, _, _ = self.api.call("GET", "/api/auth", auth=False)
        self.assertEqual(status, 200)
        self.assertEqual((body["enable_uaa"], body["uaa_client_id"], body["uaa_location"]),
                         (False, "", ""))
        self.assertEqual(self.api.call("GET", "/api/extensions", auth=False)[0], 401)
        status, body, _, _ = self.api.call("GET", "/api/extensions")
        self.assertEqual(status, 200)
        self.assertIsInstance(body, list)  # RabbitMQ lists its UI's scripts, Warren none
        if not EXTERNAL:
            self.assertEqual(body, [])

    def test_vhost_connections_and_channels(self):
        v1, v2, empty = self.make_vhost(), self.make_vhost(), self.make_vhost()
        c1 = self.connect(virtual_host=v1)
        c1.channel()
        c2 = self.connect(virtual_host=v2)
        c2.channel()
        c2.channel()
        self.connect().channel()  # one in "/" as well
        conns = self.wait_get("/api/vhosts/%s/connections" % quote(v1), lambda cs: len(cs) >= 1)
        self.assertEqual([c["vhost"] for c in conns], [v1])
        chans = self.wait_get("/api/vhosts/%s/channels" % quote(v2), lambda cs: len(cs) >= 2)
        self.assertEqual(sorted((c["vhost"], c["number"]) for c in chans), [(v2, 1), (v2, 2)])
        v2_conn = self.api.get("/api/vhosts/%s/connections" % quote(v2))
        self.assertEqual(len(v2_conn), 1, v2_conn)
        self.assertEqual({c["connection_details"]["name"] for c in chans}, {v2_conn[0]["name"]})
        self.assertEqual(self.api.get("/api/vhosts/%s/channels" % quote(v1))[0]["vhost"], v1)
        self.assertEqual(self.api.get("/api/vhosts/%s/connections" % quote(empty)), [])
        self.assertEqual(self.api.get("/api/vhosts/%s/channels" % quote(empty)), [])
        # The whole-broker lists still have all of them.
        self.assertLessEqual({v1, v2, "/"}, {c["vhost"] for c in self.api.get("/api/connections")})
        for what in ("connections", "channels"):
            self.assertEqual(self.api.call("GET", "/api/vhosts/%s/%s" % (unique("none"),
                                                                        what))[:2],
                             (404, self.NOT_FOUND), what)


class FieldsTest(CompatCase):
    """Connection and queue fields, and the string-typed values rabbitmqadmin sends."""

    def test_connection_client_properties_and_auth_mechanism(self):
        _, cname, name = self.named_connection()
        c = self.api.get("/api/connections/" + quote(name))
        props = c["client_properties"]
        self.assertEqual(props["connection_name"], cname)
        self.assertEqual(props["product"], "Pika Python Client Library")
        self.assertEqual(props["version"], pika.__version__)
        self.assertIn("platform", props)
        self.assertIn("information", props)
        self.assertEqual(props["capabilities"], {
            "authentication_failure_close": True, "basic.nack": True,
            "connection.blocked": True, "consumer_cancel_notify": True,
            "publisher_confirms": True})
        self.assertEqual(c["auth_mechanism"], "PLAIN")
        listed = [x for x in self.api.get("/api/connections") if x["name"] == name]
        self.assertEqual(listed[0]["client_properties"], props)
        self.assertEqual(listed[0]["auth_mechanism"], "PLAIN")

    def test_queue_message_bytes(self):
        q = unique("bytes")
        self.queue_later(q)
        conn = self.connect()
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(q)
        for body in (b"a" * 10, b"b" * 20, b"c" * 300):
            ch.basic_publish("", q, body)
        method, _, body = ch.basic_get(q, auto_ack=False)  # the 10-byte one, unacknowledged
        self.assertEqual(body, b"a" * 10)
        path = "/api/queues/%2F/" + quote(q)
        info = self.wait_get(path, lambda i: i.get("messages_unacknowledged") == 1
                             and i.get("message_bytes") == 330)
        self.assertEqual((info["message_bytes"], info["message_bytes_ready"],
                          info["message_bytes_unacknowledged"]), (330, 320, 10))
        self.assertTrue(is_rate(info["messages_ready_details"]), info)
        self.assertTrue(is_rate(info["messages_unacknowledged_details"]), info)
        ch.basic_ack(method.delivery_tag)

        def settled(i):  # (RabbitMQ may show the counts before the bytes)
            return (i.get("messages_unacknowledged"), i.get("message_bytes"),
                    i.get("message_bytes_ready"), i.get("message_bytes_unacknowledged")) == \
                (0, 320, 320, 0)
        self.wait_get(path, settled)
        # Requeued, by a nack and by the connection's end: the bytes are ready again.
        for requeue in (lambda m: ch.basic_nack(m.delivery_tag, requeue=True),
                        lambda m: conn.close()):
            method, _, body = ch.basic_get(q, auto_ack=False)
            self.assertEqual(body, b"b" * 20)
            self.wait_get(path, lambda i: i.get("message_bytes_unacknowledged") == 20)
            requeue(method)
            self.wait_get(path, settled)
        listed = {i["name"]: i for i in self.api.get(
            "/api/queues/%2F?columns=name,message_bytes,messages_ready_details")}
        self.assertEqual(listed[q]["message_bytes"], 320)
        self.assertTrue(is_rate(listed[q]["messages_ready_details"]), listed[q])

    def test_string_typed_values(self):
        q, x, q2 = unique("str-q"), unique("str-x"), unique("str-q2")
        for name in (q, q2):
            self.addCleanup(self.api.call, "DELETE", "/api/queues/%2F/" + quote(name))
        self.addCleanup(self.api.call, "DELETE", "/api/exchanges/%2F/" + quote(x))
        self.assertEqual(self.api.call("PUT", "/api/queues/%2F/" + quote(q),
                                       body={"durable": "true", "auto_delete": "false"})[0], 201)
        self.assertEqual(self.api.call("PUT", "/api/queues/%2F/" + quote(q),
                                       body={"durable": "true", "auto_delete": "false"})[0], 204)
        info = self.queue_info(q)
        self.assertEqual((info["durable"], info["auto_delete"]), (True, False))
        self.assertEqual(self.api.call("PUT", "/api/queues/%2F/" + quote(q2),
                                       body={"durable": "false", "auto_delete": "true",
                                             "arguments": {}})[0], 201)
        info = self.queue_info(q2)
        self.assertEqual((info["durable"], info["auto_delete"]), (False, True))
        self.assertEqual(self.api.call("PUT", "/api/exchanges/%2F/" + quote(x),
                                       body={"type": "direct", "durable": "true",
                                             "auto_delete": "false", "internal": "false"})[0],
                         201)
        ex = self.api.get("/api/exchanges/%2F/" + quote(x))
        self.assertEqual((ex["durable"], ex["auto_delete"], ex["internal"]), (True, False, False))

        for i in range(3):
            self.api_ok("POST", "/api/exchanges/%2F/amq.default/publish",
                        {"routing_key": q, "payload": "m%d" % i, "payload_encoding": "string",
                         "properties": {}})
        self.wait_get("/api/queues/%2F/" + quote(q), lambda i: i.get("messages") == 3)
        status, got, raw, _ = self.api.call(
            "POST", "/api/queues/%%2F/%s/get" % quote(q),
            body={"count": "2", "ackmode": "ack_requeue_true", "encoding": "auto",
                  "truncate": "50000"})
        self.assertEqual(status, 200, raw)
        self.assertEqual([m["payload"] for m in got], ["m0", "m1"])
        status, body, raw, _ = self.api.call(
            "POST", "/api/queues/%%2F/%s/get" % quote(q),
            body={"count": "x", "ackmode": "ack_requeue_true", "encoding": "auto"})
        self.assertEqual((status, body["error"]), (400, "bad_request"), raw)



class AnswersTest(CompatCase):
    """Answers where RabbitMQ 3.10.8 answered otherwise before: a topic binding's
    properties_key in a URL, refusals of reserved names, a publish to a missing exchange, the
    overview's exchange types."""

    def test_publish_with_cc_and_bcc(self):
        # As basic.publish: CC and BCC add routing keys (BCC is taken off), and one that is
        # not an array is refused.
        a, b, c = unique("api-cc"), unique("api-cc"), unique("api-cc")
        for q in (a, b, c):
            self.addCleanup(self.api.call, "DELETE", "/api/queues/%2F/" + quote(q))
            self.api_ok("PUT", "/api/queues/%2F/" + quote(q), {})
        publish = "/api/exchanges/%2F/amq.default/publish"
        self.assertEqual(self.api_ok("POST", publish, {
            "routing_key": unique("none"), "payload": "m", "payload_encoding": "string",
            "properties": {"headers": {"CC": [a, b], "BCC": [c]}}}), {"routed": True})
        for q in (a, b, c):
            got = self.api_ok("POST", "/api/queues/%%2F/%s/get" % quote(q), {
                "count": 5, "ackmode": "ack_requeue_false", "encoding": "auto"})
            self.assertEqual([(m["payload"], m["properties"]["headers"]) for m in got],
                             [("m", {"CC": [a, b]})], q)
        status, body, _, _ = self.api.call("POST", publish, body={
            "routing_key": a, "payload": "m", "payload_encoding": "string",
            "properties": {"headers": {"CC": "x"}}})
        self.assertEqual((status, body["reason"]), (400, "406 PRECONDITION_FAILED - invalid "
                                                         "message: {unacceptable_type_in_header,"
                                                         "\"CC\",longstr}"))

    def test_properties_key_goes_into_a_url_as_listed(self):
        x, q = unique("pk-x"), unique("pk-q")
        self.addCleanup(self.api.call, "DELETE", "/api/exchanges/%2F/" + quote(x))
        self.addCleanup(self.api.call, "DELETE", "/api/queues/%2F/" + quote(q))
        self.api_ok("PUT", "/api/exchanges/%2F/" + quote(x), {"type": "topic"})
        self.api_ok("PUT", "/api/queues/%2F/" + quote(q), {})
        for key, args in (("a.#", {}), ("b.#", {"x-k": "v"}), ("", {})):
            self.api_ok("POST", "/api/bindings/%%2F/e/%s/q/%s" % (quote(x), quote(q)),
                        {"routing_key": key, "arguments": args})
        path = "/api/bindings/%%2F/e/%s/q/%s" % (quote(x), quote(q))
        listed = {b["routing_key"]: b["properties_key"] for b in self.api.get(path)}
        # As RabbitMQ writes it: the key percent-encoded, "~" and a hash when there are
        # arguments, "~" alone for an empty key.
        self.assertEqual(listed["a.#"], "a.%23")
        self.assertTrue(listed["b.#"].startswith("b.%23~"), listed)
        self.assertEqual(listed[""], "~")
        # Pasted into the URL as it is, and percent-encoded once more: both name the binding.
        self.assertEqual(self.api.get(path + "/" + listed["a.#"])["routing_key"], "a.#")
        self.assertEqual(self.api.call("DELETE", path + "/" + listed["a.#"])[0], 204)
        self.assertEqual(self.api.call("DELETE", path + "/" + quote(listed["b.#"]))[0], 204)
        self.assertEqual([b["routing_key"] for b in self.api.get(path)], [""])

    def test_head_answers_as_get_without_the_body(self):
        import http.client
        auth = "Basic " + base64.b64encode(b"guest:guest").decode()

        def ask(method, path, headers):
            conn = http.client.HTTPConnection(self.http_host, self.http_port, timeout=10)
            try:
                conn.request(method, path, headers=headers)
                r = conn.getresponse()
                return r.status, r.getheader("Content-Length"), r.read()
            finally:
                conn.close()
        get = ask("GET", "/api/vhosts", {"Authorization": auth})
        head = ask("HEAD", "/api/vhosts", {"Authorization": auth})
        self.assertEqual(get[0], 200)
        self.assertEqual(head, (200, str(len(get[2])), b""))
        self.assertEqual(ask("HEAD", "/api/vhosts", {})[0], 401)
        self.assertEqual(ask("HEAD", "/api/queues/%2F/" + unique("nowhere"),
                             {"Authorization": auth})[:1], (404,))
        # One keep-alive connection: a HEAD's answer has no body to skip.
        conn = http.client.HTTPConnection(self.http_host, self.http_port, timeout=10)
        try:
            for method in ("HEAD", "GET", "HEAD", "GET"):
                conn.request(method, "/api/vhosts", headers={"Authorization": auth})
                r = conn.getresponse()
                body = r.read()
                self.assertEqual((r.status, len(body) > 0), (200, method == "GET"), method)
        finally:
            conn.close()

    # What each path takes, as RabbitMQ 3.10.8 answers OPTIONS for it ({x}: a name of the
    # test's own; `read`: HEAD, GET, OPTIONS).
    READ = "HEAD, GET, OPTIONS"
    CHANGE = "HEAD, GET, PUT, DELETE, OPTIONS"
    METHODS = {
        "overview": READ, "nodes": READ, "definitions": "HEAD, GET, POST, OPTIONS",
        "definitions/%2F": "HEAD, GET, POST, OPTIONS", "parameters": READ,
        "global-parameters": READ, "policies": READ, "policies/%2F": READ,
        "policies/%2F/{x}": CHANGE, "operator-policies/%2F/{x}": CHANGE,
        "vhost-limits": "GET, OPTIONS", "vhost-limits/%2F": "GET, OPTIONS",
        "vhost-limits/%2F/{x}": "PUT, DELETE, OPTIONS", "connections": READ,
        "connections/{x}": "HEAD, GET, DELETE, OPTIONS", "connections/{x}/channels": READ,
        "channels": READ, "channels/{x}": READ, "consumers": READ, "consumers/%2F": READ,
        "exchanges": READ, "exchanges/%2F": READ, "exchanges/%2F/{x}": CHANGE,
        "exchanges/%2F/{x}/publish": "POST, OPTIONS",
        "exchanges/%2F/{x}/bindings/source": READ,
        "exchanges/%2F/{x}/bindings/destination": READ,
        "queues": READ, "queues/%2F": READ, "queues/%2F/{x}": CHANGE,
        "queues/%2F/{x}/bindings": READ, "queues/%2F/{x}/contents": "DELETE, OPTIONS",
        "queues/%2F/{x}/get": "POST, OPTIONS", "bindings": READ, "bindings/%2F": READ,
        "bindings/%2F/e/{x}/q/{x}": "HEAD, GET, POST, OPTIONS",
        "bindings/%2F/e/{x}/q/{x}/k": "HEAD, GET, DELETE, OPTIONS",
        "vhosts": READ, "vhosts/{x}": CHANGE, "vhosts/%2F/permissions": READ,
        "vhosts/%2F/topic-permissions": READ, "vhosts/%2F/connections": READ,
        "vhosts/%2F/channels": READ, "users/bulk-delete": "POST, OPTIONS",
        "users/without-permissions": READ, "users": READ, "users/{x}": CHANGE,
        "users/{x}/permissions": READ, "users/{x}/topic-permissions": READ,
        "user-limits": "GET, OPTIONS", "user-limits/{x}": "GET, OPTIONS",
        "user-limits/{x}/{x}": "PUT, DELETE, OPTIONS", "whoami": READ, "permissions": READ,
        "permissions/%2F/{x}": CHANGE, "topic-permissions": READ,
        "topic-permissions/%2F/{x}": CHANGE, "aliveness-test/%2F": READ,
        "healthchecks/node": READ, "health/checks/alarms": READ,
        "health/checks/virtual-hosts": READ,
        "no-such-area": READ,  # (the answer for every other path)
    }

    def methods_answer(self, method, path, auth=True):
        """(status, Allow header, body) of `method path`."""
        status, _, raw, headers = self.api.call(method, path, auth=auth,
                                                body={} if method in ("PUT", "POST") else None)
        return status, {k.lower(): v for k, v in headers.items()}.get("allow"), raw

    def test_options_answers_the_methods_of_each_path(self):
        x = unique("opt")
        for path, allow in self.METHODS.items():
            path = "/api/" + path.replace("{x}", x)
            self.assertEqual(self.methods_answer("OPTIONS", path, auth=False), (200, allow, b""),
                             path)

    @unittest.skipIf(EXTERNAL, "Warren's own paths")
    def test_options_of_warrens_own_paths(self):
        for path, allow in {"cluster/join": "POST, OPTIONS", "cluster/nodes/n": "DELETE, OPTIONS",
                            "debug/stall/queue/%2F/q": "POST, OPTIONS",
                            "cluster-name": self.READ,  # (it cannot be set)
                            "parameters/c/%2F/n": self.READ}.items():
            self.assertEqual(self.methods_answer("OPTIONS", "/api/" + path), (200, allow, b""),
                             path)
        self.assertEqual(self.methods_answer("OPTIONS", "/metrics", auth=False),
                         (200, self.READ, b""))
        self.assertEqual(self.methods_answer("POST", "/metrics", auth=False),
                         (405, self.READ, b""))

    def test_every_method_a_path_takes_is_served_and_every_other_gets_405(self):
        # The names are the test's own and mostly name nothing: what a path takes answers
        # anything but 405 (404, 400, 201, ...); what it does not take answers 405, with the
        # methods it takes, before any credentials are asked for.
        x = unique("opt")
        self.addCleanup(self.api.call, "DELETE", "/api/vhosts/" + x)
        self.addCleanup(self.api.call, "DELETE", "/api/users/" + x)
        for path, allow in self.METHODS.items():
            path = "/api/" + path.replace("{x}", x)
            for method in ("GET", "PUT", "POST", "DELETE"):
                if method in allow.split(", "):
                    self.assertNotEqual(self.methods_answer(method, path)[0], 405,
                                        method + " " + path)
                else:
                    self.assertEqual(self.methods_answer(method, path, auth=False),
                                     (405, allow, b""), method + " " + path)
        self.assertEqual(self.methods_answer("HEAD", "/api/vhost-limits")[:2],
                         (405, "GET, OPTIONS"))

    def test_users_without_permissions_and_bulk_delete(self):
        bare, other = self.make_user("p"), self.make_user("p")
        self.api_ok("PUT", "/api/topic-permissions/%%2F/%s" % bare,
                    {"exchange": "amq.topic", "write": ".*", "read": ".*"})
        self.api_ok("PUT", "/api/permissions/%%2F/%s" % other,
                    {"configure": "", "write": "", "read": ""})
        # Topic permissions do not count.
        names = [u["name"] for u in self.api.get("/api/users/without-permissions")]
        self.assertIn(bare, names)
        self.assertNotIn(other, names)
        self.assertNotIn("guest", names)
        bulk = "/api/users/bulk-delete"
        self.assertEqual(self.api.call("POST", bulk, body={})[:2],
                         (400, {"error": "bad_request", "reason": "[{key_missing,users}]"}))
        # It stops at the first name that is no user; those before it are gone.
        missing = unique("nosuch")
        self.assertEqual(self.api.call("POST", bulk, body={"users": [bare, missing, other]})[:2],
                         (400, {"error": "bad_request", "reason": ["no_such_user", missing]}))
        names = [u["name"] for u in self.api.get("/api/users")]
        self.assertNotIn(bare, names)
        self.assertIn(other, names)
        self.assertEqual(self.api.call("POST", bulk, body={"users": [other]})[0], 204)
        self.assertNotIn(other, [u["name"] for u in self.api.get("/api/users")])

    def test_reserved_names_and_missing_exchange(self):
        refused = (401, {"error": "not_authorised", "reason": "Access refused."})
        self.assertEqual(self.api.call("PUT", "/api/queues/%2F/amq.compat", body={})[:2], refused)
        self.assertEqual(self.api.call("PUT", "/api/exchanges/%2F/amq.compat",
                                       body={"type": "direct"})[:2], refused)
        self.assertEqual(self.api.call("DELETE", "/api/exchanges/%2F/amq.direct")[:2], refused)
        missing = unique("nosuch")
        self.assertEqual(self.api.call(
            "POST", "/api/exchanges/%%2F/%s/publish" % missing,
            body={"routing_key": "k", "payload": "p", "payload_encoding": "string",
                  "properties": {}})[:2],
            (400, {"error": "bad_request",
                   "reason": "404 NOT_FOUND - no exchange '%s' in vhost '/'" % missing}))

    def test_parameters_and_policies(self):
        # Vhost limits and operator policies are the runtime parameters there are; rabbitmqadmin
        # lists them, and the policies, as it does on RabbitMQ.
        v = self.make_vhost()
        self.api_ok("PUT", "/api/vhost-limits/%s/max-connections" % quote(v), {"value": 10})
        want = [{"value": {"max-connections": 10}, "vhost": v, "component": "vhost-limits",
                 "name": "limits"}]
        mine = lambda ps: [p for p in ps if p.get("vhost") == v]
        self.assertEqual(mine(self.api.get("/api/parameters")), want)
        self.assertEqual(mine(self.api.get("/api/parameters/vhost-limits")), want)
        self.assertEqual(self.api.get("/api/parameters/vhost-limits/" + quote(v)), want)
        for path in ("/api/policies/", "/api/operator-policies/"):
            self.assertEqual(self.api.get(path + quote(v)), [], path)
        self.assertEqual(self.api.call("GET", "/api/policies/" + unique("nov"))[:2],
                         (404, {"error": "Object Not Found", "reason": "Not Found"}))
        policy, operator = unique("admin-policy"), unique("admin-operator-policy")
        self.api_ok("PUT", "/api/policies/%s/%s" % (quote(v), quote(policy)),
                    {"pattern": "^never-", "definition": {"max-length": 7}})
        self.api_ok("PUT", "/api/operator-policies/%s/%s" % (quote(v), quote(operator)),
                    {"pattern": "^never-", "definition": {"message-ttl": 9}})
        self.assertEqual(mine(self.api.get("/api/parameters/operator_policy")),
                         [{"value": {"pattern": "^never-", "definition": {"message-ttl": 9},
                                     "priority": 0, "apply-to": "all"},
                           "vhost": v, "component": "operator_policy", "name": operator}])
        for what, name in (("policies", policy), ("parameters", None),
                           ("operator_policies", operator)):
            r = subprocess.run([PYTHON, RABBITMQADMIN, "-H", self.http_host, "-P",
                                str(self.http_port), "-u", "guest", "-p", "guest", "-V", v,
                                "list", what],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=ADMIN_TIMEOUT_S)
            self.assertEqual(r.returncode, 0, (what, r.stdout, r.stderr))
            if name:
                self.assertIn(name, r.stdout, what)

    def test_overview_exchange_types_and_totals(self):
        q = unique("totals")
        self.addCleanup(self.api.call, "DELETE", "/api/queues/%2F/" + quote(q))
        self.api_ok("PUT", "/api/queues/%2F/" + quote(q), {})
        # (RabbitMQ's totals are empty until its statistics have seen a queue.)
        o = self.wait_get("/api/overview",
                          lambda o: "messages_ready_details" in o.get("queue_totals", {}))
        types = {t["name"]: t for t in o["exchange_types"]}
        self.assertLessEqual({"direct", "fanout", "headers", "topic"}, set(types))
        self.assertEqual(types["topic"], {"name": "topic", "enabled": True,
                                          "description": "AMQP topic exchange, as per the AMQP "
                                                         "specification"})
        totals = o["queue_totals"]
        self.assertTrue(is_rate(totals["messages_ready_details"]), totals)
        self.assertTrue(is_rate(totals["messages_unacknowledged_details"]), totals)


if __name__ == "__main__":
    unittest.main()
