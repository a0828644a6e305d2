"""Differential STOMP sessions: the same random STOMP sessions, frame by frame over raw sockets
(tests/integration/stomp_raw.py), against two brokers; prints the first answer of each session
where they differ.

Meant for warrend against RabbitMQ 3.10's STOMP adapter (any RabbitMQ 3.10 with rabbitmq_stomp
on loopback will do), to find where Warren's frames, checks, headers or texts differ from the
reference. Not part of ctest: it needs the second broker.

    /usr/bin/python3 tests/differential/stomp_sessions.py 127.0.0.1:61613 127.0.0.1:25613 \\
        [--seed 1] [--sessions 50] [--ops 25] [--only N] [--verbose] \\
        [--ignore-header NAME] [--http 127.0.0.1:15672 127.0.0.1:25673]

Each session opens one connection, whose first frame is (but for a few sessions) a CONNECT or
STOMP with a drawn accept-version, host, heart-beat and login, and then draws frames on names
of its own (the session's prefix): SEND to /queue/, /topic/, /exchange/, /amq/queue/,
/temp-queue/, bare and bad destinations with odd headers (persistent, reply-to, x- queue
arguments, expiration, user-id, custom ones), SUBSCRIBE in every ack mode (prefetch-count,
durable topic subscriptions, quorum and stream queues), UNSUBSCRIBE, ACK and NACK of messages
received or unknown, transactions, SENDs to the reply-to of a message received, a second
CONNECT, DISCONNECT, and malformed frames (unknown or lower-case commands, missing or
duplicate headers, escapes, content-length with NUL bytes or that lies, CRLF lines). About
one operation in 25 is a faulty one. Receipts are asked for at random.

An operation's answer is what the broker sends back: every frame until the RECEIPT of a sync
frame sent right after the operation's (a SEND with a receipt to amq.direct with a key nothing
is bound to), then whatever arrives until the connection has been quiet for QUIET_S; or until
the connection closes. Headers are compared as sorted (name, value) lists, with the values of
session and server ids dropped, the session's prefix and server-generated names (amq.gen-*,
stomp-subscription-*) replaced, and message ids and ack ids numbered per subscription in their
order of appearance. MESSAGE frames are compared per subscription (their order across
subscriptions is not), RECEIPTs as a set. A session ends at its first ERROR on either broker
(only its headers and body are compared: Warren closes the connection after every ERROR,
RabbitMQ keeps it open after some), at DISCONNECT, or when the connection closes.

--only N --verbose replays session N and prints every operation with both answers.
--ignore-header NAME (repeatable) leaves a header out of every frame compared, so that a
difference already known does not hide the ones after it. With
--http (the management API of each broker, guest/guest), the queues a session leaves behind
(named with its prefix, or bound to amq.topic with a key that has it) are deleted after it,
and those of the whole run at the end.
"""

import argparse
import base64
import json
import os
import random
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from stomp_raw import RawStomp, StompClosed, StompTimeout, encode_frame, escape  # noqa: E402

SYNC_TIMEOUT_S = 4.0    # the most an operation waits for the sync frame's RECEIPT
QUIET_S = 0.12          # then, frames are read until none came for this long
MAX_FRAMES = 200        # frames read for one operation, at most
CLOSE_TIMEOUT_S = 2.0   # after DISCONNECT, the wait for the broker to close the connection

FAULT_P = 0.04          # the chance that an operation draws a faulty variant

# (operation, weight)
OPS = [("send", 8), ("subscribe", 3), ("unsubscribe", 1), ("ack", 2.5), ("nack", 1),
       ("begin", 1), ("commit", 0.8), ("abort", 0.5), ("reply", 1), ("odd", 1.5),
       ("connect_again", 0.05), ("disconnect", 0.2)]
OP_NAMES = [o for o, _ in OPS]
OP_WEIGHTS = [w for _, w in OPS]

# SEND headers: (name, values, faulty values, chance)
SEND_HEADERS = [
    ("persistent", ["true", "false"], [], 0.3),
    ("content-type", ["text/plain", "application/json", "text/plain; charset=utf-8"], [], 0.3),
    ("x-custom", ["v", "with space", "\u00e9t\u00e9"], [], 0.3),
    ("Colour", ["Red"], [], 0.1),
    ("reply-to", ["/temp-queue/{p}r", "/queue/{p}q1", "{p}plain", "/temp-queue/{p}r2"], [], 0.2),
    ("x-max-length", ["1"], ["x"], 0.05),
    ("x-message-ttl", ["60000"], ["x"], 0.03),
    ("priority", ["5", "0"], ["high", "300"], 0.1),
    ("expiration", ["60000", "0"], ["bad", "-1"], 0.08),
    ("correlation-id", ["c1"], [], 0.1),
    ("amqp-message-id", ["m1"], [], 0.05),
    ("message-id", [], ["mine"], 0),
    ("user-id", ["guest"], ["other"], 0.05),
    ("app-id", ["app"], [], 0.05),
    ("type", ["t"], [], 0.05),
    ("timestamp", ["1700000000"], ["x"], 0.05),
    ("content-encoding", ["gzip"], [], 0.05),
    ("durable", ["true", "false"], [], 0.08),
    ("auto-delete", ["true", "false"], [], 0.08),
    ("exclusive", ["false"], ["true"], 0.05),
    ("redelivered", ["true"], [], 0.01),
    ("subscription", ["s0"], [], 0.01),
    ("ack", ["x"], [], 0.01),
    ("id", ["x"], [], 0.02)]

DESTINATIONS = [
    ("/queue/{p}q0", 4), ("/queue/{p}q1", 3), ("/topic/{p}t0", 2), ("/topic/{p}t1", 1),
    ("/exchange/amq.direct/{p}k", 1.5), ("/exchange/amq.topic/{p}t0", 0.5),
    ("/exchange/amq.direct", 0.2), ("/amq/queue/{p}q0", 0.7), ("{p}q2", 0.7),
    ("/queue/{p}qq", 0.6), ("/queue/{p}st", 0.4)]
FAULTY_DESTINATIONS = [
    "/exchange/{p}none/k", "/amq/queue/{p}none", "/temp-queue/{p}r", "/foo/{p}q", "/queue/",
    "/topic/", "/exchange/", "/reply-queue/{p}none", ""]

# malformed or unusual frames, harmless and faulty
ODD = ["dup_dest", "dup_header", "escaped", "nul_body", "crlf", "leading_eols", "no_length"]
FAULTY_ODD = ["unknown", "lower", "send_no_dest", "sub_no_dest", "bad_escape", "short_length",
              "bad_length", "no_colon", "empty_name", "ack_no_id", "begin_no_tx", "space_dest"]

VOLATILE = {"session", "server"}


class Session:
    """One session's frames, drawn from `seed`, on names starting with `prefix`.

    What a frame is drawn from depends on what the broker answered before (messages to ack,
    reply-to headers to answer) only as far as the answers so far are the same."""

    def __init__(self, address, seed, prefix, ops, ignore=()):
        host, _, port = address.rpartition(":")
        self.host, self.port = host, int(port)
        self.rnd = random.Random(seed)
        self.prefix = prefix
        self.ops = ops
        self.ignore = set(ignore)   # headers left out of the answers
        self.version = "1.0"
        self.ids = {}           # message id or ack id -> "<subscription#n>" (n-th of its
        self.counts = {}        # subscription), and the number of ids of each subscription
        self.received = []      # [subscription, message-id, ack, acked, ack mode] per MESSAGE
        self.reply_tos = []     # reply-to headers of the MESSAGEs received
        self.subs = {}          # subscription (id, or destination) -> ack mode, as asked
        self.transactions = set()   # begun, not yet committed or aborted
        self.syncs = 0

    # -- drawing -------------------------------------------------------------------------
    def chance(self, p):
        return self.rnd.random() < p

    def pick(self, items):
        """One of items; a constant number of draws whatever their number."""
        items = list(items)
        return items[min(len(items) - 1, int(self.rnd.random() * len(items)))]

    def weighted(self, pairs):
        return self.rnd.choices([x for x, _ in pairs], [w for _, w in pairs])[0]

    def destination(self, faulty):
        d = self.weighted(DESTINATIONS)
        if faulty:
            d = self.pick(FAULTY_DESTINATIONS)
        return d.format(p=self.prefix)

    def transaction(self, faulty):
        known = sorted(self.transactions)
        tx = self.pick(known or ["t0"])
        return "nope" if faulty or not known else tx

    def receipt(self, h, i):
        if self.chance(0.5):
            h.append(("receipt", "r%d" % i))
        return h

    # -- operations ----------------------------------------------------------------------
    def frame(self, command, headers=(), body=b"", content_length=True):
        return encode_frame(command, list(headers), body, self.version, content_length)

    def connect(self, again=False):
        """A CONNECT or STOMP frame; mostly one that should be accepted."""
        h = []
        good = self.chance(0.9)
        cmd = "STOMP" if self.chance(0.2) else "CONNECT"
        v = self.pick([None, "1.0", "1.1", "1.2", "1.2", "1.2", "1.1", "1.0,1.1,1.2", "1.1,1.0"]
                      if good else ["2.0", "1.3,1.2", "", "1.2", "1.1", "1.2 ,1.1"])
        if v is not None:
            h.append(("accept-version", v))
        host = self.pick(["/", "/", None] if good else ["nosuch", "localhost", "/", ""])
        if host is not None:
            h.append(("host", host))
        login, passcode = self.pick([("guest", "guest"), ("guest", "guest"), (None, None)] if good
                                    else [("guest", "wrong"), ("nobody", "x"), ("guest", None)])
        if login is not None:
            h.append(("login", login))
        if passcode is not None:
            h.append(("passcode", passcode))
        beat = self.pick([None, None, "0,0", "0,200", "3000,0"] if good
                         else ["x", "100", "0,0,0", "-1,0"])
        if beat is not None:
            h.append(("heart-beat", beat))
        if self.chance(0.3):
            h.append(("client-id", self.prefix + "c"))
        if self.chance(0.1):
            h.append(("x-custom", "1"))
        if self.chance(0.05):
            h.append(("accept-version", "1.0"))
        if self.chance(0.1):
            h.append(("receipt", "rc"))
        return ("connect_again" if again else "connect", cmd, h), \
            encode_frame(cmd, h, b"", "1.0", content_length=False)

    def send(self, i, faulty):
        bad_destination = faulty and self.chance(0.5)    # one fault at a time
        d = self.destination(bad_destination)
        h = [("destination", d)]
        bad = self.pick([n for n, _, b, _ in SEND_HEADERS if b])
        if not faulty or bad_destination:
            bad = None
        for name, values, bad_values, prob in SEND_HEADERS:
            value = self.pick(values or [""])
            if name == bad:
                h.append((name, self.pick(bad_values)))
            elif self.chance(prob):
                h.append((name, value.format(p=self.prefix)))
        if d.endswith(("qq", "st")):
            h.append(("x-queue-type", "quorum" if d.endswith("qq") else "stream"))
        if self.chance(0.25 if self.transactions else 0.01):
            h.append(("transaction", self.transaction(faulty)))
        body = self.pick([b"m%d" % i, b"m%d" % i, b"", "\u00fc%d" % i, b"line\nbreak %d" % i])
        self.receipt(h, i)
        return ("send", "SEND", h, body), self.frame("SEND", h, body)

    def subscribe(self, i, faulty):
        fault = self.pick(["destination", "ack", "prefetch", "duplicate id"]) if faulty else None
        p = self.prefix
        d = self.pick(["/topic/%s*" % p, "/topic/%s#" % p] + [self.destination(False)] * 6)
        if fault == "destination":
            d = self.destination(True)
        h = [("destination", d)]
        free = [s for s in ("s0", "s1", "s2", "s3", "s4", "s5") if s not in self.subs]
        sid = self.pick(free or ["s0"])
        if fault == "duplicate id" and self.subs:
            sid = self.pick(sorted(self.subs))
        with_id = self.chance(0.95) or fault == "duplicate id"
        if with_id:
            h.append(("id", sid))
        ack = self.pick([None, "auto", "client", "client-individual", "client",
                         "client-individual"])
        if fault == "ack":
            ack = "bogus"
        stream = d.endswith("st")
        if stream:
            ack = self.pick(["client", "client-individual"])
        if ack is not None:
            h.append(("ack", ack))
        prefetch = self.pick(["1", "2", "10"] if stream else ["1", "2", "0", "10"])
        if fault == "prefetch":
            h.append(("prefetch-count", self.pick(["x", "-1"])))
        elif self.chance(0.3) or stream:
            h.append(("prefetch-count", prefetch))
        if d.startswith("/topic/") and self.chance(0.3) and with_id:
            h.append((self.pick(["durable", "persistent"]), "true"))
            if self.chance(0.5):
                h.append(("auto-delete", "false"))
        if d.endswith(("qq", "st")):
            h.append(("x-queue-type", "quorum" if d.endswith("qq") else "stream"))
        if stream and self.chance(0.7):
            h.append(("x-stream-offset", self.pick(["first", "last", "next", "offset=1"])))
        self.subs[sid if with_id else d] = ack
        self.receipt(h, i)
        return ("subscribe", "SUBSCRIBE", h, b""), self.frame("SUBSCRIBE", h)

    def unsubscribe(self, i, faulty):
        known = sorted(self.subs)
        sub = self.pick(known or ["s0"])
        h = []
        if faulty:
            h = self.pick([[], [("id", "nosuch")]])
        elif sub.startswith("/") or sub.startswith(self.prefix):
            h.append(("destination", sub))
        else:
            h.append(("id", sub))
        if self.chance(0.15):
            h.append(("durable", "true"))
        if not faulty and known:
            del self.subs[sub]
            for m in self.received:
                if m[0] == sub:
                    m[3] = True     # requeued: no longer ours to ack
        self.receipt(h, i)
        return ("unsubscribe", "UNSUBSCRIBE", h, b""), self.frame("UNSUBSCRIBE", h)

    def ackable(self):
        return [m for m in self.received if not m[3] and m[4] in ("client", "client-individual")]

    def ack(self, op, i, faulty):
        """ACK or NACK of a message received and not acked yet (as far as this session
        knows), or of one that does not exist."""
        cmd = op.upper()
        m = self.pick(self.ackable() or [None])
        h = []
        if m is None or faulty:
            h.append(("id" if self.version == "1.2" else "message-id",
                      self.pick(["nosuch", "T_s0@@nosuch@@99", "T_s0@@99"])))
            if self.version == "1.1":
                h.append(("subscription", "s0"))
        else:
            sub, mid, ack = m[:3]
            if self.version == "1.2":
                h.append(("id", ack if ack is not None else mid))
            else:
                h.append(("message-id", mid))
                if self.version == "1.1":
                    h.append(("subscription", sub))
            individual = m[4] == "client-individual"
            for other in self.received[:self.received.index(m) + 1]:
                if other is m or (other[0] == sub and not individual):
                    other[3] = True
        if op == "nack" and self.chance(0.2):
            h.append(("requeue", self.pick(["false", "true"])))
        if self.chance(0.2 if self.transactions else 0):
            h.append(("transaction", self.transaction(False)))
        self.receipt(h, i)
        return (op, cmd, h, b""), self.frame(cmd, h)

    def transact(self, op, i, faulty):
        cmd = op.upper()
        tx = self.pick(["t0", "t1"]) if op == "begin" else self.transaction(faulty)
        if op == "begin" and faulty:
            tx = self.pick(sorted(self.transactions) or ["t0"])
        if op == "begin":
            self.transactions.add(tx)
        else:
            self.transactions.discard(tx)
        h = [] if faulty and self.chance(0.3) else [("transaction", tx)]
        self.receipt(h, i)
        return (op, cmd, h, b""), self.frame(cmd, h)

    def step(self, op, i):
        """(what it sends, for printing; the bytes) of operation i."""
        faulty = self.chance(FAULT_P)
        if op in ("ack", "nack") and not self.ackable() and not faulty:
            op = "send"
        if op in ("commit", "abort") and not self.transactions and not faulty:
            op = "begin"
        if op == "unsubscribe" and not self.subs and not faulty:
            op = "subscribe"
        if op == "send":
            return self.send(i, faulty)
        if op == "subscribe":
            return self.subscribe(i, faulty)
        if op == "unsubscribe":
            return self.unsubscribe(i, faulty)
        if op in ("ack", "nack"):
            return self.ack(op, i, faulty)
        if op in ("begin", "commit", "abort"):
            return self.transact(op, i, faulty)
        if op == "reply":
            d = self.reply_tos[-1] if self.reply_tos else "/reply-queue/%snone" % self.prefix
            h = self.receipt([("destination", d)], i)
            return (op, "SEND", h, b"reply%d" % i), self.frame("SEND", h, b"reply%d" % i)
        if op == "connect_again":
            return self.connect(again=True)
        if op == "disconnect":
            h = [("receipt", "bye")] if self.chance(0.8) else []
            return (op, "DISCONNECT", h, b""), self.frame("DISCONNECT", h)
        return self.odd(i, faulty)

    def odd(self, i, faulty):
        """A malformed or unusual frame: (what it sends, the bytes)."""
        p, q0 = self.prefix, "/queue/%sq0" % self.prefix
        rc = [("receipt", "r%d" % i)]
        kind = self.pick(ODD)
        if faulty:
            kind = self.pick(FAULTY_ODD)
        framed = {
            "unknown": ("FOO", rc, b""),
            "lower": ("send", [("destination", q0)] + rc, b"x"),
            "send_no_dest": ("SEND", rc, b"x"),
            "sub_no_dest": ("SUBSCRIBE", [("id", "s9")] + rc, b""),
            "dup_dest": ("SEND", [("destination", q0), ("destination", "/queue/%sq1" % p)] + rc,
                         b"dup%d" % i),
            "dup_header": ("SEND", [("destination", q0), ("x-dup", "1"), ("x-dup", "2"),
                                    ("persistent", "true"), ("persistent", "false")] + rc, b"d"),
            "escaped": ("SEND", [("destination", q0), ("x-k:ey", "v"),
                                 ("x-esc", "a:b" if self.version == "1.0" else "a:b\nc\\d")]
                        + rc, b"e%d" % i)}
        if kind in framed:
            cmd, h, body = framed[kind]
            return ("odd", kind, cmd, h, body), self.frame(cmd, h, body)
        dest = ("destination:%s\n" % escape(q0, self.version)).encode()
        rid = ("receipt:r%d\n" % i).encode()
        raw = {
            "bad_escape": b"SEND\n" + dest + b"x-bad:a\\tb\n" + rid + b"\nbe\x00",
            "nul_body": b"SEND\n" + dest + b"content-length:5\n" + rid + b"\na\x00b\x00c\x00",
            "short_length": b"SEND\n" + dest + b"content-length:1\n" + rid + b"\nabc\x00",
            "bad_length": b"SEND\n" + dest + b"content-length:x\n" + rid + b"\nabc\x00",
            "no_colon": b"SEND\n" + dest + b"nocolon\n" + rid + b"\nnc\x00",
            "crlf": b"SEND\r\n" + dest.replace(b"\n", b"\r\n") + rid.replace(b"\n", b"\r\n") +
                    b"\r\ncr\x00",
            "empty_name": b"SEND\n" + dest + b":v\n" + rid + b"\nen\x00",
            "leading_eols": b"\n\r\n\nSEND\n" + dest + rid + b"\nle\x00",
            "ack_no_id": b"ACK\n" + rid + b"\n\x00",
            "begin_no_tx": b"BEGIN\n" + rid + b"\n\x00",
            "space_dest": b"SEND\ndestination: " + q0.encode() + b"\n" + rid + b"\nsp\x00",
            "no_length": b"SEND\n" + dest + rid + b"\nnl\x00",
        }[kind]
        return ("odd", kind, raw), raw

    # -- answers -------------------------------------------------------------------------
    def norm(self, text):
        for raw in sorted(self.ids, key=len, reverse=True):
            if "@@" in raw:
                text = text.replace(raw, self.ids[raw])
        text = text.replace(self.prefix, "P.")
        text = re.sub(r"amq\.gen-[A-Za-z0-9_-]+", "amq.gen-X", text)
        text = re.sub(r"stomp-subscription-[A-Za-z0-9_.-]+", "stomp-subscription-X", text)
        return re.sub(r"session-[A-Za-z0-9_-]+", "session-X", text)

    def label(self, raw, sub):
        """The stand-in for a message id or ack id of subscription sub."""
        if raw not in self.ids:
            n = self.counts[sub] = self.counts.get(sub, -1) + 1
            self.ids[raw] = "<%s#%d>" % (self.norm(sub), n)
        return self.ids[raw]

    def normalise(self, f):
        """(command, sorted headers, body) of a frame, volatile values dropped."""
        if f.command == "MESSAGE":
            sub = f.header("subscription")
            mode = self.subs.get(sub if sub is not None else f.header("destination"))
            self.received.append([sub, f.header("message-id"), f.header("ack"), False, mode])
            if f.header("reply-to"):
                self.reply_tos.append(f.header("reply-to"))
        body = f.body.decode("utf-8", "replace")
        nbody = self.norm(body)
        headers = []
        for k, v in f.headers:
            if k in self.ignore:
                continue
            if k in VOLATILE:
                v = "*"
            elif k in ("message-id", "ack") and f.command == "MESSAGE":
                v = self.label(v, f.header("subscription", f.header("destination", "")))
            elif k == "content-length" and nbody != body:
                v = "*"
            else:
                v = self.norm(v)
            headers.append((k, v))
        return (f.command, tuple(sorted(headers)), nbody)

    def answer(self, frames, state):
        """frames in order, except MESSAGEs, grouped per subscription, and RECEIPTs, sorted
        (a SEND's waits for its message to be routed, so that the RECEIPT of a later frame may
        come first)."""
        others, receipts, per_sub = [], [], {}
        for f in frames:
            if f[0] == "MESSAGE":
                sub = dict(f[1]).get("subscription")
                per_sub.setdefault(sub or "", []).append(f)
            elif f[0] == "RECEIPT":
                receipts.append(f)
            else:
                others.append(f)
        return (tuple(others) + tuple(sorted(receipts)),
                tuple((s, tuple(m)) for s, m in sorted(per_sub.items())), state)

    def read(self, conn, deadline, frames):
        """One frame, normalised into frames; the state if the reading ends here."""
        try:
            f = conn.recv_frame(max(0.001, deadline - time.monotonic()))
        except StompTimeout:
            return "timeout"
        except StompClosed:
            return "closed"
        except (AssertionError, ValueError, UnicodeDecodeError) as e:
            return "unparsable: %s" % e
        if f.command == "CONNECTED":
            self.version = conn.version = f.header("version", "1.0")
        if f.command == "RECEIPT" and f.header("receipt-id", "").startswith("sync-"):
            return "synced"
        frames.append(self.normalise(f))
        return "error" if f.command == "ERROR" else None

    def exchange(self, conn, data, sync):
        """Sends data (and a sync frame); the broker's answer."""
        frames = []
        try:
            conn.send_raw(data)
            if sync:
                self.syncs += 1
                conn.send_raw(self.frame("SEND", [
                    ("destination", "/exchange/amq.direct/%ssync" % self.prefix),
                    ("receipt", "sync-%d" % self.syncs)], b""))
        except OSError:
            return self.answer(frames, "closed before sending")
        deadline = time.monotonic() + (SYNC_TIMEOUT_S if sync else CLOSE_TIMEOUT_S)
        state = None
        while state is None and len(frames) < MAX_FRAMES:
            state = self.read(conn, deadline, frames)
        if state == "timeout":
            state = "no sync receipt" if sync else "open"
        if state == "synced":
            state = None
            while state is None and len(frames) < MAX_FRAMES:
                state = self.read(conn, time.monotonic() + QUIET_S, frames)
            state = "open" if state == "timeout" else state
        return self.answer(frames, state or "too many frames")

    def run(self):
        """The answers, with what was sent for each."""
        answers = []
        conn = RawStomp(self.host, self.port)
        try:
            for i in range(self.ops):
                if i == 0:
                    call, data = self.connect() if self.chance(0.97) else self.step("send", i)
                else:
                    call, data = self.step(self.rnd.choices(OP_NAMES, OP_WEIGHTS)[0], i)
                last = call[0] == "disconnect"
                answer = self.exchange(conn, data, sync=not last)
                answers.append((call, answer))
                if answer[2] != "open":
                    break
            else:
                conn.send_raw(self.frame("DISCONNECT"))
        except OSError as e:
            answers.append((("socket",), ((), (), "socket error: %s" % e)))
        finally:
            conn.close()
        return answers


def clean(http, prefix):
    """Deletes the queues a session left behind on the broker whose management API is at
    http: those named with its prefix, and those bound to amq.topic by a key that has it."""
    auth = "Basic " + base64.b64encode(b"guest:guest").decode()

    def call(method, path):
        req = urllib.request.Request("http://%s%s" % (http, path), method=method,
                                     headers={"Authorization": auth})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    names = {q["name"] for q in call("GET", "/api/queues/%2F?columns=name")
             if prefix in q["name"]}
    bindings = call("GET", "/api/exchanges/%2F/amq.topic/bindings/source")
    names |= {b["destination"] for b in bindings
              if prefix in b["routing_key"] and b["destination_type"] == "queue"}
    for name in names:
        try:
            call("DELETE", "/api/queues/%2F/" + urllib.parse.quote(name, safe=""))
        except urllib.error.HTTPError:
            pass


def show(call):
    return " ".join(repr(x) for x in call)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", help="HOST:PORT of the first broker's STOMP listener")
    ap.add_argument("b", help="HOST:PORT of the second broker's STOMP listener")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--ops", type=int, default=25, help="operations per session")
    ap.add_argument("--only", type=int, help="run only session N")
    ap.add_argument("--verbose", action="store_true", help="print every operation")
    ap.add_argument("--ignore-header", action="append", default=[], metavar="NAME",
                    help="leave this header out of every answer (repeatable)")
    ap.add_argument("--http", nargs=2, metavar="HOST:PORT",
                    help="management API of each broker, to delete what a session left")
    args = ap.parse_args()
    run_id = "d%d" % (int(time.time()) % 100000)
    differing = compared = 0
    sessions = [args.only] if args.only is not None else range(args.sessions)
    for s in sessions:
        seed, prefix = args.seed * 100000 + s, "%s.s%d." % (run_id, s)
        answers = []
        for i, address in enumerate((args.a, args.b)):
            answers.append(Session(address, seed, prefix, args.ops, args.ignore_header).run())
            if args.http:
                clean(args.http[i], prefix)
        a, b = answers
        for i, (x, y) in enumerate(zip(a, b)):
            compared += 1
            if args.verbose:
                print("%3d %s\n      A %s\n      B %s" % (i, show(x[0]), x[1], y[1]))
            if x[1] != y[1]:
                differing += 1
                print("session %d (seed %d), operation %d %s:\n  A %s\n  B %s\n  after %s"
                      % (s, seed, i, show(x[0]), x[1], y[1], [o[0][0] for o in a[:i]]))
                break
        else:
            if len(a) != len(b):
                differing += 1
                print("session %d (seed %d): %d answers against %d" % (s, seed, len(a), len(b)))
    for http in set(args.http or ()):
        clean(http, run_id + ".")   # what a closing connection declared after its session's clean
    print("%d sessions, %d operations compared, %d differing"
          % (len(sessions), compared, differing))
    return 1 if differing else 0


if __name__ == "__main__":
    raise SystemExit(main())
