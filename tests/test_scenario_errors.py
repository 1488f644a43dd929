"""Malformed scenarios: exit 3, an error that names FILE:LINE:COL: key.path,
and nothing started (no run directory, no cgroup, no process)."""
import pathlib
import re

import pytest

from conftest import REPO, faultctl

BAD = REPO / "tests" / "scenarios" / "bad"

# file -> (line, col, key path, message fragment)
EXPECTED = {
    "01-trailing-comma.json": (5, 3, "(json)", "unexpected token"),
    "02-missing-comma.json": (3, 13, "(json)", "'}' expected"),
    "03-empty-file.json": (1, 1, "(json)", "expected near end of file"),
    "04-not-an-object.json": (1, 1, "(root)", "expected an object, got an array"),
    "05-unknown-top-key.json": (3, 3, "durration_s", "unknown key"),
    "06-missing-name.json": (1, 1, "name", "missing required key"),
    "07-missing-workloads.json": (1, 1, "workloads", "missing required key"),
    "08-empty-workloads.json": (3, 16, "workloads", "non-empty array"),
    "09-negative-duration.json": (3, 17, "duration_s", "-5 is out of range"),
    "10-duration-string.json": (3, 17, "duration_s", "expected a number, got a string"),
    "11-unknown-kind.json": (5, 27, "workloads[1].kind", "unknown workload kind 'teleporter'"),
    "12-dpdk-without-link.json": (4, 5, "workloads[0]", "kind dpdk-client needs \"link\": a veth link"),
    "13-exec-without-cmd.json": (4, 5, "workloads[0]", "needs a non-empty \"cmd\""),
    "14-cmd-not-strings.json": (4, 57, "workloads[0].cmd[1]", "expected a string, got an integer"),
    "15-unknown-workload-key.json": (5, 6, "workloads[0].timeout", "unknown key"),
    "16-duplicate-workload.json": (5, 14, "workloads[1].name", "duplicate workload name 'a'"),
    "17-unknown-invariant.json": (4, 49, "invariants[1].name", "unknown invariant 'no_bugs_please'"),
    "18-invariant-bad-workload.json": (4, 50, "invariants[0].workload", "no workload named 'b'"),
    "19-negative-timeout.json": (3, 77, "workloads[0].timeout_s", "out of range"),
    "20-bad-expect.json": (3, 13, "expect", "'SUCCESS' is not one of PASS, FAIL, INCONCLUSIVE"),
    "21-duplicate-key.json": (3, 8, "(json)", "duplicate object key"),
    "22-bad-workload-name.json": (3, 26, "workloads[0].name", "not a valid name"),
    "23-rate-unknown-key.json": (5, 45, "faults[0].kbit", "unknown key (known keys: type, link"),
    "24-sample-ms-float.json": (3, 16, "sample_ms", "expected an integer"),
    "25-bad-signal-name.json": (4, 58, "invariants[0].ignore_signals[0]", "not a signal name"),
    "26-undeclared-namespace.json": (4, 77, "topology.links[0].b", "namespace 'server' is not declared"),
    "27-unknown-link.json": (5, 44, "faults[0].link", "no link named 'wifi' in topology.links"),
    "28-down-ms-zero.json": (5, 61, "faults[0].down_ms", "0 is out of range"),
    "29-overlapping-faults.json": (7, 5, "faults[1]", "conflicts with faults[0] on link 'l0'"),
    "30-bad-address.json": (4, 87, "topology.links[0].a_addr", "not an IPv4 address/prefix"),
    "31-drop-pct-140.json": (5, 59, "faults[0].drop_pct", "140 is out of range [0, 100]"),
    "32-delay-jitter-too-large.json": (5, 75, "faults[0].jitter_ms", "80 is larger than delay_ms (50)"),
    "33-tap-with-b.json": (4, 66, "topology.links[0].b", "a tap has one end in a namespace"),
    "34-rate-tap-ingress.json": (5, 77, "faults[0].direction", "can only be \"egress\""),
    "35-lwip-on-a-veth.json": (4, 64, "workloads[0].link", "link 'l0' is a veth; lwip-client needs a tap"),
    "36-syscall-errors-overlap.json": (5, 14, "faults[1]", "both make socket() of 'a' fail at the same time"),
    "37-bad-offloads.json": (4, 89, "topology.links[0].offloads", "'maybe' is not one of auto, on, off"),
}

LINE_RE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<path>\S+): (?P<msg>.+)$")


def test_every_bad_file_has_an_expectation():
    files = sorted(p.name for p in BAD.glob("*.json"))
    assert files == sorted(EXPECTED), "tests/scenarios/bad and EXPECTED disagree"
    assert len(files) >= 20


def check_error(stderr, name):
    line, col, path, fragment = EXPECTED[name]
    rel = f"tests/scenarios/bad/{name}"
    errors = [m for m in (LINE_RE.match(l) for l in stderr.splitlines()) if m]
    assert errors, f"no FILE:LINE:COL: key.path: message line in:\n{stderr}"
    first = errors[0]
    assert first["file"] == rel, stderr
    assert (int(first["line"]), int(first["col"]), first["path"]) == (line, col, path), stderr
    assert fragment in first["msg"], stderr


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_validate_names_file_line_column_and_key(name):
    res = faultctl("validate", f"tests/scenarios/bad/{name}")
    assert res.returncode == 3, res
    check_error(res.stderr, name)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_run_local_starts_nothing(name, runs_dir):
    res = faultctl("run", "--local", "--quiet", f"tests/scenarios/bad/{name}", runs_dir=runs_dir)
    assert res.returncode == 3, res
    check_error(res.stderr, name)
    assert list(pathlib.Path(runs_dir).iterdir()) == [], "a run directory was created"
    assert "ERROR" in res.stdout  # the summary table still has the row


def test_several_errors_are_all_reported(tmp_path):
    bad = tmp_path / "many.json"
    bad.write_text('{\n  "name": 5,\n  "duration_s": -1,\n  "bogus": true,\n'
                   '  "workloads": [{"name": "a", "kind": "exec"}]\n}\n')
    res = faultctl("validate", bad)
    assert res.returncode == 3
    paths = [LINE_RE.match(l)["path"] for l in res.stderr.splitlines() if LINE_RE.match(l)]
    assert set(paths) >= {"name", "duration_s", "bogus", "workloads[0]"}, res.stderr


def test_missing_file_is_a_clear_error(tmp_path):
    res = faultctl("validate", tmp_path / "nope.json")
    assert res.returncode == 3
    assert "nope.json:1:1: (file): cannot read: No such file or directory" in res.stderr


def test_daemon_refuses_bad_scenario_and_keeps_serving(daemon):
    for name in ("05-unknown-top-key.json", "14-cmd-not-strings.json"):
        res = daemon.ctl("run", f"tests/scenarios/bad/{name}")
        assert res.returncode == 3, res
        check_error(res.stderr, name)
    assert not any(daemon.runs_dir.iterdir()) if daemon.runs_dir.exists() else True
    assert daemon.ctl("version").returncode == 0


def test_bundled_scenarios_are_valid():
    files = sorted((REPO / "scenarios").glob("*.json"))
    assert files
    res = faultctl("validate", *files)
    assert res.returncode == 0, res
