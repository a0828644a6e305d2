"""Randomised client sessions: well-formed AMQP and STOMP frames in random order, with
arguments drawn from pools of odd but legal values (empty and 255-byte names, reserved
prefixes, unknown exchange types, tables nested and of every field type, wrong argument types,
delivery tags never issued, content sizes that do not match). Whatever the broker answers,
it must stay up and keep serving a plain client.

Bounded: SESSIONS sessions per protocol from a fixed seed, each with a time limit.
WARREN_RANDOM_SEED and WARREN_RANDOM_SESSIONS change them (a failure names the seed and the
session, and the frames it sent are in the assertion message).
"""

import os
import random
import socket
import struct
import time
import unittest
import xml.etree.ElementTree as ET

import amqp_raw as raw
from harness import BrokerTestCase
from stomp_support import StompTestCase

SEED = int(os.environ.get("WARREN_RANDOM_SEED", "20261130"))
SESSIONS = int(os.environ.get("WARREN_RANDOM_SESSIONS", "120"))
SPEC_XML = os.environ.get("WARREN_AMQP_SPEC",
                          "/usr/share/amqp/specs/0-9-1-rabbit/amqp0-9-1.stripped.extended.xml")
SESSION_TIME_S = 3.0     # reading the broker's answers, per session
PROBE_EVERY = 20         # sessions between checks that a plain client is still served


# -- AMQP: methods from the spec, arguments from pools ---------------------------------------
def load_methods(path):
    """[(class_id, method_id, name, [(field_name, type)])] for every method in the spec."""
    root = ET.parse(path).getroot()
    domains = {d.get("name"): d.get("type") for d in root.iter("domain")}
    methods = []
    for c in root.iter("class"):
        for m in c.findall("method"):
            fields = [(f.get("name"), f.get("type") or domains[f.get("domain")])
                      for f in m.findall("field")]
            methods.append((int(c.get("index")), int(m.get("index")),
                            "%s.%s" % (c.get("name"), m.get("name")), fields))
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
    t = dict(rnd.choice(TABLES))
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
    fmt = {"octet": "!B", "short": "!H", "long": "!I", "longlong": "!Q", "timestamp": "!Q"}
    limit = 2 ** (8 * struct.calcsize(fmt[ftype]))
    v = rnd.choice(EDGE_INTS[ftype]) if rnd.random() < 0.8 else rnd.randrange(limit)
    return struct.pack(fmt[ftype], v % limit)


def method_args(rnd, fields):
    out, bits, nbits = b"", 0, 0
    for name, ftype in fields:
        if ftype == "bit":
            bits |= (rnd.random() < 0.5) << nbits
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
        # Mostly channel-level work; connection methods end a session early, so they are rare.
        cls.weighted = []
        for class_id, ms in by_class.items():
            weight = {10: 1, 20: 4, 40: 8, 50: 10, 60: 16, 85: 3, 90: 3}.get(class_id, 2)
            for m in ms:
                cls.weighted += [m] * weight

    def frames(self, rnd):
        out, names = [], []
        for _ in range(rnd.randint(5, 40)):
            channel = rnd.choice([1, 1, 1, 2, 2, 3, 0, 65535]) if rnd.random() < 0.95 else 7
            class_id, method_id, name, fields = rnd.choice(self.weighted)
            if rnd.random() < 0.15:  # open it first, as a real client would
                out.append(raw.method_frame(channel, raw.CHANNEL_OPEN, raw.shortstr("")))
                names.append("%d:channel.open" % channel)
            out.append(raw.method_frame(channel, (class_id, method_id),
                                        method_args(rnd, fields)))
            names.append("%d:%s" % (channel, name))
            if name == "basic.publish" or rnd.random() < 0.03:
                size = rnd.choice([0, 1, 16, 5000])
                header = struct.pack("!HHQ", 60, 0, size if rnd.random() < 0.9 else size + 1)
                out.append(raw.frame(raw.FRAME_HEADER, channel, header + properties_bytes(rnd)))
                sent = 0
                while sent < size:
                    n = min(size - sent, rnd.choice([1, 100, 4000]))
                    out.append(raw.frame(raw.FRAME_BODY, channel, b"b" * n))
                    sent += n
                names.append("%d:content(%d)" % (channel, size))
        return out, names

    def run_session(self, rnd):
        c = raw.RawConnection(self.host, self.port)
        try:
            frames, names = self.frames(rnd)
            if rnd.random() < 0.15:
                # The whole handshake in the same write as the methods, not waiting for the
                # broker's start and tune: what comes after runs once the login is checked.
                start_ok = raw.empty_table() + raw.shortstr("PLAIN") + raw.longstr(
                    b"\x00guest\x00guest") + raw.shortstr("en_US")
                frames[:0] = [raw.PROTOCOL_HEADER,
                              raw.method_frame(0, raw.CONNECTION_START_OK, start_ok),
                              raw.method_frame(0, raw.CONNECTION_TUNE_OK,
                                               struct.pack("!HIH", 0, 131072, 0)),
                              raw.method_frame(0, raw.CONNECTION_OPEN, raw.shortstr("/")
                                               + raw.shortstr("") + b"\x00")]
                names[:0] = ["pipelined handshake"]
            else:
                c.handshake(frame_max=rnd.choice([4096, 131072]))
            data = b"".join(frames)
            try:
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
        """Reads to EOF; a connection.close from the broker (it closed first, and ignores
        ours) is answered with close-ok, as a client would."""
        deadline = time.monotonic() + SESSION_TIME_S
        while time.monotonic() < deadline:
            f = c.read_frame(timeout=max(0.01, deadline - time.monotonic()))
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
    }
    pool = pools.get(name, ["0", "1", "2", "t0", "t1", "s0", "", "a:b", "a\\nb", "\u2603"])
    return rnd.choice(pool)


def stomp_frame(rnd, command):
    lines = [command]
    for name in STOMP_HEADERS[command]:
        if rnd.random() < (0.9 if name in ("destination", "id", "transaction") else 0.3):
            lines.append("%s:%s" % (name, stomp_value(rnd, name)))
    if rnd.random() < 0.1:
        lines.append("repeated:1")
        lines.append("repeated:2")
    body = rnd.choice([b"", b"x", b"body\x00with nul" if command == "SEND" else b"", b"b" * 3000])
    eol = b"\r\n" if rnd.random() < 0.2 else b"\n"
    return eol.join(l.encode("utf-8") for l in lines) + eol + eol + body + b"\x00" + (
        b"\n" if rnd.random() < 0.3 else b"")


class StompRandomSessionsTest(StompTestCase):
    """Random frame sequences on a STOMP connection that first said CONNECT."""

    def run_session(self, rnd):
        s = socket.create_connection((self.stomp_host, self.stomp_port), timeout=5)
        try:
            connect = "CONNECT\naccept-version:%s\nlogin:guest\npasscode:guest\nhost:/\n\n\x00" % (
                rnd.choice(["1.0", "1.1", "1.2", "1.0,1.1,1.2"]))
            frames = [connect.encode()] if rnd.random() < 0.95 else []
            names = ["CONNECT"] if frames else []
            commands = [c for c in STOMP_HEADERS if c != "CONNECT"]
            weights = [6 if c in ("SEND", "SUBSCRIBE", "ACK") else 2 for c in commands]
            for _ in range(rnd.randint(3, 30)):
                command = rnd.choices(commands, weights)[0]
                frames.append(stomp_frame(rnd, command))
                names.append(command)
            data = b"".join(frames)
            try:
                while data:
                    n = rnd.choice([1, 13, 512, len(data)])
                    s.sendall(data[:n])
                    data = data[n:]
                if rnd.random() < 0.6:
                    s.settimeout(0.2)
                    deadline = time.monotonic() + SESSION_TIME_S
                    while time.monotonic() < deadline and s.recv(65536):
                        pass
            except OSError:
                pass
            return names
        finally:
            s.close()

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
