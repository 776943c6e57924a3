"""Scenario validation of the network-namespace kinds: errors name file, line and field."""

from __future__ import annotations

import pytest

from lab.errors import ScenarioError
from lab.scenario.plan.spec import parse_scenario

HEAD = """\
name: t
clients: [adaptive, random, oracle]
load: {rate: 100}
duration: 60s
timeline:
"""


def steps(*lines: str) -> str:
    return HEAD + "".join(f"  - {line}\n" for line in lines)


def plan(*lines: str) -> list[tuple[str, str, str, dict[str, object]]]:
    sc = parse_scenario(steps(*lines), "x.yaml")
    return [(s.action, s.kind, s.target, dict(s.params)) for s in sc.plan()]


def error(*lines: str) -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(steps(*lines), "x.yaml")
    return str(info.value)


def test_link_partition_takes_peers_and_groups() -> None:
    (inject, heal) = plan(
        "{at: 10s, fault: link_partition, target: grape-1, peers: [grape-2, clients], for: 20s}"
    )
    assert inject[:3] == ("inject", "link_partition", "grape-1")
    assert inject[3] == {"peers": ["grape-2", "clients"], "direction": "both"}
    assert heal[0] == "heal"


def test_packet_loss_with_a_filter() -> None:
    ((_, _, _, params), _) = plan(
        "{at: 10s, fault: packet, target: grape-1, loss: 30, protocol: udp, port: 20001, for: 5s}"
    )
    assert params["loss"] == 30 and params["port"] == 20001 and params["protocol"] == "udp"


@pytest.mark.parametrize(
    ("step", "words"),
    [
        ("{at: 1s, fault: packet, target: grape-1}", "x.yaml:6: timeline[0]"),
        ("{at: 1s, fault: packet, target: grape-1, loss: 130}", "loss"),
        ("{at: 1s, fault: packet, target: grape-1, loss: 5, port: 20001}", "protocol"),
        ("{at: 1s, fault: packet, target: grape-1, duplicate: 5}", "duplicate is not available"),
        ("{at: 1s, fault: packet, target: grape-1, reorder: 5}", "reorder needs delay_ms"),
        ("{at: 1s, fault: packet, target: grape-1, rate_kbps: 10, protocol: udp}", "whole egress"),
        ("{at: 1s, fault: packet, target: grape-1, loss: 5, peer: grape-9x}", "peer"),
        ("{at: 1s, fault: link_partition, target: grape-1, peers: [nobody]}", "peers[0]"),
        (
            "{at: 1s, fault: link_partition, target: grape-1, peers: [grape-2], direction: up}",
            "direction",
        ),
        ("{at: 1s, fault: dns, target: worker-1, mode: slow}", "drop or reject"),
        ("{at: 1s, fault: ghost, target: worker-1}", "ghost acts on grape-N"),
        ("{at: 1s, fault: ghost, target: grape-1, address: nowhere}", "host:port"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(step: str, words: str) -> None:
    assert words in error(step)


def test_two_network_faults_on_one_target_overlap_is_refused() -> None:
    msg = error(
        "{at: 1s, fault: packet, target: grape-1, loss: 5, for: 10s}",
        "{at: 5s, fault: dns, target: grape-1, for: 10s}",
    )
    assert "grape-1" in msg


def test_network_namespace_kinds_are_refused_on_the_local_runtime() -> None:
    text = steps("{at: 1s, fault: packet, target: grape-1, loss: 5}").replace(
        "name: t\n", "name: t\nruntime: local\ntopology: {grapes: 1, workers: 3}\n"
    )
    with pytest.raises(ScenarioError, match=r"x.yaml:8: timeline\[0\]: packet .* runtime: compose"):
        parse_scenario(text, "x.yaml")
