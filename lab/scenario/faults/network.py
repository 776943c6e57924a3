"""Faults in a target's network namespace (``link_partition``, ``packet``, ``dns``) and the
discovery-plane ``ghost`` announcement.

Toxiproxy only sits on the client-to-worker TCP path; these reach every container and
protocol (the grapes' UDP DHT, the clients' UDP gossip). A helper container
(:mod:`lab.netfault.helper`) joins the target's namespace and installs the fault's own
iptables chains, tc qdisc or NFQUEUE agent (:mod:`lab.netfault.rules`). Confirmation reads
the namespace back: the chains with their rules, the jumps from INPUT/OUTPUT, the qdisc,
the queue agent running; heal removes them and confirms nothing of the fault is left.

A target that is not running at heal time has nothing to heal: a stopped container's
namespace went with it, and ``docker start`` makes a fresh one.
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from lab.errors import FaultError, RuntimeUnavailable
from lab.lab_client import http_json
from lab.netfault.cleanup import clean_namespaces
from lab.netfault.helper import NetfaultHelper
from lab.netfault.rules import (
    Match,
    NetPlan,
    PacketParams,
    chains_of,
    dns_plan,
    packet_plan,
    partition_plan,
)
from lab.scenario.faults.base import Fault, FaultContext
from lab.scenario.faults.leftovers import Janitor
from lab.scenario.plan.netkinds import GROUPS
from lab.scenario.runtime.compose import ComposeRuntime
from lab.scenario.runtime.protocol import Runtime, Target


def netfault_helper(runtime: Runtime) -> NetfaultHelper:
    """The helper for ``runtime``; only the Compose lab has namespaces of its own."""

    if not isinstance(runtime, ComposeRuntime):
        raise FaultError(
            f"network-namespace faults need the Compose runtime, not {runtime.name}: "
            f"local services share the host's namespace"
        )
    return NetfaultHelper(runtime.engine)


def expand_peers(runtime: Runtime, names: list[str], exclude: str) -> list[str]:
    """Service names for ``names`` (groups expanded), without the target itself."""
    targets = runtime.targets()
    out: list[str] = []
    for n in names:
        if n in GROUPS:
            out += [t.name for t in targets.values() if t.kind == GROUPS[n]]
        elif n in targets:
            out.append(n)
        else:
            raise FaultError(f"peer {n!r} is no service of the lab ({', '.join(targets)})")
    return [n for n in dict.fromkeys(out) if n != exclude]


class NetnsFault(Fault):
    """A fault made of rules in the target's namespace, put there by the helper."""

    target_kinds: ClassVar[tuple[str, ...]] = ("worker", "grape", "client")

    def __init__(
        self, fault_id: str, target: Target, params: Mapping[str, Any], ctx: FaultContext
    ) -> None:
        super().__init__(fault_id, target, params, ctx)
        self.helper = netfault_helper(ctx.runtime)
        self.plan: NetPlan | None = None
        self.state: dict[str, Any] = {}
        self._done_at: float | None = None

    @abstractmethod
    def build(self) -> NetPlan:
        """The plan, with peers resolved to their current addresses."""

    def addresses(self, names: list[str]) -> list[str]:
        services = expand_peers(self.ctx.runtime, names, self.target.name)
        if not services:
            raise FaultError(f"no peers left for {self.target.name} in {names}")
        self.record = replace(self.record, params={**self.record.params, "resolved": services})
        return [self.helper.address(n) for n in services]

    def _apply(self) -> None:
        self.plan = self.build()
        if self.plan.queue is not None:
            self.helper.start_queue(self.target.name, self.id, self.queue_params(self.plan.queue))
        self.state = self.helper.run(self.target.name, self.plan.commands)
        self._done_at = self.helper.exited_at

    def _started(self, t: float) -> float:
        return self._when(t)

    def _ended(self, t: float) -> float:
        return self._when(t)

    def _when(self, t: float) -> float:
        """When the agent exited (its rules in place or gone), not when its container was
        removed (a few hundred ms later): detection is timed from the fault's start."""
        done = self._done_at
        if self.ctx.now is time.monotonic and done is not None and done <= t:
            return done
        return t

    def queue_params(self, queue: int) -> dict[str, Any]:
        return {"queue": queue}

    def _confirm_applied(self) -> None:
        assert self.plan is not None
        chains = self.state.get("chains") or {}
        jumps = " ".join(self.state.get("jumps") or [])
        for chain, count in self.plan.rules.items():
            if chain not in chains or len(chains[chain]) != count:
                raise FaultError(
                    f"chain {chain} in {self.target.name} has "
                    f"{len(chains.get(chain) or [])} rule(s), expected {count}"
                )
            if f"-j {chain}" not in jumps:
                raise FaultError(f"no jump to {chain} in {self.target.name}")
        if self.plan.qdisc and self.plan.qdisc not in str(self.state.get("qdisc")):
            raise FaultError(f"{self.target.name}: root qdisc is {self.state.get('qdisc')!r}")
        if self.plan.queue is not None and not self.helper.queue_running(self.id):
            raise FaultError(f"the queue agent for {self.id} is not running")

    def _remove(self) -> None:
        try:
            alive = self.ctx.runtime.state(self.target.name) in ("running", "paused")
        except (FaultError, RuntimeUnavailable):
            alive = False
        self.helper.remove_helpers(self.id)  # first: the queue agent releases held packets
        qdisc = self.plan is None or self.plan.qdisc is not None  # unknown plan: ours, if any
        self._done_at = None
        if alive:
            self.state = self.helper.clean(self.target.name, chains_of(self.id), qdisc)
            self._done_at = self.helper.exited_at
        else:
            self.state = {}

    def _confirm_removed(self) -> None:
        left = [c for c in chains_of(self.id) if c in (self.state.get("chains") or {})]
        if left:
            raise FaultError(f"chain(s) {', '.join(left)} still in {self.target.name}")
        if self.plan is not None and self.plan.qdisc and "1717:" in str(self.state.get("qdisc")):
            raise FaultError(f"our qdisc is still on {self.target.name}")
        if self.helper.helpers(self.id):
            raise FaultError(f"a netfault helper of {self.id} is still there")

    def leftover(self) -> dict[str, Any]:
        return {
            **super().leftover(),
            "netfault": {"target": self.target.name, "chains": list(chains_of(self.id))},
        }

    @classmethod
    def undo_leftovers(cls, found: Sequence[Mapping[str, Any]], janitor: Janitor) -> None:
        """Helpers and our chains out of the namespaces (stray helpers too, even with none).

        Only a Compose run has namespaces of its own (see :func:`netfault_helper`).
        """
        if janitor.info.get("runtime") != ComposeRuntime.name:
            return
        wanted: dict[str, list[str]] = {}
        for f in found:
            nf = f.get("netfault")
            if isinstance(nf, Mapping) and nf.get("target"):
                chains = wanted.setdefault(str(nf["target"]), [])
                chains.extend(str(c) for c in nf.get("chains") or [])
        clean_namespaces(wanted, janitor.report)


class LinkPartition(NetnsFault):
    """Everything between the target and ``peers`` dropped (``direction``: both, in, out)."""

    kind = "link_partition"

    def build(self) -> NetPlan:
        peers = self.addresses(list(self.params.get("peers") or []))
        return partition_plan(self.id, peers, str(self.params.get("direction", "both")))


class Packet(NetnsFault):
    """Loss, delay/jitter, reorder, corrupt, rate on the target's matched packets."""

    kind = "packet"

    def build(self) -> NetPlan:
        p = self.params
        peer = p.get("peer")
        match = Match(
            protocol=str(p.get("protocol", "all")),
            port=p.get("port"),
            peers=tuple(self.addresses([str(peer)])) if peer else (),
        )
        effects = PacketParams(
            loss=float(p.get("loss", 0)),
            delay_ms=float(p.get("delay_ms", 0)),
            jitter_ms=float(p.get("jitter_ms", 0)),
            reorder=float(p.get("reorder", 0)),
            corrupt=float(p.get("corrupt", 0)),
            rate_kbps=p.get("rate_kbps"),
        )
        return packet_plan(self.id, effects, match, str(p.get("direction", "both")))

    def queue_params(self, queue: int) -> dict[str, Any]:
        keys = ("delay_ms", "jitter_ms", "reorder", "corrupt")
        return {"queue": queue, "seed": self.id, **{k: self.params.get(k, 0) for k in keys}}


class Dns(NetnsFault):
    """Names stop resolving in the target: Docker's resolver unreachable from it."""

    kind = "dns"

    def build(self) -> NetPlan:
        return dns_plan(self.id, str(self.params.get("mode", "drop")))


class Ghost(Fault):
    """A stale record: ``address`` announced for ``service`` through a grape until healed.

    As a crashed host's record would linger: the address is one nothing answers on (by
    default an unused address of the lab's subnet: connects hang until ARP gives up).
    Heal stops announcing; the record then expires after the grapes' peer max age, as a
    real stale record does, so ``ended`` is when the announcing stopped.
    """

    kind = "ghost"
    target_kinds: ClassVar[tuple[str, ...]] = ("grape",)

    def __init__(
        self, fault_id: str, target: Target, params: Mapping[str, Any], ctx: FaultContext
    ) -> None:
        super().__init__(fault_id, target, params, ctx)
        self._needs(target.control_url, "API URL")
        host, _, port = str(params.get("address", "10.231.0.99:1337")).rpartition(":")
        self.body = {"data": [str(params.get("service", "rpc_test")), int(port), {"host": host}]}
        self.address = f"{host}:{port}"
        # the ghost is the faulty peer: detection and the oracle's list are about it
        self.record = replace(self.record, peers=(self.address,))
        self.interval = float(params.get("interval_ms", 1000)) / 1000.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _announce(self) -> None:
        http_json("POST", f"{self.target.control_url}/announce", self.body, timeout=2.0)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._announce()
            except Exception:  # a missed announce is a record that expires sooner
                continue

    def _apply(self) -> None:
        self._announce()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"ghost-{self.id}", daemon=True)
        self._thread.start()

    def _confirm_applied(self) -> None:
        data = http_json(
            "POST", f"{self.target.control_url}/lookup", {"data": self.body["data"][0]}, timeout=2.0
        )
        if not isinstance(data, list) or self.address not in data:
            raise FaultError(f"{self.target.name} does not return {self.address}: {data!r:.120}")

    def _remove(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 2.5)

    def _confirm_removed(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise FaultError(f"ghost announcer {self.id} still running")


NETNS_FAULT_KINDS: tuple[type[Fault], ...] = (LinkPartition, Packet, Dns, Ghost)
