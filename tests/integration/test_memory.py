"""Memory a finished burst freed goes back to the system (metrics/memory_trim.hpp).

glibc's malloc keeps freed memory in its arenas: it gives back on its own only what is free
at the top of a heap, so memory freed below anything still in use stays resident. That is
what a drained backlog leaves when other messages live on. Both classes publish 3,000
messages of 64 KiB (about 190 MiB of bodies) to one queue with pika, each followed by a
16-byte message to a second queue that stays, check that warrend's RSS grew, delete the first
queue, and then:

- with `memory.trim_interval_ms = 200`, RSS falls back under 64 MiB within 10 s;
- with `memory.trim_interval_ms = 0` (trimmer off), RSS stays above 100 MiB for 2 s: what the
  trimmer is there for, and proof that the first test sees the trimmer's work, not the
  allocator's own.

Skipped against an external broker (RSS is read from /proc) and under AddressSanitizer, whose
allocator keeps freed memory in quarantine whatever malloc_trim does.
"""

import os
import time
import unittest

import pika

from harness import BrokerTestCase, unique, wait_until, write_config

EXTERNAL = os.environ.get("WARREN_TEST_BROKER")
COUNT = 3000
BODY = b"m" * (64 << 10)
SMALL = b"s" * 16
MIB = 1 << 20


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


def uses_asan(pid):
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


@unittest.skipIf(EXTERNAL, "reads warrend's /proc entries")
class _BurstCase(BrokerTestCase):
    trim_interval_ms = None  # set by the subclasses

    @classmethod
    def setUpClass(cls):
        conf = write_config(cls, "memory.trim_interval_ms = %d\n" % cls.trim_interval_ms)
        cls.broker_args = ("--config", conf)
        super().setUpClass()
        cls.pid = cls.broker.proc.pid

    def setUp(self):
        super().setUp()
        if uses_asan(self.pid):
            self.skipTest("AddressSanitizer's allocator keeps freed memory in quarantine")

    def burst(self):
        """Queues COUNT x 64 KiB, each followed by a small message to a queue that stays;
        checks that RSS grew by at least 100 MiB, deletes the first queue; returns RSS at the
        peak."""
        before = rss_bytes(self.pid)
        q, keep = unique("memory.burst"), unique("memory.keep")
        ch = self.channel()
        ch.queue_declare(q)
        ch.queue_declare(keep)
        transient = pika.BasicProperties(delivery_mode=1)
        for _ in range(COUNT):
            ch.basic_publish("", q, BODY, transient)
            ch.basic_publish("", keep, SMALL, transient)
        for name in (q, keep):
            depth = wait_until(
                lambda: ch.queue_declare(name, passive=True).method.message_count == COUNT,
                timeout=30)
            self.assertTrue(depth, "queue %s did not reach %d messages" % (name, COUNT))
        peak = rss_bytes(self.pid)
        self.assertGreater(peak - before, 100 * MIB,
                           "RSS %d MiB -> %d MiB" % (before // MIB, peak // MIB))
        ch.queue_delete(q)
        ch.close()
        return peak


class TrimmerOnTest(_BurstCase):
    trim_interval_ms = 200

    def test_memory_goes_back_after_the_queue_is_deleted(self):
        peak = self.burst()
        low = wait_until(lambda: rss_bytes(self.pid) < 64 * MIB, timeout=10, interval=0.2)
        self.assertTrue(low, "RSS still %d MiB (peak %d MiB)"
                        % (rss_bytes(self.pid) // MIB, peak // MIB))
        # The trimmer logs after malloc_trim returns, and the harness reads the log from a
        # pipe on a thread of its own: the line can come a moment after RSS fell.
        logged = wait_until(lambda: "memory: gave" in self.broker.log_text(), timeout=5)
        self.assertTrue(logged, "no 'memory: gave' line in the log:\n%s"
                        % self.broker.log_tail(3000))
        self.assert_broker_usable()


class TrimmerOffTest(_BurstCase):
    trim_interval_ms = 0

    def test_memory_stays_without_the_trimmer(self):
        self.burst()
        time.sleep(2)
        self.assertGreater(rss_bytes(self.pid), 100 * MIB)
        self.assertNotIn("memory: gave", self.broker.log_text())


del _BurstCase  # a base, not a test of its own

if __name__ == "__main__":
    unittest.main()
