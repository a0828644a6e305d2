"""A minimal STOMP client over a plain socket, for frames that the stomp.py
client cannot (or will not) produce, and for checking exact wire behaviour:
escaping, content-length, heart-beat EOLs, ERROR-then-close.
"""

import socket
import itertools
import time

DEFAULT_TIMEOUT = 5.0
_receipt_ids = itertools.count(1)


class StompClosed(AssertionError):
    """The server closed the connection while a frame was expected."""


class StompTimeout(AssertionError):
    """No complete frame arrived in time."""


class Frame:
    def __init__(self, command, headers, body):
        self.command = command
        self.headers = headers      # list of (name, value), wire order, unescaped
        self.body = body            # bytes

    def header(self, name, default=None):
        """The first occurrence of a header wins."""
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def all(self, name):
        return [v for k, v in self.headers if k == name]

    def names(self):
        return [k for k, _ in self.headers]

    def __repr__(self):
        return "Frame(%r, %r, %r)" % (self.command, self.headers, self.body[:200])


def escape(value, version):
    if version == "1.0":
        return value
    out = value.replace("\\", "\\\\").replace("\n", "\\n").replace(":", "\\c")
    if version == "1.2":
        out = out.replace("\r", "\\r")
    return out


def unescape(value, version):
    if version == "1.0":
        return value
    out, i = [], 0
    table = {"n": "\n", "c": ":", "\\": "\\"}
    if version == "1.2":
        table["r"] = "\r"
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in table:
            out.append(table[value[i + 1]])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def encode_frame(command, headers=(), body=b"", version="1.2", content_length=True):
    """Build the bytes of one frame. headers: dict or sequence of pairs."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    items = list(headers.items()) if isinstance(headers, dict) else list(headers)
    esc = command not in ("CONNECT", "STOMP", "CONNECTED")
    lines = [command]
    for k, v in items:
        k, v = str(k), str(v)
        if esc:
            k, v = escape(k, version), escape(v, version)
        lines.append("%s:%s" % (k, v))
    if content_length and not any(str(k) == "content-length" for k, _ in items):
        lines.append("content-length:%d" % len(body))
    return ("\n".join(lines) + "\n\n").encode("utf-8") + body + b"\x00"


class RawStomp:
    """One STOMP connection. Frames are read with bounded waits only."""

    def __init__(self, host, port, timeout=DEFAULT_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.version = "1.0"
        self.eof = False
        self.heartbeats = []        # monotonic times of EOLs received between frames
        self.connected = None
        self.pending = []           # frames read while waiting for something else

    # -- output --------------------------------------------------------------
    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, command, headers=(), body=b"", content_length=True):
        self.send_raw(encode_frame(command, headers, body, self.version, content_length))

    # -- input ---------------------------------------------------------------
    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise StompTimeout("no complete frame within the time allowed; buffered %r"
                               % self.buf[:300])
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise StompTimeout("no complete frame within the time allowed; buffered %r"
                               % self.buf[:300])
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            raise StompClosed("connection closed by the server; buffered %r"
                              % self.buf[:300])
        self.buf += data

    def _skip_eols(self):
        while True:
            if self.buf.startswith(b"\r\n"):
                self.buf = self.buf[2:]
            elif self.buf.startswith(b"\n"):
                self.buf = self.buf[1:]
            else:
                return
            self.heartbeats.append(time.monotonic())

    def _try_parse(self):
        self._skip_eols()
        end = self.buf.find(b"\n\n")
        end_crlf = self.buf.find(b"\r\n\r\n")
        if end < 0 and end_crlf < 0:
            return None
        if end_crlf >= 0 and (end < 0 or end_crlf < end):
            head, rest = self.buf[:end_crlf], self.buf[end_crlf + 4:]
        else:
            head, rest = self.buf[:end], self.buf[end + 2:]
        lines = [l[:-1] if l.endswith(b"\r") else l for l in head.split(b"\n")]
        command = lines[0].decode("utf-8")
        version = "1.0" if command == "CONNECTED" else self.version
        headers = []
        for line in lines[1:]:
            k, _, v = line.decode("utf-8").partition(":")
            headers.append((unescape(k, version), unescape(v, version)))
        length = None
        for k, v in headers:
            if k == "content-length":
                length = int(v)
                break
        if length is not None:
            if len(rest) < length + 1:
                return None
            body = rest[:length]
            if rest[length:length + 1] != b"\x00":
                raise AssertionError("frame body not followed by NUL: %r" % rest[:length + 20])
            self.buf = rest[length + 1:]
        else:
            nul = rest.find(b"\x00")
            if nul < 0:
                return None
            body = rest[:nul]
            self.buf = rest[nul + 1:]
        return Frame(command, headers, body)

    def recv_frame(self, timeout=DEFAULT_TIMEOUT):
        if self.pending:
            return self.pending.pop(0)
        return self._read_frame(timeout)

    def _read_frame(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            frame = self._try_parse()
            if frame is not None:
                return frame
            self._fill(deadline)

    def expect(self, command, timeout=DEFAULT_TIMEOUT):
        frame = self.recv_frame(timeout)
        if frame.command != command:
            raise AssertionError("expected %s, got %r" % (command, frame))
        return frame

    def poll_frame(self, timeout):
        """A frame if one arrives within timeout, else None (closed: raises)."""
        try:
            return self.recv_frame(timeout)
        except StompTimeout:
            return None

    def wait_closed(self, timeout=DEFAULT_TIMEOUT):
        """Read (and discard frames and EOLs) until the server closes the
        connection; True if it did within timeout. Frames read are returned in
        self.trailing."""
        self.trailing, self.pending = self.pending, []
        deadline = time.monotonic() + timeout
        while True:
            try:
                frame = self._try_parse()
            except (ValueError, AssertionError):
                frame = None
                self.buf = b""
            if frame is not None:
                self.trailing.append(frame)
                continue
            try:
                self._fill(deadline)
            except StompClosed:
                return True
            except StompTimeout:
                return False

    # -- conveniences ----------------------------------------------------------
    def connect(self, version=None, login="guest", passcode="guest", heart_beat=None,
                host="/", command="CONNECT", extra=(), timeout=DEFAULT_TIMEOUT):
        headers = []
        if version is not None:
            headers.append(("accept-version", version))
            headers.append(("host", host))
        if login is not None:
            headers.append(("login", login))
        if passcode is not None:
            headers.append(("passcode", passcode))
        if heart_beat is not None:
            headers.append(("heart-beat", heart_beat))
        headers.extend(extra)
        self.send(command, headers, content_length=False)
        frame = self.recv_frame(timeout)
        if frame.command == "CONNECTED":
            self.version = frame.header("version", "1.0")
            self.connected = frame
        return frame

    def receipt(self, command, headers=(), body=b"", timeout=DEFAULT_TIMEOUT):
        """Send a frame with a receipt header and wait for its RECEIPT.

        Frames that arrive before it (MESSAGEs) are kept for recv_frame; the
        RECEIPT is returned."""
        rid = "r-%d" % next(_receipt_ids)
        items = list(headers.items()) if isinstance(headers, dict) else list(headers)
        items.append(("receipt", rid))
        self.send(command, items, body)
        deadline = time.monotonic() + timeout
        while True:
            frame = self._read_frame(max(0.01, deadline - time.monotonic()))
            if frame.command == "RECEIPT" and frame.header("receipt-id") == rid:
                return frame
            if frame.command == "ERROR":
                raise AssertionError("ERROR instead of RECEIPT for %s: %r" % (command, frame))
            self.pending.append(frame)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
