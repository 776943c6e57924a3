"""The Swarm runtime on the session's stack (tests/swarm/conftest.py): kill/start,
pause, grape partition, then a fourth worker deployed in place and seen by every client
across the nodes (a topology compose.yaml does not declare), then back to three (the
node faults after it run the library's three-worker scenario)."""

from __future__ import annotations

import pytest
from swarm_support import lab

from lab.scenario.runtime.swarm import SwarmRuntime
from lab.stack.engine import Paths

pytestmark = [pytest.mark.swarm, pytest.mark.docker, pytest.mark.timeout(420)]


def test_the_runtime_acts_on_tasks_on_any_node_and_a_fourth_worker_joins(swarm_lab: Paths) -> None:
    rt = SwarmRuntime.connect(swarm_lab)
    try:
        workers = sorted(n for n, t in rt.targets().items() if t.kind == "worker")
        assert workers == ["worker-1", "worker-2", "worker-3"]
        nodes = {n: rt.node_of(n).name for n in workers}
        assert len(set(nodes.values())) >= 2, nodes
        away = next(n for n in workers if nodes[n] != rt.swarm.state.manager().name)
        rt.kill(away)  # a task on a node other than the manager: its own engine kills it
        assert rt.state(away) == "stopped"
        rt.start(away)
        assert rt.state(away) == "running"
        rt.pause("worker-1")
        assert rt.state("worker-1") == "paused"
        rt.unpause("worker-1")
        rt.disconnect("grape-1")
        assert rt.state("grape-1") == "disconnected"
        rt.reconnect("grape-1")
        assert rt.state("grape-1") == "running"
        rt.check_health(60)
    finally:
        rt.close()
    up = lab("up", "--engine", "swarm", "--workers", "4", "--quiet", timeout=300)
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
    rt = SwarmRuntime.connect(swarm_lab)
    try:
        workers = sorted(n for n, t in rt.targets().items() if t.kind == "worker")
        assert workers == [f"worker-{i}" for i in range(1, 5)]
        assert len({rt.node_of(n).name for n in workers}) == 3  # one more node holds a worker
        rt.check_health(60)  # every client sees all four workers
    finally:
        rt.close()
    back = lab("up", "--engine", "swarm", "--workers", "3", "--quiet", timeout=300)
    assert back.returncode == 0, back.stdout[-2000:] + back.stderr[-2000:]
