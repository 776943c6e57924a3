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
from swarm_support import lab

from lab.scenario.runtime.protocol import clients
from lab.scenario.runtime.swarm import SwarmRuntime
from lab.stack.engine import Paths

pytestmark = [pytest.mark.swarm, pytest.mark.docker, pytest.mark.timeout(300)]


def placement(paths: Paths) -> dict[str, str]:
    """Each service's node."""
    rt = SwarmRuntime.connect(paths)
    try:
        return {name: rt.node_of(name).name for name in rt.targets()}
    finally:
        rt.close()


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


def test_after_a_node_partition_the_clients_on_the_other_nodes_recover(
    swarm_lab: Paths, tmp_path: Path
) -> None:
    """scenarios/node-partition.yaml: node-2 (grape-1, worker-1) cut for 15 s; the loaded
    clients run on the other nodes and must get past losing both, and back. The library's
    60 s run: the heal restarts node-2's given-up services (~8 s), and recovery is judged
    in the 10 s after that (a 40 s version left too little run after the heal)."""
    where = placement(swarm_lab)
    assert where["worker-1"] == where["grape-1"] == "lab-n2", where
    loaded = ("client-adaptive-2", "client-random", "client-oracle")
    assert "lab-n2" not in {where[c] for c in loaded}, where
    r = lab("run", "scenarios/node-partition.yaml", "--reports", str(tmp_path), timeout=280)
    assert r.returncode in (0, 3), f"exit {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-3000:]}"
    (summary_path,) = tmp_path.glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "completed", summary.get("abort_reason")
    adaptive = next(p for p in summary["policies"].values() if p["client"] == "client-adaptive-2")
    assert adaptive["availability"] >= 0.99 and adaptive["recovery_s"] is not None, adaptive
