"""Incidents 3 and 4 end to end: the buggy twins of the queue workloads FAIL
on the right invariant with evidence a developer can act on, recorded
before the process aborts; the ASan build's own report lands in the same
report. (The clean twins PASS over 60 s with faults on in
test_run_local's run of scenarios/.)"""
import json

import jsonschema

from conftest import REPO, assert_nothing_left, faultctl, invariant, only_report
from ext_schemas import ext_schema

REPORT_SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())


def run_scenario(name, runs_dir):
    res = faultctl("run", "--local", "--quiet", "--expect", f"scenarios/{name}.json",
                   runs_dir=runs_dir, timeout=120)
    assert res.returncode == 0, res
    rep = only_report(runs_dir)
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert_nothing_left(rep)
    return rep


def test_msgq_publish_early_fails_on_the_stale_dequeue_and_the_double_free(runs_dir):
    rep = run_scenario("msgq-publish-early", runs_dir)
    hog_on = min(f["t_actual_ms"] for f in rep["faults"] if f["action"] == "cpu_hog_on")
    msg = invariant(rep, "msg_integrity")
    assert msg["verdict"] == "FAIL", msg
    # The stale dequeue: last round's pointer, already freed, read from its
    # slot again. Its fields still name the message received then, so that
    # message is received twice. When malloc has meanwhile given the block to
    # a newer message still in the ring, the stale read takes that one ahead
    # of its producer's older ones (out_of_order), and its own slot then
    # brings it again: the duplicate comes next (2 runs of 20).
    kinds = [e["kind"] for e in msg["evidence"]]
    assert kinds[0] in ("duplicate", "out_of_order"), kinds
    # The crash cut the queue off: what was in it is not reported lost.
    assert "lost" not in kinds, kinds
    dup = next(e for e in msg["evidence"] if e["kind"] == "duplicate")
    # The stale dequeue: the same producer (queue) and sequence number as a
    # message already received, by pointer, with both threads and times.
    for key in ("queue", "seq", "ptr", "first_ptr", "tid", "first_received_tid",
                "first_received_ms"):
        assert key in dup, dup
    assert dup["ptr"] == dup["first_ptr"]
    free = invariant(rep, "no_invalid_free")
    assert free["verdict"] == "FAIL", free
    df = free["evidence"][0]
    assert df["kind"] == "double_free" and df["address"] == dup["ptr"], (df, dup)
    assert any("consumer" in f for f in df["stack"]), df
    assert any("consumer" in f for f in df["first_free"]["stack"]), df
    assert any("producer" in f for f in df["allocated_at"]), df
    # Within 2 s of the fault window opening, and before glibc's abort.
    assert msg["first_violation_ms"] - hog_on <= 2000
    assert free["first_violation_ms"] - hog_on <= 2000
    # glibc then kills it (SIGABRT, or SIGSEGV when the corrupted free list
    # breaks first): after faultd has the evidence.
    crash = invariant(rep, "no_crash")
    assert crash["verdict"] == "FAIL", crash
    assert crash["first_violation_ms"] >= free["first_violation_ms"]


def test_qpair_event_after_destroy_names_the_qpair_event_and_both_threads(runs_dir):
    rep = run_scenario("qpair-event-after-destroy", runs_dir)
    life = invariant(rep, "lifecycle")
    assert life["verdict"] == "FAIL", life
    ev = life["evidence"][0]
    assert ev["kind"] == "event_after_destroy" and ev["object_kind"] == "qpair"
    assert ev["event"] == "last_wqe" and ev["id"] >= 1
    assert ev["tid"] != ev["destroyed_tid"] and ev["destroyed_ms"] <= ev["at_ms"]
    assert f"qpair {ev['id']}" in life["summary"] and "last_wqe" in life["summary"]
    # Its first occurrence: the first qpair disconnected.
    assert life["first_violation_ms"] == ev["at_ms"]


def test_qpair_asan_build_reports_heap_use_after_free_as_a_crash(runs_dir):
    rep = run_scenario("qpair-event-after-destroy-asan", runs_dir)
    crash = invariant(rep, "no_crash")
    assert crash["verdict"] == "FAIL", crash
    san = next(e for e in crash["evidence"] if e.get("sanitizer") == "AddressSanitizer")
    r = san["report"]
    assert r["kind"] == "heap-use-after-free" and r["address"].startswith("0x")
    assert any("last_wqe" in f for f in r["stack"]), r
    assert any("destroy" in f for f in r["freed_by"]["stack"]), r
    assert r["allocated_by"]["stack"] and r["freed_by"]["thread"] != r["thread"]
    assert "heap-use-after-free" in crash["summary"]
    assert invariant(rep, "lifecycle")["verdict"] == "FAIL"
    # SARIF puts the use after free at its line, the free and the
    # allocation as related locations (ASan's paths are the build's).
    out = runs_dir / "r.sarif"
    res = faultctl("report", rep["run_id"], "--format", "sarif", "--output", out,
                   runs_dir=runs_dir)
    assert res.returncode == 0, res
    log = json.loads(out.read_text())
    schema = json.loads(ext_schema("sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(log)
    (uaf,) = [r for r in log["runs"][0]["results"] if r["ruleId"] == "no_crash"]
    loc = uaf["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == "harness/qpair/qpair.c"
    assert loc["physicalLocation"]["region"]["startLine"] > 0
    assert "last_wqe" in loc["logicalLocations"][0]["name"]
    assert "heap-use-after-free" in uaf["message"]["text"]
    rel = {r["message"]["text"]: r["logicalLocations"][0]["name"]
           for r in uaf["relatedLocations"]}
    assert "destroy" in rel["freed here"] and rel["allocated here"]
