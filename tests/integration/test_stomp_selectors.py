"""ActiveMQ-style selectors on STOMP subscriptions (a Warren extension: RabbitMQ
has none, so these tests are skipped against it).
"""

import unittest

import pika

from stomp_support import StompTestCase, unique

MESSAGES = [  # (body, headers)
    (b"red-7", {"color": "red", "n": "7"}),
    (b"red-3", {"color": "red", "n": "3"}),
    (b"blue-9", {"color": "blue", "n": "9"}),
    (b"red-none", {"color": "red"}),
    (b"red-10", {"color": "red", "n": "10"}),
    (b"green-4", {"color": "green", "n": "4", "name": "abc"}),
]


class SelectorTest(StompTestCase):

    def setUp(self):
        super().setUp()
        self.skip_on_rabbitmq("selectors")

    def send_all(self, dest, messages=MESSAGES):
        sender = self.raw("1.2")
        for body, headers in messages:
            h = dict(headers)
            h["destination"] = dest
            sender.receipt("SEND", h, body)

    def drain(self, conn, quiet=0.4):
        bodies = []
        while True:
            frame = conn.poll_frame(quiet)
            if frame is None:
                return bodies
            self.assertEqual(frame.command, "MESSAGE", frame)
            bodies.append(frame.body)

    def test_selector_delivers_only_matching(self):
        dest = "/queue/" + self.queue_name("sel")
        picky = self.raw("1.2")
        picky.receipt("SUBSCRIBE", {"destination": dest, "id": "picky",
                                    "selector": "color = 'red' AND n > 5"})
        self.send_all(dest)
        self.assertEqual(self.drain(picky), [b"red-7", b"red-10"])
        # The others stayed in the queue, in order, for a consumer without selector.
        other = self.raw("1.1")
        other.receipt("SUBSCRIBE", {"destination": dest, "id": "all"})
        self.assertEqual(self.drain(other), [b"red-3", b"blue-9", b"red-none", b"green-4"])
        # The selective consumer is still served after that.
        self.send_all(dest, [(b"red-99", {"color": "red", "n": "99"})])
        self.assertEqual(self.drain(picky), [b"red-99"])

    def test_selector_with_client_ack(self):
        dest = "/queue/" + self.queue_name("selack")
        picky = self.raw("1.2")
        picky.receipt("SUBSCRIBE", {"destination": dest, "id": "p", "ack": "client-individual",
                                    "selector": "color <> 'red'"})
        self.send_all(dest)
        frames = [picky.expect("MESSAGE") for _ in range(2)]
        self.assertEqual([f.body for f in frames], [b"blue-9", b"green-4"])
        picky.receipt("NACK", {"id": frames[0].header("ack")})
        again = picky.expect("MESSAGE")
        self.assertEqual(again.body, b"blue-9")
        self.assertEqual(again.header("redelivered"), "true")
        picky.receipt("ACK", {"id": again.header("ack")})
        picky.receipt("ACK", {"id": frames[1].header("ack")})
        self.assertIsNone(picky.poll_frame(0.3))

    def test_selector_forms(self):
        cases = {
            "color IN ('green', 'blue')": [b"blue-9", b"green-4"],
            "name LIKE 'ab%'": [b"green-4"],
            "n BETWEEN 3 AND 7": [b"red-7", b"red-3", b"green-4"],
            "n IS NULL": [b"red-none"],
            "NOT (color = 'red') OR n * 2 = 20": [b"blue-9", b"red-10", b"green-4"],
            "": [m[0] for m in MESSAGES],
        }
        for selector, expected in cases.items():
            with self.subTest(selector=selector):
                dest = "/queue/" + self.queue_name("forms")
                conn = self.raw("1.2")
                conn.receipt("SUBSCRIBE", {"destination": dest, "id": "f",
                                           "selector": selector})
                self.send_all(dest)
                self.assertEqual(self.drain(conn), expected)

    def test_selector_on_topic(self):
        key = unique("seltopic")
        picky, everything = self.raw("1.2"), self.raw("1.0")
        picky.receipt("SUBSCRIBE", {"destination": "/topic/" + key, "id": "p",
                                    "selector": "n >= 9"})
        everything.receipt("SUBSCRIBE", {"destination": "/topic/" + key, "id": "e"})
        self.send_all("/topic/" + key)
        self.assertEqual(self.drain(picky), [b"blue-9", b"red-10"])
        self.assertEqual(len(self.drain(everything)), len(MESSAGES))

    def test_selector_on_amqp_headers(self):
        name = self.queue_name("selamqp")
        picky = self.raw("1.2")
        picky.receipt("SUBSCRIBE", {"destination": "/queue/" + name, "id": "p",
                                    "selector": "color = 'red' AND n > 5"})
        conn = self.connect()
        ch = conn.channel()
        ch.confirm_delivery()
        for body, headers in ((b"amqp-red-2", {"color": "red", "n": 2}),
                              (b"amqp-red-8", {"color": "red", "n": 8})):
            ch.basic_publish("", name, body, pika.BasicProperties(headers=headers))
        self.assertEqual(self.drain(picky), [b"amqp-red-8"])

    def test_invalid_selector_names_the_position(self):
        dest = "/queue/" + self.queue_name("badsel")
        good = self.raw("1.2")
        good.receipt("SUBSCRIBE", {"destination": dest, "id": "g"})
        cases = {"color = 'red' AND )": 18, "color = 'red": 8, "n > 5 5": 6}
        for selector, position in cases.items():
            with self.subTest(selector=selector):
                bad = self.raw("1.2")
                bad.send("SUBSCRIBE", {"destination": dest, "id": "b", "selector": selector,
                                       "receipt": "must-not-come"})
                frame = bad.recv_frame()
                self.assertEqual(frame.command, "ERROR", frame)
                text = (frame.header("message", "") + "\n" +
                        frame.body.decode("utf-8", "replace"))
                self.assertIn("position", text.lower(), text)
                self.assertRegex(text, r"(?<!\d)%d(?!\d)" % position,
                                 "ERROR does not name position %d: %r" % (position, text))
                self.assertTrue(bad.wait_closed(5), "connection open after the ERROR")
                self.assertFalse([f for f in bad.trailing if f.command == "RECEIPT"])
        # The failed subscriptions took nothing: the good consumer gets everything.
        self.send_all(dest, MESSAGES[:2])
        self.assertEqual(self.drain(good), [b"red-7", b"red-3"])


if __name__ == "__main__":
    unittest.main()
