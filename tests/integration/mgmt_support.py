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

from harness import unique

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


# The password of the users Users makes.
PASSWORD = "access-test-secret"


class Users:
    """Users, vhosts and permissions made through the management API as guest (`self.api`),
    each removed at the end of the test."""

    api = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()  # the broker test case's: a broker for the class
        try:
            cls.api = Api(*cls.broker.wait_listener("http"))
        except BaseException:
            cls.tearDownClass()
            raise

    def api_ok(self, method, path, body=None, want=(200, 201, 204)):
        status, parsed, raw, _ = self.api.call(method, path, body=body)
        self.assertIn(status, want, "%s %s: %s %r" % (method, path, status, raw))
        return parsed

    def make_user(self, tags="", permissions=None, vhost="/", prefix="acc-user"):
        """A new user with password PASSWORD; permissions: (configure, write, read) or None."""
        name = unique(prefix)
        self.api_ok("PUT", "/api/users/" + quote(name), {"password": PASSWORD, "tags": tags})
        self.addCleanup(self.api.call, "DELETE", "/api/users/" + quote(name))
        if permissions is not None:
            self.grant(name, *permissions, vhost=vhost)
        return name

    def grant(self, user, configure, write, read, vhost="/"):
        self.api_ok("PUT", "/api/permissions/%s/%s" % (quote(vhost), quote(user)),
                    {"configure": configure, "write": write, "read": read})

    def revoke(self, user, vhost="/"):
        self.api_ok("DELETE", "/api/permissions/%s/%s" % (quote(vhost), quote(user)))

    def make_vhost(self):
        name = unique("acc-vhost")
        self.api_ok("PUT", "/api/vhosts/" + quote(name), {})
        self.addCleanup(self.api.call, "DELETE", "/api/vhosts/" + quote(name))
        return name

    def delete_queue_later(self, name, vhost="/"):
        self.addCleanup(self.api.call, "DELETE", "/api/queues/%s/%s" % (quote(vhost),
                                                                         quote(name)))

    def delete_exchange_later(self, name, vhost="/"):
        self.addCleanup(self.api.call, "DELETE", "/api/exchanges/%s/%s" % (quote(vhost),
                                                                            quote(name)))

    def as_user(self, user, method, path, body=None):
        """(status, parsed JSON) of an API call made as `user`."""
        status, parsed, _, _ = self.api.call(method, path, body=body, user=user,
                                             password=PASSWORD)
        return status, parsed
