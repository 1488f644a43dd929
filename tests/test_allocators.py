"""The heap probe on the allocator a program really uses: Debian's jemalloc
(shared, and linked into the program), tcmalloc and mimalloc each catch a
double free with both stacks, name a one-site slow leak, and PASS the
clean twin; a program whose allocator faultd cannot tell is INCONCLUSIVE
with the reason, never PASS."""
import json

import jsonschema
import pytest

from conftest import (REPO, assert_nothing_left, faultctl, invariant, only_report,
                      write_scenario)

REPORT_SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())

ALLOCATORS = [("alloc_jemalloc", "jemalloc", "libjemalloc.so"),
              ("alloc_jemalloc_static", "jemalloc", "alloc_jemalloc_static"),
              ("alloc_tcmalloc", "tcmalloc", "libtcmalloc_minimal.so"),
              ("alloc_mimalloc", "mimalloc", "libmimalloc.so")]
IDS = [a[0] for a in ALLOCATORS]


def run_prog(tmp_path, runs_dir, progs, prog, args, invariants, extra=None, env=None):
    wl = {"name": "w", "kind": "exec", "cmd": [str(progs / prog), *args], "probes": ["heap"]}
    wl.update(extra or {})
    doc = {"name": f"{prog}-{args[0]}", "seed": 5, "duration_s": 30, "sample_ms": 200,
           "workloads": [wl], "invariants": invariants}
    path = write_scenario(tmp_path / "s.json", doc)
    res = faultctl("run", "--local", "--quiet", path, runs_dir=runs_dir, timeout=120, env=env)
    rep = only_report(runs_dir)
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert_nothing_left(rep)
    return res, rep


def coverage(rep):
    return rep["probes"]["workloads"]["w"]["heap"]["coverage"]


@pytest.mark.parametrize("prog,allocator,served_by", ALLOCATORS, ids=IDS)
def test_double_free_is_caught_with_both_stacks(tmp_path, runs_dir, progs, prog, allocator,
                                                served_by):
    res, rep = run_prog(tmp_path, runs_dir, progs, prog, ["double-free"],
                        [{"name": "no_invalid_free"}, {"name": "no_crash"}])
    assert res.returncode == 1, res
    cov = coverage(rep)
    assert cov["complete"] is True, cov
    [program] = cov["programs"]
    assert program["allocator"] == allocator and program["known"] is True, program
    assert served_by in program["served_by"], program
    assert any(e.startswith("free ") or e.startswith("malloc ") for e in program["entry_points"])
    inv = invariant(rep, "no_invalid_free")
    assert inv["verdict"] == "FAIL", inv
    ev = inv["evidence"][0]
    assert ev["kind"] == "double_free" and ev["size"] == 48, ev
    # The second free (alloc_ops.h:59) and the first (:57), both through
    # session_release; the block's allocation at :53.
    assert "session_release" in ev["stack"][1], ev["stack"]
    assert "alloc_ops.h:59" in " | ".join(ev["stack"]), ev["stack"]
    assert "alloc_ops.h:57" in " | ".join(ev["first_free"]["stack"]), ev["first_free"]
    assert "alloc_ops.h:53" in " | ".join(ev["allocated_at"]), ev["allocated_at"]
    assert "from session_release" in inv["summary"], inv["summary"]
    assert ev["first_free"]["at_ms"] < ev["at_ms"]


def test_stacks_whose_bucket_is_taken_are_kept(tmp_path, progs):
    # The stack map keeps a stack in the bucket its hash picks; another
    # stack there was refused and the free showed its caller alone (about
    # one run in a thousand). Eight buckets make that happen in every run:
    # the spill map must keep them. Nearly every stack then goes to the
    # spill map, whose 1,024 buckets are picked from the same hash: two of
    # them in one bucket there (the addresses, and so the hashes, change
    # with each run's address layout) lose one: 1 run in 40 here, and once
    # in CI. Such a loss must be counted and the stack shown as its caller
    # alone; and of three runs, one keeps every stack.
    for k in range(3):
        runs = tmp_path / f"runs{k}"
        res, rep = run_prog(tmp_path, runs, progs, "alloc_mimalloc", ["double-free"],
                            [{"name": "no_invalid_free"}],
                            env={"FAULTD_HEAP_STACK_BUCKETS": "8"})
        assert res.returncode == 1, res
        ev = invariant(rep, "no_invalid_free")["evidence"][0]
        stacks = [ev["stack"], ev["first_free"]["stack"], ev["allocated_at"]]
        lost = rep["probes"]["workloads"]["w"]["heap"]["losses"]["stacks"]
        kept = ("alloc_ops.h:59" in " | ".join(stacks[0]) and
                "alloc_ops.h:57" in " | ".join(stacks[1]) and
                "alloc_ops.h:53" in " | ".join(stacks[2]))
        # Whole, or a loss counted: never a stack cut short unsaid.
        assert kept or (lost > 0 and any(len(st) <= 1 for st in stacks)), (lost, stacks)
        if kept and lost == 0:
            break
    else:
        raise AssertionError("no run of three kept every stack")


@pytest.mark.parametrize("prog,allocator,served_by", ALLOCATORS, ids=IDS)
def test_slow_leak_names_its_site(tmp_path, runs_dir, progs, prog, allocator, served_by):
    # Two leaks per 200 ms cycle: one would sit on the sampling's edge.
    res, rep = run_prog(tmp_path, runs_dir, progs, prog, ["leak", "50", "100"],
                        [{"name": "heap_stable"}, {"name": "no_invalid_free"}])
    assert res.returncode == 1, res
    inv = invariant(rep, "heap_stable")
    assert inv["verdict"] == "FAIL", inv
    ev = inv["evidence"][0]
    assert 1800 <= ev["slope_per_cycle"] <= 2200, ev
    top = ev["top_growing_sites"][0]
    assert "leak_one" in top["caller"] and "alloc_ops.h" in top["caller"], top
    assert invariant(rep, "no_invalid_free")["verdict"] == "PASS"
    assert coverage(rep)["programs"][0]["allocator"] == allocator


@pytest.mark.parametrize("prog,allocator,served_by", ALLOCATORS, ids=IDS)
def test_clean_twin_passes(tmp_path, runs_dir, progs, prog, allocator, served_by):
    # Every member of the family (and the allocator's own API: mallocx and
    # sdallocx, operator new/delete, mi_malloc/mi_free) must be probed, or
    # the churn would read as a leak or a bad free here.
    res, rep = run_prog(tmp_path, runs_dir, progs, prog, ["clean", "25", "200"],
                        [{"name": "heap_stable"}, {"name": "no_invalid_free"},
                         {"name": "no_crash"}, {"name": "exit_ok"}])
    assert res.returncode == 0, (res, [(i["name"], i["summary"]) for i in rep["invariants"]])
    heap = rep["probes"]["workloads"]["w"]["heap"]
    assert heap["allocs"] >= 150 and heap["lost"] == 0, heap
    assert coverage(rep)["complete"] is True


def test_unknown_allocator_is_inconclusive_with_the_reason(tmp_path, runs_dir, progs):
    # Static and stripped: nothing names its malloc. "0 allocations tracked,
    # no invalid free" would be a false assurance.
    res, rep = run_prog(tmp_path, runs_dir, progs, "alloc_unknown", ["clean", "10", "100"],
                        [{"name": "heap_stable"}, {"name": "no_invalid_free"},
                         {"name": "no_crash"}])
    assert res.returncode == 2, res
    for name in ("heap_stable", "no_invalid_free"):
        inv = invariant(rep, name)
        assert inv["verdict"] == "INCONCLUSIVE", inv
        assert "allocator is unknown" in inv["summary"], inv["summary"]
        ev = inv["evidence"][0]
        assert ev["kind"] == "heap_coverage" and ev["coverage"]["complete"] is False, ev
    assert invariant(rep, "no_crash")["verdict"] == "PASS"
    [program] = coverage(rep)["programs"]
    assert program["known"] is False and program["entry_points"] == [], program


def test_glibc_program_names_glibc(tmp_path, runs_dir, progs):
    res, rep = run_prog(tmp_path, runs_dir, progs, "leak_site", ["10", "100"],
                        [{"name": "no_invalid_free"}])
    assert res.returncode == 0, res
    [program] = coverage(rep)["programs"]
    assert program["allocator"] == "glibc" and "libc.so" in program["served_by"], program


def test_preloaded_allocator_is_the_one_probed(tmp_path, runs_dir, progs):
    # LD_PRELOAD puts jemalloc in front of glibc: its malloc is the one.
    res, rep = run_prog(tmp_path, runs_dir, progs, "leak_site", ["10", "100"],
                        [{"name": "no_invalid_free"}],
                        {"env": {"LD_PRELOAD": "libjemalloc.so.2"}})
    assert res.returncode == 0, res
    [program] = coverage(rep)["programs"]
    assert program["allocator"] == "jemalloc", program
    assert rep["probes"]["workloads"]["w"]["heap"]["allocs"] >= 10


def test_exec_in_a_shell_child_probes_the_childs_allocator(tmp_path, runs_dir, progs):
    # sh (glibc) runs the jemalloc program: the child's exec is re-planned.
    # The new program's probes are attached after its exec is seen, in a
    # fraction of a second (perf-event uprobes: 0.2 s at the median, more
    # under load): what it allocates before is not judged (a free finding
    # no block is counted, docs/invariants.md). So it waits 1 s before its
    # first allocation.
    cmd = ["/bin/sh", "-c", f"{progs / 'alloc_jemalloc'} double-free 1000; exit 0"]
    doc = {"name": "sh-jemalloc", "seed": 5, "duration_s": 30, "sample_ms": 200,
           "workloads": [{"name": "w", "kind": "exec", "cmd": cmd, "probes": ["heap"]}],
           "invariants": [{"name": "no_invalid_free"}]}
    path = write_scenario(tmp_path / "s.json", doc)
    res = faultctl("run", "--local", "--quiet", path, runs_dir=runs_dir, timeout=120)
    rep = only_report(runs_dir)
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert_nothing_left(rep)
    allocators = {p["allocator"] for p in coverage(rep)["programs"]}
    assert allocators == {"glibc", "jemalloc"}, coverage(rep)
    inv = invariant(rep, "no_invalid_free")
    assert inv["verdict"] == "FAIL" and "session_release" in inv["summary"], (res, inv)


POOL = [{"alloc": "pool_get", "size_arg": 2}, {"free": "pool_put", "ptr_arg": 2}]


def test_pool_allocator_named_in_the_scenario_is_tracked_like_malloc(tmp_path, runs_dir, progs):
    # malloc sees one slab: without the key the double put is invisible.
    res, rep = run_prog(tmp_path, runs_dir, progs, "pool_alloc", ["double-put"],
                        [{"name": "no_invalid_free"}])
    assert res.returncode == 0, res
    runs2 = tmp_path / "runs2"
    runs2.mkdir()
    res, rep = run_prog(tmp_path, runs2, progs, "pool_alloc", ["double-put"],
                        [{"name": "no_invalid_free"}], {"allocators": POOL})
    assert res.returncode == 1, res
    inv = invariant(rep, "no_invalid_free")
    ev = inv["evidence"][0]
    assert ev["kind"] == "double_free" and ev["size"] == 48, ev
    assert "conn_close" in ev["stack"][1] and "pool_alloc.c:73" in " | ".join(ev["stack"]), ev
    assert "pool_alloc.c:71" in " | ".join(ev["first_free"]["stack"]), ev["first_free"]
    assert "pool_alloc.c:68" in " | ".join(ev["allocated_at"]), ev["allocated_at"]
    entry_points = coverage(rep)["programs"][0]["entry_points"]
    assert "pool_get [pool_alloc]" in entry_points and "pool_put [pool_alloc]" in entry_points


def test_pool_leak_is_named_and_clean_pool_passes(tmp_path, runs_dir, progs):
    stable = {"name": "heap_stable", "min_slope": 16}
    # Two 40-byte leaks per 200 ms cycle: one would sit on the sampling's edge.
    res, rep = run_prog(tmp_path, runs_dir, progs, "pool_alloc", ["leak", "50", "100"],
                        [stable, {"name": "no_invalid_free"}], {"allocators": POOL})
    assert res.returncode == 1, res
    ev = invariant(rep, "heap_stable")["evidence"][0]
    assert 70 <= ev["slope_per_cycle"] <= 90, ev
    assert "remember_one" in ev["top_growing_sites"][0]["caller"], ev["top_growing_sites"]
    runs2 = tmp_path / "runs2"
    runs2.mkdir()
    res, rep = run_prog(tmp_path, runs2, progs, "pool_alloc", ["clean", "25", "200"],
                        [stable, {"name": "no_invalid_free"}], {"allocators": POOL})
    assert res.returncode == 0, (res, [(i["name"], i["summary"]) for i in rep["invariants"]])


def test_unknown_allocator_makes_no_leak_inconclusive(tmp_path, runs_dir, progs):
    res, rep = run_prog(tmp_path, runs_dir, progs, "alloc_unknown", ["leak", "5", "50"],
                        [{"name": "no_leak"}])
    inv = invariant(rep, "no_leak")
    assert inv["verdict"] == "INCONCLUSIVE" and "allocator is unknown" in inv["summary"], inv
