"""The published JSON Schemas agree with what faultd accepts and writes."""
import json
import re
import subprocess
import time
import urllib.request

import jsonschema

from conftest import FAULTCTL, REPO, Daemon, faultctl, write_scenario

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
        time.sleep(1.5)
        with urllib.request.urlopen(url, timeout=10) as r:
            during = json.loads(r.read())
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
