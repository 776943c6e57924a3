"""What the client app needs from discovery and from the policy side, as protocols.

Why protocols: the app's wiring (loops, lifecycle, control API) is the same whatever
balances the requests, and tests run it with in-memory fakes; only
:mod:`lab.loadgen.policy_side` knows the grenache and balancer packages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from lab.balancer.stats import GossipCounts
from lab.clock import Clock
from lab.history import ClientEvent
from lab.loadgen.control import PolicyControls
from lab.loadgen.load import Sent
from lab.loadgen.settings import ClientSettings


class Discovery(Protocol):
    """The grape side: Grenache's lookup and announce (``lab.grenache.link.Link``)."""

    async def lookup(self, name: str) -> list[str]: ...

    async def announce(self, name: str, port: int, host: str | None = None) -> int: ...


class PolicySideLike(PolicyControls, Protocol):
    """The balancing side: sends requests, holds the peer set, runs gossip."""

    async def send(self, service: str, payload: Any, budget_s: float) -> Sent:
        """One logical request within ``budget_s`` seconds, with the policy's retries."""
        ...

    def set_peers(self, peers: Sequence[str]) -> None:
        """The peers discovery found (never called with an empty list)."""
        ...

    def gossip_port(self) -> int:
        """The UDP port the gossip socket is bound to (useful when 0 was asked for)."""
        ...

    def set_gossip_members(self, members: Sequence[str]) -> None:
        """The other clients' gossip addresses (``host:port``)."""
        ...

    def gossip_counts(self) -> GossipCounts: ...


EventSink = Callable[[ClientEvent], None]

PartsFactory = Callable[
    [ClientSettings, Clock, EventSink],
    AbstractAsyncContextManager[tuple[Discovery, PolicySideLike]],
]
"""Opens discovery and the policy side for a client; closes both on exit."""
