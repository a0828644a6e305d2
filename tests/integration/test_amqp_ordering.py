"""Frame order a client can rely on, checked on a raw socket: a mandatory publish that no queue
takes is answered with basic.return before the answer to any later synchronous method on the
same channel, and before channel.close-ok (RabbitMQ routes inside the channel)."""

import struct
import unittest

import amqp_raw as raw
from harness import BrokerTestCase, unique

EXCHANGE_DECLARE = (40, 10)
EXCHANGE_DECLARE_OK = (40, 11)
BASIC_RETURN = (60, 50)
QUEUE_DECLARE = (50, 10)
QUEUE_DECLARE_OK = (50, 11)


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


if __name__ == "__main__":
    unittest.main()
