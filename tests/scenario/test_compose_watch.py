"""Issue 13 on the Compose lab: Toxiproxy lost mid-run, the lease after ``kill -9``, one
run at a time, and ``lab status`` saying what is broken.

Each test starts and ends with the lab whole (``whole_lab``); the Toxiproxy test starts
the container again itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compose_lab import Lab, lab_session
from engine_support import fault_confirmed
from test_compose_runtime import ROOT, assert_lab_whole, lab_run, only_run_dir, toxics_left

from lab.history import read_journal
from lab.procs import wait_until
from lab.scenario.faults.janitor import cleanup_leftovers
from lab.scenario.faults.marker import MARKER
from lab.scenario.runtime.compose import ComposeRuntime
from lab.scenario.runtime.watch import LEASE_S

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]

SCENARIO = """
name: compose-watch
seed: 3
clients: [adaptive, random]
load: {rate: 50}
duration: 40s
warmup: 1s
timeline:
  - {at: 1.5s, fault: partition, target: worker-2}
  - {at: 35s, heal: worker-2}
"""


@pytest.fixture(scope="session")
def compose_lab() -> Iterator[Lab]:
    yield from lab_session()


@pytest.fixture(scope="module")
def runtime(compose_lab: Lab) -> Iterator[ComposeRuntime]:
    rt = ComposeRuntime.connect()
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def whole_lab(runtime: ComposeRuntime) -> Iterator[ComposeRuntime]:
    assert_lab_whole(runtime)
    yield runtime
    assert_lab_whole(runtime)


def start(tmp_path: Path) -> tuple[subprocess.Popen[str], Path, dict[str, Any]]:
    """`lab run` of SCENARIO, returned once its partition is in place (with its marker)."""
    path = tmp_path / "watch.yaml"
    path.write_text(SCENARIO)
    reports = tmp_path / "reports"
    proc = lab_run(path, reports)
    marker: dict[str, Any] = {}

    def injected() -> bool:
        # The marker names a fault before it is injected (write-ahead): wait for the
        # journal to confirm it, or a kill could land while the injection still runs.
        try:
            marker.update(json.loads((reports / MARKER).read_text()))
        except (OSError, ValueError):
            return False
        return bool(marker.get("faults")) and fault_confirmed(reports)

    try:
        wait_until(injected, 60.0, interval=0.05, what="the partition to be injected")
    except Exception:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"no injection: {out[-2000:]}")
    return proc, reports, marker


def load_of(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/load", timeout=2) as resp:
        data: dict[str, Any] = json.loads(resp.read())
    return data


def lab_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=60, env={**os.environ, "COLUMNS": "250"},
    )  # fmt: skip


def toxiproxy_answers() -> bool:
    try:
        with urllib.request.urlopen("http://127.0.0.1:8474/proxies", timeout=1) as resp:
            return len(json.loads(resp.read())) == 3
    except (OSError, ValueError):
        return False


def test_toxiproxy_killed_mid_run_aborts_within_a_second_and_status_says_so(
    whole_lab: ComposeRuntime, tmp_path: Path
) -> None:
    proc, reports, _ = start(tmp_path)
    killed = time.monotonic()
    try:
        whole_lab.kill("toxiproxy")
        killed = time.monotonic()
        out, _ = proc.communicate(timeout=60)
        status = lab_cli("status", "--reports", str(reports))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        whole_lab.start("toxiproxy")
        wait_until(toxiproxy_answers, 30.0, interval=0.2, what="Toxiproxy to answer again")
        cleanup_leftovers(reports)  # what the next `lab run` does first
    assert proc.returncode == 2, out[-3000:]
    run_dir = only_run_dir(reports)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "aborted"
    assert summary["abort_reason"].startswith("lost Toxiproxy at http://127.0.0.1:8474")
    history = read_journal(run_dir / "journal.jsonl")
    (lost,) = [p for p in history.meta.phases if p["name"] == "watch-lost"]
    assert lost["t"] - killed < 1.0, lost["t"] - killed
    # while Toxiproxy was down: lab status exits non-zero, names it and the dead run's leftovers
    assert status.returncode == 1, status.stdout[-2000:]
    assert "toxiproxy is exited" in status.stdout
    assert "died and left 1 fault(s) still in place: partition f1 on worker-2" in status.stdout
    assert toxics_left(whole_lab) == {}  # a restarted Toxiproxy starts from its config
    assert not (reports / MARKER).exists()


def test_after_kill_9_of_lab_run_the_clients_stop_their_load_within_the_lease(
    whole_lab: ComposeRuntime, tmp_path: Path
) -> None:
    proc, reports, marker = start(tmp_path)
    try:
        urls = {c["name"]: c["control_url"] for c in marker["clients"]}
        running = [n for n, u in urls.items() if load_of(u)["running"]]
        assert sorted(running) == ["client-adaptive", "client-random"]
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        proc.communicate(timeout=10)
        wait_until(
            lambda: not any(load_of(urls[n])["running"] for n in running),
            LEASE_S + 3.0, interval=0.05, what="the clients to stop their load",
        )  # fmt: skip
        stopped = time.monotonic() - killed
        assert stopped <= LEASE_S + 1.5, stopped
        assert all(load_of(urls[n])["lease_expired"] for n in running)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        cleanup_leftovers(reports)
