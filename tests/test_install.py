"""faultd installed: `make install` into a DESTDIR and run from there, `make
uninstall`, the bash completion, and the Debian package built by `make
deb`, installed with dpkg, its service started and then purged.

This machine's PID 1 is not systemd (tests/test_systemd.py plays its side of
sd_notify and the journal), so the package's service is started the way its
unit says: ExecStart in a delegated cgroup of its own, with the runtime and
state directories made, NOTIFY_SOCKET set, READY=1 awaited, KillSignal to
stop. Where systemd is PID 1, `systemctl start faultd` does it instead.
"""
import json
import os
import pathlib
import re
import shlex
import signal
import socket
import subprocess
import time

import pytest

from conftest import (BUILD, CGROUP_MOUNT, FAULTCTL, REPO, load_report, sanitizer_env,
                      write_scenario)
from test_cgroup_host import remove_cgroup_tree
from test_systemd import notify_socket, recv_until

SYSTEMD_PID1 = pathlib.Path("/proc/1/comm").read_text().strip() == "systemd"


def make(*args, timeout=900):
    # The build under test, with the sanitizer it was made with.
    san = [f"SANITIZER={BUILD.name[4:]}"] if BUILD.name.startswith("san-") else []
    res = subprocess.run(["make", "--no-print-directory", f"BUILD={BUILD}", *san, *args], cwd=REPO,
                         capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"make {' '.join(args)}:\n{res.stdout}\n{res.stderr}"
    return res


def installed_env():
    """No FAULTD_HARNESS_DIR: the installed programs must find their own."""
    env = sanitizer_env()
    env.pop("FAULTD_HARNESS_DIR", None)
    return env


def unit_fields(path):
    fields = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            fields[k] = v
    return fields


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def echo_scenario(path):
    port = free_port()
    return write_scenario(path, {
        "name": "installed-echo", "seed": 4, "duration_s": 30, "sample_ms": 500,
        "workloads": [
            {"name": "server", "kind": "echo-server",
             "args": ["--bind", "127.0.0.1", "--port", str(port), "--no-udp"]},
            {"name": "client", "kind": "exec", "timeout_s": 20, "cmd": [
                "/bin/bash", "-c",
                f"for t in $(seq 50); do exec 3<>/dev/tcp/127.0.0.1/{port} 2>/dev/null && break;"
                " sleep 0.1; done; echo ping >&3; read -t 2 line <&3; [ \"$line\" = ping ]"]}],
        "invariants": [{"name": "no_crash"}, {"name": "exit_ok", "workload": "client"}]})


def test_install_into_destdir_runs_from_there_and_uninstalls(tmp_path):
    dest = tmp_path / "dest"
    make("install", f"DESTDIR={dest}", "PREFIX=/usr")
    root = dest / "usr"
    faultd, faultctl = root / "sbin" / "faultd", root / "sbin" / "faultctl"
    version = subprocess.run([str(FAULTCTL), "--version"], capture_output=True,
                             text=True).stdout
    res = subprocess.run([str(faultctl), "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout == version and version.startswith("faultctl ")
    res = subprocess.run([str(faultd), "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout == version.replace("faultctl", "faultd", 1)

    # The unit names what install put where.
    unit = dest / "usr/lib/systemd/system/faultd.service"
    fields = unit_fields(unit)
    assert fields["Type"] == "notify"
    exec_start = shlex.split(fields["ExecStart"])
    assert exec_start[0] == "/usr/sbin/faultd" and (dest / exec_start[0][1:]).exists()
    doc = next(d for d in fields["Documentation"].split() if d.startswith("file://"))
    assert (dest / doc[len("file:///"):]).is_file()
    assert "/usr/local" not in unit.read_text()
    # Every path the unit names, in its comments too, is one install made.
    named = set(re.findall(r"/usr/[\w./-]*\w", unit.read_text()))
    assert {"/usr/sbin/faultd", "/usr/lib/faultd/harness"} <= named, named
    missing = [p for p in named if not (dest / p[1:]).exists()]
    assert not missing, f"the unit names {missing}, which install did not make"

    for page in ("man8/faultd.8", "man8/faultctl.8", "man5/faultd.scenario.5"):
        text = subprocess.run(["man", "-l", str(root / "share/man" / page)],
                              capture_output=True, text=True,
                              env={**os.environ, "MANWIDTH": "80"}).stdout
        assert "SEE ALSO" in text and "faultd" in text, page
    for f in ("lib/faultd/harness/echo-server", "share/faultd/schemas/scenario.schema.json",
              "share/faultd/schemas/report.schema.json", "share/doc/faultd/docs/scenarios.md",
              "share/bash-completion/completions/faultctl",
              "share/faultd/scenarios/exec-pass.json"):
        assert (root / f).is_file(), f

    # A run from the staged copy finds the staged workloads by itself.
    runs = tmp_path / "runs"
    res = subprocess.run([str(faultctl), "--runs-dir", str(runs), "run", "--local", "--quiet",
                          "--json", str(tmp_path / "r.json"),
                          str(echo_scenario(tmp_path / "s.json"))],
                         capture_output=True, text=True, timeout=120, env=installed_env())
    assert res.returncode == 0, res
    rep = json.loads((tmp_path / "r.json").read_text())
    rep = rep[0] if isinstance(rep, list) else rep
    server = next(w for w in rep["workloads"] if w["name"] == "server")
    assert server["cmd"][0] == str(root / "lib/faultd/harness/echo-server"), server["cmd"]
    assert load_report(runs, rep["run_id"])["verdict"] == "PASS"

    make("uninstall", f"DESTDIR={dest}", "PREFIX=/usr")
    left = [str(p) for p in dest.rglob("*") if not p.is_dir()]
    assert not left, f"uninstall left {left}"


@pytest.mark.skipif(not pathlib.Path("/usr/share/bash-completion/bash_completion").exists(),
                    reason="bash-completion not installed (make deps installs it)")
def test_bash_completion(tmp_path):
    (tmp_path / "runs" / "1a2b3c").mkdir(parents=True)
    script = REPO / "scripts" / "faultctl.bash-completion"

    def complete(line):
        words = line.split(" ")
        prog = (". /usr/share/bash-completion/bash_completion; "
                f". {shlex.quote(str(script))}; "
                f"COMP_LINE={shlex.quote(line)}; COMP_POINT=${{#COMP_LINE}}; "
                f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)}); "
                f"COMP_CWORD={len(words) - 1}; _faultctl; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
        out = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, cwd=tmp_path)
        return sorted(out.stdout.split())

    assert complete("faultctl re") == ["report"]
    assert complete("faultctl --") == ["--cgroup-root", "--harness-dir", "--help",
                                      "--journal-dir", "--log-level", "--runs-dir",
                                      "--socket", "--version"]
    assert complete("faultctl report 1a2b3c --format ") == ["html", "json", "junit", "sarif",
                                                          "text"]
    assert complete(f"faultctl --runs-dir {tmp_path}/runs status ") == ["1a2b3c"]
    assert "--sarif" in complete("faultctl run --")


def package_files(pkg):
    out = subprocess.run(["dpkg-query", "-L", pkg], capture_output=True, text=True).stdout
    return [pathlib.Path(p) for p in out.splitlines() if p.strip()]


@pytest.fixture
def deb():
    """`make deb`, then dpkg -i; on the way out the package is purged and
    every file it had must be gone."""
    assert subprocess.run(["dpkg-query", "-W", "faultd"], capture_output=True).returncode != 0, \
        "a faultd package is installed already: this test would remove it"
    make("deb", timeout=1500)
    debs = sorted((BUILD / "deb").glob("faultd_*.deb"))
    assert len(debs) == 1, debs
    res = subprocess.run(["dpkg", "-i", str(debs[0])], capture_output=True, text=True,
                         env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    files = package_files("faultd")
    try:
        assert res.returncode == 0, res.stdout + res.stderr
        yield files
    finally:
        res = subprocess.run(["dpkg", "--purge", "faultd"], capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr
        left = [str(f) for f in files if (f.exists() or f.is_symlink()) and not f.is_dir()]
        assert not left, f"purge left {left}"
        assert not pathlib.Path(
            "/etc/systemd/system/multi-user.target.wants/faultd.service").exists()


def start_as_unit(unit, cgroup, notify_path):
    """What systemd does for this unit, without systemd: its directories,
    its (delegated) cgroup, NOTIFY_SOCKET, then ExecStart."""
    fields = unit_fields(unit)
    assert fields["Type"] == "notify" and fields["Delegate"] == "yes"
    made = []
    for key, base in (("RuntimeDirectory", "/run"), ("StateDirectory", "/var/lib")):
        d = pathlib.Path(base) / fields[key]
        if not d.exists():
            d.mkdir(mode=0o755)
            made.append(d)
    cgroup.mkdir()
    os.setxattr(cgroup, "trusted.delegate", b"1")
    enter = ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(cgroup)]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET": str(notify_path)}
    proc = subprocess.Popen([*enter, *shlex.split(fields["ExecStart"])], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, made, getattr(signal, fields.get("KillSignal", "SIGTERM"))


def test_deb_installs_and_its_service_answers(deb, tmp_path):
    assert pathlib.Path("/usr/sbin/faultctl") in deb
    res = subprocess.run(["/usr/sbin/faultctl", "--version"], capture_output=True, text=True)
    assert res.returncode == 0, res
    build_version = subprocess.run([str(FAULTCTL), "--version"], capture_output=True,
                                   text=True).stdout
    assert res.stdout == build_version, (res.stdout, build_version)
    unit = pathlib.Path("/lib/systemd/system/faultd.service")
    assert unit in deb
    for f in ("/usr/lib/faultd/harness/echo-server", "/usr/share/man/man8/faultd.8.gz",
              "/usr/share/doc/faultd/README.md", "/usr/share/faultd/schemas/report.schema.json"):
        assert pathlib.Path(f) in deb, f
    # Depends: the runtime libraries, as dpkg-shlibdeps found them.
    depends = subprocess.run(["dpkg-query", "-W", "-f=${Depends}", "faultd"],
                             capture_output=True, text=True).stdout
    for lib in ("libbpf1", "libjansson4", "libevent-2.1-7", "libsystemd0"):
        assert lib in depends, depends

    if SYSTEMD_PID1:
        subprocess.run(["systemctl", "start", "faultd"], check=True, timeout=60)
        try:
            res = subprocess.run(["/usr/sbin/faultctl", "status"], capture_output=True,
                                 text=True, timeout=10)
            assert res.returncode == 0, res
        finally:
            subprocess.run(["systemctl", "stop", "faultd"], check=True, timeout=90)
        return

    assert not pathlib.Path("/run/faultd/faultd.sock").exists(), \
        "a faultd already serves the default socket"
    cgroup = CGROUP_MOUNT / f"faultd-test-deb-{os.getpid()}.service"
    notify = notify_socket(tmp_path / "notify")
    proc, made, killsig = start_as_unit(unit, cgroup, tmp_path / "notify")
    try:
        ready, got = recv_until(notify, "READY=1", 20)
        assert ready, f"no READY=1: {got}\n{proc.stdout.read() if proc.poll() is not None else ''}"
        res = subprocess.run(["/usr/sbin/faultctl", "status"], capture_output=True, text=True,
                             timeout=10)
        assert res.returncode == 0, res
        st = json.loads(res.stdout)
        assert st["pid"] == proc.pid and st["socket"] == "/run/faultd/faultd.sock"
        assert st["version"] == build_version.split()[1]
        proc.send_signal(killsig)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out = proc.stdout.read()
        print(out)
        notify.close()
        left = remove_cgroup_tree(cgroup)
        for d in made:
            subprocess.run(["rm", "-rf", str(d)])
        assert not left, f"could not remove cgroups: {left}"
    assert not pathlib.Path("/run/faultd/faultd.sock").exists()
