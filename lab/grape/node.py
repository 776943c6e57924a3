"""The grape's DHT node: join, announce, lookup, put and get over kademlia routing.

Lifecycle: :meth:`GrapeNode.start` binds the UDP socket and starts two owned tasks,
the join loop and the prune loop; :meth:`GrapeNode.stop` cancels them and closes the
socket. Nothing starts at import.

- **Join.** Bootstrap peers are resolved (names to IPs) and pinged at every attempt, with
  backoff while none answers: in Compose the grapes start in any order, so a grape must
  keep trying until a peer is up. Once joined it still re-pings its seeds every few
  seconds, which re-learns a peer that restarted or came back from a partition.
- **Announce** stores locally, then asks the k nodes closest to SHA1(name) (found by a
  kademlia node lookup) to hold the announcement; the answer counts the nodes that stored
  it, this one included. With no peers it is stored here only (upstream refuses with
  "No nodes to query"; a grape that is alone should still serve its own callers).
- **Lookup** merges the local table with the answers of the k closest nodes. Which nodes
  are closest to a key is remembered for ``CLOSEST_TTL_S``: workers announce and clients
  look up the same few names every second, and the node lookup (a crawl of one or more
  UDP rounds) was most of a lookup's time; one round to the nodes already known is left.
  A node that joins is among the closest within that second; one that dies is skipped
  after ``op_timeout`` as before.
- Every network step is bounded by :attr:`GrapeNode.op_timeout`, so an HTTP caller gets
  an answer (possibly only the local part) even while peers are dying.

The node id is SHA1(cluster | advertised address | DHT port): a grape that restarts on
the same address keeps its id, so the other grapes' routing tables stay right.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import random
import socket
from typing import Any

from kademlia.crawling import NodeSpiderCrawl, ValueSpiderCrawl
from kademlia.network import Server
from kademlia.node import Node

from lab import errors
from lab.clock import SYSTEM_CLOCK, Clock
from lab.grape import bencode
from lab.grape.protocol import GrapeProtocol
from lab.grape.records import AnnouncementTable
from lab.grape.settings import GrapeSettings

log = logging.getLogger(__name__)

REJOIN_INTERVAL = 5.0
"""Seconds between seed pings once joined (re-learns restarted or healed peers)."""
MAX_BACKOFF = 2.0
"""Longest wait between join attempts while no peer answers."""
LOOKUP_LIMIT = 100

CLOSEST_TTL_S = 1.0
"""How long the k nodes closest to a key are reused (see the module docstring)."""

CLOSEST_CACHE_MAX = 1024


class ValueTooLarge(errors.LabError, ValueError):
    """An immutable value over 1000 bytes once bencoded."""


@functools.lru_cache(maxsize=1024)
def service_key(name: str) -> bytes:
    """The 20-byte DHT key of a service name: SHA1 of its UTF-8 bytes (a few names are
    looked up over and over; the cache is bounded for the many a stranger can send)."""
    return hashlib.sha1(bencode.utf8(name)).digest()


class GrapeNode:
    """One DHT node with Grenache's operations."""

    def __init__(
        self,
        settings: GrapeSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.advertise = settings.advertised_host()
        self._clock = clock
        self._rng = rng or random.Random()
        self.records = AnnouncementTable(clock, settings.peer_max_age, rng=self._rng)
        self.op_timeout = min(5.0, max(1.0, 4 * settings.rpc_timeout))
        ident = f"{settings.cluster_id}|{self.advertise}:{settings.dht_port}"
        self._server: Any = Server(
            ksize=settings.ksize, alpha=3, node_id=hashlib.sha1(ident.encode()).digest()
        )
        self._server.protocol_class = functools.partial(
            GrapeProtocol,
            records=self.records,
            cluster=settings.cluster_id,
            rpc_timeout=settings.rpc_timeout,
        )
        self.joined = False
        self._tasks: list[asyncio.Task[None]] = []
        self._closest_cache: dict[bytes, tuple[float, list[Node]]] = {}

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the DHT socket and start joining; raises RuntimeUnavailable if it cannot bind."""
        s = self.settings
        try:
            await self._server.listen(s.dht_port, interface=s.bind)
        except OSError as exc:
            raise errors.RuntimeUnavailable(
                f"cannot bind the DHT on udp {s.bind}:{s.dht_port}: {exc.strerror or exc}"
            ) from exc
        self._tasks = [
            asyncio.create_task(self._join_loop(), name="grape-join"),
            asyncio.create_task(self._prune_loop(), name="grape-prune"),
        ]

    async def stop(self) -> None:
        """Cancel the owned tasks and close the socket."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._server.stop()

    @property
    def protocol(self) -> GrapeProtocol | None:
        return self._server.protocol  # type: ignore[no-any-return]

    @property
    def node_id(self) -> str:
        return str(self._server.node.id.hex())

    def peer_count(self) -> int:
        """Nodes in the routing table (0 before start)."""
        proto = self.protocol
        return proto.peer_count() if proto is not None else 0

    # -- operations -------------------------------------------------------------------

    async def announce(self, name: str, hostport: str) -> int:
        """Hold ``hostport`` for ``name`` here and on the closest nodes; how many stored it."""
        key = service_key(name)
        self.records.announce(key, hostport)
        proto = self.protocol
        if proto is None:
            return 1
        nodes = await self._closest(key)
        stored = await proto.ask_all("announce", nodes, key, hostport, within=self.op_timeout)
        return 1 + sum(1 for ok, confirmed in stored if ok and confirmed)

    async def lookup(self, name: str) -> list[str]:
        """Live announcers of ``name``: ours merged with the closest nodes', random order."""
        key = service_key(name)
        found = set(self.records.lookup(key, LOOKUP_LIMIT))
        proto = self.protocol
        if proto is not None:
            nodes = await self._closest(key)
            for ok, answer in await proto.ask_all("lookup", nodes, key, within=self.op_timeout):
                if ok:
                    found.update(answer)
        peers = list(found)
        self._rng.shuffle(peers)
        return peers[:LOOKUP_LIMIT]

    async def put(self, value: Any) -> str:
        """Store an immutable value here and on the closest nodes; returns its hex key."""
        encoded = bencode.encode(value)
        if len(encoded) > bencode.MAX_VALUE_BYTES:
            raise ValueTooLarge(
                f"value is {len(encoded)} bytes bencoded; at most {bencode.MAX_VALUE_BYTES}"
            )
        key = bencode.immutable_key(encoded)
        self._server.storage[key] = encoded
        if self.peer_count():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.set_digest(key, encoded), self.op_timeout)
        return key.hex()

    async def get(self, key: bytes) -> dict[str, Any] | None:
        """``{"id", "token", "v"}`` for an immutable value, or None when nobody has it."""
        value = self._server.storage.get(key)
        proto = self.protocol
        if value is None and proto is not None:
            target = Node(key)
            nearest = proto.router.find_neighbors(target)
            if nearest:
                spider = ValueSpiderCrawl(proto, target, nearest, self.settings.ksize, 3)
                with contextlib.suppress(TimeoutError):
                    value = await asyncio.wait_for(spider.find(), self.op_timeout)
        if not isinstance(value, bytes) or bencode.immutable_key(value) != key:
            return None
        try:
            decoded = bencode.decode(value)
        except ValueError:
            return None
        return {"id": self.node_id, "token": None, "v": decoded}

    # -- internals --------------------------------------------------------------------

    async def _closest(self, key: bytes) -> list[Node]:
        """The k nodes closest to ``key`` by a kademlia node lookup, one per address."""
        proto = self.protocol
        if proto is None:
            return []
        now = self._clock.monotonic()
        hit = self._closest_cache.get(key)
        if hit is not None and now - hit[0] < CLOSEST_TTL_S:
            return hit[1]
        target = Node(key)
        nearest = proto.router.find_neighbors(target)
        if not nearest:
            return []
        spider = NodeSpiderCrawl(proto, target, nearest, self.settings.ksize, 3)
        try:
            nodes = await asyncio.wait_for(spider.find(), self.op_timeout)
        except TimeoutError:
            nodes = nearest
        by_address: dict[tuple[str, int], Node] = {}
        for n in nodes:
            by_address.setdefault((n.ip, n.port), n)
        closest = list(by_address.values())
        if len(self._closest_cache) >= CLOSEST_CACHE_MAX:
            self._closest_cache.clear()
        self._closest_cache[key] = (now, closest)
        return closest

    async def _seeds(self) -> list[tuple[str, int]]:
        """Bootstrap peers resolved to IPv4 addresses now; unresolvable ones are skipped."""
        loop = asyncio.get_running_loop()
        me = {
            (self.advertise, self.settings.dht_port),
            (self.settings.bind, self.settings.dht_port),
        }
        out: list[tuple[str, int]] = []
        for host, port in self.settings.bootstrap:
            try:
                infos = await asyncio.wait_for(
                    loop.getaddrinfo(host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM),
                    timeout=2.0,
                )
            except (OSError, TimeoutError) as exc:
                log.debug("cannot resolve bootstrap peer %s: %s", host, exc)
                continue
            for info in infos[:1]:
                addr = (str(info[4][0]), int(info[4][1]))
                if addr not in me and addr not in out:
                    out.append(addr)
        return out

    async def _join_once(self) -> bool:
        seeds = await self._seeds()
        if seeds:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.bootstrap(seeds), self.op_timeout)
        return self.peer_count() > 0

    async def _join_loop(self) -> None:
        backoff = 0.1
        while True:
            if not self.settings.bootstrap:
                joined = self.peer_count() > 0
            else:
                try:
                    joined = await self._join_once()
                except Exception:  # a join attempt must never end the loop
                    log.exception("join attempt failed")
                    joined = False
            if joined != self.joined:
                log.info("%s the DHT: %d peers", "joined" if joined else "left", self.peer_count())
                self.joined = joined
            if joined:
                backoff = 0.1
                delay = REJOIN_INTERVAL
            else:
                delay = backoff * self._rng.uniform(0.8, 1.2)
                backoff = min(backoff * 2, MAX_BACKOFF)
            await self._clock.sleep(delay)

    async def _prune_loop(self) -> None:
        interval = min(10.0, max(0.25, self.settings.peer_max_age / 4))
        while True:
            await self._clock.sleep(interval)
            self.records.prune()
