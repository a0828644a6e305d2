"""Policies and operator policies: the management API's /api/policies and
/api/operator-policies (create, replace, read, list order, delete, the validation errors and
their texts), what a policy does to the queues and exchanges its pattern matches (message-ttl,
max-length with each overflow mode, dead-letter-exchange and -routing-key, expires,
alternate-exchange, a quorum queue's delivery-limit), how a policy combines with queue and
exchange arguments, with other policies (the highest priority one alone applies) and with
operator policies (merged, the smaller number winning), the policy fields of a queue and an
exchange in the API, and policies in the definitions export and import.

RabbitMQ 3.10 is the reference: every expectation here holds against RabbitMQ 3.10.8 (run with
WARREN_TEST_BROKER=host:port and WARREN_TEST_HTTP=host:port for its management plugin). Each
test class works in a virtual host of its own, made through the API and deleted at the end, so
that no policy of another test (or of anyone else on a shared broker) matches its queues; the
policies a test makes are deleted when it ends, and their patterns match only names it made.

Who may set them (a policymaker in the vhosts it may use, operator policies administrators
only) is checked the same way. warrenctl's policy commands and policies across a restart are
Warren's own and run only against a warrend the test starts.

The TTLs and expiries are short (300 ms), so the waits are too: a wait_until poll where
something can be polled, a fixed wait only where the check is that something has not happened.
The API's queue fields come from the queue's statistics, which RabbitMQ refreshes every 5 s:
those are polled for up to 15 s.
"""

import os
import unittest

import pika
import pika.exceptions as pex

from harness import (BrokerTestCase, RestartCase, close_quietly, get_all, get_one,
                     message_count, unique, wait_until)
from mgmt_support import PASSWORD, Api, quote, rows, warrenctl

EXTERNAL = os.environ.get("WARREN_TEST_BROKER")

KINDS = ("policies", "operator-policies")
NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}
STATS_TIMEOUT_S = 15
TTL_MS = 300
NEVER = "^pol-never-matches-"   # the pattern of policies that must match nothing


def unescaped(reason):
    """The reason text with &lt; and &gt; turned back into < and >.

    RabbitMQ's /api/policies answers its validation errors HTML-escaped (an Erlang binary
    <<"x">> shows as &lt;&lt;"x"&gt;&gt;) while /api/operator-policies does not; Warren answers
    the plain text on both. Comparing the unescaped text accepts either."""
    if not isinstance(reason, str):
        return reason
    return reason.replace("&lt;", "<").replace("&gt;", ">")


class Prefix(str):
    """An expected reason of which only the start is compared."""


def anchored(prefix):
    """A pattern matching the names that start with prefix (a unique() name: letters, '-' and
    one '.', which is the only character that needs escaping)."""
    return "^" + prefix.replace(".", "\\.")


def text(value):
    return value.decode() if isinstance(value, bytes) else value


class PolicyCase(BrokerTestCase):
    """A broker, its API, and a virtual host of this class's own."""

    api = None
    vhost = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.api = Api(*cls.broker.wait_listener("http"))
            vhost = unique("pol-vhost")
            status, _, raw, _ = cls.api.call("PUT", "/api/vhosts/" + quote(vhost), body={})
            if status not in (201, 204):
                raise AssertionError("PUT /api/vhosts/%s: %s %r" % (vhost, status, raw))
            cls.vhost = vhost
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        vhost, cls.vhost = cls.vhost, None
        if vhost is not None and cls.api is not None and cls.broker is not None:
            cls.api.call("DELETE", "/api/vhosts/" + quote(vhost))
        super().tearDownClass()

    # -- the API ---------------------------------------------------------------
    def path(self, kind, name=None, vhost=None):
        p = "/api/%s/%s" % (kind, quote(self.vhost if vhost is None else vhost))
        return p if name is None else p + "/" + quote(name)

    def api_ok(self, method, path, body=None, want=(200, 201, 204)):
        status, parsed, raw, _ = self.api.call(method, path, body=body)
        self.assertIn(status, want, "%s %s: %s %r" % (method, path, status, raw))
        return parsed

    def set_policy(self, name, pattern, definition, kind="policies", vhost=None,
                   priority=None, apply_to=None, want=(201,)):
        """PUTs a policy (deleted when the test ends) and returns its name."""
        body = {"pattern": pattern, "definition": definition}
        if priority is not None:
            body["priority"] = priority
        if apply_to is not None:
            body["apply-to"] = apply_to
        path = self.path(kind, name, vhost)
        self.api_ok("PUT", path, body, want=want)
        self.addCleanup(self.api.call, "DELETE", path)
        return name

    def make_vhost(self):
        name = unique("pol-vhost")
        self.api_ok("PUT", "/api/vhosts/" + quote(name), {}, want=(201, 204))
        self.addCleanup(self.api.call, "DELETE", "/api/vhosts/" + quote(name))
        return name

    def wait_api(self, path, predicate, timeout=STATS_TIMEOUT_S):
        """GETs path until predicate(body) holds; the body, or a failure showing the last."""
        last = {}

        def check():
            status, body, _, _ = self.api.call("GET", path)
            last["v"] = (status, body)
            return status == 200 and predicate(body)
        self.assertTrue(wait_until(check, timeout, interval=0.25),
                        "GET %s: %r" % (path, last.get("v")))
        return last["v"][1]

    # -- AMQP ------------------------------------------------------------------
    def vconnect(self):
        return self.connect(virtual_host=self.vhost)

    def publisher(self):
        """(connection, channel) in this class's vhost, the channel in confirm mode."""
        conn = self.vconnect()
        ch = conn.channel()
        ch.confirm_delivery()
        return conn, ch

    def declare(self, ch, name, arguments=None, exclusive=True, **kw):
        ch.queue_declare(queue=name, exclusive=exclusive, arguments=arguments, **kw)
        return name

    def shared_queue(self, ch, name, arguments=None, **kw):
        """A non-exclusive queue, deleted (if still there) when the test ends."""
        self.declare(ch, name, arguments, exclusive=False, **kw)
        self.addCleanup(self.delete_quietly, name)
        return name

    def delete_quietly(self, name):
        super().delete_quietly(name, vhost=self.vhost)

    def publish(self, ch, queue, bodies):
        for body in bodies:
            ch.basic_publish("", queue, body)

    def target(self, ch, prefix):
        """(exchange, queue): a fresh direct exchange with a fresh queue bound by key "dlk"
        and by the queue's own name. Their names start with `prefix`, which no policy of the
        test matches."""
        ex = unique(prefix + "-x")
        ch.exchange_declare(exchange=ex, exchange_type="direct", auto_delete=True)
        q = self.declare(ch, unique(prefix + "-q"))
        ch.queue_bind(queue=q, exchange=ex, routing_key="dlk")
        return ex, q


class PolicyApiTest(PolicyCase):
    """The HTTP API of policies and operator policies."""

    def test_create_replace_get_and_delete(self):
        for kind in KINDS:
            with self.subTest(kind=kind):
                name = unique("pol-api")
                path = self.path(kind, name, vhost="/")
                pattern = anchored(name) + "$"
                self.addCleanup(self.api.call, "DELETE", path)
                status, _, raw, _ = self.api.call(
                    "PUT", path, body={"pattern": pattern, "definition": {"max-length": 10}})
                self.assertEqual(status, 201, raw)
                # Defaults: priority 0, apply-to "all".
                self.assertEqual(self.api.get(path), {
                    "vhost": "/", "name": name, "pattern": pattern, "apply-to": "all",
                    "definition": {"max-length": 10}, "priority": 0})

                status, _, raw, _ = self.api.call("PUT", path, body={
                    "pattern": pattern, "definition": {"max-length": 20, "message-ttl": 1000},
                    "priority": 3, "apply-to": "queues"})
                self.assertEqual(status, 204, raw)
                self.assertEqual(self.api.get(path), {
                    "vhost": "/", "name": name, "pattern": pattern, "apply-to": "queues",
                    "definition": {"max-length": 20, "message-ttl": 1000}, "priority": 3})

                # A replacement is whole: what it leaves out goes back to the default; a
                # "vhost" or "name" in the body is ignored (the path names the policy).
                status, _, raw, _ = self.api.call("PUT", path, body={
                    "pattern": pattern, "definition": {"expires": 60000},
                    "vhost": "other", "name": "other"})
                self.assertEqual(status, 204, raw)
                self.assertEqual(self.api.get(path), {
                    "vhost": "/", "name": name, "pattern": pattern, "apply-to": "all",
                    "definition": {"expires": 60000}, "priority": 0})

                status, _, raw, _ = self.api.call("DELETE", path)
                self.assertEqual(status, 204, raw)
                status, parsed, raw, _ = self.api.call("GET", path)
                self.assertEqual((status, parsed), (404, NOT_FOUND), raw)
                status, parsed, raw, _ = self.api.call("DELETE", path)
                self.assertEqual((status, parsed), (404, NOT_FOUND), raw)

    def test_lists_are_sorted_by_priority_then_vhost_then_name(self):
        # Lowest priority first; a tie is ordered by vhost, then by name (byte order: "B"
        # before "a"). A non-integer priority is kept as given.
        v1, v2 = self.make_vhost(), self.make_vhost()
        if v1 > v2:
            v1, v2 = v2, v1
        made = [(v2, "a", 0), (v2, "c", 5), (v1, "b", 0), (v1, "e", 1.5), (v1, "B", 0),
                (v1, "d", -2)]
        want_v1 = [("d", -2), ("B", 0), ("b", 0), ("e", 1.5)]
        want_v2 = [("a", 0), ("c", 5)]
        want_all = [(v1, "d", -2), (v1, "B", 0), (v1, "b", 0), (v2, "a", 0), (v1, "e", 1.5),
                    (v2, "c", 5)]
        for kind in KINDS:
            with self.subTest(kind=kind):
                other = [k for k in KINDS if k != kind][0]
                for vhost, name, priority in made:
                    self.set_policy(name, NEVER, {"max-length": 1}, kind=kind,
                                    vhost=vhost, priority=priority)
                listed = self.api.get(self.path(kind, vhost=v1))
                self.assertEqual([(p["name"], p["priority"]) for p in listed], want_v1)
                self.assertEqual(listed[0], {
                    "vhost": v1, "name": "d", "pattern": NEVER,
                    "apply-to": "all", "definition": {"max-length": 1}, "priority": -2})
                listed = self.api.get(self.path(kind, vhost=v2))
                self.assertEqual([(p["name"], p["priority"]) for p in listed], want_v2)
                listed = self.api.get("/api/" + kind)
                self.assertEqual([(p["vhost"], p["name"], p["priority"]) for p in listed
                                  if p["vhost"] in (v1, v2)], want_all)
                # The two kinds are separate lists.
                for vhost, name, _ in made:
                    self.api_ok("DELETE", self.path(kind, name, vhost))
                self.assertEqual(self.api.get(self.path(kind, vhost=v1)), [])
                self.assertEqual(self.api.get(self.path(other, vhost=v1)), [])

    def test_a_vhost_that_does_not_exist(self):
        vhost = unique("pol-no-such-vhost")
        for kind in KINDS:
            with self.subTest(kind=kind):
                for method, path in (("GET", self.path(kind, vhost=vhost)),
                                     ("GET", self.path(kind, "p", vhost)),
                                     ("DELETE", self.path(kind, "p", vhost))):
                    status, parsed, raw, _ = self.api.call(method, path)
                    self.assertEqual((status, parsed), (404, NOT_FOUND),
                                     "%s %s: %r" % (method, path, raw))
                status, parsed, raw, _ = self.api.call(
                    "PUT", self.path(kind, "p", vhost),
                    body={"pattern": "^x", "definition": {"max-length": 1}})
                self.assertEqual((status, parsed),
                                 (404, {"error": "not_found", "reason": "vhost_not_found"}), raw)

    # (body, reason on /api/policies, reason on /api/operator-policies or None if the same)
    VALIDATION = [
        ({"pattern": "^x", "definition": {"message-ttl": -1}},
         "Validation failed\n\n-1 is not a valid message TTL\n", None),
        ({"pattern": "^x", "definition": {"message-ttl": 1.5}},
         "Validation failed\n\n1.5 is not a valid message TTL\n", None),
        ({"pattern": "^x", "definition": {"message-ttl": "x"}},
         'Validation failed\n\n<<"x">> is not a valid message TTL\n', None),
        # The unknown keys are listed sorted by key.
        ({"pattern": "^x", "definition": {"foo": 1, "bar": 2}},
         'Validation failed\n\n[{<<"bar">>,2},{<<"foo">>,1}] are not recognised policy '
         'settings\n', None),
        ({"pattern": "^x", "definition": {}},
         "Validation failed\n\nno policy provided\n", None),
        # What follows "invalid: " is the regular expression library's own account of the
        # fault (RabbitMQ's PCRE says {"missing )",1}): only the words before it are compared.
        ({"pattern": "(", "definition": {"message-ttl": 1}},
         Prefix('Validation failed\n\npattern should be regular expression but is invalid: '),
         None),
        ({"pattern": 5, "definition": {"message-ttl": 1}},
         "Validation failed\n\npattern should be a binary but was 5\n", None),
        ({"pattern": "^x", "definition": {"expires": 0}},
         "Validation failed\n\n0 is not a valid queue expiry\n", None),
        ({"pattern": "^x", "definition": {"max-length": "5"}},
         'Validation failed\n\n<<"5">> is not a valid maximum length\n', None),
        ({"pattern": "^x", "definition": {"max-length": -1}},
         "Validation failed\n\n-1 is not a valid maximum length\n", None),
        ({"pattern": "^x", "definition": {"max-length-bytes": -1}},
         "Validation failed\n\n-1 is not a valid maximum length in bytes\n", None),
        ({"pattern": "^x", "definition": {"delivery-limit": -1}},
         "Validation failed\n\n-1 is not a valid delivery limit\n", None),
        ({"pattern": "^x", "definition": {"overflow": "bogus"}},
         'Validation failed\n\n<<"bogus">> is not a valid overflow value\n',
         'Validation failed\n\n[{<<"overflow">>,<<"bogus">>}] are not recognised policy '
         'settings\n'),
        ({"pattern": "^x", "definition": {"message-ttl": 1}, "apply-to": "bogus"},
         "Validation failed\n\napply-to 'bogus' unrecognised; should be 'queues', "
         "'exchanges' or 'all'\n", None),
        ({"pattern": "^x", "definition": {"message-ttl": 1}, "priority": "high"},
         'Validation failed\n\npriority should be a number, actually was <<"high">>\n', None),
        ({"pattern": "^x", "definition": {"message-ttl": 1}, "priority": "5"},
         'Validation failed\n\npriority should be a number, actually was <<"5">>\n', None),
        ({"definition": {"message-ttl": 1}}, "[{key_missing,pattern}]", None),
        ({"pattern": "^x"}, "[{key_missing,definition}]", None),
        ({"pattern": "^x", "definition": {"dead-letter-exchange": 5}},
         "Validation failed\n\n5 is not a valid dead letter exchange name\n",
         'Validation failed\n\n[{<<"dead-letter-exchange">>,5}] are not recognised policy '
         'settings\n'),
        ({"pattern": "^x", "definition": {"dead-letter-routing-key": 5}},
         "Validation failed\n\n5 is not a valid dead letter routing key\n",
         'Validation failed\n\n[{<<"dead-letter-routing-key">>,5}] are not recognised '
         'policy settings\n'),
        ({"pattern": "^x", "definition": {"alternate-exchange": 5}},
         "Validation failed\n\n5 is not a valid alternate exchange name\n",
         'Validation failed\n\n[{<<"alternate-exchange">>,5}] are not recognised policy '
         'settings\n'),
    ]

    def test_validation_errors(self):
        for kind in KINDS:
            for body, reason, operator_reason in self.VALIDATION:
                want = operator_reason if (kind == "operator-policies"
                                           and operator_reason) else reason
                with self.subTest(kind=kind, body=body):
                    name = unique("pol-invalid")
                    path = self.path(kind, name)
                    self.addCleanup(self.api.call, "DELETE", path)
                    status, parsed, raw, _ = self.api.call("PUT", path, body=body)
                    self.assertEqual(status, 400, raw)
                    self.assertEqual(parsed.get("error"), "bad_request", raw)
                    got = unescaped(parsed.get("reason"))
                    if isinstance(want, Prefix):
                        self.assertTrue(got.startswith(want) and got.endswith("\n")
                                        and len(got) > len(want) + 1, raw)
                    else:
                        self.assertEqual(got, want, raw)
                    status, _, raw, _ = self.api.call("GET", path)
                    self.assertEqual(status, 404, raw)

    def test_keys_only_user_policies_take_are_refused_in_operator_policies(self):
        # Operator policies take expires, message-ttl, max-length, max-length-bytes and
        # delivery-limit (and a few HA/queue-mode keys), not the rest.
        for key, value in (("overflow", "reject-publish"), ("dead-letter-exchange", "dlx"),
                           ("dead-letter-routing-key", "k"), ("alternate-exchange", "ae")):
            with self.subTest(key=key):
                name = unique("pol-op")
                path = self.path("operator-policies", name)
                self.addCleanup(self.api.call, "DELETE", path)
                status, parsed, raw, _ = self.api.call(
                    "PUT", path, body={"pattern": NEVER, "definition": {key: value}})
                self.assertEqual(status, 400, raw)
                self.assertEqual(parsed["reason"],
                                 'Validation failed\n\n[{<<"%s">>,<<"%s">>}] are not '
                                 'recognised policy settings\n' % (key, value), raw)
                # The same definition is a valid user policy.
                self.set_policy(name, NEVER, {key: value})
        name = unique("pol-op")
        self.set_policy(name, NEVER, {"max-length": 1, "max-length-bytes": 5, "expires": 1000,
                                     "message-ttl": 5, "delivery-limit": 3},
                        kind="operator-policies")


class QueuePolicyTest(PolicyCase):
    """What a policy does to the queues it matches."""

    def test_message_ttl_applies_to_queues_declared_before_and_after(self):
        conn, ch = self.publisher()
        prefix = unique("pol-ttl")
        before = self.declare(ch, prefix + "-before")
        self.set_policy(unique("ttl"), anchored(prefix), {"message-ttl": TTL_MS})
        after = self.declare(ch, prefix + "-after")
        other = self.declare(ch, unique("pol-other"))   # not matched
        for q in (before, after, other):
            ch.basic_publish("", q, b"m")
        self.assertEqual(self.wait_count(ch, before, 0), 0)
        self.assertEqual(self.wait_count(ch, after, 0), 0)
        self.assertIsNone(ch.basic_get(before, auto_ack=True)[0])
        self.assertIsNone(ch.basic_get(after, auto_ack=True)[0])
        self.assertEqual(get_all(ch, other), [b"m"])

    def test_max_length_drops_the_oldest(self):
        _, ch = self.publisher()
        prefix = unique("pol-maxlen")
        self.set_policy(unique("maxlen"), anchored(prefix), {"max-length": 2})
        q = self.declare(ch, prefix)
        self.publish(ch, q, [b"m%d" % i for i in range(5)])
        self.assertEqual(self.count(ch, q), 2)
        self.assertEqual(get_all(ch, q), [b"m3", b"m4"])

    def test_overflow_reject_publish_nacks_the_extra_message(self):
        _, ch = self.publisher()
        prefix = unique("pol-reject")
        self.set_policy(unique("reject"), anchored(prefix),
                        {"max-length": 2, "overflow": "reject-publish"})
        q = self.declare(ch, prefix)
        self.publish(ch, q, [b"p0", b"p1"])
        with self.assertRaises(pex.NackError):
            ch.basic_publish("", q, b"p2")
        self.assertEqual(self.count(ch, q), 2)
        self.assertEqual(get_all(ch, q), [b"p0", b"p1"])

    def test_dead_letter_exchange_and_routing_key(self):
        conn, ch = self.publisher()
        dlx, dlq = self.target(ch, "pol-dl")
        prefix = unique("pol-src")
        self.set_policy(unique("dlx"), anchored(prefix),
                        {"dead-letter-exchange": dlx, "dead-letter-routing-key": "dlk"})
        q = self.declare(ch, prefix)
        ch.basic_publish("", q, b"refused")
        method, _, _ = ch.basic_get(q)
        self.assertIsNotNone(method)
        ch.basic_reject(method.delivery_tag, requeue=False)
        got = get_one(conn, ch, dlq)
        self.assertIsNotNone(got, "nothing was dead-lettered")
        method, props, body = got
        self.assertEqual((body, method.exchange, method.routing_key), (b"refused", dlx, "dlk"))
        death = (props.headers or {}).get("x-death")
        self.assertIsInstance(death, list, props.headers)
        self.assertEqual((text(death[0]["reason"]), text(death[0]["queue"])),
                         ("rejected", q), death)
        self.assertEqual(self.count(ch, q), 0)

    def test_expires_deletes_unused_queues(self):
        conn = self.vconnect()
        ch = conn.channel()
        prefix = unique("pol-expires")
        before = self.shared_queue(ch, prefix + "-before")
        self.set_policy(unique("expires"), anchored(prefix), {"expires": TTL_MS})
        after = self.shared_queue(ch, prefix + "-after")
        other = self.shared_queue(ch, unique("pol-other"))   # not matched
        # A look renews the lease, so each look waits past it first.
        gone = set()
        for _ in range(4):
            self.idle(conn, TTL_MS / 1000.0 + 0.25)
            gone |= {q for q in (before, after) if q not in gone and not self.exists(conn, q)}
            if gone == {before, after}:
                break
        self.assertEqual(gone, {before, after})
        self.assertTrue(self.exists(conn, other))

    def test_the_smaller_of_queue_argument_and_policy_max_length_applies(self):
        _, ch = self.publisher()
        prefix = unique("pol-prec")
        self.set_policy(unique("prec-a"), anchored(prefix) + "-a$", {"max-length": 2})
        self.set_policy(unique("prec-b"), anchored(prefix) + "-b$", {"max-length": 5})
        a = self.declare(ch, prefix + "-a", {"x-max-length": 5})
        b = self.declare(ch, prefix + "-b", {"x-max-length": 2})
        for q in (a, b):
            with self.subTest(queue=q):
                self.publish(ch, q, [b"m%d" % i for i in range(6)])
                self.assertEqual(self.count(ch, q), 2)
                self.assertEqual(get_all(ch, q), [b"m4", b"m5"])

    def test_a_key_the_queue_cannot_take_leaves_the_others_in_force(self):
        # A dead-letter routing key without a dead-letter exchange is no argument a queue can
        # be declared with; from a policy it is ignored, and max-length still holds.
        _, ch = self.publisher()
        prefix = unique("pol-partial")
        self.set_policy(unique("partial"), anchored(prefix),
                        {"dead-letter-routing-key": "k", "max-length": 2})
        q = self.declare(ch, prefix)
        self.publish(ch, q, [b"m%d" % i for i in range(4)])
        self.assertEqual(get_all(ch, q), [b"m2", b"m3"])

    def test_queue_argument_dead_letter_exchange_wins_over_the_policy(self):
        conn, ch = self.publisher()
        dlx_arg, dlq_arg = self.target(ch, "pol-dl-arg")
        dlx_pol, dlq_pol = self.target(ch, "pol-dl-pol")
        prefix = unique("pol-src")
        self.set_policy(unique("dlx"), anchored(prefix),
                        {"dead-letter-exchange": dlx_pol, "dead-letter-routing-key": "dlk"})
        q = self.declare(ch, prefix, {"x-dead-letter-exchange": dlx_arg})
        ch.basic_publish("", q, b"refused")
        method, _, _ = ch.basic_get(q)
        ch.basic_reject(method.delivery_tag, requeue=False)
        # The queue's own x-dead-letter-exchange is used, with the policy's routing key (the
        # queue has no x-dead-letter-routing-key of its own).
        got = get_one(conn, ch, dlq_arg)
        self.assertIsNotNone(got, "nothing reached the queue argument's dead-letter exchange")
        self.assertEqual((got[2], got[0].exchange, got[0].routing_key),
                         (b"refused", dlx_arg, "dlk"))
        self.assertEqual(self.count(ch, dlq_pol), 0)

    def test_only_the_highest_priority_policy_applies(self):
        # Two policies match; the one with the higher priority applies whole and the other
        # not at all: keys are not merged between (user) policies.
        conn, ch = self.publisher()
        prefix = unique("pol-prio")
        self.set_policy(unique("prio-high"), anchored(prefix), {"max-length": 3}, priority=2)
        self.set_policy(unique("prio-low"), anchored(prefix),
                        {"max-length": 1, "message-ttl": TTL_MS}, priority=1)
        q = self.declare(ch, prefix)
        self.publish(ch, q, [b"m%d" % i for i in range(4)])
        self.assertEqual(self.count(ch, q), 3)
        self.idle(conn, 2 * TTL_MS / 1000.0)
        self.assertEqual(get_all(ch, q), [b"m1", b"m2", b"m3"])

    def test_apply_to(self):
        _, ch = self.publisher()
        prefix = unique("pol-apply")
        self.set_policy(unique("apply-ex"), anchored(prefix) + "-e$", {"max-length": 1},
                        apply_to="exchanges")
        self.set_policy(unique("apply-qu"), anchored(prefix) + "-q$", {"max-length": 1},
                        apply_to="queues")
        self.set_policy(unique("apply-all"), anchored(prefix) + "-a$", {"max-length": 1},
                        apply_to="all")
        for suffix, want in (("-e", 3), ("-q", 1), ("-a", 1)):
            with self.subTest(suffix=suffix):
                q = self.declare(ch, prefix + suffix)
                self.publish(ch, q, [b"m0", b"m1", b"m2"])
                self.assertEqual(self.count(ch, q), want)

    def test_the_pattern_is_a_regex_searched_in_the_name(self):
        # Unanchored: it may match anywhere in the name; "$" and a class work as regexes do.
        _, ch = self.publisher()
        tag = unique("pol-re")
        self.set_policy(unique("re"), tag.replace(".", "\\.") + "-[ab]$", {"max-length": 1})
        for name, want in (("x-" + tag + "-a", 1), (tag + "-b", 1), (tag + "-c", 2),
                           (tag + "-a-z", 2), (tag.replace(".", "-") + "-a", 2)):
            with self.subTest(queue=name):
                q = self.declare(ch, name)
                self.publish(ch, q, [b"m0", b"m1"])
                self.assertEqual(self.count(ch, q), want)

    def test_replacing_and_deleting_the_policy_changes_its_effect(self):
        _, ch = self.publisher()
        prefix = unique("pol-change")
        name = self.set_policy(unique("change"), anchored(prefix), {"max-length": 1})
        q = self.declare(ch, prefix)
        self.publish(ch, q, [b"m0", b"m1"])
        self.assertEqual(self.count(ch, q), 1)
        self.api_ok("PUT", self.path("policies", name),
                    {"pattern": anchored(prefix), "definition": {"max-length": 3}}, want=(204,))
        self.publish(ch, q, [b"m2", b"m3", b"m4"])
        self.assertEqual(self.count(ch, q), 3)
        self.api_ok("DELETE", self.path("policies", name), want=(204,))
        self.publish(ch, q, [b"m5", b"m6"])
        self.assertEqual(self.count(ch, q), 5)
        self.assertEqual(get_all(ch, q), [b"m2", b"m3", b"m4", b"m5", b"m6"])

    def test_operator_policy_is_merged_taking_the_smaller_number(self):
        conn, ch = self.publisher()
        prefix = unique("pol-oper")
        p = anchored(prefix)
        self.set_policy(unique("user-a"), p + "-a$", {"max-length": 5})
        self.set_policy(unique("oper-a"), p + "-a$", {"max-length": 2}, kind="operator-policies")
        self.set_policy(unique("user-b"), p + "-b$", {"max-length": 2})
        self.set_policy(unique("oper-b"), p + "-b$", {"max-length": 5}, kind="operator-policies")
        self.set_policy(unique("oper-c"), p + "-c$", {"max-length": 2}, kind="operator-policies")
        for suffix in ("-a", "-b", "-c"):
            with self.subTest(suffix=suffix):
                q = self.declare(ch, prefix + suffix)
                self.publish(ch, q, [b"m%d" % i for i in range(6)])
                self.assertEqual(self.count(ch, q), 2)
                self.assertEqual(get_all(ch, q), [b"m4", b"m5"])
        # Keys of both apply: the user policy's dead-letter exchange takes the oldest message
        # that the operator policy's max-length drops.
        dlx, dlq = self.target(ch, "pol-dl")
        self.set_policy(unique("user-d"), p + "-d$",
                        {"dead-letter-exchange": dlx, "dead-letter-routing-key": "dlk"})
        self.set_policy(unique("oper-d"), p + "-d$", {"max-length": 1},
                        kind="operator-policies")
        q = self.declare(ch, prefix + "-d")
        self.publish(ch, q, [b"m0", b"m1"])
        got = get_one(conn, ch, dlq)
        self.assertIsNotNone(got, "nothing was dead-lettered")
        death = (got[1].headers or {}).get("x-death")
        self.assertEqual((got[2], text(death[0]["reason"])), (b"m0", "maxlen"), death)
        self.assertEqual(get_all(ch, q), [b"m1"])


class PolicyFieldsTest(PolicyCase):
    """The policy fields of queues and exchanges in the management API."""

    def queue_path(self, name):
        return "/api/queues/%s/%s" % (quote(self.vhost), quote(name))

    @staticmethod
    def fields(info):
        return {k: info.get(k, "absent")
                for k in ("policy", "operator_policy", "effective_policy_definition")}

    def wait_fields(self, name, want):
        info = self.wait_api(self.queue_path(name), lambda i: self.fields(i) == want)
        self.assertEqual(self.fields(info), want)
        return info

    def test_queue_policy_fields(self):
        ch = self.vconnect().channel()
        prefix = unique("pol-fields")
        q = self.declare(ch, prefix, {"x-max-length": 7})
        # No policy: null names and an empty definition; queue arguments are not part of it.
        self.wait_fields(q, {"policy": None, "operator_policy": None,
                             "effective_policy_definition": {}})
        user = self.set_policy(unique("fields-user"), anchored(prefix),
                               {"max-length": 3, "message-ttl": 60000})
        oper = self.set_policy(unique("fields-oper"), anchored(prefix),
                               {"max-length": 10, "message-ttl": 30000, "expires": 600000},
                               kind="operator-policies")
        both = {"policy": user, "operator_policy": oper, "effective_policy_definition": {
            "max-length": 3, "message-ttl": 30000, "expires": 600000}}
        info = self.wait_fields(q, both)
        self.assertEqual(info["arguments"], {"x-max-length": 7})
        listed = [i for i in self.api.get("/api/queues/" + quote(self.vhost))
                  if i["name"] == q]
        self.assertEqual([self.fields(i) for i in listed], [both])

        self.api_ok("DELETE", self.path("policies", user), want=(204,))
        self.wait_fields(q, {"policy": None, "operator_policy": oper,
                             "effective_policy_definition": {
                                 "max-length": 10, "message-ttl": 30000, "expires": 600000}})
        self.api_ok("DELETE", self.path("operator-policies", oper), want=(204,))
        self.wait_fields(q, {"policy": None, "operator_policy": None,
                             "effective_policy_definition": {}})

    def test_exchange_policy_field(self):
        # An exchange shows "policy" only while one applies to it.
        ch = self.vconnect().channel()
        prefix = unique("pol-xfields")
        ex = prefix + "-x"
        ch.exchange_declare(exchange=ex, exchange_type="fanout", auto_delete=True)
        path = "/api/exchanges/%s/%s" % (quote(self.vhost), quote(ex))
        self.assertNotIn("policy", self.api.get(path))
        # A policy for queues only does not apply to it.
        self.set_policy(unique("xf-queues"), anchored(prefix), {"alternate-exchange": "nowhere"},
                        apply_to="queues", priority=5)
        name = self.set_policy(unique("xf-ex"), anchored(prefix),
                               {"alternate-exchange": "nowhere"}, apply_to="exchanges")
        self.wait_api(path, lambda i: i.get("policy") == name)
        self.api_ok("DELETE", self.path("policies", name), want=(204,))
        info = self.wait_api(path, lambda i: "policy" not in i)
        self.assertEqual(info["name"], ex)


class ExchangePolicyTest(PolicyCase):
    """alternate-exchange set by a policy."""

    def alternate(self, ch, prefix):
        """(exchange, queue): a fanout exchange with a queue bound to it."""
        ae = unique(prefix + "-ae")
        ch.exchange_declare(exchange=ae, exchange_type="fanout", auto_delete=True)
        q = self.declare(ch, unique(prefix + "-aeq"))
        ch.queue_bind(queue=q, exchange=ae)
        return ae, q

    def test_alternate_exchange_via_policy(self):
        conn, ch = self.publisher()
        ae, aeq = self.alternate(ch, "pol-alt")
        prefix = unique("pol-ex")
        before = prefix + "-before"
        ch.exchange_declare(exchange=before, exchange_type="direct", auto_delete=True)
        self.set_policy(unique("ae"), anchored(prefix), {"alternate-exchange": ae})
        after = prefix + "-after"
        ch.exchange_declare(exchange=after, exchange_type="direct", auto_delete=True)
        for ex in (before, after):
            with self.subTest(exchange=ex):
                ch.basic_publish(ex, "no-binding", b"from " + ex.encode())
                got = get_one(conn, ch, aeq)
                self.assertIsNotNone(got, "nothing reached the alternate exchange")
                self.assertEqual((got[2], got[0].exchange, got[0].routing_key),
                                 (b"from " + ex.encode(), ex, "no-binding"))

    def test_exchange_argument_wins_over_the_policy(self):
        conn, ch = self.publisher()
        ae_arg, aeq_arg = self.alternate(ch, "pol-alt-arg")
        ae_pol, aeq_pol = self.alternate(ch, "pol-alt-pol")
        prefix = unique("pol-ex")
        self.set_policy(unique("ae"), anchored(prefix), {"alternate-exchange": ae_pol})
        ch.exchange_declare(exchange=prefix, exchange_type="direct", auto_delete=True,
                            arguments={"alternate-exchange": ae_arg})
        ch.basic_publish(prefix, "no-binding", b"unroutable")
        got = get_one(conn, ch, aeq_arg)
        self.assertIsNotNone(got, "nothing reached the argument's alternate exchange")
        self.assertEqual(got[2], b"unroutable")
        self.assertEqual(self.count(ch, aeq_pol), 0)


class DefinitionsTest(PolicyCase):
    """Policies in the definitions export and import."""

    def test_export(self):
        prefix = unique("pol-defs")
        user = self.set_policy(unique("defs-user"), anchored(prefix), {"max-length": 4},
                               priority=3, apply_to="queues")
        oper = self.set_policy(unique("defs-oper"), anchored(prefix), {"max-length": 9},
                               kind="operator-policies")
        entry = {"vhost": self.vhost, "name": user, "pattern": anchored(prefix),
                 "apply-to": "queues", "definition": {"max-length": 4}, "priority": 3}
        # An operator policy is exported as a runtime parameter of component
        # "operator_policy", not among "policies".
        parameter = {"vhost": self.vhost, "component": "operator_policy", "name": oper,
                     "value": {"pattern": anchored(prefix), "definition": {"max-length": 9},
                               "priority": 0, "apply-to": "all"}}
        for path in ("/api/definitions", "/api/definitions/" + quote(self.vhost)):
            with self.subTest(path=path):
                defs = self.api.get(path)
                mine = [p for p in defs["policies"] if p.get("vhost") == self.vhost]
                # RabbitMQ 3.10.8 keeps "vhost" in each entry of a vhost's export too.
                self.assertEqual(mine, [entry])
                params = [p for p in defs["parameters"] if p.get("vhost") == self.vhost]
                self.assertEqual(params, [parameter])

    def test_import(self):
        prefix = unique("pol-import")
        one, two = unique("imp-one"), unique("imp-two")
        self.addCleanup(self.api.call, "DELETE", self.path("policies", one))
        self.addCleanup(self.api.call, "DELETE", self.path("policies", two))
        self.api_ok("POST", "/api/definitions", {"policies": [{
            "vhost": self.vhost, "name": one, "pattern": anchored(prefix) + "-one",
            "apply-to": "queues", "definition": {"max-length": 1}, "priority": 2}]},
            want=(204,))
        self.assertEqual(self.api.get(self.path("policies", one)), {
            "vhost": self.vhost, "name": one, "pattern": anchored(prefix) + "-one",
            "apply-to": "queues", "definition": {"max-length": 1}, "priority": 2})
        # A vhost's import: entries without "vhost"; apply-to and priority default.
        self.api_ok("POST", "/api/definitions/" + quote(self.vhost), {"policies": [{
            "name": two, "pattern": anchored(prefix) + "-two",
            "definition": {"max-length": 2}}]}, want=(204,))
        self.assertEqual(self.api.get(self.path("policies", two)), {
            "vhost": self.vhost, "name": two, "pattern": anchored(prefix) + "-two",
            "apply-to": "all", "definition": {"max-length": 2}, "priority": 0})
        # An invalid one is refused, its vhost/name appended to the reason.
        bad = unique("imp-bad")
        self.addCleanup(self.api.call, "DELETE", self.path("policies", bad))
        status, parsed, raw, _ = self.api.call("POST", "/api/definitions", body={"policies": [{
            "vhost": self.vhost, "name": bad, "pattern": "^x", "apply-to": "all",
            "definition": {"max-length": -4}, "priority": 0}]})
        self.assertEqual(status, 400, raw)
        self.assertEqual(unescaped(parsed["reason"]),
                         "Validation failed\n\n-4 is not a valid maximum length\n (%s/%s)"
                         % (self.vhost, bad))
        self.assertEqual(self.api.call("GET", self.path("policies", bad))[0], 404)
        # The imported policies are in force.
        _, ch = self.publisher()
        for suffix, limit in (("-one", 1), ("-two", 2)):
            q = self.declare(ch, prefix + suffix)
            self.publish(ch, q, [b"m0", b"m1", b"m2"])
            self.assertEqual(self.count(ch, q), limit)


class QuorumDeliveryLimitTest(PolicyCase):
    """delivery-limit set by a policy on a quorum queue, and its overflow."""

    def quorum_queue(self, ch, name):
        return self.shared_queue(ch, name, {"x-queue-type": "quorum"}, durable=True)

    def nack_until_gone(self, conn, ch, q, most=10):
        """Takes the message and nacks it with requeue until it stops coming back; the number
        of deliveries."""
        deliveries = 0
        for _ in range(most):
            got = get_one(conn, ch, q, timeout=2, auto_ack=False)
            if got is None:
                break
            deliveries += 1
            ch.basic_nack(got[0].delivery_tag, requeue=True)
        return deliveries

    def test_message_is_dropped_after_the_limit(self):
        # delivery-limit 2: delivered once, then redelivered twice; the third nack drops it.
        conn, ch = self.publisher()
        prefix = unique("pol-dlimit")
        self.set_policy(unique("dlimit"), anchored(prefix), {"delivery-limit": 2})
        q = self.quorum_queue(ch, prefix)
        ch.basic_publish("", q, b"poison")
        self.assertEqual(self.nack_until_gone(conn, ch, q), 3)
        self.assertEqual(self.wait_count(ch, q, 0), 0)

    def test_message_over_the_limit_is_dead_lettered(self):
        conn, ch = self.publisher()
        dlx, dlq = self.target(ch, "pol-dl")
        prefix = unique("pol-dlimit")
        self.set_policy(unique("dlimit"), anchored(prefix),
                        {"delivery-limit": 1, "dead-letter-exchange": dlx,
                         "dead-letter-routing-key": "dlk"})
        q = self.quorum_queue(ch, prefix)
        ch.basic_publish("", q, b"poison")
        self.assertEqual(self.nack_until_gone(conn, ch, q), 2)
        got = get_one(conn, ch, dlq)
        self.assertIsNotNone(got, "nothing was dead-lettered")
        _, props, body = got
        self.assertEqual(body, b"poison")
        death = (props.headers or {}).get("x-death")
        self.assertIsInstance(death, list, props.headers)
        self.assertEqual((text(death[0]["reason"]), text(death[0]["queue"])),
                         ("delivery_limit", q), death)


    def test_overflow_reject_publish_dlx_from_a_policy_is_drop_head_for_a_quorum_queue(self):
        # RabbitMQ 3.10 logs "Invalid overflow strategy" and keeps a quorum queue's default.
        conn, ch = self.publisher()
        dlx, dlq = self.target(ch, "pol-qdl")
        prefix = unique("pol-qover")
        self.set_policy(unique("qover"), anchored(prefix),
                        {"max-length": 1, "overflow": "reject-publish-dlx",
                         "dead-letter-exchange": dlx, "dead-letter-routing-key": "dlk"})
        q = self.quorum_queue(ch, prefix)
        self.publish(ch, q, [b"q0", b"q1"])  # both confirmed
        self.assertEqual(self.wait_count(ch, q, 1), 1)
        self.assertEqual(get_all(ch, q), [b"q1"])
        got = get_one(conn, ch, dlq)
        self.assertIsNotNone(got, "the dropped head was not dead-lettered")
        self.assertEqual(got[2], b"q0")


    def test_the_policy_overflow_wins_over_a_quorum_queue_argument(self):
        # rabbit_quorum_queue takes the policy's overflow over x-overflow (a classic queue keeps
        # its argument): here drop-head over reject-publish, and the reverse.
        _, ch = self.publisher()
        prefix = unique("pol-qprec")
        self.set_policy(unique("qprec"), anchored(prefix + "-drop"),
                        {"max-length": 1, "overflow": "drop-head"})
        self.set_policy(unique("qprec"), anchored(prefix + "-reject"),
                        {"max-length": 1, "overflow": "reject-publish"})
        drop = self.shared_queue(ch, prefix + "-drop",
                                 {"x-queue-type": "quorum", "x-overflow": "reject-publish"},
                                 durable=True)
        self.publish(ch, drop, [b"d0", b"d1"])  # both confirmed
        self.assertEqual(self.wait_count(ch, drop, 1), 1)
        self.assertEqual(get_all(ch, drop), [b"d1"])
        reject = self.shared_queue(ch, prefix + "-reject",
                                   {"x-queue-type": "quorum", "x-overflow": "drop-head"},
                                   durable=True)
        # (A quorum queue takes the publish that goes over the limit: test_quorum_queues.)
        self.publish(ch, reject, [b"r0", b"r1"])
        with self.assertRaises(pex.NackError):
            ch.basic_publish("", reject, b"r2")
        self.assertEqual(get_all(ch, reject), [b"r0", b"r1"])
        classic = self.shared_queue(ch, prefix + "-drop-classic",
                                    {"x-overflow": "reject-publish"})
        self.publish(ch, classic, [b"c0"])
        with self.assertRaises(pex.NackError):
            ch.basic_publish("", classic, b"c1")
        self.assertEqual(get_all(ch, classic), [b"c0"])


class StreamPolicyTest(PolicyCase):
    """A stream takes its retention from a policy: max-length-bytes, the smaller of it and the
    stream's own argument."""

    def first_offset(self, q):
        """The offset of the first message a consumer from "first" gets."""
        conn = self.vconnect()
        ch = conn.channel()
        ch.basic_qos(prefetch_count=10)
        got = []
        ch.basic_consume(q, lambda c, m, p, b: got.append(p.headers["x-stream-offset"]),
                         arguments={"x-stream-offset": "first"})
        self.assertTrue(wait_until(lambda: conn.process_data_events(time_limit=0.05) or got,
                                   timeout=10), "nothing delivered from " + q)
        close_quietly(conn)
        return got[0]

    def test_max_length_bytes_from_a_policy(self):
        _, ch = self.publisher()
        prefix = unique("pol-stream")
        q = self.shared_queue(ch, prefix, {"x-queue-type": "stream",
                                           "x-stream-max-segment-size-bytes": 500,
                                           "x-max-length-bytes": 100000}, durable=True)
        body = b"r" * 100
        self.publish(ch, q, [body] * 20)
        self.assertEqual(self.first_offset(q), 0)   # 2,000 bytes: nothing dropped
        policy = self.set_policy(unique("retain"), anchored(prefix), {"max-length-bytes": 1000})
        self.publish(ch, q, [body] * 80)   # segments of 5 messages roll, old ones go
        first = self.first_offset(q)
        self.assertGreaterEqual(first, 75)   # 1,000 bytes (10 messages) beyond the active one
        # Cleared: the stream's own limit holds again, and nothing more goes.
        self.api_ok("DELETE", self.path("policies", policy), want=(204,))
        self.publish(ch, q, [body] * 40)
        self.assertEqual(self.first_offset(q), first)


class PolicyAccessTest(PolicyCase):
    """Who may set policies: RabbitMQ's policymaker tag, in the vhosts the user may use."""

    def make_user(self, tags, vhost):
        name = unique("pol-user")
        self.api_ok("PUT", "/api/users/" + quote(name), {"password": PASSWORD, "tags": tags})
        self.addCleanup(self.api.call, "DELETE", "/api/users/" + quote(name))
        if vhost is not None:
            self.api_ok("PUT", "/api/permissions/%s/%s" % (quote(vhost), quote(name)),
                        {"configure": ".*", "write": ".*", "read": ".*"})
        return name

    def put(self, user, kind, vhost):
        name = unique("pol-access")
        path = self.path(kind, name, vhost)
        self.addCleanup(self.api.call, "DELETE", path)
        return self.api.call("PUT", path, body={"pattern": NEVER, "definition": {"expires": 9}},
                             user=user, password=PASSWORD)[:2]

    def get(self, user, path):
        return self.api.call("GET", path, user=user, password=PASSWORD)[:2]

    REFUSED = {"error": "not_authorised", "reason": "User not authorised to access object"}
    NOT_ADMIN = {"error": "not_authorised", "reason": "Not administrator user"}

    def test_policymaker_sets_policies_in_its_vhosts_only(self):
        maker = self.make_user("policymaker", self.vhost)
        other = self.make_vhost()
        self.assertEqual(self.put(maker, "policies", self.vhost)[0], 201)
        self.assertEqual(self.put(maker, "policies", other), (401, self.REFUSED))
        self.assertEqual(self.put(maker, "policies", unique("pol-no-vhost")),
                         (404, {"error": "not_found", "reason": "vhost_not_found"}))
        self.assertEqual(self.put(maker, "operator-policies", self.vhost), (401, self.NOT_ADMIN))
        status, listed = self.get(maker, self.path("policies"))
        self.assertEqual(status, 200, listed)
        self.assertEqual(len(listed), 1, listed)
        self.assertEqual(self.get(maker, "/api/parameters")[0], 200)

    def test_management_user_reads_policies_and_sets_none(self):
        user = self.make_user("management", self.vhost)
        self.assertEqual(self.put(user, "policies", self.vhost), (401, self.REFUSED))
        self.assertEqual(self.put(user, "operator-policies", self.vhost), (401, self.NOT_ADMIN))
        for kind in KINDS:
            self.assertEqual(self.get(user, self.path(kind)), (200, []), kind)
        self.assertEqual(self.get(user, "/api/parameters"), (401, self.REFUSED))


@unittest.skipIf(EXTERNAL, "warrenctl talks to warrend")
class WarrenctlPolicyTest(PolicyCase):
    """warrenctl's set_policy, list_policies, clear_policy and their operator variants."""

    def ctl(self, *args):
        return warrenctl(self.api_port, "-p", self.vhost, *args)

    @property
    def api_port(self):
        return int(self.api.base.rsplit(":", 1)[1])

    def test_set_list_and_clear(self):
        name, op = unique("ctl-policy"), unique("ctl-operator")
        r = self.ctl("set_policy", "--priority", "3", "--apply-to", "queues", name, "^ctl-",
                     '{"max-length": 2}')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.api.get(self.path("policies", name)),
                         {"vhost": self.vhost, "name": name, "pattern": "^ctl-",
                          "apply-to": "queues", "definition": {"max-length": 2}, "priority": 3})
        r = self.ctl("set_operator_policy", op, "^ctl-", '{"message-ttl": 60000}',
                     "--priority=1.5")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ctl("list_policies")
        self.assertEqual(rows(r.stdout),
                         [[self.vhost, name, "^ctl-", "queues", '{"max-length":2}', "3"]])
        r = self.ctl("list_operator_policies")
        self.assertEqual(rows(r.stdout),
                         [[self.vhost, op, "^ctl-", "all", '{"message-ttl":60000}', "1.5"]])
        # In force: a queue the pattern matches keeps two messages.
        _, ch = self.publisher()
        q = self.declare(ch, unique("ctl-q"))
        self.publish(ch, q, [b"a", b"b", b"c"])
        self.assertEqual(self.count(ch, q), 2)
        # Refused by the broker: its reason, exit 1; bad usage: 64.
        r = self.ctl("set_policy", unique("ctl-bad"), "^x", '{"max-length": -1}')
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("-1 is not a valid maximum length", r.stderr)
        self.assertEqual(self.ctl("set_policy", name, "^x").returncode, 64)
        self.assertEqual(self.ctl("set_policy", name, "^x", "[1]").returncode, 64)
        for command, which in (("clear_policy", name), ("clear_operator_policy", op)):
            self.assertEqual(self.ctl(command, which).returncode, 0, command)
            self.assertEqual(self.ctl(command, which).returncode, 1, command + " again")
        self.assertEqual(rows(self.ctl("list_policies").stdout), [])
        self.publish(ch, q, [b"d", b"e"])
        self.assertEqual(self.count(ch, q), 4)


@unittest.skipIf(EXTERNAL, "needs its own warrend processes (restarts)")
class PolicyRestartTest(RestartCase):
    """Policies are kept in the catalog: after a restart they are listed and in force."""

    data_prefix = "warren-policies-"

    def start(self):
        self.start_broker()
        self.api = Api(*self.running.wait_listener("http"))
        conn = self.connect_running()
        ch = conn.channel()
        ch.confirm_delivery()
        return conn, ch

    def publish(self, ch, queue, n):
        for i in range(n):
            ch.basic_publish("", queue, b"m%d" % i, pika.BasicProperties(delivery_mode=2))

    def test_policies_survive_a_restart(self):
        conn, ch = self.start()
        for kind, name, definition in (("policies", "keep", {"max-length": 3}),
                                       ("operator-policies", "cap", {"max-length": 2})):
            status, _, raw, _ = self.api.call("PUT", "/api/%s/%%2F/%s" % (kind, name), body={
                "pattern": "^kept\\.", "definition": definition, "priority": 1})
            self.assertEqual(status, 201, raw)
        ch.queue_declare("kept.q", durable=True)
        self.publish(ch, "kept.q", 4)
        self.assertEqual(message_count(ch, "kept.q"), 2)
        close_quietly(conn)
        self.running.stop()

        conn, ch = self.start()
        self.assertEqual(message_count(ch, "kept.q"), 2)
        self.assertEqual(self.api.get("/api/policies/%2F/keep"), {
            "vhost": "/", "name": "keep", "pattern": "^kept\\.", "apply-to": "all",
            "definition": {"max-length": 3}, "priority": 1})
        self.assertEqual(self.api.get("/api/operator-policies/%2F/cap")["definition"],
                         {"max-length": 2})
        self.publish(ch, "kept.q", 3)
        self.assertEqual(message_count(ch, "kept.q"), 2)
        # Cleared, and so after the next restart too.
        self.assertEqual(self.api.call("DELETE", "/api/operator-policies/%2F/cap")[0], 204)
        close_quietly(conn)
        self.running.stop()
        conn, ch = self.start()
        self.assertEqual(self.api.call("GET", "/api/operator-policies/%2F/cap")[0], 404)
        self.publish(ch, "kept.q", 3)
        self.assertEqual(message_count(ch, "kept.q"), 3)


if __name__ == "__main__":
    unittest.main()
