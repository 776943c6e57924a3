"""Fixtures of the loadgen tests: in-memory stand-ins for the policy side."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from lab.balancer.stats import PeerStats
from lab.history import Attempt, Outcome
from lab.loadgen.load import Sent


class FakeSender:
    """Answers after ``delay`` seconds; records what it was asked."""

    def __init__(self, delay: float = 0.0, peer: str = "127.0.0.9:1") -> None:
        self.delay = delay
        self.peer = peer
        self.calls: list[tuple[str, Any, float]] = []

    async def __call__(self, service: str, payload: Any, budget_s: float) -> Sent:
        self.calls.append((service, payload, budget_s))
        loop = asyncio.get_running_loop()
        start = loop.time()
        if self.delay > budget_s:
            await asyncio.sleep(budget_s)
            return Sent(Outcome.TIMEOUT, (), "ERR_TIMEOUT")
        await asyncio.sleep(self.delay)
        attempt = Attempt(self.peer, start, loop.time(), Outcome.OK)
        return Sent(Outcome.OK, (attempt,))


class FakePolicySide:
    def __init__(self) -> None:
        self._faulty: list[str] = []
        self._gossip = True

    def peers(self) -> Sequence[PeerStats]:
        return [PeerStats("127.0.0.9:1", score=0.002, ewma_s=0.001, breaker="open", hints=1)]

    def faulty(self) -> Sequence[str]:
        return self._faulty

    def set_faulty(self, peers: Sequence[str]) -> None:
        self._faulty = list(peers)

    def gossip_enabled(self) -> bool:
        return self._gossip

    def set_gossip(self, enabled: bool) -> None:
        self._gossip = enabled

    def health(self) -> dict[str, Any]:
        return {"peers": 1}


@pytest.fixture
def fake_sender() -> Callable[..., FakeSender]:
    """A factory of senders that answer after a delay."""
    return FakeSender


@pytest.fixture
def fake_policy_side() -> FakePolicySide:
    return FakePolicySide()


# -- the local cluster shared by the integration tests ------------------------------------
