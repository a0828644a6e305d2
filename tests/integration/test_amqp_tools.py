"""Round trips with the amqp-tools command line clients (librabbitmq-c)."""

import subprocess
import unittest

import pika

from harness import BrokerTestCase, unique, wait_until

TOOL_TIMEOUT_S = 20


class AmqpToolsTest(BrokerTestCase):

    def tool(self, name, *args, stdin=None, check=True):
        cmd = [name, "--server", self.host, "--port", str(self.port)] + list(args)
        proc = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=TOOL_TIMEOUT_S)
        if check and proc.returncode != 0:
            self.fail("%s exited with %d\nstdout: %r\nstderr: %r"
                      % (" ".join(cmd), proc.returncode, proc.stdout, proc.stderr))
        return proc

    def declare(self, queue):
        out = self.tool("amqp-declare-queue", "-q", queue).stdout
        self.assertEqual(out.decode().strip(), queue)
        self.addCleanup(self.tool, "amqp-delete-queue", "-q", queue, check=False)
        return queue

    def test_declare_publish_get(self):
        q = self.declare(unique("tools"))
        self.tool("amqp-publish", "-r", q, "-b", "first body")
        self.tool("amqp-publish", "-r", q, "-b", "second body")
        self.assertEqual(self.tool("amqp-get", "-q", q).stdout, b"first body")
        self.assertEqual(self.tool("amqp-get", "-q", q).stdout, b"second body")
        empty = self.tool("amqp-get", "-q", q, check=False)
        self.assertEqual(empty.returncode, 2, empty)       # "no message"
        self.assertEqual(empty.stdout, b"")

    def test_publish_lines_and_consume(self):
        q = self.declare(unique("tools"))
        self.tool("amqp-publish", "-r", q, "-l", stdin=b"alpha\nbeta\ngamma\n")
        # -l keeps each line's newline in the message body.
        one = self.tool("amqp-consume", "-q", q, "-c", "1", "cat")
        self.assertEqual(one.stdout, b"alpha\n")
        two = self.tool("amqp-consume", "-q", q, "-c", "2", "-p", "1", "cat")
        self.assertEqual(two.stdout, b"beta\ngamma\n")
        self.assertEqual(self.tool("amqp-get", "-q", q, check=False).returncode, 2)

    def test_consume_waits_for_a_message(self):
        q = self.declare(unique("tools"))
        consumer = subprocess.Popen(
            ["amqp-consume", "--server", self.host, "--port", str(self.port),
             "-q", q, "-c", "1", "cat"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.tool("amqp-publish", "-r", q, "-b", "late arrival")
            out, err = consumer.communicate(timeout=TOOL_TIMEOUT_S)
        finally:
            if consumer.poll() is None:
                consumer.kill()
                consumer.communicate()
        self.assertEqual(consumer.returncode, 0, err)
        self.assertEqual(out, b"late arrival")

    def test_consume_declares_and_binds_queue(self):
        conn = self.connect()
        ch = conn.channel()
        ex = unique("tools-ex")
        ch.exchange_declare(exchange=ex, exchange_type="direct", auto_delete=True)
        q = unique("tools")     # with -e, amqp-consume declares it (auto-delete) itself

        def consuming():
            c = conn.channel()
            try:
                return c.queue_declare(queue=q, passive=True).method.consumer_count == 1
            except pika.exceptions.ChannelClosedByBroker as e:
                self.assertEqual(e.reply_code, 404, e)
                return False
            finally:
                if c.is_open:
                    c.close()
        consumer = subprocess.Popen(
            ["amqp-consume", "--server", self.host, "--port", str(self.port),
             "-q", q, "-e", ex, "-r", "key", "-c", "1", "cat"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # The binding exists once the consumer is registered (bind comes first).
            self.assertTrue(wait_until(
                lambda: consumer.poll() is not None or consuming(),
                timeout=10, interval=0.1), "amqp-consume never started consuming")
            self.assertIsNone(consumer.poll(), "amqp-consume exited early")
            ch.confirm_delivery()
            ch.basic_publish(exchange=ex, routing_key="key", body=b"via binding",
                             properties=pika.BasicProperties(content_type="text/plain"))
            out, err = consumer.communicate(timeout=TOOL_TIMEOUT_S)
        finally:
            if consumer.poll() is None:
                consumer.kill()
                consumer.communicate()
        self.assertEqual(consumer.returncode, 0, err)
        self.assertEqual(out, b"via binding")
        # Its auto-delete queue went away with the consumer.
        self.assertTrue(wait_until(lambda: not self._exists(conn, q), timeout=5))

    def _exists(self, conn, q):
        c = conn.channel()
        try:
            c.queue_declare(queue=q, passive=True)
            c.close()
            return True
        except pika.exceptions.ChannelClosedByBroker as e:
            self.assertEqual(e.reply_code, 404, e)
            return False

    def test_publish_properties_reach_pika(self):
        q = self.declare(unique("tools"))
        self.tool("amqp-publish", "-r", q, "-p", "-C", "application/json",
                  "-E", "utf-8", "-t", "reply.queue", "-H", "x-tool: amqp-publish",
                  "-b", '{"k": 1}')
        ch = self.channel()
        method, props, body = ch.basic_get(q, auto_ack=True)
        self.assertIsNotNone(method)
        self.assertEqual(body, b'{"k": 1}')
        self.assertEqual(props.delivery_mode, 2)
        self.assertEqual(props.content_type, "application/json")
        self.assertEqual(props.content_encoding, "utf-8")
        self.assertEqual(props.reply_to, "reply.queue")
        self.assertEqual(props.headers, {"x-tool": "amqp-publish"})

    def test_publish_to_missing_exchange_fails(self):
        ex = unique("tools-missing")
        res = self.tool("amqp-publish", "-e", ex, "-r", "k", "-b", "x", check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn(b"404", res.stderr)
        self.assertIn(("NOT_FOUND - no exchange '%s' in vhost '/'" % ex).encode(), res.stderr)

    def test_get_from_missing_queue_fails(self):
        q = unique("tools-missing")
        res = self.tool("amqp-get", "-q", q, check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn(("NOT_FOUND - no queue '%s' in vhost '/'" % q).encode(), res.stderr)

    def test_delete_queue_reports_message_count(self):
        q = unique("tools")
        self.tool("amqp-declare-queue", "-q", q)
        self.tool("amqp-publish", "-r", q, "-b", "one")
        self.tool("amqp-publish", "-r", q, "-b", "two")
        out = self.tool("amqp-delete-queue", "-q", q).stdout
        self.assertEqual(out.decode().strip(), "2")
        self.assertNotEqual(self.tool("amqp-get", "-q", q, check=False).returncode, 0)


if __name__ == "__main__":
    unittest.main()
