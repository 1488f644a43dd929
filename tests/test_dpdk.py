"""Incident 1 end to end: a WebSocket-over-TLS client on lwIP over DPDK
(memory BIOs, a ring buffer) against a TLS WebSocket server, under link
flaps. The fixed client PASSes with nothing left behind, not even the EAL
runtime directory; each of its two bugs FAILs on the right invariant with
evidence; kill -9 of the client or of faultd leaves no /var/run/dpdk entry
of ours after the next start."""
import json
import pathlib
import re
import subprocess
import time

import jsonschema
import pytest

from conftest import (FAULTCTL, REPO, Daemon, _foreign, assert_nothing_left, faultctl,
                      invariant, only_report, our_netns, write_scenario)

REPORT_SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())
DPDK_RUN = pathlib.Path("/var/run/dpdk")


def our_dpdk_dirs():
    """EAL runtime directories named for runs of this test session."""
    return sorted(p.name for p in DPDK_RUN.glob("fd*")
                  if re.match(r"^fd[0-9a-f]{6}-", p.name) and not _foreign(p.name)) \
        if DPDK_RUN.exists() else []


def run_scenario(path, runs_dir, expect=True):
    args = ["run", "--local", "--quiet"] + (["--expect"] if expect else []) + [path]
    res = faultctl(*args, runs_dir=runs_dir, timeout=180)
    rep = only_report(runs_dir)
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert_nothing_left(rep)
    return res, rep


def test_dpdk_ws_flap_passes_every_cycle_reconnects_nothing_left(runs_dir):
    res, rep = run_scenario("scenarios/dpdk-ws-flap.json", runs_dir)
    assert res.returncode == 0, [(i["name"], i["summary"]) for i in rep["invariants"]]
    rec = invariant(rep, "recovers")
    assert rec["verdict"] == "PASS" and "all 30 outages" in rec["summary"], rec
    for name in ("counter_stable", "heap_stable", "no_residue", "no_invalid_free"):
        assert invariant(rep, name)["verdict"] == "PASS", invariant(rep, name)
    mbufs = [c["workloads"]["client"]["counters"]["mbuf_in_use"] for c in rep["cycles"]
             if "counters" in c["workloads"].get("client", {})]
    assert mbufs and max(mbufs) <= mbufs[0] + 64, mbufs
    out = (runs_dir / rep["run_id"] / "client.stdout").read_text()
    summary = re.search(r"stopping: connects=(\d+) failures=\d+ messages=(\d+) bad=(\d+)", out)
    assert summary, out[-2000:]
    # Every flap takes the link down under the client: a reconnect each
    # (recovers judged all 30 above). A flap that lands while a slow
    # reconnect is still under way (a SYN lost to the previous down
    # window) is one outage to the client, so allow two such.
    assert int(summary[1]) >= 29 and int(summary[2]) > 1000 and int(summary[3]) == 0, summary[0]
    assert not our_dpdk_dirs()


def function_lines(name):
    """The line range of a function in dpdk_client.c: an inlined function
    is named in a stack by its file and line, not its name."""
    lines = (REPO / "harness" / "dpdk-client" / "dpdk_client.c").read_text().splitlines()
    start = next(i for i, l in enumerate(lines, 1) if re.match(rf"^static \w+ {name}\(", l))
    end = next(i for i, l in enumerate(lines, 1) if i > start and l == "}")
    return range(start, end + 1)


def in_function(frames, name):
    span = function_lines(name)
    return any(name in f or any(int(m) in span for m in re.findall(r"dpdk_client\.c:(\d+)", f))
               for f in frames)


def test_double_construct_fails_on_the_bad_free_before_the_abort(runs_dir):
    res, rep = run_scenario("scenarios/dpdk-ws-double-construct.json", runs_dir)
    assert res.returncode == 0, res
    bad = invariant(rep, "no_invalid_free")
    assert bad["verdict"] == "FAIL", bad
    ev = bad["evidence"][0]
    # loop_start frees the staging buffer through the shared BIO state the
    # temporary's teardown freed; lwIP got that block meanwhile, so the
    # "buffer" freed is a word of lwIP's (glibc: "free(): invalid pointer",
    # as in the incident). Both frees are named: the one that released the
    # state and the one that freed through it again.
    # (Had nothing taken the block, the old buffer's pointer would still be
    # there: a plain double free of the buffer, first freed by loop_destruct.)
    assert ev["address"].startswith("0x") and in_function(ev["stack"], "loop_start"), ev
    if ev["kind"] == "double_free":
        assert any("loop_destruct" in f for f in ev["first_free"]["stack"]), ev
    else:
        assert ev["kind"] == "invalid_free", ev
        src = ev["read_from_freed"]
        assert src["size"] == 80 and src["offset"] == 16, src
        assert any("loop_destruct" in f for f in src["stack"]), src
        assert in_function(src["allocated_at"], "loop_construct"), src
        assert "read from a 80-byte block freed by loop_destruct" in bad["summary"], bad
    crash = invariant(rep, "no_crash")
    assert crash["verdict"] == "FAIL" and "SIGABRT" in crash["summary"], crash
    assert "(dpdk-client)" in crash["summary"], crash["summary"]
    # Recorded while the process was held at the bad free, before glibc's abort.
    assert bad["first_violation_ms"] <= crash["first_violation_ms"]
    assert invariant(rep, "no_residue")["verdict"] == "PASS"


def test_null_pop_fails_no_crash_with_a_backtrace_naming_the_pop(runs_dir):
    res, rep = run_scenario("scenarios/dpdk-ws-null-pop.json", runs_dir)
    assert res.returncode == 0, res
    crash = invariant(rep, "no_crash")
    assert crash["verdict"] == "FAIL" and "SIGSEGV" in crash["summary"], crash
    ev = next(e for e in crash["evidence"] if e.get("signal") == "SIGSEGV")
    assert any("ring_pop_front" in f for f in ev["backtrace"]), ev["backtrace"]
    assert ev["fault_address"] == "0x0", ev
    assert invariant(rep, "no_residue")["verdict"] == "PASS"


def short_flap(tmp_path, extra_faults=()):
    doc = json.loads((REPO / "scenarios" / "dpdk-ws-flap.json").read_text())
    doc["duration_s"] = 20
    doc["faults"][0]["cycles"] = 10
    doc["faults"] += list(extra_faults)
    doc["invariants"] = [{"name": "no_residue"}]
    return write_scenario(tmp_path / "short.json", doc)


def flat_out(tmp_path, runs_dir, offloads):
    """8 s of the client flat out (--rate 0), no faults: its summary line
    (connects, failures, messages, bad) and the report."""
    doc = json.loads((REPO / "scenarios" / "dpdk-ws-flap.json").read_text())
    doc["duration_s"] = 8
    doc["faults"] = []
    doc["invariants"] = [{"name": "no_residue"}]
    doc["topology"]["links"][0]["offloads"] = offloads
    doc["workloads"][1]["args"] += ["--rate", "0"]
    doc["workloads"][1]["probes"] = []
    runs = runs_dir / offloads
    runs.mkdir()
    res, rep = run_scenario(write_scenario(tmp_path / f"{offloads}.json", doc), runs)
    assert res.returncode == 0, res
    assert rep["topology"]["links"]["l0"]["offloads"] is (offloads == "on"), rep["topology"]
    out = (runs / rep["run_id"] / "client.stdout").read_text()
    summary = re.search(r"stopping: connects=(\d+) failures=(\d+) messages=(\d+) bad=(\d+)", out)
    assert summary, out[-2000:]
    return tuple(map(int, summary.groups()))


def test_flat_out_client_needs_a_link_without_segmentation_offloads(tmp_path, runs_dir):
    # A kernel sender with TSO/GSO hands the veth peer frames of several
    # KB; the af_packet port takes one mbuf per frame and loses them, and
    # the session crawls from retransmission to retransmission. "auto"
    # turns the offloads off on a link a dpdk-client uses.
    connects, failures, fast, bad = flat_out(tmp_path, runs_dir, "auto")
    # One session the whole run (the server may stop first at the end).
    assert connects == 1 and failures <= 1 and fast > 5000 and bad == 0, (connects, failures)
    connects, failures, slow, bad = flat_out(tmp_path, runs_dir, "on")
    assert failures >= 1 and bad == 0 and fast > 5 * slow, (connects, failures, fast, slow)


def test_kill_9_of_the_client_leaves_no_eal_directory(tmp_path, runs_dir):
    path = short_flap(tmp_path, [{"type": "kill", "workload": "client", "at_ms": 4000}])
    res, rep = run_scenario(path, runs_dir, expect=False)
    kills = [f for f in rep["faults"] if f["action"] == "kill"]
    assert kills and "error" not in kills[0], rep["faults"]
    assert invariant(rep, "no_residue")["verdict"] == "PASS", invariant(rep, "no_residue")
    assert not our_dpdk_dirs()


def test_kill_9_of_faultd_then_restart_removes_the_eal_directory(tmp_path):
    path = short_flap(tmp_path)
    d = Daemon(tmp_path)
    client = subprocess.Popen([str(FAULTCTL), "--socket", str(d.sock), "run", path],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not our_dpdk_dirs():
            time.sleep(0.1)
        assert our_dpdk_dirs(), "the client made no EAL runtime directory"
        time.sleep(1)
        d.stop(sig=9)
        client.communicate(timeout=30)
        again = tmp_path / "again"
        again.mkdir()
        d2 = Daemon(again)
        try:
            assert not our_dpdk_dirs(), our_dpdk_dirs()
            assert not our_netns()
        finally:
            assert d2.stop() == 0
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
        d.stop(sig=9)
