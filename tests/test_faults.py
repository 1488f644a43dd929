"""Topology and faults on real namespaces and veths: flaps the workload
must recover from, a link that stays down, seeded schedules, bad specs, and
nothing left behind, even after kill -9."""
import errno
import json
import re
import subprocess
import time

import jsonschema
import pytest

from conftest import (FAULTCTL, JOURNAL_DIR as JOURNAL, REPO, Daemon, assert_nothing_left, bpftool_links, faultctl, invariant,
                      daemon_mid_run, only_report, our_journals, our_links, our_netns,
                      successor, write_scenario)

REPORT_SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())


def echo_pair(progs, faults, invariants, duration_s=10, **extra):
    return {
        "name": "flap", "seed": 9, "duration_s": duration_s,
        "topology": {"namespaces": ["client", "server"],
                     "links": [{"name": "l0", "type": "veth", "a": "client", "b": "server"}]},
        "workloads": [
            {"name": "server", "kind": "echo-server", "netns": "server",
             "args": ["--bind", "198.18.0.2", "--port", "7000", "--no-udp"]},
            {"name": "client", "kind": "exec", "netns": "client",
             "cmd": [str(progs / "tcp_client"), "198.18.0.2", "7000", "50"]}],
        "faults": faults, "invariants": invariants, **extra}


def test_flap_20_cycles_recovers_and_leaves_nothing():
    """The bundled scenario: 20 flaps of 300/700 ms, the client back each time."""
    res = faultctl("run", "--local", "--json", "-", "--quiet",
                   "scenarios/flap-recovers.json", timeout=120)
    assert res.returncode == 0, res
    rep = json.loads(res.stdout[res.stdout.index("{"):])  # after the table
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert rep["verdict"] == "PASS"
    inv = invariant(rep, "recovers")
    assert inv["verdict"] == "PASS" and "all 20 outages" in inv["summary"]
    downs = [f for f in rep["faults"] if f["action"] == "link_down"]
    assert len(downs) == 20 and [f["cycle"] for f in downs] == list(range(1, 21))
    assert all(abs(f["t_actual_ms"] - f["t_planned_ms"]) < 100 for f in rep["faults"][1:])
    assert rep["topology"]["links"]["l0"]["a"].startswith("fd" + rep["run_id"])
    assert len(rep["cycles"]) >= 20
    assert_nothing_left(rep)
    assert not our_netns() and not our_links()


def test_permanent_link_down_fails_recovers_naming_the_cycle(tmp_path, runs_dir, progs):
    doc = echo_pair(progs, [{"type": "link_down", "link": "l0", "at_ms": 2000}],
                    [{"name": "recovers", "workload": "client", "within_ms": 1000}],
                    duration_s=6, sample_ms=500)
    path = write_scenario(tmp_path / "down.json", doc)
    res = faultctl("run", "--local", "--quiet", path, runs_dir=runs_dir, timeout=60)
    assert res.returncode == 1, res
    rep = only_report(runs_dir)
    inv = invariant(rep, "recovers")
    assert inv["verdict"] == "FAIL"
    assert inv["first_violation_cycle"] == 5  # 2.0 s into 500 ms cycles
    ev = inv["evidence"][0]
    assert ev["link"] == "l0" and "never came back" in ev["reason"]
    assert "cycle 5" in inv["summary"]
    assert_nothing_left(rep)


def test_same_seed_same_timeline(tmp_path, progs):
    plans = []
    for seed in (11, 11, 12):
        runs = tmp_path / f"runs{len(plans)}"
        doc = echo_pair(progs, [{"type": "random", "link": "l0", "count": 4,
                                 "min_down_ms": 100, "max_down_ms": 400,
                                 "min_up_ms": 200, "max_up_ms": 600}],
                        [{"name": "no_crash"}], duration_s=4, seed=seed)
        path = write_scenario(tmp_path / f"r{len(plans)}.json", doc)
        res = faultctl("run", "--local", "--quiet", path, runs_dir=runs, timeout=60)
        assert res.returncode == 0, res
        rep = only_report(runs)
        plans.append([(f["action"], f["t_planned_ms"]) for f in rep["faults"]])
    assert plans[0] == plans[1]
    assert plans[0] != plans[2]
    assert len(plans[0]) == 8


def test_pause_and_resume_freeze_the_workload(tmp_path, runs_dir, progs):
    doc = echo_pair(progs, [{"type": "pause", "workload": "client", "at_ms": 1000},
                            {"type": "resume", "workload": "client", "at_ms": 2000}],
                    [{"name": "no_crash"}], duration_s=3)
    path = write_scenario(tmp_path / "pause.json", doc)
    res = faultctl("run", "--local", "--quiet", path, runs_dir=runs_dir, timeout=60)
    assert res.returncode == 0, res
    rep = only_report(runs_dir)
    acts = [(f["action"], f.get("error")) for f in rep["faults"]]
    assert acts == [("pause", None), ("resume", None)]
    out = (runs_dir / rep["run_id"] / "client.stdout").read_text().split()
    # About 20 echoes a second, but none while frozen: well under 3 s worth.
    assert 10 < out.count("ok") < 45


def test_kill_9_mid_run_then_restart_removes_namespaces_and_links(tmp_path, progs):
    d = Daemon(tmp_path)
    path = write_scenario(tmp_path / "k.json", echo_pair(
        progs, [{"type": "link_flap", "link": "l0", "down_ms": 200, "up_ms": 300}],
        [{"name": "no_crash"}], duration_s=30))
    client = subprocess.Popen([str(FAULTCTL), "--socket", str(d.sock), "run", path],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "link_down" not in d.log:
            time.sleep(0.05)
        # Both veth ends live inside the namespaces; the host sees no link.
        assert our_netns() and not our_links(), "the run made no namespaces"
        d.stop(sig=9)
        client.communicate(timeout=30)
        assert our_netns(), "named namespaces should outlive a killed faultd"
        again = tmp_path / "again"
        again.mkdir()
        d2 = Daemon(again)
        try:
            assert not our_netns() and not our_links()
            assert "undid netns" in d2.log
        finally:
            assert d2.stop() == 0
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
        d.stop(sig=9)


def test_faultctl_cleanup_by_hand(tmp_path, progs):
    d = Daemon(tmp_path)
    path = write_scenario(tmp_path / "c.json", echo_pair(progs, [], [{"name": "no_crash"}],
                                                         duration_s=30))
    client = subprocess.Popen([str(FAULTCTL), "--socket", str(d.sock), "run", path],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "workload 'client' started" not in d.log:
            time.sleep(0.05)
        # While faultd lives, cleanup leaves its run alone.
        res = faultctl("cleanup")
        assert res.returncode == 0 and our_netns()
        d.stop(sig=9)
        client.communicate(timeout=30)
        res = faultctl("cleanup")
        assert res.returncode == 0, res
        assert "removed netns /run/netns/fd" in res.stdout
        assert not our_netns() and not our_links()
        assert faultctl("cleanup").stdout.strip() == "nothing to clean up"
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
        d.stop(sig=9)


def udp_pair(progs, faults, count=2000, duration_s=20, warm_ms=0):
    """An echo server and a UDP probe. With @warm_ms, the faults start that
    much later and the client resolves the server's address (one ping)
    before they do: a dropped ARP request or reply costs a second's
    retransmit timer, and with it the probe's first thousand datagrams,
    which measures ARP, not the drop rate."""
    warm = ""
    if warm_ms:
        faults = [{**f, "at_ms": f.get("at_ms", 0) + warm_ms} for f in faults]
        warm = f"ping -c 1 -W 2 198.18.0.2 >/dev/null; sleep {warm_ms / 1000 + 0.2}; "
    return {
        "name": "packet", "seed": 1, "duration_s": duration_s,
        "topology": {"namespaces": ["c", "s"],
                     "links": [{"name": "l0", "type": "veth", "a": "c", "b": "s"}]},
        "workloads": [
            {"name": "server", "kind": "echo-server", "netns": "s",
             "args": ["--bind", "198.18.0.2", "--port", "7001", "--no-tcp"]},
            {"name": "client", "kind": "exec", "netns": "c",
             "cmd": ["/bin/sh", "-c", f"sleep 0.3; {warm}exec {progs / 'udp_probe'} 198.18.0.2 "
                     f"7001 {count} 500"]}],
        "faults": faults, "invariants": [{"name": "no_crash"}]}


def run_udp(tmp_path, runs_dir, doc):
    path = write_scenario(tmp_path / "udp.json", doc)
    res = faultctl("run", "--local", "--quiet", path, runs_dir=runs_dir, timeout=90)
    assert res.returncode == 0, res
    rep = only_report(runs_dir)
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert_nothing_left(rep)
    words = (runs_dir / rep["run_id"] / "client.stdout").read_text().split()
    stats = {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)} if words else {}
    return rep, stats


@pytest.mark.parametrize("direction,expect_pct", [("egress", 70), ("ingress", 70), ("both", 49)])
def test_packet_drop_rate_within_8_points(tmp_path, runs_dir, progs, direction, expect_pct):
    rep, st = run_udp(tmp_path, runs_dir, udp_pair(progs, [
        {"type": "packet", "link": "l0", "drop_pct": 30, "direction": direction}], warm_ms=1000))
    got = 100.0 * st["received"] / st["sent"]
    assert abs(got - expect_pct) <= 8, (got, st, rep["packet_stats"])
    assert direction in rep["packet_stats"]["l0"] or direction == "both"


def test_packet_corrupt_reaches_the_receiver(tmp_path, runs_dir, progs):
    rep, st = run_udp(tmp_path, runs_dir, udp_pair(progs, [
        {"type": "packet", "link": "l0", "corrupt_pct": 50, "direction": "egress"}]))
    assert st["received"] == st["sent"]
    assert abs(100.0 * st["corrupted"] / st["sent"] - 50) <= 8, st
    assert rep["packet_stats"]["l0"]["egress"]["corrupted"] == st["corrupted"]


def test_blackhole_drops_everything(tmp_path, runs_dir, progs):
    rep, _ = run_udp(tmp_path, runs_dir, udp_pair(progs, [
        {"type": "packet", "link": "l0", "blackhole": True}], count=200, duration_s=4))
    stats = rep["packet_stats"]["l0"]
    # Nothing leaves, so nothing comes back for ingress to see.
    assert stats["egress"]["seen"] > 0, stats
    assert all(s["dropped"] == s["seen"] for s in stats.values()), stats


@pytest.mark.parametrize("fault,direction", [({"drop_pct": 30}, "both"),
                                             ({"blackhole": True}, "egress")])
def test_packet_faults_without_tcx_go_through_tc_clsact(tmp_path, runs_dir, progs, fault,
                                                        direction):
    """A kernel without tcx (before 6.6; FAULTD_NO_TCX=1 makes this one act
    so): the same faults through a clsact qdisc with cls_bpf, the same
    verdict and counts, and the qdisc removed before the namespace goes."""
    doc = udp_pair(progs, [{"type": "packet", "link": "l0", "direction": direction, **fault}],
                   count=2000 if "drop_pct" in fault else 200,
                   duration_s=20 if "drop_pct" in fault else 4,
                   warm_ms=1000 if "drop_pct" in fault else 0)
    path = write_scenario(tmp_path / "udp.json", doc)
    res = faultctl("--log-level", "debug", "run", "--local", "--quiet", path,
                   runs_dir=runs_dir, timeout=90, env={"FAULTD_NO_TCX": "1"})
    assert res.returncode == 0, res
    rep = only_report(runs_dir)
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert rep["verdict"] == "PASS"
    assert_nothing_left(rep)
    assert "FAULTD_NO_TCX is set): packet faults go through tc clsact" in res.stderr, res.stderr
    assert re.search(r"nf_attach: fd[0-9a-f]{6}l0a egress: via tc clsact", res.stderr)
    assert "bpf_link_create" not in res.stderr, "tcx was tried"
    # Ingress and egress share the one qdisc: it goes once, with the last.
    assert len(re.findall(r"nf_detach_in_ns: fd[0-9a-f]{6}l0a: clsact qdisc removed",
                          res.stderr)) == 1, res.stderr
    assert rep["capabilities"]["packet"]["via"] == "tc clsact", rep["capabilities"]
    stats = rep["packet_stats"]["l0"]
    if "drop_pct" in fault:
        words = (runs_dir / rep["run_id"] / "client.stdout").read_text().split()
        st = {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}
        assert abs(100.0 * st["received"] / st["sent"] - 49) <= 8, (st, stats)
        assert set(stats) == {"ingress", "egress"}
        assert all(0 < s["dropped"] < s["seen"] for s in stats.values()), stats
    else:
        assert set(stats) == {"egress"} and stats["egress"]["seen"] > 0, stats
        assert stats["egress"]["dropped"] == stats["egress"]["seen"], stats


def test_refused_packet_programs_cost_the_packet_feature(tmp_path, runs_dir, progs):
    """A kernel that refuses the packet programs: the feature is recorded
    missing with the verifier's words, the run does not pass, and nothing
    is left behind."""
    doc = udp_pair(progs, [{"type": "packet", "link": "l0", "drop_pct": 30}], count=50,
                   duration_s=4)
    path = write_scenario(tmp_path / "udp.json", doc)
    res = faultctl("run", "--local", "--quiet", path, runs_dir=runs_dir, timeout=60,
                   env={"FAULTD_REFUSE_PROGS": "netfault_in,netfault_out"})
    assert res.returncode == 2, res
    assert re.search(r"packet is missing on this host: the kernel refused program "
                     r"netfault_(in|out)", res.stderr), res.stderr
    rep = only_report(runs_dir)
    assert rep["verdict"] == "INCONCLUSIVE"
    assert rep["capabilities"]["packet"]["state"] == "missing", rep["capabilities"]
    assert [f["fault"] for f in rep["faults_not_applied"]] == ["packet on l0 ingress",
                                                              "packet on l0 egress"]
    assert_nothing_left(rep)


def tc_filter_prog_ids(ns):
    """Programs of the cls_bpf filters on the interfaces of namespace @ns."""
    links = subprocess.run(["ip", "-n", ns, "-o", "link"], capture_output=True,
                           text=True).stdout
    ids = set()
    for name in re.findall(r"^\d+: (fd[0-9a-f]{6}l\d+[ab])@", links, re.M):
        for hook in ("ingress", "egress"):
            out = subprocess.run(["tc", "-n", ns, "filter", "show", "dev", name, hook],
                                 capture_output=True, text=True).stdout
            ids |= {int(i) for i in re.findall(r" id (\d+) ", out)}
    return ids


def test_kill_9_with_tc_filters_then_restart_frees_them(tmp_path, progs, monkeypatch):
    """A netlink-attached filter outlives a killed faultd (a tcx link would
    not): the next faultd's journal replay removes the namespace, and with
    it the interface, the qdisc, the filter and its program."""
    monkeypatch.setenv("FAULTD_NO_TCX", "1")
    doc = echo_pair(progs, [{"type": "packet", "link": "l0", "drop_pct": 10}],
                    [{"name": "no_crash"}], duration_s=30)
    path = write_scenario(tmp_path / "k.json", doc)
    with daemon_mid_run(tmp_path, path, "workload 'client' started") as (d, client):
        assert "packet faults go through tc clsact" in d.log, d.log
        ns = next(n for n in our_netns() if n.endswith("-client"))
        ids = tc_filter_prog_ids(ns)
        assert len(ids) == 2, ids  # ingress and egress at the a end
        d.stop(sig=9)
        client.communicate(timeout=30)
        assert tc_filter_prog_ids(ns) == ids, "the filters should outlive faultd"
        with successor(tmp_path) as d2:
            assert not our_netns() and not our_links()
            assert "undid netns" in d2.log
            # The namespace's end frees its devices asynchronously.
            deadline = time.monotonic() + 10
            left = ids
            while left and time.monotonic() < deadline:
                left = {i for i in ids if subprocess.run(
                    ["bpftool", "prog", "show", "id", str(i)],
                    capture_output=True).returncode == 0}
                time.sleep(0.1)
            assert not left, f"programs of the killed run's filters still loaded: {left}"
            assert not our_journals()


def test_rate_change_mid_run_takes_effect_within_100ms(tmp_path, runs_dir, progs):
    rep, st = run_udp(tmp_path, runs_dir, udp_pair(progs, [
        {"type": "packet", "link": "l0", "drop_pct": 0, "for_ms": 1000, "direction": "egress"},
        {"type": "packet", "link": "l0", "at_ms": 1000, "drop_pct": 100,
         "direction": "egress"}], count=2000))
    on = [f for f in rep["faults"] if f["action"] == "packet_on"]
    assert len(on) == 2 and on[1]["t_planned_ms"] == 1000
    assert on[1]["t_actual_ms"] - on[1]["t_planned_ms"] < 100
    # Echoes came back before the change and none after it.
    assert 0 < st["received"] < st["sent"] * 0.8, st


def test_kill_9_at_ten_random_points_leaves_nothing(tmp_path, progs):
    """kill -9 of faultd anywhere in a run with a topology, flaps and packet
    faults; each time the next faultd's start removes everything."""
    import random
    from conftest import bpf_links_of_ours
    rng = random.Random(4)
    doc = echo_pair(progs, [{"type": "link_flap", "link": "l0", "down_ms": 100, "up_ms": 150},
                            {"type": "packet", "link": "l0", "drop_pct": 10}],
                    [{"name": "no_crash"}], duration_s=30)
    path = write_scenario(tmp_path / "k10.json", doc)
    for i in range(10):
        _killed_mid_run(tmp_path / f"d{i}", path, rng.uniform(0.0, 1.5))
        again = tmp_path / f"a{i}"
        again.mkdir()
        d2 = Daemon(again)
        try:
            assert not our_netns() and not our_links(), f"kill point {i}"
            assert not bpf_links_of_ours(), f"kill point {i}: BPF links left"
            assert not our_journals(), f"kill point {i}: journal left"
        finally:
            assert d2.stop() == 0


@pytest.mark.parametrize("pct", [50, 100])
def test_syscall_error_makes_socket_fail(tmp_path, runs_dir, progs, pct):
    doc = {"name": "syserr", "duration_s": 20,
           "workloads": [{"name": "w", "kind": "exec", "cmd": [str(progs / "sock_try"), "2000"]}],
           "faults": [{"type": "syscall_error", "workload": "w", "syscall": "socket",
                       "errno": "ENFILE", "pct": pct}],
           "invariants": [{"name": "no_crash"}, {"name": "exit_ok"}]}
    path = write_scenario(tmp_path / "se.json", doc)
    res = faultctl("run", "--local", "--quiet", path, runs_dir=runs_dir, timeout=60)
    assert res.returncode == 0, res
    rep = only_report(runs_dir)
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert_nothing_left(rep)
    words = (runs_dir / rep["run_id"] / "w.stdout").read_text().split()
    failed = int(words[3])
    assert abs(100.0 * failed / 2000 - pct) <= 8, words
    assert words[5] == "ENFILE"
    assert rep["syscall_stats"]["w"]["socket_failed"] == failed


SECCOMP_PROBE = """
import os, socket, tempfile
try:
    socket.socketpair()
    print("socketpair ok")
except OSError as e:
    print("socketpair", e.errno)
try:
    with tempfile.TemporaryFile() as f:
        os.fsync(f.fileno())
    print("fsync ok")
except OSError as e:
    print("fsync", e.errno)
"""


def test_syscall_error_for_other_calls_through_seccomp(tmp_path, runs_dir):
    """Calls other than socket() fail from the first instruction through a
    seccomp filter installed before exec; other workloads are untouched."""
    py = "/usr/bin/python3"
    doc = {"name": "seccomp", "duration_s": 20,
           "workloads": [{"name": "w", "kind": "exec", "cmd": [py, "-c", SECCOMP_PROBE]},
                         {"name": "other", "kind": "exec", "cmd": [py, "-c", SECCOMP_PROBE]}],
           "faults": [{"type": "syscall_error", "workload": "w", "syscall": "socketpair",
                       "errno": "EMFILE"},
                      {"type": "syscall_error", "workload": "w", "syscall": "fsync",
                       "errno": "EIO"}],
           "invariants": [{"name": "no_crash"}, {"name": "exit_ok"}]}
    path = write_scenario(tmp_path / "sc.json", doc)
    res = faultctl("run", "--local", "--quiet", path, runs_dir=runs_dir, timeout=60)
    assert res.returncode == 0, res
    rep = only_report(runs_dir)
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert_nothing_left(rep)
    out = (runs_dir / rep["run_id"] / "w.stdout").read_text().split("\n")
    assert out[:2] == [f"socketpair {errno.EMFILE}", f"fsync {errno.EIO}"], out
    other = (runs_dir / rep["run_id"] / "other.stdout").read_text().split("\n")
    assert other[:2] == ["socketpair ok", "fsync ok"], other
    on = [f for f in rep["faults"] if f["action"] == "syscall_error_on"]
    assert len(on) == 2 and all(f["t_planned_ms"] == 0 and "error" not in f for f in on)


def test_seccomp_syscall_error_with_a_rate_is_refused(tmp_path):
    doc = {"name": "syserr", "workloads": [{"name": "w", "kind": "exec", "cmd": ["true"]}],
           "faults": [{"type": "syscall_error", "workload": "w", "syscall": "connect",
                       "pct": 50}]}
    path = write_scenario(tmp_path / "se.json", doc)
    res = faultctl("validate", path)
    assert res.returncode == 3
    assert ("se.json:16:18: faults[0].syscall: 'connect' fails through a seccomp filter "
            "fixed at exec") in res.stderr, res.stderr


@pytest.mark.parametrize("direction,expect_ratio", [("egress", 1.30), ("ingress", 1.30),
                                                    ("both", 1.69)])
def test_packet_duplicate_rate_within_8_points(tmp_path, runs_dir, progs, direction,
                                               expect_ratio):
    rep, st = run_udp(tmp_path, runs_dir, udp_pair(progs, [
        {"type": "packet", "link": "l0", "duplicate_pct": 30, "direction": direction}]))
    got = st["received"] / st["sent"]
    assert abs(got - expect_ratio) <= 0.08, (got, st, rep["packet_stats"])
    assert st["corrupted"] == 0
    dup = sum(s["duplicated"] for s in rep["packet_stats"]["l0"].values())
    assert dup > 0.2 * st["sent"], rep["packet_stats"]


BULK = """
import socket, sys, threading, time
time.sleep(0.3)
s = socket.create_connection(("198.18.0.2", 7000))
n = int(sys.argv[1])
t = time.time()
def drain():
    got = 0
    while got < n:
        d = s.recv(65536)
        if not d:
            break
        got += len(d)
th = threading.Thread(target=drain)
th.start()
s.sendall(b"x" * n)
th.join()
print("kbit", int(n * 8 / 1000 / (time.time() - t)))
"""


def bulk_pair(faults, nbytes=1500000):
    return {
        "name": "bulk", "seed": 1, "duration_s": 30,
        "topology": {"namespaces": ["c", "s"],
                     "links": [{"name": "l0", "type": "veth", "a": "c", "b": "s"}]},
        "workloads": [
            {"name": "server", "kind": "echo-server", "netns": "s",
             "args": ["--bind", "198.18.0.2", "--port", "7000", "--no-udp"]},
            {"name": "client", "kind": "exec", "netns": "c",
             "cmd": ["/usr/bin/python3", "-c", BULK, str(nbytes)]}],
        "faults": faults, "invariants": [{"name": "no_crash"}, {"name": "exit_ok"}]}


@pytest.mark.parametrize("direction", ["egress", "ingress"])
def test_rate_limits_bandwidth(tmp_path, runs_dir, direction):
    """TBF on the a end (egress) or the b end (ingress at a): a bulk
    transfer and its echo go no faster than the limit."""
    path = write_scenario(tmp_path / "rate.json", bulk_pair(
        [{"type": "rate", "link": "l0", "rate_kbit": 8000, "direction": direction}]))
    res = faultctl("run", "--local", "--quiet", path, runs_dir=runs_dir, timeout=90)
    assert res.returncode == 0, res
    rep = only_report(runs_dir)
    assert_nothing_left(rep)
    kbit = int((runs_dir / rep["run_id"] / "client.stdout").read_text().split()[1])
    # Slow start and the bucket keep it a little under the limit.
    assert 6000 <= kbit <= 8800, kbit
    on = [f for f in rep["faults"] if f["action"] == "rate_on"]
    assert on and "error" not in on[0], rep["faults"]
    assert rep["capabilities"]["rate"] == {"state": "ok", "core": False, "via": "tbf"}, \
        rep["capabilities"]




def ping_pair(faults, count=20, interval="0.05", duration_s=20):
    # -U: time the reply as the application gets it, after an ingress delay.
    return {
        "name": "delay", "seed": 3, "duration_s": duration_s,
        "topology": {"namespaces": ["c", "s"],
                     "links": [{"name": "l0", "type": "veth", "a": "c", "b": "s"}]},
        "workloads": [{"name": "pinger", "kind": "exec", "netns": "c",
                       "cmd": ["ping", "-D", "-U", "-n", "-c", str(count), "-i", interval,
                               "198.18.0.2"]}],
        "faults": faults, "invariants": [{"name": "no_crash"}, {"name": "exit_ok"}]}


PING_LINE = re.compile(r"^\[(?P<at>[\d.]+)\] .*icmp_seq=(?P<seq>\d+) .*time=(?P<rtt>[\d.]+) ms")


def run_ping(tmp_path, runs_dir, doc, env=None):
    path = write_scenario(tmp_path / "ping.json", doc)
    res = faultctl("run", "--local", "--quiet", path, runs_dir=runs_dir, timeout=90, env=env)
    assert res.returncode == 0, res
    rep = only_report(runs_dir)
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert_nothing_left(rep)
    out = (runs_dir / rep["run_id"] / "pinger.stdout").read_text()
    replies = [(float(m["at"]), int(m["seq"]), float(m["rtt"]))
               for m in map(PING_LINE.match, out.splitlines()) if m]
    return rep, replies


def kernel_has_netem():
    """Can a netem qdisc be made here? Tried on the lo of a throwaway namespace."""
    res = subprocess.run(["unshare", "-n", "tc", "qdisc", "add", "dev", "lo", "root", "netem",
                          "delay", "0ms"], capture_output=True, text=True)
    return res.returncode == 0


@pytest.mark.parametrize("mech", ["preferred", "nfqueue"])
@pytest.mark.parametrize("direction,lo,hi", [("egress", 40, 65), ("ingress", 40, 65),
                                             ("both", 85, 125)])
def test_delay_adds_latency_with_jitter(tmp_path, runs_dir, direction, lo, hi, mech):
    """The same delay through netem where the kernel has it (ingress at a
    made as egress at b) and through NFQUEUE (FAULTD_NO_NETEM=1, or no
    netem: this build machine's kernel has none)."""
    env = {"FAULTD_NO_NETEM": "1"} if mech == "nfqueue" else None
    rep, replies = run_ping(tmp_path, runs_dir, ping_pair(
        [{"type": "delay", "link": "l0", "delay_ms": 50, "jitter_ms": 10,
          "direction": direction}]), env=env)
    assert len(replies) == 20, replies
    # netem delays every frame, the first ping's ARP exchange too: leave
    # that ping out of the mean.
    rtts = [r[2] for r in replies if r[1] > 1]
    avg = sum(rtts) / len(rtts)
    assert lo <= avg <= hi, replies
    assert max(rtts) - min(rtts) > 3, "no jitter"
    stats = rep["packet_stats"]["l0"]
    held = sum(d["delay"]["released"] for d in stats.values())
    assert held >= 20, stats
    via = "netem" if mech == "preferred" and kernel_has_netem() else "nfqueue"
    assert {d["delay"]["via"] for d in stats.values()} == {via}, stats
    assert rep["capabilities"]["delay"]["via"] == via, rep["capabilities"]


@pytest.mark.parametrize("rate_direction", ["egress", "ingress"])
def test_delay_beside_a_rate_limit(tmp_path, runs_dir, rate_direction):
    """A tbf rate limit owns the root qdisc of the interface it shapes: a
    delay on the same direction keeps to NFQUEUE there; on the other
    direction (the other interface) netem is free to go."""
    rep, replies = run_ping(tmp_path, runs_dir, ping_pair(
        [{"type": "delay", "link": "l0", "delay_ms": 50, "direction": "egress"},
         {"type": "rate", "link": "l0", "rate_kbit": 10000, "direction": rate_direction}]))
    assert len(replies) == 20, replies
    rtts = [r[2] for r in replies]
    assert 45 <= sum(rtts) / len(rtts) <= 65, rtts
    stats = rep["packet_stats"]["l0"]
    netem_fits = rate_direction == "ingress" and kernel_has_netem()
    assert stats["egress"]["delay"]["via"] == ("netem" if netem_fits else "nfqueue"), stats
    assert not [f for f in rep["faults"] if f.get("error")], rep["faults"]


def test_delay_change_mid_run_takes_effect_within_100ms(tmp_path, runs_dir):
    """200 ms for the first 1.5 s, then none: every ping sent 100 ms after
    the change comes back at once."""
    import datetime
    rep, replies = run_ping(tmp_path, runs_dir, ping_pair(
        [{"type": "delay", "link": "l0", "delay_ms": 200, "for_ms": 1500,
          "direction": "egress"}], count=60))
    off = [f for f in rep["faults"] if f["action"] == "delay_off"]
    assert len(off) == 1 and off[0]["t_actual_ms"] - off[0]["t_planned_ms"] < 100, rep["faults"]
    t0 = datetime.datetime.fromisoformat(rep["started_at"].replace("Z", "+00:00")).timestamp()
    change = t0 + off[0]["t_actual_ms"] / 1000.0
    # Sent 250 ms before the change: held the whole 200 ms. Those sent
    # closer are released at the change, as it lowers what is held.
    slow = [r for r in replies if r[0] - r[2] / 1000.0 < change - 0.25]
    fast = [r for r in replies if r[0] - r[2] / 1000.0 > change + 0.1]
    assert slow and all(r[2] > 150 for r in slow), slow
    assert fast and all(r[2] < 20 for r in fast), fast


def test_delay_where_netem_and_nfqueue_are_missing_is_not_applied(tmp_path, runs_dir):
    """A host that cannot delay packets still runs the scenario: the delay is
    listed as not applied, the capability as missing with why, and a run
    that would have passed is INCONCLUSIVE, never a PASS it did not earn."""
    doc = ping_pair([{"type": "delay", "link": "l0", "delay_ms": 50}], count=5)
    path = write_scenario(tmp_path / "d.json", doc)
    res = faultctl("run", "--local", "--quiet", path, runs_dir=runs_dir, timeout=90,
                   env={"FAULTD_IPTABLES": "/nonexistent/iptables", "FAULTD_NO_NETEM": "1"})
    assert res.returncode == 2, res
    rep = only_report(runs_dir)
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert_nothing_left(rep)
    assert rep["verdict"] == "INCONCLUSIVE"
    delay = rep["capabilities"]["delay"]
    assert delay["state"] == "missing", delay
    assert "FAULTD_IPTABLES=/nonexistent/iptables" in delay["why"], delay
    assert "FAULTD_NO_NETEM" in delay["why"], delay
    assert [f["fault"] for f in rep["faults_not_applied"]] == ["delay on l0 ingress",
                                                              "delay on l0 egress"]
    for inv in rep["invariants"]:
        assert inv["verdict"] == "INCONCLUSIVE", inv
        assert inv["summary"].startswith("fault delay on l0 ingress was not applied"), inv
    # The link itself worked, undelayed: ping got every reply.
    out = (runs_dir / rep["run_id"] / "pinger.stdout").read_text()
    assert " 0% packet loss" in out, out


def test_kill_9_with_tap_rate_and_delay_then_restart_leaves_nothing(tmp_path, progs):
    """The newer link faults live inside the run's namespaces (a qdisc, the
    NFQUEUE rules, a persistent tap): the namespace's undo takes them all,
    and the delay's queue-bypass keeps the link passing meanwhile."""
    from conftest import bpf_links_of_ours
    doc = {"name": "k9", "seed": 2, "duration_s": 30,
           "topology": {"namespaces": ["c", "s"],
                        "links": [{"name": "l0", "type": "veth", "a": "c", "b": "s"},
                                  {"name": "t0", "type": "tap", "a": "s"}]},
           "workloads": [{"name": "w", "kind": "exec", "netns": "c",
                          "cmd": ["ping", "-q", "-i", "0.05", "198.18.0.2"]}],
           "faults": [{"type": "delay", "link": "l0", "delay_ms": 20, "direction": "egress"},
                      {"type": "rate", "link": "l0", "rate_kbit": 1000, "direction": "ingress"},
                      {"type": "packet", "link": "l0", "duplicate_pct": 5},
                      {"type": "rate", "link": "t0", "rate_kbit": 1000, "direction": "egress"}],
           "invariants": [{"name": "no_crash"}]}
    path = write_scenario(tmp_path / "k9.json", doc)
    with daemon_mid_run(tmp_path, path) as (d, client):
        time.sleep(0.5)
        ns = our_netns()
        assert len(ns) == 2, ns
        s_ns = next(n for n in ns if n.endswith("-s"))
        links = subprocess.run(["ip", "-n", s_ns, "-o", "link"], capture_output=True,
                               text=True).stdout
        assert re.search(r"fd[0-9a-f]{6}l1t", links), links
        qdisc = subprocess.run(["tc", "-n", s_ns, "qdisc", "show"], capture_output=True,
                               text=True).stdout
        assert "tbf" in qdisc, qdisc
        d.stop(sig=9)
        client.communicate(timeout=30)
        with successor(tmp_path):
            assert not our_netns() and not our_links()
            assert not bpf_links_of_ours()
            assert not our_journals()


def test_dpdk_runtime_dirs_of_dead_runs_are_swept(tmp_path):
    """A DPDK workload's EAL runtime directory is journaled like a namespace:
    after its faultd died, cleanup removes it, and nothing else under
    /var/run/dpdk."""
    import pathlib
    run_id = "fdd0d0"[2:] + "d0"
    mine = pathlib.Path(f"/var/run/dpdk/fd{run_id}-client")
    other = pathlib.Path("/var/run/dpdk/not-faultds")
    mine.mkdir(parents=True, exist_ok=True)
    other.mkdir(parents=True, exist_ok=True)
    (mine / "config").write_text("x")
    (mine / "mp_socket").write_text("")
    dead = subprocess.Popen(["true"])
    dead.wait()
    JOURNAL.mkdir(parents=True, exist_ok=True)
    journal = JOURNAL / f"{run_id}.journal"
    journal.write_text(f"owner {dead.pid}\ndpdkdir {mine}\ndpdkdir {other}\n")
    try:
        res = faultctl("cleanup")
        assert res.returncode == 0, res
        assert not mine.exists(), res
        assert other.exists(), "a directory faultd did not name was removed"
        assert str(mine) in res.stdout + res.stderr, res
        assert not journal.exists()
    finally:
        if mine.exists():
            subprocess.run(["rm", "-rf", str(mine)])
        other.rmdir()
        journal.unlink(missing_ok=True)


def test_bridge_joins_link_ends_and_routes_are_installed(tmp_path, runs_dir):
    """Two hosts on a switch namespace: a bridge joins the two veth ends
    there, so they ping across it; routes land in each namespace's table."""
    doc = {"name": "bridge", "duration_s": 10,
           "topology": {"namespaces": ["h1", "sw", "h2"],
                        "links": [{"name": "l0", "type": "veth", "a": "h1", "b": "sw",
                                   "a_addr": "198.18.0.1/24", "b_addr": "198.18.9.1/24"},
                                  {"name": "l1", "type": "veth", "a": "sw", "b": "h2",
                                   "a_addr": "198.18.9.2/24", "b_addr": "198.18.0.3/24"}],
                        "bridges": [{"name": "br0", "ns": "sw", "ports": ["l0", "l1"],
                                     "addr": "198.18.0.254/24"}],
                        "routes": [{"ns": "h1", "dst": "198.18.50.0/24", "via": "198.18.0.254"},
                                   {"ns": "h2", "dst": "default", "via": "198.18.0.254"}]},
           "workloads": [{"name": "p", "kind": "exec", "netns": "h1",
                          "cmd": ["/bin/sh", "-c", "ping -c 2 -W 1 198.18.0.3 && ip route"]},
                         {"name": "q", "kind": "exec", "netns": "h2", "cmd": ["ip", "route"]}],
           "invariants": [{"name": "exit_ok"}, {"name": "no_residue"}]}
    path = write_scenario(tmp_path / "br.json", doc)
    res = faultctl("run", "--local", "--quiet", path, runs_dir=runs_dir, timeout=60)
    assert res.returncode == 0, res
    rep = only_report(runs_dir)
    jsonschema.validate(rep, REPORT_SCHEMA)
    assert_nothing_left(rep)
    assert re.match(r"^fd[0-9a-f]{6}b0$", rep["topology"]["bridges"]["br0"])
    p = (runs_dir / rep["run_id"] / "p.stdout").read_text()
    assert "2 received" in p and "198.18.50.0/24 via 198.18.0.254" in p, p
    q = (runs_dir / rep["run_id"] / "q.stdout").read_text()
    assert "default via 198.18.0.254" in q, q


def _texts(paths):
    """{name: text, or the entries of a directory} of @paths, those that are
    still there when read."""
    out = {}
    for p in paths:
        try:
            out[p.name] = sorted(c.name for c in p.iterdir()) if p.is_dir() else p.read_text()
        except OSError:
            pass
    return out


def _killed_mid_run(where, scenario, at):
    """A faultd running @scenario for a client, kill -9'd @at seconds after
    the request: (the dead daemon, with the time of its kill as killed_at,
    the BPF link ids it held)."""
    where.mkdir()
    d = Daemon(where)
    client = subprocess.Popen([str(FAULTCTL), "--socket", str(d.sock), "run", scenario],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(at)
        held = _bpf_links_held_by(d.proc.pid)
        d.killed_at = time.time()
        d.stop(sig=9)
        client.communicate(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
        d.stop(sig=9)
    return d, held


def _bpf_links_held_by(pid):
    import pathlib
    ids = set()
    for fdinfo in pathlib.Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            m = re.search(r"^link_id:\s+(\d+)", fdinfo.read_text(), re.M)
        except OSError:
            continue
        if m:
            ids.add(int(m[1]))
    return ids


def _bpf_link_ids():
    return {link["id"] for link in bpftool_links()}


def _in_cgroups_of(owner_pid):
    """Processes still in a cgroup under the dead faultd's owner directory."""
    import pathlib
    found = []
    for p in pathlib.Path("/proc").glob("[0-9]*"):
        try:
            cg = (p / "cgroup").read_text()
        except OSError:
            continue
        if f"/faultd/{owner_pid}/" not in cg:
            continue
        try:
            state = (p / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        # A zombie has released everything; its new parent reaps it.
        if state != "Z":
            found.append((int(p.name), state, (p / "cmdline").read_bytes()[:80]))
    return found


def test_kill_9_at_twenty_random_points_of_every_fault_family_and_probe(tmp_path, progs):
    """kill -9 of faultd at 20 random points of a run that uses every fault
    family (link flap, packet, rate, delay, rate on a tap, syscall error,
    pause, cpu hog, a DPDK client's runtime dir) and every probe (proc,
    fds, heap, lifecycle): setup, probe attach, faults on. Each time the
    next faultd's start leaves nothing: namespaces, links, BPF links,
    journals, DPDK dirs, cgroups, processes."""
    import pathlib
    import random
    from conftest import CGROUP_ROOT
    rng = random.Random(19)
    doc = {"name": "k9-every", "seed": 3, "duration_s": 30,
           "topology": {"namespaces": ["c", "s"],
                        "links": [{"name": "l0", "type": "veth", "a": "c", "b": "s",
                                   "a_addr": "198.18.0.1/24", "b_addr": "198.18.0.2/24"},
                                  {"name": "l1", "type": "veth", "a": "c", "b": "s",
                                   "a_addr": "198.18.1.1/24", "b_addr": "198.18.1.2/24"},
                                  {"name": "t0", "type": "tap", "a": "s"}]},
           "workloads": [
               {"name": "server", "kind": "ws-server", "netns": "s",
                "args": ["--bind", "198.18.0.2", "--port", "8443", "--stream-ms", "100"]},
               {"name": "client", "kind": "dpdk-client", "link": "l0",
                "args": ["--addr", "198.18.0.3/24", "--server", "198.18.0.2:8443"],
                "probes": ["heap", "lifecycle"]},
               {"name": "p", "kind": "exec", "netns": "c", "probes": ["fds", "heap"],
                "cmd": ["ping", "-q", "-i", "0.05", "198.18.1.2"]}],
           "faults": [
               {"type": "link_flap", "link": "l0", "down_ms": 100, "up_ms": 400,
                "start_ms": 1500},
               {"type": "packet", "link": "l1", "drop_pct": 10},
               {"type": "rate", "link": "l1", "rate_kbit": 1000, "direction": "ingress"},
               {"type": "delay", "link": "l1", "delay_ms": 20, "direction": "egress"},
               {"type": "rate", "link": "t0", "rate_kbit": 1000, "direction": "egress"},
               {"type": "syscall_error", "workload": "p", "syscall": "socket", "pct": 10},
               {"type": "pause_flap", "workload": "p", "pause_ms": 100, "run_ms": 200},
               {"type": "cpu_hog", "cpus": [0], "threads": 1}],
           "invariants": [{"name": "no_crash"}]}
    path = write_scenario(tmp_path / "every.json", doc)
    points = sorted(rng.uniform(0.0, 7.0) for _ in range(20))
    for i, at in enumerate(points):
        d, held = _killed_mid_run(tmp_path / f"d{i}", path, at)
        # What the dead faultd left, for the message should a DPDK dir stay.
        killed_at = d.killed_at
        before = _texts(JOURNAL.glob("*.journal"))
        before_dpdk = _texts(pathlib.Path("/var/run/dpdk").glob("fd*"))
        again = tmp_path / f"a{i}"
        again.mkdir()
        d2 = Daemon(again)
        started_at = time.time() - killed_at
        try:
            what = f"kill point {i} at {at:.2f}s"
            assert not our_netns() and not our_links(), what
            # The links the killed faultd held, by id (other sessions'
            # runs attach the same programs): the kernel frees a dead
            # holder's uprobe links after an RCU grace period each.
            deadline = time.monotonic() + 10
            while held & _bpf_link_ids() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not held & _bpf_link_ids(), f"{what}: BPF links left"
            assert not our_journals(), f"{what}: journal left"
            # Killed processes can take a while to leave (uninterruptible
            # while their mappings and uprobes go): bounded.
            deadline = time.monotonic() + 10
            while _in_cgroups_of(d.proc.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not _in_cgroups_of(d.proc.pid), f"{what}: processes left"
            assert not (CGROUP_ROOT / str(d.proc.pid)).exists(), f"{what}: cgroups left"
            dpdk = [p for p in pathlib.Path("/var/run/dpdk").glob("fd*")
                    if not our_journals() and p.name[2:8] in d.log]
            assert not dpdk, (f"{what}: DPDK dirs left: "
                              f"{[(p.name, p.stat().st_ctime - killed_at, _texts([p])) for p in dpdk]}; "
                              f"after the kill: journals {before}, DPDK dirs {before_dpdk}; "
                              f"the next faultd ready {started_at:.2f}s after the kill")
        finally:
            assert d2.stop() == 0
