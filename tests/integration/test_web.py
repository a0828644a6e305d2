"""The web page: warrend serves it from its own binary, and headless Chromium (Debian's
`chromium`) renders it: after its JavaScript fetched the API, the DOM names a queue that
was declared over AMQP, with its type and features (a policy that applies by name)."""

import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.request

from harness import BrokerTestCase, unique
from mgmt_support import Api

CHROMIUM = "/usr/bin/chromium"


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as res:
        return res.status, res.headers.get("Content-Type", ""), res.read().decode()


@unittest.skipIf(os.environ.get("WARREN_TEST_BROKER"), "warrend's own page")
class WebPageTest(BrokerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        host, port = cls.broker.wait_listener("http")
        cls.base = "http://%s:%d" % (host, port)
        cls.api = Api(host, port)

    def test_static_files_are_served(self):
        status, ctype, body = fetch(self.base + "/")
        self.assertEqual(status, 200)
        self.assertIn("text/html", ctype)
        self.assertIn("/app.js", body)
        status, ctype, body = fetch(self.base + "/app.js")
        self.assertIn("javascript", ctype)
        self.assertIn("/api/", body)
        status, ctype, _ = fetch(self.base + "/style.css")
        self.assertIn("text/css", ctype)

    @unittest.skipUnless(os.access(CHROMIUM, os.X_OK),
                         "Chromium is not installed (Debian package 'chromium')")
    def test_headless_chromium_renders_the_queues(self):
        q = unique("webq")
        ch = self.channel()
        ch.queue_declare(queue=q)
        ch.basic_publish("", q, b"shown on the page")
        timed = unique("webq-args")
        ch.queue_declare(queue=timed, arguments={
            "x-message-ttl": 60000, "x-dead-letter-exchange": "amq.fanout", "x-max-priority": 3})
        governed = unique("webq-policy")
        ch.queue_declare(queue=governed)
        policy = unique("web-policy")
        status, _, raw, _ = self.api.call("PUT", "/api/policies/%2F/" + policy, body={
            "pattern": "^" + governed.replace(".", "\\.") + "$",
            "definition": {"max-length": 5}})
        self.assertEqual(status, 201, raw)
        self.addCleanup(self.api.call, "DELETE", "/api/policies/%2F/" + policy)
        quorum = unique("webq-quorum")
        ch.queue_declare(queue=quorum, durable=True, arguments={"x-queue-type": "quorum"})
        self.addCleanup(lambda: self.channel().queue_delete(quorum))
        profile = tempfile.mkdtemp(prefix="warren-chromium-")
        self.addCleanup(shutil.rmtree, profile, True)
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--user-data-dir=" + profile,
               "--virtual-time-budget=10000", "--dump-dom", self.base + "/"]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        dom = r.stdout
        self.assertIn(q, dom, "the rendered page does not name the queue:\n" + dom[-3000:])
        self.assertIn("amq.topic", dom)        # the exchanges table
        # Queue arguments in the features column, as RabbitMQ's page abbreviates them.
        row = dom[dom.index(timed):]
        self.assertIn("TTL DLX Pri", row[:row.index("</tr>")])
        self.assertIn("<td>classic</td>", row[:row.index("</tr>")])
        row = dom[dom.index(governed):]
        self.assertIn("<td>classic</td><td>%s</td>" % policy, row[:row.index("</tr>")])
        row = dom[dom.index(quorum):]
        self.assertIn("<td>quorum</td><td>D</td>", row[:row.index("</tr>")])
        self.assertIn("updated", dom)          # the status line after a successful fetch
        self.assertNotIn("login failed", dom)


if __name__ == "__main__":
    unittest.main()
