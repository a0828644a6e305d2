"""Randomised client sessions: well-formed AMQP and STOMP frames in random order, with
arguments drawn from pools of odd but legal values (empty and 255-byte names, reserved
prefixes, unknown exchange types, tables nested and of every field type, wrong argument types,
delivery tags never issued, content sizes that do not match). Half the sessions read as they
go and answer like a client (close-ok, acks of what they were sent). Whatever the broker
answers, it must stay up and keep serving a plain client; and what such sessions leave on
disk must load again after a clean stop and after kill -9.

Bounded: SESSIONS sessions per protocol from a fixed seed, each with a time limit.
WARREN_RANDOM_SEED and WARREN_RANDOM_SESSIONS change them (a failure names the seed and the
session, and the frames it sent are in the assertion message).
"""

import os
import random
import shutil
import socket
import struct
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

import pika

import amqp_raw as raw
from harness import Broker, BrokerTestCase
from mgmt_support import Api
from stomp_raw import RawStomp, StompClosed, encode_frame
from stomp_support import StompTestCase

SEED = int(os.environ.get("WARREN_RANDOM_SEED", "20261130"))
SESSIONS = int(os.environ.get("WARREN_RANDOM_SESSIONS", "120"))
SPEC_XML = os.environ.get("WARREN_AMQP_SPEC",
                          "/usr/share/amqp/specs/0-9-1-rabbit/amqp0-9-1.stripped.extended.xml")
RESTART_SESSIONS = 40    # before each restart in test_restarts_after_random_sessions
KEEP_QUEUE = "random.keep"  # a durable queue no random session names
KEEP_MESSAGES = 50       # confirmed persistent messages put in it before each restart
SESSION_TIME_S = 3.0     # reading the broker's answers, per session
PROBE_EVERY = 20         # sessions between checks that a plain client is still served


# -- AMQP: methods from the spec, arguments from pools ---------------------------------------
def load_methods(path):
    """[(class_id, method_id, name, [(field_name, type)], to_server)] for every method in the
    spec; to_server: the server implements it (a client's to send)."""
    root = ET.parse(path).getroot()
    domains = {d.get("name"): d.get("type") for d in root.iter("domain")}
    methods = []
    for c in root.iter("class"):
        for m in c.findall("method"):
            fields = [(f.get("name"), f.get("type") or domains[f.get("domain")])
                      for f in m.findall("field")]
            to_server = any(ch.get("name") == "server" for ch in m.findall("chassis"))
            methods.append((int(c.get("index")), int(m.get("index")),
                            "%s.%s" % (c.get("name"), m.get("name")), fields, to_server))
    return methods


QUEUES = ["q0", "q1", "q2", "", "amq.gen-x", "amq.q", "x" * 255, "\u00e9t\u00e9", "q\x00"]
EXCHANGES = ["", "e0", "e1", "amq.direct", "amq.fanout", "amq.topic", "amq.headers",
             "amq.match", "amq.default", "amq.rabbitmq.trace", "nope", "y" * 255]
KEYS = ["", "a", "a.b.c", "#", "*", "*.b.*", "a.#.c", "#.#", "q0", "q1", "z" * 255]
TYPES = ["direct", "fanout", "topic", "headers", "x-consistent-hash", "", "bogus"]
TAGS = ["", "c0", "c1", "amq.ctag-x"]
VHOSTS = ["/", "nope", ""]
TABLES = [
    {}, {"x-match": "all", "k": "v"}, {"x-match": "any", "n": 7}, {"x-match": "bogus"},
    {"x-match": 5}, {"alternate-exchange": "e1"}, {"alternate-exchange": 3},
    {"x-queue-mode": "lazy"}, {"x-queue-type": "classic"}, {"x-queue-type": "quorum"},
    {"x-expires": "soon"}, {"x-max-length": 5}, {"x-message-ttl": -1},
    {"x-single-active-consumer": True}, {"x-priority": 2 ** 40}, {"x-dead-letter-exchange": 1},
    {"x-cancel-on-ha-failover": True}, {"": ""},
    # Queue arguments that act: dead-lettering that loops back, length limits of 0, priorities.
    {"x-message-ttl": 0, "x-dead-letter-exchange": ""},
    {"x-message-ttl": 20, "x-dead-letter-exchange": "amq.fanout"},
    {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "q0"},
    {"x-max-length": 0, "x-overflow": "reject-publish-dlx", "x-dead-letter-exchange": "e0"},
    {"x-max-length-bytes": 10, "x-dead-letter-exchange": "amq.topic"},
    {"x-max-priority": 255, "x-single-active-consumer": True, "x-message-ttl": 5},
    {"x-expires": 60000}, {"x-overflow": "reject-publish", "x-max-length": 1},
    {"deep": {"a": {"b": {"c": {"d": [1, [2, [3, {"e": None}]]]}}}}},
]
EDGE_INTS = {"octet": [0, 1, 2, 255], "short": [0, 1, 2, 200, 406, 32767, 65535],
             "long": [0, 1, 4096, 131072, 2 ** 31, 2 ** 32 - 1],
             "longlong": [0, 1, 2, 3, 5, 2 ** 32, 2 ** 63, 2 ** 64 - 1],
             "timestamp": [0, 1700000000, 2 ** 64 - 1]}


def shortstr_bytes(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return bytes([len(b[:255])]) + b[:255]


def longstr_bytes(b):
    b = b.encode("utf-8") if isinstance(b, str) else b
    return struct.pack("!I", len(b)) + b


def value_bytes(v):
    if v is None:
        return b"V"
    if isinstance(v, bool):
        return b"t" + bytes([v])
    if isinstance(v, int):
        if -2 ** 31 <= v < 2 ** 31:
            return b"I" + struct.pack("!i", v)
        return b"l" + struct.pack("!q", v if v < 2 ** 63 else v - 2 ** 64)
    if isinstance(v, float):
        return b"d" + struct.pack("!d", v)
    if isinstance(v, str):
        return b"S" + longstr_bytes(v)
    if isinstance(v, bytes):
        return b"x" + longstr_bytes(v)
    if isinstance(v, dict):
        return b"F" + table_bytes(v)
    if isinstance(v, list):
        inner = b"".join(value_bytes(x) for x in v)
        return b"A" + struct.pack("!I", len(inner)) + inner
    raise TypeError(v)


def table_bytes(t):
    inner = b"".join(shortstr_bytes(k) + value_bytes(v) for k, v in t.items())
    return struct.pack("!I", len(inner)) + inner


def odd_table(rnd):
    t = {} if rnd.random() < 0.5 else dict(rnd.choice(TABLES))
    if rnd.random() < 0.3:  # every field type once
        t.update({"b": True, "i": -5, "l": 2 ** 40, "f": 1.5, "s": "s", "x": b"\x00\xff",
                  "n": None, "a": [1, "two", [3.0]], "t": {"k": "v"}})
    return t


def field_bytes(rnd, name, ftype):
    """One argument; bits are packed by the caller."""
    if ftype == "shortstr":
        pool = {"queue": QUEUES, "exchange": EXCHANGES, "destination": EXCHANGES,
                "source": EXCHANGES, "routing-key": KEYS, "type": TYPES,
                "consumer-tag": TAGS, "virtual-host": VHOSTS}.get(name)
        if pool is None or rnd.random() < 0.1:
            pool = ["", "PLAIN", "en_US", "x", "w" * 255, "\u2603"]
        return shortstr_bytes(rnd.choice(pool))
    if ftype == "longstr":
        return longstr_bytes(rnd.choice([b"", b"\x00guest\x00guest", b"z" * 1000, b"\xff"]))
    if ftype == "table":
        return table_bytes(odd_table(rnd))
    if name == "prefetch-size" and rnd.random() < 0.9:
        return struct.pack("!I", 0)  # anything else is 540, as in RabbitMQ
    fmt = {"octet": "!B", "short": "!H", "long": "!I", "longlong": "!Q", "timestamp": "!Q"}
    limit = 2 ** (8 * struct.calcsize(fmt[ftype]))
    v = rnd.choice(EDGE_INTS[ftype]) if rnd.random() < 0.8 else rnd.randrange(limit)
    return struct.pack(fmt[ftype], v % limit)


def method_args(rnd, fields):
    out, bits, nbits = b"", 0, 0
    for name, ftype in fields:
        if ftype == "bit":
            # Mostly clear (passive, no-wait, exclusive, if-unused ... set in a quarter), so
            # that sessions build state; durable mostly set, so that there is some to reload.
            bits |= (rnd.random() < (0.6 if name == "durable" else 0.25)) << nbits
            nbits += 1
            continue
        if nbits:
            out += bytes([bits])
            bits, nbits = 0, 0
        out += field_bytes(rnd, name, ftype)
    if nbits:
        out += bytes([bits])
    return out


def properties_bytes(rnd):
    """A basic content header's property flags and list, a random subset of the 14."""
    kinds = ["shortstr", "shortstr", "table", "octet", "octet", "shortstr", "shortstr",
             "shortstr", "shortstr", "timestamp", "shortstr", "shortstr", "shortstr", "shortstr"]
    flags, body = 0, b""
    for i, kind in enumerate(kinds):
        if rnd.random() < 0.3:
            flags |= 1 << (15 - i)
            if i == 8:  # expiration
                body += shortstr_bytes(rnd.choice(["0", "1", "60000", "-1", "soon", ""]))
            elif i == 3:  # delivery-mode
                body += bytes([rnd.choice([0, 1, 2, 3, 255])])
            else:
                body += field_bytes(rnd, "", kind)
    return struct.pack("!H", flags) + body


class AmqpRandomSessionsTest(BrokerTestCase):
    """Random method sequences on a handshaken connection."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.methods = load_methods(SPEC_XML)
        by_class = {}
        for m in cls.methods:
            by_class.setdefault(m[0], []).append(m)
        # Mostly channel-level work a client sends; connection methods and the server's own
        # (deliver, the -ok answers) end a session early, so they are rare.
        cls.weighted = []
        for class_id, ms in by_class.items():
            weight = {10: 1, 20: 4, 40: 8, 50: 10, 60: 16, 85: 3, 90: 3}.get(class_id, 2)
            for m in ms:
                cls.weighted += [m] * (weight if m[4] else 1)

    def steps(self, rnd):
        """[(bytes, name)]: a method (with its content, if any) per step."""
        steps = []
        opened = rnd.random() < 0.8
        if opened:  # channels open as a real client's would be
            for channel in (1, 2, 3):
                steps.append((raw.method_frame(channel, raw.CHANNEL_OPEN, raw.shortstr("")),
                              "%d:channel.open" % channel))
        for _ in range(rnd.randint(5, 40)):
            channel = rnd.choice([1, 1, 1, 2, 2, 3]) if rnd.random() < 0.95 else rnd.choice(
                [0, 7, 65535])
            class_id, method_id, name, fields, _ = rnd.choice(self.weighted)
            if not opened and rnd.random() < 0.15:  # open it first, as a real client would
                steps.append((raw.method_frame(channel, raw.CHANNEL_OPEN, raw.shortstr("")),
                              "%d:channel.open" % channel))
            data = raw.method_frame(channel, (class_id, method_id), method_args(rnd, fields))
            label = "%d:%s" % (channel, name)
            if name == "basic.publish" or rnd.random() < 0.03:
                size = rnd.choice([0, 1, 16, 5000])
                header = struct.pack("!HHQ", 60, 0, size if rnd.random() < 0.9 else size + 1)
                data += raw.frame(raw.FRAME_HEADER, channel, header + properties_bytes(rnd))
                sent = 0
                while sent < size:
                    n = min(size - sent, rnd.choice([1, 100, 4000]))
                    data += raw.frame(raw.FRAME_BODY, channel, b"b" * n)
                    sent += n
                label += "+content(%d)" % size
            steps.append((data, label))
        return steps

    @staticmethod
    def answer(c, rnd, tags):
        """Reads what the broker sent so far and answers it as a client would: close-ok for a
        closed channel (then opens it again), close-ok for connection.close (returns False),
        and now and then an ack of a delivery tag it really sent."""
        c.sock.settimeout(0.002)
        try:
            chunk = c.sock.recv(65536)
        except (socket.timeout, BlockingIOError):
            chunk = None
        if chunk == b"":
            return False
        if chunk:
            c.buf += chunk
        while len(c.buf) >= 7:
            ftype, channel, size = struct.unpack("!BHI", c.buf[:7])
            if len(c.buf) < size + 8:
                break
            f = raw.Frame(ftype, channel, c.buf[7:7 + size])
            c.buf = c.buf[size + 8:]
            cm = f.class_method
            if cm == raw.CONNECTION_CLOSE:
                c.send(raw.method_frame(0, raw.CONNECTION_CLOSE_OK))
                return False
            if cm == raw.CHANNEL_CLOSE:
                c.send(raw.method_frame(channel, raw.CHANNEL_CLOSE_OK)
                       + raw.method_frame(channel, raw.CHANNEL_OPEN, raw.shortstr("")))
            elif cm in ((60, 60), (60, 71)):  # basic.deliver, basic.get-ok
                r = f.args()
                if cm == (60, 60):
                    r.shortstr()
                tags.append((channel, struct.unpack("!Q", r.take(8))[0]))
        if tags and rnd.random() < 0.3:
            channel, tag = tags.pop(rnd.randrange(len(tags)))
            method = rnd.choice([(60, 80), (60, 120), (60, 90)])  # ack, nack, reject
            args = struct.pack("!Q", tag) + bytes([rnd.getrandbits(2) if method != (60, 90)
                                                   else 1])
            c.send(raw.method_frame(channel, method, args))
        return True

    def run_session(self, rnd):
        c = raw.RawConnection(self.host, self.port)
        try:
            steps = self.steps(rnd)
            interactive = False
            if rnd.random() < 0.15:
                # The whole handshake in the same write as the methods, not waiting for the
                # broker's start and tune: what comes after runs once the login is checked.
                steps[:0] = [(raw.pipelined_handshake(), "pipelined handshake")]
            else:
                c.handshake(frame_max=rnd.choice([4096, 131072]))
                # Half the sessions read as they go and answer like a client (so that they
                # get further: consumers with deliveries to ack, channels opened again).
                interactive = rnd.random() < 0.5
            names = [name for _, name in steps]
            try:
                if interactive:
                    tags = []
                    for data, _ in steps:
                        c.send(data)
                        if not self.answer(c, rnd, tags):
                            break
                else:
                    data = b"".join(d for d, _ in steps)
                    while data:  # in pieces, as a socket would carry them
                        n = rnd.choice([1, 7, 100, 4096, len(data)])
                        c.send(data[:n])
                        data = data[n:]
                ending = rnd.random()
                if ending < 0.3:
                    pass  # hang up with work in flight
                elif ending < 0.6:
                    c.send(raw.method_frame(0, raw.CONNECTION_CLOSE,
                                            struct.pack("!H", 200) + raw.shortstr("bye")
                                            + struct.pack("!HH", 0, 0)))
                    self.finish_close(c)
                else:
                    c.sock.settimeout(0.2)
                    deadline = time.monotonic() + SESSION_TIME_S
                    while time.monotonic() < deadline and c.sock.recv(65536):
                        pass
            except (OSError, raw.PeerClosed, socket.timeout):
                pass  # closed on us: an answer like any other
            return names
        finally:
            c.close()

    @staticmethod
    def finish_close(c):
        """Reads to close-ok (then the client closes the socket, as AMQP has it) or EOF; a
        connection.close from the broker (it closed first, and ignores ours) is answered with
        close-ok, as a client would."""
        deadline = time.monotonic() + SESSION_TIME_S
        while time.monotonic() < deadline:
            f = c.read_frame(timeout=max(0.01, deadline - time.monotonic()))
            if f.channel == 0 and f.class_method == raw.CONNECTION_CLOSE_OK:
                return
            if f.channel == 0 and f.class_method == raw.CONNECTION_CLOSE:
                c.send(raw.method_frame(0, raw.CONNECTION_CLOSE_OK))

    def test_random_method_sequences(self):
        rnd = random.Random(SEED)
        for i in range(SESSIONS):
            names = self.run_session(rnd)
            if self.broker:
                self.assertTrue(self.broker.running(),
                                "warrend died in session %d (seed %d) after %s\n%s"
                                % (i, SEED, names, self.broker.log_tail()))
            if i % PROBE_EVERY == PROBE_EVERY - 1 or i == SESSIONS - 1:
                self.assert_broker_usable()


    def durable_queues(self, broker):
        """{(vhost, name)} of the durable queues, from the HTTP API."""
        api = Api(*broker.wait_listener("http"))
        status, queues, _, _ = api.call("GET", "/api/queues")
        self.assertEqual(status, 200)
        return {(q["vhost"], q["name"]) for q in queues if q["durable"]}

    def settled_durable_queues(self, broker):
        """The durable queues once no change is seen for a second: a session that hung up
        may still have a declare or delete on its way when the client side is done."""
        last, since = self.durable_queues(broker), time.monotonic()
        deadline = since + 15
        while time.monotonic() - since < 1.0 and time.monotonic() < deadline:
            time.sleep(0.2)
            now = self.durable_queues(broker)
            if now != last:
                last, since = now, time.monotonic()
        return last

    def setup_durable_state(self, round_):
        """Durable queues, a durable exchange and bindings under the names the random sessions
        use (they may delete, purge, rebind or consume from them), persistent messages in
        them, and KEEP_QUEUE, which no session names, with KEEP_MESSAGES confirmed ones."""
        conn = self.connect()
        ch = conn.channel()
        ch.confirm_delivery()
        ch.exchange_declare("e0", "topic", durable=True)
        for q in ("q0", "q1", "q2"):
            ch.queue_declare(q, durable=True)
            ch.queue_bind(q, "e0", "a.#")
        ch.queue_declare(KEEP_QUEUE, durable=True)
        persistent = pika.BasicProperties(delivery_mode=2, headers={"round": round_})
        for i in range(KEEP_MESSAGES):
            ch.basic_publish("e0", "a.b.c", b"durable %d" % i, persistent)
            ch.basic_publish("", KEEP_QUEUE, b"keep %d" % i, persistent)
        conn.close()

    def kept_messages(self):
        ch = self.connect().channel()
        return ch.queue_declare(KEEP_QUEUE, durable=True, passive=True).method.message_count

    def test_restarts_after_random_sessions(self):
        # What random sessions leave on disk (durable queues and exchanges with odd arguments,
        # bindings, persistent messages, some acked or requeued) must load again: after a clean
        # stop with every durable queue back, and after kill -9; confirmed messages in a queue
        # no session touches are all there both times.
        if self.broker.proc is None:
            self.skipTest("restarts need a warrend of the test's own")
        data = tempfile.mkdtemp(prefix="warren-random-")
        self.addCleanup(shutil.rmtree, data, True)
        rnd = random.Random(SEED + 2)
        shared = self.host, self.port
        self.addCleanup(setattr, self, "port", shared[1])
        self.addCleanup(setattr, self, "host", shared[0])
        for ending in ("stop", "kill -9"):
            broker = Broker(binary=self.broker.binary, data_dir=data).start()
            self.addCleanup(broker.stop_quietly)
            self.host, self.port = broker.host, broker.port
            self.setup_durable_state(ending)
            for i in range(RESTART_SESSIONS):
                names = self.run_session(rnd)
                self.assertTrue(broker.running(), "warrend died in session %d before %s: %s\n%s"
                                % (i, ending, names, broker.log_tail()))
            durable = self.settled_durable_queues(broker)
            if ending == "stop":
                broker.stop()  # exit code 0 required
            else:
                broker._kill()
                broker.proc = None
            again = Broker(binary=self.broker.binary, data_dir=data).start()
            self.addCleanup(again.stop_quietly)
            self.host, self.port = again.host, again.port
            self.assert_broker_usable()
            if ending == "stop":
                self.assertEqual(self.durable_queues(again), durable)
            rounds = 1 if ending == "stop" else 2
            self.assertEqual(self.kept_messages(), rounds * KEEP_MESSAGES)
            errors = [l for l in again.log_text().splitlines()
                      if "[error]" in l or "[critical]" in l]
            self.assertEqual(errors, [], "after %s:\n%s" % (ending, again.log_tail()))
            again.stop()


# -- STOMP ------------------------------------------------------------------------------------
DESTINATIONS = ["/queue/a", "/queue/b", "/topic/t", "/topic/a.b.*", "/exchange/amq.topic/x.y",
                "/exchange/amq.fanout", "/exchange/nope/k", "/amq/queue/a", "/amq/queue/none",
                "/temp-queue/r", "/reply-queue/x", "/queue/", "/queue", "weird", "",
                "/queue/" + "l" * 300, "/queue/a%2Fb", "/topic/\u00e9"]
SELECTORS = ["n > 3", "color = 'red' AND n BETWEEN 1 AND 9", "n IN ('a')", "(((", "x LIKE",
             "NOT NOT NOT n IS NULL", "a = 1 / 0", "n * 1e308 * 1e308 > 0", "'" * 50,
             "(" * 150 + "1" + ")" * 150]
STOMP_HEADERS = {
    "SEND": ["destination", "receipt", "transaction", "content-type", "persistent",
             "content-length", "reply-to", "expiration", "priority", "x-custom", "selector"],
    "SUBSCRIBE": ["destination", "id", "ack", "selector", "prefetch-count", "receipt",
                  "durable", "persistent", "auto-delete", "x-queue-name"],
    "UNSUBSCRIBE": ["id", "destination", "receipt"],
    "ACK": ["id", "message-id", "subscription", "transaction", "receipt"],
    "NACK": ["id", "message-id", "subscription", "transaction", "requeue", "receipt"],
    "BEGIN": ["transaction", "receipt"], "COMMIT": ["transaction", "receipt"],
    "ABORT": ["transaction", "receipt"], "DISCONNECT": ["receipt"],
    "CONNECT": ["accept-version", "login", "passcode", "heart-beat", "host"],
    "BOGUS": ["x"], "MESSAGE": ["destination"], "connect": [],
}


def stomp_value(rnd, name):
    pools = {
        "destination": DESTINATIONS, "selector": SELECTORS,
        "ack": ["auto", "client", "client-individual", "bogus", ""],
        "content-length": ["0", "1", "5", "-1", "999999999999", "x", ""],
        "prefetch-count": ["0", "1", "-5", "65536", "x"],
        "persistent": ["true", "false", "x"], "durable": ["true", "false"],
        "auto-delete": ["true", "false"], "requeue": ["true", "false"],
        "priority": ["0", "9", "300", "x"], "expiration": ["0", "100", "-1", "x"],
        "accept-version": ["1.0", "1.1", "1.2", "1.0,1.1,1.2", "9.9", ""],
        "heart-beat": ["0,0", "10,10", "x", "1"], "login": ["guest", "nobody"],
        "passcode": ["guest", "wrong"], "host": ["/", "nope"],
        "transaction": ["t0", "t0", "t1", "", "\u2603"],
    }
    pool = pools.get(name, ["0", "1", "2", "t0", "t1", "s0", "", "a:b", "a\\nb", "\u2603"])
    return rnd.choice(pool)


def stomp_frame(rnd, command):
    lines = [command]
    tx_command = command in ("BEGIN", "COMMIT", "ABORT")
    for name in STOMP_HEADERS[command]:
        if name in ("destination", "id") or (name == "transaction" and tx_command):
            p = 0.9
        elif name in ("transaction", "content-length"):
            p = 0.1  # mostly wrong, and the end of the session
        else:
            p = 0.3
        if rnd.random() < p:
            lines.append("%s:%s" % (name, stomp_value(rnd, name)))
    if rnd.random() < 0.1:
        lines.append("repeated:1")
        lines.append("repeated:2")
    body = rnd.choice([b"", b"", b"x", b"b" * 3000])
    if command == "SEND" and rnd.random() < 0.05:
        body = b"body\x00with nul"  # ends the frame early unless content-length covers it
    eol = b"\r\n" if rnd.random() < 0.2 else b"\n"
    return eol.join(l.encode("utf-8") for l in lines) + eol + eol + body + b"\x00" + (
        b"\n" if rnd.random() < 0.3 else b"")


class StompRandomSessionsTest(StompTestCase):
    """Random frame sequences on a STOMP connection that first said CONNECT."""

    def run_session(self, rnd):
        conn = RawStomp(self.stomp_host, self.stomp_port)
        try:
            connect = "CONNECT\naccept-version:%s\nlogin:guest\npasscode:guest\nhost:/\n\n\x00" % (
                rnd.choice(["1.0", "1.1", "1.2", "1.0,1.1,1.2"]))
            frames = [connect.encode()] if rnd.random() < 0.95 else []
            names = ["CONNECT"] if frames else []
            commands = [c for c in STOMP_HEADERS if c != "CONNECT"]
            # Mostly what a client sends; the commands that end a session (unknown ones, a
            # second CONNECT) are rare, so that sessions subscribe, send and acknowledge.
            common = {"SEND": 8, "SUBSCRIBE": 5, "ACK": 2, "UNSUBSCRIBE": 2, "NACK": 1,
                      "BEGIN": 2, "COMMIT": 2, "ABORT": 1, "DISCONNECT": 1}
            weights = [common.get(c, 0.3) for c in commands]
            for _ in range(rnd.randint(3, 30)):
                command = rnd.choices(commands, weights)[0]
                frames.append(stomp_frame(rnd, command))
                names.append(command)
            try:
                if frames and rnd.random() < 0.5:
                    self.interact(conn, rnd, frames)
                else:
                    data = b"".join(frames)
                    while data:
                        n = rnd.choice([1, 13, 512, len(data)])
                        conn.send_raw(data[:n])
                        data = data[n:]
                if rnd.random() < 0.6:
                    conn.wait_closed(0.2)
            except (OSError, StompClosed, AssertionError, ValueError):
                pass  # closed on us, or a frame the raw client does not parse
            return names
        finally:
            conn.close()

    @staticmethod
    def interact(conn, rnd, frames):
        """Sends frame by frame, reading as it goes, and now and then acknowledges (ACK or
        NACK, all the headers any version names it by) a MESSAGE it really got."""
        got = []
        for data in frames:
            conn.send_raw(data)
            while True:
                f = conn.poll_frame(0.002)
                if f is None:
                    break
                if f.command == "ERROR":
                    return
                if f.command == "MESSAGE":
                    got.append(f)
            if got and rnd.random() < 0.4:
                m = got.pop(rnd.randrange(len(got)))
                headers = {"id": m.header("ack") or m.header("message-id") or "",
                           "message-id": m.header("message-id") or "",
                           "subscription": m.header("subscription") or ""}
                conn.send_raw(encode_frame(rnd.choice(["ACK", "ACK", "NACK"]), headers))

    def test_random_frame_sequences(self):
        rnd = random.Random(SEED + 1)
        for i in range(SESSIONS):
            names = self.run_session(rnd)
            if self.broker:
                self.assertTrue(self.broker.running(),
                                "warrend died in STOMP session %d (seed %d) after %s\n%s"
                                % (i, SEED + 1, names, self.broker.log_tail()))
            if i % PROBE_EVERY == PROBE_EVERY - 1 or i == SESSIONS - 1:
                self.assert_broker_usable()
                self.assert_stomp_usable()

    def assert_stomp_usable(self):
        conn = self.raw("1.2")
        dest = "/queue/" + self.queue_name("health")
        conn.receipt("SUBSCRIBE", {"destination": dest, "id": "h"})
        conn.send("SEND", {"destination": dest}, b"still alive")
        self.assertEqual(conn.expect("MESSAGE").body, b"still alive")
        conn.close()


if __name__ == "__main__":
    unittest.main()
