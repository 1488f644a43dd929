"""Other runs' set-ups beside a run's faults (issue 19): one faultd (-j 4),
a run flapping a link every 100 ms for 4 s, and beside it three clients
starting short runs one after another (two namespaces, a veth, the fds and
heap probes: BPF loads and verification, attaches, teardown, judging).
Measured with the run threads niced for set-up and end (FAULTD_SETUP_NICE,
the default step 5) and not niced (0), alternately, the same binaries:
how late the flapping run's actions fired, faultd's share (past the later
of the plan and the end of the run's previous action, as tests/test_load.py
counts), and how many short runs the clients got through.

usage: setup_nice.py BUILD [ROUNDS]"""
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BUILD = pathlib.Path(sys.argv[1])
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
STEPS = ("5", "0")


def write(path, doc):
    path.write_text(json.dumps(doc))
    return path


def flapper(tmp):
    return write(tmp / "flap.json", {
        "name": "flap", "duration_s": 5, "sample_ms": 250,
        "topology": {"namespaces": ["c", "s"],
                     "links": [{"name": "l0", "type": "veth", "a": "c", "b": "s"}]},
        "workloads": [{"name": "w", "kind": "exec", "netns": "c", "cmd": ["sleep", "30"]}],
        "faults": [{"type": "link_flap", "link": "l0", "start_ms": 300, "down_ms": 40,
                    "up_ms": 60, "cycles": 40}],
        "invariants": [{"name": "no_crash"}]})


def short(tmp):
    return write(tmp / "short.json", {
        "name": "short", "duration_s": 30,
        "topology": {"namespaces": ["c", "s"],
                     "links": [{"name": "l0", "type": "veth", "a": "c", "b": "s"}]},
        "workloads": [{"name": "w", "kind": "exec", "netns": "c", "probes": ["fds", "heap"],
                       "cmd": ["/bin/true"]}],
        "invariants": [{"name": "no_crash"}]})


def own_lateness(faults):
    out, prev_end = [], 0
    for f in sorted(faults, key=lambda f: f["t_actual_ms"]):
        ready = max(f["t_planned_ms"], prev_end)
        out.append(f["t_actual_ms"] - ready)
        prev_end = f["t_actual_ms"] + f["apply_ms"]
    return out


def ctl(sock, *args):
    return subprocess.run([str(BUILD / "faultctl"), "--socket", str(sock), *map(str, args)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


def one(step, tmp):
    sock = tmp / f"s{step}.sock"
    env = {**os.environ, "FAULTD_SETUP_NICE": step}
    d = subprocess.Popen([str(BUILD / "faultd"), "--socket", str(sock), "--runs-dir",
                          str(tmp / "runs"), "-j", "4", "--log-level", "error"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not sock.exists() or ctl(sock, "status"):
            time.sleep(0.05)
        stop, done = threading.Event(), []

        def churn():
            while not stop.is_set():
                if ctl(sock, "run", "--quiet", short(tmp)) == 0:
                    done.append(1)

        threads = [threading.Thread(target=churn) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # the churn under way
        out = tmp / f"flap-{step}.json"
        ctl(sock, "run", "--quiet", "--json", out, flapper(tmp))
        stop.set()
        for t in threads:
            t.join()
        rep = json.loads(out.read_text())
        flaps = [f for f in rep["faults"] if f["action"] in ("link_down", "link_up")]
        return own_lateness(flaps), len(done)
    finally:
        d.terminate()
        d.wait()


def main():
    res = {s: ([], []) for s in STEPS}
    with tempfile.TemporaryDirectory(prefix="faultd-nice.") as t:
        tmp = pathlib.Path(t)
        for _ in range(ROUNDS):
            for s in STEPS:
                late, n = one(s, tmp)
                res[s][0].extend(late)
                res[s][1].append(n)
    print(f"{'set-up nice step':<18} {'actions':>8} {'median ms':>10} {'p99 ms':>8} "
          f"{'worst ms':>9} {'short runs/round':>17}")
    for s in STEPS:
        late, n = res[s]
        late.sort()
        print(f"{s:<18} {len(late):>8} {statistics.median(late):>10.0f} "
              f"{late[int(len(late) * 0.99)]:>8} {late[-1]:>9} {statistics.mean(n):>17.1f}")
    print("(faultd's share of how late the flapping run's actions fired, while three clients")
    print(" start short runs beside it; 0: the run threads are never niced)")


if __name__ == "__main__":
    main()
