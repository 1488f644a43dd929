"""The event loop never waits on one thing (issue 19): a workload writing
to stdout flat out does not make faults late, and HTTP requests are
bounded to what a GET needs. What is asserted is what a user reads: the
report's fault timeline (planned against actual), and HTTP answers."""
import datetime
import json
import re
import socket
import subprocess
import time

import pytest

from conftest import (FAULTCTL, PROGS, REPO, Daemon, assert_nothing_left, faultctl,
                      invariant, only_report, write_scenario)
from test_load import own_lateness

LATE_MS = 20
ATTACHED = re.compile(r"pid \d+: [1-9]\d* allocator probes attached")


def fault_lateness(report):
    """(action, planned ms, faultd's lateness ms) of each fault action made:
    past the later of its plan and the end of the run's previous action,
    as tests/test_load.py counts it. The kernel's time for the previous
    action (apply_ms: a link set down waits for a grace period under rtnl,
    which the heap runs' uprobe releases beside it stretch) is reported
    beside it and not faultd's. (Counted from the plan alone, a link_down
    beside the heap churn came 59 ms late once in make test's second pass,
    the kernel's time for the action before it not told apart.)"""
    flaps = [f for f in report["faults"] if "t_actual_ms" in f and "t_planned_ms" in f]
    return [(x[2], x[3], x[4]) for x in own_lateness(0, 0, flaps)]


def test_faults_fire_on_time_beside_workloads_writing_flat_out(tmp_path, runs_dir):
    """Two workloads writing /dev/zero to stdout as fast as they can, and a
    link flapping every 100 ms: every flap happens, each within 20 ms of
    its plan. capture_read used to read until EAGAIN, which a writer that
    fast never gives: the flaps came late or not at all."""
    doc = {"name": "flat-out-flap", "duration_s": 4, "sample_ms": 250,
           "topology": {"namespaces": ["c", "s"],
                        "links": [{"name": "l0", "type": "veth", "a": "c", "b": "s"}]},
           "workloads": [{"name": f"w{i}", "kind": "exec", "cmd": ["cat", "/dev/zero"],
                          "output_max_kb": 64} for i in range(2)],
           "faults": [{"type": "link_flap", "link": "l0", "start_ms": 200, "down_ms": 40,
                       "up_ms": 60, "cycles": 30}],
           "invariants": [{"name": "no_crash"}]}
    res = faultctl("run", "--local", "--quiet", write_scenario(tmp_path / "flat.json", doc),
                   runs_dir=runs_dir, timeout=60)
    rep = only_report(runs_dir)
    assert res.returncode == 0, res
    late = fault_lateness(rep)
    assert len(late) == 60, late
    assert all(ms <= LATE_MS for _, _, ms in late), [x for x in late if x[2] > LATE_MS]
    # The writers really wrote flat out, and their logs stayed bounded.
    assert all(w["output_bytes"] > 64 << 20 for w in rep["workloads"]), rep["workloads"]
    assert all(w["output_dropped_bytes"] > 0 for w in rep["workloads"])


def _flap_run(name, cycles):
    return {"name": name, "duration_s": 1 + cycles // 10, "sample_ms": 250,
            "topology": {"namespaces": ["c", "s"],
                         "links": [{"name": "l0", "type": "veth", "a": "c", "b": "s"}]},
            "workloads": [{"name": "w", "kind": "exec", "cmd": ["sleep", "60"]}],
            "faults": [{"type": "link_flap", "link": "l0", "start_ms": 300, "down_ms": 40,
                        "up_ms": 60, "cycles": cycles}],
            "invariants": [{"name": "no_crash"}]}


def _utc(stamp):
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _beside_a_heap_run(tmp_path, programs, env=None, args=()):
    """faultd -j 2: a run under the heap probe whose workload runs
    @programs one after the other (each with @args), over and over, 100 ms
    apart; once a few have started, a second run flaps a link every 100 ms.
    The heap run's exit code and the reports of both.

    Under a sanitized faultd (FAULTD_BUILD=build/san-address) the programs
    are the plain build's (conftest.PROGS): build/san-address has none of
    its own unless `make SANITIZER=address tests` made them, and these
    tests once waited 30 s on a heap run that had ended at set-up ("cannot
    run .../respawn"), its one "0 allocator probes attached" counted as an
    attach. The sanitized faultd attaches no slower (2026-12-06, 5 runs of
    each test per build, interleaved, the debug log's times): fork read to
    probes attached, median 0.56 ms ASan / 0.64 ms plain with uprobe_multi
    links, 229 / 229 ms with perf-event uprobes (the kernel's trace-event
    lock). The 20 ms bound on the flaps holds for both builds alike: on
    this shared 2-core host (load 5 to 10) it was missed in 4 of 10 plain
    test runs and 3 of 10 ASan ones, by a stall of the flap run's own
    thread (one link_down taking 0.95 s in the kernel; the release of its
    workload taking 0.57 s), not by the heap run's attaches."""
    d = Daemon(tmp_path, extra_args=("-j", "2"), env=env)
    try:
        heap = {"name": "heap-churn", "duration_s": 14, "sample_ms": 500,
                "workloads": [{"name": "w", "kind": "exec",
                               "cmd": [str(PROGS / "respawn"), "-i", "100",
                                       *[x for a in args for x in ("-a", a)],
                                       *map(str, programs)],
                               "probes": ["heap"], "stop_grace_ms": 500}],
                "invariants": [{"name": "no_invalid_free"}]}
        hp = write_scenario(tmp_path / "heap.json", heap)
        fp = write_scenario(tmp_path / "flap.json", _flap_run("flap-beside-heap", 40))
        hc = subprocess.Popen([str(FAULTCTL), "--socket", str(d.sock), "run", "--json",
                               str(tmp_path / "heap-rep.json"), "--quiet", str(hp)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Three processes with their probes really attached (a program that
        # is not there gets "0 allocator probes attached", and its run ends
        # at set-up: waiting on would only hide why).
        deadline = time.monotonic() + 30
        while (time.monotonic() < deadline and hc.poll() is None and
               len(ATTACHED.findall(d.log)) < 3):
            time.sleep(0.05)
        if hc.poll() is not None:
            out, err = hc.communicate()
            raise AssertionError(f"heap run ended at exit {hc.returncode} before 3 processes "
                                 f"were probed:\n{out}{err}\n{d.log[-3000:]}")
        assert len(ATTACHED.findall(d.log)) >= 3, d.log[-3000:]
        fr = faultctl("--socket", str(d.sock), "run", "--json", str(tmp_path / "flap-rep.json"),
                      "--quiet", str(fp), timeout=120)
        out, err = hc.communicate(timeout=120)
        assert fr.returncode == 0, fr
        flap = json.loads((tmp_path / "flap-rep.json").read_text())
        rep = json.loads((tmp_path / "heap-rep.json").read_text())
        # The heap run churned all through the flap run.
        assert _utc(rep["ended_at"]) > _utc(flap["ended_at"]), (rep["ended_at"],
                                                               flap["ended_at"])
        assert_nothing_left(rep)
        assert_nothing_left(flap)
        return hc.returncode, rep, flap
    finally:
        assert d.stop() == 0


def test_heap_probe_churn_of_another_run_does_not_make_flaps_late(tmp_path):
    """Every process of the heap run gets about 20 uprobe links at its
    start and lets them go at its exit; closing one waits for the kernel's
    grace periods (50 to 100 ms each here). That used to run on the event
    loop, one link after the other: the loop fell seconds behind, and the
    heap probe missed most processes. Each flap within 20 ms of its plan;
    the heap run PASSes with the allocations of most processes seen. That
    takes uprobe_multi links (FAULTD_UPROBE_MULTI=1; exit_code does not
    vfork): a perf-event uprobe's attach waits for the kernel's lock, held
    through every release's grace periods, and follows about 1 process in
    10 at this rate (docs/kernels.md).

    Each exit_code sleeps 30 ms before it allocates: a child is followed
    from the moment its attach is over, and one that allocates at once
    (0.5 ms after its fork) races it. On Linux 6.18 here most children lost
    that race (1 to 15 of 80 followed; 61 of 62 with the 30 ms): now and
    then the fork is read 2 to 3 ms late, or an attach takes 4 to 8 ms
    while its kernel waits for a grace period. This test judges the loop
    falling behind (by seconds, when links were closed on it), not that
    race (docs/kernels.md)."""
    code, rep, flap = _beside_a_heap_run(tmp_path, [PROGS / "exit_code"],
                                         env={"FAULTD_UPROBE_MULTI": "1"}, args=("0", "30"))
    late = fault_lateness(flap)
    assert len(late) == 80, late
    assert all(ms <= LATE_MS for _, _, ms in late), [x for x in late if x[2] > LATE_MS]
    inv = invariant(rep, "no_invalid_free")
    assert code == 0 and inv["verdict"] == "PASS", inv
    # The probe followed them: each run of exit_code allocates its stdout
    # buffer. (faultd that closed links on the loop attached to few: by the
    # time it read a fork, the child had long exited.)
    heap = rep["probes"]["workloads"]["w"]["heap"]
    assert len(rep["processes"]) > 40, len(rep["processes"])
    assert heap["allocs"] >= len(rep["processes"]) // 2, (heap["allocs"], len(rep["processes"]))


def test_bad_frees_of_another_run_do_not_make_flaps_late(tmp_path):
    """The heap run's program double-frees, over and over: each bad free
    holds its process while faultd waits for it to stop (up to 200 ms, on
    the heap probe's worker) and names both frees (on the run's naming
    worker: a libdwfl session per process, 0.1 to 0.8 s of CPU here). (A
    program started by another is followed from its exec; a free of a
    pointer it never allocated is counted there, never judged, so its
    pointer is not searched for: tests/test_probes.py has that search.) The
    evidence is what a run alone gives; every flap within
    20 ms of its plan.

    A program respawn starts is followed from its exec: one whose probes
    come after its first malloc has its first free's stack as the caller
    alone. So each sleeps 30 ms before main, and the links are uprobe_multi
    ones: perf-event attaches came 0.2 to 0.9 s after the exec here (Linux
    6.18; the previous processes' releases hold the kernel's lock), and in
    one run of make test no process had its first free named."""
    code, rep, flap = _beside_a_heap_run(tmp_path, [PROGS / "double_free_tolerated"],
                                         env={"FAULTD_UPROBE_MULTI": "1"}, args=("30",))
    assert code == 1
    evs = invariant(rep, "no_invalid_free")["evidence"]
    assert len(evs) >= 3 and {e["kind"] for e in evs} == {"double_free"}, evs[:3]
    # Those attached in time name both frees.
    named = [e for e in evs if "double_free_tolerated.c:30" in " | ".join(e["first_free"]["stack"])]
    assert named, evs[:3]
    assert "double_free_tolerated.c:32" in " | ".join(named[0]["stack"]), named[0]
    late = fault_lateness(flap)
    assert len(late) == 80, late
    assert all(ms <= LATE_MS for _, _, ms in late), [x for x in late if x[2] > LATE_MS]


def _lost_block_site():
    """exit_churn.c's line of the 77-byte block each child loses."""
    src = (REPO / "tests" / "progs" / "exit_churn.c").read_text().splitlines()
    return "exit_churn.c:%d" % next(i + 1 for i, line in enumerate(src) if "malloc(77)" in line)


def _exit_churn_beside_flaps(name, args, duration_s, cycles):
    """exit_churn ARGS under the heap probe and no_leak, a veth flapped
    every 100 ms in the same run."""
    return {"name": name, "duration_s": duration_s, "sample_ms": 250,
            "topology": {"namespaces": ["c", "s"],
                         "links": [{"name": "l0", "type": "veth", "a": "c", "b": "s"}]},
            "workloads": [{"name": "w", "kind": "exec", "cmd": [str(PROGS / "exit_churn"), *args],
                           "probes": ["heap"], "stop_grace_ms": 500}],
            "faults": [{"type": "link_flap", "link": "l0", "start_ms": 200, "down_ms": 40,
                        "up_ms": 60, "cycles": cycles}],
            "invariants": [{"name": "no_leak"}]}


def test_scans_at_exit_do_not_make_the_same_runs_flaps_late(tmp_path, runs_dir):
    """no_leak holds each process of the workload at its exit and scans its
    heap: here a child every ~0.3 s, each with 32 MiB in 8192 blocks and
    one lost 77-byte block, while the same run flaps a link every 100 ms.
    The wait for the stop, the scan and the naming of the stacks (0.1 s and
    more per process here) used to run on the run's own loop, and the flaps
    came that late. Every flap within 20 ms of its plan; each child's leak
    found with its allocation stack named; nothing left (no process held).
    uprobe_multi links (FAULTD_UPROBE_MULTI=1), so that each child is
    attached to before its blocks: a perf-event uprobe's attach waits on the
    kernel's lock (off the loop; the test after this one), and a child this
    quick can be over first (docs/kernels.md)."""
    site = _lost_block_site()
    doc = _exit_churn_beside_flaps("exit-churn-flap", ["32"], duration_s=4, cycles=30)
    res = faultctl("run", "--local", "--quiet", write_scenario(tmp_path / "churn.json", doc),
                   runs_dir=runs_dir, timeout=120, env={"FAULTD_UPROBE_MULTI": "1"})
    rep = only_report(runs_dir)
    assert_nothing_left(rep)
    inv = invariant(rep, "no_leak")
    assert res.returncode == 1 and inv["verdict"] == "FAIL", (res, inv)
    root = rep["workloads"][0]["pid"]
    children = [ev for ev in inv["evidence"] if ev["pid"] != root]
    assert len(children) >= 3, inv["evidence"]
    for ev in children:
        assert ev["scan"]["blocks"] > 8192 and ev["direct_blocks"] == 1, ev
        [g] = ev["direct"]
        assert g["bytes"] == 77 and g["stack"][0].startswith("lose_one+"), g
        assert site in g["stack"][0] and "child+" in g["stack"][1], g
    late = fault_lateness(rep)
    assert len(late) == 60, late
    assert all(ms <= LATE_MS for _, _, ms in late), [x for x in late if x[2] > LATE_MS]


def _line_of(prog, text, nth=1):
    """The line of @prog's source holding @text (its @nth occurrence)."""
    src = (REPO / "tests" / "progs" / prog).read_text().splitlines()
    return "%s:%d" % (prog, [i + 1 for i, line in enumerate(src) if text in line][nth - 1])


def test_naming_crashes_and_bad_frees_does_not_make_the_same_runs_flaps_late(
        tmp_path, runs_dir):
    """One run, two workloads respawning heavy_bugs (8,192 functions of
    debug info) every 50 ms: in one each process frees a block twice (held
    at the bad free) and then crashes; in the other each only crashes. The
    same run flaps a link every 100 ms. Naming the bad free's three stacks
    and each crash's backtrace (libdwfl: the program's debug info, and the
    C library's with libc6-dbg; 5 to 700 ms per process here) used to run
    on the run's own loop, and the flaps came up to 0.7 s late. Every flap
    within 20 ms of its plan (or of the end of the run's previous action:
    the kernel's time for that one is not faultd's); every bad free and
    crash in the report named to the function and file:line, as a run
    without flaps names them; nothing left behind."""
    prog = str(PROGS / "heavy_bugs")
    doc = {"name": "sym-flap", "duration_s": 5, "sample_ms": 250,
           "topology": {"namespaces": ["c", "s"],
                        "links": [{"name": "l0", "type": "veth", "a": "c", "b": "s"}]},
           "workloads": [{"name": "bugs", "kind": "exec",
                          "cmd": [str(PROGS / "respawn"), "-i", "50", prog],
                          "probes": ["heap"], "stop_grace_ms": 500},
                         {"name": "crashes", "kind": "exec",
                          "cmd": [str(PROGS / "respawn"), "-i", "50", "-a", "crash", prog],
                          "stop_grace_ms": 500}],
           "faults": [{"type": "link_flap", "link": "l0", "start_ms": 200, "down_ms": 40,
                       "up_ms": 60, "cycles": 40}],
           "invariants": [{"name": "no_invalid_free"}, {"name": "no_crash"}]}
    res = faultctl("run", "--local", "--quiet", write_scenario(tmp_path / "sym.json", doc),
                   runs_dir=runs_dir, timeout=120, env={"FAULTD_UPROBE_MULTI": "1"})
    rep = only_report(runs_dir)
    assert_nothing_left(rep)
    assert res.returncode == 1 and rep["verdict"] == "FAIL", res
    flaps = [f for f in rep["faults"] if "t_actual_ms" in f]
    assert len(flaps) == 80, flaps
    late = own_lateness(0, 0, flaps)
    print("latest flap past its plan (ms):", max(x[-1] for x in late),
          "of it faultd's (ms):", max(x[-2] for x in late))
    assert all(x[-2] <= LATE_MS for x in late), [x for x in late if x[-2] > LATE_MS]
    # Every bad free, with its three stacks named.
    frees = invariant(rep, "no_invalid_free")
    assert frees["verdict"] == "FAIL", frees
    evs = frees["evidence"]
    assert len(evs) >= 3 and {e["kind"] for e in evs} == {"double_free"}, evs[:3]
    release = _line_of("heavy_bugs.c", "free(p);")
    for ev in evs:
        stack = " | ".join(ev["stack"])
        assert "release+" in stack and release in stack, ev
        assert _line_of("heavy_bugs.c", "release(a);", 2) in stack, ev
        assert _line_of("heavy_bugs.c", "release(a);", 1) in " | ".join(ev["first_free"]["stack"]), ev
        assert ev["allocated_at"][0].startswith("double_free+"), ev
        assert _line_of("heavy_bugs.c", "a = malloc(40);") in ev["allocated_at"][0], ev
    # Every crash of both workloads, its backtrace named.
    crashes = invariant(rep, "no_crash")
    assert crashes["verdict"] == "FAIL", crashes
    by_wl = {}
    for c in crashes["evidence"]:
        by_wl.setdefault(c["workload"], []).append(c)
        assert c["signal"] == "SIGSEGV", c
        assert c["backtrace"][0].startswith("crash+"), c
        assert _line_of("heavy_bugs.c", "return *p +") in c["backtrace"][0], c
        assert c["backtrace"][1].startswith("main+"), c
    assert len(by_wl.get("bugs", [])) >= 3 and len(by_wl.get("crashes", [])) >= 10, \
        {k: len(v) for k, v in by_wl.items()}


def test_heap_probe_attaches_to_children_off_the_same_runs_loop(tmp_path, runs_dir):
    """The heap probe follows each forked child: its allocator's entry
    points (about 18 uprobes) and no_leak's hold at _exit are attached to
    the child by pid. With perf-event uprobes (the default) an attach waits
    for the kernel's trace-event lock: 0.2 s at the median, 0.7 s and more
    while other links are let go. That used to happen on the run's own
    loop, and the same run's flaps came that late (251 ms here). Now it is
    done by the probe's attach thread (daemon/probe/probe_attach.c).

    A child every 250 ms, up to 5 alive; each allocates its pointer array at
    once, waits 1 s, fills it with 1,024 blocks of 4 KiB and loses one of
    77 bytes; a link flaps every 100 ms. Every flap within 20 ms of its plan
    (or of the end of the run's previous action); the children are still
    followed: their leaks found with the allocation stack named, the
    array faultd could not see is no leak (mark_partial: a child followed
    late is judged as such); nothing left behind (no BPF link, no
    process)."""
    site = _lost_block_site()
    doc = _exit_churn_beside_flaps("fork-churn-flap", ["4", "1000", "250", "1", "5"],
                                   duration_s=6, cycles=50)
    res = faultctl("run", "--local", "--quiet", write_scenario(tmp_path / "fork.json", doc),
                   runs_dir=runs_dir, timeout=120, env={"FAULTD_UPROBE_MULTI": "0"})
    rep = only_report(runs_dir)
    assert_nothing_left(rep)
    assert rep["capabilities"]["heap"]["via"] == "uprobe", rep["capabilities"]["heap"]
    late = own_lateness(0, 0, [f for f in rep["faults"] if "t_actual_ms" in f])
    assert len(late) == 100, late
    assert all(x[-2] <= LATE_MS for x in late), [x for x in late if x[-2] > LATE_MS]
    inv = invariant(rep, "no_leak")
    assert res.returncode == 1 and inv["verdict"] == "FAIL", (res, inv)
    root = rep["workloads"][0]["pid"]
    # Children that ended by their own exit (the last may be killed at the
    # run's end while held at _exit).
    clean = {p["pid"] for p in rep["processes"]
             if p["pid"] != root and p["exit_code"] == 0 and not p["signal"]}
    assert len(clean) >= 12, rep["processes"]
    found = [ev for ev in inv["evidence"] if ev["pid"] in clean and ev["direct_blocks"]]
    assert len(found) >= 3, inv["evidence"]
    for ev in found:
        assert ev["direct_blocks"] == 1 and ev["scan"]["heap_gap_root_bytes"] > 0, ev
        [g] = ev["direct"]
        assert g["bytes"] == 77 and g["stack"][0].startswith("lose_one+"), g
        assert site in g["stack"][0] and "child+" in g["stack"][1], g
    # Every process is in the heap probe's coverage, attached or not in time.
    [prog] = rep["probes"]["workloads"]["w"]["heap"]["coverage"]["programs"]
    assert prog["processes"] == len(rep["processes"]), (prog, len(rep["processes"]))


def _http_get(port, raw, timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        data = b""
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            return data  # refused before the request was even read whole
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    return data


def test_http_refuses_oversized_requests_and_keeps_serving(tmp_path):
    d = Daemon(tmp_path, extra_args=("--http", "0"))
    try:
        port = None
        for line in d.log_lines:
            if "http on" in line:
                port = int(line.rsplit(":", 1)[1])
        assert port, d.log
        huge = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (1 << 20) + b"\r\n\r\n"
        reply = _http_get(port, huge)
        assert not reply.startswith(b"HTTP/1.1 200"), reply[:200]
        body = b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"b" * 1000000
        reply = _http_get(port, body)
        assert not reply.startswith(b"HTTP/1.1 200"), reply[:200]
        ok = _http_get(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200") and b"faultd_up 1" in ok, ok[:300]
    finally:
        assert d.stop() == 0
