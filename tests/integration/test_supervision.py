"""Supervision tree (issue "Supervision tree"): actors that fail are restarted by their
supervisor, and a supervisor that sees too many failures gives up and lets its parent decide.

Failures are injected through the debug HTTP endpoints, which exist only when warrend runs with
`--fault-injection` (config `debug.fault_injection = true`):

    POST /api/debug/crash/queue/{vhost}/{name}      POST /api/debug/crash/exchange/{vhost}/{name}
    POST /api/debug/crash/vhost/{vhost}             POST /api/debug/crash/connection/{name}

and through `warrenctl crash queue|exchange|vhost|connection NAME`. Covered here:

- a durable queue crashing under load (a confirming publisher, a manual-ack consumer and an
  unrelated client on another queue): the consumer gets basic.cancel and consumes again, no
  client call blocks, every confirmed message is delivered in the end, the other client never
  notices;
- the same queue crashing more often than `--max-restarts` within `--restart-period-ms`: the
  vhost gives up and is restarted from disk (connections closed with 320, durable things and
  persistent messages back, transient ones gone), restarts counted in /metrics;
- an exchange crash: bindings (to queues and to another exchange) unchanged, routing works, a
  publisher on an open channel keeps publishing;
- a connection actor crash: 541 for that connection only, its exclusive queue removed;
- a durable queue crashing under a confirming publisher that goes through a direct exchange:
  every publish returns or is nacked, the publisher goes on, every confirmed message is
  delivered in the end;
- STOMP: a queue crash ends that queue's subscriptions (ERROR, then close) and nothing else,
  its persistent messages come back; a STOMP connection actor crash (ERROR "Internal error",
  then close) for that connection only;
- a transient queue crash: its messages are gone, the queue is back under the same name and
  arguments, its consumer gets basic.cancel;
- fault injection off by default (403, warrenctl fails), on through the config file too;
- warrenctl crash round trips, and 404 for objects that do not exist;
- the root supervisor giving up: warrend logs `supervision tree gave up` and exits with 70.

Every wait is a poll with a deadline; client threads are daemons and are joined with a timeout,
so a hang fails the test instead of stalling the suite.
"""

import os
import socket
import subprocess
import threading
import time
import unittest
import urllib.error

import pika
import pika.exceptions as pex

from harness import (Broker, BrokerTestCase, close_quietly, unique, wait_until,
                     write_config)
from mgmt_support import Api, WARRENCTL, quote, sample, warrenctl
from stomp_raw import RawStomp, StompClosed

EXTERNAL = os.environ.get("WARREN_TEST_BROKER")
WARREND = os.environ.get("WARREND")

PERSISTENT = pika.BasicProperties(delivery_mode=2)
TRANSIENT = pika.BasicProperties(delivery_mode=1)

# No single client call (publish with confirm, consume, get, an HTTP request) may take longer
# than this while actors crash and restart around it.
CALL_BOUND_S = 10.0
RESTART_TIMEOUT_S = 15.0
# Tests 8-11 wait this long for what must come (a frame, a cancel, a thread's end) and count a
# single call that takes longer as hung. Generous on purpose: other jobs may share the CPUs,
# and none of it is a speed requirement.
WAIT_S = 30.0
RESTARTS_METRIC = "warren_actor_restarts_total"


class Timings:
    """What a client thread saw: the slowest call and any unexpected exception."""

    def __init__(self, who):
        self.who = who
        self.lock = threading.Lock()
        self.slowest = 0.0
        self.slowest_what = None
        self.errors = []

    def call(self, what, fn, *args, **kw):
        t0 = time.monotonic()
        try:
            return fn(*args, **kw)
        finally:
            spent = time.monotonic() - t0
            with self.lock:
                if spent > self.slowest:
                    self.slowest, self.slowest_what = spent, what

    def error(self, what, exc):
        with self.lock:
            self.errors.append("%s: %s: %r" % (self.who, what, exc))


def restarts(api, actor="queue"):
    value = sample(api.metrics(), RESTARTS_METRIC, actor=actor)
    return 0.0 if value is None else value


def confirming_publisher(params, exchange, routing_key, prefix, timings, lock, counts,
                         confirmed, nacked, max_messages, stop, deadline):
    """Body of a client thread: publishes persistent messages `prefix` + a six-digit number
    (from 0) with publisher confirms, one at a time, until `max_messages`, `stop` or the
    monotonic `deadline`. Each confirmed body goes into `confirmed`, each nacked one into
    `nacked`, and counts["published"] says how many were published, all under `lock`; where
    counts has the key "in_call_since", it holds when the publish under way began (None
    between publishes). A nack is no error; any exception ends the thread and is recorded in
    `timings`."""
    conn = None
    try:
        conn = pika.BlockingConnection(params())
        ch = conn.channel()
        ch.confirm_delivery()
        track_call = "in_call_since" in counts
        i = 0
        while i < max_messages and not stop.is_set() and time.monotonic() < deadline:
            body = prefix + b"%06d" % i
            if track_call:
                with lock:
                    counts["in_call_since"] = time.monotonic()
            try:
                timings.call("basic_publish #%d" % i, ch.basic_publish, exchange, routing_key,
                             body, PERSISTENT)
                with lock:
                    confirmed.add(body)
            except pex.NackError:
                with lock:
                    nacked.add(body)
            i += 1
            with lock:
                counts["published"] = i
                if track_call:
                    counts["in_call_since"] = None
    except Exception as e:  # any failure other than a nack is the broker's fault
        timings.error("publishing", e)
    finally:
        if conn is not None:
            close_quietly(conn)


def resubscribing_consumer(params, queue, timings, lock, counts, consumed, start, stop,
                           cancelled, resubscribed, slow_while=lambda: True):
    """Body of a client thread: a manual-ack consumer (prefetch 50) of `queue` that waits for
    `start`, then consumes until `stop`. On basic.cancel it sets `cancelled` and consumes
    again, on a new channel while basic.consume gets 404 (the queue is not back yet), for at
    most RESTART_TIMEOUT_S; every successful basic.consume counts in counts["consumes"] and
    the second one sets `resubscribed`. Each delivery goes into `consumed` and
    counts["consumed"] (and counts["redelivered"] where counts has that key, if redelivered),
    under `lock`; the consumer sleeps 1 ms before the ack while `slow_while()` is true, slower
    than the publisher so that a backlog builds up. `params` is called for the connection
    parameters; any exception ends the thread and is recorded in `timings`."""
    conn = None
    try:
        conn = pika.BlockingConnection(params())
        cstate = {"ch": None, "need": True, "since": None}
        while not start.is_set() and not stop.is_set():
            conn.process_data_events(time_limit=0.05)

        def on_message(ch, method, props, body):
            with lock:
                consumed.add(body)
                counts["consumed"] += 1
                if method.redelivered and "redelivered" in counts:
                    counts["redelivered"] += 1
            if slow_while():
                time.sleep(0.001)  # slower than the publisher: a backlog at the crash
            ch.basic_ack(method.delivery_tag)

        def on_cancel(frame):
            cancelled.set()
            cstate["need"] = True

        def new_channel():
            ch = timings.call("channel", conn.channel)
            ch.basic_qos(prefetch_count=50)
            ch.add_on_cancel_callback(on_cancel)
            cstate["ch"] = ch

        new_channel()
        while not stop.is_set():
            if cstate["need"]:
                try:
                    timings.call("basic_consume", cstate["ch"].basic_consume, queue, on_message)
                    cstate["need"], cstate["since"] = False, None
                    with lock:
                        counts["consumes"] += 1
                        if counts["consumes"] > 1:
                            resubscribed.set()
                except pex.ChannelClosedByBroker as e:
                    # The queue may not be back yet: 404 until its restart is done.
                    if e.reply_code != 404:
                        raise
                    cstate["since"] = cstate["since"] or time.monotonic()
                    if time.monotonic() - cstate["since"] > RESTART_TIMEOUT_S:
                        raise
                    time.sleep(0.05)
                    new_channel()
                    continue
            timings.call("process_data_events", conn.process_data_events, time_limit=0.1)
    except Exception as e:
        timings.error("consuming", e)
    finally:
        if conn is not None:
            close_quietly(conn)


class SupervisionCase(BrokerTestCase):
    """Helpers shared by the classes that run a warrend of their own."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.http_host, cls.http_port = cls.broker.wait_listener("http")
        cls.api = Api(cls.http_host, cls.http_port)

    # -- log ---------------------------------------------------------------
    def log_lines(self, *needles):
        return [l for l in self.broker.log_text().splitlines() if all(n in l for n in needles)]

    def wait_log(self, *needles, count=1, timeout=RESTART_TIMEOUT_S):
        ok = wait_until(lambda: len(self.log_lines(*needles)) >= count, timeout, 0.05)
        self.assertTrue(ok, "expected %d log line(s) containing %r within %.0f s\n"
                        "--- warrend log ---\n%s"
                        % (count, needles, timeout, self.broker.log_tail(6000)))

    def queue_restarted_lines(self, q, vhost="/"):
        # Either one line "queue 'q' in vhost '/' crashed ..., restarted" or a separate
        # "... restarted" line naming the queue: both count.
        return self.log_lines("queue '%s'" % q, "vhost '%s'" % vhost, "restarted")

    # -- fault injection ---------------------------------------------------
    def crash_path(self, kind, *names):
        return "/api/debug/crash/%s/%s" % (kind, "/".join(quote(n) for n in names))

    def crash(self, kind, *names, retry_for=RESTART_TIMEOUT_S):
        """POST a crash and require 204. A 404 (the object is itself being restarted) or an
        unreachable listener is retried until retry_for has passed."""
        path = self.crash_path(kind, *names)
        deadline = time.monotonic() + retry_for
        while True:
            t0 = time.monotonic()
            try:
                status, body, raw, _ = self.api.call("POST", path, timeout=CALL_BOUND_S * 2)
            except (urllib.error.URLError, OSError) as e:
                status, raw = None, repr(e)
            self.assertLess(time.monotonic() - t0, CALL_BOUND_S * 2, "POST %s hung" % path)
            if status == 204:
                return
            if status not in (None, 404) or time.monotonic() >= deadline:
                self.fail("POST %s: %s %r\n--- warrend log ---\n%s"
                          % (path, status, raw, self.broker.log_tail(4000)))
            time.sleep(0.1)

    # -- clients -------------------------------------------------------------
    def connect_retry(self, timeout=RESTART_TIMEOUT_S, **kw):
        """A new connection, retried while the vhost is being restarted."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.connect(**kw)
            except pex.AMQPConnectionError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def expect_closed_by_broker(self, conn, code, timeout=10):
        with self.assertRaises(pex.ConnectionClosedByBroker,
                               msg="connection not closed by the broker within %d s" % timeout
                               ) as ctx:
            self.pump(conn, lambda: False, timeout=timeout)
        self.assertEqual(ctx.exception.reply_code, code, ctx.exception.reply_text)
        return ctx.exception

    def queue_exists(self, name, vhost="/"):
        return self.api.call("GET", "/api/queues/%s/%s" % (quote(vhost), quote(name)))[0] == 200

    def connection_name(self, client_name, exclusive_queue=None, timeout=10):
        """The API's name of the connection that set client property connection_name, found
        in GET /api/connections (client_properties / user_provided_name, as RabbitMQ shows
        them), or else as the owner of one of its exclusive queues."""
        found = {}

        def look():
            for c in self.api.get("/api/connections"):
                props = c.get("client_properties") or {}
                if client_name in (props.get("connection_name"), c.get("user_provided_name")):
                    found["name"] = c["name"]
                    return True
            if exclusive_queue:
                status, q, _, _ = self.api.call(
                    "GET", "/api/queues/%%2F/%s" % quote(exclusive_queue))
                owner = (q or {}).get("owner_pid_details") or {}
                if status == 200 and owner.get("name"):
                    found["name"] = owner["name"]
                    return True
            return False
        self.assertTrue(wait_until(look, timeout, 0.1),
                        "connection %r not in %r" % (client_name,
                                                     self.api.get("/api/connections")))
        return found["name"]

    def message_count(self, conn, queue):
        """The queue's message count by a passive declare on a new channel; None while the
        queue does not exist (404)."""
        try:
            ch = conn.channel()
            n = ch.queue_declare(queue, passive=True).method.message_count
            ch.close()
            return n
        except pex.ChannelClosedByBroker as e:
            if e.reply_code != 404:
                raise
            return None

    def bindings_of(self, names, vhost="/"):
        out = set()
        for b in self.api.get("/api/bindings/%s" % quote(vhost)):
            if b["source"] in names or b["destination"] in names:
                out.add((b["source"], b["destination"], b["destination_type"],
                         b["routing_key"], repr(sorted((b.get("arguments") or {}).items()))))
        return out

    # -- STOMP (raw sockets: every read has a deadline) ------------------------
    def stomp(self):
        """A raw STOMP 1.2 connection that completed CONNECT (closed at cleanup)."""
        host, port = self.broker.wait_listener("stomp")
        conn = RawStomp(host, port, timeout=WAIT_S)
        self.addCleanup(conn.close)
        frame = conn.connect("1.2", timeout=WAIT_S)
        self.assertEqual(frame.command, "CONNECTED", "CONNECT refused: %r" % (frame,))
        return conn

    def stomp_connection_name(self, conn, timeout=WAIT_S):
        """The API's name of a STOMP connection: the entry of GET /api/connections whose
        protocol says STOMP and whose peer_port is the client socket's own port."""
        port = conn.sock.getsockname()[1]
        found = {}

        def look():
            for c in self.api.get("/api/connections"):
                if "STOMP" in (c.get("protocol") or "") and c.get("peer_port") == port:
                    found["name"] = c["name"]
                    return True
            return False
        self.assertTrue(wait_until(look, timeout, 0.1),
                        "no STOMP connection from port %d in %r"
                        % (port, self.api.get("/api/connections")))
        return found["name"]

    def expect_stomp_error_and_close(self, conn, timeout=WAIT_S):
        """Read until an ERROR frame (MESSAGE frames before it are skipped), then require the
        server to close the connection; the ERROR frame is returned."""
        deadline, skipped = time.monotonic() + timeout, []
        while True:
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, "no ERROR frame within %d s (skipped %r)"
                               % (timeout, skipped))
            try:
                frame = conn.poll_frame(left)
            except StompClosed as e:
                self.fail("closed without an ERROR frame (skipped %r): %s" % (skipped, e))
            if frame is None:
                continue
            if frame.command == "ERROR":
                break
            skipped.append(frame.command)
        self.assertTrue(conn.wait_closed(max(1.0, deadline - time.monotonic())),
                        "connection still open after the ERROR frame %r" % (frame,))
        return frame


@unittest.skipIf(EXTERNAL, "needs warrend's fault injection")
class CrashAndRestartTest(SupervisionCase):
    """One broker with fault injection and a generous intensity, so that the crashes of the
    tests in this class never add up to an escalation."""

    broker_args = ("--fault-injection", "--max-restarts", "100", "--restart-period-ms", "10000")

    # 1 -------------------------------------------------------------------------
    def test_durable_queue_crash_under_load_loses_no_confirmed_message(self):
        q, other = unique("sup.load"), unique("sup.bystander")
        setup = self.connect().channel()
        setup.queue_declare(q, durable=True)

        lock = threading.Lock()
        confirmed, nacked, consumed = set(), set(), set()
        counts = {"published": 0, "consumed": 0, "redelivered": 0, "consumes": 0,
                  "bystander_ok": 0}
        crash_at = {}
        cancelled, resubscribed = threading.Event(), threading.Event()
        start_consuming = threading.Event()
        stop_pub, stop_cons, stop_by = threading.Event(), threading.Event(), threading.Event()
        round_trips = []  # (start, end) of each bystander round trip
        pub_t, cons_t, by_t = Timings("publisher"), Timings("consumer"), Timings("bystander")
        max_messages, run_deadline = 3000, time.monotonic() + 120

        def publisher():
            confirming_publisher(self.params, "", q, b"m-", pub_t, lock, counts, confirmed,
                                 nacked, max_messages, stop_pub, run_deadline)

        def consumer():
            resubscribing_consumer(self.params, q, cons_t, lock, counts, consumed,
                                   start_consuming, stop_cons, cancelled, resubscribed)

        def bystander():
            conn = None
            try:
                conn = pika.BlockingConnection(self.params())
                ch = conn.channel()
                ch.confirm_delivery()
                ch.queue_declare(other, exclusive=True)
                n = 0
                while not stop_by.is_set() and time.monotonic() < run_deadline:
                    body = b"rt-%d" % n
                    t0 = time.monotonic()
                    by_t.call("basic_publish", ch.basic_publish, "", other, body)
                    got = None
                    while got is None and time.monotonic() - t0 < CALL_BOUND_S:
                        _, _, got = by_t.call("basic_get", ch.basic_get, other, auto_ack=True)
                    if got != body:
                        raise AssertionError("round trip %d: got %r" % (n, got))
                    round_trips.append((t0, time.monotonic()))
                    n += 1
                    with lock:
                        counts["bystander_ok"] = n
            except Exception as e:
                by_t.error("round trip", e)
            finally:
                if conn is not None:
                    close_quietly(conn)

        threads = [threading.Thread(target=f, daemon=True, name=f.__name__)
                   for f in (publisher, consumer, bystander)]
        for t in threads:
            t.start()

        def stop_all():
            stop_pub.set()
            stop_cons.set()
            stop_by.set()
        self.addCleanup(stop_all)

        def snapshot():
            with lock:
                return dict(counts), len(confirmed)

        # A backlog first (the consumer starts late and is slower than the publisher), then
        # the crash mid-way: the store holds ready messages, the consumer has some unacked.
        self.assertTrue(wait_until(lambda: snapshot()[1] >= 500, 60, 0.02),
                        "publisher too slow: %r %r" % (snapshot(), pub_t.errors))
        start_consuming.set()
        self.assertTrue(wait_until(lambda: (lambda c: c[1] >= 800 and c[0]["consumed"] >= 100
                                            and c[0]["bystander_ok"] >= 10)(snapshot()),
                                   60, 0.02),
                        "no traffic before the crash: %r %r %r"
                        % (snapshot(), pub_t.errors, cons_t.errors))
        crash_at["t"] = time.monotonic()
        crash_at["published"] = snapshot()[0]["published"]
        self.crash("queue", "/", q, retry_for=0)

        # The consumer is told, the queue is restarted, the consumer consumes again.
        self.assertTrue(cancelled.wait(10), "the consumer got no basic.cancel after the crash")
        self.wait_log("queue '%s' in vhost '/' crashed" % q)
        self.assertTrue(wait_until(lambda: self.queue_restarted_lines(q), RESTART_TIMEOUT_S),
                        "no 'restarted' line for %s\n%s" % (q, self.broker.log_tail(4000)))
        restarted_at = time.monotonic()
        self.assertTrue(resubscribed.wait(RESTART_TIMEOUT_S),
                        "the consumer could not consume again: %r" % cons_t.errors)

        # The publisher goes on after the restart: a few hundred more, then it stops.
        self.assertTrue(wait_until(
            lambda: snapshot()[0]["published"] >= min(max_messages, crash_at["published"] + 300)
            or not threads[0].is_alive(), 25, 0.05),
            "the publisher stalled after the crash: %r" % (snapshot(),))
        stop_pub.set()
        threads[0].join(CALL_BOUND_S * 2)
        self.assertFalse(threads[0].is_alive(), "publisher hung in basic_publish")
        # The bystander ran through the whole crash window and a second past the restart.
        self.assertTrue(wait_until(lambda: round_trips and round_trips[-1][0] > restarted_at + 1,
                                   10, 0.05), "bystander stalled after the restart")
        stop_by.set()
        threads[2].join(CALL_BOUND_S * 2)
        self.assertFalse(threads[2].is_alive(), "bystander hung")

        # Drain: every confirmed message shows up (redelivered ones count once).
        with lock:
            want = set(confirmed)

        def missing():
            with lock:
                return want - consumed
        self.assertTrue(wait_until(lambda: not missing(), 30, 0.1),
                        "confirmed but never delivered: %d of %d, e.g. %r (nacked %d)"
                        % (len(missing()), len(want), sorted(missing())[:5], len(nacked)))
        stop_cons.set()
        threads[1].join(CALL_BOUND_S * 2)
        self.assertFalse(threads[1].is_alive(), "consumer hung")

        for t in (pub_t, cons_t, by_t):
            self.assertEqual(t.errors, [], "%s failed" % t.who)
            self.assertLess(t.slowest, CALL_BOUND_S, "%s blocked %.1f s in %s"
                            % (t.who, t.slowest, t.slowest_what))
        after_crash = [b for b in want if int(b[2:]) >= crash_at["published"]]
        self.assertTrue(after_crash, "nothing was confirmed after the crash")
        window = [rt for rt in round_trips if crash_at["t"] <= rt[0] <= restarted_at + 1]
        self.assertTrue(window, "no bystander round trip during the crash window")
        # The restarted queue is still the durable queue the API lists.
        self.assertTrue(self.api.get("/api/queues/%%2F/%s" % quote(q))["durable"])

    # 3 -------------------------------------------------------------------------
    def test_exchange_crash_keeps_bindings_and_routing(self):
        x, x2 = unique("sup.topic"), unique("sup.fan")
        q1, q2 = unique("sup.q1"), unique("sup.q2")
        names = {x, x2, q1, q2}
        conn = self.connect()
        ch = conn.channel()
        ch.exchange_declare(x, "topic", durable=True)
        ch.exchange_declare(x2, "fanout")
        ch.queue_declare(q1, durable=True)
        ch.queue_declare(q2)
        ch.queue_bind(q1, x, "a.*")
        ch.queue_bind(q1, x, "b.#")
        ch.queue_bind(q2, x, "c.*")
        ch.exchange_bind(x2, x, "d.#")
        ch.queue_bind(q2, x2, "")
        before = self.bindings_of(names)
        self.assertEqual(len([b for b in before if b[0] in names]), 5, before)

        # A publisher whose channel stays open across the crash.
        pub = self.connect()
        pch = pub.channel()
        pch.confirm_delivery()
        pch.basic_publish(x, "a.before", b"before", PERSISTENT, mandatory=True)

        self.crash("exchange", "/", x, retry_for=0)
        self.wait_log("exchange '%s' in vhost '/' crashed" % x)
        self.assertTrue(wait_until(lambda: self.bindings_of(names) == before, 10, 0.1),
                        "bindings changed: before %r\nafter %r" % (before,
                                                                  self.bindings_of(names)))
        self.assertEqual(self.api.get("/api/exchanges/%%2F/%s" % quote(x))["type"], "topic")

        # The open publisher: its first publishes may meet the restart (a nack is allowed
        # then), after that every publish is routed and confirmed.
        deadline, first = time.monotonic() + RESTART_TIMEOUT_S, None
        while first is None:
            t0 = time.monotonic()
            try:
                pch.basic_publish(x, "a.after", b"after-0", PERSISTENT, mandatory=True)
                first = b"after-0"
            except (pex.NackError, pex.UnroutableError):
                self.assertLess(time.monotonic(), deadline, "publisher never recovered")
                time.sleep(0.1)
            self.assertLess(time.monotonic() - t0, CALL_BOUND_S, "publish blocked")
        for i in range(1, 21):
            t0 = time.monotonic()
            pch.basic_publish(x, "b.after.%d" % i, b"after-%d" % i, PERSISTENT, mandatory=True)
            self.assertLess(time.monotonic() - t0, CALL_BOUND_S, "publish blocked")

        # Routing from a fresh client: every binding, and nothing for an unbound key.
        fresh = self.connect().channel()
        fresh.confirm_delivery()
        fresh.basic_publish(x, "c.one", b"to-q2", mandatory=True)
        fresh.basic_publish(x, "d.x.y", b"via-x2", mandatory=True)
        with self.assertRaises(pex.UnroutableError):
            fresh.basic_publish(x, "e.none", b"nowhere", mandatory=True)

        def drain(queue):
            got = []
            while True:
                m, _, body = ch.basic_get(queue, auto_ack=True)
                if m is None:
                    return got
                got.append(body)
        got1 = set(drain(q1))
        expected1 = {b"before"} | {b"after-%d" % i for i in range(0, 21)}
        self.assertTrue(expected1 <= got1, "missing in %s: %r" % (q1, expected1 - got1))
        self.assertEqual(sorted(drain(q2)), [b"to-q2", b"via-x2"])

    # 4 -------------------------------------------------------------------------
    def test_connection_crash_closes_only_that_connection_with_541(self):
        name_a, name_b = unique("sup.conn-a"), unique("sup.conn-b")
        ea, sa, eb = unique("sup.excl-a"), unique("sup.shared-a"), unique("sup.excl-b")
        a = self.connect(client_properties={"connection_name": name_a})
        ach = a.channel()
        ach.queue_declare(ea, exclusive=True)
        ach.queue_declare(sa)
        ach.basic_consume(ea, lambda *args: None)
        b = self.connect(client_properties={"connection_name": name_b})
        bch = b.channel()
        bch.confirm_delivery()
        bch.queue_declare(eb, exclusive=True)
        got = []
        bch.basic_consume(eb, lambda c, m, p, body: (got.append(body),
                                                      c.basic_ack(m.delivery_tag)))
        bch.basic_publish("", eb, b"before")
        self.assertTrue(self.pump(b, lambda: got == [b"before"]))

        api_name = self.connection_name(name_a, exclusive_queue=ea)
        self.crash("connection", api_name, retry_for=0)
        exc = self.expect_closed_by_broker(a, 541)
        self.assertIn("INTERNAL_ERROR", exc.reply_text)

        self.assertTrue(wait_until(lambda: not self.queue_exists(ea), 10, 0.1),
                        "exclusive queue %s outlived its connection" % ea)
        self.assertTrue(self.queue_exists(sa), "a non-exclusive queue went with the connection")
        self.assertTrue(wait_until(lambda: api_name not in
                                   [c["name"] for c in self.api.get("/api/connections")], 10))

        # The other connection never noticed.
        for i in range(20):
            t0 = time.monotonic()
            bch.basic_publish("", eb, b"after-%d" % i)
            self.assertTrue(self.pump(b, lambda: len(got) == i + 2, timeout=CALL_BOUND_S),
                            "connection B stalled at %d" % i)
            self.assertLess(time.monotonic() - t0, CALL_BOUND_S)
        self.assertEqual(got, [b"before"] + [b"after-%d" % i for i in range(20)])
        self.assertTrue(b.is_open)
        self.assertTrue(self.queue_exists(eb))
        self.api.call("DELETE", "/api/queues/%%2F/%s" % quote(sa))

    # 6 -------------------------------------------------------------------------
    @unittest.skipUnless(WARRENCTL, "WARRENCTL is not set")
    def test_warrenctl_crash_round_trip(self):
        q, x = unique("sup.ctlq"), unique("sup.ctlx")
        ch = self.connect().channel()
        ch.confirm_delivery()
        ch.queue_declare(q, durable=True)
        ch.exchange_declare(x, "direct", durable=True)
        ch.queue_bind(q, x, "k")
        ch.basic_publish(x, "k", b"kept", PERSISTENT, mandatory=True)

        def ctl(*args):
            t0 = time.monotonic()
            r = warrenctl(self.http_port, *args)
            self.assertLess(time.monotonic() - t0, CALL_BOUND_S * 2, "warrenctl %s hung" % (args,))
            return r

        r = ctl("crash", "queue", q)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.wait_log("queue '%s' in vhost '/' crashed" % q)
        self.assertTrue(wait_until(lambda: self.queue_restarted_lines(q), RESTART_TIMEOUT_S),
                        self.broker.log_tail(4000))
        r = ctl("crash", "exchange", x, "--vhost", "/")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.wait_log("exchange '%s' in vhost '/' crashed" % x)

        # Both came back: the binding routes, the persistent message survived the queue crash.
        def routed():
            try:
                ch.basic_publish(x, "k", b"again", PERSISTENT, mandatory=True)
                return True
            except (pex.NackError, pex.UnroutableError):
                return False
        self.assertTrue(wait_until(routed, RESTART_TIMEOUT_S, 0.1))
        bodies = []
        for _ in range(2):
            m, _, body = ch.basic_get(q, auto_ack=True)
            bodies.append(body)
        self.assertEqual(sorted(bodies), [b"again", b"kept"])

        # A vhost of its own: crashing it closes its connections with 320, then it serves.
        v = unique("sup.vh")
        self.assertEqual(self.api.call("PUT", "/api/vhosts/" + quote(v))[0], 201)
        self.addCleanup(self.api.call, "DELETE", "/api/vhosts/" + quote(v))
        self.api.call("PUT", "/api/permissions/%s/guest" % quote(v),
                      body={"configure": ".*", "write": ".*", "read": ".*"})
        vconn = self.connect(virtual_host=v)
        vconn.channel().queue_declare("inside", durable=True)
        r = ctl("crash", "vhost", v)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.expect_closed_by_broker(vconn, 320)
        self.wait_log("vhost '%s' restarted" % v)
        again = self.connect_retry(virtual_host=v).channel()
        again.queue_declare("inside", durable=True, passive=True)

        # A connection, by the name the API lists.
        cname = unique("sup.ctl-conn")
        conn = self.connect(client_properties={"connection_name": cname})
        eq = conn.channel().queue_declare(unique("sup.ctl-excl"), exclusive=True).method.queue
        r = ctl("crash", "connection", self.connection_name(cname, exclusive_queue=eq))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.expect_closed_by_broker(conn, 541)

        # Failures: non-zero with a message.
        r = ctl("crash", "queue", unique("sup.none"))
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(r.stderr.strip())

    def test_crashing_what_does_not_exist_is_404(self):
        for path in (self.crash_path("queue", "/", unique("none")),
                     self.crash_path("exchange", "/", unique("none")),
                     self.crash_path("vhost", unique("none")),
                     self.crash_path("connection", "127.0.0.1:1 -> 127.0.0.1:2")):
            status, body, raw, _ = self.api.call("POST", path)
            self.assertEqual(status, 404, "%s: %r" % (path, raw))
        # And without credentials, nothing at all.
        self.assertEqual(self.api.call("POST", self.crash_path("vhost", "/"), auth=False)[0], 401)

    # 8 -------------------------------------------------------------------------
    def test_queue_crash_under_publisher_through_exchange_loses_no_confirmed_message(self):
        # Publishes through a direct exchange that are outstanding when the queue crashes are
        # nacked by the connection (the vhost tells every connection of the vhost): none may
        # wait for a confirm that never comes, and whatever was acked is delivered.
        q, x = unique("sup.xq"), unique("sup.direct")
        setup = self.connect().channel()
        setup.exchange_declare(x, "direct", durable=True)
        setup.queue_declare(q, durable=True)
        setup.queue_bind(q, x, "k")

        lock = threading.Lock()
        confirmed, nacked, consumed = set(), set(), set()
        state = {"published": 0, "consumed": 0, "consumes": 0, "in_call_since": None}
        cancelled, resubscribed, start_consuming = (threading.Event(), threading.Event(),
                                                    threading.Event())
        crashed = threading.Event()
        stop_pub, stop_cons = threading.Event(), threading.Event()
        pub_t, cons_t = Timings("publisher"), Timings("consumer")
        max_messages, run_deadline = 30000, time.monotonic() + 120

        def publisher():
            # Not mandatory: an unroutable message would be acked, and then it would count as
            # a confirmed message that never arrives.
            confirming_publisher(self.params, x, "k", b"x-", pub_t, lock, state, confirmed,
                                 nacked, max_messages, stop_pub, run_deadline)

        def consumer():
            resubscribing_consumer(self.params, q, cons_t, lock, state, consumed,
                                   start_consuming, stop_cons, cancelled, resubscribed,
                                   slow_while=lambda: not crashed.is_set())

        threads = [threading.Thread(target=f, daemon=True, name=f.__name__)
                   for f in (publisher, consumer)]
        for t in threads:
            t.start()

        def stop_all():
            stop_pub.set()
            stop_cons.set()
        self.addCleanup(stop_all)

        def snapshot():
            with lock:
                stuck = state["in_call_since"]
                return (dict(state, in_call_since=None, confirmed=len(confirmed),
                             nacked=len(nacked)),
                        0.0 if stuck is None else time.monotonic() - stuck)

        # A backlog first, then the crash with publishes in flight and the consumer busy.
        # Persistent confirms wait for the disk, which other jobs may share: small numbers.
        self.assertTrue(wait_until(lambda: snapshot()[0]["confirmed"] >= 100, WAIT_S * 2, 0.02),
                        "publisher too slow: %r %r" % (snapshot(), pub_t.errors))
        start_consuming.set()
        self.assertTrue(wait_until(lambda: (lambda s: s["confirmed"] >= 200
                                            and s["consumed"] >= 20)(snapshot()[0]),
                                   WAIT_S * 2, 0.02),
                        "no traffic before the crash: %r %r %r"
                        % (snapshot(), pub_t.errors, cons_t.errors))
        published_at_crash = snapshot()[0]["published"]
        crashed.set()
        self.crash("queue", "/", q, retry_for=0)

        self.assertTrue(cancelled.wait(WAIT_S),
                        "the consumer got no basic.cancel after the crash")
        self.wait_log("queue '%s' in vhost '/' crashed" % q)
        self.assertTrue(wait_until(lambda: self.queue_restarted_lines(q), RESTART_TIMEOUT_S),
                        "no 'restarted' line for %s\n%s" % (q, self.broker.log_tail(4000)))
        published_at_restart = snapshot()[0]["published"]
        self.assertTrue(resubscribed.wait(WAIT_S),
                        "the consumer could not consume again: %r" % cons_t.errors)

        # The publisher goes on after the restart, through the same exchange and channel.
        self.assertTrue(wait_until(
            lambda: snapshot()[0]["published"] >= published_at_restart + 100
            or not threads[0].is_alive(), WAIT_S * 2, 0.05),
            "the publisher stalled after the restart: %r (current call running for %.1f s); "
            "errors %r" % (snapshot()[0], snapshot()[1], pub_t.errors))
        stop_pub.set()
        threads[0].join(WAIT_S)
        self.assertFalse(threads[0].is_alive(), "publisher hung in basic_publish: %r"
                         % (snapshot(),))
        self.assertEqual(pub_t.errors, [], "the publisher failed")

        with lock:
            want, lost_cause = set(confirmed), set(nacked)
        self.assertTrue([b for b in want if int(b[2:]) >= published_at_restart],
                        "nothing confirmed after the restart (published %d, nacked %d)"
                        % (snapshot()[0]["published"], len(lost_cause)))

        def missing():
            with lock:
                return want - consumed
        self.assertTrue(wait_until(lambda: not missing(), WAIT_S * 2, 0.1),
                        "confirmed but never delivered: %d of %d, e.g. %r (nacked %d, crash "
                        "after #%d)" % (len(missing()), len(want), sorted(missing())[:5],
                                        len(lost_cause), published_at_crash))
        stop_cons.set()
        threads[1].join(WAIT_S)
        self.assertFalse(threads[1].is_alive(), "consumer hung")

        for t in (pub_t, cons_t):
            self.assertEqual(t.errors, [], "%s failed" % t.who)
            self.assertLess(t.slowest, WAIT_S, "%s blocked %.1f s in %s"
                            % (t.who, t.slowest, t.slowest_what))
        # The binding is still the one the test made.
        self.assertEqual({b[:4] for b in self.bindings_of({x})}, {(x, q, "queue", "k")})

    # 9 -------------------------------------------------------------------------
    def test_queue_crash_ends_stomp_subscriptions_of_that_queue_only(self):
        q, other, gone = (unique("sup.stomp-q"), unique("sup.stomp-other"),
                          unique("sup.stomp-gone"))
        ch = self.connect().channel()
        for name in (q, other, gone):
            ch.queue_declare(name, durable=True)

        # What a STOMP subscriber gets when its queue is deleted, for comparison.
        deleted = self.stomp()
        deleted.receipt("SUBSCRIBE", {"destination": "/amq/queue/" + gone, "id": "g"},
                        timeout=WAIT_S)
        ch.queue_delete(gone)
        on_delete = self.expect_stomp_error_and_close(deleted)

        # The subscriber of q holds two of six persistent messages unacknowledged; the other
        # four wait in the queue (prefetch-count 2).
        sub = self.stomp()
        sub.receipt("SUBSCRIBE", {"destination": "/amq/queue/" + q, "id": "s",
                                  "ack": "client-individual", "prefetch-count": "2"},
                    timeout=WAIT_S)
        filler = self.stomp()
        kept = [b"kept-%d" % i for i in range(6)]
        for body in kept:
            filler.receipt("SEND", {"destination": "/amq/queue/" + q, "persistent": "true"},
                           body, timeout=WAIT_S)
        held = [sub.expect("MESSAGE", timeout=WAIT_S).body for _ in range(2)]
        self.assertEqual(held, kept[:2])

        # Meanwhile on the other queue: one connection only SENDs (no receipts), another
        # subscribes. Each socket is used by its own thread only.
        watcher = self.stomp()
        watcher.receipt("SUBSCRIBE", {"destination": "/amq/queue/" + other, "id": "w"},
                        timeout=WAIT_S)
        talker = self.stomp()
        lock = threading.Lock()
        sent, heard, errors = [], [], []
        stop_talk, stop_listen = threading.Event(), threading.Event()

        def talk():
            try:
                n, deadline = 0, time.monotonic() + 90
                while not stop_talk.is_set() and n < 10000 and time.monotonic() < deadline:
                    body = b"o-%05d" % n
                    talker.send("SEND", {"destination": "/amq/queue/" + other}, body)
                    with lock:
                        sent.append(body)
                    n += 1
                    time.sleep(0.005)
            except Exception as e:
                with lock:
                    errors.append("talker: %r" % (e,))

        def listen():
            try:
                deadline = time.monotonic() + 120
                while not stop_listen.is_set() and time.monotonic() < deadline:
                    frame = watcher.poll_frame(0.2)
                    if frame is None:
                        continue
                    if frame.command != "MESSAGE":
                        raise AssertionError("watcher got %r" % (frame,))
                    with lock:
                        heard.append(frame.body)
            except Exception as e:
                with lock:
                    errors.append("watcher: %r" % (e,))

        threads = [threading.Thread(target=f, daemon=True, name=f.__name__)
                   for f in (talk, listen)]
        for t in threads:
            t.start()
        self.addCleanup(stop_listen.set)
        self.addCleanup(stop_talk.set)

        def heard_count():
            with lock:
                return len(heard)
        self.assertTrue(wait_until(lambda: heard_count() >= 20, WAIT_S, 0.02),
                        "nothing on the other queue before the crash: %r" % errors)

        self.crash("queue", "/", q, retry_for=0)
        err = self.expect_stomp_error_and_close(sub)
        self.assertEqual(err.header("message"), on_delete.header("message"),
                         "a crashed queue's subscriber is not told as for a deleted queue: "
                         "%r vs %r" % (err, on_delete))
        self.wait_log("queue '%s' in vhost '/' crashed" % q)
        self.assertTrue(wait_until(lambda: self.queue_restarted_lines(q), RESTART_TIMEOUT_S),
                        "no 'restarted' line for %s\n%s" % (q, self.broker.log_tail(4000)))

        # The other queue's sender and subscriber carried on through the crash and after.
        at_restart = heard_count()
        self.assertTrue(wait_until(lambda: heard_count() >= at_restart + 20 or errors, WAIT_S,
                                   0.02), "the other queue stalled after the restart: %r"
                        % errors)
        stop_talk.set()
        threads[0].join(WAIT_S)
        self.assertFalse(threads[0].is_alive(), "talker hung")
        talker.receipt("SEND", {"destination": "/amq/queue/" + other}, b"last",
                       timeout=WAIT_S)
        with lock:
            want = list(sent) + [b"last"]
        self.assertTrue(wait_until(lambda: heard_count() >= len(want) or errors, WAIT_S,
                                   0.05),
                        "the watcher got %d of %d: %r" % (heard_count(), len(want), errors))
        stop_listen.set()
        threads[1].join(WAIT_S)
        self.assertFalse(threads[1].is_alive(), "watcher hung")
        self.assertEqual(errors, [])
        self.assertEqual(heard, want)
        self.assertIsNone(filler.poll_frame(0.2), "the filler was told something")

        # After the restart a new subscriber gets the six persistent messages, the two that
        # were unacknowledged flagged redelivered. Subscribing is retried while the queue is
        # not back yet (an ERROR then, and a new connection).
        deadline = time.monotonic() + RESTART_TIMEOUT_S
        while True:
            again = self.stomp()
            try:
                again.receipt("SUBSCRIBE", {"destination": "/amq/queue/" + q, "id": "a"},
                              timeout=WAIT_S)
                break
            except AssertionError:
                if time.monotonic() >= deadline:
                    raise
                again.close()
                time.sleep(0.2)
        frames = [again.expect("MESSAGE", timeout=WAIT_S) for _ in kept]
        self.assertEqual(sorted(f.body for f in frames), sorted(kept))
        self.assertEqual({f.body: f.header("redelivered") for f in frames if f.body in held},
                         {b: "true" for b in held})
        self.assertEqual([f.body for f in frames if f.body not in held], kept[2:],
                         "the ready messages came back out of order")
        self.assertIsNone(again.poll_frame(0.5), "more than the six messages came back")

    # 10 ------------------------------------------------------------------------
    def test_stomp_connection_crash_closes_only_that_connection(self):
        z, w = unique("sup.stomp-z"), unique("sup.stomp-w")
        amqp = self.connect()
        ch = amqp.channel()
        ch.queue_declare(z, durable=True)
        ch.queue_declare(w, durable=True)
        a, b = self.stomp(), self.stomp()
        a.receipt("SUBSCRIBE", {"destination": "/amq/queue/" + z, "id": "a",
                                "ack": "client-individual"}, timeout=WAIT_S)
        b.receipt("SUBSCRIBE", {"destination": "/amq/queue/" + w, "id": "b"}, timeout=WAIT_S)
        b.receipt("SEND", {"destination": "/amq/queue/" + z, "persistent": "true"},
                  b"held by a", timeout=WAIT_S)
        self.assertEqual(a.expect("MESSAGE", timeout=WAIT_S).body, b"held by a")
        b.receipt("SEND", {"destination": "/amq/queue/" + w}, b"before", timeout=WAIT_S)
        self.assertEqual(b.expect("MESSAGE", timeout=WAIT_S).body, b"before")

        name_a, name_b = self.stomp_connection_name(a), self.stomp_connection_name(b)
        self.assertNotEqual(name_a, name_b)
        self.crash("connection", name_a, retry_for=0)
        err = self.expect_stomp_error_and_close(a)
        self.assertEqual(err.header("message"), "Internal error", err)
        self.assertTrue(wait_until(lambda: name_a not in
                                   [c["name"] for c in self.api.get("/api/connections")], WAIT_S),
                        "the crashed STOMP connection is still listed")

        # What A had not acknowledged is back in its queue, flagged redelivered.
        deadline, got = time.monotonic() + WAIT_S, None
        while got is None:
            m, _, body = ch.basic_get(z, auto_ack=True)
            if m is not None:
                got = (body, m.redelivered)
            elif time.monotonic() >= deadline:
                self.fail("the message A held did not come back to %s" % z)
            else:
                amqp.process_data_events(time_limit=0.1)
        self.assertEqual(got, (b"held by a", True))

        # B never noticed.
        for i in range(20):
            body = b"after-%d" % i
            b.receipt("SEND", {"destination": "/amq/queue/" + w}, body, timeout=WAIT_S)
            self.assertEqual(b.expect("MESSAGE", timeout=WAIT_S).body, body)
        self.assertIn(name_b, [c["name"] for c in self.api.get("/api/connections")])
        self.assertIsNone(b.poll_frame(0.2))

    # 11 ------------------------------------------------------------------------
    def test_transient_queue_crash_loses_messages_keeps_name_and_arguments(self):
        q = unique("sup.transient")
        # Warren refuses the x- arguments it does not implement (540); these it keeps.
        args = {"x-queue-type": "classic", "test-tag": "transient-crash", "test-n": 7}
        conn = self.connect()
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(q, arguments=args)
        for i in range(10):
            ch.basic_publish("", q, b"t-%d" % i, PERSISTENT if i % 2 else TRANSIENT)

        cons = self.connect()
        cch = cons.channel()
        cch.basic_qos(prefetch_count=1)
        got, cancels = [], []
        cch.add_on_cancel_callback(cancels.append)
        tag = cch.basic_consume(q, lambda c, m, p, body: got.append(body))
        self.assertTrue(self.pump(cons, lambda: got, timeout=WAIT_S), "nothing delivered")
        before = self.api.get("/api/queues/%%2F/%s" % quote(q))
        self.assertFalse(before["durable"])
        self.assertEqual(before["arguments"], args)

        self.crash("queue", "/", q, retry_for=0)
        self.assertTrue(self.pump(cons, lambda: cancels, timeout=WAIT_S),
                        "the consumer got no basic.cancel")
        self.assertEqual(cancels[0].method.consumer_tag, tag)
        self.wait_log("queue '%s' in vhost '/' crashed" % q)
        self.assertTrue(wait_until(lambda: self.queue_restarted_lines(q), RESTART_TIMEOUT_S),
                        "no 'restarted' line for %s\n%s" % (q, self.broker.log_tail(4000)))

        # Back under the same name, empty: nine ready messages and the unacknowledged one
        # are gone, persistent or not (a transient queue stores nothing).
        self.assertTrue(wait_until(lambda: self.message_count(conn, q) is not None,
                                   RESTART_TIMEOUT_S, 0.1),
                        "%s is gone after its restart" % q)
        self.assertEqual(self.message_count(conn, q), 0)
        self.assertEqual(ch.basic_get(q, auto_ack=True)[0], None)
        after = self.api.get("/api/queues/%%2F/%s" % quote(q))
        for key in ("name", "durable", "auto_delete", "exclusive", "arguments"):
            self.assertEqual(after.get(key), before.get(key), key)
        # The broker itself agrees: the same declare is accepted, a durable one is refused
        # with 406 (the restarted queue is still the transient one).
        ch.queue_declare(q, arguments=args)
        with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
            conn.channel().queue_declare(q, durable=True, arguments=args)
        self.assertEqual(ctx.exception.reply_code, 406)

        # The consumer consumes again and gets only what was published after the restart.
        cch.basic_consume(q, lambda c, m, p, body: (got.append(body),
                                                     c.basic_ack(m.delivery_tag)))
        ch.basic_publish("", q, b"after", TRANSIENT)
        self.assertTrue(self.pump(cons, lambda: len(got) >= 2, timeout=WAIT_S),
                        "nothing delivered after the restart")
        self.idle(cons, 0.3)
        self.assertEqual(got[1:], [b"after"])
        # Closing the consumer that held a message of the crashed queue brings nothing back.
        cons.close()
        self.idle(conn, 0.3)
        self.assertEqual(self.message_count(conn, q), 0)


@unittest.skipIf(EXTERNAL, "needs warrend's fault injection")
class EscalationTest(SupervisionCase):
    """More queue restarts than the intensity allows: the vhost gives up and the registry
    restarts it from disk."""

    broker_args = ("--fault-injection", "--max-restarts", "2", "--restart-period-ms", "60000")

    # 2 -------------------------------------------------------------------------
    def test_vhost_gives_up_and_is_restarted_from_disk(self):
        d, t, dx, tx = (unique("esc.durable"), unique("esc.transient"), unique("esc.dx"),
                        unique("esc.tx"))
        conn = self.connect()
        ch = conn.channel()
        ch.confirm_delivery()
        ch.exchange_declare(dx, "direct", durable=True)
        ch.exchange_declare(tx, "fanout")
        ch.queue_declare(d, durable=True)
        ch.queue_declare(t)
        ch.queue_bind(d, dx, "k")
        ch.queue_bind(t, tx, "")
        persistent = [b"p-%d" % i for i in range(10)]
        for body in persistent:
            ch.basic_publish(dx, "k", body, PERSISTENT, mandatory=True)
        for i in range(3):
            ch.basic_publish(dx, "k", b"t-%d" % i, TRANSIENT, mandatory=True)
        ch.basic_publish(tx, "", b"in transient queue", PERSISTENT, mandatory=True)
        idle = self.connect()
        idle.channel()
        consuming = self.connect()
        consuming.channel().basic_consume(t, lambda *a: None)
        baseline = restarts(self.api)

        # Two restarts are allowed; the third failure within the period escalates.
        for i in (1, 2):
            self.crash("queue", "/", d)
            self.wait_log("queue '%s' in vhost '/' crashed" % d, count=i)
            self.assertTrue(wait_until(lambda: len(self.queue_restarted_lines(d)) >= i,
                                       RESTART_TIMEOUT_S), self.broker.log_tail(4000))
            self.assertEqual(self.log_lines("vhost '/' gave up"), [],
                             "the vhost gave up after %d restart(s) of at most 2" % i)
        self.crash("queue", "/", d)
        self.wait_log("vhost '/' gave up")
        self.wait_log("vhost '/' restarted")

        for c in (conn, idle, consuming):
            exc = self.expect_closed_by_broker(c, 320)
            self.assertIn("CONNECTION_FORCED", exc.reply_text)

        self.assertTrue(wait_until(lambda: restarts(self.api) >= baseline + 2, 10, 0.2),
                        "%s{actor=\"queue\"} is %s, was %s"
                        % (RESTARTS_METRIC, restarts(self.api), baseline))

        # After the restart: durable things and persistent messages are back, the rest gone.
        fresh = self.connect_retry()
        self.assertTrue(wait_until(lambda: self.message_count(fresh, d) == 10, 10, 0.1),
                        "%s holds %r messages" % (d, self.message_count(fresh, d)))
        fch = fresh.channel()
        got = []
        for _ in range(10):
            m, _, body = fch.basic_get(d, auto_ack=True)
            self.assertIsNotNone(m)
            got.append(body)
        self.assertEqual(sorted(got), sorted(persistent))
        self.assertIsNone(fch.basic_get(d)[0])
        for declare in (lambda c: c.queue_declare(t, passive=True),
                        lambda c: c.exchange_declare(tx, passive=True)):
            with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                declare(fresh.channel())
            self.assertEqual(ctx.exception.reply_code, 404)
        fch = fresh.channel()
        fch.confirm_delivery()
        fch.exchange_declare(dx, "direct", durable=True, passive=True)
        fch.basic_publish(dx, "k", b"binding is back", PERSISTENT, mandatory=True)
        self.assertEqual(fch.basic_get(d, auto_ack=True)[2], b"binding is back")
        self.assert_broker_usable()


@unittest.skipIf(EXTERNAL, "needs warrend's fault injection")
class FaultInjectionOffTest(SupervisionCase):
    """Without --fault-injection the debug endpoints refuse and nothing crashes."""

    # 5 -------------------------------------------------------------------------
    def test_crash_is_forbidden_by_default(self):
        q, x, client = unique("off.q"), unique("off.x"), unique("off.conn")
        conn = self.connect(client_properties={"connection_name": client})
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(q, durable=True)
        ch.exchange_declare(x, "fanout")
        ch.queue_bind(q, x)
        ch.basic_publish(x, "", b"one", PERSISTENT, mandatory=True)
        cname = self.connection_name(client, exclusive_queue=ch.queue_declare(
            unique("off.excl"), exclusive=True).method.queue)

        for path in (self.crash_path("queue", "/", q), self.crash_path("exchange", "/", x),
                     self.crash_path("vhost", "/"), self.crash_path("connection", cname)):
            status, body, raw, _ = self.api.call("POST", path)
            self.assertEqual(status, 403, "%s: %r" % (path, raw))
            self.assertEqual(body.get("error"), "forbidden", raw)
            self.assertTrue(body.get("reason"), raw)

        if WARRENCTL:
            for args in (("crash", "queue", q), ("crash", "exchange", x),
                         ("crash", "vhost", "/"), ("crash", "connection", cname)):
                r = warrenctl(self.http_port, *args)
                self.assertNotEqual(r.returncode, 0, "%s: %s" % (args, r.stdout))
                self.assertTrue(r.stderr.strip(), args)

        # Nothing happened: the connection is open, the queue works, nothing was restarted.
        ch.basic_publish(x, "", b"two", PERSISTENT, mandatory=True)
        self.assertEqual([ch.basic_get(q, auto_ack=True)[2] for _ in range(2)], [b"one", b"two"])
        self.assertTrue(conn.is_open)
        self.assertEqual(self.log_lines("crashed"), [])
        self.assertEqual(restarts(self.api), 0)


@unittest.skipIf(EXTERNAL, "needs its own warrend process")
class ConfigFileTest(SupervisionCase):
    """debug.fault_injection and supervision.* from the config file."""

    @classmethod
    def setUpClass(cls):
        conf = write_config(cls, "debug.fault_injection = true\n"
                                 "supervision.max_restarts = 1\n"
                                 "supervision.period_ms = 60000\n")
        cls.broker_args = ("--config", conf)
        super().setUpClass()

    def test_config_enables_fault_injection_and_sets_intensity(self):
        q = unique("conf.q")
        conn = self.connect()
        conn.channel().queue_declare(q, durable=True)
        self.crash("queue", "/", q, retry_for=0)
        self.wait_log("queue '%s' in vhost '/' crashed" % q)
        self.assertTrue(wait_until(lambda: self.queue_restarted_lines(q), RESTART_TIMEOUT_S))
        self.assertEqual(self.log_lines("vhost '/' gave up"), [])
        # One restart allowed: the second failure escalates to the registry.
        self.crash("queue", "/", q)
        self.wait_log("vhost '/' gave up")
        self.wait_log("vhost '/' restarted")
        self.expect_closed_by_broker(conn, 320)
        self.connect_retry().channel().queue_declare(q, durable=True, passive=True)


@unittest.skipIf(EXTERNAL, "needs its own warrend process")
class RootGiveUpTest(unittest.TestCase):
    """When the root supervisor exceeds its intensity too, warrend exits with status 70."""

    # 7 -------------------------------------------------------------------------
    def test_root_gives_up_and_warrend_exits_70(self):
        broker = Broker(binary=WARREND, extra_args=["--fault-injection", "--max-restarts", "1",
                                                    "--restart-period-ms", "60000"]).start()
        self.addCleanup(broker.stop_quietly)
        api = Api(*broker.wait_listener("http"))
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            host=broker.host, port=broker.port, socket_timeout=5, connection_attempts=1,
            credentials=pika.PlainCredentials("guest", "guest")))
        self.addCleanup(close_quietly, conn)

        def vhost_listed():
            try:
                return api.call("GET", "/api/vhosts/%2F", timeout=5)[0] == 200
            except (urllib.error.URLError, OSError):
                return False

        crashes, deadline = 0, time.monotonic() + 30
        while broker.proc.poll() is None and crashes < 20 and time.monotonic() < deadline:
            try:
                status = api.call("POST", "/api/debug/crash/vhost/%2F", timeout=5)[0]
            except (urllib.error.URLError, OSError, socket.timeout):
                status = None  # the tree (or the process) is going down: try again
            if status == 204:
                crashes += 1
                # Let the restart happen (or the process end) before the next crash.
                wait_until(lambda: broker.proc.poll() is not None or vhost_listed(), 5, 0.1)
            elif status not in (None, 404, 503):
                self.fail("crash vhost: HTTP %s\n%s" % (status, broker.log_tail(4000)))
            time.sleep(0.2)

        try:
            rc = broker.proc.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.fail("warrend still running after %d vhost crashes\n%s"
                      % (crashes, broker.log_tail(6000)))
        broker._reader.join(5)
        self.assertEqual(rc, 70, broker.log_tail(6000))
        self.assertIn("supervision tree gave up", broker.log_text())
        self.assertIn("vhost '/' restarted", broker.log_text())
        self.assertGreaterEqual(crashes, 2)


if __name__ == "__main__":
    unittest.main()
