"""Topic permissions: for a user in a vhost, per topic exchange, a write pattern for the routing
keys it may publish with and a read pattern for the keys it may bind with; "{username}" and
"{vhost}" stand for the user's and the vhost's names. RabbitMQ 3.10 is the reference: every
test that does not restart the broker or run warrenctl holds against it (WARREN_TEST_BROKER,
WARREN_TEST_STOMP and WARREN_TEST_HTTP, the management port). As RabbitMQ 3.10 does:
- basic.publish to a topic exchange with a key the write pattern refuses: 403 "ACCESS_REFUSED -
  access to topic 'k' in exchange 'x' in vhost 'v' refused for user 'u'"; queue.bind,
  queue.unbind and exchange.bind with a topic exchange as the source and a key the read
  pattern refuses: the same text.
- An exchange without an entry, and a non-topic exchange, is not checked.
- A change reaches open connections (for keys they did not use before: RabbitMQ remembers a
  channel's last successful checks).
- STOMP: SEND gets ERROR access_refused with that text; SUBSCRIBE the text without
  "ACCESS_REFUSED - ".
"""

import os
import shutil
import subprocess
import time
import unittest

import pika
import pika.exceptions as pex

from harness import Broker, BrokerTestCase, close_quietly, unique
from mgmt_support import PASSWORD, WARRENCTL, Api, Users, quote
from stomp_raw import RawStomp

EXTERNAL = os.environ.get("WARREN_TEST_BROKER")


def refused(key, exchange, user, vhost="/"):
    return ("ACCESS_REFUSED - access to topic '%s' in exchange '%s' in vhost '%s' refused for "
            "user '%s'" % (key, exchange, vhost, user))


class TopicCase(Users, BrokerTestCase):

    def topic_user(self, exchange="amq.topic", write=".*", read=".*"):
        """A user with every permission on "/" and these topic permissions on `exchange`."""
        user = self.make_user(permissions=(".*", ".*", ".*"))
        self.set_topic(user, exchange, write, read)
        return user

    def set_topic(self, user, exchange, write, read, vhost="/"):
        return self.api_ok("PUT", "/api/topic-permissions/%s/%s" % (quote(vhost), quote(user)),
                           {"exchange": exchange, "write": write, "read": read})

    def open_as(self, user):
        return self.connect(credentials=pika.PlainCredentials(user, PASSWORD))

    def publish(self, conn, exchange, key):
        """basic.publish with confirms on a new channel: None, or the channel's closing."""
        ch = conn.channel()
        ch.confirm_delivery()
        try:
            ch.basic_publish(exchange, key, b"x")
        except pex.ChannelClosedByBroker as e:
            return e
        return None

    def bind(self, conn, exchange, key, unbind=False):
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        try:
            if unbind:
                ch.queue_unbind(q, exchange, key)
            else:
                ch.queue_bind(q, exchange, key)
        except pex.ChannelClosedByBroker as e:
            return e
        return None


class TopicPermissionsTest(TopicCase):

    def test_publish_needs_the_write_pattern(self):
        user = self.topic_user(write="^{username}\\.", read=".*")
        conn = self.open_as(user)
        self.assertIsNone(self.publish(conn, "amq.topic", user + ".orders"))
        e = self.publish(conn, "amq.topic", "other.orders")
        self.assertEqual(e.reply_code, 403)
        self.assertEqual(e.reply_text, refused("other.orders", "amq.topic", user))

    def test_binds_need_the_read_pattern(self):
        user = self.topic_user(write=".*", read="^public\\.")
        conn = self.open_as(user)
        self.assertIsNone(self.bind(conn, "amq.topic", "public.news"))
        for unbind in (False, True):
            e = self.bind(conn, "amq.topic", "secret.news", unbind=unbind)
            self.assertEqual(e.reply_code, 403)
            self.assertEqual(e.reply_text, refused("secret.news", "amq.topic", user))
        ch = conn.channel()
        x = unique("topic-dest")
        ch.exchange_declare(x, "fanout", auto_delete=True)
        self.delete_exchange_later(x)
        with self.assertRaises(pex.ChannelClosedByBroker) as caught:
            ch.exchange_bind(x, "amq.topic", "secret.e2e")
        self.assertEqual(caught.exception.reply_text, refused("secret.e2e", "amq.topic", user))

    def test_other_exchanges_are_not_checked(self):
        user = self.topic_user(exchange="amq.direct", write="^nothing$", read="^nothing$")
        conn = self.open_as(user)
        self.assertIsNone(self.publish(conn, "amq.direct", "anything"))  # not a topic exchange
        self.assertIsNone(self.bind(conn, "amq.direct", "anything"))
        self.assertIsNone(self.publish(conn, "amq.topic", "anything"))  # no entry for it

    def test_vhost_variable(self):
        user = self.topic_user(write="^{vhost}-", read=".*")
        conn = self.open_as(user)
        self.assertIsNone(self.publish(conn, "amq.topic", "/-ok"))
        self.assertEqual(self.publish(conn, "amq.topic", "x-no").reply_code, 403)

    def test_changes_reach_open_connections(self):
        user = self.make_user(permissions=(".*", ".*", ".*"))
        conn = self.open_as(user)
        self.assertIsNone(self.publish(conn, "amq.topic", "before.change"))
        self.set_topic(user, "amq.topic", "^allowed\\.", ".*")
        time.sleep(0.5)
        self.assertEqual(self.publish(conn, "amq.topic", "after.change").reply_text,
                         refused("after.change", "amq.topic", user))
        self.assertIsNone(self.publish(conn, "amq.topic", "allowed.key"))
        self.api_ok("DELETE", "/api/topic-permissions/%s/%s" % (quote("/"), quote(user)))
        time.sleep(0.5)
        self.assertIsNone(self.publish(conn, "amq.topic", "after.delete"))

    def test_stomp_send_and_subscribe(self):
        if EXTERNAL and not os.environ.get("WARREN_TEST_STOMP"):
            self.skipTest("needs WARREN_TEST_STOMP")
        user = self.topic_user(write="^pub\\.", read="^pub\\.")
        host, port = self.broker.wait_listener("stomp")
        for command, headers, text in (
                ("SEND", [("destination", "/topic/priv.x")],
                 refused("priv.x", "amq.topic", user)),
                ("SUBSCRIBE", [("destination", "/topic/priv.y"), ("id", "1")],
                 refused("priv.y", "amq.topic", user)[len("ACCESS_REFUSED - "):])):
            conn = RawStomp(host, port)
            self.addCleanup(conn.close)
            self.assertEqual(conn.connect("1.2", login=user, passcode=PASSWORD).command,
                             "CONNECTED")
            conn.send(command, headers, b"x" if command == "SEND" else b"")
            frame = conn.recv_frame(15)
            self.assertEqual(frame.command, "ERROR")
            self.assertEqual(frame.header("message"), "access_refused")
            self.assertEqual(frame.body.decode(), text)


class TopicPermissionsApiTest(TopicCase):

    def test_resource(self):
        user = self.make_user()
        path = "/api/topic-permissions/%s/%s" % (quote("/"), quote(user))
        status, _, raw, _ = self.api.call("PUT", path, body={"exchange": "amq.topic",
                                                             "write": "^a", "read": "^b"})
        self.assertEqual(status, 201, raw)
        status, _, raw, _ = self.api.call("PUT", path, body={"exchange": "amq.direct",
                                                             "write": "", "read": ".*"})
        self.assertEqual(status, 204, raw)
        expected = [{"user": user, "vhost": "/", "exchange": "amq.direct", "write": "",
                     "read": ".*"},
                    {"user": user, "vhost": "/", "exchange": "amq.topic", "write": "^a",
                     "read": "^b"}]
        key = lambda e: e["exchange"]
        for p in (path, "/api/users/%s/topic-permissions" % quote(user)):
            self.assertEqual(sorted(self.api_ok("GET", p), key=key), expected)
        listed = [e for e in self.api_ok("GET", "/api/topic-permissions") if e["user"] == user]
        self.assertEqual(sorted(listed, key=key), expected)
        listed = [e for e in self.api_ok("GET", "/api/vhosts/%s/topic-permissions" % quote("/"))
                  if e["user"] == user]
        self.assertEqual(sorted(listed, key=key), expected)
        status, _, raw, _ = self.api.call("PUT", path, body={"exchange": "amq.topic",
                                                             "write": "(", "read": ".*"})
        self.assertEqual(status, 400, raw)
        status, _, raw, _ = self.api.call(
            "PUT", "/api/topic-permissions/%s/%s" % (quote("/"), quote(unique("nobody"))),
            body={"exchange": "amq.topic", "write": ".*", "read": ".*"})
        self.assertEqual(status, 400, raw)
        self.api_ok("DELETE", path, want=(204,))
        status, _, _, _ = self.api.call("GET", path)
        self.assertEqual(status, 404)

    def test_only_administrators(self):
        user = self.make_user(tags="management", permissions=(".*", ".*", ".*"))
        status, _ = self.as_user(user, "PUT", "/api/topic-permissions/%s/%s"
                                 % (quote("/"), quote(user)),
                                 {"exchange": "amq.topic", "write": ".*", "read": ".*"})
        self.assertEqual(status, 401)


@unittest.skipIf(EXTERNAL, "restarts warrend and drives warrenctl")
class TopicPermissionsDurableTest(unittest.TestCase):

    def test_survive_restart_and_warrenctl(self):
        broker = Broker(binary=os.environ.get("WARREND")).start()
        data_dir = broker.data_dir
        broker._own_dir = False  # kept for the second start
        try:
            http = broker.wait_listener("http")
            if WARRENCTL:
                r = subprocess.run([WARRENCTL, "--host", http[0], "--http-port", str(http[1]),
                                    "-q", "set_topic_permissions", "guest", "amq.topic",
                                    "^guest\\.", ".*"], capture_output=True, text=True,
                                   timeout=30)
                self.assertEqual(r.returncode, 0, r.stderr)
            else:
                Api(*http).call("PUT", "/api/topic-permissions/%2F/guest",
                                body={"exchange": "amq.topic", "write": "^guest\\.",
                                      "read": ".*"})
            broker.stop()
            broker = Broker(binary=os.environ.get("WARREND"), data_dir=data_dir).start()
            http = broker.wait_listener("http")
            if WARRENCTL:
                r = subprocess.run([WARRENCTL, "--host", http[0], "--http-port", str(http[1]),
                                    "-q", "--no-table-headers", "list_topic_permissions"],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(r.stdout, "guest\tamq.topic\t^guest\\.\t.*\n")
            conn = pika.BlockingConnection(pika.ConnectionParameters(broker.host, broker.port))
            try:
                ch = conn.channel()
                with self.assertRaises(pex.ChannelClosedByBroker) as caught:
                    ch.basic_publish("amq.topic", "other.x", b"x")
                    ch.queue_declare("", exclusive=True)  # the 403 arrives by then
                self.assertEqual(caught.exception.reply_text,
                                 refused("other.x", "amq.topic", "guest"))
            finally:
                close_quietly(conn)
            if WARRENCTL:
                r = subprocess.run([WARRENCTL, "--host", http[0], "--http-port", str(http[1]),
                                    "-q", "clear_topic_permissions", "guest"],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            broker.stop_quietly()
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
