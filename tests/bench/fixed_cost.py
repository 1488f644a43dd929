"""A run's fixed cost (issue 19): a program that exits at once, alone, under
valgrind, and under `faultctl run --local` with no probe, the fds probe, and
the heap and fds probes (the heap probe's uprobes as perf-event uprobes,
the default, and as uprobe_multi links where the kernel has them:
FAULTD_UPROBE_MULTI=1). For faultd two figures: the whole command's
wall time, and the time from the workload's exit to the run's "finish" (the
report written), read from faultctl's own log. Medians of N runs.

usage: fixed_cost.py BUILD [N]"""
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = pathlib.Path(sys.argv[1])
N = int(sys.argv[2]) if len(sys.argv) > 2 else 10
PROG = "/bin/true"


def wall(cmd):
    t = time.monotonic()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.monotonic() - t


def stamp(line):
    hms = line.split()[0]
    h, m, s = hms.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def faultd_run(probes, tmp, env=None):
    doc = {"name": "fixed-cost", "duration_s": 30,
           "workloads": [{"name": "w", "kind": "exec", "probes": probes, "cmd": [PROG]}],
           "invariants": [{"name": "no_crash"}, {"name": "exit_ok"}]}
    sc = tmp / "s.json"
    sc.write_text(json.dumps(doc))
    runs = tmp / "runs"
    t = time.monotonic()
    res = subprocess.run([str(BUILD / "faultctl"), "--runs-dir", str(runs), "-l", "info", "run",
                          "--local", "--quiet", str(sc)], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    total = time.monotonic() - t
    shutil.rmtree(runs, ignore_errors=True)
    exited = [stamp(l) for l in res.stderr.splitlines() if "on_wl_exit" in l]
    done = [stamp(l) for l in res.stderr.splitlines() if " finish: " in l]
    if res.returncode != 0 or not exited or not done:
        raise SystemExit(f"run failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return total, done[0] - exited[0]


def main():
    rows = []
    alone = statistics.median(wall([PROG]) for _ in range(N))
    rows.append(("alone", alone, None))
    if shutil.which("valgrind"):
        vg = statistics.median(wall(["valgrind", "-q", "--tool=memcheck", PROG])
                               for _ in range(N))
        rows.append(("valgrind memcheck", vg, None))
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        multi = {"FAULTD_UPROBE_MULTI": "1"}
        for name, probes, env in (("faultd, no probe", [], None), ("faultd, fds", ["fds"], None),
                                  ("faultd, heap+fds", ["heap", "fds"], None),
                                  ("  uprobe_multi links", ["heap", "fds"], multi)):
            got = [faultd_run(probes, tmp, env) for _ in range(N)]
            rows.append((name, statistics.median(g[0] for g in got),
                         statistics.median(g[1] for g in got)))
    print(f"{'':20s} {'wall':>9s} {'x alone':>9s} {'exit->report':>13s}   ({PROG}, median of {N}, "
          f"load average {os.getloadavg()[0]:.1f})")
    for name, w, tail in rows:
        print(f"{name:20s} {w * 1000:7.0f}ms {w / alone:8.0f}x "
              f"{'' if tail is None else f'{tail * 1000:11.0f}ms'}")


main()
