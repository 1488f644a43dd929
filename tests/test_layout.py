"""The layout docs/architecture.md promises: no include cycles between the
daemon's modules (a module is a .c file and the header of the same name),
and no source file grows past the size one reader can hold."""
import pathlib
import re

from conftest import REPO

DAEMON = REPO / "daemon"
MAX_LINES = 850


def _modules():
    """module name -> the modules whose headers it (or its header) includes."""
    files = list(DAEMON.rglob("*.c")) + list(DAEMON.rglob("*.h"))
    names = {f.stem for f in DAEMON.rglob("*.c")}
    deps = {n: set() for n in names}
    for f in files:
        if f.stem not in deps:
            continue
        for inc in re.findall(r'^#include "([^"]+)\.h"', f.read_text(), re.M):
            inc = pathlib.Path(inc).name
            if inc in names and inc != f.stem:
                deps[f.stem].add(inc)
    return deps


def _cycle(deps):
    """One include cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(deps[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if not state.get(m):
                found = visit(m)
                if found:
                    return found
        state[n] = 2
        stack.pop()
        return None

    for n in sorted(deps):
        if not state.get(n):
            found = visit(n)
            if found:
                return found
    return None


def test_no_include_cycles():
    cycle = _cycle(_modules())
    assert cycle is None, "include cycle: " + " -> ".join(cycle)


def test_no_source_file_past_the_limit():
    big = {str(f.relative_to(REPO)): n for f in list(DAEMON.rglob("*.c")) + list(
        (REPO / "bpf").glob("*.c")) if (n := len(f.read_text().splitlines())) > MAX_LINES}
    assert not big, f"files over {MAX_LINES} lines: {big}"


def test_every_test_named_alone_exists():
    """conftest.ALONE keeps tests off the parallel pass of `make test`: a
    name that no longer matches a test would quietly let it run beside
    others."""
    from conftest import ALONE
    for name, tests in ALONE.items():
        path = REPO / "tests" / name
        assert path.exists(), name
        if tests != "*":
            defined = set(re.findall(r"^def (test_\w+)\(", path.read_text(), re.M))
            assert tests <= defined, (name, tests - defined)
