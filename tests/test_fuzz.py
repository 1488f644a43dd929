"""The libFuzzer targets (tests/fuzz/*.c, built by `make fuzz-build` with
ASan+UBSan into build/fuzz): each runs 30 s from its seed corpus
(tests/fuzz/corpus/NAME: bundled and test scenarios, real reports, control
traffic and journals of real runs) and finds nothing. `make fuzz` runs
them for 10 minutes each (docs/benchmarks.md)."""
import subprocess

import pytest

from conftest import REPO

FUZZ_BUILD = REPO / "build" / "fuzz"
TARGETS = sorted(p.stem for p in (REPO / "tests" / "fuzz").glob("*.c"))
SECONDS = 30


@pytest.mark.parametrize("name", TARGETS)
def test_fuzz_target_finds_nothing_in_30s(name, tmp_path):
    binary = FUZZ_BUILD / "tests" / "fuzz" / name
    assert binary.exists(), f"{binary} not built (make fuzz-build)"
    seeds = REPO / "tests" / "fuzz" / "corpus" / name
    assert any(seeds.iterdir()), f"no seed corpus in {seeds}"
    work = tmp_path / "corpus"
    work.mkdir()
    proc = subprocess.run([str(binary), f"-max_total_time={SECONDS}", "-timeout=10",
                           "-rss_limit_mb=2048", "-print_final_stats=1",
                           f"-artifact_prefix={tmp_path}/", str(work), str(seeds)],
                          capture_output=True, text=True, timeout=SECONDS * 4)
    findings = [p.name for p in tmp_path.iterdir() if p.name != "corpus"]
    assert proc.returncode == 0 and not findings, \
        f"{name} found {findings}:\n{proc.stderr[-6000:]}"
    assert "stat::number_of_executed_units" in proc.stderr
