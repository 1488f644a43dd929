"""The bundled lwIP client (harness/lwip-client): incident 2's device on a
tap. It keeps a session with the echo server, survives link flaps and
reconnects after each; with --bug=shutdown-close every teardown leaks a
port-layer slot until "create socket failed"; bad options exit 2.

Each test builds its own namespace (fdlw...) with a tap whose kernel side
holds the server's address, and deletes it in `finally`. Every process is
ended through its own Popen handle.
"""
import os
import pathlib
import queue
import re
import subprocess
import threading
import time

import pytest

from conftest import assert_no_sanitizer_report

SERVER_IP = "198.18.0.1"
CLIENT_ADDR = "198.18.0.2/24"
PORT = 7000
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

CONNECTED_RE = re.compile(
    r"^lwip-client: connected attempt=(\d+) connects=(\d+) failures=(\d+) "
    r"slots_used=(\d+) slot=(\d+)")
LOST_RE = re.compile(r"^lwip-client: (connection lost|connect failed) after [\d.]+ s \((\w+)\)")
CREATE_FAILED_RE = re.compile(r"^lwip-client: create socket failed \(slots (\d+)/(\d+) in use\)")
STOPPING_RE = re.compile(
    r"^lwip-client: stopping: attempts=(\d+) connects=(\d+) failures=(\d+) slots_used=(\d+)$")
SERVER_STOPPING_RE = re.compile(r"^echo-server: stopping: conns=(\d+) tcp_bytes=(\d+)")

# Short timings so a flap is noticed within half a second and the whole
# file runs in well under 40 s.
FAST = ["--timeout-ms", "400", "--keepalive-ms", "100", "--max-backoff-ms", "200"]


def our_prefix():
    return f"fdlw{os.getpid() % 100000}"


@pytest.fixture(autouse=True)
def no_namespace_left():
    """conftest checks faultd's own names only; this checks ours."""
    yield
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    left = [l.split()[0] for l in out.splitlines() if l.startswith(our_prefix())]
    for ns in left:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    assert not left, f"namespaces left behind: {left}"


def repo_root():
    for d in pathlib.Path(__file__).resolve().parents:
        if (d / "Makefile").is_file() and (d / "harness").is_dir():
            return d
    raise RuntimeError(f"no repository root above {__file__}")


def harness_bin(name):
    build = repo_root() / os.environ.get("FAULTD_BUILD", "build")
    binary = build / "harness" / name
    assert binary.exists(), f"{binary} not built (make build/harness/{name})"
    return binary


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


class Netns:
    """A namespace with a persistent tap, kernel side up at SERVER_IP, as
    faultd sets it up for the client."""

    def __init__(self, tag):
        # Names stay within IFNAMSIZ and apart from other test runs.
        self.name = f"{our_prefix()}{tag}"
        self.tap = f"fdlwt{os.getpid() % 100000}{tag}"

    def __enter__(self):
        ip("netns", "add", self.name)
        try:
            ip("-n", self.name, "link", "set", "lo", "up")
            ip("-n", self.name, "tuntap", "add", "dev", self.tap, "mode", "tap")
            ip("-n", self.name, "addr", "add", f"{SERVER_IP}/24", "dev", self.tap)
            ip("-n", self.name, "link", "set", self.tap, "up")
        except BaseException:
            self.delete()
            raise
        return self

    def __exit__(self, *exc):
        self.delete()

    def delete(self):
        # Deleting the namespace deletes the tap in it.
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)

    def link(self, state):
        ip("-n", self.name, "link", "set", self.tap, state)


class Proc:
    """A process in the namespace; its output lines are queued with their
    arrival time and logged with a prefix when it is stopped."""

    def __init__(self, label, netns, argv):
        self.label = label
        self.stdout, self.stderr = [], []
        self.lines = queue.Queue()
        self.stopped = False
        self.proc = subprocess.Popen(["ip", "netns", "exec", netns.name, *map(str, argv)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.threads = []
        for stream, sink, q in ((self.proc.stdout, self.stdout, True),
                                (self.proc.stderr, self.stderr, False)):
            t = threading.Thread(target=self._read, args=(stream, sink, q), daemon=True)
            t.start()
            self.threads.append(t)

    def _read(self, stream, sink, to_queue):
        for line in stream:
            sink.append(line)
            if to_queue:
                self.lines.put(line.rstrip("\n"))

    def output(self):
        return f"stdout:\n{''.join(self.stdout)}stderr:\n{''.join(self.stderr)}"

    def expect(self, regex, timeout):
        """The first line from now on that matches regex, within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"{self.label}: no line matching {regex.pattern!r} " \
                             f"within {timeout} s\n{self.output()}"
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            m = regex.match(line)
            if m:
                return m

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM, then the exit code; SIGKILL (and a failure) if it
        hangs. A second call only returns the code."""
        if self.stopped:
            return self.proc.returncode
        self.stopped = True
        hung = False
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                hung = True
                self.proc.kill()
                self.proc.wait()
        for t in self.threads:
            t.join(timeout=STOP_TIMEOUT)
        for line in self.stdout:
            print(f"[{self.label}] {line}", end="")
        for line in self.stderr:
            print(f"[{self.label}:err] {line}", end="")
        assert_no_sanitizer_report("".join(self.stderr), f"{self.label} stderr")
        assert not hung, f"{self.label} ignored SIGTERM"
        return self.proc.returncode


def start_server(netns, tmp_path):
    ready = tmp_path / f"echo-{netns.name}.ready"
    srv = Proc("echo-server", netns, [harness_bin("echo-server"), "--bind", SERVER_IP,
                                      "--port", PORT, "--no-udp", "--ready-file", ready])
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready.exists():
        if not srv.alive() or time.monotonic() > deadline:
            srv.stop()
            raise AssertionError(f"echo-server not ready:\n{srv.output()}")
        time.sleep(0.02)
    return srv


def start_client(netns, *args):
    return Proc("lwip-client", netns, [harness_bin("lwip-client"), "--tap", netns.tap,
                                       "--addr", CLIENT_ADDR,
                                       "--server", f"{SERVER_IP}:{PORT}", *args])


def stop_all(*procs):
    """Stops every process (client first) even if one stop fails; returns
    their exit codes."""
    codes, first_error = [], None
    for p in procs:
        if p is None:
            codes.append(None)
            continue
        try:
            codes.append(p.stop())
        except AssertionError as e:
            codes.append(None)
            first_error = first_error or e
    if first_error:
        raise first_error
    return codes


def run_in_netns(tag, tmp_path, client_args, body):
    """Namespace, echo server and client around body(ns, client); returns
    (client exit code, client, server) once everything is stopped and the
    namespace deleted."""
    srv = cli = None
    with Netns(tag) as ns:
        try:
            srv = start_server(ns, tmp_path)
            cli = start_client(ns, *client_args)
            body(ns, cli)
            assert cli.alive(), f"lwip-client exited:\n{cli.output()}"
        finally:
            codes = stop_all(cli, srv)
    assert codes[1] == 0, f"echo-server exited {codes[1]}:\n{srv.output()}"
    return codes[0], cli, srv


def summary(client):
    for line in client.stdout:
        m = STOPPING_RE.match(line.rstrip("\n"))
        if m:
            return tuple(int(x) for x in m.groups())
    raise AssertionError(f"no summary line:\n{client.output()}")


def flap(netns, down_s):
    netns.link("down")
    time.sleep(down_s)
    netns.link("up")



def test_connects_and_keeps_alive(tmp_path):
    def body(ns, cli):
        m = cli.expect(CONNECTED_RE, timeout=5)
        assert m.group(3) == "0" and m.group(4) == "1", m.group(0)
        time.sleep(2)

    code, cli, srv = run_in_netns("a", tmp_path, FAST, body)
    assert code == 0, cli.output()
    attempts, connects, failures, slots_used = summary(cli)
    assert connects >= 1 and failures == 0 and slots_used == 0, cli.output()
    # About 20 keepalives in 2 s; ask for half, as "PING n\n" is 7+ bytes.
    m = next(filter(None, map(SERVER_STOPPING_RE.match, srv.stdout)), None)
    assert m, srv.output()
    assert int(m.group(2)) >= len(f"CONNECT 198.18.0.2 1\n") + 10 * 7, m.group(0)


def test_reconnects_after_each_flap(tmp_path):
    def body(ns, cli):
        cli.expect(CONNECTED_RE, timeout=5)
        for i in range(5):
            ns.link("down")
            # A 400 ms reply timeout notices the dead link well within the
            # 800 ms it stays down.
            lost = cli.expect(LOST_RE, timeout=2)
            assert lost.group(2) == "ETIMEDOUT", lost.group(0)
            time.sleep(0.8)
            ns.link("up")
            m = cli.expect(CONNECTED_RE, timeout=3)
            assert int(m.group(4)) <= 1, f"flap {i + 1}: {m.group(0)}"
            time.sleep(0.3)

    code, cli, _ = run_in_netns("b", tmp_path, FAST, body)
    assert code == 0, cli.output()
    attempts, connects, failures, slots_used = summary(cli)
    assert connects >= 6 and failures >= 5 and slots_used <= 1, cli.output()
    assert not any("create socket failed" in l for l in cli.stdout), cli.output()


def test_shutdown_close_bug_exhausts_slots(tmp_path):
    def body(ns, cli):
        cli.expect(CONNECTED_RE, timeout=5)
        for _ in range(8):
            flap(ns, 0.8)
            if any("create socket failed" in l for l in cli.stdout):
                break
            time.sleep(0.6)
        m = cli.expect(CREATE_FAILED_RE, timeout=3)
        assert m.groups() == ("4", "4"), m.group(0)
        # The table stays full and the client keeps trying, alive.
        cli.expect(CREATE_FAILED_RE, timeout=3)
        cli.expect(CREATE_FAILED_RE, timeout=3)

    code, cli, _ = run_in_netns("c", tmp_path, [*FAST, "--bug=shutdown-close", "--slots", "4"],
                                body)
    assert code == 0, cli.output()
    attempts, connects, failures, slots_used = summary(cli)
    assert slots_used == 4, cli.output()
    # Slots were taken one after another, lowest index first, and never
    # given back.
    slots = [int(m.group(5)) for m in map(CONNECTED_RE.match, cli.stdout) if m]
    assert slots == sorted(set(slots)) and slots[0] == 0, cli.output()


@pytest.mark.parametrize("args, named", [
    (["--slots", "0"], "--slots"),
    (["--bug=other"], "--bug"),
    (["--addr", "198.18.0.2"], "--addr"),
    (["--server", "198.18.0.1"], "--server"),
    (["--timeout-ms", "x"], "--timeout-ms"),
    (["--bogus"], "bogus"),
])
def test_bad_option_exits_2(args, named):
    base = {"--tap": "fdlwnone", "--addr": CLIENT_ADDR, "--server": f"{SERVER_IP}:{PORT}"}
    for a in args:
        base.pop(a.split("=")[0], None)
    argv = [str(harness_bin("lwip-client"))] + [x for kv in base.items() for x in kv] + args
    res = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    assert res.returncode == 2, res
    assert named in res.stderr, res.stderr
    assert res.stdout == ""


def test_missing_required_option_exits_2():
    res = subprocess.run([str(harness_bin("lwip-client")), "--addr", CLIENT_ADDR,
                          "--server", f"{SERVER_IP}:{PORT}"],
                         capture_output=True, text=True, timeout=10)
    assert res.returncode == 2 and "--tap" in res.stderr, res
