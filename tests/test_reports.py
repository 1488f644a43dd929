"""`faultctl report --format junit|html` on real runs: the JUnit XML names the
failed invariant and parses; the HTML page, rendered by headless Chromium,
shows a plot with the fault windows shaded and the first violation marked;
hostile strings, huge evidence and empty runs do not break either."""
import json
import pathlib
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from html.parser import HTMLParser

import jsonschema
import pytest

from conftest import PROGS, faultctl, only_report, our_links, our_netns, write_scenario
from ext_schemas import ext_schema, xsd_valid

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
JUNIT_TAGS = {"testsuites", "testsuite", "properties", "property", "testcase", "failure",
              "error", "skipped", "system-out", "system-err", "flakyFailure", "rerunFailure"}


# Run ids of this module's runs: fd<run id> prefixes their namespaces and links.
OUR_RUNS = set()


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """conftest's check, narrowed to this module's runs: other tests may be
    running on this host, and their namespaces are theirs to remove."""
    yield
    mine = [n for n in our_netns() + our_links() if n[2:8] in OUR_RUNS]
    assert not mine, f"left behind: {mine}"


def run_scenario(tmp, doc):
    runs = tmp / "runs"
    runs.mkdir()
    path = write_scenario(tmp / f"{doc['name']}.json", doc)
    res = faultctl("run", "--local", "--quiet", path, runs_dir=runs, timeout=90)
    rep = only_report(runs)
    OUR_RUNS.add(rep["run_id"])
    return runs, res, rep


@pytest.fixture(scope="module")
def fail_run(tmp_path_factory):
    """An fd leak (5 fds a cycle) across a veth that flaps 200 ms down in
    every 500 ms: fds_stable FAILs, with fault windows to shade."""
    doc = {"name": "report-flap-leak", "seed": 4, "duration_s": 6,
           "topology": {"namespaces": ["c", "s"],
                        "links": [{"name": "l0", "type": "veth", "a": "c", "b": "s"}]},
           "workloads": [{"name": "w", "kind": "exec", "netns": "c", "probes": ["fds"],
                          "cmd": [str(PROGS / "fd_leak"), "60", "100"]}],
           "faults": [{"type": "link_flap", "link": "l0", "down_ms": 200, "up_ms": 300,
                       "cycles": 10}],
           "invariants": [{"name": "fds_stable", "workload": "w", "limit": 64},
                          {"name": "no_crash"}, {"name": "exit_ok"}]}
    runs, res, rep = run_scenario(tmp_path_factory.mktemp("fail"), doc)
    assert res.returncode == 1, res
    assert rep["verdict"] == "FAIL"
    return runs, rep


@pytest.fixture(scope="module")
def pass_run(tmp_path_factory):
    doc = {"name": "report-pass", "seed": 1, "duration_s": 3, "sample_ms": 250,
           "workloads": [{"name": "w", "kind": "exec", "cmd": ["/bin/sh", "-c", "sleep 1"]}],
           "invariants": [{"name": "no_crash"}, {"name": "exit_ok"}]}
    runs, res, rep = run_scenario(tmp_path_factory.mktemp("pass"), doc)
    assert res.returncode == 0, res
    return runs, rep


def report(runs, run_id, fmt, out):
    res = faultctl("report", run_id, "--format", fmt, "--output", out, runs_dir=runs)
    assert res.returncode == 0, res
    if fmt == "junit":
        xsd_valid(out)
    return pathlib.Path(out).read_text()


def junit_shape(root, per_case_out=True):
    """The shape Jenkins and GitLab read; returns the testsuite elements.
    Each testcase has its time and its own <system-out> naming the report
    (GitLab shows a testcase's output, not the suite's)."""
    assert root.tag == "testsuites"
    for el in root.iter():
        assert el.tag in JUNIT_TAGS, el.tag
    suites = root.findall("testsuite")
    for s in suites:
        for a in ("name", "tests", "failures", "errors", "skipped", "time", "timestamp",
                  "hostname"):
            assert a in s.attrib, (a, s.attrib)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", s.get("timestamp"))
        cases = s.findall("testcase")
        assert int(s.get("tests")) == len(cases)
        for kind in ("failures", "errors", "skipped"):
            tag = {"failures": "failure", "errors": "error", "skipped": "skipped"}[kind]
            assert int(s.get(kind)) == sum(len(c.findall(tag)) for c in cases), kind
        for c in cases:
            assert c.get("classname") and c.get("name")
            assert float(c.get("time")) > 0, c.attrib
            if per_case_out:
                assert len(list(c)) <= 2 and list(c)[-1].tag == "system-out"
                assert re.search(r"^report: /.*/report\.json$", list(c)[-1].text, re.M)
    return suites


def test_junit_of_a_failed_run_names_the_invariant(fail_run, tmp_path):
    runs, rep = fail_run
    root = ET.fromstring(report(runs, rep["run_id"], "junit", tmp_path / "j.xml"))
    (suite,) = junit_shape(root)
    assert suite.get("name") == "report-flap-leak"
    assert int(suite.get("failures")) >= 1 and int(root.get("failures")) >= 1
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["run_id"] == rep["run_id"] and props["seed"] == "4"
    assert suite.get("hostname") == rep["host"]["hostname"]
    assert abs(float(suite.get("time")) - rep["duration_s"]) < 0.01
    case = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(case) == {"fds_stable[w]", "no_crash", "exit_ok"}
    assert case["fds_stable[w]"].get("classname") == "faultd.report-flap-leak"
    fail = case["fds_stable[w]"].find("failure")
    assert fail.get("type") == "fds_stable"
    assert fail.get("message").startswith("fds of 'w' grow")
    # The evidence as text a person reads, not a JSON blob.
    assert "slope_per_cycle: 5" in fail.text and "first violation: cycle" in fail.text
    assert case["no_crash"].find("failure") is None


def test_junit_of_a_passing_run_has_no_failures(pass_run, tmp_path):
    runs, rep = pass_run
    root = ET.fromstring(report(runs, rep["run_id"], "junit", tmp_path / "j.xml"))
    (suite,) = junit_shape(root)
    assert suite.get("failures") == "0" and suite.get("errors") == "0"
    assert root.get("failures") == "0"
    assert [c.get("name") for c in suite.findall("testcase")] == ["no_crash", "exit_ok"]


def test_text_and_json_still_go_to_stdout(pass_run):
    runs, rep = pass_run
    res = faultctl("report", rep["run_id"], "--format", "json", runs_dir=runs)
    assert res.returncode == 0 and json.loads(res.stdout)["run_id"] == rep["run_id"]
    res = faultctl("report", rep["run_id"], runs_dir=runs)
    assert res.returncode == 0 and "verdict: PASS" in res.stdout
    res = faultctl("report", rep["run_id"], "--format", "pdf", runs_dir=runs)
    assert res.returncode == 3 and "html" in res.stderr


def hostile_report(rep):
    """@rep with markup and control characters in every string a reporter
    prints, every verdict, no cycles, no faults and huge evidence."""
    bad = "<script>alert('x')</script> & \"q\" \x01\x1f\x7f end"
    rep = json.loads(json.dumps(rep))
    rep["run_id"] = "abcdef"
    rep["scenario"]["name"] = "evil" + bad
    rep["stop_reason"] = bad
    rep["error"] = "could not start: " + bad
    rep["verdict"] = "ERROR"
    rep["cycles"], rep["faults"] = [], []
    huge = [{"workload": "w", "line": bad + "x" * 5000, "n": i} for i in range(5000)]
    rep["invariants"] = [
        {"name": "fds_stable", "workload": "w", "verdict": "FAIL", "summary": bad,
         "evidence": huge, "first_violation_cycle": 3, "first_violation_ms": 10,
         "first_violation_at": "2026-01-01T00:00:00.000Z"},
        {"name": "fds_stable", "workload": "w", "verdict": "INCONCLUSIVE",
         "summary": "lost events " + bad, "evidence": []},
        {"name": "recovers", "workload": None, "verdict": "ERROR", "summary": bad,
         "evidence": [{"nested": {"deep": [[1, 2], {"a": bad}]}}]},
    ]
    return rep


def test_hostile_strings_and_huge_evidence(pass_run, tmp_path):
    runs, rep = pass_run
    evil = hostile_report(rep)
    (runs / "abcdef").mkdir()
    (runs / "abcdef" / "report.json").write_text(json.dumps(evil))

    text = report(runs, "abcdef", "junit", tmp_path / "j.xml")
    assert "\x01" not in text and "\x1f" not in text
    root = ET.fromstring(text)  # forbidden characters would make this raise
    (suite,) = junit_shape(root)
    assert suite.get("name").startswith("evil<script>")
    names = [c.get("name") for c in suite.findall("testcase")]
    assert len(set(names)) == len(names) == 4, names
    assert (suite.get("failures"), suite.get("skipped"), suite.get("errors")) == ("1", "1", "2")
    assert len(text) < 200_000

    log = json.loads(report(runs, "abcdef", "sarif", tmp_path / "r.sarif"))
    assert sarif_validator().is_valid(log)
    (run,) = log["runs"]
    assert not run["invocations"][0]["executionSuccessful"]
    assert run["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"] == \
        evil["error"]
    assert [r["ruleId"] for r in run["results"]] == ["fds_stable"]

    page = report(runs, "abcdef", "html", tmp_path / "r.html")
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "\x01" not in page and "\x7f" not in page
    assert 'id="no-cycles"' in page and 'id="no-faults"' in page
    assert "evidence (5000 items)" in page and "truncated" in page
    assert len(page) < 500_000


class Dom(HTMLParser):
    """Elements with their attributes and the plot <svg> each sits in."""

    def __init__(self):
        super().__init__()
        self.stack, self.els = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        svg = next((s for s in reversed(self.stack) if s[0] == "svg"), (None, {}))[1]
        self.els.append((tag, a, svg))
        if tag not in ("meta", "br", "hr", "img", "input", "link"):
            self.stack.append((tag, a))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if any(t == tag for t, _ in self.stack):
            while self.stack.pop()[0] != tag:
                pass

    def find(self, tag, cls, **svg):
        return [(a, s) for t, a, s in self.els
                if t == tag and cls in a.get("class", "").split()
                and all(s.get(k.replace("_", "-")) == v for k, v in svg.items())]


def png_rgb(path):
    """Decode an 8-bit RGB(A) non-interlaced PNG: rows of (r, g, b) tuples."""
    data = pathlib.Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    assert depth == 8 and ctype in (2, 6) and not interlace
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), w * bpp
    prev, rows = bytearray(stride), []
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xff
        elif f == 2:
            line = bytearray(prev) if not any(line) else \
                bytearray((a + b) & 0xff for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 0xff
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xff
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, bpp)])
        prev = line
    return rows


def test_html_of_a_failed_run_in_chromium(fail_run, tmp_path):
    # make deps installs chromium; a machine without it fails here, loudly.
    assert CHROMIUM, "chromium is not installed (scripts/deps.sh installs it)"
    runs, rep = fail_run
    page_path = tmp_path / "r.html"
    page = report(runs, rep["run_id"], "html", page_path)
    # Self-contained: no script, no stylesheet or image fetched.
    assert "<script" not in page and not re.search(r'(src|href)="', page)
    chrome = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
              f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2400"]
    dom = subprocess.run(chrome + ["--dump-dom", page_path.as_uri()], capture_output=True,
                         text=True, timeout=60)
    assert dom.returncode == 0, dom.stderr[-2000:]
    d = Dom()
    d.feed(dom.stdout)
    verdict = [a for t, a, _ in d.els if a.get("id") == "verdict"]
    assert verdict and "v-FAIL" in verdict[0]["class"]
    assert d.find("svg", "plot")
    fds = dict(workload="w", series="fds")
    assert d.find("polyline", "series", data_workload="w", data_series="fds")
    windows = d.find("rect", "fault-window", data_workload="w", data_series="fds")
    assert len(windows) == 10 and all(a["data-action"] == "link_down" for a, _ in windows)
    marks = d.find("line", "violation", data_workload="w", data_series="fds")
    cycle = rep["invariants"][0]["first_violation_cycle"]
    assert [(a["data-invariant"], a["data-cycle"]) for a, _ in marks] == \
        [("fds_stable", str(cycle))], fds
    # Only the series fds_stable judged carries its mark.
    assert not d.find("line", "violation", data_workload="w", data_series="sockets")
    rows = [a for t, a, _ in d.els if t == "tr" and "fault" in a.get("class", "").split()]
    assert len(rows) == len(rep["faults"]) == 20

    shot = tmp_path / "shot.png"
    res = subprocess.run(chrome + [f"--screenshot={shot}", page_path.as_uri()],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    img = png_rgb(shot)
    assert len(img) == 2400 and len(img[0]) == 1280

    def shaded(p):  # the fault window's orange at 22 % over white
        return p[0] > 240 and 215 <= p[1] <= 240 and 195 <= p[2] <= 230

    def blue(p):  # the series line
        return p[2] > 170 and p[0] < 90 and p[1] < 150

    def red(p):  # the violation line
        return p[0] > 170 and p[1] < 80 and p[2] < 90
    # The plot area: the rows where the first plot's fault windows are shaded.
    band = [y for y, row in enumerate(img) if sum(map(shaded, row)) > 40]
    assert band, "no shaded fault window on screen"
    top = band[0]
    area = [row[60:1000] for row in img[top:top + 180]]
    pixels = [p for row in area for p in row]
    assert len(set(pixels)) > 20, "plot area is flat"
    assert sum(p != (255, 255, 255) for p in pixels) > len(pixels) // 10
    assert sum(map(blue, pixels)) > 200, "no series line drawn"
    assert sum(map(red, pixels)) > 100, "no violation line drawn"


@pytest.fixture(scope="module")
def sarif_run(tmp_path_factory):
    """One run with a double free, a heap leak at one site and an fd leak,
    through `faultctl run --local --sarif`."""
    tmp = tmp_path_factory.mktemp("sarif")
    runs = tmp / "runs"
    runs.mkdir()
    doc = {"name": "report-sarif", "seed": 3, "duration_s": 6, "sample_ms": 200,
           "workloads": [
               {"name": "df", "kind": "exec", "cmd": [str(PROGS / "double_free_tolerated")],
                "probes": ["heap"]},
               {"name": "leak", "kind": "exec", "cmd": [str(PROGS / "leak_site"), "25", "200"],
                "probes": ["heap"]},
               {"name": "fdl", "kind": "exec", "cmd": [str(PROGS / "fd_leak"), "25", "200"],
                "probes": ["fds"]}],
           "invariants": [{"name": "no_invalid_free", "workload": "df"},
                          {"name": "heap_stable", "workload": "leak"},
                          {"name": "fds_stable", "workload": "fdl", "limit": 64},
                          {"name": "no_crash"}]}
    path = write_scenario(tmp / "report-sarif.json", doc)
    res = faultctl("run", "--local", "--quiet", "--sarif", tmp / "run.sarif", path,
                   runs_dir=runs, timeout=90)
    rep = only_report(runs)
    OUR_RUNS.add(rep["run_id"])
    assert res.returncode == 1, res
    verdicts = {i["name"]: (i["verdict"], i["summary"]) for i in rep["invariants"]}
    assert [v for v, _ in verdicts.values()] == ["FAIL", "FAIL", "FAIL", "PASS"], verdicts
    return runs, rep, json.loads((tmp / "run.sarif").read_text())


def sarif_validator():
    schema = json.loads(ext_schema("sarif-schema-2.1.0.json").read_text())
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())


def stack_lines(result, message):
    (stack,) = [s for s in result["stacks"] if s["message"]["text"] == message]
    return [(f["location"]["physicalLocation"]["artifactLocation"]["uri"],
             f["location"]["physicalLocation"]["region"]["startLine"])
            for f in stack["frames"] if "physicalLocation" in f["location"]]


def test_sarif_of_a_real_run_validates_and_places_each_finding(sarif_run, tmp_path):
    runs, rep, from_run = sarif_run
    text = report(runs, rep["run_id"], "sarif", tmp_path / "r.sarif")
    log = json.loads(text)
    validator = sarif_validator()
    errors = [e.message for e in validator.iter_errors(log)]
    assert not errors, errors
    # The schema is enforced: a result level SARIF does not have is refused.
    bad = json.loads(text)
    bad["runs"][0]["results"][0]["level"] = "fatal"
    assert not validator.is_valid(bad)
    # --sarif on `faultctl run` writes the same document.
    assert from_run == log
    (run,) = log["runs"]
    assert log["version"] == "2.1.0"
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == \
        ["no_invalid_free", "heap_stable", "fds_stable", "no_crash"]
    assert run["automationDetails"]["id"] == f"faultd/report-sarif/{rep['run_id']}"
    results = {}
    for r in run["results"]:
        assert r["level"] == "error" and r["properties"]["run_id"] == rep["run_id"]
        assert run["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"]
        results.setdefault(r["ruleId"], []).append(r)
    # Only the failed invariants have results; no_crash passed.
    assert set(results) == {"no_invalid_free", "heap_stable", "fds_stable"}
    assert invariant_verdict(rep, "no_crash") == "PASS"

    # The double free at the program's free call, from its stack; the
    # second free (line 32), the first (line 30) and the allocation (25).
    (df,) = results["no_invalid_free"]
    loc = df["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"].endswith("double_free_tolerated.c")
    assert loc["region"]["startLine"] == 16
    assert df["locations"][0]["logicalLocations"][0]["name"] == "release"
    assert df["message"]["text"].startswith("double free of 0x")
    assert ("double_free_tolerated.c", 32) in stack_lines(df, "second free")
    assert ("double_free_tolerated.c", 30) in stack_lines(df, "first free")
    rel = {r["message"]["text"]: r["physicalLocation"]["region"]["startLine"]
           for r in df["relatedLocations"]}
    assert rel["allocated here"] == 25
    # The leak by its allocation site.
    (leak,) = results["heap_stable"]
    loc = leak["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"].endswith("leak_site.c")
    assert leak["locations"][0]["logicalLocations"][0]["name"] == "leak_one"
    assert "allocation site holds" in leak["message"]["text"]
    # fd growth has no source line: at the scenario file, with its calls.
    (fds,) = results["fds_stable"]
    assert fds["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(
        "report-sarif.json")
    assert "fds of 'fdl' grow" in fds["message"]["text"] and "openat" in fds["message"]["text"]
    # Fingerprints name the rule, workload and place, never a pid or address.
    assert df["partialFingerprints"]["faultdFinding/v1"] == \
        "no_invalid_free|df|double_free|release"


def test_sarif_of_a_passing_run_has_no_results(pass_run, tmp_path):
    runs, rep = pass_run
    log = json.loads(report(runs, rep["run_id"], "sarif", tmp_path / "p.sarif"))
    assert sarif_validator().is_valid(log)
    (run,) = log["runs"]
    assert run["results"] == [] and run["invocations"][0]["executionSuccessful"]
    assert run["invocations"][0]["exitCode"] == 0


def invariant_verdict(rep, name):
    return next(i["verdict"] for i in rep["invariants"] if i["name"] == name)
