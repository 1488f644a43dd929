"""faultd as a daemon: the control socket, the run queue, clients that
misbehave, and shutdown in the middle of a run."""
import concurrent.futures
import json
import os
import pathlib
import signal
import socket
import subprocess
import time

import jsonschema

from conftest import (REPO, FAULTCTL, assert_nothing_left, invariant, load_report,
                      pids_alive, write_scenario)

REPORT_SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())


def scenario(name, cmd, **extra):
    return {"name": name, "seed": 5, "duration_s": 30, "sample_ms": 200,
            "workloads": [{"name": "w", "kind": "exec", "cmd": cmd}], **extra}


def raw(sock_path, payload, read=True, timeout=5):
    """Send raw bytes on the control socket; return the reply lines."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(sock_path))
    try:
        s.sendall(payload)
        if not read:
            return []
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return [json.loads(l) for l in data.decode().splitlines() if l]
    finally:
        s.close()


def run_id_from(stdout):
    for line in stdout.splitlines():
        if line.startswith("run ") and ":" in line:
            return line.split()[1].rstrip(":")
    raise AssertionError(f"no run id in:\n{stdout}")


def test_run_through_daemon_streams_cycles_and_reports(daemon, tmp_path, progs):
    path = write_scenario(tmp_path / "s.json",
                          scenario("d-pass", ["/bin/sh", "-c", "sleep 1.2; exit 0"]))
    res = daemon.ctl("run", path)
    assert res.returncode == 0, res
    assert res.stdout.count(" cycle ") >= 4, res.stdout
    run_id = run_id_from(res.stdout)
    rep = load_report(daemon.runs_dir, run_id)
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert rep["verdict"] == "PASS"
    assert_nothing_left(rep)
    # report, list and status answer about it.
    res = daemon.ctl("report", run_id, "--format", "json")
    assert res.returncode == 0 and json.loads(res.stdout)["run_id"] == run_id
    res = daemon.ctl("report", run_id)
    assert "verdict: PASS" in res.stdout
    res = daemon.ctl("list")
    assert run_id in res.stdout and "PASS" in res.stdout
    res = daemon.ctl("status", run_id)
    assert json.loads(res.stdout)["state"] == "done"
    res = daemon.ctl("status")
    assert json.loads(res.stdout)["pid"] == daemon.proc.pid


def test_crash_through_daemon(daemon, tmp_path, progs):
    path = write_scenario(tmp_path / "c.json", scenario("d-crash", [str(progs / "grandchild_segv")]))
    res = daemon.ctl("run", path)
    assert res.returncode == 1, res
    rep = load_report(daemon.runs_dir, run_id_from(res.stdout))
    assert invariant(rep, "no_crash")["evidence"][0]["signal"] == "SIGSEGV"


def test_twenty_concurrent_clients(daemon, tmp_path, progs):
    path = write_scenario(tmp_path / "q.json",
                          scenario("d-queue", [str(progs / "exit_code"), "0"]))

    def one(i):
        if i % 4 == 0:
            return daemon.ctl("run", "--quiet", path, timeout=120)
        if i % 4 == 1:
            return daemon.ctl("validate", path)
        if i % 4 == 2:
            return daemon.ctl("status")
        return daemon.ctl("version")

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    for i, res in enumerate(results):
        assert res.returncode == 0, (i, res)
    runs = [d for d in daemon.runs_dir.iterdir() if d.is_dir()]
    assert len(runs) == 5
    for d in runs:
        rep = load_report(daemon.runs_dir, d.name)
        assert rep["verdict"] == "PASS"
        assert_nothing_left(rep)
    # One run at a time by default: no two runs overlapped.
    spans = sorted((load_report(daemon.runs_dir, d.name)["started_at"],
                    load_report(daemon.runs_dir, d.name)["ended_at"]) for d in runs)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start, spans


def test_garbage_and_hangups_do_not_hurt(daemon, tmp_path):
    sock = daemon.sock
    replies = raw(sock, b"this is not json\n")
    assert replies[0]["ok"] is False and "bad request" in replies[0]["error"]
    replies = raw(sock, b"[1,2,3]\n")
    assert replies[0]["ok"] is False
    replies = raw(sock, b'{"cmd": "launch-missiles"}\n')
    assert replies[0]["ok"] is False and "unknown command" in replies[0]["error"]
    replies = raw(sock, b'{"nocmd": 1}\n')
    assert replies[0]["ok"] is False
    replies = raw(sock, b'{"cmd": "report", "run_id": "../../etc/passwd"}\n')
    assert replies[0]["ok"] is False and "not a run id" in replies[0]["error"]
    replies = raw(sock, b'{"cmd": "stop", "run_id": "abcdef"}\n')
    assert replies[0]["ok"] is False
    # Half a request, then hang up.
    raw(sock, b'{"cmd": "run", "scenario": "{\\"na', read=False)
    # A full run request whose client hangs up at once: the run still ends.
    doc = json.dumps(scenario("hangup", ["/bin/true"]))
    raw(sock, json.dumps({"cmd": "run", "scenario": doc, "watch": True}).encode() + b"\n",
        read=False)
    # An oversized line is refused, not buffered forever.
    big = b'{"cmd": "validate", "scenario": "' + b"x" * (5 << 20)
    try:
        replies = raw(sock, big, timeout=10)
        assert replies and replies[0]["ok"] is False
    except (BrokenPipeError, ConnectionResetError):
        pass
    # Still serving.
    assert daemon.ctl("version").returncode == 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        st = json.loads(daemon.ctl("status").stdout)
        if not st["running"] and st["queued"] == 0:
            break
        time.sleep(0.2)
    assert not st["running"]


def test_non_root_peer_is_refused(tmp_path):
    """A client running as nobody is refused by SO_PEERCRED, even when the
    socket's mode would let it connect."""
    import shutil
    import tempfile
    from conftest import Daemon
    pub = pathlib.Path(tempfile.mkdtemp(prefix="faultd-peer-", dir="/tmp"))
    os.chmod(pub, 0o755)
    d = Daemon(tmp_path, sock=pub / "faultd.sock")
    try:
        # faultd answers a refused peer at once and closes: read, do not send.
        code = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]);"
                "print(s.recv(4096).decode())")
        # At 0600 the kernel refuses nobody before faultd sees it.
        proc = subprocess.run(["/usr/bin/python3", "-c", code, str(d.sock)],
                              capture_output=True, text=True, timeout=10,
                              user="nobody", group="nogroup")
        assert proc.returncode != 0 and "Permission denied" in proc.stderr, proc
        os.chmod(d.sock, 0o666)
        proc = subprocess.run(["/usr/bin/python3", "-c", code, str(d.sock)],
                              capture_output=True, text=True, timeout=10,
                              user="nobody", group="nogroup")
        assert "permission denied: faultd serves root only" in proc.stdout, proc
        assert d.ctl("version").returncode == 0
        assert "refused peer" in d.log
    finally:
        assert d.stop() == 0
        shutil.rmtree(pub, ignore_errors=True)


def test_socket_mode_is_0600(daemon):
    assert daemon.sock.stat().st_mode & 0o777 == 0o600


def test_stop_a_run(daemon, tmp_path, progs):
    path = write_scenario(tmp_path / "long.json", scenario("d-stop", [str(progs / "hang")]))
    proc = subprocess.Popen([str(FAULTCTL), "--socket", str(daemon.sock), "run", path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        run_id = None
        while time.monotonic() < deadline and not run_id:
            st = json.loads(daemon.ctl("status").stdout)
            if st["running"] and st["running"][0]["state"] == "running":
                run_id = st["running"][0]["run_id"]
            time.sleep(0.1)
        assert run_id
        res = daemon.ctl("stop", run_id)
        assert res.returncode == 0, res
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 2, (out, err)  # INCONCLUSIVE: cut short
    rep = load_report(daemon.runs_dir, run_id)
    assert rep["verdict"] == "INCONCLUSIVE"
    assert rep["stop_reason"] == "stopped by request"
    assert_nothing_left(rep)


def test_sigterm_during_run_writes_report_and_leaves_nothing(tmp_path, progs):
    from conftest import Daemon, assert_no_sanitizer_report, owned_cgroups
    d = Daemon(tmp_path)
    try:
        path = write_scenario(tmp_path / "t.json", scenario(
            "d-term", [str(progs / "hang"), "--ignore-term", "--fork", "2"]))
        client = subprocess.Popen([str(FAULTCTL), "--socket", str(d.sock), "run", path],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "workload 'w' started" not in d.log:
            time.sleep(0.05)
        time.sleep(0.5)
        assert d.stop() == 0
        out, err = client.communicate(timeout=30)
    finally:
        d.stop()
    assert_no_sanitizer_report(d.log, "faultd output")
    runs = [x for x in d.runs_dir.iterdir() if x.is_dir()]
    assert len(runs) == 1
    rep = load_report(d.runs_dir, runs[0].name)
    assert rep["verdict"] == "INCONCLUSIVE"
    assert rep["stop_reason"] == "faultd received SIGTERM"
    assert_nothing_left(rep)
    assert len([p for p in rep["processes"] if p["comm"] == "hang"]) == 3
    assert not owned_cgroups(d.proc.pid)
    assert not d.sock.exists()
    assert client.returncode == 2, (out, err)


def test_second_daemon_on_same_socket_is_refused(daemon, tmp_path):
    from conftest import FAULTD
    proc = subprocess.run([str(FAULTD), "--socket", str(daemon.sock),
                           "--runs-dir", str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode == 3
    assert "another faultd is serving it" in proc.stderr
    assert daemon.ctl("version").returncode == 0


def test_stale_socket_file_is_taken_over(tmp_path):
    from conftest import Daemon
    sock = tmp_path / "faultd.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock))
    s.close()  # a socket file nobody listens on, as a killed faultd leaves
    d = Daemon(tmp_path)
    try:
        assert d.ctl("version").returncode == 0
    finally:
        assert d.stop() == 0


def test_faultctl_without_daemon_says_so(tmp_path):
    from conftest import faultctl
    res = faultctl("status", socket=tmp_path / "none.sock")
    assert res.returncode == 3
    assert "cannot connect to faultd" in res.stderr and "--local" in res.stderr


def test_help_on_every_command():
    from conftest import faultctl
    assert faultctl("--help").returncode == 0
    for cmd in ("run", "validate", "list", "status", "stop", "report"):
        res = faultctl(cmd, "--help")
        assert res.returncode == 0, (cmd, res)
        assert "usage: faultctl " + cmd in res.stdout
    res = faultctl("frobnicate")
    assert res.returncode == 3 and "unknown command" in res.stderr


def test_validate_over_the_socket(daemon):
    good = (REPO / "scenarios" / "exec-pass.json").read_text()
    replies = raw(daemon.sock, json.dumps({"cmd": "validate", "file": "x.json",
                                           "scenario": good}).encode() + b"\n")
    assert replies[0]["ok"] is True and replies[0]["name"] == "exec-pass"
    bad = (REPO / "tests" / "scenarios" / "bad" / "09-negative-duration.json").read_text()
    replies = raw(daemon.sock, json.dumps({"cmd": "validate", "file": "bad.json",
                                           "scenario": bad}).encode() + b"\n")
    assert replies[0]["ok"] is False
    assert replies[0]["errors"] == ["bad.json:3:17: duration_s: -5 is out of range [0.001, 604800]"]


def test_kill_9_of_faultd_then_restart_sweeps_what_it_left(tmp_path, progs):
    """PR_SET_PDEATHSIG ends the direct children of a killed faultd; the
    children that left the process group survive it. The next faultd finds
    the dead owner's cgroup and kills them. BPF links die with their owner."""
    from conftest import CGROUP_ROOT, Daemon, bpf_links_of_ours
    d = Daemon(tmp_path)
    doc = scenario("d-kill9", [str(progs / "hang"), "--ignore-term", "--fork", "3"])
    doc["workloads"][0]["probes"] = ["heap", "fds"]
    path = write_scenario(tmp_path / "k.json", doc)
    client = subprocess.Popen([str(FAULTCTL), "--socket", str(d.sock), "run", path],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "workload 'w' started" not in d.log:
            time.sleep(0.05)
        owner = CGROUP_ROOT / str(d.proc.pid)
        deadline = time.monotonic() + 10
        procs = []
        while time.monotonic() < deadline and len(procs) < 4:
            procs = [int(p) for f in owner.glob("*/*/cgroup.procs")
                     for p in f.read_text().split()]
            time.sleep(0.05)
        assert len(procs) == 4, procs
        d.stop(sig=9)
        client.communicate(timeout=30)
        assert client.returncode == 3  # it lost its daemon
        time.sleep(0.3)
        survivors = pids_alive(procs)
        assert survivors, "expected the setsid children to outlive faultd"
        assert not bpf_links_of_ours(), "BPF links outlived their owner"
        again = tmp_path / "again"
        again.mkdir()
        d2 = Daemon(again)
        try:
            assert not owner.exists(), "stale owner cgroup not removed"
            assert not pids_alive(procs), "survivors not killed"
            assert "removed stale cgroup" in d2.log
        finally:
            assert d2.stop() == 0
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
        d.stop(sig=9)


def test_faultd_in_its_own_pid_namespace_leaves_a_live_faultds_run_alone(tmp_path):
    """A faultd in a pid namespace of its own (a container) that shares the
    host's cgroup root and journal directory sees every host pid as dead.
    Its start-up sweep must still leave a live host faultd's run alone (its
    cgroup, journal and namespaces): the run ends PASS, its workload not
    killed. Both faultds use a cgroup root and journal directory of this
    test's only, so no other faultd's runs are in reach of the sweep."""
    from conftest import CGROUP_MOUNT, Daemon
    cg_root = CGROUP_MOUNT / f"faultd-pidns-{os.getpid()}"
    journals = tmp_path / "journal"
    dirs = ("--cgroup-root", str(cg_root), "--journal-dir", str(journals))
    cg_root.mkdir(exist_ok=True)
    host = Daemon(tmp_path, extra_args=dirs)
    inner = None
    try:
        doc = scenario("pidns", ["sleep", "4"], duration_s=8,
                       topology={"namespaces": ["a", "b"],
                                 "links": [{"name": "l0", "type": "veth", "a": "a", "b": "b"}]},
                       invariants=[{"name": "exit_ok"}, {"name": "no_crash"}])
        doc["workloads"][0]["netns"] = "a"
        client = subprocess.Popen([str(FAULTCTL), "--socket", str(host.sock), "run", "--json",
                                   str(tmp_path / "r.json"), "--quiet",
                                   str(write_scenario(tmp_path / "p.json", doc))],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "workload 'w' started" not in host.log:
            time.sleep(0.05)
        owner = cg_root / str(host.proc.pid)
        run_cgroups = list(owner.glob("*/w"))
        assert len(run_cgroups) == 1 and list(journals.glob("*.journal")), host.log
        run_id = run_cgroups[0].parent.name
        inner, _, inner_faultd = _faultd_in_own_pidns(tmp_path, "inner", dirs)
        inner_log = _stop_in_own_pidns(inner, inner_faultd)
        assert "ready (pid 1)" in inner_log, inner_log
        assert "removed stale cgroup" not in inner_log and "undid" not in inner_log, inner_log
        assert run_cgroups[0].exists(), "the live run's cgroup was swept"
        assert (journals / f"{run_id}.journal").exists(), "the live run's journal was swept"
        assert f"fd{run_id}-a" in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                 text=True).stdout
        out, err = client.communicate(timeout=60)
        rep = json.loads((tmp_path / "r.json").read_text())
        assert client.returncode == 0 and rep["verdict"] == "PASS", (out, err, rep["verdict"])
        assert rep["workloads"][0]["exit_code"] == 0 and not rep["workloads"][0]["signal"]
    finally:
        if inner and inner.poll() is None:
            inner.kill()
            inner.wait()
        assert host.stop() == 0
        if cg_root.exists():
            cg_root.rmdir()


def _faultd_in_own_pidns(tmp_path, name, dirs):
    """A faultd as PID 1 of a pid namespace of its own (a container), once it
    answers: (unshare's Popen, socket, faultd's host pid)."""
    from conftest import FAULTD, faultctl
    sock = tmp_path / f"{name}.sock"
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc",
                             "--kill-child=SIGTERM", str(FAULTD), "--socket", str(sock),
                             "--runs-dir", str(tmp_path / f"{name}-runs"), "--log-level",
                             "debug", *dirs],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and faultctl("status", socket=sock).returncode:
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.05)
    pid = int(pathlib.Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
    return proc, sock, pid


def _stop_in_own_pidns(proc, pid):
    """unshare ignores SIGTERM while it waits: the faultd (PID 1 inside) is
    told. Its log."""
    os.kill(pid, signal.SIGTERM)
    return proc.communicate(timeout=30)[0]


def test_containers_faultd_sweeps_a_dead_containers_cgroups_not_a_live_ones(tmp_path):
    """Two containers' faultds share a cgroup root, each in a pid namespace
    of its own, which cannot see the other's processes. One died and left
    its owner directory (PID@PIDNS) with a run cgroup and a process in it;
    the other runs a scenario. A third starts: the dead one's cgroups are
    swept and the process killed; the live one's run is left alone and
    ends PASS. A live owner holds its directory locked (flock); a dead
    one's lock went with it."""
    from conftest import CGROUP_MOUNT
    cg_root = CGROUP_MOUNT / f"faultd-cont-{os.getpid()}"
    dirs = ("--cgroup-root", str(cg_root), "--journal-dir", str(tmp_path / "journal"))
    cg_root.mkdir(exist_ok=True)
    dead = cg_root / "1@4026599999" / "abc123"   # a namespace that is no more
    live = third = client = orphan = None
    try:
        live, live_sock, _ = _faultd_in_own_pidns(tmp_path, "live", dirs)
        doc = scenario("cont", ["sleep", "4"], duration_s=8,
                       invariants=[{"name": "exit_ok"}, {"name": "no_crash"}])
        client = subprocess.Popen([str(FAULTCTL), "--socket", str(live_sock), "run", "--json",
                                   str(tmp_path / "r.json"), "--quiet",
                                   str(write_scenario(tmp_path / "c.json", doc))],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        ours = []
        while time.monotonic() < deadline and not ours:
            ours = [p for p in cg_root.glob("1@*/*/w") if "4026599999" not in str(p)]
            time.sleep(0.05)
        assert len(ours) == 1, list(cg_root.rglob("*"))
        dead.mkdir(parents=True)
        orphan = subprocess.Popen(["sleep", "600"])
        (dead / "cgroup.procs").write_text(str(orphan.pid))
        third, _, third_pid = _faultd_in_own_pidns(tmp_path, "third", dirs)
        log = _stop_in_own_pidns(third, third_pid)
        assert f"removed stale cgroup {cg_root}/1@4026599999" in log, log
        assert not (cg_root / "1@4026599999").exists()
        assert orphan.wait(timeout=10) == -signal.SIGKILL
        assert ours[0].exists(), "the live container's run cgroup was swept"
        out, err = client.communicate(timeout=60)
        rep = json.loads((tmp_path / "r.json").read_text())
        assert client.returncode == 0 and rep["verdict"] == "PASS", (out, err, rep["verdict"])
        assert rep["workloads"][0]["exit_code"] == 0 and not rep["workloads"][0]["signal"]
    finally:
        for p in (client, third, live):
            if p and p.poll() is None:
                p.kill()
                p.communicate()
        if orphan and orphan.poll() is None:
            orphan.kill()
            orphan.wait()
        for p in sorted(cg_root.rglob("*"), key=lambda p: -len(p.parts)):
            if p.is_dir():
                p.rmdir()
        cg_root.rmdir()
