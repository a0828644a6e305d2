"""Access control: users' permissions in a vhost (three regular expressions: configure, write
and read) checked on every AMQP and STOMP operation that names an exchange or a queue, the
management API's user tags and vhost permissions, and the loopback rule for `loopback_users`.

RabbitMQ 3.10 is the reference: every expectation here holds against it (run with
WARREN_TEST_BROKER=host:port, WARREN_TEST_STOMP=host:port and WARREN_TEST_HTTP=host:port, the
management plugin's port, which these tests use to create users and set their permissions). As
RabbitMQ 3.10 does:

- A user without a permission entry for a vhost cannot open it (530 NOT_ALLOWED).
- configure: queue.declare and exchange.declare (not passive), queue.delete, exchange.delete.
  write: basic.publish (on the exchange; the default exchange is checked as "amq.default"), the
  queue (or destination exchange) of a bind or unbind. read: basic.get, basic.consume,
  queue.purge, the source exchange of a bind or unbind. A refusal closes the channel with
  403 ACCESS_REFUSED naming the resource, the vhost and the user.
- The patterns are unanchored regular-expression searches; "" matches only the empty name, so
  it refuses everything (the default exchange is "amq.default", not "").
- A permission change reaches connections that are already open: RabbitMQ remembers the checks
  that passed per channel, so these tests look at new channels only.
- Deleting a user closes that user's connections (320 CONNECTION_FORCED).
- A pattern is matched whatever it is and however long the name: a pattern that makes a
  backtracking matcher explode, or a name of 60000 characters, gets its answer and leaves the
  broker working; a pattern too complicated to compile is a 400.

The loopback rule needs a local address that is not a loopback one; the test makes one in a
network namespace of its own and starts warrend there, so it runs against warrend only.

Names (users, vhosts, queues, exchanges) are unique per test and removed afterwards, so the
module can run again and again against one shared reference broker.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import pika
import pika.exceptions as pex

from harness import (Broker, BrokerError, BrokerTestCase, close_quietly, namespace_prefix,
                     netns_id, unique, wait_until)
from mgmt_support import PASSWORD, Api, Users, quote
from stomp_raw import RawStomp
from stomp_support import StompTestCase

EXTERNAL = os.environ.get("WARREN_TEST_BROKER")
NEEDS_HTTP = EXTERNAL and not os.environ.get("WARREN_TEST_HTTP")
NEEDS_STOMP = EXTERNAL and not (os.environ.get("WARREN_TEST_HTTP")
                                and os.environ.get("WARREN_TEST_STOMP"))


# RabbitMQ closes a refused STOMP connection some seconds after the ERROR (10 s in 3.10).
STOMP_CLOSE_TIMEOUT_S = 15.0

# RabbitMQ's management plugin refreshes what it lists about connections every 5 s.
STATS_TIMEOUT_S = 15.0


def refused_text(kind, name, user, vhost="/"):
    return ("ACCESS_REFUSED - access to %s '%s' in vhost '%s' refused for user '%s'"
            % (kind, name, vhost, user))


# The most a test waits for the broker to answer an operation that must not stall it.
ANSWER_TIMEOUT_S = 30.0

# How long a broker may take to close the connections of a deleted user.
CLOSE_TIMEOUT_S = 5.0


def bounded(work, timeout=ANSWER_TIMEOUT_S):
    """work() on a thread of its own, so that a broker that never answers fails the test
    instead of hanging it: its result, or the exception it raised. work must open (and close)
    the connections it uses itself."""
    box = {}

    def run():
        try:
            box["result"] = work()
        except BaseException as exc:  # re-raised on the test's thread
            box["error"] = exc
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError("the broker gave no answer within %.0f s" % timeout)
    if "error" in box:
        raise box["error"]
    return box["result"]


class AccessTestCase(Users, BrokerTestCase):
    """A broker with its management API; AMQP helpers for the users made here."""

    def connect_as(self, user, vhost="/", **kw):
        return self.connect(credentials=pika.PlainCredentials(user, PASSWORD),
                            virtual_host=vhost, **kw)

    def guest_channel(self):
        return self.channel()

    def queue(self, prefix, **kw):
        """A queue declared by guest (deleted at the end of the test); its name."""
        name = unique(prefix)
        self.guest_channel().queue_declare(queue=name, **kw)
        self.delete_queue_later(name)
        return name

    def exchange(self, prefix, exchange_type="fanout"):
        """An exchange declared by guest (deleted at the end of the test); its name."""
        name = unique(prefix)
        self.guest_channel().exchange_declare(exchange=name, exchange_type=exchange_type)
        self.delete_exchange_later(name)
        return name

    def refused(self, conn, operation, kind, name, user):
        """operation(channel) on a new channel of conn closes it with 403 for the resource."""
        ch = conn.channel()
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            operation(ch)
        exc = ctx.exception
        self.assertEqual((exc.reply_code, exc.reply_text),
                         (403, refused_text(kind, name, user)))
        self.assertTrue(conn.is_open, "a refused operation closed the connection")

    def allowed(self, conn, operation):
        """operation(channel) succeeds on a new channel of conn; its result."""
        ch = conn.channel()
        result = operation(ch)
        self.assertTrue(ch.is_open)
        return result

    @staticmethod
    def publish(exchange, routing_key="k"):
        """basic.publish in confirm mode: a refusal reaches the client before it returns."""
        def op(ch):
            ch.confirm_delivery()
            ch.basic_publish(exchange=exchange, routing_key=routing_key, body=b"access")
        return op


@unittest.skipIf(NEEDS_HTTP, "needs the broker's management API (WARREN_TEST_HTTP)")
class VhostAccessTest(AccessTestCase):
    """connection.open: a user needs a permission entry (any patterns) for the vhost, as
    RabbitMQ 3.10 checks it; otherwise 530 NOT_ALLOWED and the connection is closed. A vhost that
    does not exist is 530 too, with its own text."""

    def assert_not_allowed(self, user, vhost, text):
        with self.assertRaises(pex.ProbableAccessDeniedError) as ctx:
            self.connect_as(user, vhost)
        message = " ".join(str(a) for a in ctx.exception.args)
        self.assertIn("(530)", message)
        self.assertIn(text, message)

    def test_a_user_without_permissions_cannot_open_the_vhost(self):
        user = self.make_user()
        self.assert_not_allowed(
            user, "/", "NOT_ALLOWED - access to vhost '/' refused for user '%s'" % user)

    def test_a_vhost_that_does_not_exist_is_not_allowed(self):
        user = self.make_user(permissions=(".*", ".*", ".*"))
        vhost = unique("nope")
        self.assert_not_allowed(user, vhost, "NOT_ALLOWED - vhost %s not found" % vhost)

    def test_permissions_are_per_vhost(self):
        vhost = self.make_vhost()
        user = self.make_user(permissions=(".*", ".*", ".*"), vhost=vhost)
        ch = self.connect_as(user, vhost).channel()
        ch.queue_declare(queue="q", exclusive=True)
        self.assert_not_allowed(
            user, "/", "NOT_ALLOWED - access to vhost '/' refused for user '%s'" % user)

    def test_any_permission_entry_opens_the_vhost(self):
        # Even one whose patterns match nothing: opening the vhost needs the entry, not a
        # pattern; every operation on a resource is refused afterwards.
        user = self.make_user(permissions=("", "", ""))
        conn = self.connect_as(user)
        self.assertTrue(conn.is_open)
        self.refused(conn, lambda ch: ch.queue_declare(queue="q"), "queue", "q", user)

    def test_invalid_pattern_is_a_400(self):
        # The API refuses a pattern that is not a regular expression and stores nothing.
        user = self.make_user()
        path = "/api/permissions/%s/%s" % (quote("/"), quote(user))
        for field in ("configure", "write", "read"):
            body = {"configure": ".*", "write": ".*", "read": ".*"}
            body[field] = "("
            with self.subTest(field=field):
                status, _, raw, _ = self.api.call("PUT", path, body=body)
                self.assertEqual(status, 400, raw)
                status, _, raw, _ = self.api.call("GET", path)
                self.assertEqual(status, 404, raw)

    def test_a_huge_nested_pattern_is_a_400_and_the_broker_stays_up(self):
        # RabbitMQ 3.10 refuses both with 400 bad_request: its reason is
        # ["invalid_regexp", <the pattern>, ["regular expression is too complicated", 799]].
        # Only the status and the error are compared.
        user = self.make_user()
        path = "/api/permissions/%s/%s" % (quote("/"), quote(user))
        for depth in (100000, 2000):
            pattern = "(" * depth + "a" + ")" * depth
            with self.subTest(depth=depth):
                status, parsed, raw, _ = self.api.call(
                    "PUT", path, body={"configure": pattern, "write": ".*", "read": ".*"})
                self.assertEqual(status, 400, raw[:300])
                self.assertEqual((parsed or {}).get("error"), "bad_request", raw[:300])
                status, _, raw, _ = self.api.call("GET", path)
                self.assertEqual(status, 404, raw[:300])
        self.assert_broker_usable()


@unittest.skipIf(NEEDS_HTTP, "needs the broker's management API (WARREN_TEST_HTTP)")
class AmqpPermissionTest(AccessTestCase):
    """Which AMQP method needs which permission on which resource, as RabbitMQ 3.10 checks it:
    the user here may configure names starting "c-", write to "w-" and read from "r-"."""

    def setUp(self):
        super().setUp()
        self.user = self.make_user(permissions=("^c-", "^w-", "^r-"))
        self.conn = self.connect_as(self.user)

    def test_queue_declare_needs_configure(self):
        allowed, other = unique("c-q"), unique("x")
        self.delete_queue_later(allowed)
        self.allowed(self.conn, lambda ch: ch.queue_declare(queue=allowed))
        self.refused(self.conn, lambda ch: ch.queue_declare(queue=other),
                     "queue", other, self.user)
        for name in (unique("w-q"), unique("r-q")):
            with self.subTest(queue=name):
                self.refused(self.conn, lambda ch: ch.queue_declare(queue=name),
                             "queue", name, self.user)

    def test_server_named_queue_is_checked_under_its_generated_name(self):
        ch = self.conn.channel()
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            ch.queue_declare(queue="", exclusive=True)
        exc = ctx.exception
        self.assertEqual(exc.reply_code, 403, exc)
        self.assertRegex(exc.reply_text,
                         r"^ACCESS_REFUSED - access to queue 'amq\.gen-[A-Za-z0-9_-]+' in vhost "
                         r"'/' refused for user '%s'$" % re.escape(self.user))
        # Allowed once the pattern matches the generated names.
        self.grant(self.user, r"^amq\.gen-", "^w-", "^r-")
        name = self.allowed(self.conn, lambda ch: ch.queue_declare(
            queue="", exclusive=True)).method.queue
        self.assertTrue(name.startswith("amq.gen-"), name)

    def test_passive_declares_need_no_permission(self):
        queue = self.queue("x")
        exchange = self.exchange("x")
        ok = self.allowed(self.conn, lambda ch: ch.queue_declare(queue=queue, passive=True))
        self.assertEqual(ok.method.queue, queue)
        self.allowed(self.conn, lambda ch: ch.exchange_declare(exchange=exchange, passive=True))
        self.allowed(self.conn, lambda ch: ch.exchange_declare(exchange="amq.direct",
                                                               passive=True))

    def test_exchange_declare_needs_configure(self):
        allowed, other = unique("c-xe"), unique("xe")
        self.delete_exchange_later(allowed)
        self.allowed(self.conn, lambda ch: ch.exchange_declare(exchange=allowed))
        self.refused(self.conn, lambda ch: ch.exchange_declare(exchange=other),
                     "exchange", other, self.user)
        # A redeclare of an existing exchange is checked the same way.
        existing = self.exchange("w-xe")
        self.refused(self.conn, lambda ch: ch.exchange_declare(exchange=existing,
                                                               exchange_type="fanout"),
                     "exchange", existing, self.user)

    def test_a_new_queue_with_a_dead_letter_exchange_needs_read_on_it_and_write_there(self):
        # RabbitMQ checks these only when the declare creates the queue.
        user = self.make_user(permissions=(".*", "^w-", ".*"))
        conn = self.connect_as(user)
        for dlx, allowed in ((unique("w-dlx"), True), (unique("dlx"), False)):
            q = unique("q")
            self.delete_queue_later(q)
            args = {"x-dead-letter-exchange": dlx}
            with self.subTest(dlx=dlx):
                if allowed:
                    self.allowed(conn, lambda ch: ch.queue_declare(queue=q, arguments=args))
                    continue
                self.refused(conn, lambda ch: ch.queue_declare(queue=q, arguments=args),
                             "exchange", dlx, user)
                # Not created; and once guest has made it, the same declare passes.
                ch = self.guest_channel()
                with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                    ch.queue_declare(queue=q, passive=True)
                self.assertEqual(ctx.exception.reply_code, 404)
                self.guest_channel().queue_declare(queue=q, arguments=args)
                self.allowed(conn, lambda ch: ch.queue_declare(queue=q, arguments=args))
        # Read on the queue is checked first.
        q = unique("c-q")
        self.refused(self.conn, lambda ch: ch.queue_declare(
            queue=q, arguments={"x-dead-letter-exchange": unique("w-dlx")}), "queue", q,
            self.user)

    def test_a_new_exchange_with_an_alternate_exchange_needs_read_on_it_and_write_there(self):
        user = self.make_user(permissions=(".*", "^w-", ".*"))
        conn = self.connect_as(user)
        for ae, allowed in ((unique("w-ae"), True), (unique("ae"), False)):
            x = unique("x")
            self.delete_exchange_later(x)
            args = {"alternate-exchange": ae}
            declare = lambda ch: ch.exchange_declare(exchange=x, exchange_type="fanout",
                                                     arguments=args)
            with self.subTest(ae=ae):
                if allowed:
                    self.allowed(conn, declare)
                    continue
                self.refused(conn, declare, "exchange", ae, user)
                declare(self.guest_channel())
                self.allowed(conn, declare)

    def test_deletes_need_configure(self):
        queue, exchange = self.queue("r-q"), self.exchange("w-xe")
        self.refused(self.conn, lambda ch: ch.queue_delete(queue), "queue", queue, self.user)
        self.refused(self.conn, lambda ch: ch.exchange_delete(exchange),
                     "exchange", exchange, self.user)
        own_queue, own_exchange = self.queue("c-q"), self.exchange("c-xe")
        self.allowed(self.conn, lambda ch: ch.queue_delete(own_queue))
        self.allowed(self.conn, lambda ch: ch.exchange_delete(own_exchange))
        ch = self.guest_channel()
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            ch.queue_declare(queue=own_queue, passive=True)
        self.assertEqual(ctx.exception.reply_code, 404)

    def test_publish_needs_write_on_the_exchange(self):
        writable, other = self.exchange("w-xe"), self.exchange("c-xe")
        self.allowed(self.conn, self.publish(writable))
        self.refused(self.conn, self.publish(other), "exchange", other, self.user)
        self.refused(self.conn, self.publish("amq.direct"), "exchange", "amq.direct",
                     self.user)

    def test_the_default_exchange_is_checked_as_amq_default(self):
        queue = self.queue("w-q")
        self.refused(self.conn, self.publish("", queue), "exchange", "amq.default", self.user)
        self.grant(self.user, "^c-", r"^w-|^amq\.default$", "^r-")
        self.allowed(self.conn, self.publish("", queue))
        ch = self.guest_channel()
        method, _, body = ch.basic_get(queue, auto_ack=True)
        self.assertEqual(body, b"access")

    def test_publish_to_a_missing_exchange_is_refused_before_not_found(self):
        missing = unique("nope")
        self.refused(self.conn, self.publish(missing), "exchange", missing, self.user)
        # With write permission the missing exchange is what the broker complains about.
        missing = unique("w-nope")
        ch = self.conn.channel()
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            self.publish(missing)(ch)
        self.assertEqual((ctx.exception.reply_code, ctx.exception.reply_text),
                         (404, "NOT_FOUND - no exchange '%s' in vhost '/'" % missing))

    def test_get_consume_and_purge_need_read(self):
        readable, other = self.queue("r-q"), self.queue("c-q")
        operations = {
            "basic.get": lambda q: lambda ch: ch.basic_get(q, auto_ack=True),
            "basic.consume": lambda q: lambda ch: ch.basic_consume(q, lambda *a: None),
            "queue.purge": lambda q: lambda ch: ch.queue_purge(q),
        }
        for what, op in operations.items():
            with self.subTest(operation=what):
                self.allowed(self.conn, op(readable))
                self.refused(self.conn, op(other), "queue", other, self.user)

    def test_bind_needs_write_on_the_queue_and_read_on_the_exchange(self):
        writable_q, other_q = self.queue("w-q"), self.queue("c-q")
        readable_x, other_x = self.exchange("r-xe", "direct"), self.exchange("w-xe", "direct")
        self.allowed(self.conn, lambda ch: ch.queue_bind(writable_q, readable_x, "k"))
        # Neither allowed: the queue is checked first.
        self.refused(self.conn, lambda ch: ch.queue_bind(other_q, other_x, "k"),
                     "queue", other_q, self.user)
        self.refused(self.conn, lambda ch: ch.queue_bind(writable_q, other_x, "k"),
                     "exchange", other_x, self.user)
        self.refused(self.conn, lambda ch: ch.queue_bind(other_q, readable_x, "k"),
                     "queue", other_q, self.user)
        self.refused(self.conn, lambda ch: ch.queue_unbind(writable_q, other_x, "k"),
                     "exchange", other_x, self.user)
        self.allowed(self.conn, lambda ch: ch.queue_unbind(writable_q, readable_x, "k"))

    def test_exchange_bind_needs_write_on_the_destination_and_read_on_the_source(self):
        destination, source = self.exchange("w-xe"), self.exchange("r-xe", "direct")
        other = self.exchange("c-xe", "direct")
        self.allowed(self.conn, lambda ch: ch.exchange_bind(destination, source, "k"))
        self.refused(self.conn, lambda ch: ch.exchange_bind(other, source, "k"),
                     "exchange", other, self.user)
        self.refused(self.conn, lambda ch: ch.exchange_bind(destination, other, "k"),
                     "exchange", other, self.user)
        self.allowed(self.conn, lambda ch: ch.exchange_unbind(destination, source, "k"))


@unittest.skipIf(NEEDS_HTTP, "needs the broker's management API (WARREN_TEST_HTTP)")
class AmqpPatternTest(AccessTestCase):
    """Permissions that allow what a client does, and the empty pattern, as RabbitMQ 3.10
    matches them (an unanchored regular-expression search; "" matches only "")."""

    def round_trip(self, conn, prefix):
        """Everything a client commonly does, on names starting with prefix; each step must
        succeed."""
        ch = conn.channel()
        ch.confirm_delivery()
        queue, exchange = unique(prefix + "q"), unique(prefix + "xe")
        self.delete_queue_later(queue)
        self.delete_exchange_later(exchange)
        ch.queue_declare(queue=queue)
        ch.exchange_declare(exchange=exchange, exchange_type="direct")
        ch.queue_bind(queue, exchange, "k")
        ch.basic_publish(exchange=exchange, routing_key="k", body=b"one")
        ch.basic_publish(exchange="", routing_key=queue, body=b"two")
        method, _, body = ch.basic_get(queue, auto_ack=True)
        self.assertEqual(body, b"one")
        got = []
        ch.basic_consume(queue, lambda c, m, p, b: (got.append(b), c.basic_ack(m.delivery_tag)),
                         consumer_tag="ct")
        self.assertTrue(self.pump(conn, lambda: got), "the consumer received nothing")
        self.assertEqual(got, [b"two"])
        ch.basic_cancel("ct")
        ch.queue_purge(queue)
        ch.queue_unbind(queue, exchange, "k")
        ch.queue_declare(queue=queue, passive=True)
        ch.queue_delete(queue)
        ch.exchange_delete(exchange)

    def test_full_permissions_allow_everything(self):
        user = self.make_user(permissions=(".*", ".*", ".*"))
        self.round_trip(self.connect_as(user), "acc-")

    def test_matching_patterns_allow_everything(self):
        user = self.make_user(permissions=(r"^p\.", r"^p\.|^amq\.default$", r"^p\."))
        self.round_trip(self.connect_as(user), "p.")

    def test_patterns_are_unanchored_searches(self):
        user = self.make_user(permissions=("mid", "mid", "mid"))
        conn = self.connect_as(user)
        name = unique("a-mid-z")
        self.delete_queue_later(name)
        self.allowed(conn, lambda ch: ch.queue_declare(queue=name))
        other = unique("a-mi-d")
        self.refused(conn, lambda ch: ch.queue_declare(queue=other), "queue", other, user)

    def test_empty_pattern_matches_nothing(self):
        user = self.make_user(permissions=(".*", "", ".*"))
        conn = self.connect_as(user)
        queue = unique("acc-q")
        self.delete_queue_later(queue)
        self.allowed(conn, lambda ch: ch.queue_declare(queue=queue))
        self.refused(conn, self.publish("", queue), "exchange", "amq.default", user)
        self.refused(conn, self.publish("amq.direct", queue), "exchange", "amq.direct", user)
        self.refused(conn, lambda ch: ch.queue_bind(queue, "amq.direct", "k"),
                     "queue", queue, user)
        self.allowed(conn, lambda ch: ch.basic_get(queue, auto_ack=True))

    def test_a_pattern_that_backtracks_badly_is_answered_and_the_broker_stays_usable(self):
        # A backtracking matcher takes time exponential in the name for this pattern and a
        # name that almost matches; RabbitMQ 3.10 refuses the declare at once, with 403.
        pattern = "^([a-z0-9]+-?)*$"
        user = self.make_user(permissions=(pattern, ".*", ".*"))
        refused, allowed = "a" * 200 + "!", unique("ok-name").replace(".", "-")
        for name in (refused, allowed):
            self.delete_queue_later(name)

        def declare(name):
            def work():
                conn = pika.BlockingConnection(self.params(
                    credentials=pika.PlainCredentials(user, PASSWORD)))
                try:
                    try:
                        conn.channel().queue_declare(queue=name)
                    except pex.ChannelClosedByBroker as exc:
                        return exc.reply_code, exc.reply_text, conn.is_open
                    return "declared", None, conn.is_open
                finally:
                    close_quietly(conn)
            return bounded(work)

        # The text is longer than a reply-text's 255 bytes: RabbitMQ keeps 252 and ends it
        # with "...".
        code, text, still_open = declare(refused)
        self.assertEqual((code, still_open), (403, True), text)
        self.assertEqual(text, refused_text("queue", refused, user)[:252] + "...")
        self.assertEqual(declare(allowed), ("declared", None, True))
        self.assert_broker_usable()


@unittest.skipIf(NEEDS_HTTP, "needs the broker's management API (WARREN_TEST_HTTP)")
class PermissionChangeTest(AccessTestCase):
    """A permission change reaches connections already open: a channel opened after the change
    is checked against the new permissions, as in RabbitMQ 3.10."""

    def test_granting_reaches_an_open_connection(self):
        user = self.make_user(permissions=("^c-", "^w-", "^r-"))
        conn = self.connect_as(user)
        name = unique("g")
        self.delete_queue_later(name)
        self.refused(conn, lambda ch: ch.queue_declare(queue=name), "queue", name, user)
        self.grant(user, ".*", ".*", ".*")
        self.allowed(conn, lambda ch: ch.queue_declare(queue=name))
        self.allowed(conn, self.publish("", name))
        self.allowed(conn, lambda ch: ch.basic_get(name, auto_ack=True))

    def test_narrowing_reaches_an_open_connection(self):
        user = self.make_user(permissions=(".*", ".*", ".*"))
        conn = self.connect_as(user)
        name = unique("n")
        self.delete_queue_later(name)
        self.allowed(conn, lambda ch: ch.queue_declare(queue=name))
        self.grant(user, "^c-", "^w-", "^r-")
        self.refused(conn, lambda ch: ch.queue_declare(queue=name), "queue", name, user)
        self.refused(conn, self.publish("", name), "exchange", "amq.default", user)
        self.refused(conn, lambda ch: ch.basic_get(name), "queue", name, user)

    def test_deleting_the_permissions_reaches_an_open_connection(self):
        user = self.make_user(permissions=(".*", ".*", ".*"))
        conn = self.connect_as(user)
        name = unique("d")
        self.delete_queue_later(name)
        self.allowed(conn, lambda ch: ch.queue_declare(queue=name))
        self.revoke(user)
        self.refused(conn, lambda ch: ch.queue_declare(queue=name), "queue", name, user)
        self.refused(conn, self.publish("", name), "exchange", "amq.default", user)
        self.refused(conn, lambda ch: ch.basic_get(name), "queue", name, user)


@unittest.skipIf(NEEDS_HTTP, "needs the broker's management API (WARREN_TEST_HTTP)")
class UserDeletionTest(AccessTestCase):
    """Deleting a user (DELETE /api/users/{name}) closes that user's open AMQP connections, as
    RabbitMQ 3.10 does: connection.close 320 "CONNECTION_FORCED - user 'bob' is deleted". The
    connections of other users stay open, and a connection of the deleted user does not come
    back to life when a user of that name is made again."""

    def wait_closed_by_broker(self, conn):
        """Processes conn's events until the broker closes it; the close."""
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        with self.assertRaises(pex.ConnectionClosedByBroker,
                               msg="the connection is open %.0f s after the user was deleted"
                               % CLOSE_TIMEOUT_S) as ctx:
            while time.monotonic() < deadline:
                conn.process_data_events(time_limit=0.1)
        return ctx.exception

    def test_deleting_a_user_closes_its_connections(self):
        user = self.make_user(permissions=(".*", ".*", ".*"))
        other = self.make_user(permissions=(".*", ".*", ".*"))
        conns = [self.connect_as(user), self.connect_as(user)]
        other_conn = self.connect_as(other)
        self.api_ok("DELETE", "/api/users/" + quote(user))
        for conn in conns:
            exc = self.wait_closed_by_broker(conn)
            self.assertEqual((exc.reply_code, exc.reply_text),
                             (320, "CONNECTION_FORCED - user '%s' is deleted" % user))
            self.assertFalse(conn.is_open)
        # Only that user's connections.
        name = unique("acc-other")
        self.delete_queue_later(name)
        self.allowed(other_conn, lambda ch: ch.queue_declare(queue=name))

    def test_a_user_made_again_does_not_reopen_old_connections(self):
        user = self.make_user(permissions=(".*", ".*", ".*"))
        conn = self.connect_as(user)
        self.api_ok("DELETE", "/api/users/" + quote(user))
        self.api_ok("PUT", "/api/users/" + quote(user), {"password": PASSWORD + "-new",
                                                         "tags": ""})
        self.grant(user, ".*", ".*", ".*")
        exc = self.wait_closed_by_broker(conn)
        self.assertEqual((exc.reply_code, exc.reply_text),
                         (320, "CONNECTION_FORCED - user '%s' is deleted" % user))
        # The user made again logs in with the new password.
        fresh = self.connect(credentials=pika.PlainCredentials(user, PASSWORD + "-new"))
        name = unique("acc-again")
        self.delete_queue_later(name)
        self.allowed(fresh, lambda ch: ch.queue_declare(queue=name))


@unittest.skipIf(NEEDS_STOMP, "needs the broker's STOMP port (WARREN_TEST_STOMP) and "
                 "management API (WARREN_TEST_HTTP)")
class StompPermissionTest(Users, StompTestCase):
    """STOMP frames are checked as the AMQP operations they stand for, as RabbitMQ 3.10's STOMP
    plugin does: a /queue/ destination declares its queue (configure) before a SEND publishes
    to the default exchange (write on "amq.default") or a SUBSCRIBE consumes (read on the
    queue); /topic/ sends to amq.topic and subscribes through a queue of the subscription's own.
    A refusal is an ERROR frame with message "access_refused" and the AMQP text as its body,
    and the connection is closed. A CONNECT by a user without access to the vhost is an ERROR
    "Bad CONNECT" with body "Virtual host '/' access denied"."""

    def connect_as(self, user):
        return self.raw(login=user, passcode=PASSWORD)

    def assert_error(self, conn, message, body):
        frame = conn.recv_frame()
        self.assertEqual(frame.command, "ERROR", frame)
        self.assertEqual(frame.header("message"), message, frame)
        self.assertEqual(frame.body.decode(), body, frame)
        return frame

    def refused(self, user, command, destination, kind, name):
        """command to destination on a new connection: ERROR access_refused, then close."""
        conn = self.connect_as(user)
        headers = [("destination", destination), ("receipt", "r1")]
        if command == "SUBSCRIBE":
            headers.append(("id", "s1"))
        conn.send(command, headers, b"refused?" if command == "SEND" else b"")
        self.assert_error(conn, "access_refused", refused_text(kind, name, user))
        self.assertTrue(conn.wait_closed(STOMP_CLOSE_TIMEOUT_S),
                        "connection open after the ERROR")

    def refused_on_made_queue(self, user, command, headers, body, queue_pattern):
        """command on a new connection: ERROR access_refused naming a queue the broker named
        (matching the regular expression queue_pattern), then close."""
        conn = self.connect_as(user)
        conn.send(command, headers, body)
        frame = conn.recv_frame()
        self.assertEqual((frame.command, frame.header("message")), ("ERROR", "access_refused"),
                         frame)
        self.assertRegex(frame.body.decode(),
                         r"^ACCESS_REFUSED - access to queue '%s' in vhost '/' refused for "
                         r"user '%s'$" % (queue_pattern, re.escape(user)))
        self.assertTrue(conn.wait_closed(STOMP_CLOSE_TIMEOUT_S),
                        "connection open after the ERROR")

    def test_connect_without_access_to_the_vhost_is_refused(self):
        user = self.make_user()
        conn = self.raw_unconnected()
        frame = conn.connect("1.2", login=user, passcode=PASSWORD)
        self.assertEqual(frame.command, "ERROR", frame)
        self.assertEqual(frame.header("message"), "Bad CONNECT", frame)
        self.assertEqual(frame.body.decode(), "Virtual host '/' access denied", frame)
        self.assertTrue(conn.wait_closed(STOMP_CLOSE_TIMEOUT_S),
                        "connection open after the refused CONNECT")

    def test_send_to_a_queue_needs_configure_on_it(self):
        user = self.make_user(permissions=("^c-", "^w-", "^r-"))
        name = self.queue_name("x")
        self.refused(user, "SEND", "/queue/" + name, "queue", name)

    def test_send_to_a_queue_needs_write_on_the_default_exchange(self):
        user = self.make_user(permissions=("^c-", "^w-", "^r-"))
        name = self.queue_name("c-q")
        self.refused(user, "SEND", "/queue/" + name, "exchange", "amq.default")

    def test_subscribe_to_a_queue_needs_read_on_it(self):
        user = self.make_user(permissions=("^c-", "^w-", "^r-"))
        name = self.queue_name("c-q")
        self.refused(user, "SUBSCRIBE", "/queue/" + name, "queue", name)

    def test_send_to_a_topic_needs_write_on_amq_topic(self):
        user = self.make_user(permissions=("^c-", "^w-", "^r-"))
        self.refused(user, "SEND", "/topic/" + unique("a"), "exchange", "amq.topic")

    def test_subscribe_to_a_topic_needs_configure_on_its_queue(self):
        # RabbitMQ names the subscription's queue 'stomp-subscription-...'; only the rest of
        # the text is compared.
        user = self.make_user(permissions=("^c-", "^w-", "^r-"))
        self.refused_on_made_queue(user, "SUBSCRIBE",
                                   [("destination", "/topic/" + unique("a")), ("id", "s1"),
                                    ("receipt", "r1")], b"", "[^']+")

    def test_a_temporary_reply_queue_needs_read_on_it(self):
        # reply-to: /temp-queue/x makes a server-named queue (configure) and consumes from it
        # (read); a user who may read only "r-" names is refused on the amq.gen- queue.
        user = self.make_user(permissions=(".*", ".*", "^r-"))
        self.refused_on_made_queue(user, "SEND",
                                   [("destination", "/queue/" + self.queue_name("r-req")),
                                    ("reply-to", "/temp-queue/answers"), ("receipt", "r1")],
                                   b"ask", r"amq\.gen-[^']+")

    def test_full_permissions_send_and_subscribe(self):
        user = self.make_user(permissions=(".*", ".*", ".*"))
        conn = self.connect_as(user)
        queue, topic = self.queue_name("acc-q"), unique("acc-t")
        conn.receipt("SUBSCRIBE", [("destination", "/queue/" + queue), ("id", "q")])
        conn.receipt("SUBSCRIBE", [("destination", "/topic/" + topic), ("id", "t")])
        conn.receipt("SEND", [("destination", "/queue/" + queue)], b"to the queue")
        conn.receipt("SEND", [("destination", "/topic/" + topic)], b"to the topic")
        got = {}
        for _ in range(2):
            frame = conn.expect("MESSAGE")
            got[frame.header("subscription")] = frame.body
        self.assertEqual(got, {"q": b"to the queue", "t": b"to the topic"})

    def test_matching_patterns_send_and_subscribe(self):
        # /queue/ needs configure and read on the queue and write on the default exchange.
        user = self.make_user(permissions=(r"^p\.", r"^amq\.default$", r"^p\."))
        conn = self.connect_as(user)
        queue = self.queue_name("p.q")
        conn.receipt("SUBSCRIBE", [("destination", "/queue/" + queue), ("id", "q")])
        conn.receipt("SEND", [("destination", "/queue/" + queue)], b"matched")
        frame = conn.expect("MESSAGE")
        self.assertEqual(frame.body, b"matched")

    def test_a_topic_subscription_queue_is_named_stomp_subscription(self):
        # RabbitMQ names the queue of a /topic/ subscription 'stomp-subscription-' and a random
        # part, and checks configure, write and read on that name.
        user = self.make_user(permissions=("^stomp-subscription-", ".*", ".*"))
        conn = self.connect_as(user)
        topic = unique("acc-t")
        conn.receipt("SUBSCRIBE", [("destination", "/topic/" + topic), ("id", "t")])
        conn.receipt("SEND", [("destination", "/topic/" + topic)], b"to the subscription")
        frame = conn.expect("MESSAGE")
        self.assertEqual((frame.header("subscription"), frame.body), ("t", b"to the subscription"))

    def test_a_topic_subscription_is_refused_under_its_queue_name(self):
        user = self.make_user(permissions=(r"^amq\.gen", ".*", ".*"))
        self.refused_on_made_queue(user, "SUBSCRIBE",
                                   [("destination", "/topic/" + unique("a")), ("id", "s1"),
                                    ("receipt", "r1")], b"", r"stomp-subscription-[^']+")

    def test_send_with_another_user_id_is_refused(self):
        # As basic.publish: a user-id header must name the logged-in user. RabbitMQ answers
        # ERROR "precondition_failed" with the AMQP text, routes nothing and closes the
        # connection; with the user's own name the message goes, with that user_id.
        user = self.make_user(permissions=(".*", ".*", ".*"))
        pconn = self.connect()
        ch = pconn.channel()
        queue = self.queue_name("acc-uid")
        self.declare_stomp_queue(ch, queue)
        someone = unique("someone")
        conn = self.connect_as(user)
        conn.send("SEND", [("destination", "/queue/" + queue), ("user-id", someone),
                           ("receipt", "r1")], b"not mine")
        self.assert_error(conn, "precondition_failed",
                          "PRECONDITION_FAILED - user_id property set to '%s' but authenticated "
                          "user was '%s'" % (someone, user))
        self.assertTrue(conn.wait_closed(STOMP_CLOSE_TIMEOUT_S),
                        "connection open after the ERROR")
        self.assertIsNone(ch.basic_get(queue, auto_ack=True)[0], "the refused SEND was routed")
        conn = self.connect_as(user)
        conn.receipt("SEND", [("destination", "/queue/" + queue), ("user-id", user)], b"mine")
        got = self.get_one(pconn, ch, queue)
        self.assertIsNotNone(got, "the SEND with the user's own user-id was not routed")
        self.assertEqual((got[2], got[1].user_id), (b"mine", user))

    def test_deleting_the_user_closes_its_stomp_connection(self):
        # RabbitMQ's adapter sends an ERROR when the user's connection is closed and then closes
        # the socket; it words it "AMQP channel died" with the Erlang reason in the body
        # (which names the user: "user 'bob' is deleted"). The header is not compared.
        user = self.make_user(permissions=(".*", ".*", ".*"))
        conn = self.connect_as(user)
        self.api_ok("DELETE", "/api/users/" + quote(user))
        frame = conn.recv_frame()
        self.assertEqual(frame.command, "ERROR", frame)
        self.assertIn("user '%s' is deleted" % user, frame.body.decode(), frame)
        self.assertTrue(conn.wait_closed(STOMP_CLOSE_TIMEOUT_S),
                        "connection open after the ERROR")

    def test_send_to_a_very_long_queue_name(self):
        # A destination of 60000 characters: RabbitMQ checks configure on the whole name,
        # declares the queue and routes to it (its adapter has no 255-byte limit on the name).
        # Each queue lives in a vhost of the test's own, removed with it.
        destination = "/queue/app." + "a" * 60000
        for configure in (r"^app\.", r"^app\..*"):
            with self.subTest(configure=configure):
                vhost = self.make_vhost()
                user = self.make_user(permissions=(configure, ".*", ".*"), vhost=vhost)
                conn = self.raw(login=user, passcode=PASSWORD, host=vhost)
                conn.receipt("SEND", [("destination", destination)], b"long")
                conn.receipt("SUBSCRIBE", [("destination", destination), ("id", "long")])
                frame = conn.expect("MESSAGE")
                self.assertEqual((frame.header("destination"), frame.body),
                                 (destination, b"long"))
        self.assert_broker_usable()


@unittest.skipIf(NEEDS_HTTP, "needs the broker's management API (WARREN_TEST_HTTP)")
class ManagementAccessTest(AccessTestCase):
    """The management API's checks, as RabbitMQ 3.10's management plugin makes them: a user
    needs a tag ("management" or more) to use it at all (401 "Not management user"); the
    administrator endpoints (users, permissions, vhost changes) need "administrator" (401 "Not
    administrator user"); a path that names a vhost needs a permission entry for it (401 "User
    not authorised to access virtual host"); lists show only the vhosts the user may access; a
    declare or delete needs the configure permission (401 "Access refused."), the other
    operations what the AMQP methods they stand for need; a "management" user sees only their
    own connections."""

    def assert_not_authorised(self, user, method, path, reason, body=None):
        status, parsed = self.as_user(user, method, path, body)
        self.assertEqual((status, parsed), (401, {"error": "not_authorised", "reason": reason}),
                         "%s %s" % (method, path))

    def test_a_user_without_tags_is_not_a_management_user(self):
        user = self.make_user(permissions=(".*", ".*", ".*"))
        for path in ("/api/overview", "/api/whoami", "/api/queues", "/api/vhosts",
                     "/api/queues/" + quote("/")):
            with self.subTest(path=path):
                self.assert_not_authorised(user, "GET", path, "Not management user")

    def test_a_management_user_without_permissions(self):
        user = self.make_user(tags="management")
        queue = self.queue("acc-mq")
        status, whoami = self.as_user(user, "GET", "/api/whoami")
        self.assertEqual((status, whoami), (200, {"name": user, "tags": ["management"]}))
        status, _ = self.as_user(user, "GET", "/api/overview")
        self.assertEqual(status, 200)
        status, queues = self.as_user(user, "GET", "/api/queues")
        self.assertEqual(status, 200)
        self.assertEqual([q for q in queues if q.get("vhost") == "/"], [])
        status, vhosts = self.as_user(user, "GET", "/api/vhosts")
        self.assertEqual((status, vhosts), (200, []))
        admin = "Not administrator user"
        self.assert_not_authorised(user, "GET", "/api/users", admin)
        self.assert_not_authorised(user, "GET", "/api/permissions", admin)
        self.assert_not_authorised(user, "PUT", "/api/vhosts/" + quote(unique("acc-vh")),
                                   admin, body={})
        vhost = "User not authorised to access virtual host"
        self.assert_not_authorised(user, "GET", "/api/queues/" + quote("/"), vhost)
        self.assert_not_authorised(user, "GET", "/api/queues/%s/%s" % (quote("/"),
                                                                       quote(queue)), vhost)
        self.assert_not_authorised(user, "GET", "/api/exchanges/%s/amq.direct" % quote("/"),
                                   vhost)
        name = unique("acc-mq")
        self.delete_queue_later(name)
        self.assert_not_authorised(user, "PUT", "/api/queues/%s/%s" % (quote("/"), quote(name)),
                                   vhost, body={})

    def test_a_management_user_with_permissions(self):
        user = self.make_user(tags="management")
        queue = self.queue("acc-mq")
        self.grant(user, "^c-", ".*", ".*")
        status, queues = self.as_user(user, "GET", "/api/queues/" + quote("/"))
        self.assertEqual(status, 200)
        self.assertIn(queue, [q["name"] for q in queues])
        status, queues = self.as_user(user, "GET", "/api/queues")
        self.assertEqual(status, 200)
        self.assertIn(queue, [q["name"] for q in queues if q.get("vhost") == "/"])
        status, vhosts = self.as_user(user, "GET", "/api/vhosts")
        self.assertEqual(status, 200)
        self.assertIn("/", [v["name"] for v in vhosts])
        refused, allowed = unique("mq"), unique("c-mq")
        self.delete_queue_later(refused)
        self.delete_queue_later(allowed)
        self.assert_not_authorised(user, "PUT", "/api/queues/%s/%s" % (quote("/"),
                                                                       quote(refused)),
                                   "Access refused.", body={})
        status, _ = self.as_user(user, "PUT", "/api/queues/%s/%s" % (quote("/"),
                                                                     quote(allowed)), {})
        self.assertEqual(status, 201)
        self.assert_not_authorised(user, "DELETE", "/api/queues/%s/%s" % (quote("/"),
                                                                          quote(queue)),
                                   "Access refused.")
        publish = {"routing_key": queue, "payload": "from the API", "payload_encoding": "string",
                   "properties": {}}
        status, parsed = self.as_user(user, "POST", "/api/exchanges/%s/amq.default/publish"
                                      % quote("/"), publish)
        self.assertEqual((status, parsed), (200, {"routed": True}))
        method, _, body = self.guest_channel().basic_get(queue, auto_ack=True)
        self.assertEqual(body, b"from the API")
        status, _ = self.as_user(user, "DELETE", "/api/queues/%s/%s" % (quote("/"),
                                                                        quote(allowed)))
        self.assertEqual(status, 204)

    def test_api_operations_need_what_the_amqp_methods_need(self):
        # get and purge need read on the queue, a binding write on the queue and read on the
        # exchange, the test publish write on the exchange. RabbitMQ words the refusals
        # differently: a get is 401 with the AMQP text, a purge or binding 401 "Access refused.",
        # a publish 400 with "403 " and the AMQP text.
        user = self.make_user(tags="management", permissions=("^c-", "^w-", "^r-"))
        readable, writable = self.queue("r-q"), self.queue("w-q")
        readable_x, writable_x = self.exchange("r-xe", "direct"), self.exchange("w-xe")
        vhost = quote("/")
        get = {"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}
        status, parsed = self.as_user(user, "POST", "/api/queues/%s/%s/get"
                                      % (vhost, quote(readable)), get)
        self.assertEqual((status, parsed), (200, []))
        self.assert_not_authorised(user, "POST", "/api/queues/%s/%s/get"
                                   % (vhost, quote(writable)),
                                   refused_text("queue", writable, user), body=get)
        status, _ = self.as_user(user, "DELETE", "/api/queues/%s/%s/contents"
                                 % (vhost, quote(readable)))
        self.assertEqual(status, 204)
        self.assert_not_authorised(user, "DELETE", "/api/queues/%s/%s/contents"
                                   % (vhost, quote(writable)), "Access refused.")
        binding = {"routing_key": "k"}
        status, _ = self.as_user(user, "POST", "/api/bindings/%s/e/%s/q/%s"
                                 % (vhost, quote(readable_x), quote(writable)), binding)
        self.assertEqual(status, 201)
        for exchange, queue in ((readable_x, readable), ("amq.direct", writable)):
            with self.subTest(exchange=exchange, queue=queue):
                self.assert_not_authorised(user, "POST", "/api/bindings/%s/e/%s/q/%s"
                                           % (vhost, quote(exchange), quote(queue)),
                                           "Access refused.", body=binding)
        publish = {"routing_key": "k", "payload": "x", "payload_encoding": "string",
                   "properties": {}}
        status, parsed = self.as_user(user, "POST", "/api/exchanges/%s/%s/publish"
                                      % (vhost, quote(writable_x)), publish)
        self.assertEqual((status, parsed), (200, {"routed": False}))
        for exchange, name in ((readable_x, readable_x), ("amq.default", "amq.default")):
            with self.subTest(exchange=exchange):
                status, parsed = self.as_user(user, "POST", "/api/exchanges/%s/%s/publish"
                                              % (vhost, quote(exchange)), publish)
                self.assertEqual((status, parsed),
                                 (400, {"error": "bad_request",
                                        "reason": "403 " + refused_text("exchange", name,
                                                                        user)}))

    def test_a_management_user_sees_only_their_own_connections(self):
        # Connections are told apart by their "user" field: the user made here has no other.
        user = self.make_user(tags="management", permissions=(".*", ".*", ".*"))
        self.connect_as(user)
        self.connect()

        def users(listing):
            return [c.get("user") for c in listing or []]

        def both_listed():
            status, listing, _, _ = self.api.call("GET", "/api/connections")
            return status == 200 and {user, "guest"} <= set(users(listing))
        self.assertTrue(wait_until(both_listed, timeout=STATS_TIMEOUT_S, interval=0.25),
                        "guest does not see both connections in /api/connections")
        status, listing = self.as_user(user, "GET", "/api/connections")
        self.assertEqual(status, 200)
        self.assertEqual(users(listing), [user])

    def test_consumers_of_a_vhost_without_permissions_is_an_empty_list(self):
        # RabbitMQ lists the consumers of the vhosts the user may access: for a "management"
        # user without a permission entry for "/", GET /api/consumers/%2F is 200 [] (not 401).
        user = self.make_user(tags="management")
        queue = self.queue("acc-cq")
        conn = self.connect()
        ch = conn.channel()
        ch.basic_consume(queue, lambda *a: None, consumer_tag="acc-consumer")

        def listed():
            status, listing, _, _ = self.api.call("GET", "/api/consumers/" + quote("/"))
            return status == 200 and any(c.get("consumer_tag") == "acc-consumer"
                                         and (c.get("queue") or {}).get("name") == queue
                                         for c in listing or [])
        self.assertTrue(wait_until(listed, timeout=STATS_TIMEOUT_S, interval=0.25),
                        "guest does not see the consumer in /api/consumers/%2F")
        for path in ("/api/consumers/" + quote("/"), "/api/consumers"):
            with self.subTest(path=path):
                self.assertEqual(self.as_user(user, "GET", path), (200, []))

    def test_api_publish_with_another_user_id_is_a_400(self):
        # The test publish checks user_id as basic.publish does; RabbitMQ answers 400 with
        # "406 " and the AMQP text, and routes nothing.
        queue = self.queue("acc-uid")
        someone = unique("someone")
        path = "/api/exchanges/%s/amq.default/publish" % quote("/")
        body = {"routing_key": queue, "payload": "x", "payload_encoding": "string",
                "properties": {"user_id": someone}}
        status, parsed, raw, _ = self.api.call("POST", path, body=body)
        self.assertEqual((status, parsed),
                         (400, {"error": "bad_request",
                                "reason": "406 PRECONDITION_FAILED - user_id property set to "
                                          "'%s' but authenticated user was 'guest'" % someone}),
                         raw)
        ch = self.guest_channel()
        self.assertIsNone(ch.basic_get(queue, auto_ack=True)[0], "the refused publish was routed")
        body["properties"] = {"user_id": "guest"}
        status, parsed, raw, _ = self.api.call("POST", path, body=body)
        self.assertEqual((status, parsed), (200, {"routed": True}), raw)
        method, props, payload = ch.basic_get(queue, auto_ack=True)
        self.assertEqual((payload, props.user_id if method else None), (b"x", "guest"))

    def check_creation_needs_write(self, collection, prefix, body, key):
        """A new queue or exchange whose body names an exchange under `key` needs write on
        it (RabbitMQ: 401 "Access refused.", nothing made); declaring one that exists with
        the same arguments checks nothing more (204)."""
        user = self.make_user(tags="management", permissions=(".*", "^q", ".*"))
        args = dict(body, arguments={key: unique("forbidden")})
        new, existing, allowed = (unique(prefix + s) for s in ("-new", "-existing", "-allowed"))
        for name in (new, existing, allowed):
            if collection == "queues":
                self.delete_queue_later(name)
            else:
                self.delete_exchange_later(name)

        def path(name):
            return "/api/%s/%s/%s" % (collection, quote("/"), quote(name))
        self.assert_not_authorised(user, "PUT", path(new), "Access refused.", body=args)
        status, _, raw, _ = self.api.call("GET", path(new))
        self.assertEqual(status, 404, raw)
        self.api_ok("PUT", path(existing), args)
        self.assertEqual(self.as_user(user, "PUT", path(existing), args)[0], 204)
        status, _ = self.as_user(user, "PUT", path(allowed),
                                 dict(body, arguments={key: unique("q-target")}))
        self.assertEqual(status, 201)

    def test_api_queue_declare_checks_the_dead_letter_exchange(self):
        # As queue.declare with x-dead-letter-exchange.
        self.check_creation_needs_write("queues", "q", {}, "x-dead-letter-exchange")

    def test_api_exchange_declare_checks_the_alternate_exchange(self):
        # As exchange.declare with alternate-exchange.
        self.check_creation_needs_write("exchanges", "q-x", {"type": "fanout"},
                                        "alternate-exchange")


# -- the loopback rule -----------------------------------------------------------------------

LOOPBACK_CHILD_FLAG = "--loopback-child"
OTHER_ADDRESS = "10.77.0.1"
OTHER_USER = "acc-other"
CHILD_TIMEOUT_S = 120.0
PARENT_NETNS_VAR = "WARREN_ACCESS_PARENT_NETNS"


def _amqp_probe(host, port, user, password):
    """Whether user may open a connection at host:port: {"open": True} or the refusal."""
    params = pika.ConnectionParameters(
        host=host, port=port, credentials=pika.PlainCredentials(user, password),
        connection_attempts=1, socket_timeout=5, stack_timeout=10,
        blocked_connection_timeout=10)
    try:
        conn = pika.BlockingConnection(params)
    except Exception as exc:  # the probe reports what happened; the test asserts
        return {"open": False, "error": type(exc).__name__,
                "text": " ".join(str(a) for a in exc.args)}
    try:
        conn.channel().queue_declare(queue="", exclusive=True)
        return {"open": True}
    except Exception as exc:  # reported, asserted by the test
        return {"open": True, "error": type(exc).__name__, "text": str(exc)}
    finally:
        close_quietly(conn)


def _stomp_probe(host, port, user, password):
    conn = None
    try:
        conn = RawStomp(host, port)
        frame = conn.connect("1.2", login=user, passcode=password)
        result = {"command": frame.command, "message": frame.header("message"),
                  "body": frame.body.decode("utf-8", "replace")}
        if frame.command == "ERROR":
            result["closed"] = conn.wait_closed(STOMP_CLOSE_TIMEOUT_S)
        return result
    except Exception as exc:  # reported, asserted by the test
        return {"command": None, "error": "%s: %s" % (type(exc).__name__, exc)}
    finally:
        if conn is not None:
            conn.close()


def _http_probe(host, port, user, password):
    try:
        status, parsed, raw, _ = Api(host, port).call("GET", "/api/whoami", user=user,
                                                      password=password, timeout=10)
        return {"status": status, "body": parsed}
    except Exception as exc:  # reported, asserted by the test
        return {"status": None, "error": "%s: %s" % (type(exc).__name__, exc)}


def _add_other_address():
    """Gives this (new, empty) network namespace a non-loopback local address; the error text
    or None."""
    def ip(*args):
        return subprocess.run(["ip", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=10)
    up = ip("link", "set", "lo", "up")
    if up.returncode != 0:
        return "ip link set lo up: " + up.stdout
    on_lo = ip("addr", "add", OTHER_ADDRESS + "/32", "dev", "lo")
    if on_lo.returncode == 0:
        return None
    steps = (("link", "add", "warren-acc0", "type", "dummy"),
             ("link", "set", "warren-acc0", "up"),
             ("addr", "add", OTHER_ADDRESS + "/32", "dev", "warren-acc0"))
    for step in steps:
        r = ip(*step)
        if r.returncode != 0:
            return "ip addr add on lo: %s; ip %s: %s" % (on_lo.stdout, " ".join(step), r.stdout)
    return None


def _with_broker(binary, config, scenario):
    """Starts warrend on every address with the config text (None: no --config) and returns
    scenario(broker, ports) with the broker's log tail added."""
    conf_dir = tempfile.mkdtemp(prefix="warren-acc-conf-")
    args = ["--bind", "0.0.0.0"]
    if config is not None:
        path = os.path.join(conf_dir, "warren.conf")
        with open(path, "w") as f:
            f.write(config)
        args += ["--config", path]
    broker = Broker(binary=binary, extra_args=args)
    try:
        broker.start()
        ports = {"amqp": broker.port, "stomp": broker.wait_listener("stomp")[1],
                 "http": broker.wait_listener("http")[1]}
        result = scenario(broker, ports)
        result["log"] = broker.log_tail(3000)
        return result
    except Exception as exc:  # reported, asserted by the test
        return {"failed": "%s: %s" % (type(exc).__name__, exc), "log": broker.log_tail(3000)}
    finally:
        broker.stop_quietly()
        shutil.rmtree(conf_dir, ignore_errors=True)


def _make_full_user(ports, name, tags="management"):
    api = Api("127.0.0.1", ports["http"])
    for method, path, body in (
            ("PUT", "/api/users/" + quote(name), {"password": PASSWORD, "tags": tags}),
            ("PUT", "/api/permissions/%s/%s" % (quote("/"), quote(name)),
             {"configure": ".*", "write": ".*", "read": ".*"})):
        status, _, raw, _ = api.call(method, path, body=body, timeout=10)
        if status not in (201, 204):
            raise AssertionError("%s %s: %s %r" % (method, path, status, raw))


def _probe_all(ports, host, user, password):
    return {"amqp": _amqp_probe(host, ports["amqp"], user, password),
            "stomp": _stomp_probe(host, ports["stomp"], user, password),
            "http": _http_probe(host, ports["http"], user, password)}


def loopback_child():
    """Runs in a network namespace of its own: makes a non-loopback address, starts warrend
    with several loopback_users settings and prints what each client saw, as one JSON line."""
    binary = os.environ.get("WARREND")
    parent = os.environ.get(PARENT_NETNS_VAR)
    if not parent or str(netns_id()) == parent:
        # Never change the addresses of a namespace this process did not make.
        print(json.dumps({"same_namespace": "parent %s, here %s" % (parent, netns_id())}))
        return 0
    problem = _add_other_address()
    if problem:
        print(json.dumps({"no_address": problem}))
        return 0
    other_user = OTHER_USER
    results = {}

    def default_rule(broker, ports):
        _make_full_user(ports, other_user)
        return {"guest_loopback": _probe_all(ports, "127.0.0.1", "guest", "guest"),
                "guest_other": _probe_all(ports, OTHER_ADDRESS, "guest", "guest"),
                "user_other": _probe_all(ports, OTHER_ADDRESS, other_user, PASSWORD)}
    results["default"] = _with_broker(binary, None, default_rule)

    def lifted(broker, ports):
        return {"guest_other": _probe_all(ports, OTHER_ADDRESS, "guest", "guest")}
    results["none"] = _with_broker(binary, "loopback_users = none\n", lifted)
    results["guest_false"] = _with_broker(binary, "loopback_users.guest = false\n", lifted)

    def named(broker, ports):
        _make_full_user(ports, other_user)
        return {"user_loopback": _probe_all(ports, "127.0.0.1", other_user, PASSWORD),
                "user_other": _probe_all(ports, OTHER_ADDRESS, other_user, PASSWORD),
                "guest_other": {"amqp": _amqp_probe(OTHER_ADDRESS, ports["amqp"], "guest",
                                                    "guest")}}
    results["named"] = _with_broker(binary, "loopback_users = guest, %s\n" % other_user, named)
    print(json.dumps(results))
    return 0


@unittest.skipIf(EXTERNAL, "needs warrend processes of its own in a network namespace")
class LoopbackUsersTest(unittest.TestCase):
    """The users named in `loopback_users` (default: guest) may log in only through a loopback
    address of the broker's host; RabbitMQ 3.10 decides by the local address of the accepted
    socket (127.0.0.0/8 or ::1). A refusal is, as RabbitMQ words it: AMQP connection.close 403
    "ACCESS_REFUSED - PLAIN login refused: user 'guest' can only connect via localhost"; STOMP
    ERROR "Bad CONNECT" with body "non-loopback access denied"; HTTP API 401 "User can only log
    in via localhost". `loopback_users = none` (and RabbitMQ's `loopback_users.guest = false`)
    lift the rule; `loopback_users = guest, other` names the users it applies to.

    warrend runs in a network namespace of its own (unshare), listening on every address, with
    OTHER_ADDRESS as its non-loopback address; a child process there does the probes and
    reports them as JSON."""

    results = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        binary = os.environ.get("WARREND")
        if not binary:
            raise BrokerError("WARREND is not set: it must name the warrend binary")
        if not os.access(binary, os.X_OK):
            raise BrokerError("WARREND=%r is not an executable file" % binary)
        prefix = namespace_prefix()
        cmd = prefix + [sys.executable, os.path.abspath(__file__), LOOPBACK_CHILD_FLAG]
        env = dict(os.environ, WARREND=os.path.abspath(binary))
        env[PARENT_NETNS_VAR] = str(netns_id())
        env.pop("WARREN_TEST_BROKER", None)
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=env, start_new_session=True,
                                 cwd=os.path.dirname(os.path.abspath(__file__)))
        try:
            out, err = child.communicate(timeout=CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            out, err = child.communicate(timeout=10)
            raise AssertionError("the probe in the network namespace did not finish within "
                                 "%.0f s\n--- its stderr ---\n%s" % (CHILD_TIMEOUT_S, err[-4000:]))
        lines = [l for l in out.splitlines() if l.strip()]
        try:
            results = json.loads(lines[-1])
        except (IndexError, ValueError):
            raise AssertionError("the probe in the network namespace exited with %s and no "
                                 "report\n--- stdout ---\n%s\n--- stderr ---\n%s"
                                 % (child.returncode, out[-2000:], err[-4000:]))
        if "same_namespace" in results:
            raise AssertionError("the probe did not run in a network namespace of its own (%s)"
                                 % results["same_namespace"])
        if "no_address" in results:
            raise unittest.SkipTest("cannot add a non-loopback address in the namespace: %s"
                                    % results["no_address"])
        cls.results = results

    def scenario(self, name):
        result = self.results[name]
        if "failed" in result:
            self.fail("warrend (%s): %s\n--- warrend log ---\n%s"
                      % (name, result["failed"], result.get("log", "")))
        return result

    def explain(self, result):
        return "\n--- warrend log ---\n%s" % result.get("log", "")

    def assert_allowed(self, result, probes, protocols=("amqp", "stomp", "http")):
        for proto in protocols:
            got = probes[proto]
            with self.subTest(protocol=proto):
                if proto == "amqp":
                    self.assertEqual(got, {"open": True}, self.explain(result))
                elif proto == "stomp":
                    self.assertEqual(got.get("command"), "CONNECTED",
                                     "%r%s" % (got, self.explain(result)))
                else:
                    self.assertEqual(got.get("status"), 200, "%r%s" % (got, self.explain(result)))

    def assert_amqp_refused(self, result, got, user):
        self.assertFalse(got.get("open"), "%r%s" % (got, self.explain(result)))
        self.assertIn("(403)", got.get("text", ""), self.explain(result))
        self.assertIn("ACCESS_REFUSED - PLAIN login refused: user '%s' can only connect via "
                      "localhost" % user, got.get("text", ""), self.explain(result))

    def test_guest_connects_through_a_loopback_address(self):
        result = self.scenario("default")
        self.assert_allowed(result, result["guest_loopback"])

    def test_guest_is_refused_through_another_address_amqp(self):
        result = self.scenario("default")
        self.assert_amqp_refused(result, result["guest_other"]["amqp"], "guest")

    def test_guest_is_refused_through_another_address_stomp(self):
        result = self.scenario("default")
        self.assert_stomp_refused(result, result["guest_other"]["stomp"])

    def assert_http_refused(self, result, got):
        self.assertEqual((got.get("status"), got.get("body")),
                         (401, {"error": "not_authorised",
                                "reason": "User can only log in via localhost"}),
                         "%r%s" % (got, self.explain(result)))

    def assert_stomp_refused(self, result, got):
        self.assertEqual((got.get("command"), got.get("message"), got.get("body")),
                         ("ERROR", "Bad CONNECT", "non-loopback access denied"),
                         "%r%s" % (got, self.explain(result)))
        self.assertTrue(got.get("closed"), "connection open after the ERROR")

    def test_guest_is_refused_through_another_address_http(self):
        result = self.scenario("default")
        self.assert_http_refused(result, result["guest_other"]["http"])

    def test_other_users_connect_through_another_address(self):
        result = self.scenario("default")
        self.assert_allowed(result, result["user_other"])

    def test_loopback_users_none_lifts_the_rule(self):
        result = self.scenario("none")
        self.assert_allowed(result, result["guest_other"])

    def test_loopback_users_guest_false_lifts_the_rule(self):
        result = self.scenario("guest_false")
        self.assert_allowed(result, result["guest_other"])

    def test_loopback_users_names_the_users(self):
        result = self.scenario("named")
        self.assert_allowed(result, result["user_loopback"])
        self.assert_amqp_refused(result, result["user_other"]["amqp"], OTHER_USER)
        self.assert_stomp_refused(result, result["user_other"]["stomp"])
        self.assert_http_refused(result, result["user_other"]["http"])
        self.assert_amqp_refused(result, result["guest_other"]["amqp"], "guest")


if __name__ == "__main__":
    if sys.argv[1:2] == [LOOPBACK_CHILD_FLAG]:
        sys.exit(loopback_child())
    unittest.main()
