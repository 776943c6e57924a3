"""lab.scenario.runtime.swarm against a fake swarm (pure: no engine, no sleeps that matter).

The fake keeps each service's tasks as Swarm does: a kill ends the current task, a
``service update --force`` makes a new one on the same node.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from lab.errors import FaultError, RuntimeUnavailable
from lab.scenario.faults.janitor import RUNTIME_LEFTOVERS
from lab.scenario.runtime.swarm import SwarmRuntime
from lab.swarm.state import SwarmNode, SwarmState
from lab.swarm.tasks import Task, _created

NODES = (
    SwarmNode("lab-n1", "unix:///n1.sock", "192.168.231.11", True),
    SwarmNode("lab-n2", "unix:///n2.sock", "192.168.231.12", False),
)


def _labels(kind: str, port: int, **extra: str) -> dict[str, str]:
    return {
        "com.grenache-lab.service": kind,
        "com.grenache-lab.control": f"127.0.0.1:{port}",
        **{f"com.grenache-lab.{k}": v for k, v in extra.items()},
    }


@dataclass
class FakeContainer:
    status: str = "running"
    networks: tuple[str, ...] = ("lab_lab",)
    on_kill: Any = None

    @property
    def attrs(self) -> dict[str, Any]:
        return {
            "State": {"Status": self.status},
            "NetworkSettings": {"Networks": {n: {} for n in self.networks}},
        }

    def kill(self) -> None:
        self.status = "exited"
        self.on_kill()

    def pause(self) -> None:
        self.status = "paused"

    def unpause(self) -> None:
        self.status = "running"


@dataclass
class FakeService:
    swarm: FakeSwarm
    name: str
    id: str = "svc"

    def force_update(self) -> None:
        self.swarm.replace_task(self.name)


@dataclass
class FakeSwarm:
    state: SwarmState = field(default_factory=lambda: SwarmState(nodes=NODES, local=True))
    current: dict[str, Task] = field(default_factory=dict)
    boxes: dict[str, FakeContainer] = field(default_factory=dict)
    closed: bool = False

    def add(self, name: str, labels: dict[str, str], node: str) -> None:
        self.current[name] = Task(
            name, "id-" + name, labels, "running", node, f"c-{name}-1", task_id=f"t-{name}-1"
        )
        self.boxes[f"c-{name}-1"] = FakeContainer(on_kill=lambda: self.end(name))

    def end(self, name: str) -> None:
        self.current[name] = replace(self.current[name], state="failed", error="exit 137")

    def replace_task(self, name: str) -> None:
        old = self.current[name]
        n = int(old.task_id.rpartition("-")[2]) + 1
        cid = f"c-{name}-{n}"
        self.current[name] = replace(
            old, state="running", container_id=cid, task_id=f"t-{name}-{n}", error=""
        )
        self.boxes[cid] = FakeContainer(on_kill=lambda: self.end(name))

    def tasks(self) -> dict[str, Task]:
        return dict(self.current)

    def services(self) -> dict[str, FakeService]:
        return {n: FakeService(self, n) for n in self.current}

    def task_of(self, service: FakeService, name: str) -> Task:
        return self.current[name]

    def container(self, task: Task) -> FakeContainer:
        if task.container_id is None:
            raise RuntimeUnavailable("no container")
        return self.boxes[task.container_id]

    def close(self) -> None:
        self.closed = True


def _runtime() -> tuple[SwarmRuntime, FakeSwarm]:
    fake = FakeSwarm()
    fake.add("toxiproxy", _labels("toxiproxy", 8474), "lab-n1")
    fake.add(
        "worker-2", _labels("worker", 9102, proxy="worker-2", announce="toxiproxy:21002"), "lab-n2"
    )
    fake.add("client-adaptive", _labels("client", 8501, policy="adaptive"), "lab-n1")
    return SwarmRuntime(fake), fake  # type: ignore[arg-type]


def test_targets_carry_the_node_address_and_labels() -> None:
    rt, _ = _runtime()
    w = rt.targets()["worker-2"]
    assert w.control_url == "http://192.168.231.12:9102"
    assert (w.kind, w.proxy, w.peer) == ("worker", "worker-2", "toxiproxy:21002")
    assert rt.toxiproxy_api() == "http://192.168.231.11:8474"
    assert rt.targets()["client-adaptive"].policy == "adaptive"
    assert rt.node_of("worker-2").name == "lab-n2"
    assert rt.service_pids() == {}


def test_kill_sticks_and_start_makes_a_new_task() -> None:
    rt, fake = _runtime()
    rt.kill("worker-2")
    assert rt.state("worker-2") == "stopped"
    rt.start("worker-2")
    assert fake.current["worker-2"].task_id == "t-worker-2-2"
    assert rt.state("worker-2") == "running"
    rt.start("worker-2")  # running already: no third task
    assert fake.current["worker-2"].task_id == "t-worker-2-2"


def test_pause_and_unpause_on_the_node() -> None:
    rt, _ = _runtime()
    rt.pause("worker-2")
    assert rt.state("worker-2") == "paused"
    rt.unpause("worker-2")
    assert rt.state("worker-2") == "running"


def test_unknown_service_and_missing_stack() -> None:
    rt, _ = _runtime()
    with pytest.raises(RuntimeUnavailable, match="no swarm service 'worker-9'"):
        rt.state("worker-9")
    with pytest.raises(RuntimeUnavailable, match="lab up --engine swarm"):
        SwarmRuntime(FakeSwarm())  # type: ignore[arg-type]


def test_a_task_that_will_not_end_is_a_fault_error() -> None:
    rt, fake = _runtime()
    fake.boxes["c-worker-2-1"].on_kill = lambda: None  # Swarm never notices
    with pytest.raises(FaultError, match="waited 0s for its task to end; its task is running"):
        rt._wait_task("worker-2", lambda t: t.state != "running", "its task to end", timeout=0)


def test_inflight_info_and_janitor_hook() -> None:
    rt, _ = _runtime()
    info = rt.inflight_info()
    assert info["runtime"] == "swarm" and info["network"] == "lab_lab"
    assert info["clients"] == [
        {
            "name": "client-adaptive",
            "control_url": "http://192.168.231.11:8501",
            "policy": "adaptive",
        }
    ]
    assert "swarm" in RUNTIME_LEFTOVERS
    rt.close()


def test_swarm_timestamps_with_nanoseconds_order() -> None:
    assert _created("2026-12-03T17:00:00.123456789Z") < _created("2026-12-03T17:00:00.2Z")
    assert _created("garbage") == 0.0


def test_readiness_names_what_is_not_running() -> None:
    from lab.swarm.ready import judge

    tasks = {
        "worker-1": Task("worker-1", "s1", {}, "pending", None, None, error="no suitable node"),
        "grape-1": Task("grape-1", "s2", {}, "running", "lab-n1", "c"),
    }
    verdicts = judge(tasks, ["worker-1", "grape-1", "worker-9"])
    assert verdicts["worker-1"].why == "task pending: no suitable node"
    assert verdicts["grape-1"].ok  # nothing to probe: its task runs
    assert verdicts["worker-9"].why == "no such service in the stack"


def test_partition_chains_are_ours_and_found_again() -> None:
    from lab.netfault.rules import partition_plan
    from lab.swarm.partition import _chains, fault_id

    plan = partition_plan(fault_id("grape-1"), ["10.232.1.0/24"], "both")
    assert tuple(_chains("grape-1")) == plan.chains
    assert all(c.startswith("LAB-") for c in plan.chains)
    text = " ".join(" ".join(c) for c in plan.commands)
    assert "-s 10.232.1.0/24" in text and "-d 10.232.1.0/24" in text
    assert _chains("grape-1") != _chains("grape-2")
