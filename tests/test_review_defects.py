"""The defects a review of faultd found (issue 19), each as what a user
would notice: a report that renders, journals that are replayed in full,
a predecessor's leftovers swept, names reported as the scenario gave them,
Ctrl-C that cleans up, a live daemon's socket left alone."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

from conftest import (CGROUP_MOUNT, FAULTCTL, FAULTD, JOURNAL_DIR, Daemon, faultctl, interrupted,
                      only_report, our_links, our_netns, write_scenario)


def _report_dir(tmp_path, run_id, report):
    runs = tmp_path / "runs"
    (runs / run_id).mkdir(parents=True)
    (runs / run_id / "report.json").write_text(json.dumps(report))
    return runs


def test_html_plot_of_a_flat_series_near_2_pow_52_renders(tmp_path):
    """A workload's FAULTD_COUNTER is an s64: a nearly flat series of values
    at 2^53 made the y-tick loop (y += step) spin forever."""
    big = 2 ** 53
    cycles = [{"cycle": i + 1, "t_start_ms": i * 100, "t_end_ms": (i + 1) * 100,
               "workloads": {"w": {"counters": {"big": big + (i % 3),
                                                "huge": 2 ** 62 + i * 1024}}}}
              for i in range(12)]
    runs = _report_dir(tmp_path, "a0b1c2", {"run_id": "a0b1c2", "verdict": "PASS",
                                            "schema_version": 1, "cycles": cycles,
                                            "invariants": [], "faults": [], "workloads": []})
    out = tmp_path / "r.html"
    res = faultctl("report", "a0b1c2", "--format", "html", "--output", out,
                   runs_dir=runs, socket=tmp_path / "none.sock", timeout=20)
    assert res.returncode == 0, res
    page = out.read_text()
    assert page.count('class="plot"') == 2
    assert 'data-series="big"' in page and 'data-series="huge"' in page
    assert 0 < page.count("y-tick") <= 2 * 101
    assert "nan" not in page.lower().replace("nanosleep", "")


def _dead_pid():
    """A pid that no longer runs anything."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_journal_replay_reaches_past_4096_entries(tmp_path):
    """replay_file read 4,096 lines, then removed the journal: a namespace
    recorded after them outlived its run."""
    run_id = "c0ffee"
    ns = f"fd{run_id}-late"
    jdir = tmp_path / "journal"
    jdir.mkdir()
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        lines = [f"owner {_dead_pid()}"]
        lines += [f"link fd{run_id}l{i % 100}a" for i in range(5000)]
        lines.append(f"netns /run/netns/{ns}")
        (jdir / f"{run_id}.journal").write_text("\n".join(lines) + "\n")
        res = faultctl("--journal-dir", jdir, "cleanup", timeout=120)
        assert res.returncode == 0, res
        assert ns not in our_netns(), "the namespace after entry 4,096 was not undone"
        assert not list(jdir.iterdir())
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_journal_keeps_an_entry_whose_undo_failed(tmp_path):
    """An undo that fails (here: /run/netns/fd...-stuck is a directory, which
    unlink refuses) stays in the journal for the next sweep instead of being
    lost with the file."""
    run_id = "c0ffe1"
    stuck = pathlib.Path(f"/run/netns/fd{run_id}-stuck")
    jdir = tmp_path / "journal"
    jdir.mkdir()
    stuck.mkdir(parents=True)
    try:
        journal = jdir / f"{run_id}.journal"
        journal.write_text(f"owner {_dead_pid()}\nnetns {stuck}\nlink fd{run_id}l0a\n")
        res = faultctl("--journal-dir", jdir, "cleanup")
        assert res.returncode == 0, res
        assert journal.exists(), "the failed entry was lost"
        text = journal.read_text()
        assert f"netns {stuck}" in text and "link " not in text, text
        stuck.rmdir()
        res = faultctl("--journal-dir", jdir, "cleanup")
        assert res.returncode == 0 and f"netns {stuck}" in res.stdout, res
        assert not journal.exists()
    finally:
        if stuck.is_dir():
            stuck.rmdir()


def test_pid_1_sweeps_its_dead_predecessors_journal(tmp_path):
    """faultd as PID 1 of a container: the journal of the previous PID 1
    (dead) names pid 1, which is this process; it used to count as alive and
    was never swept."""
    run_id = "c0ffe2"
    ns = f"fd{run_id}-a"
    jdir = tmp_path / "journal"
    jdir.mkdir()
    # In its own pid namespace every other faultd looks dead: the cleanup
    # gets a cgroup root of its own (an empty cgroup), so that it cannot
    # sweep the runs other tests have under the shared one.
    cgroup_root = CGROUP_MOUNT / f"fd{run_id}-test"
    cgroup_root.mkdir()
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        (jdir / f"{run_id}.journal").write_text(f"owner 1\nnetns /run/netns/{ns}\n")
        res = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", str(FAULTCTL),
                              "--journal-dir", str(jdir), "--cgroup-root", str(cgroup_root),
                              "cleanup"],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res
        assert ns not in our_netns(), res.stdout
        assert not list(jdir.iterdir())
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        cgroup_root.rmdir()


def test_topology_names_keep_a_dash_and_errors_read_as_errno(tmp_path):
    """A namespace "peer-a" is reported as "peer-a", not "a" (topo__names
    split on the last '-'); a libnl error is told as the errno it is: an
    address already on the namespace is "File exists", not ENXIO's text
    picked by the magnitude of -NLE_EXIST."""
    runs = tmp_path / "runs"
    runs.mkdir()
    ok = {"name": "dash-names", "duration_s": 1,
          "topology": {"namespaces": ["peer-a", "peer-b"],
                       "links": [{"name": "l0", "type": "veth", "a": "peer-a", "b": "peer-b"}]},
          "workloads": [{"name": "w", "kind": "exec", "netns": "peer-a", "cmd": ["true"]}],
          "invariants": [{"name": "no_crash"}]}
    res = faultctl("run", "--local", "--quiet", write_scenario(tmp_path / "ok.json", ok),
                   runs_dir=runs, timeout=60)
    rep = only_report(runs)
    assert res.returncode == 0, res
    assert set(rep["topology"]["namespaces"]) == {"peer-a", "peer-b"}, rep["topology"]
    assert rep["topology"]["namespaces"]["peer-a"].endswith(f"fd{rep['run_id']}-peer-a")

    # Bridge kernel names hold a two-digit index: the 101st is named as the
    # first, and the kernel says EEXIST (libnl's -NLE_EXIST, 6: ENXIO's).
    runs2 = tmp_path / "runs2"
    runs2.mkdir()
    dup = dict(ok, name="dup-bridge")
    dup["topology"] = dict(ok["topology"], bridges=[
        {"name": f"br{i}", "ns": "peer-a", "ports": ["l0"]} for i in range(101)])
    res = faultctl("run", "--local", "--quiet", write_scenario(tmp_path / "dup.json", dup),
                   runs_dir=runs2, timeout=60)
    assert res.returncode == 3, res
    assert "bridge br100" in res.stderr and "File exists" in res.stderr, res.stderr
    assert "No such device or address" not in res.stderr


def test_faultd_once_tears_down_on_ctrl_c(tmp_path):
    """`faultd --once` had no signal handling: Ctrl-C left the run's
    namespaces, cgroups and processes until the next start."""
    runs = tmp_path / "runs"
    doc = {"name": "once-sigint", "duration_s": 60,
           "topology": {"namespaces": ["c", "s"],
                        "links": [{"name": "l0", "type": "veth", "a": "c", "b": "s"}]},
           "workloads": [{"name": "w", "kind": "exec", "netns": "c", "cmd": ["sleep", "60"]}],
           "invariants": [{"name": "no_crash"}]}
    path = write_scenario(tmp_path / "once.json", doc)
    proc, out = interrupted([FAULTD, "--runs-dir", runs, "--log-level", "info", "--once", path],
                            lambda out: "started, pid" in out, timeout=20,
                            stderr=subprocess.STDOUT)
    assert "started, pid" in out, out
    rep = only_report(runs)
    assert rep["stop_reason"] == "faultd received SIGINT", rep["stop_reason"]
    mine = [n for n in our_netns() + our_links() if rep["run_id"] in n]
    assert not mine, f"left behind: {mine}"
    assert not any(rep["run_id"] in p.name for p in JOURNAL_DIR.glob("*.journal"))
    from conftest import assert_nothing_left
    assert_nothing_left(rep, links=False)


def test_a_second_faultd_leaves_a_busy_live_faultds_socket_alone(tmp_path):
    """ctl_server_open unlinked the socket on any connect() error, including
    EAGAIN from a live faultd whose backlog is full: the second faultd took
    the path over and the first one's clients could no longer reach it."""
    d = Daemon(tmp_path)
    clients = []
    stopped = False
    try:
        inode = d.sock.stat().st_ino
        os.kill(d.proc.pid, signal.SIGSTOP)
        for _ in range(1000):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(str(d.sock))
            except BlockingIOError:
                s.close()
                break
            clients.append(s)
        else:
            pytest.fail("the backlog never filled")
        second = subprocess.run([str(FAULTD), "--socket", str(d.sock), "--runs-dir",
                                 str(tmp_path / "runs2")], capture_output=True, text=True,
                                timeout=20)
        assert second.returncode == 3, second
        assert d.sock.stat().st_ino == inode, "the live faultd's socket was replaced"
        for s in clients:
            s.close()
        os.kill(d.proc.pid, signal.SIGCONT)
        assert d.ctl("version").returncode == 0
        stopped = True
        assert d.stop() == 0
    finally:
        for s in clients:
            s.close()
        if not stopped:
            os.kill(d.proc.pid, signal.SIGCONT)
            d.stop(sig=signal.SIGKILL)


def test_soak_through_the_daemon_stops_the_current_run_on_ctrl_c(tmp_path):
    """A soak through faultd used signal() (SA_RESTART): Ctrl-C waited for the
    current run to end on its own. Now the run is stopped and the soak ends."""
    d = Daemon(tmp_path)
    try:
        doc = {"name": "soak-sigint", "duration_s": 60,
               "workloads": [{"name": "w", "kind": "exec", "cmd": ["sleep", "60"]}],
               "invariants": [{"name": "no_crash"}]}
        path = write_scenario(tmp_path / "soak.json", doc)
        proc = subprocess.Popen([str(FAULTCTL), "--socket", str(d.sock), "soak", "--duration",
                                 "1h", "--summary", str(tmp_path / "sum.json"), str(path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=tmp_path)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and "started, pid" not in d.log:
                time.sleep(0.05)
            assert "started, pid" in d.log
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert "soak-sigint" in out or "soak.json" in out, (out, err)
        summary = json.loads((tmp_path / "sum.json").read_text())
        assert len(summary["runs"]) == 1, summary
        rep = json.loads(d.ctl("report", summary["runs"][0]["run_id"], "--format", "json").stdout)
        assert "stop" in rep["stop_reason"], rep["stop_reason"]
    finally:
        assert d.stop() == 0


def test_a_link_without_a_name_is_an_error_not_a_crash(tmp_path):
    """Found by fuzz_scenario: a link whose "name" is missing left a NULL
    that scenario_link_idx passed to strcmp: `faultctl validate` (and
    faultd, for a run request) crashed instead of naming the key."""
    doc = {"name": "no-link-name", "duration_s": 1,
           "topology": {"namespaces": ["c", "s"],
                        "links": [{"nam": "l0", "type": "veth", "a": "c", "b": "s"}]},
           "workloads": [{"name": "w", "kind": "exec", "netns": "c", "cmd": ["true"]}],
           "faults": [{"type": "link_down", "link": "l0", "at_ms": 100}],
           "invariants": [{"name": "no_crash"}]}
    path = write_scenario(tmp_path / "bad.json", doc)
    res = faultctl("validate", path)
    assert res.returncode == 3, res
    assert "topology.links[0]" in res.stderr and "name" in res.stderr, res.stderr
    # The same NULL met the duplicate-name check of a later link.
    doc["topology"]["links"] = [{"type": "veth", "a": "c", "b": "s"},
                                {"name": "t0", "type": "tap", "a": "s"}]
    doc["faults"] = []
    res = faultctl("validate", write_scenario(tmp_path / "bad2.json", doc))
    assert res.returncode == 3, res
    assert "topology.links[0]" in res.stderr, res.stderr
    # And a tap without its "a" end, used by a workload in a namespace.
    doc["topology"]["links"] = [{"name": "t0", "type": "tap"}]
    doc["workloads"] = [{"name": "w", "kind": "lwip-client", "link": "t0", "netns": "c"}]
    res = faultctl("validate", write_scenario(tmp_path / "bad3.json", doc))
    assert res.returncode == 3, res
    assert "topology.links[0].a: missing required key" in res.stderr, res.stderr
