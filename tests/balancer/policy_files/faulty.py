"""Broken policies for the guard's tests: each fails in one of the ways a learner's can."""

from __future__ import annotations

import time
from collections.abc import Set as AbstractSet

from lab.balancer.policies import Pick, Policy


class Raises(Policy):
    name = "raises"

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        peers = self.known()
        return Pick(peers[len(peers)])  # IndexError: the learner's off-by-one


class Spins(Policy):
    name = "spins"

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        while True:  # a hang that never yields
            pass


class Sleeps(Policy):
    name = "sleeps"

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        time.sleep(30)  # a hang in a blocking call
        return Pick(self.known()[0])


class Swallows(Policy):
    """Catches every Exception around a hang: the guard must still end it."""

    name = "swallows"

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        while True:
            try:  # noqa: SIM105  # the point: a learner's catch-all
                time.sleep(0.01)
            except Exception:
                pass


class Stranger(Policy):
    name = "stranger"

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        return Pick("10.0.0.99:1337")  # a peer nobody gave it


class NotAPick(Policy):
    name = "not_a_pick"

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        return self.known()[0]  # type: ignore[return-value]  # forgot Pick(...)


class Repeats(Policy):
    name = "repeats"
    retries = True

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        return Pick(self.known()[0])  # ignores exclude

    def try_retry(self) -> bool:
        return True


class FeedbackRaises(Policy):
    name = "feedback_raises"

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        return Pick(self.known()[0])

    def finished(self, pick: Pick, rtt: float, outcome: object) -> None:  # type: ignore[override]
        raise KeyError(pick.peer)


class NotAPolicy:
    name = "plain"


class BadInit(Policy):
    name = "bad_init"

    def __init__(self, **kwargs: object) -> None:
        raise RuntimeError("forgot super().__init__")

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        raise NotImplementedError
