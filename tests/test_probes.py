"""The heap, fds and lifecycle probes on real processes: each bug FAILs on the
right invariant with the address, site or stack in the evidence; each correct
program PASSes; nothing stays attached after a run."""
import json

import jsonschema
import pytest

from conftest import (REPO, assert_nothing_left, faultctl, invariant, only_report,
                      write_scenario)

REPORT_SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())


def run_one(tmp_path, runs_dir, progs, name, cmd, probes, invariants, sample_ms=200,
            duration_s=30):
    doc = {"name": name, "seed": 3, "duration_s": duration_s, "sample_ms": sample_ms,
           "workloads": [{"name": "w", "kind": "exec", "cmd": [str(progs / cmd[0]), *cmd[1:]],
                          "probes": probes}],
           "invariants": invariants}
    path = write_scenario(tmp_path / f"{name}.json", doc)
    res = faultctl("run", "--local", "--quiet", path, runs_dir=runs_dir, timeout=120)
    rep = only_report(runs_dir)
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert_nothing_left(rep)
    return res, rep


def frames(stack):
    return " | ".join(stack)


def test_double_free_glibc_tolerates(tmp_path, runs_dir, progs):
    res, rep = run_one(tmp_path, runs_dir, progs, "df-tolerated", ["double_free_tolerated"],
                       ["heap"], [{"name": "no_invalid_free"}, {"name": "no_crash"},
                                  {"name": "exit_ok"}])
    assert res.returncode == 1, res
    # glibc never noticed: the program ran on and exited 0.
    assert rep["workloads"][0]["exit_code"] == 0
    assert invariant(rep, "no_crash")["verdict"] == "PASS"
    inv = invariant(rep, "no_invalid_free")
    assert inv["verdict"] == "FAIL"
    ev = inv["evidence"][0]
    assert ev["kind"] == "double_free"
    assert ev["address"].startswith("0x") and ev["size"] == 32
    # Both frees, by line: the first at line 30, the second at line 32.
    assert "release+" in ev["stack"][1] and "double_free_tolerated.c:32" in frames(ev["stack"])
    assert "double_free_tolerated.c:30" in frames(ev["first_free"]["stack"])
    assert "double_free_tolerated.c:25" in frames(ev["allocated_at"])
    assert "double free of 0x" in inv["summary"]


def test_double_free_glibc_aborts_on_is_recorded_before_the_abort(tmp_path, runs_dir, progs):
    res, rep = run_one(tmp_path, runs_dir, progs, "df-abort", ["double_free_abort"], ["heap"],
                       [{"name": "no_invalid_free"}, {"name": "no_crash"}])
    assert res.returncode == 1, res
    inv = invariant(rep, "no_invalid_free")
    ev = inv["evidence"][0]
    assert ev["kind"] == "double_free"
    assert "session_close" in ev["stack"][1]
    assert "session_close" in frames(ev["first_free"]["stack"])
    crash = invariant(rep, "no_crash")
    assert crash["verdict"] == "FAIL" and crash["evidence"][0]["signal"] == "SIGABRT"
    # The free was seen before the abort it caused.
    assert ev["at_ms"] <= crash["evidence"][0]["at_ms"]


def test_free_of_never_allocated_pointer(tmp_path, runs_dir, progs):
    res, rep = run_one(tmp_path, runs_dir, progs, "invalid", ["invalid_free"], ["heap"],
                       [{"name": "no_invalid_free"}])
    assert res.returncode == 1, res
    ev = invariant(rep, "no_invalid_free")["evidence"][0]
    assert ev["kind"] == "invalid_free"
    assert "drop+" in ev["stack"][1] and "invalid_free.c:7" in ev["stack"][1]
    # The middle of a live block was never in freed memory.
    assert "read_from_freed" not in ev


def test_free_of_a_pointer_read_from_freed_memory_names_both_frees(tmp_path, runs_dir, progs):
    # Incident 1's "free(): invalid pointer" of "8resu": a stale session
    # frees the buffer pointer it reads from its own freed block, which a
    # string has taken over.
    res, rep = run_one(tmp_path, runs_dir, progs, "stale", ["stale_free"], ["heap"],
                       [{"name": "no_invalid_free"}, {"name": "no_crash"}])
    assert res.returncode == 1, res
    inv = invariant(rep, "no_invalid_free")
    ev = inv["evidence"][0]
    assert ev["kind"] == "invalid_free" and ev["address"] == "0x7573657238", ev
    assert "session_reset" in ev["stack"][1], ev["stack"]
    src = ev["read_from_freed"]
    assert src["size"] == 64 and src["offset"] == 16 and src["other_holders"] == 0, src
    assert any("session_free" in f for f in src["stack"]), src
    assert any("session_new" in f for f in src["allocated_at"]), src
    assert any("name_new" in f for f in src["reallocated_at"]), src
    assert src["at_ms"] <= ev["at_ms"]
    assert "read from a 64-byte block freed by session_free" in inv["summary"], inv["summary"]
    # glibc then reads the chunk header below that address: unmapped here.
    crash = invariant(rep, "no_crash")
    assert crash["verdict"] == "FAIL" and crash["evidence"][0]["signal"] == "SIGSEGV", crash
    assert inv["first_violation_ms"] <= crash["first_violation_ms"]


def test_every_allocator_and_threads_pass_clean(tmp_path, runs_dir, progs):
    res, rep = run_one(tmp_path, runs_dir, progs, "alloc-all", ["alloc_all"], ["heap"],
                       [{"name": "no_invalid_free"}, {"name": "no_crash"}, {"name": "exit_ok"}])
    assert res.returncode == 0, res
    inv = invariant(rep, "no_invalid_free")
    assert inv["verdict"] == "PASS" and inv["evidence"] == []
    heap = rep["probes"]["workloads"]["w"]["heap"]
    assert heap["allocs"] > 40000 and heap["lost"] == 0
    # glibc's own frees at thread exit are counted, not reported.
    assert heap["libc_internal_frees"] > 0
    assert "free+9" in heap["placement"] and "emulated" in heap["placement"]


def test_steady_leak_names_its_site(tmp_path, runs_dir, progs):
    # Two 1000-byte blocks leaked per 200 ms cycle (one per cycle would sit
    # on the sampling's edge: a jittered cycle could hold none).
    res, rep = run_one(tmp_path, runs_dir, progs, "leak", ["leak_site", "50", "100"], ["heap"],
                       [{"name": "heap_stable"}, {"name": "no_invalid_free"}])
    assert res.returncode == 1, res
    inv = invariant(rep, "heap_stable")
    assert inv["verdict"] == "FAIL"
    assert inv["first_violation_cycle"] <= 5
    ev = inv["evidence"][0]
    assert 1800 <= ev["slope_per_cycle"] <= 2200
    top = ev["top_growing_sites"][0]
    assert "leak_one" in top["caller"] and "leak_site.c" in top["caller"]
    assert top["growth_bytes"] >= 10000
    assert invariant(rep, "no_invalid_free")["verdict"] == "PASS"
    # Per-cycle live bytes are in the report, climbing (a cycle that ends
    # after the workload exited has no heap sample).
    series = [c["workloads"]["w"]["heap_bytes"] for c in rep["cycles"] if "w" in c["workloads"]]
    assert series[-1] > series[1] + 10000


@pytest.mark.parametrize("sockets", [False, True])
def test_fd_and_socket_leaks(tmp_path, runs_dir, progs, sockets):
    cmd = ["fd_leak", *(["--sockets"] if sockets else []), "25", "200"]
    name = "sockets_stable" if sockets else "fds_stable"
    res, rep = run_one(tmp_path, runs_dir, progs, "sock-leak" if sockets else "fd-leak", cmd,
                       ["fds"], [{"name": name, "limit": 64}])
    assert res.returncode == 1, res
    inv = invariant(rep, name)
    assert inv["verdict"] == "FAIL"
    assert inv["first_violation_cycle"] <= 5
    ev = inv["evidence"][0]
    assert 0.9 <= ev["slope_per_cycle"] <= 1.1
    assert ev["limit"] == 64 and ev["projected_exhaustion_cycle"] > ev["window"][-1]["cycle"]
    assert "reached at cycle" in inv["summary"]
    assert ev["calls"].get("socket" if sockets else "openat", 0) >= 20
    # A cycle that ends after the workload exited has no fd sample: a gone
    # process has no fds, which says nothing about whether it closed them.
    last = [c["workloads"]["w"] for c in rep["cycles"] if "w" in c["workloads"]][-1]
    assert last["fd_types"].get("udp" if sockets else "chr", 0) >= 20


def test_warmup_is_not_a_leak(tmp_path, runs_dir, progs):
    res, rep = run_one(tmp_path, runs_dir, progs, "warmup", ["warmup_pool", "40", "100"],
                       ["heap", "fds"], [{"name": "heap_stable"}, {"name": "fds_stable"},
                                         {"name": "no_invalid_free"}])
    assert res.returncode == 0, res
    assert all(i["verdict"] == "PASS" for i in rep["invariants"]), rep["invariants"]
    series = [c["workloads"]["w"]["heap_bytes"] for c in rep["cycles"] if "w" in c["workloads"]]
    assert max(series) > series[0]  # it did grow at first


def test_usdt_clean_program_passes(tmp_path, runs_dir, progs):
    res, rep = run_one(tmp_path, runs_dir, progs, "usdt-ok", ["usdt_objects"], ["lifecycle"],
                       [{"name": "lifecycle"}, {"name": "msg_integrity"}])
    assert res.returncode == 0, res
    assert rep["probes"]["workloads"]["w"]["lifecycle"]["attached"] is True


def test_usdt_event_after_destroy_and_duplicate_message(tmp_path, runs_dir, progs):
    res, rep = run_one(tmp_path, runs_dir, progs, "usdt-bugs",
                       ["usdt_objects", "--event-after-destroy", "--duplicate"], ["lifecycle"],
                       [{"name": "lifecycle"}, {"name": "msg_integrity"}])
    assert res.returncode == 1, res
    life = invariant(rep, "lifecycle")
    ev = life["evidence"][0]
    assert (ev["kind"], ev["object_kind"], ev["id"], ev["event"]) == \
        ("event_after_destroy", "qpair", 17, "last_wqe")
    assert ev["destroyed_tid"] != ev["tid"]  # two threads: who destroyed, who touched
    assert "qpair 17" in life["summary"] and "last_wqe" in life["summary"]
    msg = invariant(rep, "msg_integrity")
    mev = msg["evidence"][0]
    assert (mev["kind"], mev["queue"], mev["seq"]) == ("duplicate", 1, 30)
    assert mev["ptr"] == mev["first_ptr"]


def test_messages_and_objects_left_at_exit_fail_but_not_after_a_crash(tmp_path, runs_dir,
                                                                      progs):
    """What a program leaves in flight when it exits by itself is its bug:
    msg_integrity names the messages never received, lifecycle the objects
    never destroyed. A crash cuts the same work off: that is no_crash's
    finding alone, not a flood of lost messages beside it."""
    invs = [{"name": "lifecycle"}, {"name": "msg_integrity"}, {"name": "no_crash"}]
    res, rep = run_one(tmp_path, runs_dir, progs, "usdt-leave", ["usdt_objects", "--leave"],
                       ["lifecycle"], invs)
    assert res.returncode == 1, res
    assert rep["workloads"][0]["exit_code"] == 0
    msg = invariant(rep, "msg_integrity")
    assert msg["verdict"] == "FAIL", msg
    assert sorted((e["kind"], e["queue"], e["seq"]) for e in msg["evidence"]) == \
        [("lost", 1, 51), ("lost", 1, 52), ("lost", 1, 53)]
    assert msg["summary"].startswith("3 messages sent and never received"), msg
    life = invariant(rep, "lifecycle")
    assert life["verdict"] == "FAIL", life
    assert sorted((e["kind"], e["object_kind"], e["id"]) for e in life["evidence"]) == \
        [("alive_at_end", "qpair", 21), ("alive_at_end", "qpair", 22)]
    assert life["summary"].startswith("2 objects still alive when the workload exited (qpair 2"), \
        life
    assert invariant(rep, "no_crash")["verdict"] == "PASS"

    crashed = tmp_path / "crashed"
    crashed.mkdir()
    res, rep = run_one(tmp_path, crashed, progs, "usdt-leave-abort",
                       ["usdt_objects", "--leave", "--abort"], ["lifecycle"], invs)
    assert res.returncode == 1, res
    assert invariant(rep, "no_crash")["verdict"] == "FAIL"
    assert invariant(rep, "msg_integrity")["verdict"] == "PASS", invariant(rep, "msg_integrity")
    assert invariant(rep, "lifecycle")["verdict"] == "PASS", invariant(rep, "lifecycle")


def test_lost_tracking_is_inconclusive_never_pass(tmp_path, runs_dir, progs):
    res, rep = run_one(tmp_path, runs_dir, progs, "overflow", ["many_blocks", "1100000"], ["heap"],
                       [{"name": "no_invalid_free"}], duration_s=120)
    assert res.returncode == 2, res
    inv = invariant(rep, "no_invalid_free")
    assert inv["verdict"] == "INCONCLUSIVE"
    heap = rep["probes"]["workloads"]["w"]["heap"]
    assert heap["lost"] > 0 and heap["losses"]["live_map_full"] > 0


def test_invariant_without_its_probe_is_a_scenario_error(tmp_path):
    doc = {"name": "noprobe", "workloads": [{"name": "w", "kind": "exec", "cmd": ["true"]}],
           "invariants": [{"name": "heap_stable", "workload": "w"}]}
    path = write_scenario(tmp_path / "np.json", doc)
    res = faultctl("validate", path)
    assert res.returncode == 3
    assert 'invariants[0].workload: heap_stable needs "heap" in workloads[0].probes' in res.stderr


def test_double_free_in_a_forked_child(tmp_path, runs_dir, progs):
    res, rep = run_one(tmp_path, runs_dir, progs, "child-df", ["fork_double_free"], ["heap"],
                       [{"name": "no_invalid_free"}, {"name": "exit_ok"}])
    assert res.returncode == 1, res
    inv = invariant(rep, "no_invalid_free")
    ev = inv["evidence"][0]
    root = rep["workloads"][0]["pid"]
    assert ev["kind"] == "double_free" and ev["pid"] != root
    assert "release+" in ev["stack"][1] and "fork_double_free.c" in ev["stack"][1]
    # The inherited block's free in the child was counted, not judged.
    heap = rep["probes"]["workloads"]["w"]["heap"]
    assert heap["losses"]["child_unjudged_frees"] >= 1
    assert len(inv["evidence"]) == 1


def test_inlined_bad_free_is_named_by_its_own_function_and_line(tmp_path, runs_dir, progs):
    # inline_free is built -O2: buf_release's free() sits inside main. The
    # frame names the helper and its line first, then main at the call
    # site, as `addr2line -i` does.
    res, rep = run_one(tmp_path, runs_dir, progs, "inline", ["inline_free"], ["heap"],
                       [{"name": "no_invalid_free"}])
    assert res.returncode == 1, res
    inv = invariant(rep, "no_invalid_free")
    ev = inv["evidence"][0]
    assert ev["kind"] == "invalid_free", ev
    frame = ev["stack"][1]
    assert frame.startswith("buf_release (inline_free.c:10) inlined in main+"), frame
    assert "(inline_free.c:21) [inline_free]" in frame, frame
    assert "from buf_release (inline_free.c:10)" in inv["summary"], inv["summary"]


def test_a_shells_vfork_children_are_not_invalid_frees(tmp_path, runs_dir, progs):
    """dash spawns each command with vfork: the child allocates on its
    parent's heap before its exec, and the parent frees that block later.
    Counted as the parent's, that is no bad free (it was 279 "pointers never
    allocated" in 300 spawns when the child's calls were its own, or unseen
    as with uprobe_multi links since Linux 6.10)."""
    loop = "i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done"
    res, rep = run_one(tmp_path, runs_dir, progs, "vfork", ["/bin/sh", "-c", loop], ["heap"],
                       [{"name": "no_invalid_free"}, {"name": "no_crash"}])
    assert res.returncode == 0, (res, invariant(rep, "no_invalid_free")["summary"])
    heap = rep["probes"]["workloads"]["w"]["heap"]
    assert heap["allocs"] >= 200 and heap["lost"] == 0, heap
