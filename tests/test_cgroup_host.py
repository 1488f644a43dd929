"""Where run cgroups go on a host: below the cgroup2 mount faultd finds in
/proc/self/mountinfo, and nowhere, with a clear error and no crash, when
there is no cgroup v2 at all."""
import pathlib
import shlex
import subprocess

import pytest

from conftest import (CGROUP_MOUNT, FAULTD, Daemon, assert_no_sanitizer_report, cgroup2_mounts,
                      load_report, sanitizer_env, write_scenario)

pytestmark = pytest.mark.skipif(CGROUP_MOUNT is None, reason="no cgroup v2 mount")


def scenario(name, cmd):
    return {"name": name, "seed": 5, "duration_s": 30, "sample_ms": 200,
            "workloads": [{"name": "w", "kind": "exec", "cmd": cmd}]}


def run_id_from(stdout):
    for line in stdout.splitlines():
        if line.startswith("run ") and ":" in line:
            return line.split()[1].rstrip(":")
    raise AssertionError(f"no run id in:\n{stdout}")


def test_cgroup_root_outside_cgroup2(tmp_path, runs_dir):
    path = write_scenario(tmp_path / "s.json", scenario("cg-given", ["/bin/true"]))
    plain = tmp_path / "not-a-cgroup"
    proc = subprocess.run([str(FAULTD), "--cgroup-root", str(plain), "--runs-dir",
                           str(runs_dir), "--once", str(path)], capture_output=True, text=True,
                          timeout=60, env=sanitizer_env())
    assert proc.returncode == 3, proc
    assert "is not in a cgroup v2 file system" in proc.stderr
    assert not plain.exists(), "faultd made directories outside cgroup v2"


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
        assert rep["error"].startswith("cannot create cgroup"), rep["error"]
        assert d.ctl("status").returncode == 0
        assert not pathlib.Path(f"/sys/fs/cgroup/faultd/{d.proc.pid}").exists()
        assert d.stop() == 0
        assert_no_sanitizer_report(d.log, "faultd output")
    finally:
        d.stop()
