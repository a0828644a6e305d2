"""Malformed input on raw sockets: the broker must reject it the AMQP way and
keep serving every other client."""

import os
import socket
import struct
import time
import unittest

import pika

import amqp_raw as raw
from harness import BrokerTestCase, wait_until

QOS_ARGS = struct.pack("!IHB", 0, 10, 0)      # prefetch-size, prefetch-count, global
PUBLISH_ARGS = struct.pack("!H", 0) + raw.shortstr("") + raw.shortstr("nowhere") + b"\x00"


class BadInputTest(BrokerTestCase):

    def raw_connect(self, **handshake):
        c = raw.RawConnection(self.host, self.port)
        self.addCleanup(c.close)
        c.handshake(**handshake)
        return c

    def assert_connection_closed_with(self, c, codes, text_prefix=None,
                                      class_method=None, timeout=5):
        """Read connection.close, check it, answer close-ok and expect EOF."""
        close = c.expect_connection_close(timeout=timeout)
        self.assertIn(close.reply_code, codes, close)
        if text_prefix is not None:
            self.assertTrue(close.reply_text.startswith(text_prefix), close)
        if class_method is not None:
            self.assertEqual((close.class_id, close.method_id), class_method, close)
        c.send(raw.method_frame(0, raw.CONNECTION_CLOSE_OK))
        # After close-ok nothing more may come, and the socket must be closed.
        # (A broker may wait a few seconds before closing after a frame error.)
        rest = c.read_until_eof(timeout=8)
        self.assertEqual(rest, b"", "data after connection.close: %r" % (rest,))
        return close

    # -- protocol header ----------------------------------------------------------
    def assert_header_refused(self, first_bytes):
        """The broker answers with 0-9-1's protocol header and closes; others go on."""
        c = raw.RawConnection(self.host, self.port)
        self.addCleanup(c.close)
        c.send(first_bytes)
        self.assertEqual(c.read_until_eof(timeout=5), raw.PROTOCOL_HEADER)
        self.assert_broker_usable()

    def test_garbage_instead_of_protocol_header(self):
        self.assert_header_refused(b"GET / HT")  # exactly 8 bytes, as long as a protocol header

    def test_unsupported_protocol_version(self):
        self.assert_header_refused(b"AMQP\x00\x00\x09\x02")

    @unittest.skipIf(os.environ.get("WARREN_TEST_BROKER"), "RabbitMQ still speaks AMQP 0-8")
    def test_amqp_0_8_header_is_refused(self):
        self.assert_header_refused(b"AMQP\x01\x01\x08\x00")  # as most 0-8 clients write it

    def test_amqp_0_9_header_goes_on_in_0_9_1(self):
        # 0-9's header (aioamqp sends it): as RabbitMQ, the broker answers connection.start.
        c = raw.RawConnection(self.host, self.port)
        self.addCleanup(c.close)
        c.send(b"AMQP\x01\x01\x00\x09")
        start = c.expect_method(raw.CONNECTION_START)
        r = start.args()
        self.assertEqual((r.octet(), r.octet()), (0, 9))  # version-major, version-minor

    def test_pipelined_handshake_then_hang_up(self):
        # start-ok, tune-ok and open in one write, then the socket closed at once: tune-ok
        # waits for the login check and then runs with the socket already gone.
        for _ in range(20):
            c = raw.RawConnection(self.host, self.port)
            c.send(raw.pipelined_handshake())
            c.close()
        self.assert_broker_usable()
        self.broker.check_alive()

    def test_handshake_by_hand_works(self):
        # Guards the raw client itself: a well-formed session is accepted.
        c = self.raw_connect()
        self.assertIn(b"PLAIN", c.mechanisms)
        self.assertGreaterEqual(c.frame_max, 4096)
        c.open_channel(1)
        c.send_method(1, raw.BASIC_QOS, QOS_ARGS)
        c.expect_method((60, 11), 1)                       # basic.qos-ok
        c.send_method(0, raw.CONNECTION_CLOSE,
                      struct.pack("!H", 200) + raw.shortstr("bye") + struct.pack("!HH", 0, 0))
        c.expect_method(raw.CONNECTION_CLOSE_OK)

    # -- the client closes ----------------------------------------------------------
    def client_close(self, c):
        c.send_method(0, raw.CONNECTION_CLOSE,
                      struct.pack("!H", 200) + raw.shortstr("bye") + struct.pack("!HH", 0, 0))
        c.expect_method(raw.CONNECTION_CLOSE_OK)

    def test_after_close_ok_the_client_closes_the_socket(self):
        # The side that receives close-ok closes the socket: the broker waits for it (as
        # RabbitMQ does). A client that reads EOF before it has finished with close-ok
        # (amqp091-go) takes the clean close for a broken connection.
        c = self.raw_connect()
        c.open_channel(1)
        q = "excl-" + os.urandom(4).hex()
        c.send_method(1, (50, 10), struct.pack("!H", 0) + raw.shortstr(q) + b"\x04"
                      + raw.empty_table())                      # queue.declare, exclusive
        c.expect_method((50, 11), 1)
        self.client_close(c)
        with self.assertRaises(socket.timeout):
            c.read_until_eof(timeout=1.5)
        # The connection is gone for the broker all the same: its exclusive queue too.
        conn = self.connect()

        def queue_gone():
            ch = conn.channel()
            try:
                ch.queue_declare(q, passive=True)
            except pika.exceptions.ChannelClosedByBroker as e:
                return e.reply_code == 404
            ch.close()
            return False
        self.assertTrue(wait_until(queue_gone, timeout=5))
        c.close()
        self.assert_broker_usable()

    def test_a_client_that_does_not_close_is_closed_after_its_heartbeat(self):
        # RabbitMQ waits for the client up to the heartbeat timeout (30 s at most).
        c = self.raw_connect(heartbeat=1)
        self.client_close(c)
        heartbeat = raw.frame(raw.FRAME_HEARTBEAT, 0, b"")
        self.assertEqual(c.read_until_eof(timeout=6).replace(heartbeat, b""), b"")

    # -- framing errors ------------------------------------------------------------
    def test_wrong_frame_end_octet(self):
        c = self.raw_connect()
        c.open_channel(1)
        c.send(raw.frame(raw.FRAME_METHOD, 1, raw.method_payload(raw.BASIC_QOS, QOS_ARGS),
                         end=0x00))
        self.assert_connection_closed_with(c, {501}, "FRAME_ERROR")
        self.assert_broker_usable()

    def test_unknown_frame_type(self):
        c = self.raw_connect()
        c.open_channel(1)
        c.send(raw.frame(7, 1, b"abc"))
        self.assert_connection_closed_with(c, {501}, "FRAME_ERROR")
        self.assert_broker_usable()

    def test_frame_larger_than_negotiated_frame_max(self):
        c = self.raw_connect(frame_max=4096)
        self.assertEqual(c.frame_max, 4096)
        c.open_channel(1)
        # 5000 payload octets + 8 octets of framing > 4096.
        c.send(raw.frame(raw.FRAME_BODY, 1, b"x" * 5000))
        self.assert_connection_closed_with(c, {501}, "FRAME_ERROR")
        self.assert_broker_usable()

    def test_frame_of_exactly_frame_max_is_accepted(self):
        c = self.raw_connect(frame_max=4096)
        c.open_channel(1)
        body = b"y" * (4096 - 8)
        c.send_method(1, raw.BASIC_PUBLISH, PUBLISH_ARGS)
        c.send(raw.content_header_frame(1, 60, len(body)))
        c.send(raw.frame(raw.FRAME_BODY, 1, body))
        # Still a working connection: a synchronous method is answered.
        c.send_method(1, raw.BASIC_QOS, QOS_ARGS)
        c.expect_method((60, 11), 1)

    # -- channel / method errors -------------------------------------------------------
    def test_method_on_unopened_channel(self):
        c = self.raw_connect()
        c.send_method(5, raw.BASIC_QOS, QOS_ARGS)
        close = self.assert_connection_closed_with(c, {504}, "CHANNEL_ERROR")
        self.assertEqual(close.reply_text, "CHANNEL_ERROR - expected 'channel.open'")
        self.assertEqual((close.class_id, close.method_id), raw.BASIC_QOS)
        self.assert_broker_usable()

    def test_second_channel_open_on_same_channel(self):
        c = self.raw_connect()
        c.open_channel(1)
        c.send_method(1, raw.CHANNEL_OPEN, raw.shortstr(""))
        close = self.assert_connection_closed_with(c, {504}, "CHANNEL_ERROR")
        self.assertEqual((close.class_id, close.method_id), raw.CHANNEL_OPEN)
        self.assert_broker_usable()

    def _unknown_method(self, class_method):
        c = self.raw_connect()
        c.open_channel(1)
        c.send_method(1, class_method, b"")
        # The spec wants connection.close 540 (NOT_IMPLEMENTED). RabbitMQ 3.10
        # instead drops the TCP connection without a connection.close. Both end
        # the connection; anything else (e.g. carrying on) fails.
        try:
            f = c.read_frame(timeout=5)
        except raw.PeerClosed:
            pass
        else:
            self.assertEqual(f.class_method, raw.CONNECTION_CLOSE, f)
            close = raw.Close(f)
            self.assertEqual(close.reply_code, 540, close)
            c.send(raw.method_frame(0, raw.CONNECTION_CLOSE_OK))
            self.assertEqual(c.read_until_eof(timeout=8), b"")
        self.assert_broker_usable()

    def test_unknown_method_id(self):
        self._unknown_method((60, 999))

    def test_unknown_class_id(self):
        self._unknown_method((999, 10))

    def test_content_header_without_publish(self):
        c = self.raw_connect()
        c.open_channel(1)
        c.send(raw.content_header_frame(1, 60, 5))
        close = self.assert_connection_closed_with(c, {505}, "UNEXPECTED_FRAME")
        self.assertEqual(close.reply_text,
                         "UNEXPECTED_FRAME - expected method frame, got non method frame instead")
        self.assert_broker_usable()

    def test_body_without_publish(self):
        c = self.raw_connect()
        c.open_channel(1)
        c.send(raw.frame(raw.FRAME_BODY, 1, b"hello"))
        self.assert_connection_closed_with(c, {505}, "UNEXPECTED_FRAME")
        self.assert_broker_usable()

    def test_method_where_content_header_expected(self):
        c = self.raw_connect()
        c.open_channel(1)
        c.send_method(1, raw.BASIC_PUBLISH, PUBLISH_ARGS)
        c.send_method(1, raw.BASIC_QOS, QOS_ARGS)
        close = self.assert_connection_closed_with(c, {505}, "UNEXPECTED_FRAME",
                                                   class_method=raw.BASIC_PUBLISH)
        self.assertEqual(close.reply_text,
                         "UNEXPECTED_FRAME - expected content header for class 60, "
                         "got non content header frame instead")
        self.assert_broker_usable()

    def test_close_ok_after_unexpected_frame_is_read(self):
        # The frames are still delimited after a 505: the broker reads on, skips what other
        # channels send, and lets the client go on its close-ok (RabbitMQ does the same)
        # rather than after its own wait for one (3 s).
        c = self.raw_connect()
        c.open_channel(1)
        c.open_channel(2)
        c.send_method(1, raw.BASIC_PUBLISH, PUBLISH_ARGS)
        c.send_method(1, raw.BASIC_QOS, QOS_ARGS)   # 505: a content header was due
        c.send_method(2, raw.BASIC_QOS, QOS_ARGS)   # in flight when the broker closed
        c.send(raw.frame(raw.FRAME_BODY, 2, b"stray"))
        close = c.expect_connection_close(timeout=5)
        self.assertEqual(close.reply_code, 505, close)
        c.send(raw.method_frame(0, raw.CONNECTION_CLOSE_OK))
        started = time.monotonic()
        self.assertEqual(c.read_until_eof(timeout=8), b"")
        self.assertLess(time.monotonic() - started, 2.0,
                        "the socket stayed open after close-ok until the broker's own timeout")
        self.assert_broker_usable()

    # -- heartbeats ------------------------------------------------------------------
    def test_broker_sends_heartbeats(self):
        c = self.raw_connect(heartbeat=1)
        beats = 0
        deadline = time.monotonic() + 3.5
        while beats < 2:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                f = c.read_frame(timeout=left, skip_heartbeats=False)
            except socket.timeout:
                break
            self.assertEqual(f.type, raw.FRAME_HEARTBEAT, f)
            self.assertEqual((f.channel, f.payload), (0, b""), f)
            beats += 1
            c.send(raw.frame(raw.FRAME_HEARTBEAT, 0, b""))
        self.assertGreaterEqual(beats, 2, "expected heartbeat frames with heartbeat=1")

    def test_silent_client_is_disconnected_after_missed_heartbeats(self):
        c = self.raw_connect(heartbeat=1)
        start = time.monotonic()
        # Never answer; the broker must give up on us (spec: after two missed
        # heartbeat intervals; allow generous slack).
        with self.assertRaises(raw.PeerClosed):
            while True:
                c.read_frame(timeout=max(0.001, start + 8 - time.monotonic()))
        self.assertLess(time.monotonic() - start, 8)
        self.assert_broker_usable()


if __name__ == "__main__":
    unittest.main()
