"""Memory a finished burst freed goes back to the system (metrics/memory_trim.hpp).

glibc's malloc keeps freed memory in its arenas, so without the trimmer warrend's resident
memory stays at the peak of the largest backlog it ever held. Both classes queue 40,000
messages of 4 KiB (about 160 MiB of bodies) with pika, check that warrend's RSS grew, delete
the queue, and then:

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
COUNT = 40000
BODY = b"m" * 4096
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
        """Queues COUNT x 4 KiB, checks that RSS grew by at least 100 MiB, deletes the queue;
        returns RSS at the peak."""
        before = rss_bytes(self.pid)
        q = unique("memory.burst")
        ch = self.channel()
        ch.queue_declare(q)
        for _ in range(COUNT):
            ch.basic_publish("", q, BODY, pika.BasicProperties(delivery_mode=1))
        depth = wait_until(
            lambda: ch.queue_declare(q, passive=True).method.message_count == COUNT,
            timeout=30)
        self.assertTrue(depth, "the queue did not reach %d messages" % COUNT)
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
        self.assertIn("memory: gave", self.broker.log_text())
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
