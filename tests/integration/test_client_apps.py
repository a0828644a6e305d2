"""Applications and client libraries people run against RabbitMQ, all from Debian, against Warren:
Celery (kombu and py-amqp underneath) with a worker, its rpc:// result backend, retries,
countdowns, expiry, remote control and events; aioamqp on asyncio; PHP's php-amqplib, amqp and
stomp extensions; RabbitMQ's Java and Go clients; the Ruby stomp gem; AnyEvent::RabbitMQ (Perl);
and the Nagios checks of nagios-plugins-rabbitmq over the management API. The expected answers
are what RabbitMQ 3.10.8 gives to the same programs."""

import asyncio
import importlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import aioamqp
import aioamqp.exceptions

from harness import BrokerTestCase, unique, wait_until
from mgmt_support import Api

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.join(HERE, "clients")
PYTHON = "/usr/bin/python3"
EXTERNAL = os.environ.get("WARREN_TEST_BROKER")
RUN_TIMEOUT_S = 60


def run(cmd, timeout=RUN_TIMEOUT_S):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=CLIENTS,
                          timeout=timeout, text=True)


class CeleryTest(BrokerTestCase):
    """A Celery worker (solo pool, events on) and a client, both on the broker."""

    worker = None
    worker_log = None
    app = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls._start_worker()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _start_worker(cls):
        os.environ["WARREN_CELERY_BROKER"] = "amqp://guest:guest@%s:%d//" % (cls.host, cls.port)
        os.environ["WARREN_CELERY_QUEUE"] = unique("celery")
        cls.worker_name = "it-%s@localhost" % uuid.uuid4().hex[:12]
        cls.worker_log = tempfile.TemporaryFile(mode="w+")
        cls.worker = subprocess.Popen(
            [PYTHON, "-m", "celery", "-A", "celery_app", "worker", "--pool=solo",
             "--loglevel=warning", "--events", "-n", cls.worker_name],
            cwd=CLIENTS, stdin=subprocess.DEVNULL, stdout=cls.worker_log,
            stderr=subprocess.STDOUT)
        sys.path.insert(0, CLIENTS)
        try:
            cls.app = importlib.import_module("celery_app").app
        finally:
            sys.path.remove(CLIENTS)
        # The worker is up once it answers a ping over the broker (its pidbox fanout).
        ready = wait_until(lambda: cls.worker.poll() is not None or cls.ping(), timeout=40,
                           interval=0.5)
        if not ready or cls.worker.poll() is not None:
            raise AssertionError("the Celery worker did not come up:\n" + cls.worker_output())

    @classmethod
    def ping(cls):
        replies = cls.app.control.inspect(destination=[cls.worker_name], timeout=1).ping()
        return replies or None

    @classmethod
    def worker_output(cls):
        cls.worker_log.seek(0)
        return cls.worker_log.read()[-6000:]

    @classmethod
    def tearDownClass(cls):
        worker, cls.worker = cls.worker, None
        if worker is not None:
            worker.terminate()  # warm shutdown: the worker closes its connections
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(5)
        if cls.app is not None:
            cls.app.close()
        if cls.worker_log is not None:
            cls.worker_log.close()
        super().tearDownClass()

    def tearDown(self):
        if self.worker.poll() is not None:
            self.fail("the Celery worker exited:\n" + self.worker_output())
        super().tearDown()

    def task(self, name):
        return getattr(sys.modules["celery_app"], name)

    def test_a_task_and_its_result(self):
        self.assertEqual(self.task("add").delay(2, 3).get(timeout=30), 5)

    def test_a_group_of_tasks(self):
        from celery import group
        add = self.task("add")
        result = group(add.s(i, i) for i in range(5))()
        self.assertEqual(result.get(timeout=30), [0, 2, 4, 6, 8])

    def test_retries_go_back_through_the_broker(self):
        self.assertEqual(self.task("flaky").delay(2).get(timeout=30), 2)

    def test_countdown_holds_the_task_back(self):
        sent = time.monotonic()
        result = self.task("echo").apply_async(("later",), countdown=2)
        self.assertEqual(result.get(timeout=30), "later")
        self.assertGreaterEqual(time.monotonic() - sent, 1.9)

    def test_an_expired_task_is_revoked(self):
        from celery.exceptions import TaskRevokedError
        # Held back 2 s by its countdown, it has expired by then.
        result = self.task("echo").apply_async(("too late",), countdown=2, expires=1)
        with self.assertRaises(TaskRevokedError):
            result.get(timeout=30)

    def test_priorities_on_a_priority_queue(self):
        echo = self.task("echo")
        results = [echo.apply_async((p,), priority=p) for p in (0, 9, 4)]
        self.assertEqual([r.get(timeout=30) for r in results], [0, 9, 4])

    def test_events_reach_a_monitor(self):
        # A monitor (celery events, flower) binds its own queue to the celeryev topic exchange.
        seen = []
        lock = threading.Lock()

        def on_event(event):
            with lock:
                seen.append(event)

        def kinds(task_id=None):
            with lock:
                return [e["type"] for e in seen
                        if task_id is None or e.get("uuid") == task_id]

        with self.app.connection_for_read() as conn:
            receiver = self.app.events.Receiver(conn, handlers={"*": on_event})
            thread = threading.Thread(target=receiver.capture,
                                      kwargs={"limit": None, "timeout": None}, daemon=True)
            thread.start()
            try:
                # The worker's heartbeats (every 2 s) show the monitor's queue is bound.
                self.assertTrue(wait_until(lambda: "worker-heartbeat" in kinds(), timeout=15),
                                kinds())
                result = self.task("add").delay(20, 22)
                self.assertEqual(result.get(timeout=30), 42)
                self.assertTrue(wait_until(
                    lambda: "task-succeeded" in kinds(result.id), timeout=15), kinds())
                self.assertEqual(kinds(result.id),
                                 ["task-received", "task-started", "task-succeeded"])
            finally:
                receiver.should_stop = True
                thread.join(10)

    def test_remote_control_and_stats(self):
        inspect = self.app.control.inspect(destination=[self.worker_name], timeout=5)
        self.assertEqual(inspect.ping(), {self.worker_name: {"ok": "pong"}})
        self.task("add").delay(1, 1).get(timeout=30)
        stats = inspect.stats()[self.worker_name]
        self.assertEqual(stats["broker"]["transport"], "amqp")
        self.assertGreaterEqual(stats["total"].get("celery_app.add", 0), 1)
        queues = inspect.active_queues()[self.worker_name]
        self.assertEqual([q["name"] for q in queues], [os.environ["WARREN_CELERY_QUEUE"]])
        self.assertEqual(queues[0]["queue_arguments"], {"x-max-priority": 10})


async def get_within(ch, queue, timeout=2.0):
    """aioamqp's basic.get (auto-ack), retried until a message comes; None after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await ch.basic_get(queue, no_ack=True)
        except aioamqp.exceptions.EmptyQueue:
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.02)


class AioamqpTest(BrokerTestCase):
    """aioamqp, the asyncio client."""

    async def connect(self):
        transport, protocol = await aioamqp.connect(host=self.host, port=self.port,
                                                    login="guest", password="guest",
                                                    virtualhost="/", login_method="PLAIN")
        return transport, protocol

    def test_fanout_confirms_and_acked_consumers(self):
        async def scenario():
            transport, protocol = await self.connect()
            try:
                ch = await protocol.channel()
                exchange = unique("aio.fanout")
                await ch.exchange_declare(exchange, "fanout", auto_delete=True)
                queues = []
                for _ in range(2):
                    declared = await ch.queue_declare("", exclusive=True)
                    await ch.queue_bind(declared["queue"], exchange, routing_key="")
                    queues.append(declared["queue"])
                await ch.confirm_select()
                for i in range(5):  # in confirm mode, publish returns once the broker acks
                    await ch.publish(b"m%d" % i, exchange, "",
                                     properties={"message_id": "id-%d" % i,
                                                 "headers": {"n": i}})
                got = {q: [] for q in queues}

                async def on_message(channel, body, envelope, properties):
                    got[envelope.consumer_tag].append(
                        (body, properties.message_id, properties.headers["n"]))
                    await channel.basic_client_ack(envelope.delivery_tag)

                consumer = await protocol.channel()
                await consumer.basic_qos(prefetch_count=2)
                for q in queues:
                    await consumer.basic_consume(on_message, queue_name=q, consumer_tag=q)
                for _ in range(200):
                    if all(len(v) == 5 for v in got.values()):
                        break
                    await asyncio.sleep(0.05)
                want = [(b"m%d" % i, "id-%d" % i, i) for i in range(5)]
                self.assertEqual(got, {q: want for q in queues})
                # Everything was acked: nothing is left to get.
                for q in queues:
                    self.assertEqual((await ch.queue_declare(q, passive=True))["message_count"],
                                     0)
            finally:
                await protocol.close()
                transport.close()

        asyncio.run(asyncio.wait_for(scenario(), 60))

    def test_basic_get_and_a_channel_error(self):
        async def scenario():
            transport, protocol = await self.connect()
            try:
                ch = await protocol.channel()
                q = (await ch.queue_declare("", exclusive=True))["queue"]
                await ch.basic_publish(b"one", "", q, properties={"priority": 3})
                got = await get_within(ch, q)
                self.assertEqual(got["message"], b"one")
                self.assertEqual(got["properties"].priority, 3)
                with self.assertRaises(aioamqp.exceptions.EmptyQueue):
                    await ch.basic_get(q, no_ack=True)
                # A passive declare of a missing queue closes that channel with 404 ...
                bad = await protocol.channel()
                with self.assertRaises(aioamqp.exceptions.ChannelClosed) as caught:
                    await bad.queue_declare(unique("aio.missing"), passive=True)
                self.assertEqual(caught.exception.code, 404)
                # ... and the connection's other channels go on.
                await ch.basic_publish(b"two", "", q)
                got = await get_within(ch, q)
                self.assertEqual(got["message"], b"two")
            finally:
                await protocol.close()
                transport.close()

        asyncio.run(asyncio.wait_for(scenario(), 60))


class PhpTest(BrokerTestCase):
    """php-amqplib, PECL amqp (php-amqp) and PECL stomp (php-stomp), each running a script of
    checks in clients/."""

    def php(self, script, port):
        tag = uuid.uuid4().hex[:12]
        self.last_exchange = "pecl.%s.direct" % tag
        proc = run(["php", script, self.host, str(port), tag])
        self.assertEqual(proc.returncode, 0, "php %s failed:\n%s\n%s"
                         % (script, proc.stdout, proc.stderr))
        self.assertNotIn("Warning", proc.stderr)
        return proc.stdout.splitlines()

    def test_php_amqplib(self):
        lines = self.php("amqplib.php", self.port)
        self.assertEqual(lines[0], "topic hit only")
        self.assertEqual(lines[1], "max-length m2,m3")
        self.assertEqual(lines[2], "props content_type=application/json content_encoding=utf-8 "
                         "delivery_mode=2 priority=3 correlation_id=corr-1 reply_to=back "
                         "expiration=60000 message_id=id-1 timestamp=1700000000 type=kind "
                         "user_id=guest app_id=php")
        # php-amqplib writes a float as a decimal and reads it back as a string.
        self.assertEqual(lines[3], 'headers {"big":5000000000,"float":"2.5","int":42,'
                         '"list":[1,"two",3],"neg":-7,"nested":{"inner":"v"},"str":"text",'
                         '"yes":true}')
        self.assertEqual(lines[4:], [
            "consume c1,c2,c3,c4,c5",
            "requeue again redelivered=yes",
            "after tx 1 committed",
            "confirms 11 returned 312 NO_ROUTE %s lost" % lines[7].split()[-2],
            "passive 404 NOT_FOUND",
            "after error still here",
            "done",
        ])
        self.assertRegex(lines[7].split()[-2], r"^php\.[0-9a-f]{12}\.nowhere$")

    def test_pecl_amqp(self):
        # PHP's amqp extension (on librabbitmq): what Symfony Messenger and Laravel queues use.
        self.assertEqual(self.php("pecl_amqp.php", self.port), [
            'first high priority=5 text/plain 2 m-1 {"list":[],"n":2,"s":"x"}',
            "requeued low redelivered=yes",
            "alternate unroutable via %s" % self.last_exchange,
            "consumed c1,c2,c3,c4",
            "tx 1",
            "passive 404 Server channel error: 404, message: NOT_FOUND channel closed",
            "done",
        ])

    def test_php_stomp_extension(self):
        stomp_port = self.broker.wait_listener("stomp")[1]
        lines = self.php("stomp.php", stomp_port)
        self.assertRegex(lines[0], r"^headers c1 sub-1 /queue/php\.[0-9a-f]{12}$")
        self.assertEqual(lines[1:], [
            "received one,two,three",
            "unacked come back one/true,three/true only",
            "tx committed only",
            "topic to all / to all",
            "bad destination error: Unknown destination",
            "done",
        ])


class ScriptedClientTest(BrokerTestCase):
    """The Ruby stomp gem and AnyEvent::RabbitMQ (Perl), each running a script in clients/."""

    def script(self, *cmd):
        proc = run(list(cmd) + [uuid.uuid4().hex[:12]])
        self.assertEqual(proc.returncode, 0, "%s failed:\n%s\n%s"
                         % (" ".join(cmd), proc.stdout, proc.stderr))
        return proc.stdout.splitlines()

    def test_ruby_stomp(self):
        stomp_port = self.broker.wait_listener("stomp")[1]
        self.assertEqual(self.script("/usr/bin/ruby", "stomp_client.rb", self.host,
                                     str(stomp_port)), [
            "connected 1.2 CONNECTED",
            "receipt RECEIPT r0",
            "received one,two,three c0",
            "nacked comes back one redelivered=true",
            "after reconnect three redelivered=true",
            "tx committed",
            "rpc re: ping k1 temp-queue",
            "durable while away",
            "error ERROR Unknown destination",
            "done",
        ])

    def test_anyevent_rabbitmq(self):
        # It sends AMQP 0-9's protocol header and loads the method table from its own XML spec.
        self.assertEqual(self.script("/usr/bin/perl", "anyevent_rabbitmq.pl", self.host,
                                     str(self.port)), [
            "connected authentication_failure_close,basic.nack,connection.blocked,"
            "consumer_cancel_notify,consumer_priorities,direct_reply_to,"
            "exchange_exchange_bindings,per_consumer_qos,publisher_confirms",
            "confirmed 5",
            "get m1 text/plain n=1 redelivered=0",
            "consumed m2,m3,m4,m5",
            "tx 1",
            "passive 404 NOT_FOUND",
            "channel open after error 0, connection open 1",
            "done",
        ])


class JavaClientTest(BrokerTestCase):
    """RabbitMQ's own Java client (librabbitmq-client-java), run from source by the JDK: e2e
    bindings, dead-lettering, a quorum queue's delivery limit, confirms, returns, consumer
    cancel notification, direct reply-to, transactions, channel errors, and automatic recovery
    after the API closes the connection."""

    CLASSPATH = ":".join("/usr/share/java/%s.jar" % jar
                         for jar in ("amqp-client", "slf4j-api", "slf4j-nop"))

    def test_java_client(self):
        http_port = self.broker.wait_listener("http")[1]
        proc = run(["/usr/bin/java", "-cp", self.CLASSPATH, "JavaClient.java", self.host,
                    str(self.port), str(http_port), uuid.uuid4().hex[:12]], timeout=120)
        self.assertEqual(proc.returncode, 0, "JavaClient failed:\n%s\n%s"
                         % (proc.stdout, proc.stderr))
        self.assertEqual(proc.stdout.splitlines(), [
            "capabilities authentication_failure_close,basic.nack,connection.blocked,"
            "consumer_cancel_notify,consumer_priorities,direct_reply_to,"
            "exchange_exchange_bindings,per_consumer_qos,publisher_confirms",
            "e2e order eu left 0",
            "dead-lettered expiring reason expired queue ttl count 1 content-type text/plain",
            "quorum counts [Long 0, Long 1] then poison reason delivery_limit left 0",
            "confirmed returned 312 NO_ROUTE",
            "consumed true w0..w19",
            "cancel notified true",
            "rpc c-1 re: ping",
            "tx 1 committed",
            "passive channel 404 NOT_FOUND open false",
            "exclusive channel 405 RESOURCE_LOCKED",
            "connection still open true",
            "recovery delete 204 recovered true got after recovery",
            "closed connection 200 OK",
            "done",
        ])


class GoClientTest(BrokerTestCase):
    """RabbitMQ's Go client (amqp091-go), built from Debian's sources by Debian's Go: every
    field type of a headers table decoded to its Go type, priorities, confirms and returns,
    prefetch, cancel notification, transactions and a channel error."""

    def test_go_client(self):
        with tempfile.TemporaryDirectory(prefix="warren-go-") as cache:
            env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off",
                       GOCACHE=cache, GOFLAGS="")
            proc = subprocess.run(
                ["/usr/bin/go", "run", "amqp091.go", self.host, str(self.port),
                 uuid.uuid4().hex[:12]],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=CLIENTS, env=env,
                timeout=240, text=True)
        self.assertEqual(proc.returncode, 0, "amqp091.go failed:\n%s\n%s"
                         % (proc.stdout, proc.stderr))
        self.assertEqual(proc.stdout.splitlines(), [
            "connected 0 9 true",
            "headers {array=[int32(1) string(two) bool(true)] bool=bool(true) "
            "bytes=[]byte(raw) decimal=amqp091.Decimal({2 12345}) float32=float32(1.5) "
            "float64=float64(2.25) int16=int16(-16) int32=int32(-32) int64=int64(-64) "
            "int8=int8(-8) nil=<nil>(<nil>) string=string(text) table={inner=int32(7)} "
            "time=time.Time(1700000000)}",
            "properties text/plain 2 4 c r 60000 m 1700000000 t guest go typed",
            "priority order 9,5,1",
            "confirms 11 returned 312 NO_ROUTE",
            "consumed w0,w1,w2,w3,w4,w5",
            "cancelled go-consumer deleted with 0",
            "tx 1 committed",
            "passive 404 NOT_FOUND true 404",
            "other channel after error true",
            "closed",
            "done",
        ])


class NagiosTest(BrokerTestCase):
    """The checks of nagios-plugins-rabbitmq (Perl, LWP) against the management API. The node
    checks ask for /api/nodes/rabbit@<name>, so this broker takes that node name."""

    broker_args = ("--cluster-name", "rabbit@localhost")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.http_port = cls.broker.wait_listener("http")[1]
        except BaseException:
            cls.tearDownClass()
            raise

    def check(self, name, *args):
        proc = run(["/usr/bin/check_rabbitmq_" + name, "-H", self.host, "--port",
                    str(self.http_port), "-u", "guest", "-p", "guest", *args], timeout=30)
        return proc.returncode, proc.stdout.strip()

    def assert_ok(self, name, *args):
        rc, out = self.check(name, *args)
        self.assertEqual(rc, 0, out)
        self.assertTrue(out.startswith("RABBITMQ_%s OK" % name.upper()), out)
        return out

    def counted(self, check, what):
        """The figure check_rabbitmq_<check> gives for `what` ("connections", "messages_ready")."""
        out = self.assert_ok(check)
        return int(re.search(r"\b%s OK \((\d+)\)" % what, out).group(1))

    def test_aliveness_and_counts(self):
        self.assertEqual(self.assert_ok("aliveness"), "RABBITMQ_ALIVENESS OK - vhost: /")
        ready_before = self.counted("overview", "messages_ready")
        conn = self.connect()
        ch = conn.channel()
        q = ch.queue_declare(unique("nagios"), exclusive=True).method.queue
        for i in range(3):
            ch.basic_publish("", q, b"x")
        # Counted from the statistics, which lag a little behind.
        self.assertTrue(wait_until(lambda: self.counted("connections", "connections") >= 1,
                                   timeout=15))
        self.assertTrue(wait_until(
            lambda: self.counted("overview", "messages_ready") == ready_before + 3, timeout=15),
            self.check("overview"))
        self.assertRegex(self.assert_ok("objects"), r"queue=\d+;; channel=\d+;;")
        out = self.assert_ok("queue", "--queue", q)
        self.assertIn("messages=3;;", out.replace(" ", ""))
        rc, out = self.check("queue", "--queue", unique("nagios.missing"))
        self.assertEqual(rc, 2, out)
        self.assertIn("Not Found", out)

    def test_node_checks(self):
        if EXTERNAL:
            self.skipTest("the external broker's node is not named rabbit@localhost")
        conn = self.connect()  # one client socket at least
        out = self.assert_ok("server", "-n", "localhost")
        for part in ("Memory OK", "Process OK", "FD OK", "Sockets OK"):
            self.assertIn(part, out)
        node = Api(self.host, self.http_port).get("/api/nodes/rabbit@localhost")
        self.assertGreaterEqual(node["sockets_used"], 1)
        self.assertLessEqual(node["sockets_used"], node["fd_used"])
        self.assertEqual(node["sockets_total"], node["fd_total"])
        self.assertGreater(node["proc_used"], 1)  # actors: at least the vhost, the connection
        self.assertEqual(node["proc_total"], 1048576)
        conn.close()
        self.assertEqual(self.assert_ok("partition", "-n", "localhost"),
                         "RABBITMQ_PARTITION OK - No Partitions")
        self.assertEqual(self.assert_ok("watermark", "-n", "localhost"),
                         "RABBITMQ_WATERMARK OK - mem_alarm disk_free_alarm")

    def test_a_wrong_password_is_access_refused(self):
        proc = run(["/usr/bin/check_rabbitmq_overview", "-H", self.host, "--port",
                    str(self.http_port), "-u", "guest", "-p", "wrong"], timeout=30)
        self.assertEqual(proc.returncode, 2, proc.stdout)
        self.assertIn("Access Refused", proc.stdout)
