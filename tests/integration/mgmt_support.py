"""Helpers for the management tests: the HTTP API with basic auth (urllib), /metrics parsed
into samples, and warrenctl as a subprocess ($WARRENCTL)."""

import base64
import json
import os
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request

WARRENCTL = os.environ.get("WARRENCTL")

SAMPLE_RE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>.*)\})?\s+'
                       r'(?P<value>\S+)$')
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def quote(segment):
    """A path segment as the API wants it: "/" is %2F."""
    return urllib.parse.quote(segment, safe="")


class Api:
    def __init__(self, host, port, user="guest", password="guest", ssl_context=None):
        """With ssl_context: HTTPS, `host` being the name the certificate must show."""
        scheme = "https" if ssl_context is not None else "http"
        self.base = "%s://%s:%d" % (scheme, host, port)
        self.user, self.password = user, password
        self.ssl_context = ssl_context

    def call(self, method, path, body=None, auth=True, user=None, password=None,
             headers=None, timeout=20):
        """(status, parsed JSON or None, raw body, response headers)."""
        req = urllib.request.Request(self.base + path, method=method)
        if auth:
            token = "%s:%s" % (user or self.user, password or self.password)
            req.add_header("Authorization",
                           "Basic " + base64.b64encode(token.encode()).decode())
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, data=data, timeout=timeout,
                                        context=self.ssl_context) as res:
                raw = res.read()
                status, hdrs = res.status, dict(res.headers)
        except urllib.error.HTTPError as e:
            raw, status, hdrs = e.read(), e.code, dict(e.headers)
        parsed = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
        return status, parsed, raw, hdrs

    def get(self, path, **kw):
        status, parsed, raw, _ = self.call("GET", path, **kw)
        if status != 200:
            raise AssertionError("GET %s: %s %r" % (path, status, raw))
        return parsed

    def metrics(self):
        """{(name, frozenset(labels)): value} from /metrics."""
        status, _, raw, hdrs = self.call("GET", "/metrics", auth=False)
        if status != 200:
            raise AssertionError("GET /metrics: %s" % status)
        return parse_metrics(raw.decode())


def parse_metrics(text):
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise AssertionError("not a Prometheus sample line: %r" % line)
        labels = frozenset(LABEL_RE.findall(m.group("labels") or ""))
        samples[(m.group("name"), labels)] = float(m.group("value"))
    return samples


def sample(samples, name, **labels):
    """The value of one series, or None."""
    return samples.get((name, frozenset(labels.items())))


def warrenctl(port, *args, user="guest", password="guest", timeout=30):
    if not WARRENCTL:
        raise AssertionError("WARRENCTL is not set: it must name the warrenctl binary")
    cmd = [WARRENCTL, "--http-port", str(port), "--user", user, "--password", password, *args]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          text=True)


def rows(output):
    """Tab-separated rows of a list_* command, without the header row."""
    lines = [l for l in output.splitlines() if l]
    return [l.split("\t") for l in lines[1:]]
