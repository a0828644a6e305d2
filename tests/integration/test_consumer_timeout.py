"""The delivery acknowledgement timeout (RabbitMQ's consumer_timeout), with a broker whose
timeout is one second: a channel that keeps a delivery unacknowledged longer is closed with
406 PRECONDITION_FAILED and RabbitMQ's text, its messages go back to the queue, and the
connection's other channels go on. A STOMP connection gets RabbitMQ's adapter's ERROR frame
and is closed. Deliveries acked in time, however long the channel keeps some unacked, and
deliveries without acks are left alone.

With WARREN_TEST_BROKER / WARREN_TEST_STOMP the tests run against a broker started with
`consumer_timeout = 1000`; RabbitMQ looks once a minute, so the waits are longer then.
"""

import os
import subprocess
import tempfile
import time
import unittest

import amqp
import pika

from harness import Broker, unique, wait_until, write_config
from stomp_raw import RawStomp
from stomp_support import StompTestCase

TIMEOUT_MS = 1000
TEXT = ("PRECONDITION_FAILED - delivery acknowledgement on channel %d timed out. Timeout "
        "value used: 1000 ms. This timeout value can be configured, see consumers doc guide "
        "to learn more")
EXTERNAL = bool(os.environ.get("WARREN_TEST_BROKER"))
# Longest wait for a channel to be closed (RabbitMQ checks on its one-minute channel tick).
CLOSE_WAIT_S = 75.0 if EXTERNAL else 10.0


class ConsumerTimeoutTest(StompTestCase):

    @classmethod
    def setUpClass(cls):
        cls.broker_args = ("--config", write_config(cls, "consumer_timeout = %d\n" % TIMEOUT_MS))
        super().setUpClass()

    def fill(self, queue, n):
        ch = self.channel()
        ch.queue_declare(self.queue_later(queue))
        for i in range(n):
            ch.basic_publish("", queue, b"m%d" % i)
        return ch

    def wait_channel_error(self, conn):
        """Drains events until a channel is closed by the broker; returns the exception and
        the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < CLOSE_WAIT_S:
            try:
                conn.drain_events(timeout=0.2)
            except TimeoutError:
                continue
            except amqp.exceptions.ChannelError as exc:
                return exc, time.monotonic() - start
        self.fail("no channel was closed within %.0f s" % CLOSE_WAIT_S)

    def ready(self, queue):
        return self.channel().queue_declare(queue, passive=True).method.message_count

    def test_an_unacked_delivery_closes_its_channel_and_only_that_one(self):
        q = unique("ct-consume")
        self.fill(q, 3)
        conn = self.amqp_connect()
        other = conn.channel()
        ch = conn.channel()
        ch.basic_qos(0, 10, False)
        got = []
        ch.basic_consume(q, callback=got.append)
        started = time.monotonic()
        while len(got) < 3 and time.monotonic() - started < 5:
            try:
                conn.drain_events(timeout=0.2)
            except TimeoutError:
                pass
        self.assertEqual(len(got), 3)
        exc, _ = self.wait_channel_error(conn)
        if not EXTERNAL:
            # Not before the timeout: the deliveries came after `started`.
            self.assertGreaterEqual(time.monotonic() - started, TIMEOUT_MS / 1000.0)
        self.assertEqual(exc.reply_code, 406)
        self.assertEqual(exc.reply_text, TEXT % ch.channel_id)
        # The connection and its other channel go on; the three messages are back.
        self.assertTrue(other.is_open)
        self.assertTrue(wait_until(lambda: self.ready(q) == 3, timeout=5))
        m = other.basic_get(q, no_ack=True)
        self.assertTrue(m.delivery_info["redelivered"])

    def test_a_basic_get_left_unacked_closes_its_channel(self):
        q = unique("ct-get")
        self.fill(q, 1)
        conn = self.amqp_connect()
        ch = conn.channel()
        self.assertIsNotNone(ch.basic_get(q, no_ack=False))
        exc, _ = self.wait_channel_error(conn)
        self.assertEqual(exc.reply_code, 406)
        self.assertEqual(exc.reply_text, TEXT % ch.channel_id)
        self.assertTrue(wait_until(lambda: self.ready(q) == 1, timeout=5))

    def test_acks_in_time_keep_a_busy_channel_open(self):
        # Something is unacked all the time for three timeouts, but every delivery is acked
        # within 0.4 s: the channel stays open.
        q = unique("ct-steady")
        conn = self.connect()
        pub = conn.channel()
        pub.queue_declare(self.queue_later(q))
        ch = conn.channel()
        ch.basic_qos(prefetch_count=20)
        held = []  # (delivery tag, when it came)
        ch.basic_consume(q, lambda c, m, p, b: held.append((m.delivery_tag, time.monotonic())))
        sent = acked = 0
        start = time.monotonic()
        most_held = 0
        while time.monotonic() - start < 3 * TIMEOUT_MS / 1000.0:
            if sent < (time.monotonic() - start) / 0.1:
                pub.basic_publish("", q, b"x")
                sent += 1
            conn.process_data_events(time_limit=0.02)
            most_held = max(most_held, len(held))
            while held and time.monotonic() - held[0][1] >= 0.4:
                ch.basic_ack(held.pop(0)[0])
                acked += 1
        self.assertTrue(ch.is_open)
        self.assertGreaterEqual(most_held, 2)  # it did hold deliveries all along
        self.assertGreaterEqual(acked, 20)
        ch.basic_ack(0, multiple=True)
        self.assertEqual(pub.queue_declare(q, passive=True).method.message_count, 0)

    def test_deliveries_without_acks_have_no_timeout(self):
        q, q2 = unique("ct-noack"), unique("ct-noack-get")
        self.fill(q, 1)
        self.fill(q2, 1)
        conn = self.connect()
        ch = conn.channel()
        got = []
        ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
        self.pump(conn, lambda: len(got) == 1)
        m = ch.basic_get(q2, auto_ack=True)
        self.assertIsNotNone(m[0])
        self.idle(conn, 2.5 * TIMEOUT_MS / 1000.0)
        self.assertTrue(ch.is_open)
        ch.queue_declare(q, passive=True)

    def test_a_stomp_subscription_left_unacked_ends_the_connection(self):
        q = unique("ct-stomp")
        s = RawStomp(self.stomp_host, self.stomp_port)
        self.addCleanup(s.close)
        self.assertEqual(s.connect("1.2").command, "CONNECTED")
        s.receipt("SEND", {"destination": "/queue/" + q}, b"one")
        s.receipt("SEND", {"destination": "/queue/" + q}, b"two")
        self.queue_later(q)
        s.send("SUBSCRIBE", {"id": "1", "destination": "/queue/" + q,
                             "ack": "client-individual"})
        first, second = s.expect("MESSAGE"), s.expect("MESSAGE")
        # Acking the newer one leaves the older one unacked.
        s.send("ACK", {"id": second.header("ack")})
        err = s.expect("ERROR", timeout=CLOSE_WAIT_S)
        self.assertEqual(err.header("message"), "precondition_failed")
        self.assertEqual(err.body.decode(), TEXT % 1)
        s.wait_closed()
        self.assertEqual(first.body, b"one")
        # The unacked message is back, redelivered.
        t = RawStomp(self.stomp_host, self.stomp_port)
        self.addCleanup(t.close)
        t.connect("1.2")
        t.send("SUBSCRIBE", {"id": "2", "destination": "/queue/" + q})
        again = t.expect("MESSAGE")
        self.assertEqual(again.body, b"one")
        self.assertEqual(again.header("redelivered"), "true")
        self.assertIsNone(t.poll_frame(0.3))

    def test_a_stomp_auto_ack_subscription_has_no_timeout(self):
        q = unique("ct-stomp-auto")
        s = RawStomp(self.stomp_host, self.stomp_port)
        self.addCleanup(s.close)
        s.connect("1.2")
        self.queue_later(q)
        s.send("SUBSCRIBE", {"id": "1", "destination": "/queue/" + q})
        s.receipt("SEND", {"destination": "/queue/" + q}, b"x")
        s.expect("MESSAGE")
        self.assertIsNone(s.poll_frame(2.5 * TIMEOUT_MS / 1000.0))
        s.receipt("SEND", {"destination": "/queue/" + q}, b"y")
        self.assertEqual(s.expect("MESSAGE").body, b"y")


@unittest.skipIf(EXTERNAL, "starts warrend itself")
class ConsumerTimeoutConfigTest(unittest.TestCase):

    def config(self, value):
        conf = write_config(self, "consumer_timeout = %s\n" % value)
        return conf

    def test_values(self):
        for good in ("1800000", "false"):
            broker = Broker(binary=os.environ.get("WARREND"),
                            extra_args=("--config", self.config(good))).start()
            broker.stop()
        with tempfile.TemporaryDirectory() as d:
            for bad in ("0", "-5", "true", "30m", ""):
                r = subprocess.run([os.environ.get("WARREND", "warrend"), "--config",
                                    self.config(bad), "--amqp-port", "0", "--stomp-port", "0",
                                    "--http-port", "0", "--data-dir", d],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
                self.assertEqual(r.returncode, 2, bad)
                self.assertIn(b"consumer_timeout", r.stderr)


if __name__ == "__main__":
    unittest.main()
