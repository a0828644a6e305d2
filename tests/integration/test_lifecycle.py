"""warrend as a process: flags, config file, log lines, graceful stop with 320
CONNECTION_FORCED, and arguments this build refuses with 540 NOT_IMPLEMENTED."""

import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import pika
import pika.exceptions as pex

from harness import Broker, BrokerTestCase, unique, wait_until

WARREND = os.environ.get("WARREND")


@unittest.skipIf(os.environ.get("WARREN_TEST_BROKER"), "needs its own warrend process")
class ProcessTest(unittest.TestCase):

    def run_warrend(self, *args, timeout=10):
        return subprocess.run([WARREND, *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)

    def test_help_lists_the_flags(self):
        r = self.run_warrend("--help")
        self.assertEqual(r.returncode, 0)
        out = r.stdout.decode()
        for flag in ("--amqp-port", "--stomp-port", "--http-port", "--data-dir",
                     "--config", "--workers", "--log-level", "--help"):
            self.assertIn(flag, out)

    def test_bad_flag_and_bad_config_exit_2(self):
        r = self.run_warrend("--no-such-flag", "1")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"unknown option", r.stderr)
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
            f.write("heartbeat = lots\n")
            f.flush()
            r = self.run_warrend("--config", f.name)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"heartbeat", r.stderr)

    def test_config_file_sets_tuning_and_flags_override_it(self):
        with tempfile.TemporaryDirectory() as d:
            conf = os.path.join(d, "warren.conf")
            with open(conf, "w") as f:
                f.write("# test\nlisteners.tcp.default = 127.0.0.1:1\n"
                        "heartbeat = 7\nchannel_max = 99\n")
            proc = subprocess.Popen([WARREND, "--config", conf, "--amqp-port", "0",
                                     "--stomp-port", "0", "--http-port", "0",
                                     "--data-dir", os.path.join(d, "data")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                port = None
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    line = proc.stderr.readline().decode()
                    m = re.search(r"listening amqp 127\.0\.0\.1:(\d+)", line)
                    if m:
                        port = int(m.group(1))
                        break
                self.assertIsNotNone(port)
                self.assertNotEqual(port, 1)  # --amqp-port 0 won over the file
                conn = pika.BlockingConnection(pika.ConnectionParameters(
                    host="127.0.0.1", port=port))
                # The negotiated values are the broker's offer from the file.
                self.assertEqual(conn._impl.params.heartbeat, 7)
                self.assertEqual(conn._impl.params.channel_max, 99)
                conn.close()
            finally:
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(10), 0)
                proc.stderr.close()

    def test_sigterm_closes_connections_with_320_and_exits_0(self):
        broker = Broker(binary=WARREND).start()
        try:
            conn = pika.BlockingConnection(pika.ConnectionParameters(
                host=broker.host, port=broker.port))
            ch = conn.channel()
            q = ch.queue_declare(queue="", exclusive=True).method.queue
            ch.basic_publish("", q, b"x")
            broker.proc.send_signal(signal.SIGTERM)
            with self.assertRaises(pex.ConnectionClosedByBroker) as ctx:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    conn.process_data_events(time_limit=0.2)
            self.assertEqual(ctx.exception.reply_code, 320)
            self.assertIn("CONNECTION_FORCED", ctx.exception.reply_text)
            self.assertEqual(broker.proc.wait(10), 0)
        finally:
            broker._kill()
            broker._cleanup_dir()

    def test_sigterm_right_after_start_exits_0(self):
        # Broker.start() returns once the listeners are logged; a SIGTERM at that moment
        # used to find the default action still in place now and then (exit by signal).
        for _ in range(10):
            Broker(binary=WARREND).start().stop()  # stop() requires exit code 0

    def test_log_has_connection_and_error_lines(self):
        broker = Broker(binary=WARREND).start()
        try:
            conn = pika.BlockingConnection(pika.ConnectionParameters(
                host=broker.host, port=broker.port))
            ch = conn.channel()
            with self.assertRaises(pex.ChannelClosedByBroker):
                ch.queue_declare(queue=unique("missing"), passive=True)
            conn.close()
            log = lambda: broker.log_text()
            self.assertTrue(wait_until(lambda: "closing AMQP connection" in log(), 5), log())
            text = log()
            self.assertRegex(text, r"accepted AMQP connection 127\.0\.0\.1:\d+ "
                                   r"\(user 'guest', vhost '/'\)")
            self.assertRegex(text, r"error 404: NOT_FOUND - no queue")
            self.assertRegex(text, r"closing AMQP connection 127\.0\.0\.1:\d+ "
                                   r"\(user 'guest', vhost '/'\)")
        finally:
            broker.stop()


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT = os.path.join(ROOT, "etc", "systemd", "warrend.service")


@unittest.skipIf(os.environ.get("WARREN_TEST_BROKER"), "needs its own warrend process")
class ServiceUnitTest(unittest.TestCase):
    """etc/systemd/warrend.service with what `cmake --install` lays out: systemd accepts the
    unit, and its command line starts warrend, which its stop signal stops cleanly."""

    def test_the_unit_runs_the_installed_warrend(self):
        build = os.path.dirname(os.path.dirname(os.path.abspath(WARREND)))
        if not os.path.exists(os.path.join(build, "cmake_install.cmake")):
            self.skipTest("WARREND is not in a CMake build directory")
        analyze = "/usr/bin/systemd-analyze"
        self.assertTrue(os.access(analyze, os.X_OK), "systemd-analyze (Debian's systemd)")
        with tempfile.TemporaryDirectory() as d:
            prefix = os.path.join(d, "usr-local")
            r = subprocess.run(["cmake", "--install", build, "--prefix", prefix],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout.decode())
            with open(UNIT) as f:
                unit = f.read()
            exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1).split()
            self.assertEqual(exec_start[0], "/usr/local/bin/warrend")
            self.assertEqual(re.search(r"^KillSignal=(\w+)$", unit, re.M).group(1), "SIGTERM")
            # The unit as installed under this prefix; systemd-analyze checks its keys and
            # that ExecStart names an executable.
            local = os.path.join(d, "warrend.service")
            with open(local, "w") as f:
                f.write(unit.replace("/usr/local", prefix))
            r = subprocess.run([analyze, "verify", local], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            out = r.stdout.decode()
            self.assertEqual(r.returncode, 0, out)
            self.assertNotRegex(out, r"(?i)unknown|invalid|failed|not executable", out)
            # Its command line, with this test's data directory and free ports.
            args = [a.replace("/usr/local", prefix) for a in exec_start]
            args[args.index("--data-dir") + 1] = os.path.join(d, "data")
            self.assertTrue(os.path.isfile(args[args.index("--config") + 1]))
            proc = subprocess.Popen(args + ["--amqp-port", "0", "--stomp-port", "0",
                                            "--http-port", "0"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                port = None
                deadline = time.monotonic() + 20
                while port is None and time.monotonic() < deadline:
                    line = proc.stderr.readline().decode()
                    if not line:
                        break
                    m = re.search(r"listening amqp 127\.0\.0\.1:(\d+)", line)
                    port = int(m.group(1)) if m else None
                self.assertIsNotNone(port, "the unit's warrend did not listen")
                conn = pika.BlockingConnection(pika.ConnectionParameters(
                    host="127.0.0.1", port=port))
                conn.channel().queue_declare(unique("unit"), durable=True)
                conn.close()
            finally:
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(60), 0)  # (TimeoutStopSec)
                proc.stderr.close()
            self.assertTrue(os.listdir(os.path.join(d, "data")))



class NotImplementedArgumentsTest(BrokerTestCase):
    """Queue types neither broker has are refused, never silently ignored."""

    def test_each_unknown_queue_type_is_refused_with_406(self):
        # RabbitMQ 3.10's answer: a channel error naming the type.
        for value in ("bogus", "mirrored"):
            ch = self.connect().channel()
            name = unique("args")
            with self.assertRaises(pex.ChannelClosedByBroker) as ctx:
                ch.queue_declare(queue=name, arguments={"x-queue-type": value})
            self.assertEqual(
                (ctx.exception.reply_code, ctx.exception.reply_text),
                (406, "PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue '%s' in vhost "
                 "'/': \"unsupported queue type '%s'\"" % (name, value)))

    def test_classic_queue_type_and_unknown_arguments_are_accepted(self):
        ch = self.connect().channel()
        q = unique("args")
        ch.queue_declare(queue=q, arguments={"x-queue-type": "classic",
                                             "x-custom": "kept"})
        ch.queue_delete(q)


if __name__ == "__main__":
    unittest.main()
