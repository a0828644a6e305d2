"""Shared helpers for the integration tests.

A test class derived from BrokerTestCase gets one broker for the whole class:
either a freshly started ``$WARREND`` on ephemeral loopback ports with its own
data directory, or, when ``WARREN_TEST_BROKER=host:port`` is set, an already
running broker at that loopback address (used to check the suite against a
reference broker). The STOMP tests also need WARREN_TEST_STOMP=host:port
for such a broker.
"""

import ipaddress
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
import uuid

import amqp
import pika

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0

# "... listening amqp 127.0.0.1:5672" (also used for stomp and http).
LISTENING_RE = re.compile(r"listening\s+(?P<proto>[A-Za-z0-9_-]+)\s+"
                          r"(?P<addr>\[[0-9A-Fa-f:.]+\]|[^\s:]+):(?P<port>\d+)")


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def unique(prefix):
    """A name that no other test (or earlier run on a shared broker) uses."""
    return "%s.%s" % (prefix, uuid.uuid4().hex)


class BrokerError(AssertionError):
    pass


class Broker:
    """A warrend process (or an external broker) the tests talk to."""

    def __init__(self, binary=None, external=None, extra_args=(), data_dir=None, env=None):
        self.binary = binary
        self.env = env               # variables added to warrend's environment
        self.external = external
        self.extra_args = list(extra_args)
        self.proc = None
        self.data_dir = data_dir      # given: kept after stop (restart tests)
        self._own_dir = data_dir is None
        self.host = None
        self.port = None
        self.listeners = {}          # proto -> (addr, port)
        self._log = []
        self._log_lock = threading.Lock()
        self._listening = threading.Condition(self._log_lock)
        self._reader = None
        self._eof = False

    # -- log ---------------------------------------------------------------
    def log_text(self):
        with self._log_lock:
            return "".join(self._log)

    def log_tail(self, max_chars=8000):
        text = self.log_text()
        if len(text) > max_chars:
            text = "...\n" + text[-max_chars:]
        return text

    def _drain(self, stream):
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace")
                with self._log_lock:
                    self._log.append(line)
                    m = LISTENING_RE.search(line)
                    if m:
                        self.listeners[m.group("proto").lower()] = (
                            m.group("addr").strip("[]"), int(m.group("port")))
                    self._listening.notify_all()
        finally:
            with self._log_lock:
                self._eof = True
                self._listening.notify_all()
            stream.close()

    # -- lifecycle ---------------------------------------------------------
    def start(self):
        if self.external:
            host, _, port = self.external.rpartition(":")
            host = host.strip("[]")
            if not host or not port.isdigit():
                raise BrokerError("WARREN_TEST_BROKER must be host:port, got %r"
                                  % self.external)
            if not is_loopback(host):
                raise BrokerError("WARREN_TEST_BROKER must be a loopback address, "
                                  "got %r" % host)
            self.host, self.port = host, int(port)
            return self

        if not self.binary:
            raise BrokerError("WARREND is not set: it must name the warrend binary")
        if not os.access(self.binary, os.X_OK):
            raise BrokerError("WARREND=%r is not an executable file" % self.binary)
        if self.data_dir is None:
            self.data_dir = tempfile.mkdtemp(prefix="warren-it-")
        cmd = [self.binary, "--amqp-port", "0", "--stomp-port", "0",
               "--http-port", "0", "--data-dir", self.data_dir,
               "--log-level", "info", *self.extra_args]
        env = None
        if self.env:
            env = dict(os.environ)
            env.update(self.env)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._drain,
                                        args=(self.proc.stderr,), daemon=True)
        self._reader.start()

        deadline = time.monotonic() + START_TIMEOUT_S
        with self._log_lock:
            while "amqp" not in self.listeners:
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    break
                self._listening.wait(min(left, 0.5))
            found = self.listeners.get("amqp")
        if found is None:
            rc = self.proc.poll()
            if rc is None and self._eof:  # its stderr closed: it is exiting, take its code
                try:
                    rc = self.proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    pass
            self._kill()
            why = ("exited with code %s" % rc if rc is not None
                   else "printed no 'listening amqp <addr>:<port>' line within %.0f s"
                   % START_TIMEOUT_S)
            self._cleanup_dir()
            raise BrokerError("warrend %s: %s\n--- warrend log ---\n%s"
                              % (why, " ".join(cmd), self.log_tail()))
        addr, port = found
        if addr in ("0.0.0.0", "::", ""):
            addr = "127.0.0.1"
        if not is_loopback(addr):
            self.stop_quietly()
            raise BrokerError("warrend listens on non-loopback address %r" % addr)
        self.host, self.port = addr, port
        return self

    def wait_listener(self, proto, timeout=START_TIMEOUT_S):
        """(host, port) of the listener for another protocol ("stomp", "http").

        For an external broker it comes from WARREN_TEST_<PROTO>=host:port
        (e.g. WARREN_TEST_STOMP); for a started warrend, from its
        'listening <proto> <addr>:<port>' log line, waited for up to timeout.
        """
        proto = proto.lower()
        if self.external:
            var = "WARREN_TEST_%s" % proto.upper()
            value = os.environ.get(var)
            if not value:
                raise BrokerError("WARREN_TEST_BROKER is set but %s is not: it must give "
                                  "the external broker's %s port as host:port" % (var, proto))
            host, _, port = value.rpartition(":")
            host = host.strip("[]")
            if not host or not port.isdigit():
                raise BrokerError("%s must be host:port, got %r" % (var, value))
            if not is_loopback(host):
                raise BrokerError("%s must be a loopback address, got %r" % (var, host))
            return host, int(port)
        deadline = time.monotonic() + timeout
        with self._log_lock:
            while proto not in self.listeners:
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    break
                self._listening.wait(min(left, 0.5))
            found = self.listeners.get(proto)
        if found is None:
            raise BrokerError("warrend printed no 'listening %s <addr>:<port>' line within "
                              "%.0f s\n--- warrend log ---\n%s"
                              % (proto, timeout, self.log_tail()))
        addr, port = found
        if addr in ("0.0.0.0", "::", ""):
            addr = "127.0.0.1"
        if not is_loopback(addr):
            raise BrokerError("warrend listens for %s on non-loopback address %r"
                              % (proto, addr))
        return addr, port

    def running(self):
        return self.proc is None or self.proc.poll() is None

    def check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise BrokerError("warrend died (exit code %s)\n--- warrend log ---\n%s"
                              % (self.proc.returncode, self.log_tail()))

    def stop(self):
        """SIGTERM, wait, and require a clean exit (code 0)."""
        if self.proc is None:
            return
        try:
            if self.proc.poll() is not None:
                raise BrokerError("warrend was already dead at shutdown (exit code %s)"
                                  "\n--- warrend log ---\n%s"
                                  % (self.proc.returncode, self.log_tail()))
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._kill()
                raise BrokerError("warrend did not exit within %.0f s of SIGTERM"
                                  "\n--- warrend log ---\n%s"
                                  % (STOP_TIMEOUT_S, self.log_tail()))
            if self._reader is not None:
                self._reader.join(5)
            if rc != 0:
                raise BrokerError("warrend exited with code %s after SIGTERM"
                                  "\n--- warrend log ---\n%s" % (rc, self.log_tail()))
        finally:
            self.proc = None
            self._cleanup_dir()

    def stop_quietly(self):
        try:
            self.stop()
        except BrokerError:
            pass

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def _cleanup_dir(self):
        if self.data_dir and self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None


def broker_from_env(extra_args=()):
    return Broker(binary=os.environ.get("WARREND"),
                  external=os.environ.get("WARREN_TEST_BROKER") or None,
                  extra_args=extra_args)


def write_config(cls, text):
    """Writes `text` to a warren.conf in a temporary folder removed after the test class
    `cls`; returns its path (for ``--config``)."""
    conf_dir = tempfile.mkdtemp(prefix="warren-conf-")
    cls.addClassCleanup(shutil.rmtree, conf_dir, True)
    path = os.path.join(conf_dir, "warren.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def wait_until(predicate, timeout=5.0, interval=0.05):
    """Poll predicate() until it returns a truthy value or timeout passes.

    Returns the last value (falsy on timeout).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def message_count(ch, queue):
    """The queue's ready messages, from a passive declare."""
    return ch.queue_declare(queue=queue, passive=True).method.message_count


def wait_count(ch, queue, n, timeout=5.0):
    """Polls message_count until it is n; returns the last count seen."""
    last = [None]

    def check():
        last[0] = message_count(ch, queue)
        return last[0] == n
    wait_until(check, timeout=timeout, interval=0.02)
    return last[0]


def get_all(ch, queue, limit=100):
    """Bodies of the ready messages in queue (basic.get with auto-ack), at most limit."""
    bodies = []
    for _ in range(limit):
        method, _props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            break
        bodies.append(body)
    return bodies


def get_one(conn, ch, queue, timeout=5.0, auto_ack=True, step=0.02):
    """basic.get retried until a message comes: (method, properties, body), or None after
    timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        method, props, body = ch.basic_get(queue, auto_ack=auto_ack)
        if method is not None:
            return method, props, body
        if time.monotonic() >= deadline:
            return None
        conn.process_data_events(time_limit=step)


def close_amqp_quietly(conn):
    try:
        conn.close()
    except Exception:  # cleanup only
        pass


def close_quietly(conn):
    try:
        if conn.is_open:
            conn.close()
    except Exception:  # cleanup only; the test itself already checked what matters
        pass


class RestartCase(unittest.TestCase):
    """A warrend of each test's own, on a data directory of the test's own, to stop and start
    again on it (start_broker; self.running is the one running)."""

    data_prefix = "warren-restart-"

    def setUp(self):
        super().setUp()
        self.data = tempfile.mkdtemp(prefix=self.data_prefix)
        self.addCleanup(shutil.rmtree, self.data, True)
        self.running = None

    def tearDown(self):
        if self.running is not None:
            self.running.stop_quietly()
        super().tearDown()

    def start_broker(self, *extra_args):
        self.running = Broker(binary=os.environ.get("WARREND"), data_dir=self.data,
                              extra_args=extra_args).start()
        return self.running

    def connect_running(self):
        """A pika connection to the running warrend as guest, closed when the test ends."""
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            host=self.running.host, port=self.running.port, connection_attempts=1,
            socket_timeout=5, stack_timeout=10))
        self.addCleanup(close_quietly, conn)
        return conn


class BrokerTestCase(unittest.TestCase):
    """One broker per test class; helpers to open pika connections."""

    broker = None
    broker_args = ()  # extra warrend flags for this class's broker

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.broker = broker_from_env(cls.broker_args).start()
        cls.host, cls.port = cls.broker.host, cls.broker.port

    @classmethod
    def tearDownClass(cls):
        broker, cls.broker = cls.broker, None
        if broker is not None:
            broker.stop()
        super().tearDownClass()

    def run(self, result=None):
        before = (len(result.failures) + len(result.errors)) if result else 0
        out = super().run(result)
        if result is not None and self.broker is not None and self.broker.proc:
            if len(result.failures) + len(result.errors) > before:
                sys.stderr.write("\n--- warrend log (tail) after %s ---\n%s\n"
                                 % (self.id(), self.broker.log_tail(4000)))
        return out

    def tearDown(self):
        # Runs before cleanups; a crashed broker must fail the test that crashed it.
        self.broker.check_alive()
        super().tearDown()

    # -- pika helpers --------------------------------------------------------
    def params(self, **kw):
        kw.setdefault("credentials", pika.PlainCredentials("guest", "guest"))
        kw.setdefault("connection_attempts", 1)
        kw.setdefault("socket_timeout", 5)
        kw.setdefault("stack_timeout", 10)
        kw.setdefault("blocked_connection_timeout", 10)
        return pika.ConnectionParameters(host=self.host, port=self.port, **kw)

    def connect(self, **kw):
        conn = pika.BlockingConnection(self.params(**kw))
        self.addCleanup(close_quietly, conn)
        return conn

    def channel(self, **kw):
        return self.connect(**kw).channel()

    def amqp_connect(self, **kw):
        """A python3-amqp (py-amqp) connection as guest, closed when the test ends."""
        conn = amqp.Connection(host="%s:%d" % (self.host, self.port), userid="guest",
                               password="guest", virtual_host="/", connect_timeout=5, **kw)
        conn.connect()
        self.addCleanup(close_amqp_quietly, conn)
        return conn

    def count(self, ch, queue):
        return message_count(ch, queue)

    def wait_count(self, ch, queue, n, timeout=5.0):
        return wait_count(ch, queue, n, timeout)

    def delete_quietly(self, name, vhost="/"):
        """Deletes a shared (non-exclusive) queue, if it is still there."""
        conn = pika.BlockingConnection(self.params(virtual_host=vhost))
        try:
            conn.channel().queue_delete(name)
        except pika.exceptions.ChannelClosedByBroker:
            pass
        finally:
            close_quietly(conn)

    def exists(self, conn, name):
        """Whether queue `name` exists (a passive declare on a channel of its own: a 404
        closes only that one)."""
        ch = conn.channel()
        try:
            ch.queue_declare(queue=name, passive=True)
        except pika.exceptions.ChannelClosedByBroker as e:
            self.assertEqual(e.reply_code, 404, e)
            return False
        ch.close()
        return True

    def queue_later(self, name):
        """Deletes queue `name` (over a connection of its own) when the test ends."""
        def delete():
            conn = self.connect()
            try:
                conn.channel().queue_delete(name)
            finally:
                close_quietly(conn)
        self.addCleanup(delete)
        return name

    def pump(self, conn, until, timeout=5.0, step=0.05):
        """Process events on conn until until() is truthy or timeout passes."""
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                return until()
            conn.process_data_events(time_limit=min(step, left))
        return True

    def idle(self, conn, seconds):
        """Keep processing events on conn for a fixed time (used for 'nothing more
        arrives' checks: the assertion follows, the wait itself asserts nothing)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            conn.process_data_events(time_limit=min(0.1, left))

    def assert_broker_usable(self):
        """An independent client can still declare, publish and consume."""
        conn = self.connect()
        ch = conn.channel()
        ch.confirm_delivery()
        q = ch.queue_declare(queue=unique("health"), exclusive=True).method.queue
        ch.basic_publish(exchange="", routing_key=q, body=b"still alive")
        got = []
        ch.basic_consume(q, lambda c, m, p, b: (got.append(b), c.basic_ack(m.delivery_tag)))
        self.assertTrue(self.pump(conn, lambda: got, timeout=5),
                        "health-check consumer received nothing")
        self.assertEqual(got, [b"still alive"])
        conn.close()


def netns_id(pid="self"):
    """The inode of a process's network namespace."""
    return os.stat("/proc/%s/ns/net" % pid).st_ino


def namespace_prefix(needs=("ip", "unshare"), nested=False):
    """The command prefix that runs a program in a new network namespace of its own (unshare -n
    as root, else unshare -rn), checked by bringing its loopback up there (with `nested`, in a
    further namespace made inside it); raises unittest.SkipTest when this machine cannot."""
    for command in needs:
        if shutil.which(command) is None:
            raise unittest.SkipTest("needs %s for network namespaces" % command)
    prefix = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    probe = prefix + (["unshare", "-n"] if nested else []) + ["ip", "link", "set", "lo", "up"]
    try:
        r = subprocess.run(probe, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise unittest.SkipTest("cannot make a network namespace: %s" % exc)
    if r.returncode != 0:
        raise unittest.SkipTest("cannot make a network namespace (%s): %s"
                                % (" ".join(probe), r.stdout.strip()))
    return prefix
