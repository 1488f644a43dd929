"""What dashboards and nightly jobs read: faultd's HTTP side (/metrics as
Prometheus text with counters that move during a run, /runs, /runs/ID, the
report page, and the dashboard in a real browser) and `faultctl soak` (an
aggregate with flaky scenarios called out, bounded run directories, JUnit)."""
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
import xml.etree.ElementTree as ET

import jsonschema

from conftest import FAULTCTL, REPO, Daemon, faultctl, write_scenario
from ext_schemas import xsd_valid

SOAK_SCHEMA = json.loads((REPO / "docs" / "soak-summary.schema.json").read_text())
RUNS_SCHEMA = json.loads((REPO / "docs" / "runs.schema.json").read_text())
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text exposition 0.0.4: every line a comment, a sample, or
    blank; TYPE before samples; returns {(name, frozenset(labels)): value}."""
    out, typed = {}, set()
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            typed.add(name)
            continue
        if line.startswith("#"):
            assert line.startswith("# HELP "), line
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        assert m[1] in typed, f"{m[1]} has no TYPE line"
        labels = frozenset(LABEL.findall(m[3] or ""))
        out[(m[1], labels)] = float(m[4])
    return out


def promtool_check(text):
    """`promtool check metrics` (Debian's prometheus package): the exposition
    parses and follows Prometheus' naming rules; no output means no finding."""
    res = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0 and not res.stdout.strip() and not res.stderr.strip(), \
        f"promtool: {res.stdout}{res.stderr}\n{text}"


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def http_port(d):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        m = re.search(r"http on 127\.0\.0\.1:(\d+)", d.log)
        if m:
            return int(m[1])
        time.sleep(0.05)
    raise AssertionError(f"no http line in the log:\n{d.log}")


def counter(metrics, metric, **want):
    for (n, labels), v in metrics.items():
        if n == metric and all((k, str(x)) in labels for k, x in want.items()):
            return v
    return None


def test_metrics_move_during_a_run_and_the_dashboard_loads(tmp_path):
    doc = {"name": "metrics", "duration_s": 6, "sample_ms": 500,
           "workloads": [{"name": "queue", "kind": "msgq", "args": ["--rate", "50000"],
                          "probes": ["lifecycle"]}],
           "invariants": [{"name": "msg_integrity"}]}
    path = write_scenario(tmp_path / "m.json", doc)
    t_start = time.time()
    d = Daemon(tmp_path, extra_args=["--http", "0"])
    try:
        port = http_port(d)
        client = subprocess.Popen([str(FAULTCTL), "--socket", str(d.sock),
                                   "run", "--quiet", path], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        status, ctype, text = get(port, "/metrics")
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), ctype
        first, first_text = parse_metrics(text), text
        time.sleep(2)
        second = parse_metrics(get(port, "/metrics")[2])
        client.communicate(timeout=60)
        assert client.returncode == 0, client.stderr
        assert counter(first, "faultd_up") == 1
        assert counter(first, "faultd_runs_active") == 1
        assert counter(second, "faultd_run_cycle") > counter(first, "faultd_run_cycle")
        rx1 = counter(first, "faultd_workload_value", workload="queue", name="received")
        rx2 = counter(second, "faultd_workload_value", workload="queue", name="received")
        assert rx1 is not None and rx2 > rx1, (rx1, rx2)
        assert counter(second, "process_resident_memory_bytes") > 0
        assert counter(first, "faultd_resident_memory_idle_bytes") == 0
        done_text = get(port, "/metrics")[2]
        done = parse_metrics(done_text)
        # What faultd keeps between runs, taken when the run had finished.
        assert counter(done, "faultd_resident_memory_idle_bytes") > 0
        assert 0 < counter(done, "faultd_resident_anon_memory_idle_bytes") < \
            counter(done, "faultd_resident_memory_idle_bytes")
        # A sanitizer's allocator is not glibc's: mallinfo2 reads 0 there.
        assert "/san-" in os.environ.get("FAULTD_BUILD", "") or \
            0 < counter(done, "faultd_heap_in_use_idle_bytes")
        assert counter(done, "faultd_runs_kept", verdict="PASS") >= 1
        assert counter(done, "faultd_runs_active") == 0
        # Counters count since faultd started, by scenario and verdict, and
        # the finished run's series are gone.
        assert counter(done, "faultd_runs_completed_total", scenario="metrics",
                       verdict="PASS") == 1
        assert counter(done, "faultd_runs_completed_total", scenario="metrics",
                       verdict="FAIL") == 0
        assert counter(done, "faultd_run_cycle") is None
        for m in (first, second, done):
            assert not [n for (n, labels) in m
                        if n.endswith("_total") and any(k == "run_id" for k, _ in labels)]
        assert counter(first, "faultd_run_cycle", scenario="metrics") is not None
        assert counter(done, "faultd_probe_lost_events_total") >= \
            counter(second, "faultd_probe_lost_events_total")
        assert 0 < counter(done, "process_open_fds") < counter(done, "process_max_fds")
        assert abs(counter(done, "process_start_time_seconds") - t_start) < 5
        assert counter(done, "process_cpu_seconds_total") > 0
        # promtool's own lint: names, units, counters, HELP and TYPE.
        for text in (first_text, done_text):
            promtool_check(text)
        runs = json.loads(get(port, "/runs")[2])
        jsonschema.validate(runs, RUNS_SCHEMA)
        run_id = runs[0]["run_id"]
        assert runs[0]["verdict"] == "PASS" and runs[0]["scenario"] == "metrics"
        rep = json.loads(get(port, f"/runs/{run_id}")[2])
        assert rep["run_id"] == run_id and rep["verdict"] == "PASS"
        assert counter(done, "faultd_build_info", version=rep["faultd_version"]) == 1
        status, ctype, page = get(port, f"/runs/{run_id}/report.html")
        assert status == 200 and "<svg" in page
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/runs/abcdef", timeout=5)
            raise AssertionError("a run that does not exist answered")
        except urllib.error.HTTPError as e:
            assert e.code == 404
        # The dashboard, in the browser people will use.
        assert CHROMIUM, "chromium is not installed (scripts/deps.sh installs it)"
        dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                              "--dump-dom", f"http://127.0.0.1:{port}/"],
                             capture_output=True, text=True, timeout=60).stdout
        assert 'id="runs"' in dom and run_id in dom, dom[:2000]
        assert re.search(r'class="trend".*metrics', dom), dom[:2000]
        assert 'class="cell PASS"' in dom
    finally:
        assert d.stop() == 0


FLAKY = ("f={counter}; n=$(cat $f 2>/dev/null || echo 0); echo $((n+1)) > $f; "
         "exit $((n % 2))")


def test_soak_aggregates_calls_out_flaky_and_bounds_the_disk(tmp_path, runs_dir):
    steady = write_scenario(tmp_path / "steady.json", {
        "name": "steady", "duration_s": 1,
        "workloads": [{"name": "w", "kind": "exec", "cmd": ["true"]}]})
    flaky = write_scenario(tmp_path / "flaky.json", {
        "name": "flaky", "duration_s": 1,
        "workloads": [{"name": "w", "kind": "exec",
                       "cmd": ["/bin/sh", "-c", FLAKY.format(counter=tmp_path / "n")]}]})
    broken = write_scenario(tmp_path / "broken.json", {
        "name": "broken", "duration_s": 1,
        "workloads": [{"name": "w", "kind": "exec", "cmd": ["false"]}]})
    summary, junit = tmp_path / "soak.json", tmp_path / "soak.xml"
    res = faultctl("soak", "--local", "--duration", "6s", "--keep", "2", "--summary", summary,
                   "--junit", junit, steady, flaky, broken, runs_dir=runs_dir, timeout=120)
    assert res.returncode == 1, res
    assert re.search(r"^flaky\s+\d+\s+\d+\s+\d+\s+0\s+0\s+FLAKY: ", res.stdout, re.M), res.stdout
    agg = json.loads(summary.read_text())
    jsonschema.validate(agg, SOAK_SCHEMA)
    by = {s["name"]: s for s in agg["scenarios"]}
    assert by["steady"]["passes"] == by["steady"]["runs"] >= 2 and not by["steady"]["flaky"]
    assert by["flaky"]["flaky"] and by["flaky"]["passes"] >= 1 and by["flaky"]["fails"] >= 1
    assert by["broken"]["fails"] == by["broken"]["runs"] >= 2 and not by["broken"]["flaky"]
    assert "first_miss" in by["flaky"]
    assert len(agg["runs"]) == sum(s["runs"] for s in by.values())
    assert all(r["duration_s"] > 0 for r in agg["runs"])
    # Disk: only the last two run directories are whole; the rest are lines.
    assert len([p for p in runs_dir.iterdir() if p.is_dir()]) <= 2
    # JUnit as Surefire writes reruns, valid against our XSD (and Jenkins' when found):
    # a flaky scenario passes with one <flakyFailure> per missed run; one
    # that never met its expectation fails, its later misses <rerunFailure>.
    xsd_valid(junit)
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("hostname") and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d",
                                                   suite.get("timestamp"))
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert all(float(c.get("time")) > 0 for c in cases.values())
    assert cases["steady"].find("failure") is None and not list(cases["steady"].iter("flakyFailure"))
    assert cases["flaky"].find("failure") is None
    flakes = cases["flaky"].findall("flakyFailure")
    assert len(flakes) == by["flaky"]["not_as_expected"] and flakes[0].get("type") == "FAIL"
    assert "(FLAKY)" in cases["flaky"].find("system-out").text
    assert cases["broken"].find("failure").get("type") == "failed"
    assert len(cases["broken"].findall("rerunFailure")) == by["broken"]["runs"] - 1
    assert suite.get("failures") == "1"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["flaky_scenarios"] == "1"


def test_soak_of_clean_scenarios_exits_0(tmp_path, runs_dir):
    steady = write_scenario(tmp_path / "steady.json", {
        "name": "steady", "duration_s": 1,
        "workloads": [{"name": "w", "kind": "exec", "cmd": ["true"]}]})
    res = faultctl("soak", "--local", "--duration", "2s", "--summary", tmp_path / "s.json",
                   steady, REPO / "scenarios" / "exec-child-crash.json", runs_dir=runs_dir,
                   timeout=60)
    assert res.returncode == 0, res
    res = faultctl("soak", "--local", "--duration", "forever", steady)
    assert res.returncode == 3 and "--duration" in res.stderr
