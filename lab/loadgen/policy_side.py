"""The one module of the client service that knows ``lab.grenache`` and ``lab.balancer``.

It opens the grape Link (discovery), the pooled RPC transport, the policy's client and
the gossip socket, and turns them into what the app needs (:mod:`lab.loadgen.parts`):
``send`` returning a :class:`~lab.loadgen.load.Sent`, the peer set, per-peer views for
``/peers`` and the gauges, the oracle's fault list, gossip on/off and its counters.
Breaker transitions (kind ``breaker``) and gossip hints that changed what we hold
(kind ``gossip_hint``) reach the recorder as ``ClientEvent`` through the event sink.

Every client runs the event-loop lag monitor (:mod:`lab.looplag`): attempts that
overlapped a stall of the client give their peer no verdict, each stall is an event
(kind ``stall``, detail ``{length_ms}``), a ``loop_lag`` event each second carries the
period's lag histogram (whole ms -> count) for the run's summary, and ``/health``
shows max and p99 lag since start. Every policy gets the monitor, so the baselines'
figures say how noisy the host was for them too.

Policies that read the workers' own load get it here: C3 the load headers of every
reply (the transport's ``on_load``), Prequal its probes (:class:`~lab.balancer.prober.
Prober`, closed with the side).

Every policy gets a gossip socket, so every client announces the same way; only the
adaptive policy has verdicts to send and uses the hints it receives.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from lab.balancer.adaptive import AdaptivePolicy
from lab.balancer.client import BalancedClient, Transport
from lab.balancer.feedback import LoadFeedback, ProbeDriven
from lab.balancer.gossip import GossipConfig, Message
from lab.balancer.gossip_net import GossipNode
from lab.balancer.policy_file import PolicyFault
from lab.balancer.policy_guard import guard_of
from lab.balancer.prober import Prober, ProbeTransport
from lab.balancer.registry import make_policy
from lab.balancer.stats import GossipCounts, PeerStats
from lab.clock import Clock
from lab.errors import LabError, NoPeerAvailable, RpcTimeout
from lab.grenache.link import Link
from lab.grenache.transport import HttpTransport
from lab.history import ClientEvent, Outcome
from lab.loadgen import limits
from lab.loadgen.load import Sent
from lab.loadgen.parts import Discovery, EventSink, PolicySideLike
from lab.loadgen.settings import GOSSIP_KEY_ENV, ClientSettings
from lab.looplag import LoopLag, Stall

log = logging.getLogger(__name__)


def outcome_of(exc: BaseException) -> Outcome:
    """How a failed request ended, from the lab error that ended it."""
    if isinstance(exc, RpcTimeout):
        return Outcome.TIMEOUT
    if isinstance(exc, NoPeerAvailable):
        return Outcome.REJECTED
    return Outcome.ERROR


class PolicySide:
    """The policy side of one client process (see the module docstring)."""

    def __init__(
        self, settings: ClientSettings, clock: Clock, transport: Transport, on_event: EventSink
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._on_event = on_event
        self.policy = make_policy(settings.policy, clock=clock, rng=random.Random(settings.seed))
        self.prober = self._feed_load(transport)
        self.looplag = LoopLag(clock, on_stall=self._stall, on_period=self._lag_period)
        self.client = BalancedClient(
            self.policy,
            transport,
            clock=clock,
            on_event=on_event,
            name=settings.name,
            stalls=self.looplag,
        )
        config = (
            self.policy.gossip_config if isinstance(self.policy, AdaptivePolicy) else GossipConfig()
        )
        self.gossip = GossipNode(
            bind=settings.bind,
            port=settings.gossip_port,
            advertise=settings.gossip_host(),
            clock=clock,
            rng=random.Random(settings.seed + 1),
            config=config,
            outgoing=self.policy.verdicts,
            incoming=self._hints,
            key=settings.gossip_key,
            enabled=settings.gossip,
        )
        self.policy.set_hints_enabled(settings.gossip)
        self._fault: PolicyFault | None = None
        guard = guard_of(self.policy)
        if guard is not None:
            guard.on_fault(self._policy_failed)

    def _policy_failed(self, fault: PolicyFault) -> None:
        """The learner's policy failed: say so loudly, once; the control API refuses load."""
        self._fault = fault
        log.error(
            "policy %s failed, no more requests go through it:\n%s",
            self.policy.name,
            fault.report(),
        )
        self._on_event(
            ClientEvent(
                self._settings.name,
                self.policy.name,
                self._clock.monotonic(),
                "policy_error",
                None,
                {"error": str(fault), "where": fault.where, "traceback": fault.trace},
            )
        )

    def policy_fault(self) -> str | None:
        """The learner's policy's fault with its traceback; None while it works."""
        return None if self._fault is None else self._fault.report()

    async def start(self) -> None:
        """Start the loop-lag monitor, bind the gossip socket and start its timer."""
        await self.looplag.start()
        if self._settings.gossip and not self.gossip.authenticated:
            log.warning(
                "no gossip key (%s): this client neither sends nor accepts hints",
                GOSSIP_KEY_ENV,
            )
        await self.gossip.start()

    async def aclose(self) -> None:
        """Stop gossip, probes and the monitor; the transport is closed by its owner."""
        await self.gossip.aclose()
        if self.prober is not None:
            await self.prober.aclose()
        await self.looplag.aclose()

    def _feed_load(self, transport: Transport) -> Prober | None:
        """Connect the policies that read the workers' load (C3, Prequal) to it."""
        if isinstance(self.policy, LoadFeedback) and hasattr(transport, "on_load"):
            transport.on_load = self.policy.observe_load
        if isinstance(self.policy, ProbeDriven) and isinstance(transport, ProbeTransport):
            return Prober(self.policy, transport)
        return None

    def _stall(self, stall: Stall) -> None:
        detail = {"start": stall.start, "length_ms": round(stall.length * 1000, 3)}
        self._on_event(
            ClientEvent(self._settings.name, self.policy.name, stall.end, "stall", None, detail)
        )

    def _lag_period(self, now: float, hist: dict[int, int]) -> None:
        detail = {"hist": {str(ms): n for ms, n in sorted(hist.items())}}
        self._on_event(
            ClientEvent(self._settings.name, self.policy.name, now, "loop_lag", None, detail)
        )

    async def send(self, service: str, payload: Any, budget_s: float) -> Sent:
        try:
            result = await self.client.request(service, payload, timeout=budget_s)
        except LabError as exc:
            attempts = tuple(getattr(exc, "attempts", ()))
            return Sent(outcome_of(exc), attempts, str(exc) or type(exc).__name__)
        return Sent(Outcome.OK, result.attempts)

    def set_peers(self, peers: Sequence[str]) -> None:
        self.client.set_peers(list(peers))

    def peers(self) -> Sequence[PeerStats]:
        return self.client.peers()

    def faulty(self) -> Sequence[str]:
        return self.policy.faulty()

    def set_faulty(self, peers: Sequence[str]) -> None:
        self.policy.set_faulty(peers)

    def gossip_enabled(self) -> bool:
        return self.gossip.enabled

    def set_gossip(self, enabled: bool) -> None:
        self.gossip.enabled = enabled
        self.policy.set_hints_enabled(enabled)

    def gossip_port(self) -> int:
        return self.gossip.port

    def set_gossip_members(self, members: Sequence[str]) -> None:
        self.gossip.set_members(members)

    def gossip_counts(self) -> GossipCounts:
        return self.gossip.counts()

    def health(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "gossip": self.gossip.enabled,
            "gossip_address": self.gossip.address,
            "gossip_authenticated": self.gossip.authenticated,
            "gossip_members": len(self.gossip.members()),
            "gossip_counts": dataclasses.asdict(self.gossip.counts()),
            "peers": len(self.policy.known()),
        }
        if self._fault is not None:
            view["policy_error"] = self._fault.report()
        view["loop_lag"] = {**self.looplag.view(), "voided_attempts": self.client.voided}
        if isinstance(self.policy, AdaptivePolicy):
            view["retry_budget"] = self.policy.budget_view()
            view.update(self.policy.judgement_view())
        return view

    def _hints(self, message: Message) -> None:
        now = self._clock.monotonic()
        for hint in self.policy.take_hints(message):
            self._on_event(
                ClientEvent(
                    self._settings.name,
                    self.policy.name,
                    now,
                    "gossip_hint",
                    hint.peer,
                    {
                        "sender": message.sender,
                        "verdict": hint.verdict.value,
                        "age": hint.age,
                        "ttl": hint.ttl,
                    },
                )
            )


@asynccontextmanager
async def open_parts(
    settings: ClientSettings, clock: Clock, on_event: EventSink
) -> AsyncIterator[tuple[Discovery, PolicySideLike]]:
    """Discovery through the grapes and the policy side; closed in reverse on exit."""
    async with AsyncExitStack() as stack:
        link = Link(list(settings.grapes), clock=clock)
        stack.push_async_callback(link.aclose)
        transport = HttpTransport(  # bounded: see lab.loadgen.limits
            limit=limits.MAX_CONNECTIONS,
            limit_per_host=limits.MAX_CONNECTIONS_PER_PEER,
            keepalive_timeout=limits.CONNECTION_IDLE_S,
        )
        stack.push_async_callback(transport.aclose)
        side = PolicySide(settings, clock, transport, on_event)
        await side.start()
        stack.push_async_callback(side.aclose)
        yield link, side
