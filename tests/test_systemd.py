"""faultd under systemd, without systemd: this machine's PID 1 is not
systemd, so the tests play its side of the two protocols faultd speaks.

- sd_notify: systemd binds a datagram socket and names it in NOTIFY_SOCKET;
  the test does the same and reads READY=1, WATCHDOG=1 and STOPPING=1.
- the journal: systemd connects a service's stderr to journald and names that
  stream in JOURNAL_STREAM; libsystemd then sends entries as datagrams to
  /run/systemd/journal/socket. The test runs faultd in a private mount
  namespace where that path is a socket the test bound, so it reads the
  entries' fields (PRIORITY, RUN_ID...) exactly as journald would receive
  them, and the host's /run is not touched.
"""
import json
import os
import pathlib
import signal
import socket
import struct
import subprocess
import time

from conftest import FAULTCTL, FAULTD, REPO, sanitizer_env, write_scenario


def notify_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    return s


def recv_until(sock, want, timeout):
    """Datagrams until one containing the line @want, or @timeout."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            msg = sock.recv(65536).decode()
        except socket.timeout:
            break
        got.append(msg)
        if want in msg.split("\n"):
            return msg, got
    return None, got


def start(tmp_path, env_extra, prefix=(), stderr=subprocess.PIPE):
    env = sanitizer_env()
    env.update(env_extra)
    cmd = [*prefix, str(FAULTD), "--socket", str(tmp_path / "faultd.sock"),
           "--runs-dir", str(tmp_path / "runs"), "--journal-dir", str(tmp_path / "journal")]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                            text=True)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("faultd did not exit on SIGTERM")
    return proc.returncode


def status(tmp_path):
    return subprocess.run([str(FAULTCTL), "--socket", str(tmp_path / "faultd.sock"), "status"],
                          capture_output=True, text=True, timeout=10)


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_ready_after_journal_sweep_and_socket_answers(tmp_path):
    # A killed predecessor's undo journal: READY=1 may come only once it is
    # replayed, and the control socket must answer at once, with no retry.
    jdir = tmp_path / "journal"
    jdir.mkdir()
    stale = jdir / "abc123.journal"
    stale.write_text(f"owner {dead_pid()}\n")
    sock = notify_socket(tmp_path / "notify")
    proc = start(tmp_path, {"NOTIFY_SOCKET": str(tmp_path / "notify")})
    try:
        ready, got = recv_until(sock, "READY=1", 15)
        assert ready, f"no READY=1 from faultd; got {got}"
        assert not stale.exists(), "READY=1 came before the journal sweep"
        res = status(tmp_path)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["pid"] == proc.pid
        assert f"MAINPID={proc.pid}" in ready.split("\n")
        # No watchdog was asked for: none is sent.
        extra, _ = recv_until(sock, "WATCHDOG=1", 0.5)
        assert extra is None
        proc.send_signal(signal.SIGTERM)
        stopping, got = recv_until(sock, "STOPPING=1", 10)
        assert stopping, f"no STOPPING=1 on SIGTERM; got {got}"
        assert proc.wait(timeout=30) == 0
    finally:
        stop(proc)
        sock.close()


def test_watchdog_pings_from_the_loop(tmp_path):
    sock = notify_socket(tmp_path / "notify")
    proc = start(tmp_path, {"NOTIFY_SOCKET": str(tmp_path / "notify"),
                            "WATCHDOG_USEC": "400000"})
    try:
        ready, got = recv_until(sock, "READY=1", 15)
        assert ready, got
        t0 = time.monotonic()
        pings = 0
        while time.monotonic() - t0 < 1.5:
            msg, _ = recv_until(sock, "WATCHDOG=1", 1.0)
            assert msg, "the watchdog stopped"
            pings += 1
        # Every 200 ms (half WATCHDOG_USEC): 7 in 1.5 s; slack for a busy host.
        assert pings >= 4, pings
    finally:
        assert stop(proc) == 0
        sock.close()


def test_watchdog_for_another_pid_is_not_ours(tmp_path):
    sock = notify_socket(tmp_path / "notify")
    proc = start(tmp_path, {"NOTIFY_SOCKET": str(tmp_path / "notify"),
                            "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
    try:
        ready, got = recv_until(sock, "READY=1", 15)
        assert ready, got
        msg, _ = recv_until(sock, "WATCHDOG=1", 0.6)
        assert msg is None
    finally:
        assert stop(proc) == 0
        sock.close()


def parse_journal_entry(data):
    """journald's native protocol: KEY=VALUE lines, or KEY\\n<le64 size>VALUE\\n
    for values with newlines."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            fields[k.decode()] = v.decode()
            i = nl + 1
        else:
            size = struct.unpack("<Q", data[nl + 1:nl + 9])[0]
            fields[line.decode()] = data[nl + 9:nl + 9 + size].decode()
            i = nl + 9 + size + 1
    return fields


def journal_namespace(fake_run_systemd):
    """A command prefix: faultd in a private mount namespace whose
    /run/systemd is @fake_run_systemd, then exec'd (its pid stays faultd's)."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            f'mount --bind "{fake_run_systemd}" /run/systemd && exec "$0" "$@"']


def journal_stream_env(stderr_file):
    st = os.fstat(stderr_file.fileno())
    return {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}


def test_journal_entries_carry_priority_and_run_id(tmp_path):
    fake = tmp_path / "run-systemd"
    (fake / "journal").mkdir(parents=True)
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    journal.bind(str(fake / "journal" / "socket"))
    journal.settimeout(0.2)
    notify = notify_socket(tmp_path / "notify")
    scen = write_scenario(tmp_path / "s.json", {
        "name": "journal-fields", "seed": 1, "duration_s": 10, "sample_ms": 200,
        "workloads": [{"name": "w", "kind": "exec", "cmd": ["/bin/sh", "-c", "sleep 0.5"]}]})
    with open(tmp_path / "stderr", "w+") as err:
        proc = start(tmp_path, {"NOTIFY_SOCKET": str(tmp_path / "notify"),
                                **journal_stream_env(err)},
                     prefix=journal_namespace(fake), stderr=err)
        try:
            ready, got = recv_until(notify, "READY=1", 15)
            assert ready, got
            res = subprocess.run([str(FAULTCTL), "--socket", str(tmp_path / "faultd.sock"),
                                  "run", str(scen)], capture_output=True, text=True, timeout=60)
            assert res.returncode == 0, res
            run_id = next(l.split()[1].rstrip(":") for l in res.stdout.splitlines()
                          if l.startswith("run "))
            assert stop(proc) == 0
            entries = []
            while True:
                try:
                    entries.append(parse_journal_entry(journal.recv(1 << 20)))
                except socket.timeout:
                    break
        finally:
            stop(proc)
            journal.close()
            notify.close()
        err.seek(0)
        stderr = err.read()
    assert entries, f"nothing reached the journal socket; stderr:\n{stderr}"
    for e in entries:
        assert e["SYSLOG_IDENTIFIER"] == "faultd"
        assert e["PRIORITY"] in {"3", "4", "6", "7"}
        assert e["CODE_FUNC"] and e["MESSAGE"].startswith(e["CODE_FUNC"] + ": ")
    ready_line = [e for e in entries if " ready (pid " in e["MESSAGE"]]
    assert ready_line and ready_line[0]["PRIORITY"] == "6" and "RUN_ID" not in ready_line[0]
    of_run = [e for e in entries if e.get("RUN_ID") == run_id]
    assert any("PASS" in e["MESSAGE"] for e in of_run), [e["MESSAGE"] for e in entries]
    assert all(run_id in e["MESSAGE"] for e in of_run)
    # Nothing went to the stream as well: one copy, in the journal.
    assert " ready (pid " not in stderr, stderr


def test_journal_refused_falls_back_to_prefixed_stream(tmp_path):
    # JOURNAL_STREAM names stderr but no journald listens: each line goes to
    # the stream with its "<N>" priority prefix, which journald reads.
    fake = tmp_path / "run-systemd"
    fake.mkdir()
    notify = notify_socket(tmp_path / "notify")
    with open(tmp_path / "stderr", "w+") as err:
        proc = start(tmp_path, {"NOTIFY_SOCKET": str(tmp_path / "notify"),
                                **journal_stream_env(err)},
                     prefix=journal_namespace(fake), stderr=err)
        try:
            ready, got = recv_until(notify, "READY=1", 15)
            assert ready, got
        finally:
            assert stop(proc) == 0
            notify.close()
        err.seek(0)
        lines = err.read().splitlines()
    ready_line = [l for l in lines if " ready (pid " in l]
    assert ready_line and ready_line[0].startswith("<6>faultd[info] main: faultd "), lines


def test_plain_stderr_without_journal_stream(tmp_path):
    # JOURNAL_STREAM inherited from a parent whose stderr went elsewhere is
    # not this process's journal: plain timestamped lines, no "<N>".
    notify = notify_socket(tmp_path / "notify")
    with open(tmp_path / "stderr", "w+") as err:
        proc = start(tmp_path, {"NOTIFY_SOCKET": str(tmp_path / "notify"),
                                "JOURNAL_STREAM": "1:1"}, stderr=err)
        try:
            ready, got = recv_until(notify, "READY=1", 15)
            assert ready, got
        finally:
            assert stop(proc) == 0
            notify.close()
        err.seek(0)
        text = err.read()
    line = next(l for l in text.splitlines() if " ready (pid " in l)
    assert not line.startswith("<") and "faultd[info] main: faultd " in line, text
