"""The published JSON Schemas agree with what faultd accepts and writes;
faultd's JUnit XSD (tests/schemas/junit-faultd.xsd) accepts its dialect and
refuses broken JUnit."""
import json
import re
import subprocess
import time
import urllib.request

import jsonschema

import pytest

from conftest import FAULTCTL, REPO, Daemon, faultctl, write_scenario
from ext_schemas import JUNIT_XSD, xsd_errors

SCENARIO_SCHEMA = json.loads((REPO / "docs" / "scenario.schema.json").read_text())
REPORT_SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())
SOAK_SCHEMA = json.loads((REPO / "docs" / "soak-summary.schema.json").read_text())
RUNS_SCHEMA = json.loads((REPO / "docs" / "runs.schema.json").read_text())


def test_schemas_are_valid_draft_2020_12():
    for schema in (SCENARIO_SCHEMA, REPORT_SCHEMA, SOAK_SCHEMA, RUNS_SCHEMA):
        jsonschema.Draft202012Validator.check_schema(schema)


def test_a_schema_key_is_accepted_and_ignored(tmp_path):
    """Editors attach a JSON Schema with "$schema": faultd and the schema
    accept it; anything but a string is refused at its line and column."""
    doc = {"$schema": "../docs/scenario.schema.json", "name": "with-schema",
           "workloads": [{"name": "w", "kind": "exec", "cmd": ["true"]}]}
    path = write_scenario(tmp_path / "s.json", doc)
    res = faultctl("validate", path)
    assert res.returncode == 0 and "ok: scenario 'with-schema'" in res.stdout, res
    jsonschema.validate(doc, SCENARIO_SCHEMA)
    doc["$schema"] = 5
    path = write_scenario(tmp_path / "bad.json", doc)
    res = faultctl("validate", path)
    assert res.returncode == 3, res
    assert re.search(rf"^{re.escape(str(path))}:2:\d+: \$schema: expected a string", res.stderr,
                     re.M), res.stderr
    try:
        jsonschema.validate(doc, SCENARIO_SCHEMA)
        raise AssertionError("the schema accepts a numeric $schema")
    except jsonschema.ValidationError:
        pass


def test_soak_summary_matches_its_schema(tmp_path, runs_dir):
    """A real soak's summary: a scenario that passes and one that never
    does (first_miss), and the run lines."""
    ok = write_scenario(tmp_path / "ok.json", {
        "name": "ok", "duration_s": 0.5,
        "workloads": [{"name": "w", "kind": "exec", "cmd": ["true"]}]})
    bad = write_scenario(tmp_path / "bad.json", {
        "name": "bad", "duration_s": 0.5,
        "workloads": [{"name": "w", "kind": "exec", "cmd": ["false"]}]})
    summary = tmp_path / "soak.json"
    res = faultctl("soak", "--local", "--duration", "2s", "--summary", summary, ok, bad,
                   runs_dir=runs_dir, timeout=60)
    assert res.returncode == 1, res
    agg = json.loads(summary.read_text())
    jsonschema.validate(agg, SOAK_SCHEMA)
    by = {s["name"]: s for s in agg["scenarios"]}
    assert "first_miss" in by["bad"] and by["ok"]["as_expected"] == by["ok"]["runs"] >= 1


def test_runs_list_matches_its_schema(tmp_path):
    """GET /runs while a run runs (its workloads and counters) and after."""
    doc = {"name": "runs-list", "duration_s": 3, "sample_ms": 250,
           "workloads": [{"name": "queue", "kind": "msgq", "args": ["--rate", "1000"],
                          "probes": ["lifecycle"]}],
           "invariants": [{"name": "msg_integrity"}]}
    path = write_scenario(tmp_path / "r.json", doc)
    d = Daemon(tmp_path, extra_args=["--http", "0"])
    client = None
    try:
        deadline = time.monotonic() + 5
        while not (m := re.search(r"http on 127\.0\.0\.1:(\d+)", d.log)):
            assert time.monotonic() < deadline, d.log
            time.sleep(0.05)
        url = f"http://127.0.0.1:{m[1]}/runs"
        client = subprocess.Popen([str(FAULTCTL), "--socket", str(d.sock), "run", "--quiet",
                                   path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        # Until the workload runs and its counters are read (set-up takes
        # longer on a loaded host; the run's 3 s start after it).
        deadline = time.monotonic() + 30
        while True:
            with urllib.request.urlopen(url, timeout=10) as r:
                during = json.loads(r.read())
            run = during[0] if during else {}
            if ("counters" in (run.get("workloads") or [{}])[0] or
                    run.get("state") in ("stopping", "done") or time.monotonic() > deadline):
                break
            time.sleep(0.1)
        client.communicate(timeout=60)
        assert client.returncode == 0, client.stderr
        with urllib.request.urlopen(url, timeout=10) as r:
            after = json.loads(r.read())
        jsonschema.validate(during, RUNS_SCHEMA)
        jsonschema.validate(after, RUNS_SCHEMA)
        assert during[0]["state"] == "running" and "counters" in during[0]["workloads"][0]
        assert after[0]["state"] == "done" and after[0]["verdict"] == "PASS"
    finally:
        if client and client.poll() is None:
            client.kill()
            client.wait()
        assert d.stop() == 0


def test_bundled_scenarios_match_the_schema():
    for path in sorted((REPO / "scenarios").glob("*.json")):
        jsonschema.validate(json.loads(path.read_text()), SCENARIO_SCHEMA)


def test_schema_rejects_what_faultd_rejects():
    """Every malformed file that is valid JSON is also refused by the schema,
    except those that need cross-references the schema cannot express."""
    needs_faultd = {"16-duplicate-workload.json", "18-invariant-bad-workload.json",
                    "21-duplicate-key.json",
                    "25-bad-signal-name.json", "26-undeclared-namespace.json",
                    "27-unknown-link.json", "29-overlapping-faults.json",
                    "30-bad-address.json", "31-drop-pct-140.json",
                    "32-delay-jitter-too-large.json", "34-rate-tap-ingress.json",
                    "35-lwip-on-a-veth.json", "36-syscall-errors-overlap.json"}
    for path in sorted((REPO / "tests" / "scenarios" / "bad").glob("*.json")):
        if path.name in needs_faultd:
            continue
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        try:
            jsonschema.validate(doc, SCENARIO_SCHEMA)
        except jsonschema.ValidationError:
            continue
        raise AssertionError(f"the schema accepts {path.name}, faultd does not")


# Every element and attribute of the dialect junit-faultd.xsd describes: a
# run's suite (passed, failed, skipped, errored testcases, file/line) and a
# soak's (Surefire's flaky and rerun children with their own output).
JUNIT_FULL = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="faultd" tests="6" failures="2" errors="1" skipped="1" time="3.500"
            timestamp="2026-12-06T10:00:00">
  <testsuite name="leaky" id="0" package="faultd" tests="4" failures="1" errors="1"
             skipped="1" time="3.000" timestamp="2026-12-06T10:00:00" hostname="ci-1">
    <properties>
      <property name="run_id" value="r1"/>
      <property name="seed" value="1"/>
    </properties>
    <testcase name="no_crash" classname="faultd.leaky" time="3.000"/>
    <testcase name="fds_stable[w]" classname="faultd.leaky" time="3.000" file="leak.c" line="7">
      <failure message="fds grew" type="fds_stable">fds grew 3 -&gt; 40</failure>
      <system-out>run r1</system-out>
      <system-err></system-err>
    </testcase>
    <testcase name="heap_stable[w]" classname="faultd.leaky" time="3.000">
      <skipped message="no uprobes"/>
    </testcase>
    <testcase name="run" classname="faultd.leaky" time="0">
      <error type="run_error">could not start</error>
    </testcase>
    <system-out>verdict FAIL</system-out>
    <system-err/>
  </testsuite>
  <testsuite name="faultd soak" tests="2" failures="1" errors="0" skipped="0" time="0.5"
             timestamp="2026-12-06T10:00:03" hostname="ci-1">
    <testcase classname="faultd.soak" name="flaky" time="0.25">
      <flakyFailure type="FAIL" message="FAIL, expected PASS">
        <stackTrace>fds grew</stackTrace>
        <system-out>run r2</system-out>
        <system-err>stderr</system-err>
      </flakyFailure>
      <flakyError type="ERROR"/>
      <system-out>(FLAKY)</system-out>
    </testcase>
    <testcase classname="faultd.soak" name="broken" time="0.25">
      <failure type="failed" message="2 of 2 runs not PASS">first run</failure>
      <rerunFailure type="FAIL" message="FAIL, expected PASS">
        <system-out>run r4</system-out>
      </rerunFailure>
      <rerunError type="ERROR"><stackTrace>x</stackTrace></rerunError>
    </testcase>
  </testsuite>
</testsuites>
"""


def test_junit_xsd_accepts_the_dialect(tmp_path):
    doc = tmp_path / "full.xml"
    doc.write_text(JUNIT_FULL)
    assert xsd_errors(doc, JUNIT_XSD) is None


# One mistake each: (what, text replaced, its replacement, xmllint must name).
JUNIT_BROKEN = [
    ("unknown element", '<system-out>run r1</system-out>', '<stdout>run r1</stdout>',
     "stdout"),
    ("unknown attribute", '<testcase name="no_crash"', '<testcase status="ok" name="no_crash"',
     "status"),
    ("testcase without a name", 'name="no_crash" ', '', "'name' is required"),
    ("testcase without a classname", 'name="run" classname="faultd.leaky" ', 'name="run" ',
     "'classname' is required"),
    ("testcase without a time", 'classname="faultd.leaky" time="0"', 'classname="faultd.leaky"',
     "'time' is required"),
    ("suite without hostname", ' hostname="ci-1">\n    <properties>', '>\n    <properties>',
     "'hostname' is required"),
    ("non-numeric time", 'name="no_crash" classname="faultd.leaky" time="3.000"',
     'name="no_crash" classname="faultd.leaky" time="n/a"', "attribute 'time'"),
    ("time with a thousands comma", 'name="flaky" time="0.25"', 'name="flaky" time="1,250.0"',
     "attribute 'time'"),
    ("negative count", 'tests="2" failures="1"', 'tests="-2" failures="1"',
     "attribute 'tests'"),
    ("timestamp with a zone", 'timestamp="2026-12-06T10:00:03"',
     'timestamp="2026-12-06T10:00:03Z"', "attribute 'timestamp'"),
    ("timestamp with a space", 'timestamp="2026-12-06T10:00:03"',
     'timestamp="2026-12-06 10:00:03"', "attribute 'timestamp'"),
    ("timestamp out of range", 'timestamp="2026-12-06T10:00:03"',
     'timestamp="2026-13-06T10:00:03"', "attribute 'timestamp'"),
    ("failure without a type", '<failure message="fds grew" type="fds_stable">',
     '<failure message="fds grew">', "'type' is required"),
    ("failure and skipped in one testcase", '<skipped message="no uprobes"/>',
     '<failure type="x"/><skipped message="no uprobes"/>', "skipped"),
    ("rerun without a first failure", '<failure type="failed" message="2 of 2 runs not PASS">'
     'first run</failure>', '', "rerunFailure"),
    ("output before the result", '<flakyFailure type="FAIL"',
     '<system-out>x</system-out><flakyFailure type="FAIL"', "flakyFailure"),
    ("testcase after the suite's output", '<system-out>verdict FAIL</system-out>',
     '<system-out>verdict FAIL</system-out><testcase name="late" classname="c" time="0"/>',
     "testcase"),
    ("two testcases with one name", 'name="run" classname="faultd.leaky"',
     'name="no_crash" classname="faultd.leaky"', "testcaseName"),
    ("two properties with one name", '<property name="seed"', '<property name="run_id"',
     "propertyName"),
    ("testsuite as the root", JUNIT_FULL[JUNIT_FULL.index("<testsuites"):],
     JUNIT_FULL[JUNIT_FULL.index("<testsuite "):JUNIT_FULL.index("</testsuite>")] +
     "</testsuite>\n", "No matching global declaration"),
]


@pytest.mark.parametrize("what,old,new,named", JUNIT_BROKEN, ids=[b[0] for b in JUNIT_BROKEN])
def test_junit_xsd_rejects_broken_junit(tmp_path, what, old, new, named):
    """Each mistake alone makes the document invalid, and xmllint's message
    names the element or attribute at fault."""
    assert JUNIT_FULL.count(old) == 1, old
    doc = tmp_path / "broken.xml"
    doc.write_text(JUNIT_FULL.replace(old, new))
    err = xsd_errors(doc, JUNIT_XSD)
    assert err is not None, f"{what}: accepted"
    assert named in err and "fails to validate" in err, (what, err)
