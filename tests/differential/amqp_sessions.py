"""Differential AMQP sessions: the same random client sessions (python3-pika) against two
brokers, answer by answer; prints the first answer of each session where they differ.

Meant for warrend against RabbitMQ (bench/compare.sh starts one; any RabbitMQ 3.10 on
loopback will do), to find where Warren's checks, their order, codes or texts differ from the
reference. Not part of ctest: it needs the second broker.

    /usr/bin/python3 tests/differential/amqp_sessions.py 127.0.0.1:5672 127.0.0.1:25672 \\
        [--seed 1] [--sessions 50] [--ops 30] [--only N] [--verbose]

Each session opens one connection and draws operations (declares with odd and faulty
arguments, deletes, binds, publishes with odd properties, gets, acks of tags that may not
exist, qos, transactions, confirms, consumers of every queue type) on a few names of its own,
identical on both brokers. An operation's answer is its result (message counts, what a get
returned) or the channel or connection close (code and text, with the session's prefix and
server-generated names replaced). A publish is followed by a passive declare, so that a close
it caused is the answer of the publish on both brokers. Consumers' deliveries are not
compared: their timing differs. --only N --verbose replays session N and prints every
operation with its arguments and both answers.
"""

import argparse
import random
import re
import time

import pika
import pika.exceptions as pex

QUEUE_ARGS = [
    None, {"x-message-ttl": 0}, {"x-max-length": 1},
    {"x-max-length": 1, "x-overflow": "reject-publish"}, {"x-dead-letter-exchange": "dlx"},
    {"x-expires": 100000}, {"x-max-priority": 3}, {"x-single-active-consumer": True},
    {"x-queue-type": "quorum"}, {"x-queue-type": "stream"}, {"x-queue-type": "classic"},
    {"x-max-length-bytes": 3}, {"x-message-ttl": "x"}, {"x-queue-mode": "lazy"},
    {"x-dead-letter-routing-key": "k"}, {"x-delivery-limit": 1, "x-queue-type": "quorum"}]
BAD_QUEUE_ARGS = [
    {"x-max-priority": 256}, {"x-expires": 0}, {"x-overflow": "x"}, {"x-queue-type": "bogus"},
    {"x-dead-letter-exchange": 5}, {"x-single-active-consumer": 1}, {"x-max-length": "5"},
    {"x-queue-type": "stream", "x-max-age": "1x"}, {"x-queue-type": "stream", "x-max-age": "7D"},
    {"x-queue-type": "quorum", "x-max-priority": 2},
    {"x-queue-type": "stream", "x-overflow": "drop-head"},
    {"x-queue-type": "quorum", "x-overflow": "reject-publish-dlx"}]
EXCHANGE_TYPES = ["direct", "fanout", "topic", "headers", "bogus"]
KEYS = ["", "k", "a.b", "#", "*.b", "q0", "q1"]
OPS = ["qdecl"] * 3 + ["qdel", "purge", "bind", "unbind"] + ["xdecl"] * 2 + ["xdel"] + \
    ["pub"] * 3 + ["get"] * 2 + ["ack", "nack", "reject", "qos", "recover", "xbind", "confirm",
                                 "tx", "commit", "rollback", "consume", "cancel",
                                 "qdecl_server_named", "xdel_builtin", "bind_default", "qos_size",
                                 "qdecl_bad", "xdecl_odd", "pub_headers", "consume_stream"]


def normalise(text, prefix):
    text = text.replace(prefix, "P.")
    text = re.sub(r"amq\.gen-[A-Za-z0-9_-]+", "amq.gen-X", text)
    return re.sub(r"amq\.ctag-[A-Za-z0-9_-]+", "amq.ctag-X", text)


class Session:
    """One session's operations, drawn from `seed`, on names starting with `prefix`."""

    def __init__(self, address, seed, prefix, ops):
        host, _, port = address.rpartition(":")
        self.params = pika.ConnectionParameters(host, int(port), heartbeat=0,
                                                blocked_connection_timeout=5)
        self.rnd = random.Random(seed)
        self.prefix = prefix
        self.ops = ops

    def queue(self):
        return self.prefix + self.rnd.choice(["q0", "q1", "q2"])

    def exchange(self):
        p = self.prefix
        return self.rnd.choice([p + "x0", p + "x1", "amq.direct", "amq.topic", "", p + "dlx",
                                "amq.fanout"])

    def chance(self, p):
        return self.rnd.random() < p

    def sync(self, ch):
        ch.exchange_declare("amq.direct", passive=True)

    def note(self, *call):
        """What the operation asks for, recorded before the broker answers."""
        self.call = call

    def step(self, ch, op, i):
        """Does `op`; returns its answer (self.call: what it asked)."""
        r, p = self.rnd, self.prefix
        self.call = (op,)
        if op == "qdecl":
            args = r.choice(QUEUE_ARGS)
            if args and "x-dead-letter-exchange" in args:
                args = dict(args, **{"x-dead-letter-exchange": p + "dlx"})
            kw = dict(durable=self.chance(0.5), exclusive=self.chance(0.2),
                      auto_delete=self.chance(0.2), passive=self.chance(0.15), arguments=args)
            q = self.queue()
            self.note(op, q, kw)
            ok = ch.queue_declare(q, **kw)
            return ("ok", ok.method.message_count, ok.method.consumer_count)
        if op == "qdel":
            q, kw = self.queue(), dict(if_unused=self.chance(0.3), if_empty=self.chance(0.3))
            self.note(op, q, kw)
            return ("ok", ch.queue_delete(q, **kw).method.message_count)
        if op == "purge":
            q = self.queue()
            self.note(op, q)
            return ("ok", ch.queue_purge(q).method.message_count)
        if op in ("bind", "unbind", "bind_default"):
            q, x, k = self.queue(), "" if op == "bind_default" else self.exchange(), r.choice(KEYS)
            if op == "unbind":
                self.note(op, q, x, k)
                ch.queue_unbind(q, x, k)
                return ("ok",)
            args = r.choice([None, {"x-match": "any", "a": 1}])
            self.note(op, q, x, k, args)
            ch.queue_bind(q, x, k, arguments=args)
            return ("ok",)
        if op == "xdecl":
            x = r.choice([p + "x0", p + "x1", p + "dlx", "amq.direct", "amq.foo"])
            kw = dict(exchange_type=r.choice(EXCHANGE_TYPES), durable=self.chance(0.5),
                      auto_delete=self.chance(0.2), internal=self.chance(0.1),
                      passive=self.chance(0.15),
                      arguments=r.choice([None, {"alternate-exchange": p + "x1"}]))
            self.note(op, x, kw)
            ch.exchange_declare(x, **kw)
            return ("ok",)
        if op == "xdecl_odd":
            x = r.choice([p + "x0", p + "x2", "amq.gen-x", "amq.default"])
            kw = dict(exchange_type=r.choice(["x-consistent-hash", "direct", "fanout"]),
                      passive=self.chance(0.3),
                      arguments=r.choice([None, {"alternate-exchange": 5}]))
            self.note(op, x, kw)
            ch.exchange_declare(x, **kw)
            return ("ok",)
        if op == "xdel":
            x, unused = r.choice([p + "x0", p + "x1", p + "dlx"]), self.chance(0.4)
            self.note(op, x, unused)
            ch.exchange_delete(x, if_unused=unused)
            return ("ok",)
        if op == "xdel_builtin":
            x = r.choice(["amq.direct", "amq.topic", "", "amq.rabbitmq.trace"])
            self.note(op, x)
            ch.exchange_delete(x)
            return ("ok",)
        if op == "xbind":
            d, s, k = r.choice([p + "x0", p + "x1"]), self.exchange(), r.choice(KEYS)
            self.note(op, d, s, k)
            ch.exchange_bind(d, s, k)
            return ("ok",)
        if op in ("pub", "pub_headers"):
            x = r.choice(["", "", p + "x0", p + "x1", "amq.topic"])
            key = self.queue() if x == "" or op == "pub_headers" else r.choice(KEYS)
            if op == "pub_headers":
                x = ""
                props = pika.BasicProperties(
                    priority=r.choice([0, 9, 255]),
                    headers=r.choice([None, {"x-first-death-reason": "x"},
                                      {"a": [1, "b", {"c": None}]}]))
            else:
                props = pika.BasicProperties(delivery_mode=r.choice([1, 2]),
                                             priority=r.choice([None, 1, 5]),
                                             expiration=r.choice([None, "0", "60000", "bad"]))
            mandatory = self.chance(0.3)
            self.note(op, x, key, props, mandatory)
            ch.basic_publish(x, key, b"m%d" % i, props, mandatory=mandatory)
            self.sync(ch)
            return ("ok",)
        if op == "get":
            q, auto = self.queue(), self.chance(0.5)
            self.note(op, q, auto)
            m, props, body = ch.basic_get(q, auto_ack=auto)
            got = None if m is None else (m.delivery_tag, m.redelivered, m.message_count, body,
                                          sorted((props.headers or {}).keys()))
            return ("ok", got)
        if op in ("ack", "nack", "reject"):
            tag, multiple, requeue = r.choice([0, 1, 2, 3, 5]), self.chance(0.3), self.chance(0.5)
            self.note(op, tag, multiple, requeue)
            if op == "ack":
                ch.basic_ack(tag, multiple=multiple)
            elif op == "nack":
                ch.basic_nack(tag, multiple=multiple, requeue=requeue)
            else:
                ch.basic_reject(tag, requeue=requeue)
            self.sync(ch)
            return ("ok",)
        if op in ("qos", "qos_size"):
            kw = dict(prefetch_count=r.choice([0, 1, 10]), global_qos=self.chance(0.3))
            if op == "qos_size":
                kw["prefetch_size"] = r.choice([0, 10])
            self.note(op, kw)
            ch.basic_qos(**kw)
            return ("ok",)
        if op == "recover":
            requeue = self.chance(0.8)
            self.note(op, requeue)
            ch.basic_recover(requeue=requeue)
            return ("ok",)
        if op == "confirm":
            ch.confirm_delivery()
        elif op == "tx":
            ch.tx_select()
        elif op == "commit":
            ch.tx_commit()
        elif op == "rollback":
            ch.tx_rollback()
        elif op == "cancel":
            ch.basic_cancel("nope")
        elif op == "qdecl_server_named":
            kw = dict(exclusive=self.chance(0.7), durable=self.chance(0.3),
                      passive=self.chance(0.2))
            self.note(op, kw)
            return ("ok", ch.queue_declare("", **kw).method.message_count)
        elif op == "qdecl_bad":
            q, args = self.queue(), r.choice(BAD_QUEUE_ARGS)
            self.note(op, q, args)
            return ("ok", ch.queue_declare(q, durable=True, arguments=args).method.message_count)
        elif op in ("consume", "consume_stream"):
            q = self.queue()
            self.note(op, q)
            if op == "consume_stream":
                q = p + "s0"
                ch.queue_declare(q, durable=True, arguments={"x-queue-type": "stream"})
                ch.basic_qos(prefetch_count=r.choice([0, 5]))
            kw = dict(auto_ack=self.chance(0.5 if op == "consume" else 0.3),
                      exclusive=self.chance(0.3 if op == "consume" else 0),
                      arguments=r.choice([None, {"x-priority": 1}, {"x-stream-offset": "first"},
                                          {"x-stream-offset": -1}]))
            self.note(op, q, kw)
            ch.basic_consume(q, lambda *a: None, **kw)
        return ("ok",)

    def run(self):
        """The answers, with what was called for each."""
        answers = []
        conn = pika.BlockingConnection(self.params)
        ch = conn.channel()
        for i in range(self.ops):
            op = self.rnd.choice(OPS)
            try:
                answer = self.step(ch, op, i)
                conn.process_data_events(0.02)
                if not ch.is_open:
                    answer = ("closed", None, "")
                    ch = conn.channel()
            except pex.ChannelClosedByBroker as e:
                answer = ("channel closed", e.reply_code, normalise(e.reply_text, self.prefix))
                ch = conn.channel()
            except pex.ConnectionClosedByBroker as e:
                answers.append((op, self.call, ("connection closed", e.reply_code,
                                           normalise(e.reply_text, self.prefix))))
                self.clean(pika.BlockingConnection(self.params))
                return answers
            except (pex.UnroutableError, pex.NackError) as e:
                answer = (type(e).__name__, len(e.messages))
            answers.append((op, self.call, answer))
        self.clean(conn)
        return answers

    def clean(self, conn):
        """Deletes the session's queues and exchanges: what later sessions route through the
        shared exchanges (amq.topic) must not reach them."""
        ch = conn.channel()
        for name, delete in [(q, "queue_delete") for q in ("q0", "q1", "q2", "s0")] + \
                [(x, "exchange_delete") for x in ("x0", "x1", "x2", "dlx")]:
            try:
                getattr(ch, delete)(self.prefix + name)
            except pex.ChannelClosedByBroker:
                ch = conn.channel()
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", help="HOST:PORT of the first broker")
    ap.add_argument("b", help="HOST:PORT of the second broker")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--ops", type=int, default=30, help="operations per session")
    ap.add_argument("--only", type=int, help="run only session N")
    ap.add_argument("--verbose", action="store_true", help="print every operation")
    args = ap.parse_args()
    run_id = "d%d" % (int(time.time()) % 100000)
    differing = 0
    sessions = [args.only] if args.only is not None else range(args.sessions)
    for s in sessions:
        seed, prefix = args.seed * 100000 + s, "%s.s%d." % (run_id, s)
        a = Session(args.a, seed, prefix, args.ops).run()
        b = Session(args.b, seed, prefix, args.ops).run()
        for i, (x, y) in enumerate(zip(a, b)):
            if args.verbose:
                print("%3d %s\n      A %s\n      B %s" % (i, x[1], x[2], y[2]))
            if x[2] != y[2]:
                differing += 1
                print("session %d (seed %d), operation %d %s:\n  A %s\n  B %s\n  after %s"
                      % (s, seed, i, x[1], x[2], y[2], [o[0] for o in a[:i]]))
                break
    print("%d sessions, %d differing" % (len(sessions), differing))
    return 1 if differing else 0


if __name__ == "__main__":
    raise SystemExit(main())
