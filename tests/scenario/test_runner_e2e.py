"""`lab run --runtime local` as a real subprocess: real grapes, workers, clients, Toxiproxy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from engine_support import ROOT, fault_confirmed, toxiproxy_binary

from lab.history import read_journal
from lab.procs import wait_until
from lab.scenario.faults.janitor import cleanup_leftovers
from lab.scenario.faults.marker import MARKER
from lab.verdict import Verdict

pytestmark = pytest.mark.toxiproxy

SCENARIO = """
name: e2e-partition
seed: 5
runtime: local
topology: {{grapes: 1, workers: 3}}
clients: [adaptive, random, oracle]
load: {{rate: 50}}
duration: {duration}
warmup: 0.5s
settle: 0.5s
timeline:
  - {{at: 1.5s, fault: partition, target: worker-2}}
  - {{at: 3s, heal: worker-2}}
expect:
  adaptive: {{detection_s: "<= 0.001"}}
"""


def start(
    tmp_path: Path, duration: str, *extra: str
) -> tuple[subprocess.Popen[str], Path]:
    toxiproxy_binary()
    path = tmp_path / "e2e.yaml"
    path.write_text(SCENARIO.format(duration=duration))
    reports = tmp_path / "reports"
    env = {**os.environ, "LAB_TOXIPROXY_BIN": str(toxiproxy_binary()), "COLUMNS": "120"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "run", *extra, str(path), "--reports", str(reports)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    return proc, reports


def test_an_impossible_expectation_makes_lab_run_exit_1(tmp_path: Path) -> None:
    proc, reports = start(tmp_path, "4.5s")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    (run_dir,) = [d for d in reports.iterdir() if d.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "fail"
    assert {e["metric"]: e["verdict"] for e in summary["expectations"]} == {"detection_s": "fail"}
    history = read_journal(run_dir / "journal.jsonl")
    assert {r.policy for r in history.requests} == {"adaptive", "random", "oracle"}
    (fault,) = history.faults
    assert fault.started is not None and fault.ended is not None
    assert not (reports / MARKER).exists()


def test_repeat_runs_a_series_into_one_folder_and_exits_with_its_verdict(
    tmp_path: Path,
) -> None:
    proc, reports = start(tmp_path, "4.5s", "--repeat", "2")
    out, _ = proc.communicate(timeout=120)
    (series,) = [d for d in reports.iterdir() if d.is_dir()]
    assert series.name.endswith("-x2")
    aggregate = json.loads((series / "summary.json").read_text())
    assert aggregate["kind"] == "aggregate" and aggregate["seeds"] == [5, 6]
    assert proc.returncode == Verdict.parse(aggregate["verdict"]).exit_code, out
    assert [r["dir"] for r in aggregate["runs"]] == ["run-01-seed-5", "run-02-seed-6"]
    for i, r in enumerate(aggregate["runs"], 1):
        run_summary = json.loads((series / r["dir"] / "summary.json").read_text())
        assert run_summary["repeat"] == {"series": series.name, "index": i, "of": 2,
                                         "aggregate": "../aggregate.html"}  # fmt: skip
        assert "../aggregate.html" in (series / r["dir"] / "report.html").read_text()
    for name in ("aggregate.html", "junit.xml", "index.html"):
        assert (series / name).is_file()
    assert f"{series.name}/aggregate.html" in (reports / "index.html").read_text()
    assert "per policy" in out and "oracle (limit)" in out
    assert not (reports / MARKER).exists() and not (series / MARKER).exists()


def _wait_injected(reports: Path) -> dict[str, object]:
    """The marker once the fault is in place (the journal confirms it), not just planned.

    The marker names a fault before it is injected (write-ahead), so a kill right after
    it appears could land before the toxic exists, and cleanup would find none.
    """
    marker = reports / MARKER

    def injected() -> bool:
        try:
            if not json.loads(marker.read_text()).get("faults"):
                return False
        except (OSError, ValueError):
            return False
        return fault_confirmed(reports)

    wait_until(injected, 30.0, interval=0.05, what="the partition to be injected")
    return dict(json.loads(marker.read_text()))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_fault_aborts_with_exit_2_and_rolls_back(
    tmp_path: Path, sig: signal.Signals
) -> None:
    proc, reports = start(tmp_path, "60s")
    try:
        _wait_injected(reports)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 2, out
    assert not (reports / MARKER).exists()
    (run_dir,) = [d for d in reports.iterdir() if d.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "aborted" and sig.name in summary["abort_reason"]
    assert (run_dir / "report.html").exists()


def test_kill_9_leaves_a_marker_that_cleanup_acts_on(tmp_path: Path) -> None:
    proc, reports = start(tmp_path, "60s")
    try:
        marker = _wait_injected(reports)
        proc.kill()
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    pids = [int(p) for p in marker["local_pids"]]  # type: ignore[attr-defined]
    assert pids and (reports / MARKER).exists()
    report = cleanup_leftovers(reports)
    assert report.found and any("lab-f1" in a for a in report.actions)
    assert not (reports / MARKER).exists()
    wait_until(lambda: not any(_alive(p) for p in pids), 10.0, what="the dead run's processes gone")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False
