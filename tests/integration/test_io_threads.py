"""Several I/O threads (`--io-threads`, net/io_pool.hpp): accepted sockets go to the threads in
turn, and clients whose sockets are read by different threads exchange messages as on one.

- warrend reports the count it was given and has a thread named warren.io.N for each thread
  beyond the first;
- six AMQP connections (two per thread) publish to each other's queues: every message
  arrives, in order per publisher;
- STOMP and AMQP connections spread over the threads: STOMP SENDs reach an AMQP consumer, and
  an AMQP publish reaches a STOMP subscriber.

Every loop is bounded in count and time.
"""

import os
import time
import unittest

from harness import unique
from stomp_support import StompTestCase

EXTERNAL = os.environ.get("WARREN_TEST_BROKER")
IO_THREADS = 3


@unittest.skipIf(EXTERNAL, "warrend's own threads")
class IoThreadsTest(StompTestCase):
    broker_args = ("--workers", "2", "--io-threads", str(IO_THREADS))

    def test_threads_started(self):
        self.assertIn("%d I/O thread(s)" % IO_THREADS, self.broker.log_text())
        task_dir = "/proc/%d/task" % self.broker.proc.pid
        names = set()
        for tid in os.listdir(task_dir):
            try:
                with open(os.path.join(task_dir, tid, "comm")) as f:
                    names.add(f.read().strip())
            except OSError:  # a thread that ended meanwhile
                pass
        for i in range(1, IO_THREADS):
            self.assertIn("warren.io.%d" % i, names)

    def test_connections_on_different_threads_exchange_messages(self):
        n_conns, per_publisher = 2 * IO_THREADS, 500
        conns = [self.connect() for _ in range(n_conns)]
        chans = [c.channel() for c in conns]
        queues = [unique("io.q%d" % i) for i in range(n_conns)]
        for ch, q in zip(chans, queues):
            ch.queue_declare(q, auto_delete=True)
        got = [[] for _ in range(n_conns)]
        for i, (ch, q) in enumerate(zip(chans, queues)):
            ch.basic_consume(q, lambda c, m, p, body, i=i: got[i].append(body), auto_ack=True)
        # Connection i publishes to the queue that connection i + 1 consumes.
        for n in range(per_publisher):
            for i, ch in enumerate(chans):
                ch.basic_publish("", queues[(i + 1) % n_conns], b"%d:%d" % (i, n))
        deadline = time.monotonic() + 30
        while any(len(g) < per_publisher for g in got) and time.monotonic() < deadline:
            for c in conns:
                c.process_data_events(time_limit=0.01)
        for i in range(n_conns):
            publisher = (i - 1) % n_conns
            want = [b"%d:%d" % (publisher, n) for n in range(per_publisher)]
            self.assertEqual(len(got[i]), per_publisher, "consumer %d" % i)
            self.assertEqual(got[i], want, "consumer %d: order" % i)

    def test_stomp_and_amqp_across_threads(self):
        q = self.queue_name("io.stomp")
        ch = self.channel()
        ch.queue_declare(q)
        senders = [self.raw() for _ in range(IO_THREADS)]
        for i, s in enumerate(senders):
            s.send("SEND", [("destination", "/amq/queue/" + q)], b"stomp %d" % i)
        bodies = []
        deadline = time.monotonic() + 10
        while len(bodies) < IO_THREADS and time.monotonic() < deadline:
            method, _, body = ch.basic_get(q, auto_ack=True)
            if method is None:
                time.sleep(0.02)
            else:
                bodies.append(body)
        self.assertEqual(sorted(bodies), [b"stomp %d" % i for i in range(IO_THREADS)])

        sub = self.raw()
        sub.send("SUBSCRIBE", [("destination", "/amq/queue/" + q), ("id", "0")])
        sub.send("SEND", [("destination", "/amq/queue/" + q)], b"from stomp")
        ch.basic_publish("", q, b"from amqp")
        seen = sorted(sub.expect("MESSAGE").body for _ in range(2))
        self.assertEqual(seen, [b"from amqp", b"from stomp"])


if __name__ == "__main__":
    unittest.main()
