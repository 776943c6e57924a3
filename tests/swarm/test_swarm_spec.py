"""Scenarios for the swarm runtime: what validation accepts and what it refuses early."""

from __future__ import annotations

import pytest

from lab.errors import ScenarioError
from lab.scenario.plan.spec import parse_scenario

BASE = """
name: s
runtime: swarm
clients: [adaptive, random]
load: {rate: 10}
duration: 30s
timeline:
  - {at: 10s, %s, for: 5s}
"""


def test_container_faults_and_grape_partitions_validate_on_swarm() -> None:
    for step in (
        "fault: kill, target: worker-2",
        "fault: grape_partition, target: grape-1",
        "fault: pause, target: worker-1",
        "fault: partition, target: worker-2",
    ):
        assert parse_scenario(BASE % step, "s.yaml").runtime == "swarm"


def test_network_namespace_kinds_are_refused_on_swarm_with_the_alternative() -> None:
    with pytest.raises(ScenarioError, match=r"s\.yaml:8: .*link_partition.*grape_partition"):
        parse_scenario(BASE % "fault: link_partition, target: grape-1, peers: [grape-2]", "s.yaml")
