"""The C unit tests: small binaries under build/tests/unit, one per module
group; each prints what failed and exits non-zero."""
import subprocess

import pytest

from conftest import BUILD, REPO, assert_no_sanitizer_report, sanitizer_env

UNITS = sorted(p.stem for p in (REPO / "tests" / "unit").glob("*.c"))


@pytest.mark.parametrize("name", UNITS)
def test_unit(name):
    binary = BUILD / "tests" / "unit" / name
    assert binary.exists(), f"{binary} not built (make tests)"
    proc = subprocess.run([str(binary)], capture_output=True, text=True, timeout=120,
                          env=sanitizer_env())
    assert_no_sanitizer_report(proc.stderr, name)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
