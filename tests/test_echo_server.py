"""The bundled echo server (harness/echo-server): TCP and UDP echo on
loopback, a clean stop on SIGTERM, and exit 2 for a bad option.

Every server a test starts is ended in `finally` through its own Popen
handle; traffic stays on 127.0.0.1.
"""
import concurrent.futures
import os
import pathlib
import queue
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import assert_no_sanitizer_report, sanitizer_env

LISTENING_RE = re.compile(r"^echo-server: listening tcp=(\S+) udp=(\S+)$")
STOPPING_RE = re.compile(
    r"^echo-server: stopping: conns=(\d+) tcp_bytes=(\d+) udp_datagrams=(\d+)$")
READY_TIMEOUT = 10.0
IO_TIMEOUT = 10.0


def repo_root():
    """The directory above this file that holds the Makefile and harness/."""
    for d in pathlib.Path(__file__).resolve().parents:
        if (d / "Makefile").is_file() and (d / "harness").is_dir():
            return d
    raise RuntimeError(f"no repository root above {__file__}")


def echo_server_bin():
    build = repo_root() / os.environ.get("FAULTD_BUILD", "build")
    return build / "harness" / "echo-server"


def split_hostport(s):
    """'127.0.0.1:7000' or '[::1]:7000' -> (host, port)."""
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


class EchoServer:
    """One echo-server process; its output is collected by reader threads
    and logged with a prefix when the test ends."""

    def __init__(self, tmp_path, *args):
        self.ready_file = tmp_path / "echo.ready"
        self.cmd = [str(echo_server_bin()), "--bind", "127.0.0.1", "--port", "0",
                    "--ready-file", str(self.ready_file), *args]
        self.proc = None
        self.lines = queue.Queue()
        self.stdout = []
        self.stderr = []
        self.threads = []

    def _read(self, stream, sink, to_queue):
        for line in stream:
            sink.append(line)
            if to_queue:
                self.lines.put(line.rstrip("\n"))

    def start(self):
        binary = echo_server_bin()
        assert binary.exists(), f"{binary} not built (make {binary.relative_to(repo_root())})"
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=sanitizer_env())
        for stream, sink, q in ((self.proc.stdout, self.stdout, True),
                                (self.proc.stderr, self.stderr, False)):
            t = threading.Thread(target=self._read, args=(stream, sink, q), daemon=True)
            t.start()
            self.threads.append(t)
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.ready_file.exists():
            assert self.proc.poll() is None, f"echo-server exited early: {self.output()}"
            assert time.monotonic() < deadline, f"echo-server not ready: {self.output()}"
            time.sleep(0.02)
        assert self.ready_file.read_text() == "ready\n"
        # The listening line is flushed before the ready file is written.
        line = self.next_line()
        m = LISTENING_RE.match(line)
        assert m, f"unexpected first line {line!r}"
        self.tcp = None if m.group(1) == "-" else split_hostport(m.group(1))
        self.udp = None if m.group(2) == "-" else split_hostport(m.group(2))
        return self

    def next_line(self, timeout=READY_TIMEOUT):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output line within {timeout} s: {self.output()}")

    def wait(self, timeout=IO_TIMEOUT):
        rc = self.proc.wait(timeout=timeout)
        for t in self.threads:
            t.join(timeout=timeout)
        return rc

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
                print(f"[echo-server] {line}", end="")
            for line in self.stderr:
                print(f"[echo-server:err] {line}", end="")
        assert_no_sanitizer_report("".join(self.stderr), "echo-server stderr")


def tcp_roundtrip(addr, payload):
    """Send payload while reading the echo on another thread (so neither
    side's buffers fill up), half-close, and return all that came back."""
    got = bytearray()
    with socket.create_connection(addr, timeout=IO_TIMEOUT) as s:
        def reader():
            while len(got) < len(payload):
                chunk = s.recv(65536)
                if not chunk:
                    break
                got.extend(chunk)
        t = threading.Thread(target=reader)
        t.start()
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        t.join(timeout=IO_TIMEOUT)
        assert not t.is_alive(), f"echo incomplete: {len(got)} of {len(payload)} bytes"
    return bytes(got)


def test_tcp_echo_100k(tmp_path):
    srv = EchoServer(tmp_path, "--no-udp")
    try:
        srv.start()
        assert srv.tcp[0] == "127.0.0.1" and srv.tcp[1] > 0 and srv.udp is None
        payload = os.urandom(100 * 1024)
        assert tcp_roundtrip(srv.tcp, payload) == payload
    finally:
        srv.stop()


def test_udp_echo(tmp_path):
    srv = EchoServer(tmp_path)
    try:
        srv.start()
        assert srv.udp[0] == "127.0.0.1" and srv.udp[1] > 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1.0)
            msg = b"faultd-udp-" + os.urandom(16).hex().encode()
            # Loopback does not lose datagrams in practice, but retry rather
            # than flake if it ever does.
            for _ in range(5):
                s.sendto(msg, srv.udp)
                try:
                    data, peer = s.recvfrom(65536)
                    break
                except socket.timeout:
                    continue
            else:
                raise AssertionError(f"no UDP echo: {srv.output()}")
        assert data == msg
        assert peer == srv.udp
    finally:
        srv.stop()


def test_tcp_20_concurrent_clients(tmp_path):
    srv = EchoServer(tmp_path, "--no-udp")
    try:
        srv.start()
        barrier = threading.Barrier(20, timeout=IO_TIMEOUT)

        def client(i):
            payload = f"client {i} ".encode() * 1000
            got = bytearray()
            with socket.create_connection(srv.tcp, timeout=IO_TIMEOUT) as s:
                barrier.wait()  # all 20 connected at once before anyone sends
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got.extend(chunk)
            return i, bytes(got) == payload

        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(client, range(20)))
        assert [ok for _, ok in results] == [True] * 20, results
    finally:
        srv.stop()


def test_sigterm_exits_0_with_summary(tmp_path):
    srv = EchoServer(tmp_path)
    try:
        srv.start()
        payload = b"x" * 4096
        assert tcp_roundtrip(srv.tcp, payload) == payload
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2.0)
            s.sendto(b"ping", srv.udp)
            assert s.recvfrom(64)[0] == b"ping"
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.wait() == 0, srv.output()
        m = STOPPING_RE.match(srv.next_line())
        assert m, srv.output()
        assert (int(m.group(1)), int(m.group(2)), int(m.group(3))) == (1, len(payload), 1)
    finally:
        srv.stop()


def test_bad_option_exits_2():
    proc = subprocess.Popen([str(echo_server_bin()), "--no-such-option"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=sanitizer_env())
    try:
        out, err = proc.communicate(timeout=IO_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 2, (out, err)
    assert "--no-such-option" in err
    assert "listening" not in out
