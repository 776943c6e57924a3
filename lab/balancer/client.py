"""The balanced client: one logical request = attempts chosen by a policy, in a deadline.

The client owns the request loop; the policy owns every judgement (which peer, how long
to wait, may we retry). Rules of the loop:

- a request has one deadline (``timeout``); each attempt's timeout comes from the
  policy and is cut to the time left;
- a retry goes only to a peer this request has not tried, and only if the policy
  retries at all and its budget allows; when none is left the request fails with the
  last attempt's error (so a timeout stays a timeout);
- optional hedging (off by default): when an attempt has not answered after the
  policy's hedge delay (a high quantile of recent latencies), a second attempt goes to
  another peer; the first success wins and the other is cancelled and recorded as such;
- every attempt is recorded (:class:`lab.history.Attempt`) and comes back with the
  result or on the raised error as ``.attempts``;
- a half-open breaker's probe goes *aside* (``probe_aside``, on by default): the probe
  runs in the background, its outcome judged by the breaker as usual, while the user's
  request is sent to another peer at once. A probe of a still-broken peer then costs
  the user nothing: sent in line, each probe of a +300 ms worker was a request held for
  the 100 ms attempt timeout plus a retry, ~9 of them per 12 s of fault, enough to make
  them the p99. Only when no other peer is available does the request wait for the
  probe. Probes aside are reported as ``probe`` events, not as the request's attempts.

Discovery feeds :meth:`BalancedClient.set_peers`. A peer missing from lookups is dropped
only once it has been missing for ``grace_s`` (a grape that briefly lost an announce
must not cost us a healthy worker), and an empty list changes nothing (stale peers beat
no peers when every grape is down).
"""

# ruff: noqa: ASYNC109  (the contract passes per-request and per-attempt timeouts explicitly)
from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lab.balancer.breaker import Transition
from lab.balancer.policies import Pick, Policy
from lab.clock import Clock
from lab.errors import LabError, NoPeerAvailable, RpcError, RpcTimeout
from lab.history import Attempt, ClientEvent, Outcome
from lab.loadgen.metrics import PeerStats


class Transport(Protocol):
    """What the client needs from the RPC transport (``lab.grenache.transport``)."""

    async def request(
        self, peer: str, key: str, payload: Any, *, timeout: float, compress: bool = False
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class Result:
    """A successful request: the worker's answer and every attempt it took."""

    value: Any
    attempts: tuple[Attempt, ...]


@dataclass(frozen=True, slots=True)
class _Done:
    attempt: Attempt
    value: Any = None
    error: RpcError | None = None


def outcome_of(exc: BaseException) -> Outcome:
    """How an attempt that raised ``exc`` ended."""
    return Outcome.TIMEOUT if isinstance(exc, RpcTimeout) else Outcome.ERROR


def with_attempts(exc: LabError, attempts: Sequence[Attempt]) -> LabError:
    """``exc`` carrying ``attempts`` (read back with ``getattr(exc, "attempts", ())``)."""
    exc.attempts = tuple(attempts)  # type: ignore[attr-defined]
    return exc


class BalancedClient:
    """Requests through ``policy`` over ``transport`` (see the module docstring)."""

    def __init__(
        self,
        policy: Policy,
        transport: Transport,
        *,
        clock: Clock,
        on_event: Callable[[ClientEvent], None] | None = None,
        rng: random.Random | None = None,
        name: str = "client",
        grace_s: float = 10.0,
        margin_s: float = 0.25,
        probe_aside: bool = True,
    ) -> None:
        self.policy = policy
        self._transport = transport
        self._clock = clock
        self._on_event = on_event
        self._rng = rng or random.Random(0)
        self.name = name
        self._grace = grace_s
        self._margin = margin_s
        self._seen: dict[str, float] = {}
        self._probe_aside = probe_aside
        self._probes: set[asyncio.Task[_Done]] = set()  # held so they are not collected
        policy.subscribe(self._transition)

    # -- peers ---------------------------------------------------------------------------

    def set_peers(self, peers: Sequence[str]) -> None:
        """Discovery's latest answer; see the module docstring for the grace rules."""
        if not peers:
            return
        now = self._clock.monotonic()
        for peer in peers:
            self._seen[peer] = now
        for peer in [p for p, t in self._seen.items() if now - t > self._grace]:
            del self._seen[peer]
        self.policy.set_peers(sorted(self._seen))

    def peers(self) -> list[PeerStats]:
        return self.policy.stats()

    def _transition(self, t: Transition) -> None:
        if self._on_event is not None:
            self._on_event(
                ClientEvent(self.name, self.policy.name, t.t, "breaker", t.peer, t.detail())
            )

    # -- requests ------------------------------------------------------------------------

    async def request(self, service: str, payload: Any, *, timeout: float) -> Result:
        """One logical request within ``timeout`` seconds; raises a LabError with attempts."""
        policy, clock = self.policy, self._clock
        deadline = clock.monotonic() + timeout
        policy.request_started()
        attempts: list[Attempt] = []
        tried: set[str] = set()
        last: RpcError | None = None
        while True:
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                raise with_attempts(last or RpcTimeout(f"deadline {timeout:g}s ran out"), attempts)
            if attempts and not policy.retries:
                assert last is not None
                raise with_attempts(last, attempts)
            try:
                pick = policy.choose(tried)
            except NoPeerAvailable as exc:
                raise with_attempts(last or exc, attempts) from None
            inline_probe: asyncio.Task[_Done] | None = None
            if self._probe_aside and pick.permit is not None and pick.permit.probe:
                probe = self._probe(pick, service, payload, remaining)
                tried.add(pick.peer)
                try:
                    pick = policy.choose(tried)
                except NoPeerAvailable:
                    inline_probe = probe  # nobody else to ask: the probe is the attempt
            if inline_probe is not None:
                results = [await asyncio.shield(inline_probe)]
            elif attempts and not policy.try_retry():
                policy.release(pick)
                assert last is not None
                raise with_attempts(last, attempts)
            else:
                remaining = deadline - clock.monotonic()
                t_attempt = policy.attempt_timeout(pick.peer, remaining)
                delay = policy.hedge_delay()
                if delay is None or delay >= t_attempt:
                    results = [
                        await self._attempt(pick, service, payload, t_attempt, hedge=False)
                    ]
                else:
                    results = await self._hedged(
                        pick, service, payload, t_attempt, delay, tried, deadline
                    )
            for done in sorted(results, key=lambda d: d.attempt.start):
                attempts.append(done.attempt)
                tried.add(done.attempt.peer)
            for done in results:
                if done.error is None and done.attempt.outcome is Outcome.OK:
                    return Result(done.value, tuple(attempts))
            errors = [d.error for d in results if d.error is not None]
            if errors:
                last = errors[-1]

    def _probe(
        self, pick: Pick, service: str, payload: Any, remaining: float
    ) -> asyncio.Task[_Done]:
        """Start a half-open probe in the background; report its outcome as an event."""
        timeout = self.policy.attempt_timeout(pick.peer, remaining)
        task = asyncio.create_task(self._attempt(pick, service, payload, timeout, hedge=False))
        self._probes.add(task)

        def done(t: asyncio.Task[_Done]) -> None:
            self._probes.discard(t)
            if t.cancelled() or t.exception() is not None or self._on_event is None:
                return
            a = t.result().attempt
            detail = {"outcome": a.outcome.value, "latency_s": round(a.end - a.start, 6)}
            self._on_event(
                ClientEvent(self.name, self.policy.name, a.end, "probe", a.peer, detail)
            )

        task.add_done_callback(done)
        return task

    async def _call(self, peer: str, service: str, payload: Any, timeout: float) -> Any:
        """The transport's request, with a safety net should it overrun its own timeout."""
        try:
            return await asyncio.wait_for(
                self._transport.request(peer, service, payload, timeout=timeout),
                timeout + self._margin,
            )
        except RpcError:
            raise
        except TimeoutError:
            raise RpcTimeout(f"{peer}: no answer within {timeout:.3f}s") from None

    async def _attempt(
        self, pick: Pick, service: str, payload: Any, timeout: float, *, hedge: bool
    ) -> _Done:
        policy, clock = self.policy, self._clock
        start = clock.monotonic()
        policy.started(pick)
        try:
            value = await self._call(pick.peer, service, payload, timeout)
        except RpcError as exc:
            end = clock.monotonic()
            outcome = outcome_of(exc)
            policy.finished(pick, end - start, outcome)
            text = str(exc) or type(exc).__name__
            return _Done(Attempt(pick.peer, start, end, outcome, text, hedge), error=exc)
        except BaseException:
            policy.abandoned(pick)  # cancelled (hedge lost, shutdown) or a transport bug
            raise
        end = clock.monotonic()
        policy.finished(pick, end - start, Outcome.OK)
        return _Done(Attempt(pick.peer, start, end, Outcome.OK, None, hedge), value=value)

    async def _hedged(
        self,
        pick: Pick,
        service: str,
        payload: Any,
        timeout: float,
        delay: float,
        tried: set[str],
        deadline: float,
    ) -> list[_Done]:
        """The attempt on ``pick``, plus a hedge on another peer if it is slow to answer."""
        policy, clock = self.policy, self._clock
        started: dict[asyncio.Task[_Done], tuple[str, float, bool]] = {}

        def launch(p: Pick, t: float, hedge: bool) -> asyncio.Task[_Done]:
            task = asyncio.create_task(self._attempt(p, service, payload, t, hedge=hedge))
            started[task] = (p.peer, clock.monotonic(), hedge)
            return task

        primary = launch(pick, timeout, False)
        results: list[_Done] = []
        try:
            done, _ = await asyncio.wait({primary}, timeout=delay)
            if done:
                return [primary.result()]
            second: Pick | None
            try:
                second = policy.choose(tried | {pick.peer})
            except NoPeerAvailable:
                second = None
            if second is not None and not policy.try_retry():
                policy.release(second)
                second = None
            if second is None:
                return [await primary]
            remaining = deadline - clock.monotonic()
            launch(second, policy.attempt_timeout(second.peer, remaining), True)
            pending = set(started)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                finished = [t.result() for t in done]
                results += finished
                if any(d.error is None for d in finished):
                    break
            return results
        finally:
            losers = [t for t in started if not t.done()]
            for task in losers:
                task.cancel()
            for task in losers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                peer, begun, hedge = started[task]
                results.append(
                    _Done(Attempt(peer, begun, clock.monotonic(), Outcome.CANCELLED, None, hedge))
                )
