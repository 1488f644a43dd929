"""The bundled qpair workload (harness/qpair, incident 3): queue pairs that
connect, do io_uring I/O, disconnect, drain and are destroyed across threads.

The fixed ordering must run clean (plain, under valgrind memcheck and under
ASan, through a SIGUSR1 connect/disconnect storm), and --bug=event-after-destroy
must be a real heap-use-after-free that ASan reports with the free in an I/O
thread and the allocation in the connection manager, as SPDK's nightly did.

Each run's backing file goes to the test's tmp_path through FAULTD_RUN_DIR,
and every process is ended in `finally` (or by subprocess.run's timeout).
"""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import assert_no_sanitizer_report, sanitizer_env

REPO = pathlib.Path(__file__).resolve().parent.parent
SUMMARY_RE = re.compile(r"^qpair: created=(\d+) destroyed=(\d+) ios=(\d+) iops=(\d+) "
                        r"last_events=(\d+)$", re.M)
STARTED_RE = re.compile(r"^qpair: started pid=\d+ .*file=(\S+) bug=(\S+)$", re.M)
DEFAULT_QPAIRS = 8
DEFAULT_IOPS = 5000


def _binary(build):
    """build/.../harness/qpair, made with make if it is not there yet."""
    path = REPO / build / "harness" / "qpair"
    if not path.exists():
        san = ["SANITIZER=address"] if build == "build/san-address" else []
        out = subprocess.run(["make", "-s", *san, str(path.relative_to(REPO))], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"make {path} failed:\n{out.stdout}{out.stderr}"
    return path


def plain_bin():
    """The binary of the build under test ($FAULTD_BUILD, default build/)."""
    return _binary(os.environ.get("FAULTD_BUILD", "build"))


def asan_bin():
    return _binary("build/san-address")


def unsanitized_bin():
    """For valgrind, which cannot run an ASan binary."""
    return _binary("build")


def env_for(tmp_path):
    env = sanitizer_env()
    env["FAULTD_RUN_DIR"] = str(tmp_path)
    return env


def run(cmd, tmp_path, timeout=30):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                          timeout=timeout, env=env_for(tmp_path))


def summary(out):
    m = SUMMARY_RE.search(out.stdout)
    assert m, f"no summary line (exit {out.returncode}):\n{out.stdout}\n{out.stderr}"
    created, destroyed, ios, iops, last = (int(g) for g in m.groups())
    return {"created": created, "destroyed": destroyed, "ios": ios, "iops": iops,
            "last_events": last}


def assert_clean_run(out, what):
    assert_no_sanitizer_report(out.stderr, what)
    assert out.returncode == 0, f"{what} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    s = summary(out)
    assert s["created"] == s["destroyed"] == s["last_events"], s
    assert s["ios"] > 0, s
    return s


def test_correct_mode_clean(tmp_path):
    out = run([plain_bin(), "--duration-s", "2"], tmp_path)
    s = assert_clean_run(out, "qpair")
    # 8 connected, and churn every 200 ms replaces one: about 10 more in 2 s.
    assert s["created"] >= DEFAULT_QPAIRS + 5, s
    # The rate limit holds, and is nearly reached.
    assert DEFAULT_IOPS * 0.5 < s["iops"] <= DEFAULT_IOPS * 1.1, s
    # The file it picked in the run directory is gone.
    assert not (tmp_path / "qpair.data").exists()


def test_unlimited_iops_outruns_the_default(tmp_path):
    out = run([plain_bin(), "--duration-s", "1", "--iops", "0"], tmp_path)
    s = assert_clean_run(out, "qpair --iops 0")
    assert s["iops"] > DEFAULT_IOPS * 2, s


def test_bug_mode_without_asan_keeps_running(tmp_path):
    """faultd catches the bug by its probes, not by a crash: the plain build
    runs on, destroying each qpair before its last_wqe event."""
    out = run([plain_bin(), "--duration-s", "1", "--bug=event-after-destroy"], tmp_path)
    if "AddressSanitizer" in out.stderr:
        pytest.skip("the build under test is sanitized; see test_asan_bug_bites")
    assert out.returncode == 0, out
    s = summary(out)
    assert s["created"] == s["destroyed"] == s["last_events"] > 0, s


def test_valgrind_memcheck_clean(tmp_path):
    if not shutil.which("valgrind"):
        pytest.skip("valgrind not installed")
    binary = unsanitized_bin()
    out = run(["valgrind", "--error-exitcode=3", "--leak-check=full",
               "--errors-for-leak-kinds=definite,indirect,possible",
               binary, "--duration-s", "1", "--iops", "500", "--qpairs", "4",
               "--churn-ms", "100"], tmp_path, timeout=60)
    if re.search(r"unhandled (amd64-linux )?syscall.*(425|426|427)|io_uring.*not supported",
                 out.stderr):
        pytest.skip(f"valgrind does not support io_uring here:\n{out.stderr[-2000:]}")
    assert out.returncode == 0, f"valgrind exit {out.returncode}:\n{out.stdout}\n{out.stderr}"
    assert "ERROR SUMMARY: 0 errors" in out.stderr, out.stderr
    assert "All heap blocks were freed" in out.stderr, out.stderr
    s = summary(out)
    assert s["created"] == s["destroyed"] == s["last_events"] >= 4 + 5, s


def test_asan_bug_bites(tmp_path):
    """The first disconnect, 200 ms in, frees the qpair in its I/O thread,
    and the event thread writes 312 bytes into the freed 328-byte qpair."""
    t0 = time.monotonic()
    out = run([asan_bin(), "--bug=event-after-destroy"], tmp_path, timeout=10)
    elapsed = time.monotonic() - t0
    err = out.stderr
    assert out.returncode != 0, f"bug mode survived ASan:\n{out.stdout}\n{err}"
    assert "ERROR: AddressSanitizer: heap-use-after-free" in err, err
    assert elapsed < 3.0, f"took {elapsed:.2f}s to bite"
    assert re.search(r"WRITE of size 8 at 0x[0-9a-f]+ thread T\d+ \(qp-event\)", err), err
    assert "312 bytes inside of 328-byte region" in err, err
    assert "event_last_wqe" in err.split("freed by thread")[0], err
    freed = re.search(r"freed by thread T\d+ \(qp-io\d+\) here:\n(.*?)\n\n", err, re.S)
    assert freed, err
    assert "qpair_destroy" in freed.group(1) and "qpair_drained" in freed.group(1), err
    alloc = re.search(r"previously allocated by thread T\d+ \(qp-cm\) here:\n(.*?)\n\n",
                      err, re.S)
    assert alloc, err
    assert "calloc" in alloc.group(1) and "qpair_new" in alloc.group(1), err
    # The backing file went when it was opened, so an aborted run leaves
    # nothing behind.
    assert not (tmp_path / "qpair.data").exists()


def test_asan_correct_mode_clean(tmp_path):
    out = run([asan_bin(), "--duration-s", "2"], tmp_path)
    s = assert_clean_run(out, "qpair (ASan)")
    assert s["created"] >= DEFAULT_QPAIRS + 5, s


def test_asan_sigusr1_storm_clean(tmp_path):
    """Five storms disconnect and reconnect all 8 qpairs at once, with
    --iops 0 so each storm catches I/O in flight; all stays clean."""
    storms = 5
    proc = subprocess.Popen([str(asan_bin()), "--iops", "0", "--churn-ms", "50"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env_for(tmp_path))
    stderr = []
    reader = threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        line = proc.stdout.readline()
        assert STARTED_RE.match(line), f"no started line: {line!r} {''.join(stderr)}"
        for _ in range(storms):
            time.sleep(0.15)
            proc.send_signal(signal.SIGUSR1)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    reader.join(timeout=5)
    out = subprocess.CompletedProcess(proc.args, proc.returncode, line + rest,
                                      "".join(stderr))
    s = assert_clean_run(out, "qpair storm (ASan)")
    assert s["created"] >= DEFAULT_QPAIRS * (storms + 1), s


@pytest.mark.parametrize("args, name", [
    (["--qpairs", "0"], "--qpairs"),
    (["--qpairs", "-3"], "--qpairs"),
    (["--iops", "fast"], "--iops"),
    (["--io-threads", "65"], "--io-threads"),
    (["--churn-ms", "1e3"], "--churn-ms"),
    (["--duration-s", ""], "--duration-s"),
    (["--file", ""], "--file"),
    (["--bug=nope"], "--bug"),
    (["--frobnicate"], "frobnicate"),
    (["extra"], "extra"),
])
def test_bad_option_exits_2(tmp_path, args, name):
    out = run([plain_bin(), *args], tmp_path, timeout=10)
    assert out.returncode == 2, out
    assert name in out.stderr, out.stderr
    assert out.stdout == "", out.stdout


def test_help(tmp_path):
    out = run([plain_bin(), "--help"], tmp_path, timeout=10)
    assert out.returncode == 0, out
    assert "--bug=event-after-destroy" in out.stdout
