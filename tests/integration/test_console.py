"""warren-console-producer and warren-console-consumer, the console tools of the Kafka seed
(`kafka-console-producer.sh --topic T < file`, `kafka-console-consumer.sh --topic T >
file &`) for an AMQP broker: a file's lines into a queue or an exchange, a queue (or what an
exchange gets from now on) to standard output. They are AMQP clients, so every test here also
runs against another broker (WARREN_TEST_BROKER=host:port).
"""

import os
import shutil
import subprocess
import tempfile
import unittest

from harness import BrokerTestCase, get_all, unique, wait_until

PRODUCER = os.environ.get("WARREN_CONSOLE_PRODUCER")
CONSUMER = os.environ.get("WARREN_CONSOLE_CONSUMER")
EXTERNAL = os.environ.get("WARREN_TEST_BROKER")


@unittest.skipUnless(PRODUCER and CONSUMER,
                     "WARREN_CONSOLE_PRODUCER and WARREN_CONSOLE_CONSUMER name the tools")
class ConsoleToolsTest(BrokerTestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="warren-console-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.uri = "%s:%d" % (self.host, self.port)

    def run_tool(self, tool, *args, stdin=None, timeout=60):
        return subprocess.run([tool, "-h", self.uri, *args], input=stdin, capture_output=True,
                              timeout=timeout)

    def test_seed_scenario_file_into_a_queue_and_back_into_a_file(self):
        q = self.queue_later(unique("console.k8s_log"))
        lines = [("line %d " % i).encode() + b"x" * (i % 50) for i in range(2000)]
        lines[7] = b""                                  # an empty line is a message too
        lines[8] = "日志 ünïcode".encode()
        lines[9] = b"y" * 300000                        # larger than one frame (131072)
        data = b"\n".join(lines) + b"\n"
        src = os.path.join(self.dir, "k8s_log_pl.txt")
        with open(src, "wb") as f:
            f.write(data)
        with open(src, "rb") as f:  # `producer ... < file`
            r = subprocess.run([PRODUCER, "-h", self.uri, "--queue", q, "--declare"], stdin=f,
                               capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"published=2000 confirmed=2000 returned=0 nacked=0", r.stderr)
        out = os.path.join(self.dir, "copy.txt")
        with open(out, "wb") as f:  # `consumer ... > file &`
            proc = subprocess.Popen([CONSUMER, "-h", self.uri, "--queue", q, "--timeout-ms",
                                     "1500"], stdout=f, stderr=subprocess.PIPE)
            _, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn(b"Processed a total of 2000 messages", err)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), data)
        ch = self.connect().channel()
        self.assertEqual(ch.queue_declare(q, passive=True).method.message_count, 0)

    def test_max_messages_leaves_the_rest_in_the_queue(self):
        q = self.queue_later(unique("console.max"))
        r = self.run_tool(PRODUCER, "-q", q, "--declare",
                          stdin=b"".join(b"m%d\n" % i for i in range(10)))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.run_tool(CONSUMER, "-q", q, "--max-messages", "4", "--prefetch", "10")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"m0\nm1\nm2\nm3\n")
        conn = self.connect()
        ch = conn.channel()
        self.assertEqual(sorted(get_all(ch, q)), [b"m%d" % i for i in range(4, 10)])

    def test_exchange_mode_reads_what_is_published_from_now_on(self):
        key = unique("orders")
        consumer = subprocess.Popen(
            [CONSUMER, "-h", self.uri, "-e", "amq.topic", "-k", key + ".#", "--max-messages",
             "3", "--print-key", "--timeout-ms", "30000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: consumer.poll() is None and consumer.kill())
        # Published until the consumer's queue is bound: before that, the broker returns them.
        def publish_once():
            r = self.run_tool(PRODUCER, "-e", "amq.topic", "-k", key + ".eu",
                              stdin=b"probe\n")
            return r.returncode == 0
        self.assertTrue(wait_until(publish_once, timeout=20, interval=0.2))
        r = self.run_tool(PRODUCER, "-e", "amq.topic", "-k", key + ".us",
                          stdin=b"first\nsecond\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        out, err = consumer.communicate(timeout=60)
        self.assertEqual(consumer.returncode, 0, err)
        self.assertEqual(out.decode().splitlines(),
                         ["%s.eu\tprobe" % key, "%s.us\tfirst" % key, "%s.us\tsecond" % key])

    def test_unroutable_lines_are_reported(self):
        r = self.run_tool(PRODUCER, "-q", unique("console.nowhere"), stdin=b"a\nb\nc\n")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn(b"published=3 confirmed=3 returned=3 nacked=0", r.stderr)
        self.assertIn(b"NO_ROUTE", r.stderr)

    def test_refused_login_and_missing_queue(self):
        host_port = self.uri
        r = subprocess.run([PRODUCER, "-h", "amqp://guest:wrong@%s/" % host_port, "-q", "x"],
                           input=b"a\n", capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"ACCESS_REFUSED", r.stderr)
        r = self.run_tool(CONSUMER, "-q", unique("console.missing"), "--timeout-ms", "1000")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn(b"404 NOT_FOUND - no queue", r.stderr)
        r = self.run_tool(CONSUMER, "--max-messages", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"--queue, --exchange", r.stderr)

    def test_persistent_messages_and_content_type(self):
        q = self.queue_later(unique("console.props"))
        r = self.run_tool(PRODUCER, "-q", q, "--declare", "--persistent", "--content-type",
                          "application/json", stdin=b'{"a": 1}\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        ch = self.connect().channel()
        method, props, body = ch.basic_get(q, auto_ack=True)
        self.assertEqual(body, b'{"a": 1}')
        self.assertEqual(props.delivery_mode, 2)
        self.assertEqual(props.content_type, "application/json")


if __name__ == "__main__":
    unittest.main()
