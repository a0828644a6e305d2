"""warren-perf against warrend: short runs that check the load generator and the broker work
together (bench/README.md), asserting only that messages flowed and every run ended cleanly.
Speed is measured by bench/compare.sh, never here.

- AMQP 1 -> 1 for a second: messages are received, none is lost in the accounting;
- persistent with confirms and manual acks, and a fixed count (-C, ended by its fence):
  every message confirmed and received;
- a fixed rate (-r): the rate limiter lets messages through and latency is recorded;
- STOMP 1 -> 1 with receipts (-c) and a count: every SEND receipted and every MESSAGE
  received.
"""

import json
import os
import subprocess
import unittest

from harness import BrokerTestCase

PERF = os.environ.get("WARREN_PERF")
EXTERNAL = os.environ.get("WARREN_TEST_BROKER")


@unittest.skipUnless(PERF, "WARREN_PERF (the warren-perf binary) is not set")
@unittest.skipIf(EXTERNAL, "runs against the warrend it starts")
class PerfSmokeTest(BrokerTestCase):
    def perf(self, *args):
        """Runs warren-perf with --json (bounded: 60 s); returns its summary."""
        proc = subprocess.run([PERF, "--json", *args], capture_output=True, text=True,
                              timeout=60)
        self.assertEqual(proc.returncode, 0, "warren-perf failed:\n" + proc.stderr[-4000:])
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        self.assertFalse(summary["failed"], proc.stderr[-4000:])
        return summary

    def amqp(self):
        return "%s:%d" % (self.host, self.port)

    def test_amqp_one_to_one(self):
        s = self.perf("-h", self.amqp(), "-x", "1", "-y", "1", "-s", "16", "-z", "1")
        self.assertEqual(s["protocol"], "amqp")
        self.assertGreater(s["received"], 0)
        self.assertLessEqual(s["received"], s["sent"])
        self.assertGreater(s["latency_us"]["max"], 0)

    def test_persistent_confirms_manual_ack_fixed_count(self):
        s = self.perf("-h", self.amqp(), "-x", "1", "-y", "1", "-s", "16", "-f", "persistent",
                      "-c", "100", "--manual-ack", "-q", "100", "-C", "5000", "-z", "30")
        self.assertEqual(s["sent"], 5000)
        self.assertEqual(s["confirmed"], 5000)
        self.assertEqual(s["received"], 5000)
        self.assertEqual(s["nacked"], 0)

    def test_fixed_rate(self):
        s = self.perf("-h", self.amqp(), "-x", "1", "-y", "1", "-s", "16", "-r", "200",
                      "-z", "1")
        self.assertGreater(s["received"], 0)
        self.assertGreater(s["latency_us"]["p50"], 0)

    def test_stomp_receipts_fixed_count(self):
        host, port = self.broker.wait_listener("stomp")
        s = self.perf("--stomp", "-h", "%s:%d" % (host, port), "--amqp-uri", self.amqp(),
                      "-x", "1", "-y", "1", "-s", "16", "-c", "50", "-C", "3000", "-z", "30")
        self.assertEqual(s["protocol"], "stomp")
        self.assertEqual(s["sent"], 3000)
        self.assertEqual(s["confirmed"], 3000)
        self.assertEqual(s["received"], 3000)


if __name__ == "__main__":
    unittest.main()
