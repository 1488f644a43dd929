"""The libFuzzer targets (tests/fuzz/*.c, built by `make fuzz-build` with
ASan+UBSan into build/fuzz): each runs 30 s from its seed corpus
(tests/fuzz/corpus/NAME: bundled and test scenarios, real reports, control
traffic and journals of real runs) and finds nothing; the four run at once. `make fuzz` runs
them for 10 minutes each (docs/benchmarks.md)."""
import subprocess

import pytest

from conftest import REPO

FUZZ_BUILD = REPO / "build" / "fuzz"
TARGETS = sorted(p.stem for p in (REPO / "tests" / "fuzz").glob("*.c"))
SECONDS = 30


@pytest.fixture(scope="module")
def fuzzing(tmp_path_factory):
    """Every target at once, each for SECONDS of wall time: the four share
    the machine's cores instead of queueing (30 s in all, not 2 minutes)."""
    procs = {}
    for name in TARGETS:
        binary = FUZZ_BUILD / "tests" / "fuzz" / name
        seeds = REPO / "tests" / "fuzz" / "corpus" / name
        out = tmp_path_factory.mktemp(name)
        work = out / "corpus"
        work.mkdir()
        if not binary.exists() or not any(seeds.iterdir()):
            procs[name] = (binary, seeds, out, None)
            continue
        with open(out / "log", "w") as log:
            proc = subprocess.Popen([str(binary), f"-max_total_time={SECONDS}", "-timeout=10",
                                     "-rss_limit_mb=2048", "-print_final_stats=1",
                                     f"-artifact_prefix={out}/", str(work), str(seeds)],
                                    stdout=subprocess.DEVNULL, stderr=log)
        procs[name] = (binary, seeds, out, proc)
    yield procs
    for _, _, _, proc in procs.values():
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("name", TARGETS)
def test_fuzz_target_finds_nothing_in_30s(name, fuzzing):
    binary, seeds, out, proc = fuzzing[name]
    assert binary.exists(), f"{binary} not built (make fuzz-build)"
    assert any(seeds.iterdir()), f"no seed corpus in {seeds}"
    proc.wait(timeout=SECONDS * 4)
    stderr = (out / "log").read_text(errors="replace")
    findings = [p.name for p in out.iterdir() if p.name not in ("corpus", "log")]
    assert proc.returncode == 0 and not findings, \
        f"{name} found {findings}:\n{stderr[-6000:]}"
    assert "stat::number_of_executed_units" in stderr
