"""The guard around a learner's policy: a crash, a hang or a wrong answer stops it cleanly.

A policy from a file (:mod:`lab.balancer.policy_file`) runs on the client's event loop,
so a bug in it is a bug in the client. The guard wraps every method of the
:class:`~lab.balancer.policies.Policy` interface on the instance and turns three kinds of
failure into one :class:`~lab.balancer.policy_file.PolicyFault` naming the learner's
``file:line`` with the traceback:

- an exception (other than ``NoPeerAvailable`` from ``choose``, which is an answer);
- a call that takes longer than ``limit_s`` (a *hang*): on the main thread a one-shot
  ``SIGALRM`` interrupts it where it is, so even ``while True: pass`` ends, and the
  traceback shows the line it was stuck on; elsewhere the call is timed when it returns;
- ``choose`` returning something other than a :class:`Pick` of a peer the client gave
  it and did not exclude.

The first fault *trips* the guard: ``on_fault`` is told once, ``choose`` raises the same
fault from then on (so no request goes through a broken policy), and every other method
falls back to the base class's, so ``/peers`` and the metrics keep answering.
"""

from __future__ import annotations

import functools
import signal
import threading
import time
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from pathlib import Path
from types import FrameType
from typing import Any

from lab.balancer.policies import Pick, Policy
from lab.balancer.policy_file import PolicyFault, fault_from
from lab.errors import NoPeerAvailable

PICK_LIMIT_S = 0.1
"""Longest a policy method may run. Every built-in pick takes microseconds; 100 ms is a
thousand times that and still short enough that a hang costs a run only one request."""

GUARDED: tuple[str, ...] = (
    "set_peers",
    "choose",
    "attempt_timeout",
    "request_started",
    "try_retry",
    "worth_waiting",
    "hedge_delay",
    "release",
    "started",
    "finished",
    "abandoned",
    "stats",
    "set_faulty",
    "verdicts",
    "take_hints",
    "set_hints_enabled",
)
"""The interface methods the client calls (see :class:`Policy`)."""

FaultListener = Callable[[PolicyFault], None]


class _Overran(BaseException):
    """Raised into a method that ran past its limit; a BaseException, so a learner's
    ``except Exception`` cannot swallow it."""


class _Alarm:
    """A one-shot SIGALRM around one guarded call, leaving the process's own alarm as found.

    The handler and timer in place before the call (a test runner's timeout uses SIGALRM
    too) are put back after it, the timer less the time the call took.
    """

    def __init__(self) -> None:
        self.armed = False

    @staticmethod
    def usable() -> bool:
        """Signals are handled on the main thread only."""
        return threading.current_thread() is threading.main_thread()

    def arm(self, seconds: float) -> tuple[Any, tuple[float, float]]:
        previous = signal.signal(signal.SIGALRM, self._on_alarm)
        self.armed = True
        return previous, signal.setitimer(signal.ITIMER_REAL, seconds)

    def disarm(self, saved: tuple[Any, tuple[float, float]], took: float) -> None:
        self.armed = False  # an alarm landing now must not raise
        signal.setitimer(signal.ITIMER_REAL, 0)
        handler, (remaining, interval) = saved
        signal.signal(signal.SIGALRM, signal.SIG_DFL if handler is None else handler)
        if remaining > 0:
            signal.setitimer(signal.ITIMER_REAL, max(1e-6, remaining - took), interval)

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if self.armed:
            self.armed = False
            raise _Overran()


_ALARM = _Alarm()


class Guard:
    """Wraps one policy instance (see the module docstring)."""

    def __init__(
        self,
        policy: Policy,
        path: Path,
        *,
        limit_s: float = PICK_LIMIT_S,
        on_fault: FaultListener | None = None,
    ) -> None:
        self.policy = policy
        self.path = path.resolve()
        self.limit_s = limit_s
        self.fault: PolicyFault | None = None
        self._listeners: list[FaultListener] = [] if on_fault is None else [on_fault]
        self._depth = 0  # a guarded method calling another: only the outermost is timed
        self._alarm = _ALARM.usable()
        for name in GUARDED:
            setattr(policy, name, self._wrap(name, getattr(policy, name)))

    def on_fault(self, listener: FaultListener) -> None:
        """Be told of the first fault (at once if it already happened)."""
        self._listeners.append(listener)
        if self.fault is not None:
            listener(self.fault)

    # -- wrapping -----------------------------------------------------------------------

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        base = getattr(Policy, name)

        @functools.wraps(method)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if self.fault is not None:
                if name == "choose":
                    raise self.fault
                return base(self.policy, *args, **kwargs)
            result = self._call(name, method, args, kwargs)
            if name == "choose":
                self._check_pick(result, args, kwargs)
            return result

        return guarded

    def _call(
        self, name: str, method: Callable[..., Any], args: tuple[Any, ...], kwargs: Any
    ) -> Any:
        outer = self._depth == 0
        self._depth += 1
        started = time.monotonic()
        saved = _ALARM.arm(self.limit_s) if outer and self._alarm else None
        try:
            return method(*args, **kwargs)
        except NoPeerAvailable as exc:
            if name == "choose":
                raise  # an answer: no peer may go now
            raise self._trip(fault_from(exc, self.path, f"{name}() raised")) from None
        except _Overran as exc:
            raise self._trip(
                fault_from(exc, self.path, f"{name}() ran longer than {self._limit_text()}")
            ) from None
        except PolicyFault:
            raise
        except Exception as exc:
            raise self._trip(fault_from(exc, self.path, f"{name}() raised")) from None
        finally:
            if outer:
                _ALARM.armed = False  # first thing: no alarm may raise from here on
            self._depth -= 1
            if outer:
                took = time.monotonic() - started
                if saved is not None:
                    _ALARM.disarm(saved, took)
                if took > self.limit_s and self.fault is None:
                    raise self._trip(
                        PolicyFault(
                            f"{name}() took {took * 1000:.0f} ms, over the {self._limit_text()}"
                            " a policy method may take",
                            where=None,
                        )
                    )

    def _limit_text(self) -> str:
        return f"{self.limit_s * 1000:.0f} ms limit"

    def _check_pick(self, result: Any, args: tuple[Any, ...], kwargs: Any) -> None:
        exclude: AbstractSet[str] = kwargs.get("exclude", args[0] if args else frozenset())
        known = Policy.known(self.policy)
        problem = None
        if not isinstance(result, Pick):
            problem = f"choose() returned {result!r}; it must return a Pick(peer)"
        elif result.peer not in known:
            problem = (
                f"choose() returned peer {result.peer!r}, which is not one of the peers "
                f"given to the policy: {', '.join(known) or 'none'}"
            )
        elif result.peer in exclude:
            problem = (
                f"choose() returned peer {result.peer!r}, which this request already tried "
                f"(it is in exclude: {', '.join(sorted(exclude))})"
            )
        if problem is not None:
            raise self._trip(PolicyFault(problem, where=self._where("choose")))

    def _where(self, method: str) -> str:
        """``file:line`` of the learner's ``def method`` (a wrong answer has no traceback)."""
        import inspect

        try:
            line = inspect.getsourcelines(getattr(type(self.policy), method))[1]
        except (OSError, TypeError):
            return f"{self.path}:{method}"
        return f"{self.path}:{line}"

    def _trip(self, fault: PolicyFault) -> PolicyFault:
        if self.fault is None:
            self.fault = fault
            for listener in self._listeners:
                listener(fault)
        return fault


def guard_policy(
    policy: Policy, path: Path, *, limit_s: float = PICK_LIMIT_S
) -> tuple[Policy, Guard]:
    """Guard ``policy`` (loaded from ``path``) in place; return it and its guard."""
    guard = Guard(policy, path, limit_s=limit_s)
    policy._guard = guard  # type: ignore[attr-defined]  # found by guard_of
    return policy, guard


def guard_of(policy: Policy) -> Guard | None:
    """The guard of a policy loaded from a file; None for the built-in ones."""
    guard = getattr(policy, "_guard", None)
    return guard if isinstance(guard, Guard) else None
