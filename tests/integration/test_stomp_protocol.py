"""STOMP 1.0 / 1.1 / 1.2 protocol behaviour, as RabbitMQ's STOMP adapter shows
it: connecting, sending and subscribing, the three ack modes, NACK, receipts,
transactions, framing (content-length, NULs, escaping, CRLF), heart-beats and
the answer to bad input.
"""

import select
import time
import unittest

from stomp_raw import RawStomp, StompClosed, StompTimeout, encode_frame
from stomp_support import StompTestCase, unique

VERSIONS = ("1.0", "1.1", "1.2")


class ConnectTest(StompTestCase):

    def check_connected(self, frame, version):
        self.assertEqual(frame.command, "CONNECTED", frame)
        self.assertEqual(frame.header("version"), version, frame)
        self.assertTrue(frame.header("session"), "CONNECTED without session: %r" % frame)
        self.assertTrue(frame.header("server"), "CONNECTED without server: %r" % frame)
        self.assertRegex(frame.header("heart-beat") or "", r"^\d+,\d+$",
                         "CONNECTED without a heart-beat header: %r" % frame)

    def test_version_negotiation(self):
        cases = [(None, "1.0"), ("1.0", "1.0"), ("1.1", "1.1"), ("1.2", "1.2"),
                 ("1.0,1.1", "1.1"), ("1.1,1.2", "1.2"), ("1.0,1.1,1.2", "1.2"),
                 ("1.2,1.0", "1.2")]
        for accept, expected in cases:
            with self.subTest(accept_version=accept):
                conn = self.raw_unconnected()
                self.check_connected(conn.connect(accept), expected)

    def test_stomp_command_and_distinct_sessions(self):
        a = self.raw_unconnected()
        fa = a.connect("1.2", command="STOMP")
        self.check_connected(fa, "1.2")
        b = self.raw("1.2")
        self.assertNotEqual(fa.header("session"), b.connected.header("session"))
        # The STOMP-opened connection is fully usable.
        q = "/queue/" + self.queue_name("stompcmd")
        a.receipt("SUBSCRIBE", {"destination": q, "id": "s"})
        b.receipt("SEND", {"destination": q}, b"via STOMP frame")
        msg = a.expect("MESSAGE")
        self.assertEqual(msg.body, b"via STOMP frame")

    def test_stomp_py_clients_each_version(self):
        for version in VERSIONS:
            with self.subTest(version=version):
                conn, col = self.client(version)
                self.assertEqual(col.connected.headers.get("version"), version)
                q = "/queue/" + self.queue_name("py" + version)
                self.receipt_of(conn, col, conn.subscribe, q, id="sub-" + version)
                self.receipt_of(conn, col, conn.send, q, "hello " + version)
                msgs = col.wait_messages(1)
                self.assertEqual([m.body for m in msgs], ["hello " + version])
                self.disconnect(conn, col)

    def test_errors_as_rabbitmq_words_them(self):
        # RabbitMQ 3.10's adapter: each ERROR names the versions it speaks. Warren then
        # closes the connection; RabbitMQ's adapter keeps it after some of these.
        def version_mismatch(c):
            return c.connect("9.9")

        def bad_command(c):
            c.connect("1.2")
            c.send("BOGUS", {})

        def send_to_temp_queue(c):
            c.connect("1.2")
            c.send("SEND", {"destination": "/temp-queue/mine"}, b"x")

        def subscribe_to_temp_queue(c):
            c.connect("1.2")
            c.send("SUBSCRIBE", {"destination": "/temp-queue/mine", "id": "s"})

        def ack_without_id(c):
            c.connect("1.2")
            c.send("ACK", {})

        def nack_with_a_foreign_id(c):
            c.connect("1.2")
            c.send("NACK", {"id": "zzz"})

        def ack_twice(c):
            c.connect("1.2")
            q = "/queue/" + self.queue_name("acktwice")
            c.send("SUBSCRIBE", {"destination": q, "id": "s", "ack": "client-individual"})
            c.receipt("SEND", {"destination": q}, b"once")
            ack = c.expect("MESSAGE").header("ack")
            c.receipt("ACK", {"id": ack})
            c.send("ACK", {"id": ack})
            return c.expect("ERROR"), ack

        def frame(command, headers):
            def do(c):
                c.connect("1.2")
                c.send(command, headers, b"x" if command == "SEND" else b"")
            do.__name__ = "%s %s" % (command, sorted(headers))
            return do

        def ack_after_unsubscribe(c):
            c.connect("1.2")
            q = "/queue/" + self.queue_name("ackgone")
            c.receipt("SUBSCRIBE", {"destination": q, "id": "s", "ack": "client-individual"})
            c.receipt("SEND", {"destination": q}, b"once")
            ack = c.expect("MESSAGE").header("ack")
            c.receipt("UNSUBSCRIBE", {"id": "s"})
            c.send("ACK", {"id": ack})
            error = c.expect("ERROR")
            self.assertEqual(error.body, b'Message with id "%s" has no subscription' % ack.encode())
            return error

        def send_unconnected(c):
            c.send("SEND", {"destination": "/queue/x"}, b"x")

        def not_an_integer(name, value):
            # RabbitMQ's adapter fails on the value ("Processing error" both); Warren's body
            # says which header.
            return {"rabbitmq": b"Processing error",
                    "warren": b"header '%s' must be an integer, not '%s'\n" % (name, value)}

        durable_without_id = b"Header 'id' is required for durable subscriptions"

        def subscribe_twice(c):
            c.connect("1.2")
            q = "/queue/" + self.queue_name("twice")
            c.send("SUBSCRIBE", {"destination": q, "id": "s1"})
            c.send("SUBSCRIBE", {"destination": q, "id": "s1"})

        cases = [
            (frame("BEGIN", {}), "Missing transaction",
             b"\"BEGIN\" must include a 'transaction' header\n"),
            (frame("COMMIT", {"transaction": "nope"}), "Bad transaction",
             b'Invalid transaction identifier: "nope"\n'),
            (frame("ABORT", {"transaction": "nope"}), "Bad transaction",
             b'Invalid transaction identifier: "nope"\n'),
            (frame("UNSUBSCRIBE", {}), "Missing destination or id",
             b"UNSUBSCRIBE must include a 'destination' or 'id' header"),
            (frame("UNSUBSCRIBE", {"id": "nope"}), "No subscription found",
             b"UNSUBSCRIBE must refer to an existing subscription.\nSubscription to \"id='nope'\""
             b" not found.\n"),
            (frame("SUBSCRIBE", {"id": "s"}), "Missing destination",
             b"\"SUBSCRIBE\" must include a 'destination' header\n"),
            (frame("SEND", {}), "Missing destination",
             b"\"SEND\" must include a 'destination' header\n"),
            (frame("SEND", {"destination": "/queue/x", "expiration": "bad"}),
             "precondition_failed", b"PRECONDITION_FAILED - invalid expiration 'bad': no_integer"),
            (frame("SEND", {"destination": "/queue/x", "CC": "y"}), "precondition_failed",
             b'PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,"CC",longstr}'),
            (frame("SEND", {"destination": "/queue/"}), "Invalid destination",
             b"'/' is not a valid queue destination\n"),
            (frame("SUBSCRIBE", {"destination": "/queue/a/b", "id": "s"}), "Invalid destination",
             b"'/a/b' is not a valid queue destination\n"),
            (frame("SEND", {"destination": "/exchange/amq.direct/k/more"}),
             "Invalid destination", b"'/amq.direct/k/more' is not a valid exchange destination\n"),
            (frame("SEND", {"destination": "a/b"}), "Unknown destination",
             b"'a/b' is not a valid destination.\nValid destination types are: /temp-queue, "
             b"/exchange, /topic, /queue, /amq/queue, /reply-queue/.\n"),
            (subscribe_twice, "Duplicated subscription identifier",
             b"A subscription identified by 'T_s1' already exists."),
            (version_mismatch, "Version mismatch", b"Supported versions are 1.0,1.1,1.2\n"),
            (bad_command, "Bad command", b'Could not interpret command "BOGUS"\n'),
            (frame("RECEIPT-ONLY", {"receipt": "r"}), "Bad command",
             b'Could not interpret command "RECEIPT-ONLY"\n'),
            (frame("SEND", {"destination": "/queue/x", "message-id": "mine"}), "Invalid header",
             b"'message-id' is not allowed on 'SEND'.\n"),
            (send_to_temp_queue, "Invalid destination",
             b"'/temp-queue/mine' is not a valid destination for 'SEND'\n"),
            (subscribe_to_temp_queue, "Invalid destination",
             b"'/temp-queue/mine' is not a valid destination for 'SUBSCRIBE'\n"),
            (ack_without_id, "Missing header", b'"ACK" must include the "id" header\n'),
            (nack_with_a_foreign_id, "Invalid header",
             b'"NACK" must include a valid "id" header\n'),
            (ack_twice, "precondition_failed", None),
            (ack_after_unsubscribe, "Subscription not found", None),
            (send_unconnected, "Illegal command", b"You must log in using CONNECT first"),
            (frame("SEND", {"destination": ""}), "Invalid destination",
             b"Destination cannot be blank"),
            (frame("SUBSCRIBE", {"destination": "", "id": "s"}), "Invalid destination",
             b"Destination cannot be blank"),
            (frame("SUBSCRIBE", {"destination": "/topic/d", "durable": "true"}), "Missing Header",
             durable_without_id),
            (frame("SUBSCRIBE", {"destination": "/queue/d", "persistent": "true"}),
             "Missing Header", durable_without_id),
            (frame("UNSUBSCRIBE", {"destination": "/topic/d", "durable": "true"}),
             "Missing Header", durable_without_id),
            (frame("SEND", {"destination": "/queue/x", "priority": "high"}), "Processing error",
             not_an_integer(b"priority", b"high")),
            (frame("SEND", {"destination": "/queue/x", "timestamp": "now"}), "Processing error",
             not_an_integer(b"timestamp", b"now")),
            (frame("SEND", {"destination": "/topic/x", "x-max-length": "ten"}),
             "Processing error", not_an_integer(b"x-max-length", b"ten")),
            (frame("SUBSCRIBE", {"destination": "/queue/x", "id": "s", "prefetch-count": "many"}),
             "Processing error", not_an_integer(b"prefetch-count", b"many")),
            (frame("SUBSCRIBE", {"destination": "/queue/x", "id": "s", "ack": "bogus"}),
             "Processing error", {"rabbitmq": b"Processing error",
                                  "warren": b"ack must be auto, client or client-individual"}),
        ]
        for do, message, body in cases:
            with self.subTest(case=do.__name__):
                conn = self.raw_unconnected()
                got = do(conn)
                frame, ack = got if isinstance(got, tuple) else (got, None)
                if frame is None:
                    frame = conn.expect("ERROR")
                self.assertEqual(frame.command, "ERROR", frame)
                self.assertEqual(frame.header("message"), message, frame)
                self.assertEqual(frame.header("version"), "1.0,1.1,1.2", frame)
                if isinstance(body, dict):
                    body = body["rabbitmq" if self.rabbitmq else "warren"]
                if body is None and ack is not None:  # the delivery's number, after the last @@
                    body = b"PRECONDITION_FAILED - unknown delivery tag " + \
                        ack.rpartition("@@")[2].encode()
                if body is not None:
                    self.assertEqual(frame.body, body)
                if not self.rabbitmq:
                    self.assertTrue(conn.wait_closed(5), "connection open after the ERROR")

    def test_a_destination_identifies_a_subscription_without_id(self):
        # RabbitMQ's adapter, in every version: SUBSCRIBE without id, UNSUBSCRIBE by destination.
        # Its MESSAGEs have no subscription header (the STOMP 1.0 spec: only "if an id header
        # is supplied").
        for version in ("1.0", "1.1", "1.2"):
            with self.subTest(version=version):
                q = "/queue/" + self.queue_name("noid")
                conn = self.raw(version)
                conn.receipt("SUBSCRIBE", {"destination": q})
                conn.receipt("SEND", {"destination": q}, b"by destination")
                msg = conn.expect("MESSAGE")
                self.assertEqual(msg.body, b"by destination")
                self.assertIsNone(msg.header("subscription"))
                self.assertEqual(msg.header("destination"), q)
                conn.receipt("UNSUBSCRIBE", {"destination": q})
                conn.receipt("SEND", {"destination": q}, b"kept")
                self.assertIsNone(conn.poll_frame(0.3))

    def test_begin_again_starts_the_transaction_afresh(self):
        q = "/queue/" + self.queue_name("begin-again")
        conn = self.raw("1.2")
        conn.receipt("SUBSCRIBE", {"destination": q, "id": "s"})
        conn.receipt("BEGIN", {"transaction": "t"})
        conn.send("SEND", {"destination": q, "transaction": "t", "receipt": "dropped"},
                  b"dropped")
        conn.receipt("BEGIN", {"transaction": "t"})
        conn.send("SEND", {"destination": q, "transaction": "t", "receipt": "in-tx"},
                  b"committed")
        self.assertIsNone(conn.poll_frame(0.3))  # a SEND in a transaction waits for COMMIT
        conn.receipt("COMMIT", {"transaction": "t"})
        frames = [conn.recv_frame(), conn.recv_frame()]
        self.assertEqual(sorted((f.command, f.body, f.header("receipt-id")) for f in frames),
                         [("MESSAGE", b"committed", None), ("RECEIPT", b"", "in-tx")])
        self.assertIsNone(conn.poll_frame(0.3))  # nothing of the first, nor its receipt

    def test_refused_connects_get_error_then_close(self):
        # All four at once: a reference broker may wait out a login timeout
        # before closing, and these waits then overlap.
        cases = {
            "wrong passcode": lambda c: c.connect("1.2", passcode="not-the-password"),
            "unknown user": lambda c: c.connect("1.1", login="nobody", passcode="x"),
            "wrong passcode 1.0": lambda c: c.connect(None, passcode="wrong"),
            "unsupported version": lambda c: c.connect("9.9"),
        }
        refused_logins = {"wrong passcode": b"Access refused for user 'guest'\n",
                          "unknown user": b"Access refused for user 'nobody'\n"}
        conns = {}
        for name, do in cases.items():
            conn = self.raw_unconnected()
            frame = do(conn)
            with self.subTest(case=name):
                self.assertEqual(frame.command, "ERROR", frame)
                self.assertTrue(frame.header("message"), "ERROR without message: %r" % frame)
                self.assertTrue(frame.body.strip(), "ERROR without body: %r" % frame)
                if name in refused_logins:  # RabbitMQ's words, newline included
                    self.assertEqual(frame.header("message"), "Bad CONNECT", frame)
                    self.assertEqual(frame.body, refused_logins[name], frame)
            conns[name] = conn
        # A frame other than CONNECT on a refused connection is not acted on.
        try:
            conns["wrong passcode"].send("SEND", {"destination": "/queue/" + self.queue_name("x"),
                                                  "receipt": "must-not-come"}, b"x")
        except OSError:
            pass        # already closed: fine
        deadline = time.monotonic() + 15
        for name, conn in conns.items():
            with self.subTest(case=name):
                self.assertTrue(conn.wait_closed(max(0.1, deadline - time.monotonic())),
                                "connection not closed after the refused CONNECT")
                self.assertFalse([f for f in conn.trailing if f.command == "RECEIPT"],
                                 conn.trailing)

    def test_frame_before_connect_is_refused(self):
        conn = self.raw_unconnected()
        conn.send("SEND", {"destination": "/queue/" + self.queue_name("early"),
                           "receipt": "r1"}, b"too early")
        frame = conn.recv_frame()
        self.assertEqual(frame.command, "ERROR", frame)
        self.assertTrue(frame.header("message"))
        self.assertTrue(conn.wait_closed(15), "connection not closed after the ERROR")


class MessagingTest(StompTestCase):

    def test_message_headers_each_version(self):
        for version in VERSIONS:
            for ack in ("auto", "client", "client-individual"):
                if version == "1.0" and ack == "client-individual":
                    continue
                with self.subTest(version=version, ack=ack):
                    conn = self.raw(version)
                    name = self.queue_name("hdr")
                    conn.receipt("SUBSCRIBE", {"destination": "/queue/" + name,
                                               "id": "s-1", "ack": ack})
                    conn.receipt("SEND", {"destination": "/queue/" + name}, b"payload")
                    msg = conn.expect("MESSAGE")
                    self.assertEqual(msg.body, b"payload")
                    self.assertTrue(msg.header("message-id"), msg)
                    self.assertEqual(msg.header("destination"), "/queue/" + name)
                    self.assertEqual(msg.header("subscription"), "s-1")
                    if version == "1.2" and ack != "auto":
                        self.assertTrue(msg.header("ack"), "1.2 MESSAGE in %s mode "
                                        "without ack header: %r" % (ack, msg))

    def _three_then_reconnect(self, version, ack_mode, do_acks):
        """Subscribe, receive m0..m2, let do_acks ack some, disconnect; return the
        bodies a new subscriber then gets (with their redelivered flags)."""
        name = self.queue_name("ack%s" % version.replace(".", ""))
        dest = "/queue/" + name
        conn, col = self.client(version)
        self.receipt_of(conn, col, conn.subscribe, dest, id="s1", ack=ack_mode)
        for i in range(3):
            conn.send(dest, "m%d" % i)
        msgs = col.wait_messages(3)
        self.assertEqual([m.body for m in msgs], ["m0", "m1", "m2"])
        do_acks(conn, col, msgs)
        self.disconnect(conn, col)

        conn2, col2 = self.client(version)
        self.receipt_of(conn2, col2, conn2.subscribe, dest, id="s2", ack="auto")
        col2.wait(lambda: False, 0.7)    # let every redelivery arrive
        return [(m.body, m.headers.get("redelivered")) for m in col2.messages]

    def ack_frame(self, version, conn, col, msg, nack=False):
        rid = unique("ack")
        if version == "1.0":
            conn.ack(msg.headers["message-id"], receipt=rid)
        elif version == "1.1":
            fn = conn.nack if nack else conn.ack
            fn(msg.headers["message-id"], msg.headers["subscription"], receipt=rid)
        else:
            fn = conn.nack if nack else conn.ack
            fn(msg.headers["ack"], receipt=rid)
        self.assertTrue(col.wait_receipt(rid), "no RECEIPT for %s; errors %r"
                        % ("NACK" if nack else "ACK", col.errors))

    def test_client_ack_is_cumulative(self):
        for version in VERSIONS:
            with self.subTest(version=version):
                left = self._three_then_reconnect(
                    version, "client",
                    lambda conn, col, msgs: self.ack_frame(version, conn, col, msgs[1]))
                self.assertEqual(left, [("m2", "true")])

    def test_client_individual_acks_one(self):
        for version in ("1.1", "1.2"):
            with self.subTest(version=version):
                def acks(conn, col, msgs):
                    self.ack_frame(version, conn, col, msgs[0])
                    self.ack_frame(version, conn, col, msgs[2])
                left = self._three_then_reconnect(version, "client-individual", acks)
                self.assertEqual(left, [("m1", "true")])

    def test_unacked_messages_are_redelivered(self):
        left = self._three_then_reconnect("1.2", "client", lambda *a: None)
        self.assertEqual(left, [("m0", "true"), ("m1", "true"), ("m2", "true")])

    def test_nack_requeues(self):
        for version in ("1.1", "1.2"):
            with self.subTest(version=version):
                dest = "/queue/" + self.queue_name("nack")
                conn, col = self.client(version)
                self.receipt_of(conn, col, conn.subscribe, dest, id="n1",
                                ack="client-individual")
                conn.send(dest, "again")
                first = col.wait_messages(1)
                self.assertEqual([m.body for m in first], ["again"])
                self.assertEqual(first[0].headers.get("redelivered"), "false")
                self.ack_frame(version, conn, col, first[0], nack=True)
                both = col.wait_messages(2)
                self.assertEqual([m.body for m in both], ["again", "again"])
                self.assertEqual(both[1].headers.get("redelivered"), "true")
                self.ack_frame(version, conn, col, both[1])
                col.wait(lambda: len(col.messages) > 2, 0.5)
                self.assertEqual(len(col.messages), 2, "acked message came back")

    def test_prefetch_count(self):
        conn = self.raw("1.2")
        dest = "/queue/" + self.queue_name("prefetch")
        for i in range(5):
            conn.send("SEND", {"destination": dest}, b"p%d" % i)
        conn.receipt("SUBSCRIBE", {"destination": dest, "id": "p",
                                   "ack": "client-individual", "prefetch-count": "2"})
        got = [conn.poll_frame(1.0) for _ in range(2)]
        self.assertEqual([f.body for f in got if f], [b"p0", b"p1"])
        self.assertIsNone(conn.poll_frame(0.7), "more than prefetch-count unacked deliveries")
        conn.receipt("ACK", {"id": got[0].header("ack")})
        third = conn.poll_frame(2.0)
        self.assertIsNotNone(third, "no delivery after an ACK freed a prefetch slot")
        self.assertEqual(third.body, b"p2")
        self.assertIsNone(conn.poll_frame(0.5))

    def test_unsubscribe(self):
        for version, by in (("1.0", "destination"), ("1.1", "id"), ("1.2", "id")):
            with self.subTest(version=version, by=by):
                conn = self.raw(version)
                dest = "/queue/" + self.queue_name("unsub")
                conn.receipt("SUBSCRIBE", {"destination": dest, "id": "u1"}
                             if by == "id" else {"destination": dest})
                conn.receipt("SEND", {"destination": dest}, b"before")
                self.assertEqual(conn.expect("MESSAGE").body, b"before")
                conn.receipt("UNSUBSCRIBE", {"id": "u1"} if by == "id"
                             else {"destination": dest})
                conn.receipt("SEND", {"destination": dest}, b"after")
                self.assertIsNone(conn.poll_frame(0.5), "delivery after UNSUBSCRIBE")
                # The message was kept: a new subscription gets it.
                other = self.raw(version)
                other.receipt("SUBSCRIBE", {"destination": dest, "id": "u2"})
                self.assertEqual(other.expect("MESSAGE").body, b"after")

    def test_unacked_come_back_past_an_auto_subscription_of_the_same_connection(self):
        # Deliveries left unacknowledged by a subscription that was cancelled go back to the
        # queue when the connection closes, even with an auto-ack subscription of the same
        # connection still on that queue.
        dest = "/queue/" + self.queue_name("release")
        conn = self.raw("1.2")
        for body in (b"one", b"two", b"three"):
            conn.receipt("SEND", {"destination": dest}, body)
        conn.receipt("SUBSCRIBE", {"destination": dest, "id": "manual",
                                   "ack": "client-individual"})
        got = [conn.expect("MESSAGE") for _ in range(3)]
        conn.receipt("ACK", {"id": got[1].header("ack")})
        conn.receipt("UNSUBSCRIBE", {"id": "manual"})
        conn.receipt("SUBSCRIBE", {"destination": dest, "id": "auto", "ack": "auto"})
        self.assertIsNone(conn.poll_frame(0.5), "unacked messages went to another subscription")
        conn.close()
        other = self.raw("1.2")
        other.receipt("SUBSCRIBE", {"destination": dest, "id": "after", "ack": "auto"})
        back = sorted((f.body, f.header("redelivered")) for f in
                      (other.expect("MESSAGE"), other.expect("MESSAGE")))
        self.assertEqual(back, [(b"one", "true"), (b"three", "true")])
        self.assertIsNone(other.poll_frame(0.5))

    def test_send_then_close_is_not_lost(self):
        # What simple clients do: CONNECT, SEND (no receipt), close the socket.
        dest = "/queue/" + self.queue_name("sendclose")
        watcher = self.raw("1.0")
        watcher.receipt("SUBSCRIBE", {"destination": dest})
        lost = []
        for i in range(10):
            body = b"fire and forget %d" % i
            conn = RawStomp(self.stomp_host, self.stomp_port)
            try:
                self.assertEqual(conn.connect(None).command, "CONNECTED")
                conn.send("SEND", {"destination": dest}, body, content_length=False)
            finally:
                conn.close()
            frame = watcher.poll_frame(1.5)
            if frame is None or frame.body != body:
                lost.append((body, frame))
                if len(lost) >= 3:
                    break
        self.assertEqual(lost, [], "SENDs lost when the client closed right after them")

    def test_pipelined_frames_then_hang_up(self):
        # A client that writes CONNECT, a SUBSCRIBE (which waits for its queue) and DISCONNECT
        # in one go and closes the socket at once: the frames still run after the socket is
        # gone, and DISCONNECT has no socket left to close. The SEND before it still arrives.
        dest = "/queue/" + self.queue_name("hangup")
        watcher = self.raw("1.2")
        watcher.receipt("SUBSCRIBE", {"destination": dest, "id": "w"})
        for i in range(10):
            conn = RawStomp(self.stomp_host, self.stomp_port)
            try:
                conn.send_raw(
                    encode_frame("CONNECT", {"accept-version": "1.2", "host": "/",
                                             "login": "guest", "passcode": "guest"})
                    + encode_frame("SUBSCRIBE", {"destination": "/queue/" + self.queue_name(
                        "hangup-sub"), "id": "s"})
                    + encode_frame("SEND", {"destination": dest}, b"before hang-up %d" % i)
                    + encode_frame("DISCONNECT", {"receipt": "bye"})
                    + encode_frame("DISCONNECT", {}))
            finally:
                conn.close()
            self.assertEqual(watcher.expect("MESSAGE").body, b"before hang-up %d" % i)
        self.broker.check_alive()

    def test_messages_after_disconnect_receipt_are_kept(self):
        # Once DISCONNECT's RECEIPT is in, the subscription is over: what is sent
        # next waits in the queue for the next subscriber.
        dest = "/queue/" + self.queue_name("afterbye")
        sender = self.raw("1.2")
        lost = []
        for i in range(30):
            sub = self.raw("1.2")
            sub.receipt("SUBSCRIBE", {"destination": dest, "id": "s"})
            sender.receipt("SEND", {"destination": dest}, b"seen %d" % i)
            self.assertEqual(sub.expect("MESSAGE").body, b"seen %d" % i)
            sub.receipt("DISCONNECT", {})
            sender.receipt("SEND", {"destination": dest}, b"kept %d" % i)
            back = self.raw("1.2")
            back.receipt("SUBSCRIBE", {"destination": dest, "id": "s"})
            frame = back.poll_frame(1.5)
            if frame is None or frame.body != b"kept %d" % i:
                lost.append((i, frame))
                if len(lost) >= 3:
                    break
            back.receipt("DISCONNECT", {})
            sub.close()
            back.close()
        self.assertEqual(lost, [], "messages sent after DISCONNECT's RECEIPT went missing")

    def test_sends_in_one_read_arrive_in_order_and_outlive_an_error(self):
        # SENDs that arrive in one read reach their queues as one batch per queue: each
        # queue still gets its messages in order, a receipt still comes once its message is
        # queued, and the SENDs before a frame that ends the connection are kept.
        qa, qb = self.queue_name("batch-a"), self.queue_name("batch-b")
        conn = self.raw("1.2")
        for q in (qa, qb):  # the first SEND to a queue looks it up; the rest go straight
            conn.receipt("SEND", {"destination": "/queue/" + q}, b"warm")
        data = b"".join(
            encode_frame("SEND", [("destination", "/queue/" + (qa if i % 2 else qb))],
                         b"m%d" % i, "1.2")
            for i in range(200))
        data += encode_frame("SEND", [("destination", "/queue/" + qa), ("receipt", "last")],
                             b"last", "1.2")
        conn.send_raw(data)
        self.assertEqual(conn.expect("RECEIPT").header("receipt-id"), "last")
        data = b"".join(
            encode_frame("SEND", [("destination", "/queue/" + q)], b"before error", "1.2")
            for q in (qa, qb))
        data += encode_frame("BOGUS", [], b"", "1.2")
        data += encode_frame("SEND", [("destination", "/queue/" + qa)], b"after", "1.2")
        conn.send_raw(data)
        self.assertEqual(conn.expect("ERROR").header("message"),
                         "Bad command")
        self.assertTrue(conn.wait_closed(5), "connection open after ERROR")
        expected = {
            qa: [b"warm"] + [b"m%d" % i for i in range(1, 200, 2)] + [b"last", b"before error"],
            qb: [b"warm"] + [b"m%d" % i for i in range(0, 200, 2)] + [b"before error"],
        }
        for q, bodies in expected.items():
            sub = self.raw("1.2")
            sub.receipt("SUBSCRIBE", {"destination": "/queue/" + q, "id": "s"})
            got = []
            while True:
                frame = sub.poll_frame(1.0)
                if frame is None:
                    break
                got.append(frame.body)
            self.assertEqual(got, bodies, "queue %s" % q)
            sub.close()

    def test_receipt_for_every_client_frame(self):
        conn = self.raw("1.2")
        dest = "/queue/" + self.queue_name("rcpt")
        frames = [
            ("SUBSCRIBE", {"destination": dest, "id": "r", "ack": "client-individual"}, b""),
            ("SEND", {"destination": dest}, b"one"),
            ("SEND", {"destination": dest}, b"two"),
        ]
        for command, headers, body in frames:
            with self.subTest(command=command):
                rec = conn.receipt(command, headers, body)
                self.assertEqual(rec.command, "RECEIPT")
        first, second = conn.expect("MESSAGE"), conn.expect("MESSAGE")
        for command, headers in [("ACK", {"id": first.header("ack")}),
                                 ("NACK", {"id": second.header("ack")}),
                                 ("BEGIN", {"transaction": "t1"}),
                                 ("COMMIT", {"transaction": "t1"}),
                                 ("BEGIN", {"transaction": "t2"}),
                                 ("ABORT", {"transaction": "t2"}),
                                 ("UNSUBSCRIBE", {"id": "r"})]:
            with self.subTest(command=command):
                conn.receipt(command, headers)
        rec = conn.receipt("DISCONNECT", {})
        self.assertEqual(rec.body, b"")
        self.assertTrue(conn.wait_closed(5), "connection open after DISCONNECT's RECEIPT")


class TransactionTest(StompTestCase):

    def test_send_in_transaction(self):
        conn, col = self.client("1.2")
        dest = "/queue/" + self.queue_name("txsend")
        self.receipt_of(conn, col, conn.subscribe, dest, id="t")
        self.receipt_of(conn, col, conn.begin, "tx-1")
        conn.send(dest, "t1-a", transaction="tx-1")
        conn.send(dest, "t1-b", transaction="tx-1")
        col.wait(lambda: col.messages, 0.7)
        self.assertEqual(col.bodies(), [], "transactional SEND delivered before COMMIT")
        self.receipt_of(conn, col, conn.commit, "tx-1")
        self.assertEqual([m.body for m in col.wait_messages(2)], ["t1-a", "t1-b"])

        self.receipt_of(conn, col, conn.begin, "tx-2")
        conn.send(dest, "aborted", transaction="tx-2")
        self.receipt_of(conn, col, conn.abort, "tx-2")
        self.receipt_of(conn, col, conn.send, dest, "after")
        col.wait(lambda: len(col.messages) >= 3, 3)
        col.wait(lambda: len(col.messages) > 3, 0.3)
        self.assertEqual(col.bodies(), ["t1-a", "t1-b", "after"])

    def test_send_receipt_in_transaction(self):
        # A receipted SEND inside a transaction gets its RECEIPT (the reference
        # broker sends it once the transaction commits).
        conn = self.raw("1.2")
        dest = "/queue/" + self.queue_name("txrcpt")
        conn.receipt("SUBSCRIBE", {"destination": dest, "id": "t"})
        conn.receipt("BEGIN", {"transaction": "tx"})
        conn.send("SEND", {"destination": dest, "transaction": "tx", "receipt": "in-tx"}, b"x")
        conn.receipt("COMMIT", {"transaction": "tx"})
        seen = []
        deadline = time.monotonic() + 5
        while not ({"MESSAGE", "in-tx"} <= set(seen)) and time.monotonic() < deadline:
            f = conn.poll_frame(max(0.05, deadline - time.monotonic()))
            if f is not None:
                seen.append(f.header("receipt-id") if f.command == "RECEIPT" else f.command)
        self.assertIn("in-tx", seen)
        self.assertIn("MESSAGE", seen)

    def test_ack_in_transaction(self):
        dest = "/queue/" + self.queue_name("txack")
        conn, col = self.client("1.2")
        self.receipt_of(conn, col, conn.subscribe, dest, id="a", ack="client-individual")
        conn.send(dest, "kept")
        conn.send(dest, "acked")
        msgs = col.wait_messages(2)
        self.assertEqual([m.body for m in msgs], ["kept", "acked"])
        self.receipt_of(conn, col, conn.begin, "tx-a")
        conn.ack(msgs[0].headers["ack"], transaction="tx-a")
        self.receipt_of(conn, col, conn.abort, "tx-a")
        self.receipt_of(conn, col, conn.begin, "tx-b")
        conn.ack(msgs[1].headers["ack"], transaction="tx-b")
        self.receipt_of(conn, col, conn.commit, "tx-b")
        self.disconnect(conn, col)

        conn2, col2 = self.client("1.2")
        self.receipt_of(conn2, col2, conn2.subscribe, dest, id="b")
        col2.wait(lambda: len(col2.messages) > 1, 1.0)
        self.assertEqual(col2.bodies(), ["kept"],
                         "aborted ACK must leave the message, committed ACK remove it")

    def test_ack_and_nack_receipts_in_a_transaction_come_at_once(self):
        # RabbitMQ's adapter answers an ACK's or NACK's receipt when it takes the frame; only
        # what it does waits for the COMMIT (and a SEND's receipt with it).
        conn = self.raw("1.2")
        dest = "/queue/" + self.queue_name("txackrcpt")
        conn.receipt("SUBSCRIBE", {"destination": dest, "id": "s", "ack": "client-individual"})
        conn.receipt("SEND", {"destination": dest}, b"one")
        conn.receipt("SEND", {"destination": dest}, b"two")
        acks = [conn.expect("MESSAGE").header("ack") for _ in range(2)]
        conn.receipt("BEGIN", {"transaction": "t"})
        conn.receipt("ACK", {"id": acks[0], "transaction": "t"})
        conn.receipt("NACK", {"id": acks[1], "transaction": "t"})
        conn.receipt("COMMIT", {"transaction": "t"})
        # The NACK, done at COMMIT, gives "two" back; no second receipt comes with it.
        again = conn.expect("MESSAGE")
        self.assertEqual((again.body, again.header("redelivered")), (b"two", "true"))
        self.assertIsNone(conn.poll_frame(0.3))


class FramingTest(StompTestCase):

    def subscribed(self, version):
        conn = self.raw(version)
        dest = "/queue/" + self.queue_name("frame")
        conn.receipt("SUBSCRIBE", {"destination": dest, "id": "f"})
        return conn, dest

    def test_body_with_nul_bytes(self):
        body = b"a\x00b\x00\x00c\xff\x00"
        for version in VERSIONS:
            with self.subTest(version=version):
                conn, dest = self.subscribed(version)
                conn.send("SEND", {"destination": dest}, body)
                msg = conn.expect("MESSAGE")
                self.assertEqual(msg.body, body)
                self.assertEqual(msg.header("content-length"), str(len(body)))

    def test_stomp_py_binary_body(self):
        conn, col = self.client("1.2", auto_decode=False)
        dest = "/queue/" + self.queue_name("bin")
        self.receipt_of(conn, col, conn.subscribe, dest, id="b")
        body = bytes(range(256)) * 4
        conn.send(dest, body)
        msgs = col.wait_messages(1)
        self.assertEqual([m.body for m in msgs], [body])

    def test_body_without_content_length_ends_at_nul(self):
        for version in VERSIONS:
            with self.subTest(version=version):
                conn, dest = self.subscribed(version)
                conn.send_raw(
                    encode_frame("SEND", {"destination": dest}, b"first",
                                 version, content_length=False) +
                    encode_frame("SEND", {"destination": dest}, b"second\nline",
                                 version, content_length=False))
                self.assertEqual(conn.expect("MESSAGE").body, b"first")
                self.assertEqual(conn.expect("MESSAGE").body, b"second\nline")

    def test_header_escaping(self):
        cases = {"1.1": ("a:b\nc\\d", b"a\\cb\\nc\\\\d"),
                 "1.2": ("a:b\nc\\d\re", b"a\\cb\\nc\\\\d\\re")}
        for version, (value, wire) in cases.items():
            with self.subTest(version=version):
                conn, dest = self.subscribed(version)
                conn.send("SEND", {"destination": dest, "x-esc": value}, b"e")
                # Read the raw bytes too: the server must escape on output.
                deadline = time.monotonic() + 5
                while b"\x00" not in conn.buf and time.monotonic() < deadline:
                    try:
                        conn._fill(deadline)
                    except StompTimeout:
                        break
                self.assertIn(b"\nx-esc:" + wire + b"\n", conn.buf)
                msg = conn.expect("MESSAGE")
                self.assertEqual(msg.header("x-esc"), value)

    def test_repeated_header_first_wins(self):
        conn, dest = self.subscribed("1.2")
        conn.send("SEND", [("destination", dest), ("x-rep", "first"), ("x-rep", "second")],
                  b"r")
        msg = conn.expect("MESSAGE")
        self.assertEqual(msg.header("x-rep"), "first")
        self.assertNotIn("second", msg.all("x-rep"))

    def test_crlf_line_endings(self):
        conn = self.raw_unconnected()
        conn.send_raw(b"CONNECT\r\naccept-version:1.2\r\nhost:/\r\nlogin:guest\r\n"
                      b"passcode:guest\r\n\r\n\x00")
        self.assertEqual(conn.expect("CONNECTED").header("version"), "1.2")
        conn.version = "1.2"
        dest = "/queue/" + self.queue_name("crlf")
        conn.send_raw(b"SUBSCRIBE\r\ndestination:" + dest.encode() +
                      b"\r\nid:c\r\nreceipt:sub\r\n\r\n\x00")
        rec = conn.expect("RECEIPT")
        self.assertEqual(rec.header("receipt-id"), "sub")
        conn.send_raw(b"SEND\r\ndestination:" + dest.encode() +
                      b"\r\nx-h:v\r\n\r\ncrlf body\x00")
        msg = conn.expect("MESSAGE")
        self.assertEqual(msg.body, b"crlf body")
        self.assertEqual(msg.header("x-h"), "v")


class HeartBeatTest(StompTestCase):

    def test_heart_beats(self):
        # sender: asks the server for heart-beats every 1000 ms;
        # silent: promises heart-beats every 1000 ms and sends none;
        # chatty: promises the same and keeps its promise.
        sender = self.raw("1.2", heart_beat="0,1000")
        silent = self.raw("1.2", heart_beat="1000,0")
        chatty = self.raw("1.2", heart_beat="1000,0")
        sx = int(sender.connected.header("heart-beat").split(",")[0])
        self.assertTrue(0 < sx <= 1000, "server offers heart-beats every %r ms" % sx)
        sy = int(silent.connected.header("heart-beat").split(",")[1])
        self.assertGreater(sy, 0, "server will not check client heart-beats")

        start = time.monotonic()
        silent_closed = None
        next_beat = start
        while time.monotonic() - start < 10:
            now = time.monotonic()
            if now >= next_beat:
                chatty.send_raw(b"\n")
                next_beat = now + 0.3
            for conn in (sender, chatty):
                try:
                    frame = conn.poll_frame(0.02)
                except StompClosed:
                    self.fail("server closed a connection that kept its heart-beat promise"
                              " (after %.1f s)" % (time.monotonic() - start))
                self.assertIsNone(frame, frame)
            if silent_closed is None:
                try:
                    silent.poll_frame(0.02)
                except StompClosed:
                    silent_closed = time.monotonic() - start
            if silent_closed is not None and time.monotonic() - start >= 3.5:
                break
        self.assertIsNotNone(silent_closed, "silent client not disconnected within 10 s")
        self.assertLess(silent_closed, 8.0)

        beats = [start] + [t for t in sender.heartbeats if t >= start]
        gaps = [b - a for a, b in zip(beats, beats[1:])] + [time.monotonic() - beats[-1]]
        self.assertGreaterEqual(len(beats) - 1, 2, "server sent %d heart-beats in %.1f s"
                                % (len(beats) - 1, time.monotonic() - start))
        self.assertLess(max(gaps), 2.0, "heart-beat gaps %r" % gaps)
        # The connection that kept its promise still works.
        chatty.receipt("SEND", {"destination": "/queue/" + self.queue_name("hb")}, b"alive")

    def test_stomp_py_heart_beats(self):
        conn, col = self.client("1.2", heartbeats=(500, 500))
        col.wait(lambda: col.heartbeats >= 2 or col.heartbeat_timeouts, 4)
        self.assertGreaterEqual(col.heartbeats, 2, "stomp.py counted no server heart-beats")
        self.assertEqual(col.heartbeat_timeouts, 0)
        self.assertTrue(conn.is_connected())


class BadInputTest(StompTestCase):
    """Bad frames: an ERROR frame (message header, body), then the connection
    closes; nothing of the bad frame takes effect, and other clients carry on.

    RabbitMQ 3.10 answers differently, and is checked for what it does:
    an unknown command gets an ERROR but the connection stays open; a framing
    error (undefined escape, header line without ':') closes the connection
    without an ERROR frame."""

    def watch(self):
        dest = "/queue/" + self.queue_name("bad")
        watcher = self.raw("1.2")
        watcher.receipt("SUBSCRIBE", {"destination": dest, "id": "w"})
        return watcher, dest

    def check_rejected(self, data, kind, watcher):
        conn = self.raw("1.2")
        try:
            conn.send_raw(data)
        except OSError:
            pass        # closed while we were still writing
        try:
            frame = conn.recv_frame(5)
        except StompClosed:
            frame = None
        if self.rabbitmq and kind == "command":
            self.assertEqual(frame.command, "ERROR", frame)
            self.assertTrue(frame.header("message"))
        elif self.rabbitmq and kind == "framing":
            self.assertTrue(frame is None or frame.command == "ERROR", frame)
            self.assertTrue(conn.wait_closed(5), "connection open after a framing error")
        else:
            self.assertIsNotNone(frame, "connection closed without an ERROR frame")
            self.assertEqual(frame.command, "ERROR", frame)
            self.assertTrue(frame.header("message"), "ERROR without message: %r" % frame)
            self.assertTrue(frame.body.strip(), "ERROR without body: %r" % frame)
            self.assertTrue(conn.wait_closed(5), "connection open after the ERROR frame")
            self.assertFalse([f for f in conn.trailing if f.command != "ERROR"],
                             conn.trailing)
        self.assertIsNone(watcher.poll_frame(0.3), "the bad frame was acted on")
        # Another client keeps working.
        other = self.raw("1.1")
        other.receipt("SEND", {"destination": "/queue/" + self.queue_name("ok")}, b"fine")

    def test_bad_frames(self):
        watcher, dest = self.watch()
        d = dest.encode()
        cases = [
            ("garbage command", b"GARBAGE\nfoo:bar\n\n\x00", "command"),
            ("binary junk", b"\x01\x02\x03\xfe\xff junk\n\n\x00", "command"),
            ("undefined escape", b"SEND\ndestination:" + d + b"\nx:a\\tb\n\nbody\x00",
             "framing"),
            ("header without colon", b"SEND\ndestination:" + d + b"\nnocolon\n\nbody\x00",
             "framing"),
        ]
        for name, data, kind in cases:
            with self.subTest(case=name):
                self.check_rejected(data, kind, watcher)
        # The watcher does see a good frame to the same destination.
        self.raw("1.2").receipt("SEND", {"destination": dest}, b"good")
        self.assertEqual(watcher.expect("MESSAGE").body, b"good")
        self.assert_broker_usable()

    def test_oversized_frame(self):
        self.skip_on_rabbitmq("RabbitMQ 3.10 has no STOMP frame size limit")
        watcher, dest = self.watch()
        conn = self.raw("1.2")
        total = 17 * 1024 * 1024 + 1          # above a 16 MiB frame limit
        conn.send_raw(("SEND\ndestination:%s\ncontent-length:%d\n\n"
                       % (dest, total)).encode())
        chunk = b"x" * (1024 * 1024)
        sent, answered = 0, False
        try:
            while sent < total + 1:
                readable, _, _ = select.select([conn.sock], [], [], 0)
                if readable:
                    answered = True
                    break
                piece = chunk if total - sent >= len(chunk) else b"x" * (total - sent) + b"\x00"
                conn.send_raw(piece)
                sent += len(piece)
        except OSError:
            answered = True
        try:
            frame = conn.recv_frame(5)
        except StompClosed:
            frame = None
        self.assertIsNotNone(frame, "closed without an ERROR frame (answered=%s)" % answered)
        self.assertEqual(frame.command, "ERROR", frame)
        self.assertTrue(frame.header("message"))
        self.assertTrue(conn.wait_closed(5), "connection open after the ERROR frame")
        self.assertIsNone(watcher.poll_frame(0.3), "the oversized frame was delivered")
        other = self.raw("1.0")
        other.receipt("SEND", {"destination": dest}, b"small")
        self.assertEqual(watcher.expect("MESSAGE").body, b"small")


if __name__ == "__main__":
    unittest.main()
