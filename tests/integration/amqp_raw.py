"""A deliberately tiny AMQP 0-9-1 client on a plain socket.

It does the handshake by hand and can then write arbitrary (also malformed)
frames, so the tests can check how the broker reacts to bad input.
"""

import socket
import struct
import time

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = 0xCE

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8

# (class, method)
CONNECTION_START = (10, 10)
CONNECTION_START_OK = (10, 11)
CONNECTION_TUNE = (10, 30)
CONNECTION_TUNE_OK = (10, 31)
CONNECTION_OPEN = (10, 40)
CONNECTION_OPEN_OK = (10, 41)
CONNECTION_CLOSE = (10, 50)
CONNECTION_CLOSE_OK = (10, 51)
CHANNEL_OPEN = (20, 10)
CHANNEL_OPEN_OK = (20, 11)
CHANNEL_CLOSE = (20, 40)
CHANNEL_CLOSE_OK = (20, 41)
QUEUE_DECLARE = (50, 10)
QUEUE_DECLARE_OK = (50, 11)
BASIC_QOS = (60, 10)
BASIC_PUBLISH = (60, 40)


class ProtocolError(AssertionError):
    pass


class PeerClosed(ProtocolError):
    """The socket reached EOF (or was reset) while a frame was expected."""


# -- encoding ----------------------------------------------------------------
def shortstr(s):
    b = s.encode() if isinstance(s, str) else s
    assert len(b) < 256
    return struct.pack("!B", len(b)) + b


def longstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!I", len(b)) + b


def empty_table():
    return struct.pack("!I", 0)


def method_payload(class_method, args=b""):
    return struct.pack("!HH", *class_method) + args


def frame(frame_type, channel, payload, end=FRAME_END):
    return struct.pack("!BHI", frame_type, channel, len(payload)) + payload + bytes([end])


def method_frame(channel, class_method, args=b""):
    return frame(FRAME_METHOD, channel, method_payload(class_method, args))


def content_header_frame(channel, class_id, body_size, flags=0):
    return frame(FRAME_HEADER, channel, struct.pack("!HHQH", class_id, 0, body_size, flags))


def start_ok_args(user="guest", password="guest"):
    """connection.start-ok arguments: PLAIN with these credentials."""
    response = b"\x00" + user.encode() + b"\x00" + password.encode()
    return empty_table() + shortstr("PLAIN") + longstr(response) + shortstr("en_US")


def open_args(vhost="/"):
    return shortstr(vhost) + shortstr("") + b"\x00"


def pipelined_handshake(user="guest", password="guest", vhost="/", frame_max=131072):
    """The protocol header, start-ok, tune-ok and open in one piece, not waiting for the
    broker's start and tune (what a client that hangs up at once, or a hasty one, sends)."""
    return (PROTOCOL_HEADER
            + method_frame(0, CONNECTION_START_OK, start_ok_args(user, password))
            + method_frame(0, CONNECTION_TUNE_OK, struct.pack("!HIH", 0, frame_max, 0))
            + method_frame(0, CONNECTION_OPEN, open_args(vhost)))


def negotiate(ours, theirs):
    """The lower of two limits, where 0 means 'no limit'."""
    if ours and theirs:
        return min(ours, theirs)
    return ours or theirs


# -- decoding ------------------------------------------------------------------
class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ProtocolError("truncated payload %r" % (self.data,))
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def octet(self):
        return self.take(1)[0]

    def short(self):
        return struct.unpack("!H", self.take(2))[0]

    def long(self):
        return struct.unpack("!I", self.take(4))[0]

    def shortstr(self):
        return self.take(self.octet()).decode("utf-8", "replace")

    def longstr(self):
        return self.take(self.long())


class Frame:
    def __init__(self, frame_type, channel, payload):
        self.type, self.channel, self.payload = frame_type, channel, payload

    @property
    def class_method(self):
        if self.type != FRAME_METHOD or len(self.payload) < 4:
            return None
        return struct.unpack("!HH", self.payload[:4])

    def args(self):
        return Reader(self.payload[4:])

    def __repr__(self):
        return "Frame(type=%d, channel=%d, class_method=%r, payload=%r)" % (
            self.type, self.channel, self.class_method, self.payload[:64])


class Close:
    """Arguments of connection.close / channel.close."""

    def __init__(self, frame):
        r = frame.args()
        self.reply_code = r.short()
        self.reply_text = r.shortstr()
        self.class_id = r.short()
        self.method_id = r.short()

    def __repr__(self):
        return "Close(%d, %r, class=%d, method=%d)" % (
            self.reply_code, self.reply_text, self.class_id, self.method_id)


class RawConnection:
    def __init__(self, host, port, timeout=5.0, ssl_context=None, server_hostname=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if ssl_context is not None:  # AMQPS: TLS first (ssl.SSLError when it fails)
            self.sock = ssl_context.wrap_socket(self.sock, server_hostname=server_hostname)
        self.timeout = timeout
        self.buf = b""
        self.frame_max = None
        self.channel_max = None
        self.heartbeat = None
        self.server_heartbeat = None
        self.server_properties = None
        self.mechanisms = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out waiting for data from the broker")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise PeerClosed("broker closed the connection; unread bytes %r" % (self.buf,))
        self.buf += chunk

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until_eof(self, timeout=None, limit=1 << 20):
        """All bytes up to EOF; raises socket.timeout if EOF does not come."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < limit:
            try:
                self._fill(deadline)
            except PeerClosed:
                break
        out, self.buf = self.buf, b""
        return out

    def read_frame(self, timeout=None, skip_heartbeats=True):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            head = self.read_exact(7, max(0.001, deadline - time.monotonic()))
            ftype, channel, size = struct.unpack("!BHI", head)
            if ftype == ord("A") and head[:4] == b"AMQP":
                raise ProtocolError("broker sent a protocol header: %r" % (head,))
            rest = self.read_exact(size + 1, max(0.001, deadline - time.monotonic()))
            if rest[-1] != FRAME_END:
                raise ProtocolError("bad frame-end octet %#x from broker" % rest[-1])
            f = Frame(ftype, channel, rest[:-1])
            if skip_heartbeats and ftype == FRAME_HEARTBEAT:
                continue
            return f

    def expect_method(self, class_method, channel=0, timeout=None):
        f = self.read_frame(timeout)
        if f.type != FRAME_METHOD or f.class_method != class_method or f.channel != channel:
            extra = ""
            if f.class_method in (CONNECTION_CLOSE, CHANNEL_CLOSE):
                extra = " %r" % Close(f)
            raise ProtocolError("expected method %r on channel %d, got %r%s"
                                % (class_method, channel, f, extra))
        return f

    def send_method(self, channel, class_method, args=b""):
        self.send(method_frame(channel, class_method, args))

    # -- handshake -----------------------------------------------------------------
    def handshake(self, frame_max=131072, heartbeat=0, channel_max=2047,
                  user="guest", password="guest", vhost="/"):
        self.send(PROTOCOL_HEADER)
        start = self.expect_method(CONNECTION_START)
        r = start.args()
        version = (r.octet(), r.octet())
        if version != (0, 9):
            raise ProtocolError("connection.start version %r" % (version,))
        self.server_properties = r.longstr()  # raw table, not needed here
        self.mechanisms = r.longstr().split()
        self.send_method(0, CONNECTION_START_OK, start_ok_args(user, password))
        tune = self.expect_method(CONNECTION_TUNE)
        r = tune.args()
        server_channel_max, server_frame_max = r.short(), r.long()
        self.server_heartbeat = r.short()
        self.channel_max = negotiate(channel_max, server_channel_max)
        self.frame_max = negotiate(frame_max, server_frame_max)
        self.heartbeat = heartbeat
        self.send_method(0, CONNECTION_TUNE_OK,
                         struct.pack("!HIH", self.channel_max, self.frame_max, heartbeat))
        self.send_method(0, CONNECTION_OPEN, open_args(vhost))
        self.expect_method(CONNECTION_OPEN_OK)
        return self

    def open_channel(self, channel):
        self.send_method(channel, CHANNEL_OPEN, shortstr(""))
        self.expect_method(CHANNEL_OPEN_OK, channel)

    def expect_connection_close(self, timeout=None):
        """Read frames until connection.close; returns its arguments.

        Frames the broker may legitimately send before closing (e.g. a
        channel.close it is superseding) are not expected here, so any other
        frame is an error.
        """
        f = self.expect_method(CONNECTION_CLOSE, 0, timeout)
        return Close(f)
