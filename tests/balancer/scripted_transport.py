"""A scripted transport on a fake clock: each call moves time as the peer would."""

from __future__ import annotations

import random
from typing import Any

from lab.clock import FakeClock
from lab.errors import RpcReplyError, RpcTimeout, RpcTransportError


class ScriptedTransport:
    """Peers answer after ``latency[peer]`` seconds, or fail as ``mode[peer]`` says.

    Modes: ``ok``, ``timeout`` (no answer: the clock moves by the whole attempt
    timeout), ``refused`` (fails at once), ``reply_error``; ``error_rate[peer]`` makes
    that share of its answers reply errors (seeded). Calls are awaited one at a
    time by the tests, so one fake clock stands for the whole world.
    """

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.latency: dict[str, float] = {}
        self.mode: dict[str, str] = {}
        self.calls: list[tuple[str, float]] = []  # (peer, attempt timeout)
        self.error_rate: dict[str, float] = {}
        self.rng = random.Random(7)

    async def request(
        self,
        peer: str,
        key: str,
        payload: Any,
        *,
        timeout: float,  # noqa: ASYNC109 (the transport contract)
        compress: bool = False,
    ) -> Any:
        self.calls.append((peer, timeout))
        mode = self.mode.get(peer, "ok")
        if mode == "refused":
            self.clock.advance(0.0002)
            raise RpcTransportError(f"ERR_REQUEST_GENERIC: connect {peer}: refused")
        if mode == "reply_error" or self.rng.random() < self.error_rate.get(peer, 0.0):
            self.clock.advance(0.001)
            raise RpcReplyError("boom")
        latency = self.latency.get(peer, 0.001)
        if mode == "timeout" or latency > timeout:
            self.clock.advance(timeout)
            raise RpcTimeout("ERR_TIMEOUT")
        self.clock.advance(latency)
        return {"worker": peer, "echo": payload}

    def sent_to(self, peer: str, since: int = 0) -> int:
        return sum(1 for p, _ in self.calls[since:] if p == peer)
