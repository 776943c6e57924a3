"""The records of one logical request of :class:`lab.balancer.client.BalancedClient`.

Why a module of its own: the request loop, the hedge race (:mod:`lab.balancer.hedging`)
and the callers all speak of attempts in these terms: what is still running and what it
was allotted, how each attempt ended, which answer won; none of it does I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.balancer.policies import Pick
from lab.errors import LabError, RpcError, RpcTimeout
from lab.history import Attempt, Outcome


@dataclass(frozen=True, slots=True)
class Result:
    """A successful request: the worker's answer and every attempt it took."""

    value: Any
    attempts: tuple[Attempt, ...]


@dataclass(slots=True)
class Running:
    """An attempt of the request loop still waiting for its answer."""

    pick: Pick
    start: float
    allotted: float  # the attempt timeout it was given
    loop_start: float  # the event loop's own clock at the start (see LATE_TIMEOUT_S)
    judged: bool = False  # the policy already had its verdict (a timeout)


@dataclass(frozen=True, slots=True)
class Won:
    """The answer that ended a request (the first of any of its attempts)."""

    value: Any


@dataclass(slots=True)
class RequestState:
    """One logical request's state: its attempts, so far and still running."""

    deadline: float
    attempts: list[Attempt] = field(default_factory=list)
    tried: set[str] = field(default_factory=set)
    last: RpcError | None = None
    running: dict[asyncio.Task[Any], Running] = field(default_factory=dict)
    won: Won | None = None

    @property
    def started(self) -> bool:
        return bool(self.attempts or self.running)


@dataclass(frozen=True, slots=True)
class Done:
    """An attempt run to its end as a task of its own (a probe aside or a hedge race's)."""

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
