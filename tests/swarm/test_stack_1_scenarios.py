"""CI's short scenarios on the local swarm, with the fault's target on a node of its own.

The same files as ``make chaos`` runs on Compose (``scenarios/ci/``), on ``--runtime
swarm``: the workers are spread over the nodes, so the clients reach the faulty worker
across the overlay, and recovery is measured the same way. One run each (the chaos job
judges medians of three on Compose); exit 0 (pass) or 3 (unknown: the control itself
moved, no verdict either way) is accepted, a failed expectation (1) or an aborted run (2)
is not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from swarm_support import lab, placement

from lab.scenario.runtime.protocol import clients
from lab.scenario.runtime.swarm import SwarmRuntime
from lab.stack.engine import Paths

pytestmark = [pytest.mark.swarm, pytest.mark.docker, pytest.mark.timeout(300)]


CI_SCENARIOS = ["scenarios/ci/partition.yaml", "scenarios/ci/kill-worker.yaml"]


@pytest.mark.parametrize("scenario", CI_SCENARIOS)
def test_a_ci_scenario_holds_on_swarm_with_its_target_on_another_node(
    swarm_lab: Paths, scenario: str, tmp_path: Path
) -> None:
    where = placement(swarm_lab)
    workers = {n for s, n in where.items() if s.startswith("worker-")}
    assert len(workers) >= 2, where  # the stack spreads the workers over the nodes
    rt = SwarmRuntime.connect(swarm_lab)
    try:
        client_nodes = {where[c.name] for c in clients(rt)}
    finally:
        rt.close()
    assert client_nodes - {where["worker-2"]}, where  # a client reaches worker-2 from another node
    r = lab("run", scenario, "--runtime", "swarm", "--reports", str(tmp_path), timeout=280)
    assert r.returncode in (0, 3), f"exit {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-3000:]}"
    (summary_path,) = tmp_path.glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "completed", summary.get("abort_reason")
    adaptive = next(p for p in summary["policies"].values() if p["policy"] == "adaptive")
    assert adaptive["availability"] >= 0.99, adaptive
