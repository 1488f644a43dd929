"""Degrading by feature: a BPF program the kernel refuses costs only the
feature it serves, is named in the report's capabilities and in `faultctl
check`, and turns into INCONCLUSIVE only the invariants that need it.

The refusals are real: FAULTD_REFUSE_PROGS makes faultd load the named
programs as socket filters, which the kernel refuses, so the same path runs
as when a kernel's verifier says no (as 6.18.44's did to proc_signal)."""
import json

import jsonschema

from conftest import (REPO, PROGS, assert_nothing_left, faultctl, invariant, only_report,
                      write_scenario)

REPORT_SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())
FEATURES = ["cgroup", "proc", "crash_stack", "heap", "fds", "fd_calls", "lifecycle", "netns",
            "tap", "packet", "delay", "rate", "syscall_socket", "syscall_seccomp"]


def run_refused(tmp_path, runs_dir, refuse, cmd, probes, invariants, duration_s=20):
    doc = {"name": "refused", "seed": 1, "duration_s": duration_s, "sample_ms": 200,
           "workloads": [{"name": "w", "kind": "exec", "cmd": cmd, "probes": probes}],
           "invariants": invariants}
    path = write_scenario(tmp_path / "refused.json", doc)
    res = faultctl("run", "--local", "--quiet", path, runs_dir=runs_dir, timeout=120,
                   env={"FAULTD_REFUSE_PROGS": refuse} if refuse else None)
    rep = only_report(runs_dir)
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert_nothing_left(rep)
    return res, rep


def test_check_lists_every_feature_and_passes_here():
    res = faultctl("check", "--json", timeout=120)
    assert res.returncode == 0, res
    caps = json.loads(res.stdout)
    assert sorted(caps) == sorted(FEATURES)
    assert caps["proc"]["core"] and caps["cgroup"]["core"]
    # This machine's kernel has every mechanism faultd uses or a fallback.
    missing = {k: v for k, v in caps.items() if v["state"] != "ok"}
    assert not missing, missing
    assert caps["proc"]["via"].startswith("tp_btf sched_process_exit")
    table = faultctl("check", timeout=120)
    assert table.returncode == 0, table
    assert "proc (core)" in table.stdout and "FEATURE" in table.stdout
    assert table.stdout.rstrip().endswith("every feature works"), table.stdout


def test_check_without_a_core_feature_exits_1():
    res = faultctl("check", timeout=120, env={"FAULTD_REFUSE_PROGS": "proc_fork"})
    assert res.returncode == 1, res
    assert "1 core feature missing" in res.stdout, res.stdout
    assert "the kernel refused program proc_fork" in res.stdout, res.stdout


def test_refused_crash_stacks_cost_only_crash_stacks(tmp_path, runs_dir):
    res, rep = run_refused(tmp_path, runs_dir, "proc_signal", [str(PROGS / "segv")], [],
                           [{"name": "no_crash"}])
    assert res.returncode == 1, res
    crash = invariant(rep, "no_crash")
    assert crash["verdict"] == "FAIL" and "SIGSEGV" in crash["summary"], crash
    caps = rep["capabilities"]
    assert caps["proc"]["state"] == "ok", caps
    assert caps["crash_stack"]["state"] == "missing", caps
    assert "proc_signal" in caps["crash_stack"]["why"]
    assert "signal_deliver" in caps["crash_stack"]["needs"]


def test_refused_fds_probe_makes_only_fd_invariants_inconclusive(tmp_path, runs_dir):
    res, rep = run_refused(tmp_path, runs_dir, "count_fds", [str(PROGS / "fd_leak"), "10", "100"],
                           ["fds"], [{"name": "fds_stable"}, {"name": "no_crash"},
                                     {"name": "exit_ok"}])
    assert res.returncode == 2, res
    assert rep["verdict"] == "INCONCLUSIVE"
    fds = invariant(rep, "fds_stable")
    assert fds["verdict"] == "INCONCLUSIVE", fds
    assert fds["summary"].startswith("needs fds, which this host lacks: the kernel refused "
                                     "program count_fds"), fds
    assert fds["evidence"][0]["missing_feature"] == "fds"
    assert invariant(rep, "no_crash")["verdict"] == "PASS"
    assert invariant(rep, "exit_ok")["verdict"] == "PASS"
    assert rep["capabilities"]["fds"]["state"] == "missing"


def test_refused_heap_probe_is_never_a_wrong_verdict(tmp_path, runs_dir):
    # invalid_free frees a pointer it never allocated: with the heap probe
    # it FAILs (test_probes); without it, nothing may claim PASS.
    res, rep = run_refused(tmp_path, runs_dir, "free_enter", [str(PROGS / "invalid_free")],
                           ["heap"], [{"name": "no_invalid_free"}, {"name": "heap_stable"}])
    assert res.returncode == 2, res
    for name in ("no_invalid_free", "heap_stable"):
        inv = invariant(rep, name)
        assert inv["verdict"] == "INCONCLUSIVE" and inv["summary"].startswith("needs heap"), inv
    assert "free_enter" in rep["capabilities"]["heap"]["why"]


def test_nothing_refused_gives_the_real_verdict(tmp_path, runs_dir):
    res, rep = run_refused(tmp_path, runs_dir, None, [str(PROGS / "fd_leak"), "25", "200"],
                           ["fds"], [{"name": "fds_stable", "limit": 64}])
    assert res.returncode == 1, res
    assert invariant(rep, "fds_stable")["verdict"] == "FAIL"
    assert rep["capabilities"]["fds"] == {"state": "ok", "core": False,
                                          "via": "iter/task_file"}


def test_refused_socket_errors_are_not_applied(tmp_path, runs_dir):
    # Before 5.18 cgroup/sock_create cannot choose the errno: the fault is
    # listed as not applied and the run, which would pass, is unproven.
    doc = {"name": "syserr", "duration_s": 20,
           "workloads": [{"name": "w", "kind": "exec", "cmd": [str(PROGS / "sock_try"), "200"]}],
           "faults": [{"type": "syscall_error", "workload": "w", "syscall": "socket",
                       "errno": "ENFILE", "pct": 50}],
           "invariants": [{"name": "no_crash"}, {"name": "exit_ok"}]}
    path = write_scenario(tmp_path / "se.json", doc)
    res = faultctl("run", "--local", "--quiet", path, runs_dir=runs_dir, timeout=60,
                   env={"FAULTD_REFUSE_PROGS": "sock_create"})
    assert res.returncode == 2, res
    rep = only_report(runs_dir)
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert_nothing_left(rep)
    assert rep["faults_not_applied"] == [{"fault": "syscall_error socket of w",
                                          "why": rep["capabilities"]["syscall_socket"]["why"]}]
    assert "sock_create" in rep["capabilities"]["syscall_socket"]["why"]
    for inv in rep["invariants"]:
        assert inv["verdict"] == "INCONCLUSIVE", inv
        assert "was not applied" in inv["summary"], inv
