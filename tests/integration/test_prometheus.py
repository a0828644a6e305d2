"""A real Prometheus server (Debian's `prometheus`) scrapes warrend's /metrics on loopback,
and a PromQL query through Prometheus's own HTTP API sees the queue depth that AMQP traffic
produced. The Prometheus process, its config and its storage are this test's own."""

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import unittest
import urllib.parse
import urllib.request

import amqp_raw as raw
from harness import BrokerTestCase, unique, wait_until, write_config

PROMETHEUS = "/usr/bin/prometheus"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as res:
        return json.loads(res.read())


@unittest.skipIf(os.environ.get("WARREN_TEST_BROKER"), "scrapes warrend's own /metrics")
@unittest.skipUnless(os.access(PROMETHEUS, os.X_OK),
                     "Prometheus is not installed (Debian package 'prometheus')")
class PrometheusScrapeTest(BrokerTestCase):
    @classmethod
    def setUpClass(cls):
        # Per-object series for this broker, so that the query can name the queue.
        conf = write_config(cls, "prometheus.return_per_object_metrics = true\n"
                                 "collect_statistics_interval = 500\n")
        cls.broker_args = ("--config", conf)
        super().setUpClass()
        host, http_port = cls.broker.wait_listener("http")
        cls.prom_dir = tempfile.mkdtemp(prefix="warren-prom-")
        cls.addClassCleanup(shutil.rmtree, cls.prom_dir, True)
        config = os.path.join(cls.prom_dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: warren\n    scrape_interval: 1s\n"
                    "    scrape_timeout: 1s\n    metrics_path: /metrics\n"
                    "    static_configs:\n      - targets: ['%s:%d']\n" % (host, http_port))
        cls.prom_port = free_port()
        cls.prom_log = open(os.path.join(cls.prom_dir, "prometheus.log"), "w+")
        cls.prom = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + config,
             "--storage.tsdb.path=" + os.path.join(cls.prom_dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % cls.prom_port],
            stdin=subprocess.DEVNULL, stdout=cls.prom_log, stderr=subprocess.STDOUT)
        cls.addClassCleanup(cls.stop_prometheus)
        cls.prom_url = "http://127.0.0.1:%d" % cls.prom_port

        def ready():
            if cls.prom.poll() is not None:
                return True  # reported below
            try:
                with urllib.request.urlopen(cls.prom_url + "/-/ready", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        if not wait_until(ready, 30, 0.2) or cls.prom.poll() is not None:
            raise AssertionError("Prometheus did not become ready:\n" + cls.prometheus_log())

    @classmethod
    def stop_prometheus(cls):
        if cls.prom.poll() is None:
            cls.prom.terminate()
            try:
                cls.prom.wait(10)
            except subprocess.TimeoutExpired:
                cls.prom.kill()
                cls.prom.wait(5)
        cls.prom_log.close()

    @classmethod
    def prometheus_log(cls):
        cls.prom_log.flush()
        cls.prom_log.seek(0)
        return cls.prom_log.read()[-4000:]

    def query(self, promql):
        url = self.prom_url + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        body = http_json(url)
        self.assertEqual(body["status"], "success", body)
        return body["data"]["result"]

    def test_promql_sees_the_queue_depth(self):
        ch = self.channel()
        ch.confirm_delivery()
        q = ch.queue_declare(queue=unique("prom")).method.queue
        for i in range(7):
            ch.basic_publish("", q, b"message %d" % i)
        promql = 'rabbitmq_queue_messages_ready{queue="%s"}' % q
        last = {}

        def seven():
            last["r"] = self.query(promql)
            return last["r"] and last["r"][0]["value"][1] == "7"
        self.assertTrue(wait_until(seven, 30, 0.5),
                        "PromQL %s gave %r\n--- prometheus log ---\n%s"
                        % (promql, last.get("r"), self.prometheus_log()))
        labels = last["r"][0]["metric"]
        self.assertEqual(labels["vhost"], "/")
        self.assertEqual(labels["job"], "warren")
        up = self.query('up{job="warren"}')
        self.assertEqual(up[0]["value"][1], "1")
        published = self.query('rabbitmq_queue_messages_published_total{queue="%s"}' % q)
        self.assertEqual(published[0]["value"][1], "7")

    def test_scrapes_go_on_with_a_queue_named_in_bytes_that_are_not_utf8(self):
        # AMQP names are any octets; Prometheus drops a whole scrape with one label value
        # that is not UTF-8, so such octets reach it as U+FFFD.
        c = raw.RawConnection(self.host, self.port)
        self.addCleanup(c.close)
        c.handshake()
        c.open_channel(1)
        odd = b"odd\xff\xfe" + unique("q").encode()
        c.send_method(1, raw.QUEUE_DECLARE, struct.pack("!H", 0) + bytes([len(odd)]) + odd
                      + b"\x00" + raw.empty_table())
        c.expect_method(raw.QUEUE_DECLARE_OK, 1)
        ch = self.channel()
        ch.confirm_delivery()
        q = ch.queue_declare(queue=unique("prom-utf8")).method.queue
        for i in range(3):
            ch.basic_publish("", q, b"message %d" % i)
        last = {}

        def three():
            last["r"] = self.query('rabbitmq_queue_messages_ready{queue="%s"}' % q)
            return last["r"] and last["r"][0]["value"][1] == "3"
        self.assertTrue(wait_until(three, 30, 0.5),
                        "PromQL gave %r\n--- prometheus log ---\n%s"
                        % (last.get("r"), self.prometheus_log()))
        self.assertEqual(self.query('up{job="warren"}')[0]["value"][1], "1")
        series = self.query('rabbitmq_queue_consumers{queue=~"odd.*"}')
        self.assertEqual([r["metric"]["queue"] for r in series],
                         ["odd\ufffd\ufffd" + odd[5:].decode()])


    def test_the_overview_dashboards_queries_join_on_the_identity_series(self):
        # RabbitMQ's Grafana dashboards select a cluster through rabbitmq_identity_info and
        # join every series to it on `instance`, taking rabbitmq_node from it.
        ch = self.channel()
        ch.confirm_delivery()
        q = ch.queue_declare(queue=unique("prom-join")).method.queue
        for i in range(2):
            ch.basic_publish("", q, b"m%d" % i)
        found = wait_until(lambda: self.query('rabbitmq_identity_info{namespace=""}'), 30, 0.5)
        self.assertEqual(len(found), 1, found)
        cluster, node = found[0]["metric"]["rabbitmq_cluster"], found[0]["metric"]["rabbitmq_node"]
        join = ('* on(instance) group_left(rabbitmq_cluster, rabbitmq_node) '
                'rabbitmq_identity_info{rabbitmq_cluster="%s", namespace=""}' % cluster)
        last = {}

        def two_ready():
            last["r"] = self.query('sum(rabbitmq_queue_messages_ready %s) by(rabbitmq_node)'
                                   % join)
            return last["r"] and float(last["r"][0]["value"][1]) >= 2
        self.assertTrue(wait_until(two_ready, 30, 0.5), last.get("r"))
        self.assertEqual(last["r"][0]["metric"], {"rabbitmq_node": node})
        for series in ("rabbitmq_channel_messages_confirmed_total",
                       "rabbitmq_channel_messages_unconfirmed", "rabbitmq_channels_opened_total",
                       "rabbitmq_queues_created_total", "rabbitmq_process_open_tcp_sockets",
                       "rabbitmq_build_info"):
            r = self.query("sum(%s %s) by(rabbitmq_node)" % (series, join))
            self.assertEqual([x["metric"] for x in r], [{"rabbitmq_node": node}], series)


    def test_every_query_of_warrens_grafana_dashboard_gives_series(self):
        # etc/grafana/warren-overview.json: each panel's query, with the cluster chosen as its
        # variable would choose it, gives at least one series once there has been traffic.
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))), "etc", "grafana", "warren-overview.json")
        with open(path) as f:
            dash = json.load(f)
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        definition = variables["rabbitmq_cluster"]["definition"]
        metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", definition).groups()
        found = wait_until(lambda: self.query(metric), 30, 0.5)
        self.assertTrue(found)
        cluster = found[0]["metric"][label]
        ch = self.channel()
        ch.confirm_delivery()
        q = ch.queue_declare(queue=unique("prom-dash")).method.queue
        for i in range(5):
            ch.basic_publish("", q, b"m%d" % i)
        ch.basic_get(q, auto_ack=True)
        queries = [(p["title"], t["expr"].replace("$rabbitmq_cluster", cluster))
                   for p in dash["panels"] for t in p["targets"]]
        self.assertGreaterEqual(len(queries), 20)
        empty = {}

        def all_answer():
            empty.clear()
            for title, expr in queries:
                if not self.query(expr):
                    empty[title] = expr
            return not empty
        self.assertTrue(wait_until(all_answer, 30, 1.0), "no series: %r" % empty)

if __name__ == "__main__":
    unittest.main()
