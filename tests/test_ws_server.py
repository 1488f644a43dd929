"""The bundled TLS WebSocket server (harness/ws-server): echo of text and
binary messages (fragmented too), ping/pong both ways, the stream messages
and their checksums, the close handshake, protocol errors, option errors, a
clean stop on SIGTERM, and one echo exchange under valgrind.

A tiny RFC 6455 client over Python's ssl stands in for harness/dpdk-client.
Every server a test starts is ended in `finally` through its own Popen
handle; traffic stays on 127.0.0.1.
"""
import base64
import hashlib
import os
import pathlib
import queue
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

from conftest import assert_no_sanitizer_report, sanitizer_env

LISTENING_RE = re.compile(r"^ws-server: listening tls=(\S+)$")
STOPPING_RE = re.compile(
    r"^ws-server: stopping: conns=(\d+) messages_in=(\d+) messages_out=(\d+) "
    r"bytes_in=(\d+) bytes_out=(\d+)$")
READY_TIMEOUT = 10.0
IO_TIMEOUT = 10.0
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def repo_root():
    """The directory above this file that holds the Makefile and harness/."""
    for d in pathlib.Path(__file__).resolve().parents:
        if (d / "Makefile").is_file() and (d / "harness").is_dir():
            return d
    raise RuntimeError(f"no repository root above {__file__}")


def ws_server_bin():
    build = repo_root() / os.environ.get("FAULTD_BUILD", "build")
    return build / "harness" / "ws-server"


def split_hostport(s):
    """'127.0.0.1:7000' or '[::1]:7000' -> (host, port)."""
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


class WsServer:
    """One ws-server process (optionally under a wrapper such as valgrind);
    its output is collected by reader threads and logged with a prefix when
    the test ends."""

    def __init__(self, tmp_path, *args, wrapper=(), ready_timeout=READY_TIMEOUT):
        self.ready_file = tmp_path / "ws.ready"
        self.cmd = [*wrapper, str(ws_server_bin()), "--bind", "127.0.0.1", "--port", "0",
                    "--ready-file", str(self.ready_file), *args]
        self.ready_timeout = ready_timeout
        self.proc = None
        self.lines = queue.Queue()
        self.stdout = []
        self.stderr = []
        self.threads = []
        self.addr = None

    def _read(self, stream, sink, to_queue):
        for line in stream:
            sink.append(line)
            if to_queue:
                self.lines.put(line.rstrip("\n"))

    def start(self):
        binary = ws_server_bin()
        assert binary.exists(), f"{binary} not built (make {binary.relative_to(repo_root())})"
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=sanitizer_env())
        for stream, sink, q in ((self.proc.stdout, self.stdout, True),
                                (self.proc.stderr, self.stderr, False)):
            t = threading.Thread(target=self._read, args=(stream, sink, q), daemon=True)
            t.start()
            self.threads.append(t)
        deadline = time.monotonic() + self.ready_timeout
        while not self.ready_file.exists():
            assert self.proc.poll() is None, f"ws-server exited early: {self.output()}"
            assert time.monotonic() < deadline, f"ws-server not ready: {self.output()}"
            time.sleep(0.02)
        assert self.ready_file.read_text() == "ready\n"
        # The listening line is flushed before the ready file is written.
        line = self.next_line()
        m = LISTENING_RE.match(line)
        assert m, f"unexpected first line {line!r}"
        self.addr = split_hostport(m.group(1))
        assert self.addr[0] == "127.0.0.1" and self.addr[1] > 0
        return self

    def next_line(self, timeout=READY_TIMEOUT):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output line within {timeout} s: {self.output()}")

    def terminate(self, timeout=IO_TIMEOUT):
        """SIGTERM; returns (exit code, the summary line's match)."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        for t in self.threads:
            t.join(timeout=timeout)
        summary = [m for m in map(STOPPING_RE.match, (l.rstrip("\n") for l in self.stdout)) if m]
        return rc, (summary[0] if summary else None)

    def wait_stderr(self, text, timeout=IO_TIMEOUT):
        """Whether a line containing text reaches stderr within timeout (the
        reader thread may lag behind what the server did)."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.stderr):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def output(self):
        return f"stdout: {''.join(self.stdout)!r} stderr: {''.join(self.stderr)!r}"

    def stop(self):
        """End the process if it still runs, and log what it said."""
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=IO_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            for t in self.threads:
                t.join(timeout=IO_TIMEOUT)
        finally:
            for line in self.stdout:
                print(f"[ws-server] {line}", end="")
            for line in self.stderr:
                print(f"[ws-server:err] {line}", end="")
        assert_no_sanitizer_report("".join(self.stderr), "ws-server stderr")


def tls_connect(addr, context=None, server_hostname=None):
    if context is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(addr, timeout=IO_TIMEOUT)
    return context.wrap_socket(raw, server_hostname=server_hostname)


class WsClient:
    """Just enough RFC 6455 for the tests: masked frames out, frames in."""

    def __init__(self, addr, **kw):
        self.sock = tls_connect(addr, **kw)
        self.rbuf = bytearray()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def handshake(self):
        key = base64.b64encode(os.urandom(16))
        self.sock.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                          b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " + key +
                          b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        head = self.read_http()
        assert head.startswith(b"HTTP/1.1 101 "), head
        want = base64.b64encode(hashlib.sha1(key + GUID).digest())
        assert b"\r\nSec-WebSocket-Accept: " + want + b"\r\n" in head, head
        return self

    def read_http(self):
        while b"\r\n\r\n" not in self.rbuf:
            self._fill()
        end = self.rbuf.index(b"\r\n\r\n") + 4
        head = bytes(self.rbuf[:end])
        del self.rbuf[:end]
        return head

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.rbuf.extend(chunk)

    def _take(self, n):
        while len(self.rbuf) < n:
            self._fill()
        data = bytes(self.rbuf[:n])
        del self.rbuf[:n]
        return data

    def send_frame(self, op, payload=b"", fin=True, mask=True):
        head = bytearray([(0x80 if fin else 0) | op])
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            head.append(mbit | n)
        elif n <= 0xFFFF:
            head += bytes([mbit | 126]) + struct.pack(">H", n)
        else:
            head += bytes([mbit | 127]) + struct.pack(">Q", n)
        if mask:
            key = os.urandom(4)
            head += key
            payload = bytes(b ^ key[i & 3] for i, b in enumerate(payload)) if n < 4096 else \
                mask_fast(payload, key)
        self.sock.sendall(bytes(head) + payload)

    def recv_frame(self):
        """-> (fin, opcode, payload); server frames must not be masked."""
        b0, b1 = self._take(2)
        assert not b1 & 0x80, "server frame masked"
        assert not b0 & 0x70, "reserved bits set"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._take(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._take(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self._take(n)

    def recv_data(self, skip_stream=True):
        """The next data message (opcode, payload), answering server pings."""
        while True:
            fin, op, payload = self.recv_frame()
            assert fin, "server fragmented a message"
            if op == OP_PING:
                self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            return op, payload

    def expect_close(self):
        """Reads up to the server's close frame; returns its code (None if
        empty), after checking that the server then ends the connection."""
        while True:
            fin, op, payload = self.recv_frame()
            if op == OP_CLOSE:
                break
            assert op in (OP_PING, OP_PONG, OP_BINARY, OP_TEXT), op
        code = struct.unpack(">H", payload[:2])[0] if payload else None
        self.sock.settimeout(5.0)
        try:
            while self.sock.recv(65536):
                pass
        except (ConnectionResetError, ssl.SSLError):
            pass
        return code


def mask_fast(payload, key):
    n = len(payload)
    k = int.from_bytes((key * ((n + 3) // 4))[:n], "big")
    return (int.from_bytes(payload, "big") ^ k).to_bytes(n, "big")


def stream_expected(seq, size):
    """The stream message format from harness/ws-server/ws_server.c."""
    x = (seq & 0xFFFFFFFF) ^ 0x9E3779B9
    pat = bytearray(size)
    for i in range(size):
        x = (x * 1664525 + 1013904223) & 0xFFFFFFFF
        pat[i] = x >> 24
    body = struct.pack(">QI", seq, size) + bytes(pat)
    h = 0x811C9DC5
    for b in body:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return body + struct.pack(">I", h)


def fnv1a(data):
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


@pytest.fixture
def server(tmp_path):
    started = []

    def start(*args, **kw):
        srv = WsServer(tmp_path, *args, **kw)
        started.append(srv)
        return srv.start()
    try:
        yield start
    finally:
        for srv in started:
            srv.stop()


def test_echo_text_binary_fragmented(server):
    srv = server("--ping-ms", "0")
    with WsClient(srv.addr).handshake() as ws:
        ws.send_frame(OP_TEXT, "hello, faultd \u2713".encode())
        assert ws.recv_data() == (OP_TEXT, "hello, faultd \u2713".encode())
        small = os.urandom(300)  # 16-bit length
        ws.send_frame(OP_BINARY, small)
        assert ws.recv_data() == (OP_BINARY, small)
        ws.send_frame(OP_BINARY, b"")
        assert ws.recv_data() == (OP_BINARY, b"")
        big = os.urandom(200 * 1024)  # three fragments of 64-bit length
        third = len(big) // 3
        ws.send_frame(OP_BINARY, big[:third], fin=False)
        ws.send_frame(OP_PING, b"between")  # control frames may interleave
        ws.send_frame(OP_CONT, big[third:2 * third], fin=False)
        ws.send_frame(OP_CONT, big[2 * third:], fin=True)
        fin, op, payload = ws.recv_frame()
        assert (op, payload) == (OP_PONG, b"between")
        assert ws.recv_data() == (OP_BINARY, big)
        text = ("fragmented text \u00e9" * 100).encode()
        ws.send_frame(OP_TEXT, text[:7], fin=False)  # splits inside no character
        ws.send_frame(OP_CONT, text[7:], fin=True)
        assert ws.recv_data() == (OP_TEXT, text)
    rc, summary = srv.terminate()
    assert rc == 0, srv.output()
    assert summary, srv.output()
    conns, m_in, m_out, b_in, b_out = map(int, summary.groups())
    want = len("hello, faultd \u2713".encode()) + 300 + 200 * 1024 + len(text)
    assert (conns, m_in, m_out, b_in, b_out) == (1, 5, 5, want, want)


def test_frame_pipelined_with_upgrade(server):
    """A client may send its first frame right behind the request."""
    srv = server("--ping-ms", "0")
    with WsClient(srv.addr) as ws:
        key = base64.b64encode(os.urandom(16))
        frame = bytes([0x81, 0x80 | 5]) + b"\0\0\0\0" + b"early"  # zero mask
        ws.sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
                        b"\r\nSec-WebSocket-Version: 13\r\n\r\n" + frame)
        assert ws.read_http().startswith(b"HTTP/1.1 101 ")
        assert ws.recv_data() == (OP_TEXT, b"early")


def test_ping_pong_both_ways(server):
    srv = server("--ping-ms", "100")
    with WsClient(srv.addr).handshake() as ws:
        ws.send_frame(OP_PING, b"abc")
        while True:
            fin, op, payload = ws.recv_frame()
            if op == OP_PONG:
                break
            assert op == OP_PING
            ws.send_frame(OP_PONG, payload)
        assert payload == b"abc"
        # Answering the server's pings keeps us connected well past 3 periods.
        pings = 0
        deadline = time.monotonic() + 0.8
        while time.monotonic() < deadline:
            fin, op, payload = ws.recv_frame()
            assert op == OP_PING and len(payload) == 8, (op, payload)
            pings += 1
            ws.send_frame(OP_PONG, payload)
        assert pings >= 4
        ws.send_frame(OP_TEXT, b"still here")
        assert ws.recv_data() == (OP_TEXT, b"still here")


def test_silent_client_dropped_after_3_pings(server):
    srv = server("--ping-ms", "100")
    with WsClient(srv.addr).handshake() as ws:
        start = time.monotonic()
        pings = 0
        with pytest.raises((EOFError, ConnectionResetError, ssl.SSLError)):
            while True:
                fin, op, payload = ws.recv_frame()
                assert op == OP_PING
                pings += 1
        assert pings == 3
        assert time.monotonic() - start < 3.0
    assert srv.wait_stderr("3 pings unanswered, dropping"), srv.output()


def test_stream_messages_verify(server):
    size = 300
    srv = server("--stream-ms", "10", "--stream-size", str(size), "--ping-ms", "50")
    with WsClient(srv.addr).handshake() as ws:
        ws.send_frame(OP_TEXT, b"echo amid the stream")
        seqs = []
        echoed = False
        while len(seqs) < 30 or not echoed:
            op, msg = ws.recv_data()
            if op == OP_TEXT:
                assert msg == b"echo amid the stream"
                echoed = True
                continue
            assert op == OP_BINARY and len(msg) == 16 + size
            seq, length = struct.unpack(">QI", msg[:12])
            assert length == size
            # The checksum alone, as a client would check it first ...
            assert struct.unpack(">I", msg[-4:])[0] == fnv1a(msg[:-4]), f"seq {seq}"
            # ... and the whole message against the documented pattern.
            assert msg == stream_expected(seq, size), f"seq {seq}"
            seqs.append(seq)
        assert seqs == list(range(len(seqs))), seqs


def test_close_handshake(server):
    srv = server("--ping-ms", "0")
    with WsClient(srv.addr).handshake() as ws:
        ws.send_frame(OP_CLOSE, struct.pack(">H", 1000) + b"bye")
        assert ws.expect_close() == 1000
    with WsClient(srv.addr).handshake() as ws:
        ws.send_frame(OP_CLOSE, b"")
        assert ws.expect_close() is None


def test_non_upgrade_request_400(server):
    srv = server()
    with WsClient(srv.addr) as ws:
        ws.sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = ws.read_http()
        assert head.startswith(b"HTTP/1.1 400 "), head
    with WsClient(srv.addr) as ws:
        ws.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Key: "
                        b"dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n")
        head = ws.read_http()
        assert head.startswith(b"HTTP/1.1 426 ") and b"Sec-WebSocket-Version: 13" in head


@pytest.mark.parametrize("frame,code", [
    (lambda ws: ws.send_frame(OP_TEXT, b"not masked", mask=False), 1002),
    (lambda ws: ws.send_frame(OP_CONT, b"orphan"), 1002),
    (lambda ws: ws.send_frame(OP_PING, b"x" * 126), 1002),
    (lambda ws: ws.send_frame(OP_TEXT, b"\xff\xfe"), 1007),
    (lambda ws: ws.send_frame(OP_BINARY, b"y" * 2000), 1009),
], ids=["unmasked", "orphan-continuation", "long-ping", "bad-utf8", "too-big"])
def test_protocol_errors_close(server, frame, code):
    srv = server("--ping-ms", "0", "--max-msg", "1000")
    with WsClient(srv.addr).handshake() as ws:
        frame(ws)
        assert ws.expect_close() == code
    # The server is unharmed.
    with WsClient(srv.addr).handshake() as ws:
        ws.send_frame(OP_BINARY, b"z" * 1000)
        assert ws.recv_data() == (OP_BINARY, b"z" * 1000)


def test_vanishing_clients_do_not_wedge(server):
    srv = server("--ping-ms", "0")
    # Mid-frame: a header promising 100000 bytes, then part of them.
    ws = WsClient(srv.addr).handshake()
    ws.sock.sendall(bytes([0x82, 0xFF]) + struct.pack(">Q", 100000) + os.urandom(4) +
                    os.urandom(5000))
    ws.sock.close()
    # Mid-TLS-record: half a ClientHello-sized record on a plain socket.
    raw = socket.create_connection(srv.addr, timeout=IO_TIMEOUT)
    raw.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00]) + os.urandom(100))
    # Reset mid-stream: SO_LINGER 0 makes close() send a RST.
    ws2 = WsClient(srv.addr).handshake()
    ws2.send_frame(OP_BINARY, os.urandom(50000))
    ws2.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws2.sock.close()
    raw.close()
    # Many at once after that, each echoed.
    clients = [WsClient(srv.addr).handshake() for _ in range(20)]
    try:
        for i, ws in enumerate(clients):
            ws.send_frame(OP_BINARY, bytes([i]) * 1000)
        for i, ws in enumerate(clients):
            assert ws.recv_data() == (OP_BINARY, bytes([i]) * 1000)
    finally:
        for ws in clients:
            ws.close()
    rc, summary = srv.terminate()
    assert rc == 0 and summary, srv.output()


def test_write_cert_pins(server, tmp_path):
    cert = tmp_path / "ws-cert.pem"
    srv = server("--write-cert", str(cert), "--ping-ms", "0")
    ctx = ssl.create_default_context(cafile=str(cert))
    with WsClient(srv.addr, context=ctx, server_hostname="localhost").handshake() as ws:
        peer = ws.sock.getpeercert()
        assert ((("commonName", "faultd-ws-server"),),) == peer["subject"]
        ws.send_frame(OP_TEXT, b"pinned")
        assert ws.recv_data() == (OP_TEXT, b"pinned")
    # The same files serve a second server through --cert/--key? Only the
    # certificate is written; a wrong key must be refused at start.
    bad = subprocess.run([str(ws_server_bin()), "--port", "0", "--cert", str(cert),
                          "--key", str(cert)], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 1 and bad.stderr, bad


@pytest.mark.parametrize("args,name", [
    (["--port", "70000"], "--port"),
    (["--max-msg", "0"], "--max-msg"),
    (["--stream-ms", "ten"], "--stream-ms"),
    (["--stream-size", "-1"], "--stream-size"),
    (["--ping-ms", ""], "--ping-ms"),
    (["--bind", "localhost"], "--bind"),
    (["--cert", "/nonexistent.pem", "--key", "/nonexistent.pem"], "--cert"),
    (["--key", "k.pem"], "--key"),
    (["--bogus"], "bogus"),
])
def test_bad_option_exit_2(args, name):
    binary = ws_server_bin()
    assert binary.exists(), f"{binary} not built"
    r = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2, r
    assert name in r.stderr, r.stderr
    assert r.stdout == ""


def test_help():
    r = subprocess.run([str(ws_server_bin()), "--help"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0 and "--stream-ms" in r.stdout


def test_sigterm_summary(server):
    srv = server("--ping-ms", "0", "--stream-ms", "5", "--stream-size", "10")
    ws = WsClient(srv.addr).handshake()
    ws.send_frame(OP_TEXT, b"x")
    streamed = echoed = 0
    while streamed < 2 or not echoed:
        op, msg = ws.recv_data()
        echoed |= (op, msg) == (OP_TEXT, b"x")
        streamed += op == OP_BINARY
    rc, summary = srv.terminate()
    assert rc == 0, srv.output()
    assert summary, srv.output()
    conns, m_in, m_out, b_in, b_out = map(int, summary.groups())
    assert conns == 1 and m_in == 1 and b_in == 1 and m_out >= 2 and b_out >= 27
    # The open connection was told the server is going away.
    assert ws.expect_close() == 1001
    ws.close()


def sanitized(binary):
    """Whether binary was built with a sanitizer, which valgrind cannot run."""
    data = binary.read_bytes()
    return b"__asan_init" in data or b"__ubsan_handle" in data


@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind not installed")
def test_valgrind_echo_clean(server, tmp_path):
    if sanitized(ws_server_bin()):
        pytest.skip("sanitized build: the sanitizer checks it instead")
    log = tmp_path / "valgrind.log"
    srv = server("--ping-ms", "0", wrapper=[
        "valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
        "--error-exitcode=99", f"--log-file={log}"], ready_timeout=60)
    with WsClient(srv.addr).handshake() as ws:
        ws.send_frame(OP_BINARY, b"under valgrind" * 100)
        assert ws.recv_data() == (OP_BINARY, b"under valgrind" * 100)
    rc, summary = srv.terminate(timeout=60)
    text = log.read_text()
    assert rc == 0, f"exit {rc}\n{text}"
    assert summary, srv.output()
    assert "ERROR SUMMARY: 0 errors" in text, text
    assert "definitely lost: 0" in text or "All heap blocks were freed" in text, text
