"""Incident 2 end to end: the lwIP client on a tap under 40 flaps of its
'Wi-Fi'. The fixed port layer PASSes with every flap ending in a reconnect;
the vendor's shutdown-then-close defect FAILs sockets_stable within five
cycles, on the port layer's slots and on lwIP's own sockets, with the slope
and the cycle the 38-slot table runs out; past that, recovers FAILs while
the device prints "create socket failed"."""
import json

import jsonschema

from conftest import REPO, assert_nothing_left, faultctl, invariant, only_report

REPORT_SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())


def run_scenario(name, runs_dir):
    res = faultctl("run", "--local", "--quiet", "--expect", f"scenarios/{name}.json",
                   runs_dir=runs_dir, timeout=180)
    assert res.returncode == 0, res
    rep = only_report(runs_dir)
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert_nothing_left(rep)
    return rep


def per_cycle(rep, kind):
    return [c["workloads"]["device"]["objects"][kind] for c in rep["cycles"]]


def stable(rep, kind):
    return next(i for i in rep["invariants"]
                if i["name"] == "sockets_stable" and i["summary"].startswith(kind + " "))


def test_lwip_flap_fixed_passes_and_every_flap_reconnects(runs_dir):
    rep = run_scenario("lwip-flap", runs_dir)
    assert rep["verdict"] == "PASS", [(i["name"], i["summary"]) for i in rep["invariants"]]
    # The slots (and lwIP's sockets) are back at the baseline, one live
    # session or none, at every cycle's sample.
    slots, socks = per_cycle(rep, "lwip_sock"), per_cycle(rep, "lwip_socket")
    assert len(slots) >= 40 and max(slots) <= 1 and max(socks) <= 1, (slots, socks)
    rec = invariant(rep, "recovers")
    assert rec["verdict"] == "PASS" and "all 40 outages" in rec["summary"], rec
    assert rep["topology"]["links"]["wifi"]["type"] == "tap"


def test_lwip_flap_vendor_bug_fails_on_the_slots_and_lwip_sockets(runs_dir):
    rep = run_scenario("lwip-flap-vendor-bug", runs_dir)
    assert rep["verdict"] == "FAIL"
    for kind in ("lwip_sock", "lwip_socket"):
        inv = stable(rep, kind)
        assert inv["verdict"] == "FAIL", inv
        assert inv["first_violation_cycle"] <= 5, inv
        ev = inv["evidence"][0]
        assert ev["series"] == kind
        assert 0.7 <= ev["slope_when_found_per_cycle"] <= 1.5, ev
        # Run past exhaustion: the table fills at about cycle 38.
        assert 30 <= ev["limit_reached_cycle"] <= 45, ev
        assert ev["heap"]["bytes_per_cycle"] > 100, ev["heap"]
        assert any("liblwip" in s["caller"] for s in ev["heap"]["top_growing_sites"]), ev
    slots = per_cycle(rep, "lwip_sock")
    assert slots[-1] == 38 and slots[4] >= 4, slots
    rec = invariant(rep, "recovers")
    assert rec["verdict"] == "FAIL", rec
    assert 30 <= rec["first_violation_cycle"] <= 45, rec
    assert any("create socket failed" in line for line in rec["evidence"][0]["last_output"]), rec
    assert invariant(rep, "no_crash")["verdict"] == "PASS"
