"""The commands a network fault becomes, and the agent's cleanup of what is ours only."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import pytest

from lab.errors import FaultError
from lab.netfault import agent
from lab.netfault.rules import (
    Match,
    PacketParams,
    chains_of,
    dns_plan,
    packet_plan,
    partition_plan,
    queue_number,
)


def test_partition_cuts_both_ways_in_the_targets_namespace_only() -> None:
    plan = partition_plan("p1", ["10.231.0.5", "10.231.0.6"])
    cin, cout = chains_of("p1")
    cmds = [" ".join(c) for c in plan.commands]
    assert f"iptables -w 5 -A {cin} -s 10.231.0.5 -j DROP" in cmds
    assert f"iptables -w 5 -A {cout} -d 10.231.0.6 -j DROP" in cmds
    assert f"iptables -w 5 -I INPUT 1 -j {cin}" in cmds
    assert f"iptables -w 5 -I OUTPUT 1 -j {cout}" in cmds
    assert plan.rules == {cin: 2, cout: 2}


def test_one_way_partition_has_one_chain() -> None:
    plan = partition_plan("p1", ["10.0.0.1"], "in")
    assert plan.chains == (chains_of("p1")[0],)
    assert not any("OUTPUT" in c for c in plan.commands)


def test_partition_needs_a_peer_and_a_known_direction() -> None:
    with pytest.raises(FaultError, match="peer"):
        partition_plan("p1", [])
    with pytest.raises(FaultError, match="direction"):
        partition_plan("p1", ["10.0.0.1"], "sideways")


def test_chain_names_fit_iptables_and_differ_per_fault() -> None:
    a, b = chains_of("a-very-long-fault-id.17"), chains_of("f2")
    assert all(len(c) <= 28 and c.startswith("LAB-") for c in (*a, *b))
    assert set(a).isdisjoint(b)
    assert 1 <= queue_number("x") <= 65000


def test_loss_is_a_statistic_drop_on_the_filtered_traffic() -> None:
    plan = packet_plan("l", PacketParams(loss=30), Match("udp", 20001), "out")
    (rule,) = [c for c in plan.commands if "-A" in c]
    assert " ".join(rule).endswith(
        "-p udp -m multiport --ports 20001 -m statistic --mode random "
        "--probability 0.300000 -j DROP"
    )
    assert plan.queue is None and plan.qdisc is None


def test_delay_goes_through_a_bypassing_queue_after_the_loss_rule() -> None:
    plan = packet_plan("d", PacketParams(loss=10, delay_ms=50), Match(peers=("10.0.0.2",)), "in")
    rules = [" ".join(c) for c in plan.commands if "-A" in c]
    assert "statistic" in rules[0] and "-s 10.0.0.2" in rules[0]
    assert f"NFQUEUE --queue-num {queue_number('d')} --queue-bypass" in rules[1]
    assert plan.queue == queue_number("d")


def test_rate_is_a_tbf_on_the_whole_egress() -> None:
    plan = packet_plan("r", PacketParams(rate_kbps=64), Match(), "both")
    assert plan.commands == (
        (
            "tc",
            "qdisc",
            "add",
            "dev",
            "eth0",
            "root",
            "handle",
            "1717:",
            "tbf",
            "rate",
            "64kbps",
            "burst",
            "6553",
            "latency",
            "1s",
        ),
    )
    assert plan.qdisc == "tbf" and plan.chains == ()
    with pytest.raises(FaultError, match="filter"):
        packet_plan("r", PacketParams(rate_kbps=64), Match("udp", 7946))


def test_a_port_needs_a_protocol_and_an_empty_fault_is_refused() -> None:
    with pytest.raises(FaultError, match="protocol"):
        packet_plan("x", PacketParams(loss=1), Match(port=53))
    with pytest.raises(FaultError, match="at least one"):
        packet_plan("x", PacketParams(), Match())


def test_dns_fault_targets_dockers_resolver() -> None:
    plan = dns_plan("n", "reject")
    rules = [" ".join(c) for c in plan.commands if "-A" in c]
    assert rules == [f"iptables -w 5 -A {chains_of('n')[1]} -d 127.0.0.11 -j REJECT"]


# -- the agent's cleanup, against a recorded iptables -----------------------------------

LISTING = """\
-P INPUT ACCEPT
-P OUTPUT ACCEPT
-N LAB-aaaaaaaaaa-in
-N LAB-aaaaaaaaaa-out
-N LAB-bbbbbbbbbb-in
-N OTHER
-A INPUT -j LAB-bbbbbbbbbb-in
-A INPUT -j LAB-aaaaaaaaaa-in
-A INPUT -j OTHER
-A OUTPUT -j LAB-aaaaaaaaaa-out
-A LAB-aaaaaaaaaa-in -s 10.0.0.1/32 -j DROP
"""


class FakeIptables:
    """Records commands; answers ``-S`` and ``tc qdisc show`` from fixed text.

    A stand-in for iptables because the agent's parsing and the order of its deletions
    are the logic under test; the real rules are exercised on the Compose lab
    (tests/netfault/test_netfault_docker.py).
    """

    def __init__(self, qdisc: str = "qdisc noqueue 0: root refcnt 2") -> None:
        self.calls: list[list[str]] = []
        self.qdisc = qdisc

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        out = ""
        if list(argv[-1:]) == ["-S"]:
            out = LISTING
        elif argv[:3] == ["tc", "qdisc", "show"]:
            out = self.qdisc
        return subprocess.CompletedProcess(list(argv), 0, out, "")


def test_clean_removes_only_the_named_chains_and_their_jumps() -> None:
    fake = FakeIptables()
    assert (
        agent.clean(["LAB-aaaaaaaaaa-in", "LAB-aaaaaaaaaa-out", "LAB-gone-in"], "eth0", fake) == []
    )
    ops = [" ".join(c[3:]) for c in fake.calls if c[0] == "iptables" and c[3] != "-S"]
    assert ops == [
        "-D INPUT -j LAB-aaaaaaaaaa-in",
        "-D OUTPUT -j LAB-aaaaaaaaaa-out",
        "-F LAB-aaaaaaaaaa-in",
        "-X LAB-aaaaaaaaaa-in",
        "-F LAB-aaaaaaaaaa-out",
        "-X LAB-aaaaaaaaaa-out",
    ]
    assert not any(c[0] == "tc" and "del" in c for c in fake.calls)


def test_clean_of_one_fault_leaves_the_qdisc_unless_asked() -> None:
    fake = FakeIptables(qdisc="qdisc tbf 1717: root refcnt 2 rate 512Kbit")
    agent.clean(["LAB-aaaaaaaaaa-in"], "eth0", fake, qdisc=False)
    assert not any(c[0] == "tc" and "del" in c for c in fake.calls)
    agent.clean(["LAB-aaaaaaaaaa-in"], "eth0", fake)
    assert ["tc", "qdisc", "del", "dev", "eth0", "root"] in fake.calls


def test_clean_all_takes_every_lab_chain_and_our_qdisc_but_not_others() -> None:
    fake = FakeIptables(qdisc="qdisc tbf 1717: root refcnt 2 rate 512Kbit")
    agent.clean(None, "eth0", fake)
    removed = {c[4] for c in fake.calls if c[0] == "iptables" and c[3] == "-X"}
    assert removed == {"LAB-aaaaaaaaaa-in", "LAB-aaaaaaaaaa-out", "LAB-bbbbbbbbbb-in"}
    assert ["tc", "qdisc", "del", "dev", "eth0", "root"] in fake.calls


def test_agent_refuses_anything_but_iptables_and_tc() -> None:
    with pytest.raises(ValueError, match="refusing"):
        agent._run(["sh", "-c", "id"])


def test_shaper_reorders_and_corrupts_past_the_ip_header() -> None:
    import random

    s = agent.Shaper({"delay_ms": 100, "reorder": 100, "corrupt": 100}, random.Random(1))
    assert s.wait() == 0.0  # every packet reordered: none waits
    packet = bytes([0x45]) + bytes(39)
    changed = s.mangle(packet)
    assert changed is not None and changed[:20] == packet[:20] and changed != packet
    waits = [
        agent.Shaper({"delay_ms": 100, "jitter_ms": 20}, random.Random(i)).wait() for i in range(50)
    ]
    assert all(0.08 <= w <= 0.12 for w in waits) and len(set(waits)) > 1
