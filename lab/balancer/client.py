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
  another peer; the first success wins. The request records the loser as cancelled, but
  the loser is not cut short: it runs on aside to its own attempt timeout and its peer
  is judged on how it really ended. Cancelled, it gave its peer no verdict, so with
  hedging on a blackholed peer kept winning draws and its breaker never opened;
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
  (:meth:`BalancedClient._starved`);
- attempts that overlapped a stall of the client itself (``stalls``, the event-loop lag
  monitor of :mod:`lab.looplag`) give their peer no verdict: a frozen client sees every
  attempt in flight time out, and that is not the peers' doing;
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
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lab.balancer.breaker import Transition
from lab.balancer.policies import Pick, Policy, PolicyEvent
from lab.balancer.stats import PeerStats
from lab.clock import Clock
from lab.errors import LabError, NoPeerAvailable, RpcError, RpcTimeout
from lab.history import Attempt, ClientEvent, Outcome
from lab.looplag import StallOracle

STARVED_S = 1.0
"""After a stall of the client's own loop, how long it behaves like the plain client."""

LATE_TIMEOUT_S = 0.05
"""A timeout noticed this much after it was due was late because the client was busy.

The loop-lag monitor's stall threshold: a client working off a burst (the backlog of a
freeze) notices its timers late without one 20 ms tick being 50 ms late, and a timeout
noticed late says nothing about whether the peer had answered in time. Measured on the
event loop's own clock, so a fake lab clock's jumps are never taken for lateness.
"""


def _loop_now() -> float:
    return asyncio.get_running_loop().time()


def _noticed_late(loop_start: float, allotted: float) -> bool:
    """Was a timeout of ``allotted`` seconds from ``loop_start`` noticed late?"""
    return _loop_now() - loop_start - allotted >= LATE_TIMEOUT_S


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


@dataclass(slots=True)
class _Running:
    """An attempt of the request loop still waiting for its answer."""

    pick: Pick
    start: float
    allotted: float  # the attempt timeout it was given
    loop_start: float  # the event loop's own clock at the start (see LATE_TIMEOUT_S)
    judged: bool = False  # the policy already had its verdict (a timeout)


@dataclass(frozen=True, slots=True)
class _Won:
    value: Any


@dataclass(slots=True)
class _Request:
    """One logical request's state: its attempts, so far and still running."""

    deadline: float
    attempts: list[Attempt] = field(default_factory=list)
    tried: set[str] = field(default_factory=set)
    last: RpcError | None = None
    running: dict[asyncio.Task[Any], _Running] = field(default_factory=dict)
    won: _Won | None = None

    @property
    def started(self) -> bool:
        return bool(self.attempts or self.running)


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
        self._probes: set[asyncio.Task[_Done]] = set()  # held so they are not collected
        self._stalls = stalls
        self._linger = linger
        self._lingering: set[asyncio.Task[Any]] = set()
        self.voided = 0  # attempts whose verdict a stall of the client voided
        policy.subscribe(self._transition)
        policy.subscribe_events(self._policy_event)

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
        r = _Request(deadline)
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
                inline_probe: asyncio.Task[_Done] | None = None
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
                    if self._starved():
                        t_attempt = remaining  # see _starved
                    delay = policy.hedge_delay()
                    if delay is None or delay >= t_attempt:
                        if await self._try(r, pick, service, payload, t_attempt) is not None:
                            break
                        continue
                    results = await self._hedged(
                        pick, service, payload, t_attempt, delay, r.tried, deadline
                    )
                for done in sorted(results, key=lambda d: d.attempt.start):
                    r.attempts.append(done.attempt)
                    r.tried.add(done.attempt.peer)
                ok = [d for d in results if d.error is None and d.attempt.outcome is Outcome.OK]
                if ok:
                    r.won = _Won(ok[0].value)
                    break
                errors = [d.error for d in results if d.error is not None]
                if errors:
                    r.last = errors[-1]
        finally:
            await self._drop(r)
        assert r.won is not None  # every way out of the loop but a raise has a winner
        return Result(r.won.value, tuple(sorted(r.attempts, key=lambda a: a.start)))

    async def _try(
        self, r: _Request, pick: Pick, service: str, payload: Any, t_attempt: float
    ) -> _Won | None:
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
        r.running[task] = _Running(pick, start, t_attempt, _loop_now())
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
            if not done and not extended and now < r.deadline and self._stalled(start, now):
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
            late = _noticed_late(r.running[task].loop_start, t_attempt)
            self._judge(pick, start, now, Outcome.TIMEOUT, t_attempt, late=late)
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

    def _ended(self, r: _Request, task: asyncio.Task[Any]) -> _Won | None:
        """Record a finished attempt (judge it unless already judged); its Result if it won."""
        run = r.running.pop(task)
        end = self._clock.monotonic()
        exc = task.exception()
        if exc is None:
            if not run.judged:
                self._judge(run.pick, run.start, end, Outcome.OK)
            r.attempts.append(Attempt(run.pick.peer, run.start, end, Outcome.OK, None, False))
            r.won = _Won(task.result())
            return r.won
        if not isinstance(exc, RpcError):
            if not run.judged:
                self.policy.abandoned(run.pick)
            raise exc  # a transport bug: not an outcome of the peer's
        outcome = outcome_of(exc)
        if not run.judged:
            late = _noticed_late(run.loop_start, run.allotted)
            self._judge(run.pick, run.start, end, outcome, run.allotted, late=late)
            r.last = exc
        elif r.last is None:
            r.last = exc
        text = str(exc) or type(exc).__name__
        r.attempts.append(Attempt(run.pick.peer, run.start, end, outcome, text, False))
        return None

    async def _settle(self, r: _Request, error: LabError | None) -> _Won:
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

    async def _drop(self, r: _Request) -> None:
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
            self._on_event(ClientEvent(self.name, self.policy.name, a.end, "probe", a.peer, detail))

        task.add_done_callback(done)
        return task

    def _keep(self, task: asyncio.Task[_Done]) -> None:
        """Hold a background attempt until it ends (its outcome went to the policy)."""
        self._probes.add(task)

        def done(t: asyncio.Task[_Done]) -> None:
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
    ) -> _Done:
        policy, clock = self.policy, self._clock
        start, loop_start = clock.monotonic(), _loop_now()
        policy.started(pick)
        try:
            value = await self._call(pick.peer, service, payload, timeout)
        except RpcError as exc:
            end = clock.monotonic()
            outcome = outcome_of(exc)
            late = _noticed_late(loop_start, timeout)
            self._judge(pick, start, end, outcome, timeout, late=late)
            text = str(exc) or type(exc).__name__
            return _Done(Attempt(pick.peer, start, end, outcome, text, hedge), error=exc)
        except BaseException:
            policy.abandoned(pick)  # cancelled (shutdown) or a transport bug
            raise
        end = clock.monotonic()
        self._judge(pick, start, end, Outcome.OK)
        return _Done(Attempt(pick.peer, start, end, Outcome.OK, None, hedge), value=value)

    def _starved(self) -> bool:
        """Did the client itself stall in the last second (``STARVED_S``)?

        Then it behaves as the plain client does: one attempt, waiting up to the
        deadline, no retry after a timeout. Its own timers are late, so an attempt timeout measures
        the client; and a retry is more work for a process that cannot keep up already
        (on a starved host, retries and timeouts spent on the client's own lag fed a
        spiral that took its availability below random's).
        """
        return self._stalls is not None and self._stalls.stalled_within(STARVED_S)

    def _no_retry_now(self, r: _Request) -> bool:
        """Starved, and the last attempt timed out: that timeout is likely our own lag.

        An error (refused, a reply error) is the peer's answer whatever our lag, and
        retrying it costs little: those retries stay.
        """
        return isinstance(r.last, RpcTimeout) and self._starved()

    def _stalled(self, start: float, end: float) -> bool:
        return self._stalls is not None and self._stalls.overlapped(start, end)

    def _cut_short(self, pick: Pick, allotted: float) -> bool:
        """Right after a stall, was this attempt given less than the peer's own timeout?

        Requests that fell due while the client was frozen go out on waking with what
        is left of their deadlines, some with a few ms: their timeouts measure how late
        the client was, not the peer (a burst of them opened a healthy peer's breaker).
        A timeout shorter than the peer's ordinary one is a verdict only when the
        client has not stalled lately (a user's short deadline still ejects a dead peer).
        """
        return self._starved() and allotted < self.policy.attempt_timeout(pick.peer, math.inf)

    def _judge(
        self,
        pick: Pick,
        start: float,
        end: float,
        outcome: Outcome,
        allotted: float = math.inf,
        *,
        late: bool = False,
    ) -> None:
        """Tell the policy how the attempt ended, net of the client's own stalls.

        A timeout that overlapped a stall gives no verdict (the client, not the peer,
        was late), nor one noticed ``LATE_TIMEOUT_S`` after it was due, nor one cut
        short by the request's deadline right after a stall (:meth:`_cut_short`); an
        answer's latency is counted without the stalled time;
        an error (refused, a reply error) is what it is, stall or not.
        """
        rtt = end - start
        if self._stalls is not None and outcome is not Outcome.ERROR:
            stalled = self._stalls.overlap(start, end)
            if outcome is Outcome.TIMEOUT and (
                stalled > 0 or late or self._cut_short(pick, allotted)
            ):
                self.voided += 1
                self.policy.abandoned(pick)
                return
            rtt = max(0.0, rtt - stalled)
        self.policy.finished(pick, rtt, outcome)

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
                # Not cancelled: it runs on to its own timeout and its peer gets a verdict.
                self._keep(task)
                peer, begun, hedge = started[task]
                results.append(
                    _Done(Attempt(peer, begun, clock.monotonic(), Outcome.CANCELLED, None, hedge))
                )
