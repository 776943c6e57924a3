"""The hedge race of :class:`lab.balancer.client.BalancedClient` (off by default).

When an attempt has not answered after the policy's hedge delay (a high quantile of
recent latencies), a second attempt goes to another peer; the first success wins. The
loser is recorded as cancelled but not cut short: it runs on aside to its own attempt
timeout and its peer is judged on how it really ended. Cancelled, it gave its peer no
verdict, so with hedging on a blackholed peer kept winning draws and its breaker never
opened. Why a module of its own: the race has its own bookkeeping (which task went to
which peer, when, as a hedge or not) and the request loop only needs its results.
"""

# ruff: noqa: ASYNC109  (the attempt timeout is the policy's, passed explicitly as the client's)
from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from lab.balancer.policies import Pick, Policy
from lab.balancer.request_state import Done
from lab.clock import Clock
from lab.errors import NoPeerAvailable
from lab.history import Attempt, Outcome

Launch = Callable[[Pick, float, bool], Coroutine[Any, Any, Done]]
"""Runs one attempt: (pick, its timeout, whether it is the hedge) to how it ended."""


async def hedged(
    policy: Policy,
    clock: Clock,
    attempt: Launch,
    keep: Callable[[asyncio.Task[Done]], None],
    pick: Pick,
    timeout: float,
    delay: float,
    tried: set[str],
    deadline: float,
) -> list[Done]:
    """The attempt on ``pick``, plus a hedge on another peer if it is slow to answer.

    ``keep`` holds a loser's task until it ends (its outcome goes to the policy).
    """
    started: dict[asyncio.Task[Done], tuple[str, float, bool]] = {}

    def launch(p: Pick, t: float, hedge: bool) -> asyncio.Task[Done]:
        task = asyncio.create_task(attempt(p, t, hedge))
        started[task] = (p.peer, clock.monotonic(), hedge)
        return task

    primary = launch(pick, timeout, False)
    results: list[Done] = []
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
            keep(task)
            peer, begun, hedge = started[task]
            results.append(
                Done(Attempt(peer, begun, clock.monotonic(), Outcome.CANCELLED, None, hedge))
            )
