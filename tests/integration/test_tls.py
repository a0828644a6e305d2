"""TLS listeners: AMQPS, STOMP over TLS and HTTPS for the management API, with RabbitMQ's
settings (ssl_options.*, management.ssl.*), client certificates, the EXTERNAL mechanism
(rabbitmq_auth_mechanism_ssl) and STOMP's ssl_cert_login.

The certificates are made here with Debian's openssl: a CA, the server's (CN=localhost,
for localhost and 127.0.0.1), a client's (CN=tls-client) and an unknown user's
(CN=tls-nobody) from that CA, and a client certificate from a CA the broker does not trust.

Against another broker (WARREN_TEST_BROKER, with WARREN_TEST_AMQPS, WARREN_TEST_STOMPS and
WARREN_TEST_HTTPS for its TLS listeners), WARREN_TEST_TLS_DIR names a folder of certificates
that broker uses, made by `python3 test_tls.py --make-certs DIR`; the broker must verify
peers against ca.pem (verify_peer, fail_if_no_peer_cert false), offer PLAIN, AMQPLAIN and
EXTERNAL, take the login from the common name, and have stomp.ssl_cert_login on.
"""

import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import amqp
import pika
import stomp

from amqp_raw import (CONNECTION_START, CONNECTION_START_OK, PROTOCOL_HEADER, PeerClosed,
                      RawConnection, empty_table, longstr, shortstr)
from harness import (BrokerTestCase, close_quietly, get_one, unique, wait_until,
                     write_config)
from mgmt_support import Api, quote
from stomp_support import Collector

TLS_DIR = os.environ.get("WARREN_TEST_TLS_DIR")
EXTERNAL_BROKER = bool(os.environ.get("WARREN_TEST_BROKER"))
CERT_USER = "tls-client"
UNKNOWN_CERT_USER = "tls-nobody"


def _openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)


def _key_and_request(d, name, subject):
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", os.path.join(d, name + ".key"), "-out", os.path.join(d, name + ".csr"),
             "-subj", subject)


def _sign(d, name, ca, extensions=None):
    args = ["x509", "-req", "-in", os.path.join(d, name + ".csr"),
            "-CA", os.path.join(d, ca + ".pem"), "-CAkey", os.path.join(d, ca + ".key"),
            "-CAcreateserial", "-days", "30", "-out", os.path.join(d, name + ".pem")]
    if extensions:
        ext = os.path.join(d, name + ".ext")
        with open(ext, "w") as f:
            f.write(extensions + "\n")
        args += ["-extfile", ext]
    _openssl(*args)


def make_certs(d):
    """ca.pem, server.pem/.key, client.pem/.key (CN=tls-client), nobody.pem/.key
    (CN=tls-nobody), and rogue.pem/.key: CN=tls-client from a CA nobody trusts."""
    os.makedirs(d, exist_ok=True)
    for ca, subject in (("ca", "/CN=Warren Test CA"), ("rogue-ca", "/CN=Rogue CA")):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", os.path.join(d, ca + ".key"),
                 "-out", os.path.join(d, ca + ".pem"), "-days", "30", "-subj", subject)
    _key_and_request(d, "server", "/CN=localhost")
    _sign(d, "server", "ca", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    _key_and_request(d, "client", "/O=Warren Tests/CN=" + CERT_USER)
    _sign(d, "client", "ca")
    _key_and_request(d, "nobody", "/O=Warren Tests/CN=" + UNKNOWN_CERT_USER)
    _sign(d, "nobody", "ca")
    _key_and_request(d, "rogue", "/O=Warren Tests/CN=" + CERT_USER)
    _sign(d, "rogue", "rogue-ca")
    return d


def tls_settings(d, extra=""):
    """warren.conf lines for TLS listeners with the certificates in d."""
    return ("ssl_options.certfile = {d}/server.pem\n"
            "ssl_options.keyfile = {d}/server.key\n"
            "ssl_options.cacertfile = {d}/ca.pem\n"
            "management.ssl.certfile = {d}/server.pem\n"
            "management.ssl.keyfile = {d}/server.key\n".format(d=d)) + extra


def end_stomp(conn):
    """Ends a stomp.py connection over TLS: its disconnect() can wait without limit, and
    closing its TLS socket while its receiver thread reads from it crashes Python's ssl module.
    The TCP stream is shut down instead; stomp.py's receiver thread sees the end and closes."""
    sock = getattr(conn.transport, "socket", None)
    if sock is not None:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


class TlsCase(BrokerTestCase):
    """A broker with AMQPS, STOMP over TLS and HTTPS listeners; `settings` are more
    warren.conf lines for this class's warrend."""

    settings = ""

    @classmethod
    def setUpClass(cls):
        if TLS_DIR:
            cls.certs = TLS_DIR
        else:
            cls.certs = tempfile.mkdtemp(prefix="warren-certs-")
            cls.addClassCleanup(shutil.rmtree, cls.certs, True)
            make_certs(cls.certs)
        if not EXTERNAL_BROKER:
            conf = write_config(cls, tls_settings(cls.certs, cls.settings))
            cls.broker_args = ("--amqps-port", "0", "--stomps-port", "0", "--https-port", "0",
                               "--config", conf)
        super().setUpClass()
        cls.amqps_host, cls.amqps_port = cls.broker.wait_listener("amqps")
        cls.stomps_host, cls.stomps_port = cls.broker.wait_listener("stomps")
        cls.https_host, cls.https_port = cls.broker.wait_listener("https")
        cls.api = Api("localhost", cls.https_port, ssl_context=cls.context())

    # -- helpers ---------------------------------------------------------------------
    @classmethod
    def context(cls, cert=None, minimum=None, maximum=None):
        """A client context that trusts the test CA, with `cert` (client, nobody, rogue)."""
        ctx = ssl.create_default_context(cafile=os.path.join(cls.certs, "ca.pem"))
        if cert:
            ctx.load_cert_chain(os.path.join(cls.certs, cert + ".pem"),
                                os.path.join(cls.certs, cert + ".key"))
        if minimum:
            ctx.minimum_version = minimum
        if maximum:
            ctx.maximum_version = maximum
        return ctx

    def pika_params(self, cert=None, credentials=None, **ctx_args):
        return pika.ConnectionParameters(
            self.amqps_host, self.amqps_port,
            ssl_options=pika.SSLOptions(self.context(cert, **ctx_args), "localhost"),
            credentials=credentials or pika.PlainCredentials("guest", "guest"),
            connection_attempts=1, socket_timeout=10, blocked_connection_timeout=30)

    def connect(self, cert=None, credentials=None, **ctx_args):
        conn = pika.BlockingConnection(self.pika_params(cert, credentials, **ctx_args))
        self.addCleanup(close_quietly, conn)
        return conn

    def raw(self, cert=None, port=None):
        """A RawConnection over TLS to the AMQPS listener."""
        conn = RawConnection(self.amqps_host, port or self.amqps_port, timeout=10,
                             ssl_context=self.context(cert), server_hostname="localhost")
        self.addCleanup(conn.close)
        return conn

    def cert_user(self):
        """The user the client certificate names, with every permission on "/"."""
        status, _, raw, _ = self.api.call("PUT", "/api/users/" + CERT_USER,
                                          body={"password": unique("pw"), "tags": ""})
        self.assertIn(status, (201, 204), raw)
        self.addCleanup(self.api.call, "DELETE", "/api/users/" + CERT_USER)
        status, _, raw, _ = self.api.call(
            "PUT", "/api/permissions/%s/%s" % (quote("/"), CERT_USER),
            body={"configure": ".*", "write": ".*", "read": ".*"})
        self.assertIn(status, (201, 204), raw)

    def listed_connection(self, predicate, timeout=15):
        """The first /api/connections entry that predicate accepts (the listing follows the
        statistics interval)."""
        def find():
            for c in self.api.get("/api/connections"):
                if c.get("port") in (self.amqps_port, self.stomps_port) and predicate(c):
                    return c
            return None
        found = wait_until(find, timeout, 0.25)
        self.assertIsNotNone(found, "no such connection in %r" % self.api.get("/api/connections"))
        return found

    def assert_alive(self):
        """A fresh AMQPS client still gets through: nothing before broke the listener."""
        conn = self.connect()
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"still here")
        got = get_one(conn, ch, q)
        self.assertIsNotNone(got)
        self.assertEqual(got[2], b"still here")
        conn.close()


class TlsListenersTest(TlsCase):
    settings = ("ssl_options.verify = verify_peer\n"
                "ssl_options.fail_if_no_peer_cert = false\n"
                "auth_mechanisms.1 = PLAIN\n"
                "auth_mechanisms.2 = AMQPLAIN\n"
                "auth_mechanisms.3 = EXTERNAL\n"
                "ssl_cert_login_from = common_name\n"
                "stomp.ssl_cert_login = true\n")

    # -- AMQPS -----------------------------------------------------------------------
    def test_pika_publishes_and_consumes_over_tls(self):
        conn = self.connect()
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        bodies = [b"m%d" % i + b"x" * (i * 997 % 5000) for i in range(200)]
        for b in bodies:
            ch.basic_publish("", q, b)
        got = []
        for method, _props, body in ch.consume(q, auto_ack=True, inactivity_timeout=5):
            if method is None:
                break
            got.append(body)
            if len(got) == len(bodies):
                break
        self.assertEqual(got, bodies)
        listed = self.listed_connection(lambda c: c["user"] == "guest" and c["ssl"])
        self.assertIn(listed["ssl_protocol"], ("tlsv1.2", "tlsv1.3"))
        self.assertTrue(listed["ssl_cipher"])
        self.assertFalse(listed["peer_cert_subject"])  # no client certificate

    def test_amqp_library_over_tls(self):
        # login_method: py-amqp would pick EXTERNAL, which the broker offers too.
        conn = amqp.Connection("%s:%d" % (self.amqps_host, self.amqps_port),
                               userid="guest", password="guest", login_method="PLAIN",
                               connect_timeout=10,
                               ssl={"cert_reqs": ssl.CERT_REQUIRED,
                                    "ca_certs": os.path.join(self.certs, "ca.pem"),
                                    "server_hostname": "localhost"})
        conn.connect()
        self.addCleanup(conn.collect)
        ch = conn.channel()
        q = unique("tls.amqp")
        ch.queue_declare(q, auto_delete=False)
        self.addCleanup(self.api.call, "DELETE", "/api/queues/%s/%s" % (quote("/"), q))
        ch.basic_publish(amqp.Message("over py-amqp"), exchange="", routing_key=q)
        msg = None
        deadline = time.monotonic() + 5
        while msg is None and time.monotonic() < deadline:
            msg = ch.basic_get(q, no_ack=True)
        self.assertIsNotNone(msg)
        self.assertEqual(msg.body, "over py-amqp")
        conn.close()

    def test_client_certificate_is_shown(self):
        conn = self.connect(cert="client")
        conn.channel()
        listed = self.listed_connection(
            lambda c: c["user"] == "guest" and c["peer_cert_subject"])
        self.assertEqual(listed["peer_cert_subject"], "CN=%s,O=Warren Tests" % CERT_USER)
        self.assertEqual(listed["peer_cert_issuer"], "CN=Warren Test CA")

    def start_ok(self, raw, mechanism, response=b"", failure_close=True):
        """Sends the header and a start-ok choosing `mechanism`; returns the mechanisms the
        broker offered. With failure_close the client announces the
        authentication_failure_close capability, which a refused login answers."""
        raw.send(PROTOCOL_HEADER)
        start = raw.expect_method(CONNECTION_START).args()
        start.octet(), start.octet(), start.longstr()
        offered = start.longstr().split()
        props = empty_table()
        if failure_close:
            caps = shortstr("authentication_failure_close") + b"t\x01"
            entry = shortstr("capabilities") + b"F" + struct.pack("!I", len(caps)) + caps
            props = struct.pack("!I", len(entry)) + entry
        raw.send_method(0, CONNECTION_START_OK, props + shortstr(mechanism) +
                        longstr(response) + shortstr("en_US"))
        return offered

    def assert_closed_silently(self, raw):
        """The broker closes the socket with no connection.close (RabbitMQ's answer to a
        handshake it gives up on)."""
        with self.assertRaises(PeerClosed) as caught:
            raw.read_frame(timeout=10)
        self.assertIn("unread bytes b''", str(caught.exception))

    def test_external_login_with_a_client_certificate(self):
        self.cert_user()
        conn = self.connect(cert="client", credentials=pika.credentials.ExternalCredentials())
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"by certificate")
        self.assertEqual(get_one(conn, ch, q)[2], b"by certificate")
        listed = self.listed_connection(lambda c: c["user"] == CERT_USER)
        self.assertTrue(listed["ssl"])

    def test_external_without_a_client_certificate_is_refused(self):
        # Offered to every client, as RabbitMQ does; refused to one without a certificate.
        # (RabbitMQ's order of the mechanisms changes from one start to the next.)
        raw = self.raw()
        offered = self.start_ok(raw, "EXTERNAL")
        self.assertEqual(set(offered), {b"PLAIN", b"AMQPLAIN", b"EXTERNAL"})
        close = raw.expect_connection_close()
        self.assertEqual(close.reply_code, 403)
        self.assertEqual(close.reply_text,
                         "ACCESS_REFUSED - Login was refused using authentication mechanism "
                         "EXTERNAL. For details see the broker logfile.")

    def test_external_login_of_an_unknown_user_is_refused(self):
        raw = self.raw(cert="nobody")
        self.start_ok(raw, "EXTERNAL")
        close = raw.expect_connection_close()
        self.assertEqual(close.reply_code, 403)
        self.assertEqual(close.reply_text,
                         "ACCESS_REFUSED - Login was refused using authentication mechanism "
                         "EXTERNAL. For details see the broker logfile.")
        # A client without the authentication_failure_close capability is told nothing.
        raw = self.raw(cert="nobody")
        self.start_ok(raw, "EXTERNAL", failure_close=False)
        self.assert_closed_silently(raw)
        self.assert_alive()

    def test_unknown_mechanism_is_refused(self):
        raw = self.raw()
        self.start_ok(raw, "CRAM-MD5", b"x")
        self.assert_closed_silently(raw)
        self.assert_alive()

    def test_certificate_from_an_untrusted_ca_is_refused(self):
        try:
            raw = self.raw(cert="rogue")
            raw.send(PROTOCOL_HEADER)
            reply = raw.read_until_eof(timeout=10)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            reply = b""
        self.assertFalse(reply.startswith(b"AMQP"), reply)
        self.assert_alive()

    def test_plain_amqp_on_the_tls_port_gets_no_amqp(self):
        sock = socket.create_connection((self.amqps_host, self.amqps_port), timeout=10)
        self.addCleanup(sock.close)
        sock.sendall(PROTOCOL_HEADER)
        reply = b""
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except ConnectionResetError:
            pass
        self.assertLess(time.monotonic(), deadline, "the broker did not close the socket")
        self.assertFalse(reply.startswith(b"AMQP"), reply)
        self.assert_alive()

    def test_tls_on_the_plain_port_fails(self):
        with self.assertRaises((ssl.SSLError, ConnectionResetError)):
            RawConnection(self.host, self.port, timeout=10, ssl_context=self.context(),
                          server_hostname="localhost")
        self.assert_alive()

    def silent_for(self, port):
        """Connects to `port`, sends nothing and waits for the broker to close; the seconds
        that took (the handshake timeout)."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.addCleanup(sock.close)
        start = time.monotonic()
        try:
            data = sock.recv(4096)
        except ConnectionResetError:
            data = b""
        self.assertEqual(data, b"")
        return time.monotonic() - start

    def test_silent_client_is_dropped_after_the_handshake_timeout(self):
        # RabbitMQ's ssl_handshake_timeout, 5 s by default, and warrend's.
        waited = self.silent_for(self.amqps_port)
        self.assertLess(waited, 20)
        self.assertGreater(waited, 2)

    def test_broker_closes_with_close_notify(self):
        sock = self.context().wrap_socket(
            socket.create_connection((self.amqps_host, self.amqps_port), timeout=10),
            server_hostname="localhost", suppress_ragged_eofs=False)
        self.addCleanup(sock.close)
        sock.sendall(b"AMQP\x00\x00\x09\x02")  # a version it does not speak
        reply = b""
        while True:
            chunk = sock.recv(100)  # SSLEOFError without a close_notify
            if not chunk:
                break
            reply += chunk
        self.assertEqual(reply, PROTOCOL_HEADER)

    # -- STOMP over TLS ---------------------------------------------------------------
    def stomp_connection(self, cert=None):
        conn = stomp.Connection([(self.stomps_host, self.stomps_port)], heartbeats=(0, 0))
        kwargs = {"ca_certs": os.path.join(self.certs, "ca.pem")}
        if cert:
            kwargs.update(cert_file=os.path.join(self.certs, cert + ".pem"),
                          key_file=os.path.join(self.certs, cert + ".key"))
        conn.set_ssl(for_hosts=[(self.stomps_host, self.stomps_port)], **kwargs)
        listener = Collector()
        conn.set_listener("c", listener)
        self.addCleanup(end_stomp, conn)
        return conn, listener

    def stomp_connect(self, conn, listener, *login):
        """CONNECT, waiting (bounded) for CONNECTED: stomp.py's wait=True has no limit."""
        conn.connect(*login, wait=False)
        self.assertTrue(listener.wait(lambda: listener.connected or listener.errors, 15),
                        "no CONNECTED within 15 s")
        self.assertIsNotNone(listener.connected, listener.errors)

    def test_stomp_over_tls(self):
        conn, listener = self.stomp_connection()
        self.stomp_connect(conn, listener, "guest", "guest")
        q = unique("tls-stomp")
        conn.subscribe("/queue/" + q, id="1", ack="auto")
        conn.send("/queue/" + q, "over TLS", receipt="r1")
        self.assertTrue(listener.wait_receipt("r1", 15), listener.errors)
        listener.wait_messages(1, 15)
        self.assertEqual(listener.bodies(), ["over TLS"])
        listed = self.listed_connection(lambda c: c["port"] == self.stomps_port and c["ssl"])
        self.assertEqual(listed["user"], "guest")

    def test_stomp_login_by_certificate(self):
        self.cert_user()
        conn, listener = self.stomp_connection(cert="client")
        self.stomp_connect(conn, listener)  # no login header: the certificate names the user
        q = unique("tls-stomp-cert")
        conn.subscribe("/queue/" + q, id="1", ack="auto")
        conn.send("/queue/" + q, "by certificate", receipt="r1")
        listener.wait_messages(1, 15)
        listed = self.listed_connection(lambda c: c["port"] == self.stomps_port and
                                        c["user"] == CERT_USER)
        self.assertEqual(listed["peer_cert_subject"], "CN=%s,O=Warren Tests" % CERT_USER)

    # -- HTTPS -----------------------------------------------------------------------
    def test_management_api_over_https_lists_the_tls_listeners(self):
        overview = self.api.get("/api/overview")
        listeners = {(l["protocol"], l["port"]) for l in overview["listeners"]}
        self.assertIn(("amqp/ssl", self.amqps_port), listeners)
        self.assertIn(("stomp/ssl", self.stomps_port), listeners)
        self.assertIn(("https", self.https_port), listeners)
        status, _, _, _ = self.api.call("GET", "/api/overview", password="wrong")
        self.assertEqual(status, 401)

    def test_https_refuses_an_untrusting_client(self):
        untrusting = ssl.create_default_context()  # the system's CAs only
        with self.assertRaises(Exception) as caught:
            Api("localhost", self.https_port, ssl_context=untrusting).call("GET", "/api/overview")
        self.assertIn("CERTIFICATE_VERIFY_FAILED", str(caught.exception))

    def test_warrenctl_over_https(self):
        warrenctl = os.environ.get("WARRENCTL")
        if not warrenctl or EXTERNAL_BROKER:
            self.skipTest("drives warrenctl against warrend")
        base = [warrenctl, "--host", "localhost", "--http-port", str(self.https_port), "-q"]
        r = subprocess.run(base + ["--cacert", os.path.join(self.certs, "ca.pem"),
                                   "list_vhosts"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("/", r.stdout.split())
        # The system's CAs do not know the test CA: refused, as an unreachable broker is.
        r = subprocess.run(base + ["--https", "list_vhosts"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 69, r.stderr)
        self.assertIn("certificate verify failed", r.stderr)

    def test_https_drops_a_silent_client(self):
        self.assertLess(self.silent_for(self.https_port), 20)

    # -- amqp-tools (librabbitmq) --------------------------------------------------------
    def test_amqp_tools_over_tls(self):
        if shutil.which("amqp-publish") is None:
            self.skipTest("amqp-tools is not installed")
        q = unique("tls.tools")
        self.api.call("PUT", "/api/queues/%s/%s" % (quote("/"), q), body={"durable": False})
        self.addCleanup(self.api.call, "DELETE", "/api/queues/%s/%s" % (quote("/"), q))
        common = ["--url", "amqps://guest:guest@localhost:%d" % self.amqps_port, "--ssl",
                  "--cacert", os.path.join(self.certs, "ca.pem"),
                  "--cert", os.path.join(self.certs, "client.pem"),
                  "--key", os.path.join(self.certs, "client.key")]
        subprocess.run(["amqp-publish", *common, "-r", q, "-b", "from amqp-tools"],
                       check=True, timeout=30, capture_output=True)
        got = subprocess.run(["amqp-get", *common, "-q", q], check=True, timeout=30,
                             capture_output=True)
        self.assertEqual(got.stdout, b"from amqp-tools")


    # -- the console tools (their client is warren-perf's) ------------------------------
    def test_console_tools_over_tls(self):
        producer = os.environ.get("WARREN_CONSOLE_PRODUCER")
        consumer = os.environ.get("WARREN_CONSOLE_CONSUMER")
        if not producer or not consumer:
            self.skipTest("WARREN_CONSOLE_PRODUCER and WARREN_CONSOLE_CONSUMER are not set")
        q = unique("tls.console")
        self.addCleanup(self.api.call, "DELETE", "/api/queues/%s/%s" % (quote("/"), q))
        uri = "amqps://guest:guest@localhost:%d" % self.amqps_port
        ca = os.path.join(self.certs, "ca.pem")
        r = subprocess.run([producer, "-h", uri, "--tls-ca", ca, "-q", q, "--declare"],
                           input=b"one\ntwo\n", capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([consumer, "-h", uri, "--tls-ca", ca, "-q", q, "--max-messages", "2"],
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"one\ntwo\n")
        # A CA that did not sign the broker's certificate: the handshake fails.
        r = subprocess.run([consumer, "-h", uri, "--tls-ca", os.path.join(self.certs,
                                                                          "rogue-ca.pem"),
                            "-q", q, "--max-messages", "1"], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"TLS handshake", r.stderr)


@unittest.skipIf(EXTERNAL_BROKER, "starts warrend with settings of its own")
class StrictTlsTest(TlsCase):
    """fail_if_no_peer_cert and a TLS version pinned by ssl_options.versions."""

    settings = ("ssl_options.verify = verify_peer\n"
                "ssl_options.fail_if_no_peer_cert = true\n"
                "ssl_options.versions.1 = tlsv1.2\n")

    def test_client_without_a_certificate_is_refused(self):
        with self.assertRaises((pika.exceptions.AMQPConnectionError, ssl.SSLError)):
            self.connect()
        conn = self.connect(cert="client")  # with one it gets in
        conn.channel()

    def test_only_the_configured_version_is_spoken(self):
        conn = self.connect(cert="client")
        conn.channel()
        listed = self.listed_connection(lambda c: c["ssl"])
        self.assertEqual(listed["ssl_protocol"], "tlsv1.2")
        with self.assertRaises((pika.exceptions.AMQPConnectionError, ssl.SSLError)) as caught:
            self.connect(cert="client", minimum=ssl.TLSVersion.TLSv1_3)
        self.assertIn("PROTOCOL_VERSION", str(caught.exception))

    def test_external_is_not_offered_by_default(self):
        raw = RawConnection(self.amqps_host, self.amqps_port, timeout=10,
                            ssl_context=self.context("client"), server_hostname="localhost")
        self.addCleanup(raw.close)
        offered = TlsListenersTest.start_ok(self, raw, "EXTERNAL")
        self.assertEqual(offered, [b"PLAIN", b"AMQPLAIN"])
        TlsListenersTest.assert_closed_silently(self, raw)

    def test_https_has_settings_of_its_own(self):
        # management.ssl.* asks for no client certificate, whatever ssl_options.* say.
        self.assertEqual(self.api.get("/api/whoami")["name"], "guest")


def expiry_text(pem_file):
    """The notAfter of the (first) certificate in pem_file as RabbitMQ's certificate
    expiration check writes it: "2027-01-03 3:53:30", UTC."""
    out = subprocess.run(["openssl", "x509", "-enddate", "-noout", "-in", pem_file],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    t = time.strptime(out.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y GMT")
    return "%04d-%02d-%02d %d:%02d:%02d" % t[:6]


@unittest.skipIf(EXTERNAL_BROKER, "rewrites the certificate files of its warrend")
class CertificateExpirationTest(TlsCase):
    """/api/health/checks/certificate-expiration/{within}/{unit} over the TLS listeners'
    certificate files (all made for 30 days), read at each check."""

    def check(self, within, unit):
        status, body, raw, _ = self.api.call(
            "GET", "/api/health/checks/certificate-expiration/%s/%s" % (within, unit))
        return status, body

    def test_ok_when_nothing_expires_within_the_window(self):
        for within, unit in (("1", "weeks"), ("29", "days"), ("0", "years"), ("-1", "days"),
                             ("+2", "Days"), ("00000000005", "days")):
            self.assertEqual(self.check(within, unit), (200, {"status": "ok"}), (within, unit))

    def test_each_listener_with_a_certificate_in_the_window_is_listed(self):
        server = os.path.join(self.certs, "server.pem")
        ca = os.path.join(self.certs, "ca.pem")
        for within, unit in (("5", "weeks"), ("31", "days"), ("2", "MONTHS"), ("1", "years"),
                             ("99999999999999999999", "days")):
            status, body = self.check(within, unit)
            self.assertEqual(status, 503, body)
            self.assertEqual((body["status"], body["reason"]), ("failed", "Certificates expiring"))
            node = self.api.get("/api/overview")["node"]
            listed = {e["protocol"]: e for e in body["expired"]}
            self.assertEqual(sorted(listed), ["amqp/ssl", "https", "stomp/ssl"])
            for protocol, port in (("amqp/ssl", self.amqps_port),
                                   ("stomp/ssl", self.stomps_port),
                                   ("https", self.https_port)):
                e = listed[protocol]
                self.assertEqual((e["node"], e["port"], e["certfile"], e["certfile_expires_on"]),
                                 (node, port, server, [expiry_text(server)]), e)
                self.assertIn("interface", e)
            for protocol in ("amqp/ssl", "stomp/ssl"):
                self.assertEqual((listed[protocol]["cacertfile"],
                                  listed[protocol]["cacertfile_expires_on"]),
                                 (ca, [expiry_text(ca)]))
            # management.ssl.* names no CA here.
            self.assertEqual((listed["https"]["cacertfile"],
                              listed["https"]["cacertfile_expires_on"]), (None, []))

    def test_the_files_are_read_at_each_check(self):
        ca = os.path.join(self.certs, "ca.pem")
        with open(ca, "rb") as f:
            original = f.read()
        self.addCleanup(lambda: open(ca, "wb").write(original))
        with open(os.path.join(self.certs, "server.pem"), "rb") as f:
            server = f.read()
        with open(ca, "wb") as f:  # two certificates: each is listed
            f.write(original + server)
        status, body = self.check("5", "weeks")
        self.assertEqual(status, 503, body)
        amqps = [e for e in body["expired"] if e["protocol"] == "amqp/ssl"][0]
        self.assertEqual(len(amqps["cacertfile_expires_on"]), 2, amqps)
        with open(ca, "wb") as f:
            f.write(b"not a certificate\n")
        status, body = self.check("5", "weeks")
        self.assertEqual(status, 500, body)
        self.assertIn(ca, body["reason"])
        with open(ca, "wb") as f:  # the test's clients read it too
            f.write(original)
        self.assertEqual(self.check("1", "weeks"), (200, {"status": "ok"}))
        self.assert_alive()

    def test_bad_windows_are_refused_as_rabbitmq_refuses_them(self):
        self.assertEqual(self.check("x", "days"),
                         (400, {"error": "bad_request", "reason": "Invalid expiration value."}))
        self.assertEqual(self.check("1.5", "days")[0], 400)
        self.assertEqual(self.check("1", "fortnights"),
                         (400, {"error": "bad_request",
                                "reason": "Time unit not recognised. Supported units: days, "
                                          "weeks, months, years."}))
        self.assertEqual(self.api.call(
            "GET", "/api/health/checks/certificate-expiration/1")[0], 404)


@unittest.skipIf(EXTERNAL_BROKER, "starts warrend itself")
class TlsSettingsTest(unittest.TestCase):
    """Bad TLS settings stop warrend at start with the reason; it never runs half set up."""

    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="warren-certs-")
        cls.addClassCleanup(shutil.rmtree, cls.certs, True)
        make_certs(cls.certs)

    def start(self, settings, *flags):
        conf_dir = tempfile.mkdtemp(prefix="warren-conf-")
        self.addCleanup(shutil.rmtree, conf_dir, True)
        conf = os.path.join(conf_dir, "warren.conf")
        with open(conf, "w") as f:
            f.write(settings)
        binary = os.environ.get("WARREND")
        if not binary:
            self.fail("WARREND is not set")
        return subprocess.run([binary, "--amqp-port", "0", "--stomp-port", "0",
                               "--http-port", "0", "--data-dir",
                               os.path.join(conf_dir, "data"), "--config", conf, *flags],
                              capture_output=True, timeout=30, stdin=subprocess.DEVNULL)

    def test_listener_without_a_certificate(self):
        r = self.start("", "--amqps-port", "0")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"ssl_options.certfile and ssl_options.keyfile must both be set", r.stderr)

    def test_missing_key_file(self):
        r = self.start(tls_settings(self.certs).replace("server.key", "missing.key"),
                       "--amqps-port", "0")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"cannot read", r.stderr)
        self.assertIn(b"missing.key", r.stderr)

    def test_key_of_another_certificate(self):
        settings = tls_settings(self.certs).replace("keyfile = %s/server.key" % self.certs,
                                                    "keyfile = %s/client.key" % self.certs)
        r = self.start(settings, "--stomps-port", "0")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, b"key values mismatch|does not match the certificate")

    def test_https_without_its_certificate(self):
        r = self.start("ssl_options.certfile = %s/server.pem\n" % self.certs,
                       "--https-port", "0")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"management.ssl", r.stderr)

    def test_unknown_ssl_option_and_bad_values(self):
        for line in ("ssl_options.verfy = verify_peer", "ssl_options.verify = yes",
                     "ssl_options.versions.1 = sslv3", "auth_mechanisms.1 = GSSAPI",
                     "ssl_cert_login_from = serial"):
            r = self.start(line + "\n")
            self.assertEqual(r.returncode, 2, (line, r.stderr))
            self.assertIn(b"line 1", r.stderr)

    def cluster_settings(self, key="server.key"):
        return ("cluster.ssl_options.certfile = {d}/server.pem\n"
                "cluster.ssl_options.keyfile = {d}/{k}\n"
                "cluster.ssl_options.cacertfile = {d}/ca.pem\n").format(d=self.certs, k=key)

    def test_cluster_tls_settings(self):
        # Only what CAF's openssl module takes; anything else is an unknown key.
        for line in ("cluster.ssl_options.verify = verify_peer",
                     "cluster.ssl_options.versions.1 = tlsv1.3"):
            r = self.start(line + "\n", "--cluster-port", "0")
            self.assertEqual(r.returncode, 2, (line, r.stderr))
            self.assertIn(b"line 1: unknown key", r.stderr)
        # All three files, readable and fitting, and a cluster port.
        r = self.start("cluster.ssl_options.certfile = %s/server.pem\n" % self.certs,
                       "--cluster-port", "0")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"needs certfile, keyfile and cacertfile", r.stderr)
        r = self.start(self.cluster_settings("client.key"), "--cluster-port", "0")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, b"key values mismatch|does not match the certificate")
        r = self.start(self.cluster_settings())
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"no cluster port", r.stderr)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--make-certs":
        make_certs(sys.argv[2])
        sys.exit(0)
    unittest.main()
