"""A learner's policy that raises, hangs or answers a stranger: the run names the file:line,
rolls back and exits 2, and leaves nothing behind (issue 15).

Real parts: ``lab run --runtime local`` as a subprocess, real ``lab client`` processes
loading the learner's file, a real Toxiproxy holding a fault when the policy fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from engine_support import ROOT, toxiproxy_binary

from lab.procs import wait_until
from lab.scenario.faults.janitor import cleanup_leftovers
from lab.scenario.faults.marker import MARKER

pytestmark = [pytest.mark.toxiproxy, pytest.mark.slow]

FAULTY = ROOT / "tests" / "balancer" / "policy_files" / "faulty.py"

SCENARIO = """
name: byo-{cls}
seed: 2
runtime: local
topology: {{grapes: 1, workers: 2}}
clients: ["{ref}", random]
load: {{rate: 20}}
duration: 40s
warmup: 0.5s
timeline:
  - {{at: 0.2s, fault: latency, target: worker-2, latency_ms: 50}}
  - {{at: 35s, heal: worker-2}}
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(
    ("cls", "says"),
    [
        ("Raises", ["faulty.py:16", "IndexError", "Traceback", "peers[len(peers)]"]),
        ("Spins", ["ran longer than 100 ms", "faulty.py:2"]),
        ("Stranger", ["10.0.0.99:1337", "not one of the peers given to the policy"]),
    ],
)
def test_a_failing_policy_aborts_the_run_with_its_line_and_leaves_nothing(
    tmp_path: Path, cls: str, says: list[str]
) -> None:
    path = tmp_path / "byo.yaml"
    path.write_text(SCENARIO.format(cls=cls.lower(), ref=f"{FAULTY}:{cls}"))
    reports = tmp_path / "reports"
    env = {**os.environ, "LAB_TOXIPROXY_BIN": str(toxiproxy_binary()), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "run", str(path), "--reports", str(reports)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    pids: list[int] = []
    try:

        def started() -> bool:
            try:
                marker: dict[str, Any] = json.loads((reports / MARKER).read_text())
            except (OSError, ValueError):
                return proc.poll() is not None
            pids.extend(marker.get("local_pids") or [])
            return bool(pids)

        wait_until(started, 60.0, interval=0.02, what="the run to start its lab")
        t0 = time.monotonic()
        out, _ = proc.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
            cleanup_leftovers(reports)
    assert proc.returncode == 2, out
    assert took < 20, f"a failed policy should end the run in seconds, took {took:.1f}s"
    flat = " ".join(out.split())  # the console wraps long lines at its width
    for text in says:
        assert text in flat, out
    (run_dir,) = [d for d in reports.iterdir() if d.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "aborted"
    assert f"client-{cls}" in summary["abort_reason"]
    assert not (reports / MARKER).exists()  # every fault undone
    assert pids and not [p for p in pids if _alive(p)]  # no process left behind


def test_a_policy_file_that_fails_to_import_stops_the_run_before_any_fault(
    tmp_path: Path,
) -> None:
    path = tmp_path / "byo.yaml"
    broken = ROOT / "tests" / "balancer" / "policy_files" / "broken_import.py"
    path.write_text(SCENARIO.format(cls="import", ref=f"{broken}:Never"))
    reports = tmp_path / "reports"
    env = {**os.environ, "LAB_TOXIPROXY_BIN": str(toxiproxy_binary()), "COLUMNS": "200"}
    r = subprocess.run(
        [sys.executable, "-m", "lab", "run", str(path), "--reports", str(reports)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2, r.stdout + r.stderr
    assert "broken_import.py:5: importing" in r.stderr and "ZeroDivisionError" in r.stderr
    assert not (reports / MARKER).exists()
