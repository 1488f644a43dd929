"""jansson's json_pack cannot check its format against its arguments at
compile time, and a mismatch is a crash or a silently missing field. Count
them here for every call in daemon/."""
import re

from conftest import REPO

UNITS = set("soOiIfbn")


def units(fmt):
    n, i = 0, 0
    while i < len(fmt):
        if fmt[i] in UNITS:
            n += 1
            if fmt[i] == "s" and i + 1 < len(fmt) and fmt[i + 1] in "%#":
                n += 1
                i += 1
        i += 1
    return n


def call_args(src, start):
    depth, k = 1, start
    while depth and k < len(src):
        depth += {"(": 1, ")": -1}.get(src[k], 0)
        k += 1
    parts, d, cur = [], 0, ""
    for ch in src[start:k - 1]:
        d += 1 if ch in "([{" else -1 if ch in ")]}" else 0
        if ch == "," and d == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in parts if p.strip()]


def test_every_json_pack_format_matches_its_arguments():
    bad = []
    calls = 0
    for path in sorted((REPO / "daemon").rglob("*.c")):
        src = path.read_text()
        for m in re.finditer(r'json_pack\("([^"]*)"', src):
            calls += 1
            want, got = units(m.group(1)), len(call_args(src, m.end()))
            if want != got:
                line = src[:m.start()].count("\n") + 1
                bad.append(f"{path.name}:{line}: {m.group(1)!r} wants {want} arguments, has {got}")
    assert calls > 20
    assert not bad, "\n".join(bad)
