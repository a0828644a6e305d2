"""Order a client can rely on, checked on a raw socket: a mandatory publish that no queue
takes is answered with basic.return before the answer to any later synchronous method on the
same channel, and before channel.close-ok (RabbitMQ routes inside the channel); and the messages
one channel publishes reach a queue in the order they were published, whichever exchange took
them there."""

import struct
import time
import unittest

import amqp_raw as raw
from harness import BrokerTestCase, unique

EXCHANGE_DECLARE = (40, 10)
EXCHANGE_DECLARE_OK = (40, 11)
BASIC_RETURN = (60, 50)
QUEUE_DECLARE = (50, 10)
QUEUE_DECLARE_OK = (50, 11)
QUEUE_BIND = (50, 20)
QUEUE_BIND_OK = (50, 21)
TX_SELECT = (90, 10)
TX_SELECT_OK = (90, 11)
TX_COMMIT = (90, 20)
TX_COMMIT_OK = (90, 21)
CONFIRM_SELECT = (85, 10)
CONFIRM_SELECT_OK = (85, 11)


def publish_frames(channel, exchange, key, body, mandatory=True):
    args = struct.pack("!H", 0) + raw.shortstr(exchange) + raw.shortstr(key) + \
        bytes([1 if mandatory else 0])
    return (raw.method_frame(channel, raw.BASIC_PUBLISH, args)
            + raw.content_header_frame(channel, 60, len(body))
            + raw.frame(raw.FRAME_BODY, channel, body))


class ReturnOrderTest(BrokerTestCase):

    def connect_raw(self):
        c = raw.RawConnection(self.host, self.port)
        self.addCleanup(c.close)
        c.handshake()
        c.open_channel(1)
        return c

    def declare_exchange(self, c, name):
        c.send_method(1, EXCHANGE_DECLARE, struct.pack("!H", 0) + raw.shortstr(name)
                      + raw.shortstr("direct") + b"\x00" + raw.empty_table())
        c.expect_method(EXCHANGE_DECLARE_OK, 1)

    def methods_until(self, c, last):
        seen = []
        while True:
            f = c.read_frame()
            if f.type == raw.FRAME_METHOD:
                seen.append(f.class_method)
                if f.class_method == last:
                    return seen

    def test_returns_precede_a_later_synchronous_answer(self):
        c = self.connect_raw()
        ex = unique("nowhere")
        self.declare_exchange(c, ex)
        c.send(b"".join(publish_frames(1, ex, "k%d" % i, b"x") for i in range(5)))
        c.send_method(1, QUEUE_DECLARE, struct.pack("!H", 0) + raw.shortstr("")
                      + bytes([0b01000]) + raw.empty_table())  # exclusive server-named
        seen = self.methods_until(c, QUEUE_DECLARE_OK)
        self.assertEqual(seen, [BASIC_RETURN] * 5 + [QUEUE_DECLARE_OK])

    def test_returns_precede_channel_close_ok(self):
        c = self.connect_raw()
        ex = unique("nowhere")
        self.declare_exchange(c, ex)
        c.send(b"".join(publish_frames(1, ex, "k", b"y") for _ in range(3)))
        c.send_method(1, raw.CHANNEL_CLOSE, struct.pack("!H", 200) + raw.shortstr("bye")
                      + struct.pack("!HH", 0, 0))
        seen = self.methods_until(c, raw.CHANNEL_CLOSE_OK)
        self.assertEqual(seen, [BASIC_RETURN] * 3 + [raw.CHANNEL_CLOSE_OK])


def cc_header_frame(channel, body_size, keys):
    """A content header whose only property is headers = {CC: [keys...]}."""
    array = b"".join(b"S" + raw.longstr(k) for k in keys)
    table = raw.shortstr("CC") + b"A" + struct.pack("!I", len(array)) + array
    return raw.frame(raw.FRAME_HEADER, channel, struct.pack("!HHQH", 60, 0, body_size, 0x2000)
                     + struct.pack("!I", len(table)) + table)


class PublishOrderTest(BrokerTestCase):
    """RabbitMQ hands a channel's publishes to a queue in the order they were published, also
    when some come through an exchange and others through the default exchange. Sent in one
    burst, so that the broker reads many publishes at once."""

    COUNT = 4000

    def setUp(self):
        super().setUp()
        self.c = raw.RawConnection(self.host, self.port, timeout=20)
        self.addCleanup(self.c.close)
        self.c.handshake()
        self.c.open_channel(1)
        self.queue = unique("order")
        self.declare(self.queue)
        self.c.send_method(1, QUEUE_BIND, struct.pack("!H", 0) + raw.shortstr(self.queue)
                           + raw.shortstr("amq.direct") + raw.shortstr(self.queue) + b"\x00"
                           + raw.empty_table())
        self.c.expect_method(QUEUE_BIND_OK, 1)

    def declare(self, name):
        self.c.send_method(1, QUEUE_DECLARE, struct.pack("!H", 0) + raw.shortstr(name)
                           + b"\x00" + raw.empty_table())
        self.c.expect_method(QUEUE_DECLARE_OK, 1)
        self.addCleanup(self.delete_quietly, name)

    def delete_quietly(self, name):
        try:
            self.channel().queue_delete(name)
        except Exception:
            pass

    def burst(self, other_route):
        """COUNT publishes, every third one through amq.direct, the rest `other_route(i)`."""
        frames = []
        for i in range(self.COUNT):
            body = str(i).encode()
            if i % 3 == 0:
                frames.append(publish_frames(1, "amq.direct", self.queue, body, False))
            else:
                frames.append(other_route(body))
        self.c.send(b"".join(frames))

    def direct(self, body):
        return publish_frames(1, "", self.queue, body, False)

    def assert_in_order(self, queue=None):
        ch = self.channel()
        got = []
        deadline = time.monotonic() + 30
        for method, _props, body in ch.consume(queue or self.queue, auto_ack=True,
                                              inactivity_timeout=5):
            if method is None or time.monotonic() > deadline:
                break
            got.append(int(body))
            if len(got) == self.COUNT:
                break
        self.assertEqual(len(got), self.COUNT)
        inversions = sum(1 for a, b in zip(got, got[1:]) if b < a)
        self.assertEqual(inversions, 0, "first out of order at %d" % next(
            (i for i, (a, b) in enumerate(zip(got, got[1:])) if b < a), -1))

    def test_an_exchange_and_the_default_exchange_to_one_queue(self):
        self.burst(self.direct)
        self.assert_in_order()

    def test_in_confirm_mode(self):
        self.c.send_method(1, CONFIRM_SELECT, b"\x00")
        self.c.expect_method(CONFIRM_SELECT_OK, 1)
        self.burst(self.direct)
        self.assert_in_order()

    def test_in_a_transaction(self):
        self.c.send_method(1, TX_SELECT)
        self.c.expect_method(TX_SELECT_OK, 1)
        self.burst(self.direct)
        self.c.send_method(1, TX_COMMIT)
        self.c.expect_method(TX_COMMIT_OK, 1)
        self.assert_in_order()

    def test_cc_on_the_default_exchange(self):
        other = unique("order-other")
        self.declare(other)

        def cc(body):
            publish = raw.method_frame(1, raw.BASIC_PUBLISH, struct.pack("!H", 0)
                                       + raw.shortstr("") + raw.shortstr(other) + b"\x00")
            return (publish + cc_header_frame(1, len(body), [self.queue])
                    + raw.frame(raw.FRAME_BODY, 1, body))
        self.burst(cc)
        self.assert_in_order()


if __name__ == "__main__":
    unittest.main()
