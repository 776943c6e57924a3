"""node_partition on a real 3-node local swarm running the lab's stack: the chains sit in
the cut node's own namespace, a task on another node cannot reach a task on it while the
host still can, and after the heal the overlay works and nothing of ours is left on any
node. On the suite's lab (tests/swarm/conftest.py); ``make test-swarm`` runs it.

Last in the suite, the library's node-partition run first: after a node's cut heals,
Swarm's DNS and Toxiproxy took a while to serve every worker again in one of three suite
runs (every client timing out through Toxiproxy in the next scenario), so nothing that
needs a serving lab runs after these."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from swarm_support import lab, placement

from lab.netfault.hostns import NODE_LABEL, NodeNetfault
from lab.scenario.faults.base import FaultContext
from lab.scenario.faults.kinds import fault_target, make_fault
from lab.scenario.faults.nodes import netfault_image
from lab.scenario.runtime.swarm import SwarmRuntime
from lab.stack.engine import Paths
from lab.toxiproxy_adapter import ToxiproxyAdapter

pytestmark = [pytest.mark.swarm, pytest.mark.docker, pytest.mark.timeout(420)]

CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), 2).close()
    print("ok")
except OSError as exc:
    print("cut", type(exc).__name__)
"""


@pytest.fixture
def stack(swarm_lab: Paths) -> Iterator[SwarmRuntime]:
    """The runtime of the suite's lab (tests/swarm/conftest.py)."""
    rt = SwarmRuntime.connect(swarm_lab)
    try:
        yield rt
    finally:
        rt.close()


def _task_container(rt: SwarmRuntime, name: str) -> Any:
    return rt.swarm.container(rt._task(name, fresh=True))


def _overlay_ip(rt: SwarmRuntime, name: str) -> str:
    nets = _task_container(rt, name).attrs["NetworkSettings"]["Networks"]
    return str(nets[f"{rt.stack}_lab"]["IPAddress"])


def _reach(rt: SwarmRuntime, source: str, ip: str, port: int) -> str:
    out = _task_container(rt, source).exec_run(["python3", "-c", CONNECT, ip, str(port)])
    return bytes(out.output).decode().strip()


def _ours(rt: SwarmRuntime) -> dict[str, Any]:
    """Per node: our chains in its namespace and our helper containers on its engine."""
    found = {}
    for node in rt.nodes():
        client = rt.swarm.engine(node)
        shown = NodeNetfault(client, netfault_image(rt.paths), node.name).show()
        helpers = client.containers.list(all=True, filters={"label": NODE_LABEL})
        found[node.name] = (sorted(shown.get("chains") or {}), [h.name for h in helpers])
    return found


def test_after_a_node_partition_the_clients_on_the_other_nodes_recover(
    swarm_lab: Paths, tmp_path: Path
) -> None:
    """scenarios/node-partition.yaml: node-2 (grape-1, worker-1) cut for 15 s; the loaded
    clients run on the other nodes and must get past losing both, and back. The library's
    90 s run: the heal waits for node-2's given-up services and the data path (up to 34 s
    measured), and recovery is judged in the 10 s after that. CI leaves this one out
    (.ci/run: 30 minutes); the node_partition test below runs there."""
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


def test_node_partition_cuts_the_node_and_heals_without_leftovers(stack: SwarmRuntime) -> None:
    rt = stack
    assert rt.node_of("worker-1").name == "lab-n2"  # lab/swarm/stack.py's round robin
    assert rt.node_of("grape-3").name == "lab-n1"
    ip1, ip2 = _overlay_ip(rt, "worker-1"), _overlay_ip(rt, "worker-2")
    assert _reach(rt, "grape-3", ip1, 1337) == "ok"
    toxi = ToxiproxyAdapter(rt.toxiproxy_api())
    ctx = FaultContext(runtime=rt, toxiproxy=toxi)
    fault = make_fault(
        "t1", "node_partition", fault_target(rt, "node_partition", "node-2"), {}, ctx
    )
    rec = fault.inject()
    try:
        assert rec.started is not None and rec.peers == ("toxiproxy:21001",)
        assert {"grape-1", "worker-1"} <= set(rec.params["services"])
        assert rec.params["proxies_closed"] == ["worker-1"]
        ours = _ours(rt)
        assert len(ours["lab-n2"][0]) == 2, ours  # LAB-<hash>-in and -out, in node-2 only
        assert ours["lab-n1"][0] == [] and ours["lab-n3"][0] == [], ours
        assert _reach(rt, "grape-3", ip1, 1337).startswith("cut"), "n1 -> n2 still flows"
        assert _reach(rt, "grape-3", ip2, 1337) == "ok", "n1 -> n3 was cut too"
        control = rt.targets()["worker-1"].control_url  # the host still reaches node-2
        assert control is not None
        with urllib.request.urlopen(f"{control}/health", timeout=3) as r:
            assert r.status == 200
    finally:
        time.sleep(1.0)
        rec = fault.heal()
    assert rec.ended is not None and rec.error is None
    assert _ours(rt) == {n.name: ([], []) for n in rt.nodes()}
    deadline = time.monotonic() + 20
    while _reach(rt, "grape-3", _overlay_ip(rt, "worker-1"), 1337) != "ok":
        assert time.monotonic() < deadline, "the overlay did not come back"
        time.sleep(0.5)
