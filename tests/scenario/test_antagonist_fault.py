"""The antagonist fault drives a real worker's control endpoint: inject takes the CPU,
heal gives it back, and a crashed run's antagonist is stopped by the leftover cleanup."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from worker_control import served_control

from lab.errors import FaultError
from lab.scenario.faults.base import FaultContext
from lab.scenario.faults.janitor import cleanup_leftovers
from lab.scenario.faults.kinds import make_fault
from lab.scenario.faults.marker import MARKER
from lab.scenario.faults.rollback import Rollback
from lab.scenario.runtime.protocol import Target
from lab.worker.control import WorkerState

HOST = "127.0.0.1"
# No Toxiproxy or runtime is touched by this kind (it acts on the worker's control port).
CTX = FaultContext(runtime=None, toxiproxy=None)  # type: ignore[arg-type]


@pytest.fixture
async def worker() -> AsyncIterator[tuple[Target, WorkerState]]:
    """A worker's real control app on a free port, addressed as the engine addresses it."""
    async with served_control("worker-1") as (url, state):
        yield Target("worker-1", "worker", control_url=url), state


async def test_inject_takes_the_share_and_heal_gives_it_back(
    worker: tuple[Target, WorkerState],
) -> None:
    target, state = worker
    fault = make_fault("a", "antagonist", target, {"share": 0.4}, CTX)
    rec = await asyncio.to_thread(fault.inject)
    assert rec.started is not None and rec.started >= rec.requested
    assert state.antagonist.running and state.antagonist.share == 0.4
    assert fault.leftover()["antagonist_url"] == f"{target.control_url}/antagonist"
    await asyncio.sleep(0.05)  # let it run a few 10 ms periods before it is asked to stop
    rec = await asyncio.to_thread(fault.heal)
    assert rec.ended is not None and not state.antagonist.running
    assert state.antagonist.periods > 0
    await asyncio.to_thread(fault.undo)  # healed: nothing left to do, no error


async def test_bad_shares_and_targets_are_named(worker: tuple[Target, WorkerState]) -> None:
    target, _ = worker
    for share in (0, 0.99, "half", True):
        with pytest.raises(FaultError, match="share"):
            make_fault("a", "antagonist", target, {"share": share}, CTX)
    with pytest.raises(FaultError, match="no control URL"):
        make_fault("a", "antagonist", Target("worker-9", "worker"), {"share": 0.5}, CTX)
    with pytest.raises(FaultError, match="applies to a worker"):
        make_fault("a", "antagonist", Target("grape-1", "grape", "http://x"), {"share": 0.5}, CTX)


async def test_a_crashed_runs_antagonist_is_stopped_by_the_cleanup(
    tmp_path: Path, worker: tuple[Target, WorkerState]
) -> None:
    target, state = worker
    rb = Rollback(tmp_path / MARKER, info={"run_id": "crashed", "runtime": "compose"})
    fault = make_fault("a", "antagonist", target, {"share": 0.3}, CTX)
    rb.arm(fault)
    await asyncio.to_thread(fault.inject)
    data = json.loads((tmp_path / MARKER).read_text())
    data["pid"] = _dead_pid()  # the "crash": nobody runs rb, a dead pid owns the marker
    (tmp_path / MARKER).write_text(json.dumps(data))
    report = await asyncio.to_thread(cleanup_leftovers, tmp_path)
    assert "stopped the antagonist on worker-1" in report.actions
    assert not state.antagonist.running
    assert not (tmp_path / MARKER).exists()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid
