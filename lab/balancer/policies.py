"""One :class:`Policy` interface; the baselines live here (by name: :mod:`.registry`).

A policy owns all per-peer state (what it measured, breakers, budgets) and answers
three questions for :class:`lab.balancer.client.BalancedClient`: which peer next
(:meth:`Policy.choose`), how long to wait for it (:meth:`Policy.attempt_timeout`),
and may we retry (:meth:`Policy.try_retry`). The client reports back how every attempt
ended. Every policy measures latency and load the same way, so ``/peers`` and the
gauges compare like with like; only ``adaptive`` acts on them.

- ``random``: uniform random, one attempt, no breakers: what upstream Grenache's
  ``PeerRPCClient`` does, the honest baseline;
- ``round_robin``: the next peer in address order, one attempt;
- ``oracle``: told the faulty peers (``set_faulty``), uniform random among the rest,
  one attempt: the limit line no real client can beat;
- ``adaptive``: :mod:`lab.balancer.adaptive`;
- ``least_request``, ``peak_ewma``: :mod:`lab.balancer.p2c_policies` (Envoy, Finagle);
- ``prequal``: :mod:`lab.balancer.prequal`; ``c3``: :mod:`lab.balancer.c3`.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.balancer.breaker import Permit, Transition
from lab.balancer.gossip import Hint, Message
from lab.balancer.metrics import MetricsConfig, PeerMetrics
from lab.balancer.stats import PeerStats
from lab.clock import Clock
from lab.errors import NoPeerAvailable
from lab.history import Outcome


@dataclass(frozen=True, slots=True)
class Pick:
    """A chosen peer and the breaker's permit for it (None: the policy has no breakers)."""

    peer: str
    permit: Permit | None = None


@dataclass(frozen=True, slots=True)
class PolicyEvent:
    """Something a policy decided that is not a breaker transition (``panic`` start/end)."""

    t: float
    kind: str
    peer: str | None
    detail: dict[str, Any]


TransitionListener = Callable[[Transition], None]
EventListener = Callable[[PolicyEvent], None]


class Policy(ABC):
    """What the client asks of a balancing policy.

    The contract, for the built-in policies and for one of your own
    (``path/to/file.py:ClassName``, start from ``policies/template.py``):

    - it is built as ``cls(clock=..., rng=...)``: read time only from ``self._clock``
      (tests drive a fake one) and draw only from ``self._rng`` (runs are seeded);
    - every method is called on the client's event loop, one at a time, and must return
      at once: no I/O, no sleeping; a file's policy gets 100 ms per call
      (:mod:`lab.balancer.policy_guard`), the built-ins take microseconds;
    - :meth:`choose` returns a :class:`Pick` of a peer from :meth:`known` that is not in
      ``exclude``, or raises :class:`~lab.errors.NoPeerAvailable`;
    - the client reports every attempt it starts (:meth:`started`) and how it ended
      (:meth:`finished`, or :meth:`abandoned`); the base class keeps the shared
      per-peer metrics in ``self._metrics`` from these, so overrides call ``super()``.
    """

    name: ClassVar[str]
    retries: ClassVar[bool] = False

    def __init__(
        self, *, clock: Clock, rng: random.Random, metrics: MetricsConfig | None = None
    ) -> None:
        self._clock = clock
        self._rng = rng
        self._metrics_config = metrics or MetricsConfig()
        self._metrics: dict[str, PeerMetrics] = {}
        self._order: list[str] = []
        self._faulty: list[str] = []
        self._listeners: list[TransitionListener] = []
        self._event_listeners: list[EventListener] = []

    # -- membership ----------------------------------------------------------------------

    def set_peers(self, peers: Sequence[str]) -> None:
        """The peers to balance over (the client applies discovery's grace period)."""
        wanted = list(dict.fromkeys(peers))
        first = not self._metrics
        for peer in wanted:
            if peer not in self._metrics:
                self._metrics[peer] = PeerMetrics(self._metrics_config)
                self._added(peer, first)
        for peer in [p for p in self._metrics if p not in set(wanted)]:
            del self._metrics[peer]
            self._removed(peer)
        self._order = sorted(self._metrics)

    def known(self) -> list[str]:
        return list(self._order)

    def _added(self, peer: str, initial: bool) -> None:
        """Hook: ``peer`` joined (``initial``: it came with the very first peer set)."""
        return None  # only some policies care

    def _removed(self, peer: str) -> None:
        """Hook: ``peer`` left."""
        return None  # only some policies care

    # -- the request path ----------------------------------------------------------------

    @abstractmethod
    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        """The next peer, never one in ``exclude``; raise NoPeerAvailable if none may go."""

    def attempt_timeout(self, peer: str, remaining: float) -> float:
        """Seconds to wait for ``peer``; the baselines wait the whole remaining deadline."""
        return remaining

    def request_started(self) -> None:
        """A new logical request (the retry budget's deposit)."""
        return None  # only some policies care

    def try_retry(self) -> bool:
        """Spend a retry if the policy retries and its budget allows."""
        return False

    def worth_waiting(self, peer: str) -> bool:
        """After a timeout verdict on ``peer``: keep waiting for its answer (linger)?"""
        return True

    def hedge_delay(self) -> float | None:
        """Seconds after which a slow attempt gets a hedge (None: never hedge)."""
        return None

    def release(self, pick: Pick) -> None:
        """A pick that will not be sent after all (the retry budget said no)."""
        return None  # only policies with breakers hold anything for a pick

    def started(self, pick: Pick) -> None:
        m = self._metrics.get(pick.peer)
        if m is not None:
            m.started()

    def finished(self, pick: Pick, rtt: float, outcome: Outcome) -> None:
        """An attempt to ``pick.peer`` ended with ``outcome`` after ``rtt`` seconds."""
        m = self._metrics.get(pick.peer)
        if m is not None:
            m.finished(self._clock.monotonic(), rtt, outcome is Outcome.OK)

    def abandoned(self, pick: Pick) -> None:
        """An attempt was cancelled before it ended (a hedge that lost, a shutdown)."""
        m = self._metrics.get(pick.peer)
        if m is not None:
            m.abandoned()

    # -- views and controls --------------------------------------------------------------

    def stats(self) -> list[PeerStats]:
        now = self._clock.monotonic()
        out = []
        for peer in self._order:
            m = self._metrics[peer]
            ok, bad = m.counts(now)
            out.append(
                PeerStats(
                    peer,
                    score=None,
                    ewma_s=m.ewma.value(now),
                    in_flight=m.in_flight,
                    detail={"successes": ok, "failures": bad},
                )
            )
        return out

    def set_faulty(self, peers: Sequence[str]) -> None:
        """The oracle's fault list (kept, and shown, by every policy; only oracle uses it)."""
        self._faulty = list(dict.fromkeys(peers))

    def faulty(self) -> list[str]:
        return list(self._faulty)

    def subscribe(self, listener: TransitionListener) -> None:
        """Be told of every breaker transition."""
        self._listeners.append(listener)

    def _emit(self, transition: Transition) -> None:
        for listener in self._listeners:
            listener(transition)

    def subscribe_events(self, listener: EventListener) -> None:
        """Be told of the policy's other decisions (:class:`PolicyEvent`)."""
        self._event_listeners.append(listener)

    def _note(self, event: PolicyEvent) -> None:
        for listener in self._event_listeners:
            listener(event)

    # -- gossip (only the adaptive policy takes part) -------------------------------------

    def verdicts(self) -> list[Hint]:
        """What this client would tell others about its peers right now."""
        return []

    def take_hints(self, message: Message) -> list[Hint]:
        """Hints received from another client; returns those that changed our view."""
        return []

    def set_hints_enabled(self, enabled: bool) -> None:
        """Gossip switched on or off: off drops every hint held."""
        return None  # only some policies care

    def _pool(self, exclude: AbstractSet[str]) -> list[str]:
        pool = [p for p in self._order if p not in exclude]
        if not pool:
            raise NoPeerAvailable(
                "no peer known" if not self._order else "every known peer was already tried"
            )
        return pool


class RandomPolicy(Policy):
    """Uniform random, one attempt: upstream Grenache's behaviour."""

    name = "random"

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        return Pick(self._rng.choice(self._pool(exclude)))


class RoundRobinPolicy(Policy):
    """The next peer in address order, one attempt."""

    name = "round_robin"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._next = 0

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        self._pool(exclude)  # raises when nothing is left
        n = len(self._order)
        for k in range(n):
            peer = self._order[(self._next + k) % n]
            if peer not in exclude:
                self._next = (self._next + k + 1) % n
                return Pick(peer)
        raise NoPeerAvailable("every known peer was already tried")  # unreachable


class OraclePolicy(Policy):
    """Uniform random among the peers not declared faulty: the limit line."""

    name = "oracle"

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        pool = self._pool(exclude)
        faulty = set(self._faulty)
        healthy = [p for p in pool if p not in faulty]
        return Pick(self._rng.choice(healthy or pool))
