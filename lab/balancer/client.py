"""The balanced client: one logical request = attempts chosen by a policy, in a deadline.

The client owns the request loop; the policy owns every judgement (which peer, how long
to wait, may we retry). Rules of the loop:

- a request has one deadline (``timeout``); each attempt's timeout comes from the
  policy and is cut to the time left;
- a retry goes only to a peer this request has not tried, and only if the policy
  retries at all and its budget allows; when none is left the request fails with the
  last attempt's error (so a timeout stays a timeout);
- optional hedging (off by default): a second attempt to another peer when the first is
  slow to answer, the first success winning (:mod:`lab.balancer.hedging`);
- an attempt that times out is judged (a timeout, for the breaker) but not abandoned
  (``linger``, on by default) while the policy still thinks the peer worth waiting for
  (:meth:`Policy.worth_waiting`: for the adaptive policy, its breaker is still closed):
  it keeps waiting for its answer until the deadline while the retry goes out, and the
  first answer of any attempt wins. A peer that is merely
  slow (every peer slowed at once, the client's own stall) then still answers the user
  in its time instead of adding a retry's latency to it, and a request that can retry
  no more waits for the answers still coming, as the plain client does, instead of
  failing at the attempt timeout. Fake-clock tests turn it off: a scripted transport
  that moves time by itself cannot run two attempts at once;
- for a second after a stall of its own loop, the client behaves like the plain one:
  one attempt, up to the deadline, no retry after a timeout (errors are still retried)
  (:meth:`lab.balancer.stall_judge.StallJudge.starved`);
- attempts that overlapped a stall of the client itself (``stalls``, the event-loop lag
  monitor of :mod:`lab.looplag`) give their peer no verdict: a frozen client sees every
  attempt in flight time out, and that is not the peers' doing
  (:class:`lab.balancer.stall_judge.StallJudge`);
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
import random
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from lab.balancer.breaker import Transition
from lab.balancer.hedging import hedged
from lab.balancer.policies import Pick, Policy, PolicyEvent
from lab.balancer.request_state import (
    Done,
    RequestState,
    Result,
    Running,
    Won,
    outcome_of,
    with_attempts,
)
from lab.balancer.stall_judge import StallJudge, loop_now, noticed_late
from lab.balancer.stats import PeerStats
from lab.clock import Clock
from lab.errors import LabError, NoPeerAvailable, RpcError, RpcTimeout
from lab.history import Attempt, ClientEvent, Outcome
from lab.looplag import StallOracle


class Transport(Protocol):
    """What the client needs from the RPC transport (``lab.grenache.transport``)."""

    async def request(
        self, peer: str, key: str, payload: Any, *, timeout: float, compress: bool = False
    ) -> Any: ...


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
        stalls: StallOracle | None = None,
        linger: bool = True,
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
        self._probes: set[asyncio.Task[Done]] = set()  # held so they are not collected
        self._verdicts = StallJudge(policy, stalls)
        self._linger = linger
        self._lingering: set[asyncio.Task[Any]] = set()
        policy.subscribe(self._transition)
        policy.subscribe_events(self._policy_event)

    @property
    def voided(self) -> int:
        """Attempts whose verdict a stall of the client voided."""
        return self._verdicts.voided

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

    def _policy_event(self, e: PolicyEvent) -> None:
        if self._on_event is not None:
            self._on_event(ClientEvent(self.name, self.policy.name, e.t, e.kind, e.peer, e.detail))

    # -- requests ------------------------------------------------------------------------

    async def request(self, service: str, payload: Any, *, timeout: float) -> Result:
        """One logical request within ``timeout`` seconds; raises a LabError with attempts."""
        policy, clock = self.policy, self._clock
        deadline = clock.monotonic() + timeout
        policy.request_started()
        r = RequestState(deadline)
        try:
            while True:
                remaining = deadline - clock.monotonic()
                if remaining <= 0:
                    await self._settle(r, r.last or RpcTimeout(f"deadline {timeout:g}s ran out"))
                    break
                if r.started and not policy.retries:
                    await self._settle(r, r.last)
                    break
                try:
                    pick = policy.choose(r.tried)
                except NoPeerAvailable as exc:
                    await self._settle(r, r.last or exc)
                    break
                inline_probe: asyncio.Task[Done] | None = None
                if self._probe_aside and pick.permit is not None and pick.permit.probe:
                    probe = self._probe(pick, service, payload, remaining)
                    r.tried.add(pick.peer)
                    try:
                        pick = policy.choose(r.tried)
                    except NoPeerAvailable:
                        inline_probe = probe  # nobody else to ask: the probe is the attempt
                if inline_probe is not None:
                    results = [await asyncio.shield(inline_probe)]
                elif r.started and (self._no_retry_now(r) or not policy.try_retry()):
                    policy.release(pick)
                    await self._settle(r, r.last)
                    break
                else:
                    remaining = deadline - clock.monotonic()
                    t_attempt = policy.attempt_timeout(pick.peer, remaining)
                    if self._verdicts.starved():
                        t_attempt = remaining  # see StallJudge.starved
                    delay = policy.hedge_delay()
                    if delay is None or delay >= t_attempt:
                        if await self._try(r, pick, service, payload, t_attempt) is not None:
                            break
                        continue
                    results = await hedged(
                        policy,
                        clock,
                        lambda p, t, h: self._attempt(p, service, payload, t, hedge=h),
                        self._keep,
                        pick,
                        t_attempt,
                        delay,
                        r.tried,
                        deadline,
                    )
                for done in sorted(results, key=lambda d: d.attempt.start):
                    r.attempts.append(done.attempt)
                    r.tried.add(done.attempt.peer)
                ok = [d for d in results if d.error is None and d.attempt.outcome is Outcome.OK]
                if ok:
                    r.won = Won(ok[0].value)
                    break
                errors = [d.error for d in results if d.error is not None]
                if errors:
                    r.last = errors[-1]
        finally:
            await self._drop(r)
        assert r.won is not None  # every way out of the loop but a raise has a winner
        return Result(r.won.value, tuple(sorted(r.attempts, key=lambda a: a.start)))

    async def _try(
        self, r: RequestState, pick: Pick, service: str, payload: Any, t_attempt: float
    ) -> Won | None:
        """One attempt, judged after ``t_attempt``; it keeps waiting for its answer after.

        Returns the result when this attempt or an earlier one still waiting answers in
        ``t_attempt``; otherwise None, with the attempt judged (a timeout) and left
        running until the deadline alongside the retry. A peer that is slow, not dead,
        then still answers the user: the first answer of any attempt wins, so a timeout
        only ever adds a chance, never throws away the one already taken.
        """
        clock = self._clock
        start = clock.monotonic()
        self.policy.started(pick)
        hold = max(t_attempt, r.deadline - start) if self._linger else t_attempt
        task = asyncio.create_task(self._call(pick.peer, service, payload, hold))
        r.running[task] = Running(pick, start, t_attempt, loop_now())
        r.tried.add(pick.peer)
        until = start + t_attempt
        extended = False
        while True:
            # Without linger the transport's own timeout ends the attempt: no second
            # timer that could disagree with it (a fake clock is not the loop's clock).
            done, _ = await asyncio.wait(
                set(r.running),
                timeout=max(0.0, until - clock.monotonic()) if self._linger else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            now = clock.monotonic()
            if (
                not done
                and not extended
                and now < r.deadline
                and self._verdicts.stalled(start, now)
            ):
                # The client itself stalled: the answer may be sitting unread. Neither a
                # verdict nor a retry yet (retries spent on our own lag fed a spiral on a
                # starved host): once, another attempt timeout of the client's own time.
                extended = True
                until = now + t_attempt
                continue
            if not done:
                break
            for t in done:
                won = self._ended(r, t)
                if won is not None:
                    return won
            if task not in r.running:
                return None  # this attempt failed (an error, not a timeout): retry now
        run = r.running[task]
        if not run.judged:  # still waiting: the verdict is a timeout
            run.judged = True
            now = clock.monotonic()
            late = noticed_late(r.running[task].loop_start, t_attempt)
            self._verdicts.judge(pick, start, now, Outcome.TIMEOUT, t_attempt, late=late)
            r.last = RpcTimeout(f"{pick.peer}: no answer within {t_attempt:.3f}s")
            if not self.policy.worth_waiting(pick.peer):
                # A peer the policy now holds broken: waiting on costs a connection
                # per request to it (on a starved host that fed a spiral), for nothing.
                del r.running[task]
                task.cancel()
                self._keep_cancelled(task)
                text = str(r.last)
                r.attempts.append(Attempt(pick.peer, start, now, Outcome.TIMEOUT, text, False))
        return None

    def _keep_cancelled(self, task: asyncio.Task[Any]) -> None:
        """Hold a cancelled call until it has unwound (nothing to judge: done already)."""
        self._lingering.add(task)
        task.add_done_callback(self._lingering.discard)

    def _ended(self, r: RequestState, task: asyncio.Task[Any]) -> Won | None:
        """Record a finished attempt (judge it unless already judged); its Result if it won."""
        run = r.running.pop(task)
        end = self._clock.monotonic()
        exc = task.exception()
        if exc is None:
            if not run.judged:
                self._verdicts.judge(run.pick, run.start, end, Outcome.OK)
            r.attempts.append(Attempt(run.pick.peer, run.start, end, Outcome.OK, None, False))
            r.won = Won(task.result())
            return r.won
        if not isinstance(exc, RpcError):
            if not run.judged:
                self.policy.abandoned(run.pick)
            raise exc  # a transport bug: not an outcome of the peer's
        outcome = outcome_of(exc)
        if not run.judged:
            late = noticed_late(run.loop_start, run.allotted)
            self._verdicts.judge(run.pick, run.start, end, outcome, run.allotted, late=late)
            r.last = exc
        elif r.last is None:
            r.last = exc
        text = str(exc) or type(exc).__name__
        r.attempts.append(Attempt(run.pick.peer, run.start, end, outcome, text, False))
        return None

    async def _settle(self, r: RequestState, error: LabError | None) -> Won:
        """No more attempts: wait for those still running (the first answer wins) or fail."""
        while r.running:
            done, _ = await asyncio.wait(set(r.running), return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                won = self._ended(r, t)
                if won is not None:
                    return won
        error = r.last or error
        assert error is not None
        r.attempts.sort(key=lambda a: a.start)
        raise with_attempts(error, r.attempts)

    async def _drop(self, r: RequestState) -> None:
        """Cancel attempts still running once the request is decided (or cancelled)."""
        if not r.running:
            return
        for task in r.running:
            task.cancel()
        await asyncio.gather(*r.running, return_exceptions=True)
        end = self._clock.monotonic()
        for run in r.running.values():
            if not run.judged:
                self.policy.abandoned(run.pick)
            r.attempts.append(
                Attempt(run.pick.peer, run.start, end, Outcome.CANCELLED, None, False)
            )
        r.running.clear()

    def _probe(
        self, pick: Pick, service: str, payload: Any, remaining: float
    ) -> asyncio.Task[Done]:
        """Start a half-open probe in the background; report its outcome as an event."""
        timeout = self.policy.attempt_timeout(pick.peer, remaining)
        task = asyncio.create_task(self._attempt(pick, service, payload, timeout, hedge=False))
        self._probes.add(task)

        def done(t: asyncio.Task[Done]) -> None:
            self._probes.discard(t)
            if t.cancelled() or t.exception() is not None or self._on_event is None:
                return
            a = t.result().attempt
            detail = {"outcome": a.outcome.value, "latency_s": round(a.end - a.start, 6)}
            self._on_event(ClientEvent(self.name, self.policy.name, a.end, "probe", a.peer, detail))

        task.add_done_callback(done)
        return task

    def _keep(self, task: asyncio.Task[Done]) -> None:
        """Hold a background attempt until it ends (its outcome went to the policy)."""
        self._probes.add(task)

        def done(t: asyncio.Task[Done]) -> None:
            self._probes.discard(t)
            if not t.cancelled():
                t.exception()  # retrieved: a transport bug was already logged by its raiser

        task.add_done_callback(done)

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
    ) -> Done:
        policy, clock = self.policy, self._clock
        start, loop_start = clock.monotonic(), loop_now()
        policy.started(pick)
        try:
            value = await self._call(pick.peer, service, payload, timeout)
        except RpcError as exc:
            end = clock.monotonic()
            outcome = outcome_of(exc)
            late = noticed_late(loop_start, timeout)
            self._verdicts.judge(pick, start, end, outcome, timeout, late=late)
            text = str(exc) or type(exc).__name__
            return Done(Attempt(pick.peer, start, end, outcome, text, hedge), error=exc)
        except BaseException:
            policy.abandoned(pick)  # cancelled (shutdown) or a transport bug
            raise
        end = clock.monotonic()
        self._verdicts.judge(pick, start, end, Outcome.OK)
        return Done(Attempt(pick.peer, start, end, Outcome.OK, None, hedge), value=value)

    def _no_retry_now(self, r: RequestState) -> bool:
        """Starved, and the last attempt timed out: that timeout is likely our own lag.

        An error (refused, a reply error) is the peer's answer whatever our lag, and
        retrying it costs little: those retries stay.
        """
        return isinstance(r.last, RpcTimeout) and self._verdicts.starved()
