"""What faultd keeps between runs (issue 19), with its malloc tuning and
without, side by side: two daemons at once, each running the same short
bundled scenarios in turn (DPDK, queues, an ASan build: debug info and
BTF read, freed at each run's end), ROUNDS times. After each round, from
`faultctl status`: the RSS when the last run had finished
(rss_idle_bytes), its anonymous part (rss_anon_idle_bytes) and the bytes
malloc had handed out and not had back then (heap_in_use_idle_bytes).
"without" sets GLIBC_TUNABLES to glibc's own tcache default, which makes
faultd leave glibc's dynamic mmap and trim thresholds as they are.

usage: kept_memory.py BUILD [ROUNDS]"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

BUILD = pathlib.Path(sys.argv[1])
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
SCENARIOS = ["dpdk-ws-double-construct", "msgq-publish-early", "qpair-event-after-destroy",
             "qpair-event-after-destroy-asan", "dpdk-ws-null-pop", "exec-child-crash"]
SETTINGS = {"tuned": {}, "glibc": {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=7"}}


def ctl(sock, *args):
    return subprocess.run([str(BUILD / "faultctl"), "--socket", str(sock), *map(str, args)],
                          capture_output=True, text=True)


def daemon(name, tmp):
    sock = tmp / f"{name}.sock"
    d = subprocess.Popen([str(BUILD / "faultd"), "--socket", str(sock), "--runs-dir",
                          str(tmp / f"runs-{name}"), "--log-level", "error"],
                         env={**os.environ, **SETTINGS[name]},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not sock.exists() or ctl(sock, "status").returncode:
        time.sleep(0.05)
    return d, sock


def kept(sock):
    st = json.loads(ctl(sock, "status").stdout)
    return tuple(st[k] // 1024 for k in ("rss_idle_bytes", "rss_anon_idle_bytes",
                                          "heap_in_use_idle_bytes"))


def soak(name, sock, rows, errors):
    for _ in range(ROUNDS):
        for s in SCENARIOS:
            res = ctl(sock, "run", "--quiet", "--expect", f"scenarios/{s}.json")
            if res.returncode:
                errors.append((name, s, res.stdout[-300:]))
        rows.append(kept(sock))


def main():
    rows = {n: [] for n in SETTINGS}
    errors = []
    with tempfile.TemporaryDirectory(prefix="faultd-kept.") as t:
        tmp = pathlib.Path(t)
        ds = {n: daemon(n, tmp) for n in SETTINGS}
        try:
            threads = [threading.Thread(target=soak, args=(n, ds[n][1], rows[n], errors))
                       for n in SETTINGS]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        finally:
            for d, _ in ds.values():
                d.terminate()
                d.wait()
    print(f"{'round':>5}  {'kept kB tuned / glibc':>22}  {'anonymous kB':>16}  "
          f"{'malloc in use kB':>16}")
    for i in range(ROUNDS):
        a, b = rows["tuned"][i], rows["glibc"][i]
        print(f"{i + 1:>5}  {a[0]:>10} / {b[0]:<9}  {a[1]:>7} / {b[1]:<6}  {a[2]:>7} / {b[2]:<6}")
    a, b = rows["tuned"][-1], rows["glibc"][-1]
    print(f"after {ROUNDS} rounds of {len(SCENARIOS)} scenarios: anonymous kept "
          f"{b[1] / max(a[1], 1):.1f}x less with the tuning ({a[1]} kB against {b[1]} kB); "
          f"malloc in use {a[2]} against {b[2]} kB")
    for e in errors:
        print("unexpected verdict:", e)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
