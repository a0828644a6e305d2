"""STOMP test base: a broker per class (see harness.BrokerTestCase) plus its STOMP
port, raw-socket connections (stomp_raw) and stomp.py connections with a
listener that records what arrives and lets a test wait for it, boundedly.

With WARREN_TEST_BROKER=host:port (AMQP) and WARREN_TEST_STOMP=host:port the
suite runs against an already running broker. When that broker says it is
RabbitMQ (CONNECTED 'server' header), tests of Warren-only features (selectors,
frame size limits) are skipped, and the few places where RabbitMQ 3.10 is known
to answer differently from Warren's specification check RabbitMQ's answer instead
(see the uses of `self.rabbitmq`).
"""

import threading
import time

import pika
import stomp

import harness
from harness import BrokerTestCase, unique
from stomp_raw import RawStomp

CONNECT_TIMEOUT_S = 5.0


class Collector(stomp.ConnectionListener):
    """Records frames given to a stomp.py listener; waits are bounded."""

    def __init__(self):
        self.cond = threading.Condition()
        self.connected = None
        self.messages = []
        self.receipts = []
        self.errors = []
        self.heartbeats = 0
        self.disconnected = False
        self.heartbeat_timeouts = 0

    def _add(self, attr, value):
        with self.cond:
            getattr(self, attr).append(value)
            self.cond.notify_all()

    def on_connected(self, frame):
        with self.cond:
            self.connected = frame
            self.cond.notify_all()

    def on_message(self, frame):
        self._add("messages", frame)

    def on_receipt(self, frame):
        self._add("receipts", frame.headers.get("receipt-id"))

    def on_error(self, frame):
        self._add("errors", frame)

    def on_heartbeat(self):
        with self.cond:
            self.heartbeats += 1
            self.cond.notify_all()

    def on_heartbeat_timeout(self):
        with self.cond:
            self.heartbeat_timeouts += 1
            self.cond.notify_all()

    def on_disconnected(self):
        with self.cond:
            self.disconnected = True
            self.cond.notify_all()

    def wait(self, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate()
                left = deadline - time.monotonic()
                if value or left <= 0:
                    return value
                self.cond.wait(min(left, 0.1))

    def wait_messages(self, n, timeout=5.0):
        """At least n messages (returns the list, which may be shorter on timeout)."""
        self.wait(lambda: len(self.messages) >= n, timeout)
        with self.cond:
            return list(self.messages)

    def wait_receipt(self, rid, timeout=5.0):
        return self.wait(lambda: rid in self.receipts or self.errors, timeout) and \
            rid in self.receipts

    def bodies(self):
        with self.cond:
            return [m.body for m in self.messages]


def stop_quietly(conn):
    # Not conn.disconnect(): with a receipt, stomp.py then waits without limit.
    try:
        conn.transport.disconnect_socket()
    except Exception:  # cleanup only
        pass


class StompTestCase(BrokerTestCase):
    """One broker per class, reachable over AMQP (pika) and STOMP."""

    stomp_host = None
    stomp_port = None
    server = ""
    rabbitmq = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.stomp_host, cls.stomp_port = cls.broker.wait_listener("stomp")
            probe = RawStomp(cls.stomp_host, cls.stomp_port)
            try:
                frame = probe.connect("1.0,1.1,1.2")
            finally:
                probe.close()
            if frame.command != "CONNECTED":
                raise AssertionError("guest/guest CONNECT was refused: %r" % frame)
            cls.server = frame.header("server", "")
            cls.rabbitmq = cls.server.startswith("RabbitMQ/")
        except BaseException:
            cls.tearDownClass()
            raise
        cls._queues_to_delete = set()

    @classmethod
    def tearDownClass(cls):
        # On a shared (reference) broker, leave no queue behind.
        names = getattr(cls, "_queues_to_delete", None)
        if names and cls.broker is not None and cls.broker.running():
            try:
                conn = pika.BlockingConnection(pika.ConnectionParameters(
                    host=cls.host, port=cls.port, connection_attempts=1,
                    socket_timeout=5, stack_timeout=10,
                    credentials=pika.PlainCredentials("guest", "guest")))
                ch = conn.channel()
                for name in sorted(names):
                    try:
                        ch.queue_delete(name)
                    except Exception:  # already gone: the channel is reopened
                        ch = conn.channel()
                conn.close()
            except Exception:  # cleanup only
                pass
        super().tearDownClass()

    def skip_on_rabbitmq(self, why):
        if self.rabbitmq:
            self.skipTest("Warren only (%s): the broker is %s" % (why, self.server))

    # -- names -----------------------------------------------------------------
    def queue_name(self, prefix="stomp"):
        """A fresh queue name, deleted at the end of the class."""
        name = unique(prefix)
        type(self)._queues_to_delete.add(name)
        return name

    def delete_later(self, name):
        """Delete queue `name` at the end of the class."""
        type(self)._queues_to_delete.add(name)

    # -- raw connections -------------------------------------------------------
    def raw_unconnected(self):
        """A raw connection that has sent nothing yet (closed at cleanup)."""
        conn = RawStomp(self.stomp_host, self.stomp_port)
        self.addCleanup(conn.close)
        return conn

    def raw(self, version="1.2", login="guest", passcode="guest", **kw):
        """A raw connection that completed CONNECT (CONNECTED asserted)."""
        conn = self.raw_unconnected()
        frame = conn.connect(version, login=login, passcode=passcode, **kw)
        self.assertEqual(frame.command, "CONNECTED", "CONNECT refused: %r" % (frame,))
        return conn

    # -- stomp.py connections --------------------------------------------------
    def client(self, version="1.2", heartbeats=(0, 0), headers=None, auto_decode=True,
               connect=True, login="guest", passcode="guest"):
        """(connection, collector) for a stomp.py connection of the given version."""
        hp = [(self.stomp_host, self.stomp_port)]
        common = dict(host_and_ports=hp, reconnect_attempts_max=1, timeout=5,
                      auto_decode=auto_decode, try_loopback_connect=False)
        if version == "1.0":
            conn = stomp.Connection10(**common)
        elif version == "1.1":
            conn = stomp.Connection11(heartbeats=heartbeats, vhost="/", **common)
        else:
            conn = stomp.Connection12(heartbeats=heartbeats, vhost="/", **common)
        col = Collector()
        conn.set_listener("collector", col)
        self.addCleanup(stop_quietly, conn)
        if connect:
            # wait=False plus a bounded wait: stomp.py's own wait has no limit.
            conn.connect(login, passcode, wait=False, headers=headers or {})
            got = col.wait(lambda: col.connected or col.errors or col.disconnected,
                           CONNECT_TIMEOUT_S)
            self.assertIsNotNone(col.connected, "no CONNECTED within %.0f s (got %r, "
                                 "errors %r)" % (CONNECT_TIMEOUT_S, got, col.errors))
        return conn, col

    def receipt_of(self, conn, col, method, *args, **kw):
        """Call a stomp.py frame method with a fresh receipt id and wait for the RECEIPT."""
        rid = unique("rcpt")
        headers = dict(kw.pop("headers", None) or {})
        headers["receipt"] = rid
        method(*args, headers=headers, **kw)
        self.assertTrue(col.wait_receipt(rid), "no RECEIPT %s for %s; errors: %r"
                        % (rid, getattr(method, "__name__", method), col.errors))
        return rid

    def disconnect(self, conn, col):
        """DISCONNECT with a receipt: the RECEIPT comes, then the server closes."""
        rid = unique("bye")
        conn.send_frame("DISCONNECT", {"receipt": rid})
        self.assertTrue(col.wait_receipt(rid), "no RECEIPT for DISCONNECT; errors %r"
                        % col.errors)
        self.assertTrue(col.wait(lambda: col.disconnected),
                        "connection still open 5 s after DISCONNECT's RECEIPT")

    # -- pika --------------------------------------------------------------------
    def declare_stomp_queue(self, ch, name):
        """Declare from AMQP a queue as a STOMP /queue/ destination does (durable,
        not auto-delete, not exclusive), so both sides agree on its arguments."""
        self.delete_later(name)
        ch.queue_declare(queue=name, durable=True)

    def get_one(self, conn, ch, queue, timeout=5.0):
        return harness.get_one(conn, ch, queue, timeout, step=0.05)
