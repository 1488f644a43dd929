"""The bundled DPDK client (harness/dpdk-client): incident 1's WebSocket
client on lwIP over net_af_packet, TLS through a memory BIO pair. A clean
run exchanges verified messages; it survives link flaps by reconnecting;
--bug=double-construct aborts on glibc's double free at the first
reconnect; --bug=null-pop dies of SIGSEGV in ring_pop_front; a clean exit
and a kill -9 leave at most an empty /var/run/dpdk/<prefix>; bad options
exit 2.

Each test builds its own pair of namespaces (fddc<pid><tag>A/B) joined by
a veth: the kernel holds 198.18.60.1 on the A end, the server
198.18.60.2 on the B end, lwIP 198.18.60.3 on A through DPDK. Everything
is deleted in `finally`; processes are ended through their own handles.

The server is this file run as a script (--serve): a small TLS WebSocket
echo server on kernel sockets that also pings every second, for as long
as harness/ws-server is not there to use instead.
"""
import hashlib
import base64
import os
import pathlib
import queue
import re
import select
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

KERNEL_A = "198.18.60.1/24"
SERVER_IP = "198.18.60.2"
CLIENT_ADDR = "198.18.60.3/24"
PORT = 9443
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

CONNECTED_RE = re.compile(r"^dpdk-client: connected attempt=(\d+) connects=(\d+) failures=(\d+) "
                          r"messages=(\d+) bad=(\d+) mbuf_in_use=(\d+)")
LOST_RE = re.compile(r"^dpdk-client: (connection lost|connect failed) after [\d.]+ s \((\w+)\)")
STOPPING_RE = re.compile(r"^dpdk-client: stopping: connects=(\d+) failures=(\d+) messages=(\d+) "
                         r"bad=(\d+) msgs_per_s=(\d+) streamed=(\d+) mbuf_in_use=(\d+)$")


# --- the test server (runs in the B namespace as `python3 THIS --serve`) ---

def _recv_exact(s, n):
    b = bytearray()
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            raise ConnectionError("eof")
        b += chunk
    return bytes(b)


def _frame(op, payload):
    n = len(payload)
    if n < 126:
        h = struct.pack("!BB", 0x80 | op, n)
    elif n < 65536:
        h = struct.pack("!BBH", 0x80 | op, 126, n)
    else:
        h = struct.pack("!BBQ", 0x80 | op, 127, n)
    return h + payload


def _serve_conn(raw, ctx, stream_ms, stream_size):
    try:
        s = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        raw.close()
        return
    lock = threading.Lock()
    done = threading.Event()

    def send(data):
        with lock:
            s.sendall(data)

    def ticker():
        n, seq, next_ping = 0, 0, time.monotonic() + 1.0
        next_stream = time.monotonic() + (stream_ms / 1000.0 if stream_ms else 1e9)
        while not done.wait(0.01):
            now = time.monotonic()
            try:
                if now >= next_ping:
                    n += 1
                    send(_frame(9, struct.pack("!I", n)))
                    next_ping = now + 1.0
                if now >= next_stream:
                    body = bytes((seq + i) & 0xff for i in range(stream_size))
                    m = struct.pack("!QI", seq, stream_size) + body
                    send(_frame(2, m + struct.pack("!I", sum(m) & 0xffffffff)))
                    seq += 1
                    next_stream = now + stream_ms / 1000.0
            except OSError:
                return

    try:
        head = b""
        while b"\r\n\r\n" not in head:
            c = s.recv(4096)
            if not c:
                return
            head += c
        key = re.search(rb"(?im)^sec-websocket-key:\s*(\S+)", head).group(1)
        acc = base64.b64encode(hashlib.sha1(key + GUID).digest())
        send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc + b"\r\n\r\n")
        threading.Thread(target=ticker, daemon=True).start()
        msg, msg_op = b"", 0
        while True:
            b0, b1 = _recv_exact(s, 2)
            op, fin, n = b0 & 0x0f, b0 & 0x80, b1 & 0x7f
            if n == 126:
                n = struct.unpack("!H", _recv_exact(s, 2))[0]
            elif n == 127:
                n = struct.unpack("!Q", _recv_exact(s, 8))[0]
            mask = _recv_exact(s, 4) if b1 & 0x80 else b"\0\0\0\0"
            p = bytearray(_recv_exact(s, n))
            for i in range(n):
                p[i] ^= mask[i & 3]
            if op == 9:
                send(_frame(10, bytes(p)))
            elif op == 10:
                pass
            elif op == 8:
                send(_frame(8, bytes(p[:2])))
                return
            else:
                if op:
                    msg_op = op
                msg += bytes(p)
                if fin:
                    send(_frame(msg_op, msg))
                    msg, msg_op = b"", 0
    except (OSError, ConnectionError, ssl.SSLError, AttributeError):
        pass
    finally:
        done.set()
        try:
            s.close()
        except OSError:
            pass


def serve(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--stream-ms", type=int, default=0)
    ap.add_argument("--stream-size", type=int, default=64)
    a = ap.parse_args(argv)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.bind, a.port))
    ls.listen(16)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"wsserve: listening {a.bind}:{a.port}", flush=True)
    while True:
        c, _ = ls.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_serve_conn, args=(c, ctx, a.stream_ms, a.stream_size),
                         daemon=True).start()


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--serve":
    serve(sys.argv[2:])
    sys.exit(0)


# --- the tests ---------------------------------------------------------------

import pytest  # noqa: E402  (the server half above runs without pytest)

TAG = f"fddc{os.getpid() % 100000}"
DPDK_RUN = pathlib.Path("/var/run/dpdk")


def repo_root():
    for d in pathlib.Path(__file__).resolve().parents:
        if (d / "Makefile").is_file() and (d / "harness").is_dir():
            return d
    raise RuntimeError(f"no repository root above {__file__}")


def client_bin():
    # The plain build, as faultd runs it (conftest points FAULTD_HARNESS_DIR
    # there under a sanitized faultd): its bugs must crash as in the field.
    harness = os.environ.get("FAULTD_HARNESS_DIR")
    binary = (pathlib.Path(harness) if harness else
              repo_root() / os.environ.get("FAULTD_BUILD", "build") / "harness") / "dpdk-client"
    assert binary.exists(), f"{binary} not built (make build/harness/dpdk-client)"
    return binary


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


class Net:
    """Namespaces A (kernel + lwIP over DPDK) and B (server), one veth."""

    def __init__(self):
        self.a, self.b = f"{TAG}A", f"{TAG}B"
        self.va, self.vb = f"{TAG}va", f"{TAG}vb"

    def up(self):
        ip("netns", "add", self.a)
        ip("netns", "add", self.b)
        ip("link", "add", self.va, "netns", self.a, "type", "veth", "peer", "name", self.vb,
           "netns", self.b)
        ip("-n", self.a, "addr", "add", KERNEL_A, "dev", self.va)
        ip("-n", self.b, "addr", "add", f"{SERVER_IP}/24", "dev", self.vb)
        for ns, dev in ((self.a, self.va), (self.b, self.vb)):
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", dev, "up")

    def down(self):
        for ns in (self.a, self.b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)

    def flap(self, down_s=0.3, up_s=0.7):
        ip("-n", self.a, "link", "set", self.va, "down")
        time.sleep(down_s)
        ip("-n", self.a, "link", "set", self.va, "up")
        time.sleep(up_s)


class Proc:
    """A process in a namespace; stdout lines are queued as they come."""

    def __init__(self, ns, argv):
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, *map(str, argv)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out, self.err = [], []
        self.lines = queue.Queue()
        self.threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, self.out, True),
                                         daemon=True),
                        threading.Thread(target=self._pump, args=(self.proc.stderr, self.err, False),
                                         daemon=True)]
        for t in self.threads:
            t.start()

    def _pump(self, stream, sink, q):
        for line in stream:
            sink.append(line.rstrip("\n"))
            if q:
                self.lines.put(line.rstrip("\n"))

    def wait_line(self, regex, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            m = regex.search(line)
            if m:
                return m
        raise AssertionError(f"no line matching {regex.pattern!r} in {timeout} s:\n" + self.log())

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        for t in self.threads:
            t.join(timeout=5)
        return rc

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def log(self):
        return "\n".join(["stdout:"] + self.out + ["stderr:"] + self.err)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    d = tmp_path_factory.mktemp("dpdk-client")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=fddc", "-days", "1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    n = Net()
    server = None
    try:
        n.up()
        server = Proc(n.b, [sys.executable, __file__, "--serve", "--bind", SERVER_IP,
                            "--port", PORT, "--cert", cert, "--key", key])
        server.wait_line(re.compile(r"^wsserve: listening"), 10)
        yield n
    finally:
        if server:
            server.stop(timeout=5)
        n.down()


prefixes = []


def client(net, name, *extra):
    prefix = f"{TAG}-{name}"
    prefixes.append(prefix)
    return prefix, Proc(net.a, [client_bin(), "--file-prefix", prefix, "--iface", net.va,
                                "--addr", CLIENT_ADDR, "--server", f"{SERVER_IP}:{PORT}", *extra])


@pytest.fixture(autouse=True, scope="module")
def sweep_runtime_dirs():
    """faultd sweeps /var/run/dpdk/<prefix> after a kill; here we do."""
    yield
    for p in prefixes:
        d = DPDK_RUN / p
        if d.is_dir():
            for f in d.iterdir():
                f.unlink()
            d.rmdir()


def test_bad_option_exits_2():
    for argv, word in (([], "--file-prefix"), (["--rate", "x"], "--rate"),
                       (["--bug=nope"], "--bug"), (["--size", "8"], "--size"),
                       (["--file-prefix", "a/b"], "--file-prefix")):
        r = subprocess.run([client_bin(), *argv], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, (argv, r.stderr)
        assert word in r.stderr, (argv, r.stderr)
    r = subprocess.run([client_bin(), "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "--file-prefix" in r.stdout


def test_clean_run_verifies_messages_and_leaves_nothing(net):
    prefix, c = client(net, "clean", "--duration-s", "3")
    rc = c.wait(20)
    assert rc == 0, c.log()
    m = STOPPING_RE.search("\n".join(c.out), re.M) or next(
        (STOPPING_RE.search(l) for l in c.out if STOPPING_RE.search(l)), None)
    assert m, c.log()
    connects, failures, messages, bad = map(int, m.groups()[:4])
    assert connects == 1 and failures == 0 and bad == 0, c.log()
    assert messages >= 300, c.log()          # 200/s for ~2.5 s connected
    assert int(m.group(7)) == 0, c.log()     # mbuf_in_use back to 0
    assert not (DPDK_RUN / prefix).exists(), "EAL runtime dir left after a clean exit"


def test_survives_five_flaps(net):
    prefix, c = client(net, "flap")
    try:
        first = c.wait_line(CONNECTED_RE, 10)
        baseline = int(first.group(6))
        for _ in range(5):
            net.flap()
        # The last reconnect comes ~0.5 s after the link is back (longer on
        # a loaded host); then messages flow on it.
        deadline = time.monotonic() + 10
        while (time.monotonic() < deadline and
               sum(1 for l in list(c.out) if CONNECTED_RE.search(l)) < 6):
            time.sleep(0.1)
        time.sleep(1)
    finally:
        rc = c.stop()
    assert rc == 0, c.log()
    out = "\n".join(c.out)
    lost = [l for l in c.out if LOST_RE.search(l)]
    connected = [l for l in c.out if CONNECTED_RE.search(l)]
    assert len(lost) >= 5 and len(connected) >= 6, out
    stop = next(STOPPING_RE.search(l) for l in c.out if STOPPING_RE.search(l))
    assert int(stop.group(4)) == 0, out                   # bad
    msgs_at_last_connect = int(CONNECTED_RE.search(connected[-1]).group(4))
    assert int(stop.group(3)) > msgs_at_last_connect, out  # verified after the last flap
    assert int(stop.group(7)) == baseline, out            # no mbuf leak
    assert not (DPDK_RUN / prefix).exists()


def test_double_construct_aborts_on_double_free_at_first_reconnect(net):
    prefix, c = client(net, "dblc", "--bug=double-construct")
    try:
        c.wait_line(CONNECTED_RE, 10)
        net.flap()
        rc = c.wait(10)
    finally:
        c.stop()
    assert rc == -signal.SIGABRT, c.log()
    err = "\n".join(c.err)
    assert re.search(r"double free|free\(\): invalid pointer", err), c.log()
    assert sum(1 for l in c.out if CONNECTED_RE.search(l)) == 1, c.log()
    assert sum(1 for l in c.out if LOST_RE.search(l)) == 1, c.log()


def test_null_pop_segfaults(net):
    prefix, c = client(net, "npop", "--bug=null-pop")
    try:
        c.wait_line(CONNECTED_RE, 10)
        t0 = time.monotonic()
        rc = c.wait(5)
    finally:
        c.stop()
    assert rc == -signal.SIGSEGV, c.log()
    assert time.monotonic() - t0 < 3.0


def test_kill9_leaves_only_empty_runtime_dir(net):
    prefix, c = client(net, "kill9")
    try:
        c.wait_line(CONNECTED_RE, 10)
        c.proc.kill()
        rc = c.wait(5)
    finally:
        c.stop()
    assert rc == -signal.SIGKILL
    d = DPDK_RUN / prefix
    # --no-shconf --no-telemetry: no config, mp_socket or telemetry files;
    # the empty directory is what faultd sweeps.
    assert not d.exists() or list(d.iterdir()) == [], list(d.iterdir())
    # The same prefix starts again as a primary, no hang.
    prefix2, c2 = client(net, "kill9", "--duration-s", "2")
    assert c2.wait(20) == 0, c2.log()
    assert not d.exists()
