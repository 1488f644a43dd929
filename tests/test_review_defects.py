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
import threading
import time

import pytest

from conftest import (BUILD, FAULTCTL, FAULTD, JOURNAL_DIR, Daemon, faultctl, only_report,
                      our_links, our_netns, write_scenario)


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
