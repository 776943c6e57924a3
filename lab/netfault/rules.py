"""What a network fault does to a namespace, as iptables and tc commands (pure functions).

Each fault owns two chains, ``LAB-<hash>-in`` (jumped to from INPUT) and ``LAB-<hash>-out``
(from OUTPUT), so heal and leftover cleanup remove exactly its rules and nobody else's
(Docker's own rules for the embedded DNS live in the nat table and stay untouched). The
rules sit in the *target's* namespace only: dropping what it receives from a peer and what
it sends to one cuts the pair both ways without touching the peer.

Mechanisms (this kernel has no netem; see docs/scenarios.md):
- partition, DNS: ``-j DROP`` / ``-j REJECT`` on the matched traffic;
- loss: ``-m statistic --mode random --probability p -j DROP`` (in the kernel, any protocol);
- delay, jitter, reorder, corrupt: ``-j NFQUEUE --queue-bypass`` to the agent's user-space
  queue (bypass: should the agent die, packets flow instead of being dropped);
- rate: a ``tbf`` root qdisc (handle ``1717:``) on the target's egress.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from lab.errors import FaultError
from lab.netfault.agent import CHAIN_PREFIX, QDISC_HANDLE

DIRECTIONS = ("both", "in", "out")
PROTOCOLS = ("all", "tcp", "udp")
DOCKER_DNS = "127.0.0.11"
"""Docker's embedded resolver inside every container on a user-defined network."""
IPT = ("iptables", "-w", "5")


@dataclass(frozen=True, slots=True)
class Match:
    """Which packets a fault hits: protocol, a port (either end), peer addresses."""

    protocol: str = "all"
    port: int | None = None
    peers: tuple[str, ...] = ()  # IPv4 addresses; empty: any

    def args(self, direction: str) -> list[list[str]]:
        """iptables match arguments, one list per rule (one rule per peer)."""
        base: list[str] = []
        if self.protocol != "all":
            base += ["-p", self.protocol]
        if self.port is not None:
            if self.protocol == "all":
                raise FaultError("a port filter needs protocol tcp or udp")
            base += ["-m", "multiport", "--ports", str(self.port)]
        if not self.peers:
            return [base]
        flag = "-s" if direction == "in" else "-d"
        return [[flag, peer, *base] for peer in self.peers]


@dataclass(frozen=True, slots=True)
class NetPlan:
    """The commands that put one fault in place, and what confirms it."""

    chains: tuple[str, ...]  # every chain the fault creates (cleanup removes them)
    commands: tuple[tuple[str, ...], ...]
    rules: dict[str, int] = field(default_factory=dict)  # chain -> rule count expected
    qdisc: str | None = None  # the kind of root qdisc expected (``tbf``), None: untouched
    queue: int | None = None  # the NFQUEUE number the agent serves, None: no queue


def chain_base(fault_id: str) -> str:
    """``LAB-`` and 10 hex digits of the fault id: fits iptables' 28-character chain names."""
    return CHAIN_PREFIX + hashlib.sha1(fault_id.encode()).hexdigest()[:10]


def chains_of(fault_id: str) -> tuple[str, str]:
    base = chain_base(fault_id)
    return f"{base}-in", f"{base}-out"


def queue_number(fault_id: str) -> int:
    """A queue number per fault (1..65000) so two queued faults on one target don't clash."""
    return 1 + int(hashlib.sha1(fault_id.encode()).hexdigest()[:8], 16) % 65000


def _directions(direction: str) -> tuple[str, ...]:
    if direction not in DIRECTIONS:
        raise FaultError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    return ("in", "out") if direction == "both" else (direction,)


def _build(
    fault_id: str, direction: str, match: Match, actions: Sequence[Sequence[str]]
) -> tuple[list[tuple[str, ...]], dict[str, int], tuple[str, ...]]:
    """Chains for ``direction``, each with ``actions`` (target args) for every match."""
    chain_in, chain_out = chains_of(fault_id)
    commands: list[tuple[str, ...]] = []
    counts: dict[str, int] = {}
    made: list[str] = []
    for d in _directions(direction):
        chain, hook = (chain_in, "INPUT") if d == "in" else (chain_out, "OUTPUT")
        commands.append((*IPT, "-N", chain))
        made.append(chain)
        n = 0
        for m in match.args(d):
            for action in actions:
                commands.append((*IPT, "-A", chain, *m, *action))
                n += 1
        counts[chain] = n
        commands.append((*IPT, "-I", hook, "1", "-j", chain))
    return commands, counts, tuple(made)


def partition_plan(fault_id: str, peers: Sequence[str], direction: str = "both") -> NetPlan:
    """Drop everything between the target and ``peers`` (addresses) in ``direction``."""
    if not peers:
        raise FaultError("a link partition needs at least one peer")
    commands, counts, made = _build(
        fault_id, direction, Match(peers=tuple(peers)), [["-j", "DROP"]]
    )
    return NetPlan(made, tuple(commands), counts)


def dns_plan(fault_id: str, mode: str = "drop") -> NetPlan:
    """Names stop resolving: queries to Docker's resolver dropped (time out) or rejected."""
    if mode not in ("drop", "reject"):
        raise FaultError(f"mode must be drop or reject, not {mode!r}")
    action = ["-j", "DROP"] if mode == "drop" else ["-j", "REJECT"]
    match = Match(peers=(DOCKER_DNS,))
    commands, counts, made = _build(fault_id, "out", match, [action])
    return NetPlan(made, tuple(commands), counts)


@dataclass(frozen=True, slots=True)
class PacketParams:
    """A ``packet`` fault's effects; shares in percent, like netem's."""

    loss: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    reorder: float = 0.0
    corrupt: float = 0.0
    rate_kbps: int | None = None  # KB/s, as Toxiproxy's bandwidth toxic counts

    @property
    def queued(self) -> bool:
        return bool(self.delay_ms or self.jitter_ms or self.reorder or self.corrupt)


def packet_plan(
    fault_id: str, params: PacketParams, match: Match, direction: str = "both", dev: str = "eth0"
) -> NetPlan:
    """Loss in the kernel, the rest through the agent's queue, rate on the egress qdisc."""
    actions: list[list[str]] = []
    if params.loss:
        p = f"{params.loss / 100.0:.6f}"
        actions.append(["-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP"])
    queue = queue_number(fault_id) if params.queued else None
    if queue is not None:
        actions.append(["-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass"])
    commands: list[tuple[str, ...]] = []
    counts: dict[str, int] = {}
    made: tuple[str, ...] = ()
    if actions:
        built, counts, made = _build(fault_id, direction, match, actions)
        commands += built
    qdisc = None
    if params.rate_kbps is not None:
        if match != Match():
            raise FaultError(
                "rate_kbps shapes the target's whole egress (a tbf root qdisc): "
                "it takes no protocol, port or peer filter"
            )
        if direction == "in":
            raise FaultError("rate_kbps shapes egress only (direction out or both)")
        burst = max(4096, params.rate_kbps * 1024 // 10)
        commands.append(
            (
                "tc",
                "qdisc",
                "add",
                "dev",
                dev,
                "root",
                "handle",
                QDISC_HANDLE,
                "tbf",
                "rate",
                f"{params.rate_kbps}kbps",
                "burst",
                str(burst),
                "latency",
                "1s",
            )
        )
        qdisc = "tbf"
    if not commands:
        raise FaultError(
            "a packet fault needs at least one of loss, delay_ms, jitter_ms, "
            "reorder, corrupt, rate_kbps"
        )
    return NetPlan(made, tuple(commands), counts, qdisc, queue)
