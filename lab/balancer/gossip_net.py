"""The gossip socket: a UDP endpoint and its timer (the shell around :mod:`gossip`).

Every ``interval_s`` the node asks its ``outgoing`` callable what to tell (the
policy's verdicts) and sends one datagram, sealed with the lab's key, to ``fanout``
members drawn at random. An incoming datagram is accepted only when all of these hold,
cheapest first, else it is counted as refused with the reason and otherwise ignored:

1. it is sealed with the lab's key (:func:`lab.balancer.gossip.unseal`; no key, no
   gossip: a client started without one neither sends nor accepts hints);
2. its body passes :func:`lab.balancer.gossip.decode`;
3. its ``sender`` is a member known through discovery (the ``lab_gossip`` lookup),
4. and is the datagram's own source address (so one member cannot speak for another);
5. its ``seq`` is newer than the last accepted from that sender (no replays) and within
   :data:`MAX_SKEW_S` of our CLOCK_MONOTONIC (the lab's processes share one host's
   clock, see :mod:`lab.clock`).

Accepted messages go to ``incoming`` (the policy's merge). When gossip is switched off
the node neither sends nor listens (datagrams arriving are dropped uncounted), so
"gossip off" is a clean baseline.

The node owns its one task and its socket: :meth:`GossipNode.start` and
:meth:`GossipNode.aclose` (also an async context manager).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from types import TracebackType

from lab.balancer.gossip import (
    MAC_BYTES,
    GossipConfig,
    Hint,
    Message,
    Rejected,
    decode,
    encode,
    seal,
    unseal,
)
from lab.balancer.stats import GossipCounts
from lab.clock import Clock
from lab.errors import SettingsError

log = logging.getLogger(__name__)

MAX_SKEW_S = 5.0
"""How far a message's ``seq`` (its send time) may lie from our clock: a few gossip
rounds of delay and scheduling noise, short enough that a captured datagram is soon
worthless."""


def split_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"gossip member: not a host:port address: {text!r}")
    return host, int(port)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, node: GossipNode) -> None:
        self._node = node

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._node._received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a member that went away: expected, not our problem.
        log.debug("gossip socket error: %s", exc)


class GossipNode:
    """One client's gossip endpoint (see the module docstring)."""

    def __init__(
        self,
        *,
        bind: str,
        port: int,
        advertise: str | None,
        clock: Clock,
        rng: random.Random,
        config: GossipConfig,
        outgoing: Callable[[], list[Hint]],
        incoming: Callable[[Message], None],
        key: bytes | None,
        enabled: bool = True,
    ) -> None:
        self._bind = bind
        self._port = port
        self._advertise = advertise
        self._clock = clock
        self._rng = rng
        self._config = config
        self._outgoing = outgoing
        self._incoming = incoming
        self.enabled = enabled
        self._key = key
        self._members: list[tuple[str, int]] = []
        self._member_names: frozenset[str] = frozenset()
        self._last_seq: dict[str, int] = {}
        self._seq = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._local: tuple[str, int] | None = None
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.received = 0
        self.rejected = 0
        self.reasons: dict[str, int] = {}

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> GossipNode:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), local_addr=(self._bind, self._port)
            )
        except OSError as exc:
            raise SettingsError(
                f"gossip port: cannot bind UDP {self._bind}:{self._port}: {exc}"
            ) from None
        self._transport = transport
        sockname = transport.get_extra_info("sockname")
        self._local = (str(sockname[0]), int(sockname[1]))
        self._task = asyncio.create_task(self._loop(), name="gossip")
        return self

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    async def __aenter__(self) -> GossipNode:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- membership and views ------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound UDP port (the one asked for, or the one the OS chose for 0)."""
        return self._local[1] if self._local is not None else self._port

    @property
    def address(self) -> str:
        """``host:port`` others send to, and the ``sender`` we put in every message."""
        host = self._advertise or (self._local[0] if self._local else self._bind)
        return f"{host}:{self.port}"

    def set_members(self, members: Sequence[str]) -> None:
        """The other clients' gossip addresses; our own address is left out."""
        parsed = []
        for m in dict.fromkeys(members):
            if m == self.address:
                continue
            try:
                parsed.append(split_address(m))
            except SettingsError as exc:
                log.warning("%s", exc)
        self._members = parsed
        self._member_names = frozenset(f"{h}:{p}" for h, p in parsed)
        for gone in set(self._last_seq) - self._member_names:
            del self._last_seq[gone]

    def members(self) -> list[str]:
        return [f"{h}:{p}" for h, p in self._members]

    @property
    def authenticated(self) -> bool:
        """True when this node has the lab's key (else it neither sends nor accepts)."""
        return self._key is not None

    def counts(self) -> GossipCounts:
        return GossipCounts(sent=self.sent, received=self.received, rejected=self.rejected)

    # -- sending and receiving -----------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            # Real time on purpose: the cadence is a property of the network, and a
            # FakeClock's instant sleep would spin this loop.
            await asyncio.sleep(self._config.interval_s)
            try:
                self.send_round()
            except Exception:  # a bug in one round must not end gossip for good
                log.exception("gossip round failed")

    def send_round(self) -> int:
        """Send our verdicts to ``fanout`` random members now; returns datagrams sent."""
        transport = self._transport
        key = self._key
        if transport is None or key is None or not self.enabled or not self._members:
            return 0
        hints = self._outgoing()
        if not hints:
            return 0
        # Send time in ns, strictly increasing even when the clock reads the same twice.
        self._seq = max(self._seq + 1, int(self._clock.monotonic() * 1e9))
        data = seal(key, encode(self.address, hints, self._config.max_bytes, self._seq))
        k = min(self._config.fanout, len(self._members))
        for addr in self._rng.sample(self._members, k):
            transport.sendto(data, addr)
            self.sent += 1
        return k

    def _received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if not self.enabled:
            return
        try:
            message = self._check(data, addr)
        except Rejected as exc:
            self.rejected += 1
            reason = str(exc).split(":", 1)[-1].strip() if ":" in str(exc) else str(exc)
            self.reasons[reason] = self.reasons.get(reason, 0) + 1
            log.debug("gossip datagram from %s refused: %s", addr, exc)
            return
        self.received += 1
        self._incoming(message)

    def _check(self, data: bytes, addr: tuple[str | object, ...]) -> Message:
        """The message in ``data`` from ``addr``, or :class:`Rejected` (module docstring)."""
        if self._local is not None and tuple(addr[:2]) == self._local:
            raise Rejected("sender: from ourselves")
        if self._key is None:
            raise Rejected("mac: this client has no gossip key")
        if len(data) > self._config.max_bytes + MAC_BYTES:
            raise Rejected(f"too large ({len(data)} bytes)")
        message = decode(
            unseal(self._key, data),
            me=self.address,
            max_ttl=self._config.max_ttl_s,
            max_bytes=self._config.max_bytes,
        )
        sender = message.sender
        if sender not in self._member_names:
            raise Rejected("sender: not a member known through discovery")
        if sender != f"{addr[0]}:{addr[1]}":
            raise Rejected("sender: not the datagram's source address")
        if abs(message.seq / 1e9 - self._clock.monotonic()) > MAX_SKEW_S:
            raise Rejected("seq: too old or from the future")
        if message.seq <= self._last_seq.get(sender, 0):
            raise Rejected("seq: replayed or out of order")
        self._last_seq[sender] = message.seq
        return message
