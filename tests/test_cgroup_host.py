"""Where run cgroups go on a host: below the cgroup2 mount faultd finds in
/proc/self/mountinfo, below its own cgroup when systemd delegated one to it
(--cgroup-delegated), and nowhere, with a clear error and no crash, when
there is no cgroup v2 at all."""
import os
import pathlib
import shlex
import signal
import subprocess
import time

import pytest

from conftest import (CGROUP_MOUNT, FAULTD, Daemon, assert_no_sanitizer_report, cgroup2_mounts,
                      load_report, pids_alive, sanitizer_env, write_scenario)

pytestmark = pytest.mark.skipif(CGROUP_MOUNT is None, reason="no cgroup v2 mount")


def scenario(name, cmd):
    return {"name": name, "seed": 5, "duration_s": 30, "sample_ms": 200,
            "workloads": [{"name": "w", "kind": "exec", "cmd": cmd}]}


def run_id_from(stdout):
    for line in stdout.splitlines():
        if line.startswith("run ") and ":" in line:
            return line.split()[1].rstrip(":")
    raise AssertionError(f"no run id in:\n{stdout}")


def own_cgroup(pid="self"):
    for line in pathlib.Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    raise AssertionError(f"no cgroup v2 line in /proc/{pid}/cgroup")


def remove_cgroup_tree(top):
    """Remove @top and everything below it, deepest first. What still runs
    in it was started by this test (faultd and its workloads): it is killed
    by pid first. Returns what could not be removed."""
    left = []
    for d in sorted((p for p in [top, *top.rglob("*")] if p.is_dir()),
                    key=lambda p: len(p.parts), reverse=True):
        pids = [int(p) for p in (d / "cgroup.procs").read_text().split()] \
            if (d / "cgroup.procs").exists() else []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while pids_alive(pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        for _ in range(100):
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)  # a killed process takes a moment to leave
        else:
            left.append(str(d))
    return left


@pytest.fixture
def service_cgroup():
    """A throwaway cgroup standing in for a systemd service's with
    Delegate=yes (systemd marks those with trusted.delegate). Removed with
    everything below it, whatever the test did."""
    cg = CGROUP_MOUNT / f"faultd-test-{os.getpid()}.service"
    cg.mkdir()
    try:
        os.setxattr(cg, "trusted.delegate", b"1")
        yield cg
    finally:
        left = remove_cgroup_tree(cg)
        assert not left, f"could not remove cgroups: {left}"


def test_delegated_daemon_runs_below_its_own_cgroup(tmp_path, service_cgroup):
    """Started in a delegated cgroup with --cgroup-delegated, faultd moves
    itself into SERVICE/daemon (the service's cgroup keeps no process), a
    run's workload lives in SERVICE/runs/PID/RUN/w, and after the run only
    the two empty directories remain for systemd to remove."""
    enter = ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(service_cgroup)]
    d = Daemon(tmp_path, extra_args=["--cgroup-delegated"], prefix=enter)
    try:
        name = "/" + service_cgroup.name
        assert own_cgroup(d.proc.pid) == f"{name}/daemon"
        assert (service_cgroup / "cgroup.procs").read_text() == ""
        assert "not marked delegated" not in d.log
        path = write_scenario(tmp_path / "s.json",
                              scenario("cg-delegated", ["/bin/cat", "/proc/self/cgroup"]))
        res = d.ctl("run", path)
        assert res.returncode == 0, res
        run_id = run_id_from(res.stdout)
        assert load_report(d.runs_dir, run_id)["verdict"] == "PASS"
        seen = (d.runs_dir / run_id / "w.stdout").read_text().splitlines()
        assert f"0::{name}/runs/{d.proc.pid}/{run_id}/w" in seen, seen
        left = [p for p in (service_cgroup / "runs").iterdir() if p.is_dir()]
        assert not left, f"run cgroups left behind: {left}"
        assert d.stop() == 0
        assert_no_sanitizer_report(d.log, "faultd output")
        assert sorted(p.name for p in service_cgroup.iterdir() if p.is_dir()) == \
            ["daemon", "runs"]
    finally:
        d.stop()


def test_delegated_without_a_unit_cgroup_refuses_runs(tmp_path, runs_dir):
    """--cgroup-delegated in the top cgroup is a unit without Delegate=yes
    (or no unit): runs fail at setup, saying why; nothing is made."""
    if own_cgroup() != "/":
        pytest.skip("this test process is in a cgroup faultd would take for its own")
    path = write_scenario(tmp_path / "s.json", scenario("cg-top", ["/bin/true"]))
    proc = subprocess.run([str(FAULTD), "--cgroup-delegated", "--runs-dir", str(runs_dir),
                           "--once", str(path)], capture_output=True, text=True, timeout=60,
                          env=sanitizer_env())
    assert_no_sanitizer_report(proc.stderr, "faultd stderr")
    assert proc.returncode == 3, proc
    assert "not in a unit's cgroup" in proc.stderr
    assert not (CGROUP_MOUNT / "daemon").exists() and not (CGROUP_MOUNT / "runs").exists()
    assert "verdict: ERROR" in proc.stdout


def test_cgroup_root_outside_cgroup2_and_conflicting_options(tmp_path, runs_dir):
    path = write_scenario(tmp_path / "s.json", scenario("cg-given", ["/bin/true"]))
    plain = tmp_path / "not-a-cgroup"
    proc = subprocess.run([str(FAULTD), "--cgroup-root", str(plain), "--runs-dir",
                           str(runs_dir), "--once", str(path)], capture_output=True, text=True,
                          timeout=60, env=sanitizer_env())
    assert proc.returncode == 3, proc
    assert "is not in a cgroup v2 file system" in proc.stderr
    assert not plain.exists(), "faultd made directories outside cgroup v2"
    proc = subprocess.run([str(FAULTD), "--cgroup-root", str(CGROUP_MOUNT / "x"),
                           "--cgroup-delegated", "--runs-dir", str(runs_dir), "--once",
                           str(path)], capture_output=True, text=True, timeout=60,
                          env=sanitizer_env())
    assert proc.returncode == 3, proc
    assert "exclude each other" in proc.stderr
    assert not (CGROUP_MOUNT / "x").exists()


def test_no_cgroup2_mount_daemon_serves_and_runs_fail_clearly(tmp_path):
    """In a mount namespace without cgroup v2, faultd starts, says what is
    missing and how to mount it, answers status, fails each run at setup,
    and exits 0 on SIGTERM: no crash, nothing made."""
    unmount = " ".join(f"umount -l {shlex.quote(str(m))} &&" for m in cgroup2_mounts())
    prefix = ["unshare", "--mount", "--propagation", "private",
              "/bin/sh", "-c", f'{unmount} exec "$0" "$@"']
    d = Daemon(tmp_path, prefix=prefix)
    try:
        assert ("no cgroup v2 mount in /proc/self/mountinfo; mount one: "
                "mount -t cgroup2 none /sys/fs/cgroup") in d.log
        path = write_scenario(tmp_path / "s.json", scenario("cg-none", ["/bin/true"]))
        res = d.ctl("run", path)
        assert res.returncode == 3, res
        run_id = run_id_from(res.stdout)
        rep = load_report(d.runs_dir, run_id)
        assert rep["verdict"] == "ERROR"
        assert rep["error"].startswith("this host lacks cgroup v2, which every run needs: "
                                       "no cgroup v2 mount in /proc/self/mountinfo"), rep["error"]
        assert d.ctl("status").returncode == 0
        assert not pathlib.Path(f"/sys/fs/cgroup/faultd/{d.proc.pid}").exists()
        assert d.stop() == 0
        assert_no_sanitizer_report(d.log, "faultd output")
    finally:
        d.stop()
