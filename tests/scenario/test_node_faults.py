"""Node faults without a swarm: the rules each builds, where its helper runs, what it
pauses and revives, its record and marker entry, and the janitor's undo (fake engines)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lab.errors import FaultError, RuntimeUnavailable
from lab.netfault.hostns import NODE_LABEL
from lab.scenario.faults import nodes
from lab.scenario.faults.base import FaultContext
from lab.scenario.faults.kinds import fault_target, make_fault
from lab.scenario.faults.leftovers import CleanupReport, Janitor
from lab.scenario.runtime.leftovers import CLIENTS_LIVE_ON
from lab.scenario.runtime.protocol import Target
from lab.scenario.runtime.swarm import SwarmRuntime
from lab.stack.engine import Paths
from lab.swarm.state import SwarmNode, SwarmState
from lab.swarm.tasks import Task

NODES = tuple(
    SwarmNode(f"lab-n{i}", f"unix:///tmp/n{i}.sock", f"192.168.231.1{i}", i == 1) for i in (1, 2, 3)
)
HOST = "192.168.231.253"
PLACED = {
    "toxiproxy": "lab-n1",
    "grape-3": "lab-n1",
    "grape-1": "lab-n2",
    "worker-1": "lab-n2",
    "client-adaptive": "lab-n2",
    "worker-2": "lab-n3",
    "client-oracle": "lab-n3",
}


class Namespace:
    """A node's filter table as the agent would leave it: chains, rules, jumps."""

    def __init__(self) -> None:
        self.chains: dict[str, list[str]] = {}
        self.jumps: list[str] = []

    def apply(self, argv: list[str]) -> None:
        args = argv[3:]  # iptables -w 5
        if args[0] == "-N":
            self.chains[args[1]] = []
        elif args[0] == "-A":
            self.chains[args[1]].append(" ".join(args[2:]))
        elif args[0] == "-I":
            self.jumps.append(f"{args[1]} -j {args[-1]}")

    def clean(self, chains: list[str]) -> None:
        for c in chains:
            self.chains.pop(c, None)
            self.jumps = [j for j in self.jumps if not j.endswith(f"-j {c}")]

    def show(self) -> dict[str, Any]:
        return {
            "chains": {c: [{"rule": r} for r in rules] for c, rules in self.chains.items()},
            "jumps": list(self.jumps),
        }


@dataclass
class Helper:
    ns: Namespace
    args: list[str]
    name: str = "helper"

    def wait(self, timeout: float) -> dict[str, int]:
        cmd, arg = self.args[0], json.loads(self.args[1])
        if cmd == "run":
            for argv in arg["commands"]:
                self.ns.apply(argv)
        elif cmd == "clean":
            self.ns.clean(arg["chains"])
        return {"StatusCode": 0}

    def logs(self, stdout: bool = True, stderr: bool = True) -> bytes:
        return json.dumps(self.ns.show()).encode() if stdout else b""

    def remove(self, force: bool = False) -> None:
        pass


@dataclass
class Containers:
    ns: Namespace
    runs: list[dict[str, Any]] = field(default_factory=list)
    left: list[Helper] = field(default_factory=list)

    def run(self, image: str, args: list[str], **kw: Any) -> Helper:
        self.runs.append({"image": image, "args": args, **kw})
        return Helper(self.ns, args)

    def list(self, **kw: Any) -> list[Helper]:
        assert kw["filters"] == {"label": NODE_LABEL}
        return self.left


@dataclass
class Engine:
    containers: Containers


@dataclass
class Service:
    name: str
    task: Task
    forced: int = 0

    def force_update(self) -> None:
        self.forced += 1
        self.task = Task(self.name, "id", {}, "running", self.task.node, "c2", task_id="new")


class FakeSwarm:
    def __init__(self, seen: str) -> None:
        self.state = SwarmState(NODES, local=True, local_info={"host_address": HOST})
        self.ns = {n.name: Namespace() for n in NODES}
        self.engines = {n.name: Engine(Containers(self.ns[n.name])) for n in NODES}
        self.seen = seen  # what the manager says of the faulted node
        self.svcs = {
            name: Service(
                name, Task(name, "id", {}, "running", node, "c1", task_id="old", desired=seen)
            )
            for name, node in PLACED.items()
        }

    def engine(self, node: SwarmNode) -> Engine:
        return self.engines[node.name]

    def services(self) -> dict[str, Service]:
        return dict(self.svcs)

    def task_of(self, service: Service, name: str) -> Task:
        return service.task

    def manager(self) -> Any:
        class Node:
            def __init__(self, name: str) -> None:
                self.attrs = {"Description": {"Hostname": name}, "Status": {"State": "ready"}}

        class Nodes:
            def list(self) -> list[Node]:
                return [Node(n.name) for n in NODES]

        class Manager:
            nodes = Nodes()

        return Manager()


class FakeRuntime(SwarmRuntime):
    """The swarm runtime's surface node faults use, over :class:`FakeSwarm`."""

    def __init__(self, desired: str = "running") -> None:  # no swarm to connect to
        self.swarm = FakeSwarm(desired)  # type: ignore[assignment]
        self.paths = Paths(Path("/nonexistent"))
        self.states = dict.fromkeys(PLACED, "running")
        self.refreshed = 0
        self.dials: list[tuple[str, ...]] = []
        self.unreachable = 0

    def targets(self) -> dict[str, Target]:
        kinds = {"toxiproxy": "toxiproxy", "client-adaptive": "client", "client-oracle": "client"}
        return {
            n: Target(
                n,
                kinds.get(n, n.rsplit("-", 1)[0]),
                peer=f"toxiproxy:2100{n[-1]}",
                proxy=n if n.startswith("worker-") else None,
            )
            for n in PLACED
        }

    def nodes(self) -> tuple[SwarmNode, ...]:
        return NODES

    def node_of(self, name: str) -> SwarmNode:
        return next(n for n in NODES if n.name == PLACED[name])

    def pause(self, name: str) -> None:
        self.states[name] = "paused"

    def unpause(self, name: str) -> None:
        self.states[name] = "running"

    def state(self, name: str) -> str:
        return self.states[name]

    def refresh(self) -> None:
        self.refreshed += 1

    def exec_in(self, name: str, argv: Sequence[str]) -> tuple[int, str]:
        """A dial from ``name``'s task: refused while ``unreachable`` counts down."""
        self.dials.append((name, *argv[-2:]))
        if self.unreachable:
            self.unreachable -= 1
            return 0, "ConnectionRefusedError [Errno 111]\n"
        return 0, "ok\n"

    def close(self) -> None:
        pass


class Toxi:
    """The proxies' enabled flags, as Toxiproxy's API would keep them."""

    def __init__(self) -> None:
        self.enabled: dict[str, bool] = {}

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        self.enabled[proxy] = enabled

    def proxy(self, name: str) -> SimpleNamespace:
        return SimpleNamespace(upstream=f"{name}:1337")


def fault(kind: str, rt: FakeRuntime, target: str = "node-2", toxi: Toxi | None = None) -> Any:
    ctx = FaultContext(runtime=rt, toxiproxy=toxi or Toxi())  # type: ignore[arg-type]
    f = make_fault("f1", kind, fault_target(rt, kind, target), {}, ctx)
    assert isinstance(f, nodes.NodeFault)
    return f


def test_node_names_resolve_by_index_or_hostname_and_unknown_ones_are_named() -> None:
    assert nodes.resolve_node(NODES, "node-2") is NODES[1]
    assert nodes.resolve_node(NODES, "lab-n3") is NODES[2]
    with pytest.raises(RuntimeUnavailable, match=r"no node 'node-4'.*node-3 \(lab-n3\)"):
        nodes.resolve_node(NODES, "node-4")
    assert fault_target(FakeRuntime(), "node_down", "lab-n2") == Target("lab-n2", "node")


def test_partition_cuts_the_other_nodes_in_the_nodes_own_namespace_not_the_host() -> None:
    rt, toxi = FakeRuntime(), Toxi()
    f = fault("node_partition", rt, toxi=toxi)
    assert f.record.peers == ("toxiproxy:21001",)  # worker-1's: the oracle avoids it
    assert f.record.params["services"] == ["client-adaptive", "grape-1", "worker-1"]
    rec = f.inject()
    assert toxi.enabled == {"worker-1": False}  # closed as for a kill: no dial into the cut
    assert rec.started is not None and rec.params["cut"] == ["192.168.231.11", "192.168.231.13"]
    run = rt.swarm.engines["lab-n2"].containers.runs[0]
    assert run["network_mode"] == "host" and run["cap_add"] == ["NET_ADMIN"]
    assert run["cap_drop"] == ["ALL"] and run["read_only"] is True
    assert run["labels"][NODE_LABEL] == "lab-n2"
    ns = rt.swarm.ns["lab-n2"]
    rules = " | ".join(r for rs in ns.chains.values() for r in rs)
    assert "-s 192.168.231.11 -j DROP" in rules and "-d 192.168.231.13 -j DROP" in rules
    assert HOST not in rules
    assert sorted(j.split()[0] for j in ns.jumps) == ["INPUT", "OUTPUT"]
    assert not rt.swarm.ns["lab-n1"].chains and not rt.swarm.ns["lab-n3"].chains
    assert all(s == "running" for s in rt.states.values())
    rt.unreachable = 2  # the healed node's worker: refused twice from Toxiproxy's node
    rec = f.heal()
    assert rec.error is None and toxi.enabled == {"worker-1": True}
    assert rec.ended is not None and not ns.chains and not ns.jumps
    assert rec.params["revived"] == [] and rec.params["manager_saw"] == "ready"
    # the heal ends once Toxiproxy's node reaches the worker the way Toxiproxy dials it
    assert {d[0] for d in rt.dials} <= {n for n, node in PLACED.items() if node == "lab-n1"}
    assert [d[1:] for d in rt.dials] == [("worker-1", "1337")] * 3
    assert rec.params["data_path_after_s"] >= 0


def test_node_down_pauses_what_runs_there_and_cuts_the_host_too() -> None:
    rt = FakeRuntime()
    f = fault("node_down", rt, "lab-n3")
    assert f.record.peers == ("toxiproxy:21002",)
    f.inject()
    assert rt.states["worker-2"] == rt.states["client-oracle"] == "paused"
    assert rt.states["worker-1"] == "running"
    rules = " ".join(r for rs in rt.swarm.ns["lab-n3"].chains.values() for r in rs)
    assert f"-s {HOST} -j DROP" in rules and "-d 192.168.231.11 -j DROP" in rules
    assert f.leftover()["node"]["paused"] == ["client-oracle", "worker-2"]
    f.heal()
    assert all(s == "running" for s in rt.states.values())
    assert not rt.swarm.ns["lab-n3"].chains


def test_heal_gives_the_services_the_manager_gave_up_a_new_task() -> None:
    rt = FakeRuntime(desired="shutdown")  # the node was seen Down: its tasks given up
    f = fault("node_partition", rt)
    f.inject()
    rec = f.heal()
    # every given-up task, not only node-2's (a cut manager sees the *other* nodes Down)
    assert rec.params["revived"] == sorted(PLACED)
    assert rt.swarm.svcs["worker-1"].forced == 1 and rt.refreshed == 1


def test_node_faults_refuse_other_runtimes_and_a_remote_engine_for_node_down() -> None:
    other = Target("node-2", "node")

    class Compose:
        name = "compose"

    ctx = FaultContext(runtime=Compose(), toxiproxy=None)  # type: ignore[arg-type]
    with pytest.raises(FaultError, match="need the swarm runtime, not compose"):
        make_fault("f1", "node_partition", other, {}, ctx)
    with pytest.raises(FaultError, match=r"applies to a node"):
        make_fault("f1", "node_partition", Target("worker-1", "worker"), {}, ctx)
    rt = FakeRuntime()
    tcp = SwarmNode("lab-n2", "tcp://192.168.231.12:2376", "192.168.231.12", False)
    rt.swarm.state = SwarmState((NODES[0], tcp, NODES[2]), local=False)
    object.__setattr__(rt, "nodes", lambda: rt.swarm.state.nodes)
    with pytest.raises(FaultError, match="heal could not get through"):
        fault("node_down", rt)


def test_a_dead_runs_node_fault_is_undone_on_every_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rt = FakeRuntime(desired="shutdown")
    f = fault("node_down", rt)
    f.inject()  # ... and the run is killed: no heal
    rt.swarm.engines["lab-n1"].containers.left.append(Helper(Namespace(), [], "stray"))
    monkeypatch.setattr(SwarmRuntime, "connect", classmethod(lambda cls, paths=None: rt))
    report = CleanupReport()
    janitor = Janitor({"runtime": "swarm"}, CLIENTS_LIVE_ON, report)
    nodes.NodeFault.undo_leftovers([f.leftover()], janitor)
    assert report.errors == []
    assert not any(ns.chains for ns in rt.swarm.ns.values())
    assert all(s == "running" for s in rt.states.values())
    assert "removed netfault helper stray on lab-n1" in report.actions
    assert any(a.startswith("started worker-1 again") for a in report.actions)
    # another runtime's marker, or none of ours: nothing is touched
    nodes.NodeFault.undo_leftovers(
        [f.leftover()], Janitor({"runtime": "compose"}, CLIENTS_LIVE_ON, CleanupReport())
    )
    nodes.NodeFault.undo_leftovers([], janitor)


def test_the_helper_time_is_the_agents_exit() -> None:
    rt = FakeRuntime()
    f = fault("node_partition", rt)
    f.helper.exited_at = time.monotonic() - 0.2
    assert nodes._helper_time(f, time.monotonic()) == f.helper.exited_at


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(nodes.time, "sleep", lambda s: None)
    yield


def test_a_heal_whose_worker_stays_unreachable_fails_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(nodes, "DATA_PATH_TIMEOUT_S", 0.0)
    rt, toxi = FakeRuntime(), Toxi()
    f = fault("node_partition", rt, toxi=toxi)
    f.inject()
    rt.unreachable = 10**6
    with pytest.raises(FaultError, match="worker-1:1337 unreachable from lab-n1"):
        f.heal()
    assert f.record.error is not None
    assert toxi.enabled == {"worker-1": False}  # not reopened onto a path that drops dials
