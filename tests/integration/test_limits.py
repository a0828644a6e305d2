"""Vhost limits (max-connections, max-queues) and user limits (max-connections, max-channels):
RabbitMQ's names, API (/api/vhost-limits, /api/user-limits), refusals and texts. RabbitMQ
3.10 is the reference: every test that does not restart the broker holds against it (run with
WARREN_TEST_BROKER=host:port, WARREN_TEST_STOMP=host:port and WARREN_TEST_HTTP=host:port).
As RabbitMQ 3.10 does:
- connection.open past the vhost's max-connections: 530 "NOT_ALLOWED - access to vhost 'v'
  refused for user 'u': connection limit (N) is reached"; past the user's: 530
  "NOT_ALLOWED - connection refused for user 'u': user connection limit (N) is reached".
- channel.open past the user's max-channels (over all its connections) closes that
  connection with 530 "NOT_ALLOWED - number of channels opened for user 'u' has reached the
  maximum allowed user limit of (N)".
- A new queue past the vhost's max-queues: 406 "PRECONDITION_FAILED - cannot declare queue
  'q': queue limit in vhost 'v' (N) is reached"; redeclaring or passively declaring an
  existing queue is fine.
- A STOMP CONNECT past a connection limit gets ERROR "Bad CONNECT" / "Virtual host 'v' access
  denied"; past the user's max-channels (the adapter's one channel) ERROR "Processing error".
- A negative value is no limit; 0 allows nothing. Lowering a limit closes nothing that is open.
Every user and vhost is made for its test and removed afterwards.
"""

import os
import shutil
import subprocess
import unittest

import pika
import pika.exceptions as pex

from harness import Broker, BrokerTestCase, close_quietly, unique, wait_until
from mgmt_support import PASSWORD, WARRENCTL, Api, Users, quote
from stomp_raw import RawStomp

EXTERNAL = os.environ.get("WARREN_TEST_BROKER")


def vhost_limit_text(vhost, user, n):
    return ("NOT_ALLOWED - access to vhost '%s' refused for user '%s': connection limit (%d) "
            "is reached" % (vhost, user, n))


def user_limit_text(user, n):
    return ("NOT_ALLOWED - connection refused for user '%s': user connection limit (%d) is "
            "reached" % (user, n))


def channel_limit_text(user, n):
    return ("NOT_ALLOWED - number of channels opened for user '%s' has reached the maximum "
            "allowed user limit of (%d)" % (user, n))


def queue_limit_text(queue, vhost, n):
    return ("PRECONDITION_FAILED - cannot declare queue '%s': queue limit in vhost '%s' (%d) "
            "is reached" % (queue, vhost, n))


class LimitsTestCase(Users, BrokerTestCase):
    """A broker with its management API; the limits set here are cleared after each test."""

    def set_limit(self, kind, name, limit, value):
        path = "/api/%s-limits/%s/%s" % (kind, quote(name), limit)
        self.api_ok("PUT", path, {"value": value}, want=(204,))
        self.addCleanup(self.api.call, "DELETE", path)

    def limits(self, kind, name=None):
        path = "/api/%s-limits" % kind + ("/" + quote(name) if name is not None else "")
        status, parsed, raw, _ = self.api.call("GET", path)
        self.assertEqual(status, 200, raw)
        return parsed

    def user_in(self, vhost="/"):
        """A user with every permission in `vhost` (and in "/")."""
        user = self.make_user(permissions=(".*", ".*", ".*"))
        if vhost != "/":
            self.grant(user, ".*", ".*", ".*", vhost=vhost)
        return user

    def vhost_for(self, user="guest"):
        vhost = self.make_vhost()
        self.grant(user, ".*", ".*", ".*", vhost=vhost)
        return vhost

    def open_as(self, user, vhost="/"):
        password = "guest" if user == "guest" else PASSWORD
        return self.connect(credentials=pika.PlainCredentials(user, password),
                            virtual_host=vhost)

    def assert_refused(self, text, user, vhost="/"):
        """connection.open is refused with 530 and `text`."""
        with self.assertRaises(pex.ProbableAccessDeniedError) as caught:
            self.open_as(user, vhost)
        self.assertIn("(530)", str(caught.exception))
        self.assertIn(text, str(caught.exception))

    def stomp(self, user, vhost):
        conn = RawStomp(*self.broker.wait_listener("stomp"))
        self.addCleanup(conn.close)
        password = "guest" if user == "guest" else PASSWORD
        return conn, conn.connect("1.2", login=user, passcode=password, host=vhost)


class VhostLimitsTest(LimitsTestCase):

    def test_connection_limit(self):
        vhost = self.vhost_for()
        self.set_limit("vhost", vhost, "max-connections", 2)
        first = self.open_as("guest", vhost)
        second = self.open_as("guest", vhost)
        self.assert_refused(vhost_limit_text(vhost, "guest", 2), "guest", vhost)
        self.assertTrue(second.is_open)
        first.close()
        # The closed connection no longer counts.
        third = wait_until(lambda: self._try_open("guest", vhost), timeout=10)
        self.assertTrue(third, "a connection slot did not come back after a close")
        # Other vhosts are not limited.
        self.open_as("guest", "/").close()

    def _try_open(self, user, vhost):
        try:
            return self.open_as(user, vhost)
        except pex.ProbableAccessDeniedError:
            return None

    def test_zero_allows_nothing_and_negative_is_no_limit(self):
        vhost = self.vhost_for()
        self.set_limit("vhost", vhost, "max-connections", 0)
        self.assert_refused(vhost_limit_text(vhost, "guest", 0), "guest", vhost)
        self.set_limit("vhost", vhost, "max-connections", -1)
        conns = [self.open_as("guest", vhost) for _ in range(3)]
        self.assertTrue(all(c.is_open for c in conns))

    def test_lowering_the_limit_closes_nothing(self):
        vhost = self.vhost_for()
        conns = [self.open_as("guest", vhost) for _ in range(3)]
        self.set_limit("vhost", vhost, "max-connections", 1)
        self.assert_refused(vhost_limit_text(vhost, "guest", 1), "guest", vhost)
        for c in conns:
            c.process_data_events(time_limit=0.2)
            self.assertTrue(c.is_open)
            c.channel().close()

    def test_queue_limit(self):
        vhost = self.vhost_for()
        self.set_limit("vhost", vhost, "max-queues", 2)
        conn = self.open_as("guest", vhost)
        ch = conn.channel()
        ch.queue_declare("limited-1")
        ch.queue_declare("limited-2", durable=True)
        ch.queue_declare("limited-1")  # redeclared: not a new queue
        ch.queue_declare("limited-2", passive=True)
        with self.assertRaises(pex.ChannelClosedByBroker) as caught:
            ch.queue_declare("limited-3")
        self.assertEqual(caught.exception.reply_code, 406)
        self.assertEqual(caught.exception.reply_text, queue_limit_text("limited-3", vhost, 2))
        ch = conn.channel()
        with self.assertRaises(pex.ChannelClosedByBroker) as caught:
            ch.queue_declare("", exclusive=True)
        self.assertEqual(caught.exception.reply_code, 406)
        self.assertRegex(caught.exception.reply_text,
                         r"^PRECONDITION_FAILED - cannot declare queue 'amq\.gen-[^']+': queue "
                         r"limit in vhost '%s' \(2\) is reached$" % vhost)
        status, parsed, raw, _ = self.api.call(
            "PUT", "/api/queues/%s/limited-4" % quote(vhost), body={"durable": False})
        self.assertEqual(status, 400, raw)
        self.assertIn("queue limit in vhost '%s' (2) is reached" % vhost, parsed["reason"])
        # A deleted queue makes room.
        ch = conn.channel()
        ch.queue_delete("limited-1")
        ch.queue_declare("limited-3")

    def test_stomp_connect_past_the_connection_limit(self):
        if EXTERNAL and not os.environ.get("WARREN_TEST_STOMP"):
            self.skipTest("needs WARREN_TEST_STOMP")
        vhost = self.vhost_for()
        self.set_limit("vhost", vhost, "max-connections", 1)
        stomp_conn, frame = self.stomp("guest", vhost)
        self.assertEqual(frame.command, "CONNECTED")
        _, frame = self.stomp("guest", vhost)
        self.assertEqual(frame.command, "ERROR")
        self.assertEqual(frame.header("message"), "Bad CONNECT")
        self.assertEqual(frame.body.decode(), "Virtual host '%s' access denied" % vhost)
        # The STOMP connection counts against AMQP too.
        self.assert_refused(vhost_limit_text(vhost, "guest", 1), "guest", vhost)
        stomp_conn.send("DISCONNECT", [("receipt", "bye")])
        stomp_conn.wait_closed(15)
        self.assertTrue(wait_until(lambda: self._try_open("guest", vhost), timeout=10))


class UserLimitsTest(LimitsTestCase):

    def test_connection_limit(self):
        user = self.user_in()
        self.set_limit("user", user, "max-connections", 1)
        first = self.open_as(user)
        self.assert_refused(user_limit_text(user, 1), user)
        self.open_as("guest").close()  # other users are not limited
        first.close()
        self.assertTrue(wait_until(lambda: self._try_open(user), timeout=10))

    def _try_open(self, user):
        try:
            return self.open_as(user)
        except pex.ProbableAccessDeniedError:
            return None

    def test_channel_limit_counts_every_connection(self):
        user = self.user_in()
        self.set_limit("user", user, "max-channels", 3)
        a = self.open_as(user)
        b = self.open_as(user)
        a1, b1, a2 = a.channel(), b.channel(), a.channel()
        with self.assertRaises(pex.ConnectionClosedByBroker) as caught:
            b.channel()
        self.assertEqual(caught.exception.reply_code, 530)
        self.assertEqual(caught.exception.reply_text, channel_limit_text(user, 3))
        # The other connection goes on; the closed one's channel is given back.
        self.assertTrue(a.is_open)
        a1.queue_declare("", exclusive=True)
        a3 = wait_until(lambda: self._try_channel(a), timeout=10)
        self.assertTrue(a3, "the closed connection's channel was not given back")
        # A closed channel is given back too.
        a2.close()
        self.assertTrue(wait_until(lambda: self._try_channel(a), timeout=10))

    def _try_channel(self, conn):
        try:
            return conn.channel()
        except pex.ConnectionClosedByBroker:
            self.fail("the connection was closed: %r" % conn)

    def test_stomp_connect_past_the_channel_limit(self):
        if EXTERNAL and not os.environ.get("WARREN_TEST_STOMP"):
            self.skipTest("needs WARREN_TEST_STOMP")
        user = self.user_in()
        self.set_limit("user", user, "max-channels", 1)
        conn = self.open_as(user)
        conn.channel()
        _, frame = self.stomp(user, "/")
        self.assertEqual(frame.command, "ERROR")
        self.assertEqual(frame.header("message"), "Processing error")


class LimitsApiTest(LimitsTestCase):

    def test_vhost_limits_resource(self):
        vhost = self.make_vhost()
        self.set_limit("vhost", vhost, "max-connections", 10)
        self.set_limit("vhost", vhost, "max-queues", 20)
        self.set_limit("vhost", vhost, "max-queues", 30)  # replaced
        expected = {"vhost": vhost, "value": {"max-connections": 10, "max-queues": 30}}
        self.assertEqual(self.limits("vhost", vhost), [expected])
        self.assertIn(expected, self.limits("vhost"))
        status, parsed, raw, _ = self.api.call(
            "PUT", "/api/vhost-limits/%s/max-queues" % quote(vhost), body={"value": "x"})
        self.assertEqual(status, 400, raw)
        status, parsed, raw, _ = self.api.call(
            "PUT", "/api/vhost-limits/%s/max-bogus" % quote(vhost), body={"value": 5})
        self.assertEqual(status, 400, raw)
        self.assertIn("max-bogus", parsed["reason"])
        self.api_ok("DELETE", "/api/vhost-limits/%s/max-queues" % quote(vhost), want=(204,))
        self.assertEqual(self.limits("vhost", vhost),
                         [{"vhost": vhost, "value": {"max-connections": 10}}])

    def test_user_limits_resource(self):
        user = self.make_user()
        self.set_limit("user", user, "max-connections", 4)
        self.set_limit("user", user, "max-channels", 8)
        expected = {"user": user, "value": {"max-connections": 4, "max-channels": 8}}
        self.assertEqual(self.limits("user", user), [expected])
        self.assertIn(expected, self.limits("user"))
        status, parsed, raw, _ = self.api.call("GET", "/api/users/" + quote(user))
        self.assertEqual(parsed["limits"], {"max-connections": 4, "max-channels": 8})
        status, _, raw, _ = self.api.call(
            "PUT", "/api/user-limits/%s/max-queues" % quote(user), body={"value": 1})
        self.assertEqual(status, 400, raw)
        status, _, raw, _ = self.api.call(
            "PUT", "/api/user-limits/%s/max-channels" % quote(unique("nobody")),
            body={"value": 1})
        self.assertEqual(status, 400, raw)
        for limit in ("max-connections", "max-channels"):
            self.api_ok("DELETE", "/api/user-limits/%s/%s" % (quote(user), limit), want=(204,))
        self.assertEqual([l for l in self.limits("user") if l["user"] == user], [])

    def test_only_administrators_set_limits(self):
        user = self.make_user(tags="management", permissions=(".*", ".*", ".*"))
        status, _ = self.as_user(user, "PUT", "/api/vhost-limits/%2F/max-connections",
                                 {"value": 1})
        self.assertEqual(status, 401)
        status, _ = self.as_user(user, "PUT", "/api/user-limits/%s/max-channels" % quote(user),
                                 {"value": 1})
        self.assertEqual(status, 401)


@unittest.skipIf(EXTERNAL, "restarts warrend")
class LimitsSurviveRestartTest(unittest.TestCase):

    def test_limits_are_durable(self):
        data_dir = None
        broker = Broker(binary=os.environ.get("WARREND")).start()
        try:
            data_dir = broker.data_dir
            broker._own_dir = False  # kept for the second start
            api = Api(*broker.wait_listener("http"))
            for path, value in (("/api/vhost-limits/%2F/max-queues", 1),
                                ("/api/user-limits/guest/max-connections", 5)):
                status, _, raw, _ = api.call("PUT", path, body={"value": value})
                self.assertEqual(status, 204, raw)
            broker.stop()
            broker = Broker(binary=os.environ.get("WARREND"), data_dir=data_dir).start()
            api = Api(*broker.wait_listener("http"))
            status, parsed, _, _ = api.call("GET", "/api/vhost-limits/%2F")
            self.assertEqual(parsed, [{"vhost": "/", "value": {"max-queues": 1}}])
            status, parsed, _, _ = api.call("GET", "/api/user-limits/guest")
            self.assertEqual(parsed, [{"user": "guest", "value": {"max-connections": 5}}])
            conn = pika.BlockingConnection(pika.ConnectionParameters(broker.host, broker.port))
            try:
                ch = conn.channel()
                ch.queue_declare("after-restart-1")
                with self.assertRaises(pex.ChannelClosedByBroker) as caught:
                    ch.queue_declare("after-restart-2")
                self.assertEqual(caught.exception.reply_text,
                                 queue_limit_text("after-restart-2", "/", 1))
            finally:
                close_quietly(conn)
        finally:
            broker.stop_quietly()
            if data_dir:
                shutil.rmtree(data_dir, ignore_errors=True)


@unittest.skipIf(EXTERNAL or not WARRENCTL, "drives warrenctl against warrend")
class WarrenctlLimitsTest(LimitsTestCase):

    def ctl(self, *args):
        host, port = self.broker.wait_listener("http")
        return subprocess.run([WARRENCTL, "--host", host, "--http-port", str(port), "-q", *args],
                              capture_output=True, text=True, timeout=30)

    def test_set_list_clear(self):
        vhost = self.make_vhost()
        user = self.make_user()
        r = self.ctl("-p", vhost, "set_vhost_limits", '{"max-connections": 3, "max-queues": 4}')
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ctl("-p", vhost, "list_vhost_limits")
        self.assertEqual(r.stdout.strip(), '{"max-connections":3,"max-queues":4}')
        r = self.ctl("set_user_limits", user, '{"max-channels": 2}')
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ctl("list_user_limits", user)
        self.assertEqual(r.stdout.strip(), '{"max-channels":2}')
        self.assertIn("%s\t{\"max-channels\":2}" % user, self.ctl("list_user_limits").stdout)
        r = self.ctl("clear_user_limits", user, "all")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.ctl("list_user_limits", user).stdout, "")
        r = self.ctl("-p", vhost, "clear_vhost_limits")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.limits("vhost", vhost), [])
        r = self.ctl("-p", vhost, "set_vhost_limits", '{"max-bogus": 1}')
        self.assertEqual(r.returncode, 1)
        r = self.ctl("-p", vhost, "set_vhost_limits", "not json")
        self.assertEqual(r.returncode, 64)


if __name__ == "__main__":
    unittest.main()
