"""Node fault kinds in a scenario: swarm only, targets node-N or a hostname, file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import ScenarioError
from lab.scenario.plan.spec import Scenario, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[2]
LABEL = "scenarios/n.yaml"

SWARM = """\
name: n
runtime: swarm
clients: [random, oracle]
load: {rate: 100}
duration: 60s
timeline:
  - {at: 15s, fault: node_partition, target: node-2, id: cut}
  - {at: 30s, heal: node-2}
"""


def parse(text: str) -> Scenario:
    return parse_scenario(text, LABEL)


def error_of(text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        parse(text)
    return str(info.value)


def test_a_node_fault_plans_on_its_node_and_heals_by_target() -> None:
    s = parse(SWARM)
    assert s.topology.nodes == 3  # the default of a swarm scenario
    assert [(p.at_s, p.action, p.fault_id, p.kind, p.target) for p in s.plan()] == [
        (15.0, "inject", "cut", "node_partition", "node-2"),
        (30.0, "heal", "cut", "node_partition", "node-2"),
    ]


def test_a_hostname_is_a_target_too_and_topology_nodes_widens_the_range() -> None:
    s = parse(
        SWARM.replace("target: node-2", "target: lab-n2").replace("heal: node-2", "heal: cut")
    )
    assert s.plan()[0].target == "lab-n2"
    five = SWARM.replace("runtime: swarm", "runtime: swarm\ntopology: {nodes: 5}")
    assert parse(five.replace("node-2", "node-5")).plan()[0].target == "node-5"


def test_node_down_parses_with_for() -> None:
    text = SWARM.replace("node_partition, target: node-2, id: cut", "node_down, target: node-3")
    s = parse(
        text.replace("  - {at: 30s, heal: node-2}\n", "").replace("node-3}", "node-3, for: 10s}")
    )
    assert [(p.action, p.kind, p.at_s) for p in s.plan()] == [
        ("inject", "node_down", 15.0),
        ("heal", "node_down", 25.0),
    ]


@pytest.mark.parametrize(
    ("old", "new", "where", "says"),
    [
        ("target: node-2", "target: node-4", ":7: timeline[0].target:", "no node 'node-4'"),
        ("target: node-2", "target: node-0", ":7: timeline[0].target:", "no node 'node-0'"),
        ("target: node-2", "target: worker-2", ":7: timeline[0].target:", "not on the service"),
        ("target: node-2", "target: 'lab n2'", ":7: timeline[0].target:", "a node's hostname"),
        ("target: node-2", "target: [node-2]", ":7: timeline[0].target:", "expected a node"),
        ("runtime: swarm", "runtime: compose", ":7: timeline[0].target:", "needs runtime: swarm"),
        ("runtime: swarm", "runtime: local", ":7: timeline[0].target:", "needs runtime: swarm"),
        (
            "runtime: swarm",
            "runtime: compose\ntopology: {nodes: 3}",
            ":3: topology.nodes:",
            "runtime: swarm",
        ),
        (
            "runtime: swarm",
            "runtime: swarm\ntopology: {nodes: 0}",
            ":3: topology.nodes:",
            "1..64",
        ),
        (
            "fault: node_partition, target: node-2",
            "fault: link_partition, peers: [grapes], target: node-2",
            ":7: timeline[0].target:",
            "no service 'node-2'",
        ),
    ],
)
def test_bad_node_targets_name_file_line_and_field(
    old: str, new: str, where: str, says: str
) -> None:
    text = SWARM.replace(old, new)
    assert text != SWARM
    message = error_of(text)
    assert message.startswith(LABEL + where), message
    assert says in message, message


CHAOS = """\
name: c
runtime: RUNTIME
clients: [random, oracle]
load: {rate: 100}
duration: 60s
timeline:
  - {at: 10s, fault: chaos, targets: [node-2, node-3], kinds: [node_partition, node_down],
     count: 3, hold: 4s}
"""


def test_chaos_over_nodes_on_swarm_and_refused_elsewhere() -> None:
    s = parse(CHAOS.replace("RUNTIME", "swarm"))
    injected = [p for p in s.plan() if p.action == "inject"]
    assert len(injected) == 3
    assert {p.target for p in injected} <= {"node-2", "node-3"}
    assert {p.kind for p in injected} <= {"node_partition", "node_down"}
    message = error_of(CHAOS.replace("RUNTIME", "compose"))
    assert message.startswith(LABEL + ":7: timeline[0].targets[0]:"), message
    assert "needs runtime: swarm" in message
    mixed = CHAOS.replace("RUNTIME", "swarm").replace("node_down]", "partition]")
    message = error_of(mixed)
    assert "partition acts on worker-N, not on a Swarm node ('node-2')" in message, message


def test_the_library_scenarios_of_node_faults_are_valid() -> None:
    s = load_scenario(ROOT / "scenarios" / "node-partition.yaml")
    assert s.runtime == "swarm" and s.topology.nodes == 3
    assert next((p.kind, p.target) for p in s.plan()) == ("node_partition", "node-2")
