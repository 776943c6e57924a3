"""The adaptive policy: P2C on peak EWMA, breakers, retry budget, slow start, gossip.

How the parts meet (constants and reasons in ``docs/balancer.md``):

- **choice**: peers with an open breaker, half-open without a free probe slot, or
  already tried by this request are out; among the rest, P2C on
  ``latency x (in-flight + 1) x gossip factor`` with candidates drawn by slow-start
  weight (:mod:`lab.balancer.scoring`). A peer without history is priced at the median
  latency of the peers that have some (so a newcomer is neither starved nor flooded;
  the 30 ms default applies only when nobody has history yet).
- **every peer excluded by its breaker**: the one whose open period ends soonest is
  turned half-open early, if it has been open at least the base open time, and probed
  once; otherwise the request fails at once with ``NoPeerAvailable``. So in a total
  outage the client neither hangs nor hammers: at most one probe per peer per base
  open time, and every other request fails fast.
- **breaker half-open**: the latency history is forgotten, so the probe is priced
  like a typical peer and gets drawn soon (an old timeout-sized estimate would
  otherwise keep the recovered peer away for seconds after the breaker allowed it).
- **breaker closes**: the slow-start ramp begins; while it ramps, the peer is priced
  at no more than the median latency (its first answers come over fresh connections
  and, peak-EWMA being what it is, would otherwise keep it out of every comparison for
  seconds: on the local cluster a healed worker took 7 s to get half its share back).
- **attempt timeout**: ``max(floor, multiplier x min(peer latency, typical latency))``
  bounded by the request's remaining time; "typical" is the median latency of the
  peers with closed breakers. Using the peer's own estimate alone would give a peer
  that turned slow a longer leash exactly when it deserves a shorter one.
- **panic** (:mod:`lab.balancer.panic`): when breakers hold more than the ejection cap
  (half the peers, rounded down) out of rotation, every peer is eligible again and the
  choice is the lowest ``cost / smoothed success share`` (ties within the band drawn by
  slow-start weight); breakers keep judging, and a ``panic`` event marks start and end.
- **global shift** (:mod:`lab.balancer.shift`): when every peer asked recently timed
  out within a second, the attempt timeout is the request's remaining time, and
  timeouts and slow calls give no verdict.
- **gossip**: see :mod:`lab.balancer.gossip`; we share peers whose breaker is not
  closed or whose recent failure share is high, and ``ok`` for those that recovered
  within a hint's ttl.
"""

from __future__ import annotations

import random
from collections.abc import Set as AbstractSet
from typing import Any, ClassVar

from lab.balancer.attempts import AttemptConfig, HedgeDelay
from lab.balancer.breaker import Breaker, BreakerConfig, Result, State, Transition
from lab.balancer.budget import BudgetConfig, RetryBudget
from lab.balancer.gossip import GossipConfig, Hint, HintBook, HintVerdict, Message
from lab.balancer.metrics import MetricsConfig, PeerMetrics
from lab.balancer.panic import PanicConfig
from lab.balancer.policies import Pick, Policy, PolicyEvent
from lab.balancer.scoring import ChoiceConfig, cost, draw, p2c
from lab.balancer.shift import ShiftConfig, ShiftDetector
from lab.balancer.slowstart import SlowStartConfig
from lab.balancer.stats import PeerStats
from lab.balancer.tail import Tails
from lab.clock import Clock
from lab.errors import NoPeerAvailable
from lab.history import Outcome


class _Peer:
    """Everything the adaptive policy keeps about one peer."""

    __slots__ = ("bad_until", "breaker", "metrics", "ramp_since")

    def __init__(self, metrics: PeerMetrics, breaker: Breaker, ramp_since: float | None) -> None:
        self.metrics = metrics
        self.breaker = breaker
        self.ramp_since = ramp_since
        self.bad_until: float | None = None  # when we last shared it as bad


class AdaptivePolicy(Policy):
    """See the module docstring."""

    name = "adaptive"
    retries = True
    OPTIONS: ClassVar[dict[str, type]] = {
        "metrics": MetricsConfig,
        "breaker": BreakerConfig,
        "budget": BudgetConfig,
        "slow_start": SlowStartConfig,
        "gossip": GossipConfig,
        "attempts": AttemptConfig,
        "choice": ChoiceConfig,
        "panic": PanicConfig,
        "shift": ShiftConfig,
    }

    def __init__(
        self,
        *,
        clock: Clock,
        rng: random.Random,
        metrics: MetricsConfig | None = None,
        breaker: BreakerConfig | None = None,
        budget: BudgetConfig | None = None,
        slow_start: SlowStartConfig | None = None,
        gossip: GossipConfig | None = None,
        attempts: AttemptConfig | None = None,
        choice: ChoiceConfig | None = None,
        panic: PanicConfig | None = None,
        shift: ShiftConfig | None = None,
    ) -> None:
        super().__init__(clock=clock, rng=rng, metrics=metrics)
        self.breaker_config = breaker or BreakerConfig()
        self.budget = RetryBudget(budget or BudgetConfig())
        self.slow_start = slow_start or SlowStartConfig()
        self.gossip_config = gossip or GossipConfig()
        self.attempts = attempts or AttemptConfig()
        self.choice = choice or ChoiceConfig()
        self.panic = panic or PanicConfig()
        self.shift = ShiftDetector(shift or ShiftConfig())
        self.tails = Tails()  # the attempt timeout's floor when answers spread wide
        self.in_panic = False
        self.hints = HintBook(self.gossip_config)
        self._hints_enabled = True
        self._peers: dict[str, _Peer] = {}
        self._list: list[_Peer] = []
        self._hedge = HedgeDelay(self.attempts)

    # -- membership ----------------------------------------------------------------------

    def _added(self, peer: str, initial: bool) -> None:
        now = self._clock.monotonic()
        breaker = Breaker(peer, self.breaker_config, self._rng, self._on_transition)
        self._peers[peer] = _Peer(self._metrics[peer], breaker, None if initial else now)
        self._list = [self._peers[p] for p in sorted(self._peers)]

    def _removed(self, peer: str) -> None:
        self._peers.pop(peer, None)
        self.shift.forget(peer)
        self.tails.forget(peer)
        self._list = [self._peers[p] for p in sorted(self._peers)]
        self.hints.prune(self._clock.monotonic(), self._peers)

    def _on_transition(self, t: Transition) -> None:
        p = self._peers.get(t.peer)
        if p is not None:
            if t.to_state is State.HALF_OPEN:
                p.metrics.ewma.reset()
            elif t.to_state is State.CLOSED:
                p.ramp_since = t.t
        self._emit(t)

    # -- choice --------------------------------------------------------------------------

    def typical_latency(self, now: float) -> float:
        """Median latency of the peers with history and a closed breaker.

        When no closed peer has history (panic, a shift every peer shares), the median
        over every peer with history: the default 30 ms would set a 120 ms attempt
        timeout for peers answering in 300 ms and start the shift over.
        """
        closed: list[float] = []
        every: list[float] = []
        for p in self._list:
            v = p.metrics.ewma.value(now)
            if v is None:
                continue
            every.append(v)
            if p.breaker.state(now) is State.CLOSED:
                closed.append(v)
        values = sorted(closed or every)
        if not values:
            return self._metrics_config.default_rtt_s
        return values[len(values) // 2]

    def _latency(self, p: _Peer, now: float, typical: float | None) -> float:
        value = p.metrics.ewma.value(now)
        if value is not None:
            return value
        return typical if typical is not None else self.typical_latency(now)

    def _cost(self, p: _Peer, now: float) -> float:
        m = p.metrics
        factor = 1.0
        if self._hints_enabled:
            factor = self.hints.factor(p.breaker.peer, now, m.last_success)
        latency = self._latency(p, now, None)
        if p.ramp_since is not None and self.slow_start.weight(p.ramp_since, now) < 1.0:
            # Ramping: the weight sets its share. Its first answers come over fresh
            # connections and would price it out of every comparison (a cliff again).
            latency = min(latency, self.typical_latency(now))
        latency = max(latency, self.choice.latency_floor_s)
        return cost(latency, m.in_flight, factor)

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        now = self._clock.monotonic()
        eligible: list[_Peer] = []
        weights: list[float] = []
        blocked: list[_Peer] = []
        ejected = 0
        for p in self._list:
            closed = p.breaker.state(now) is State.CLOSED
            if not closed:
                ejected += 1
            if p.breaker.peer in exclude:
                continue
            if closed or p.breaker.allows(now):
                eligible.append(p)
                weight = self.slow_start.weight(p.ramp_since, now)
                if self._hints_enabled:
                    # Probation acts on the draw too: an idle client's latencies have
                    # all decayed toward zero, and a multiplied near-zero is still cheap.
                    hint = self.hints.factor(p.breaker.peer, now, p.metrics.last_success)
                    weight /= hint
                weights.append(weight)
            else:
                blocked.append(p)
        self._set_panic(ejected > self.panic.cap(len(self._list)), now, ejected)
        if self.in_panic:
            return self._choose_in_panic(exclude, now)
        if not eligible:
            if not blocked:
                raise NoPeerAvailable(
                    "no peer known" if not self._list else "every known peer was already tried"
                )
            soonest = min(blocked, key=lambda b: b.breaker.open_until)
            if not soonest.breaker.force_half_open(now):
                wait = max(0.0, soonest.breaker.open_until - now)
                raise NoPeerAvailable(
                    f"every peer's breaker is open ({len(blocked)} peers); "
                    f"next probe allowed in {wait:.2f}s"
                )
            eligible, weights = [soonest], [1.0]
        tie = self.choice.tie_ratio
        chosen = eligible[p2c(weights, lambda i: self._cost(eligible[i], now), self._rng, tie)]
        permit = chosen.breaker.acquire(now)
        return Pick(chosen.breaker.peer, permit)

    def _set_panic(self, panic: bool, now: float, ejected: int) -> None:
        if panic is self.in_panic:
            return
        self.in_panic = panic
        detail: dict[str, Any] = {
            "state": "start" if panic else "end",
            "ejected": ejected,
            "peers": len(self._list),
            "cap": self.panic.cap(len(self._list)),
        }
        self._note(PolicyEvent(now, "panic", None, detail))

    def panic_score(self, p: _Peer, now: float) -> float:
        """Cost / smoothed success share, x ``distrust`` unless the breaker is closed.

        Lower is better. The distrust factor keeps a peer the client still trusts
        ahead of ejected ones until its load (in-flight count) is that many times
        theirs: with two of three blackholed the live one takes the traffic, while a
        slowdown that ejected everyone spreads it by load (every factor is the same).
        The success share alone did not do it: under a starved client the in-flight
        count of the live peer outweighed it and the blackholed ones won draws.
        """
        ok, bad = p.metrics.counts(now)
        score = self._cost(p, now) / self.panic.success_share(ok, bad)
        if p.breaker.state(now) is not State.CLOSED:
            score *= self.panic.distrust
        return score

    def worth_waiting(self, peer: str) -> bool:
        """Linger on a timed-out attempt only while the peer's breaker is closed."""
        p = self._peers.get(peer)
        return p is not None and p.breaker.state(self._clock.monotonic()) is State.CLOSED

    def _choose_in_panic(self, exclude: AbstractSet[str], now: float) -> Pick:
        """The best peers by :meth:`panic_score`, whatever their breakers say.

        The chosen peer gets a panic permit (judged like a probe when half-open, so a
        breaker can close on panic traffic). A half-open peer outside the best band
        gets its probe first, sent aside: scores alone would never pick a peer whose
        window is all failures, and its breaker would never learn it recovered.
        """
        pool = [p for p in self._list if p.breaker.peer not in exclude]
        if not pool:
            raise NoPeerAvailable(
                "no peer known" if not self._list else "every known peer was already tried"
            )
        scores = [self.panic_score(p, now) for p in pool]
        limit = min(scores) * self.choice.tie_ratio
        band: list[_Peer] = []
        for p, score in zip(pool, scores, strict=True):
            if score <= limit:
                band.append(p)
            elif p.breaker.state(now) is State.HALF_OPEN and p.breaker.allows(now):
                return Pick(p.breaker.peer, p.breaker.acquire(now))
        weights = [self.slow_start.weight(p.ramp_since, now) for p in band]
        chosen = band[draw(weights, self._rng)]
        if chosen.breaker.state(now) is State.CLOSED:
            return Pick(chosen.breaker.peer, chosen.breaker.acquire(now))
        return Pick(chosen.breaker.peer, chosen.breaker.bypass())

    def shifted(self) -> bool:
        """Is a slowdown shared by every peer under way (see :mod:`lab.balancer.shift`)?"""
        return self.shift.shifted(self._clock.monotonic(), len(self._list))

    def attempt_timeout(self, peer: str, remaining: float) -> float:
        now = self._clock.monotonic()
        if self.shift.shifted(now, len(self._list)):
            return max(0.0, remaining)  # everyone is slow: the deadline is the only limit
        return max(0.0, min(self._ordinary_timeout(peer, now), remaining))

    def _ordinary_timeout(self, peer: str, now: float) -> float:
        """``max(floor, multiplier x min(peer latency, typical latency), typical tail)``
        (the last: :mod:`lab.balancer.tail`)."""
        typical = self.typical_latency(now)
        p = self._peers.get(peer)
        own = typical if p is None else self._latency(p, now, typical)
        by_mean = self.attempts.multiplier * min(own, typical)
        return max(self.attempts.floor_s, by_mean, self.tails.floor(now))

    # -- retries -------------------------------------------------------------------------

    def request_started(self) -> None:
        self.budget.deposit(self._clock.monotonic())

    def try_retry(self) -> bool:
        return self.budget.try_withdraw(self._clock.monotonic())

    # -- outcomes ------------------------------------------------------------------------

    def finished(self, pick: Pick, rtt: float, outcome: Outcome) -> None:
        super().finished(pick, rtt, outcome)
        now = self._clock.monotonic()
        if outcome is Outcome.OK:
            self.tails.answered(pick.peer, rtt, now)
            self._hedge.answered(rtt)
        if outcome is Outcome.TIMEOUT:
            self.shift.timed_out(pick.peer, now)
        elif self.shift.watching(now):  # the timeout's price only when it can matter
            self.shift.answered(now, rtt <= self._ordinary_timeout(pick.peer, now))
        shifted = self.shift.shifted(now, len(self._list))
        p = self._peers.get(pick.peer)
        if p is None or pick.permit is None:
            return
        if shifted and outcome is Outcome.TIMEOUT:
            p.breaker.release(pick.permit)  # the shift's timeout, not the peer's
            return
        result = {
            Outcome.OK: Result.SUCCESS,
            Outcome.TIMEOUT: Result.TIMEOUT,
        }.get(outcome, Result.FAILURE)
        p.breaker.record(pick.permit, now, result, rtt, judge_slow=not shifted)

    def release(self, pick: Pick) -> None:
        p = self._peers.get(pick.peer)
        if p is not None and pick.permit is not None:
            p.breaker.release(pick.permit)

    def hedge_delay(self) -> float | None:
        """The hedge quantile of recent successful attempts' latency, once there are 20."""
        return self._hedge.delay()

    def abandoned(self, pick: Pick) -> None:
        super().abandoned(pick)
        p = self._peers.get(pick.peer)
        if p is not None and pick.permit is not None:
            p.breaker.release(pick.permit)

    # -- views ---------------------------------------------------------------------------

    def stats(self) -> list[PeerStats]:
        now = self._clock.monotonic()
        typical = self.typical_latency(now)
        out = []
        for peer in self._order:
            p = self._peers[peer]
            m = p.metrics
            ok, bad = m.counts(now)
            state = p.breaker.state(now)
            out.append(
                PeerStats(
                    peer,
                    score=self._cost(p, now),
                    ewma_s=m.ewma.value(now),
                    in_flight=m.in_flight,
                    breaker=state.value,
                    hints=self.hints.count(peer, now) if self._hints_enabled else 0,
                    detail={
                        "latency_s": self._latency(p, now, typical),
                        "weight": self.slow_start.weight(p.ramp_since, now),
                        "successes": ok,
                        "failures": bad,
                        "consecutive_failures": m.consecutive_failures,
                        "trips": p.breaker.trips,
                        "open_until": p.breaker.open_until if state is State.OPEN else None,
                    },
                )
            )
        return out

    def budget_view(self) -> dict[str, Any]:
        now = self._clock.monotonic()
        return {
            "balance": self.budget.balance(now),
            "spent": self.budget.spent,
            "refused": self.budget.refused,
        }

    def judgement_view(self) -> dict[str, Any]:
        """Panic and shift state for ``/health``."""
        return {"panic": self.in_panic, "shifted": self.shifted()}

    # -- gossip --------------------------------------------------------------------------

    def _is_bad(self, p: _Peer, now: float) -> bool:
        if p.breaker.state(now) is not State.CLOSED:
            return True
        rate, calls = p.metrics.failure_rate(now)
        g = self.gossip_config
        return calls >= g.bad_min_calls and rate >= g.bad_failure_rate

    def verdicts(self) -> list[Hint]:
        now = self._clock.monotonic()
        ttl = self.gossip_config.hint_ttl_s
        out: list[Hint] = []
        for peer in self._order:
            p = self._peers[peer]
            m = p.metrics
            if self._is_bad(p, now):
                p.bad_until = now
                age = 0.0 if m.last_failure is None else max(0.0, now - m.last_failure)
                if age < ttl:
                    out.append(Hint(peer, HintVerdict.BAD, age, ttl))
            elif p.bad_until is not None and now - p.bad_until < ttl:
                last_ok = m.last_success if m.last_success is not None else now
                out.append(Hint(peer, HintVerdict.OK, max(0.0, now - last_ok), ttl))
        return out

    def take_hints(self, message: Message) -> list[Hint]:
        if not self._hints_enabled:
            return []
        return self.hints.merge(message, self._clock.monotonic(), self._peers)

    def set_hints_enabled(self, enabled: bool) -> None:
        self._hints_enabled = enabled
        if not enabled:
            self.hints.clear()
