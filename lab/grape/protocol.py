"""The grape's DHT protocol: kademlia's, plus announce/lookup and a cluster check.

What it adds to ``kademlia.protocol.KademliaProtocol`` (used through
``Server.protocol_class``; routing, node lookups and value storage stay kademlia's):

- **A cluster id on every message.** Requests travel as ``[name, [cluster, nodeid,
  *args]]``; a request whose cluster differs (or a plain kademlia node's, which has no
  cluster) gets no answer at all, so a node of another cluster never enters our routing
  table and we never enter its. The check sits in the one dispatcher, not in each handler.
- **Announce/lookup RPCs** backed by the :class:`AnnouncementTable` (many announcers per
  key, each expiring on its own), as BitTorrent's announce_peer/get_peers.
- **Short timeouts, one retry.** kademlia waits 5 s and drops a peer from its routing
  table after one lost datagram; here a call waits ``rpc_timeout`` and is sent once more
  before the caller gives up (and kademlia evicts the peer).
- **Hardened input.** Garbage datagrams, unknown RPC names, wrong argument shapes and
  malformed replies are dropped and counted, never raised inside a stray task. Stored
  values must match their key (immutable: key = SHA1(value)).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import msgpack  # type: ignore[import-untyped]
from kademlia.node import Node
from kademlia.protocol import KademliaProtocol
from rpcudp.exceptions import MalformedMessage

from lab.grape.bencode import MAX_VALUE_BYTES
from lab.grape.records import AnnouncementTable

log = logging.getLogger(__name__)

ID_BYTES = 20
MAX_HOSTPORT = 300
MAX_LOOKUP_REPLY = 100
MAX_LOOKUP_REPLY_BYTES = 8000
MAX_MESSAGE_BYTES = 8192  # rpcudp's bound on one request's msgpack body

# Rpc name -> checks of its arguments after (cluster, nodeid).
_Check = Callable[[Any], bool]


def _is_id(x: Any) -> bool:
    return isinstance(x, bytes) and len(x) == ID_BYTES


def _is_hostport(x: Any) -> bool:
    if not isinstance(x, str) or not 3 <= len(x) <= MAX_HOSTPORT:
        return False
    host, sep, port = x.rpartition(":")
    return bool(sep and host and port.isdigit() and 1 <= int(port) <= 65535)


def _is_value(x: Any) -> bool:
    return isinstance(x, bytes) and len(x) <= MAX_VALUE_BYTES


_SCHEMA: dict[str, tuple[_Check, ...]] = {
    "ping": (),
    "find_node": (_is_id,),
    "find_value": (_is_id,),
    "store": (_is_id, _is_value),
    "announce": (_is_id, _is_hostport),
    "lookup": (_is_id,),
}


def _is_node_list(x: Any) -> bool:
    return isinstance(x, list) and all(
        isinstance(n, list | tuple)
        and len(n) == 3
        and _is_id(n[0])
        and isinstance(n[1], str)
        and isinstance(n[2], int)
        and not isinstance(n[2], bool)
        and 0 < n[2] < 65536
        for n in x
    )


def _valid_reply(name: str, data: Any) -> bool:
    """Whether a reply to ``name`` has the shape its caller (often kademlia) expects."""
    if name == "ping":
        return _is_id(data)
    if name == "find_node":
        return _is_node_list(data)
    if name == "find_value":
        if isinstance(data, dict):
            return set(data) == {"value"} and _is_value(data["value"])
        return _is_node_list(data)
    if name in {"store", "announce"}:
        return isinstance(data, bool)
    if name == "lookup":
        return isinstance(data, list) and all(_is_hostport(hp) for hp in data)
    return False


def _judged(name: str, sent: tuple[bool, Any], address: tuple[str, int]) -> tuple[bool, Any] | None:
    """One try's outcome: ``(True, reply)`` for a well-formed reply, ``(False, None)`` for
    a malformed one (not asked again), None for silence (worth another try)."""
    ok, reply = sent
    if not ok:
        return None
    if _valid_reply(name, reply):
        return True, reply
    log.debug("malformed %s reply from %s", name, address)
    return False, None


class GrapeProtocol(KademliaProtocol):  # type: ignore[misc]
    """kademlia's protocol with cluster-checked messages and announce/lookup RPCs."""

    def __init__(
        self,
        source_node: Node,
        storage: Any,
        ksize: int,
        *,
        records: AnnouncementTable,
        cluster: str,
        rpc_timeout: float,
        attempts: int = 2,
    ) -> None:
        super().__init__(source_node, storage, ksize)
        self._wait_timeout = rpc_timeout
        self.records = records
        self.cluster = cluster
        self.attempts = attempts
        self.dropped = 0  # datagrams ignored: garbage, foreign cluster, bad arguments

    # -- incoming ---------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        """Parse here, not in a task, so garbage is dropped instead of raising unseen."""
        if len(data) < 22 or data[:1] not in (b"\x00", b"\x01"):
            self.dropped += 1
            return
        msg_id = data[1:21]
        try:
            body = msgpack.unpackb(data[21:], raw=False)
        except Exception:  # msgpack raises many types on garbage; all mean "not ours"
            self.dropped += 1
            return
        if data[:1] == b"\x01":
            if msg_id in self._outstanding:
                self._accept_response(msg_id, body, addr)
            return
        self._accept_request(msg_id, body, addr)

    def _accept_request(self, msg_id: bytes, data: Any, address: tuple[str, int]) -> None:
        """Answer in the datagram's own callback: every ``rpc_*`` handler is synchronous
        (kademlia's and ours; what they start, such as storing values at a new node, they
        start as tasks themselves), so a task per request would only add a loop turn to
        every remote round trip."""
        parsed = self._parse_request(data)
        if parsed is None:
            self.dropped += 1
            return
        name, args = parsed
        try:
            response = getattr(self, f"rpc_{name}")(address, *args)
        except Exception:  # a handler bug must not take the node down; say so loudly
            log.exception("rpc_%s from %s failed", name, address)
            return
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(
                b"\x01" + msg_id + msgpack.packb(response, use_bin_type=True), address
            )

    def _accept_response(self, msg_id: bytes, data: Any, address: tuple[str, int]) -> None:
        """As rpcudp's, but a caller that stopped waiting (cancelled) is not an error."""
        entry = self._outstanding.pop(msg_id, None)
        if entry is None:
            return
        future, timer = entry
        timer.cancel()
        if not future.done():
            future.set_result((True, data))

    def _timeout(self, msg_id: bytes) -> None:
        entry = self._outstanding.pop(msg_id, None)
        if entry is not None and not entry[0].done():
            entry[0].set_result((False, None))

    def _parse_request(self, data: Any) -> tuple[str, list[Any]] | None:
        if not (isinstance(data, list) and len(data) == 2):
            return None
        name, args = data
        checks = _SCHEMA.get(name) if isinstance(name, str) else None
        if checks is None or not isinstance(args, list) or len(args) != len(checks) + 2:
            return None
        cluster, nodeid, *rest = args
        if cluster != self.cluster:
            log.debug("ignoring %s from another cluster (%r)", name, cluster)
            return None
        if not _is_id(nodeid) or not all(c(a) for c, a in zip(checks, rest, strict=True)):
            return None
        return name, [nodeid, *rest]

    def rpc_store(self, sender: tuple[str, int], nodeid: bytes, key: bytes, value: bytes) -> bool:
        """Store an immutable value only under its own key (SHA1 of the value)."""
        if hashlib.sha1(value).digest() != key:
            return False
        return bool(super().rpc_store(sender, nodeid, key, value))

    def rpc_announce(
        self, sender: tuple[str, int], nodeid: bytes, key: bytes, hostport: str
    ) -> bool:
        """Another grape asks us to hold ``hostport`` as an announcer of ``key``."""
        self.welcome_if_new(Node(nodeid, sender[0], sender[1]))
        self.records.announce(key, hostport)
        return True

    def rpc_lookup(self, sender: tuple[str, int], nodeid: bytes, key: bytes) -> list[str]:
        """The live announcers of ``key`` we hold (bounded in count and bytes)."""
        self.welcome_if_new(Node(nodeid, sender[0], sender[1]))
        out: list[str] = []
        size = 0
        for hp in self.records.lookup(key, MAX_LOOKUP_REPLY):
            size += len(hp) + 2
            if size > MAX_LOOKUP_REPLY_BYTES:
                break
            out.append(hp)
        return out

    # -- outgoing ---------------------------------------------------------------------

    def _send(self, name: str, address: tuple[str, int], *args: Any) -> asyncio.Future[Any]:
        """Send one request now; the future gets ``(True, reply)`` or, after
        ``rpc_timeout``, ``(False, None)``. rpcudp's wire format (kind byte, 20-byte random
        id, msgpack ``[name, [cluster, *args]]``), packed by the C ``msgpack`` (the same
        bytes as rpcudp's pure-Python umsgpack, a tenth of the CPU) and without its
        per-call attribute lookup.
        """
        data = msgpack.packb([name, (self.cluster, *args)], use_bin_type=True)
        if len(data) > MAX_MESSAGE_BYTES:
            raise MalformedMessage(f"{name} request of {len(data)} bytes; at most 8K")
        msg_id = os.urandom(ID_BYTES)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        timer = loop.call_later(self._wait_timeout, self._timeout, msg_id)
        self._outstanding[msg_id] = (future, timer)
        self.transport.sendto(b"\x00" + msg_id + data, address)
        return future

    async def _call(self, name: str, address: tuple[str, int], *args: Any) -> tuple[bool, Any]:
        """Send ``name`` with our cluster id, up to ``attempts`` times; (ok, reply)."""
        for _ in range(self.attempts):
            if not self._open():
                break
            result = _judged(name, await self._send(name, address, *args), address)
            if result is not None:
                return result
        return False, None

    async def ask_all(
        self, name: str, nodes: Sequence[Node], *args: Any, within: float
    ) -> list[tuple[bool, Any]]:
        """``name(our id, *args)`` to every node at once: one ``(ok, reply)`` per node.

        All requests leave before the first await, and the caller wakes once, when every
        node has answered or timed out: a lookup's latency is this one round trip, so no
        task per node stands between the datagrams and the answer. A node silent for
        ``rpc_timeout`` is asked again (``attempts`` in all) and, silent still, leaves the
        routing table as kademlia's own calls make it; one still unanswered after
        ``within`` seconds counts as not answered and stays in the table.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        results: list[tuple[bool, Any] | None] = [None] * len(nodes)
        waiting = list(range(len(nodes)))
        for _ in range(self.attempts):
            remaining = deadline - loop.time()
            if not waiting or remaining <= 0 or not self._open():
                break
            sent = {
                i: self._send(name, (nodes[i].ip, nodes[i].port), self.source_node.id, *args)
                for i in waiting
            }
            await asyncio.wait(sent.values(), timeout=remaining)
            waiting = []
            for i, reply_future in sent.items():
                if not reply_future.done():
                    continue  # out of time: undecided
                address = (nodes[i].ip, nodes[i].port)
                result = _judged(name, reply_future.result(), address)
                if result is None:
                    waiting.append(i)
                results[i] = (False, None) if result is None else result
        for node, result in zip(nodes, results, strict=True):
            if result is not None:
                self.handle_call_response(result, node)
        return [(False, None) if r is None else r for r in results]

    def _open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    async def ping(self, address: tuple[str, int], nodeid: bytes) -> tuple[bool, Any]:
        return await self._call("ping", address, nodeid)

    async def find_node(
        self, address: tuple[str, int], nodeid: bytes, key: bytes
    ) -> tuple[bool, Any]:
        return await self._call("find_node", address, nodeid, key)

    async def find_value(
        self, address: tuple[str, int], nodeid: bytes, key: bytes
    ) -> tuple[bool, Any]:
        return await self._call("find_value", address, nodeid, key)

    async def store(
        self, address: tuple[str, int], nodeid: bytes, key: bytes, value: Any
    ) -> tuple[bool, Any]:
        return await self._call("store", address, nodeid, key, value)

    def peer_count(self) -> int:
        """Nodes in the routing table."""
        return sum(len(bucket) for bucket in self.router.buckets)
