"""Peer-health gossip between clients: the message format and the book of hints held.

SWIM/memberlist style: every ~200 ms a client sends what it currently believes is bad
(and recently-recovered peers as ``ok``) to a few random members. Hints are weak on
purpose:

- a hint carries its **age** (how long ago the sender last saw evidence) and a **ttl**;
  the receiver dates it on its own clock (``now - age``) so no clocks need agree, and
  drops it once ``age`` exceeds ``ttl``;
- a bad hint multiplies the peer's cost by up to ``penalty``, decaying linearly to 1
  over its ttl (probation that fades, not a ban);
- it **never outweighs our own fresh observations**: if the peer answered this client
  within ``own_fresh_s`` and after the sender's observation, that hint is ignored; our
  own failures agree with a bad hint and never cancel it;
- **one sender moves a bounded share**: a sender may hold at most ``max_bad_share`` of
  our known peers as bad at once (at least one; 1 of the lab's 3 workers), so one
  wrong or hostile member can take at most that share of our traffic off its usual
  peers; claims beyond it are counted (``capped``) and ignored;
- an ``ok`` hint from a sender withdraws that sender's earlier bad hint.

Datagrams are ``HMAC-SHA256(key, body) || body`` (:func:`seal`), the body JSON ``{"v":
1, "sender": "host:port", "seq": n, "hints": [{"peer", "verdict", "age", "ttl"}]}`` of at
most ``max_bytes``. The key is the lab's (``lab up`` and the local runtime generate it):
a datagram not sealed with it is refused before its JSON is parsed. Anything malformed or
hostile (not JSON within :mod:`lab.jsonlimits`' limits, wrong types, too big, another
version, from ourselves, an observation dated in the future) is refused whole with a
:class:`Rejected` naming why; the transport counts those and also checks who sent it
(:mod:`lab.balancer.gossip_net`: a member known through discovery, at the datagram's
source address, with a fresh sequence number). Everything here is pure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lab.jsonlimits import JsonRejected, loads

VERSION = 1
MAX_HINTS = 128
MAX_NAME = 255
MAX_SENDERS_PER_PEER = 64
MAX_DEPTH = 4  # {"hints": [{...}]} is 3 deep
MAC_BYTES = 32  # HMAC-SHA256
MIN_KEY_BYTES = 16


class HintVerdict(StrEnum):
    BAD = "bad"
    OK = "ok"


@dataclass(frozen=True, slots=True)
class GossipConfig:
    interval_s: float = 0.2
    fanout: int = 3
    hint_ttl_s: float = 3.0  # what we send: must outlive the open breaker's probe cycle
    max_ttl_s: float = 30.0  # what we accept
    own_fresh_s: float = 1.0
    penalty: float = 10.0
    max_bytes: int = 8192
    bad_failure_rate: float = 0.5  # a closed peer is shared as bad above this share...
    bad_min_calls: int = 3  # ...over at least this many calls in the metrics window
    max_bad_share: float = 0.34  # of our known peers one sender may hold bad (>= 1 peer)

    def __post_init__(self) -> None:
        for name in ("interval_s", "hint_ttl_s", "max_ttl_s", "own_fresh_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
                raise ValueError(f"{name}: must be a positive number, not {value!r}")
        if self.fanout < 1:
            raise ValueError(f"fanout: must be at least 1, not {self.fanout!r}")
        if not (self.penalty >= 1 and math.isfinite(self.penalty)):
            raise ValueError(f"penalty: must be at least 1, not {self.penalty!r}")
        if self.max_bytes < 256:
            raise ValueError(f"max_bytes: must be at least 256, not {self.max_bytes!r}")
        if self.hint_ttl_s > self.max_ttl_s:
            raise ValueError("hint_ttl_s: must not exceed max_ttl_s")
        if not 0 < self.max_bad_share <= 1:
            raise ValueError(f"max_bad_share: must be within (0, 1], not {self.max_bad_share!r}")

    def bad_peers_per_sender(self, known: int) -> int:
        """How many of ``known`` peers one sender may hold bad at once (at least one)."""
        return max(1, int(self.max_bad_share * known))


@dataclass(frozen=True, slots=True)
class Hint:
    """One claim about one peer, as sent: ``age`` seconds old, valid for ``ttl``."""

    peer: str
    verdict: HintVerdict
    age: float
    ttl: float

    def to_json(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "verdict": self.verdict.value,
            "age": round(self.age, 4),
            "ttl": self.ttl,
        }


@dataclass(frozen=True, slots=True)
class Message:
    sender: str
    hints: tuple[Hint, ...]
    seq: int = 0  # the sender's send time in ns (CLOCK_MONOTONIC), strictly increasing


class Rejected(ValueError):
    """A datagram refused whole; the message says why."""


def seal(key: bytes, body: bytes) -> bytes:
    """``body`` with its HMAC-SHA256 under ``key`` in front."""
    return hmac.new(key, body, hashlib.sha256).digest() + body


def unseal(key: bytes, data: bytes) -> bytes:
    """The body of a datagram :func:`seal` made with ``key``, or :class:`Rejected`."""
    if len(data) < MAC_BYTES:
        raise Rejected("mac: datagram shorter than its MAC")
    body = data[MAC_BYTES:]
    if not hmac.compare_digest(data[:MAC_BYTES], hmac.new(key, body, hashlib.sha256).digest()):
        raise Rejected("mac: not sealed with this lab's gossip key")
    return body


def encode(sender: str, hints: Iterable[Hint], max_bytes: int = 8192, seq: int = 0) -> bytes:
    """A message body carrying as many of ``hints`` as fit in ``max_bytes`` (not sealed)."""
    items = [h.to_json() for h in hints][:MAX_HINTS]
    while True:
        data = json.dumps(
            {"v": VERSION, "sender": sender, "seq": seq, "hints": items}, separators=(",", ":")
        ).encode()
        if len(data) <= max_bytes or not items:
            return data
        items = items[: len(items) // 2]


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected(f"{field}: not a number")
    number = float(value)
    if not math.isfinite(number):
        raise Rejected(f"{field}: not finite")
    return number


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME:
        raise Rejected(f"{field}: not a host:port string")
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise Rejected(f"{field}: not a host:port string")
    return value


def decode(data: bytes, *, me: str, max_ttl: float, max_bytes: int = 8192) -> Message:
    """Parse and check one datagram; raise :class:`Rejected` naming the problem."""
    if len(data) > max_bytes:
        raise Rejected(f"too large ({len(data)} > {max_bytes} bytes)")
    try:
        raw = loads(data, max_bytes=max_bytes, max_depth=MAX_DEPTH)
    except JsonRejected as exc:
        raise Rejected(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise Rejected("not a JSON object")
    if raw.get("v") != VERSION or isinstance(raw.get("v"), bool):
        raise Rejected(f"v: unsupported version {raw.get('v')!r}")
    sender = _name(raw.get("sender"), "sender")
    if sender == me:
        raise Rejected("sender: from ourselves")
    seq = raw.get("seq", 0)
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**63:
        raise Rejected("seq: not a non-negative 64-bit integer")
    items = raw.get("hints")
    if not isinstance(items, list):
        raise Rejected("hints: not a list")
    if len(items) > MAX_HINTS:
        raise Rejected(f"hints: more than {MAX_HINTS}")
    hints: list[Hint] = []
    for i, item in enumerate(items):
        where = f"hints[{i}]"
        if not isinstance(item, dict):
            raise Rejected(f"{where}: not an object")
        peer = _name(item.get("peer"), f"{where}.peer")
        try:
            verdict = HintVerdict(str(item.get("verdict")))
        except ValueError:
            raise Rejected(f"{where}.verdict: not 'bad' or 'ok'") from None
        age = _number(item.get("age"), f"{where}.age")
        ttl = _number(item.get("ttl"), f"{where}.ttl")
        if age < 0:
            raise Rejected(f"{where}.age: observation in the future")
        if not 0 < ttl <= max_ttl:
            raise Rejected(f"{where}.ttl: outside (0, {max_ttl:g}]")
        hints.append(Hint(peer, verdict, age, ttl))
    return Message(sender, tuple(hints), seq)


@dataclass(frozen=True, slots=True)
class Held:
    """A bad hint we hold: dated on our clock."""

    observed_at: float
    expires_at: float
    ttl: float


class HintBook:
    """The bad hints currently held, per peer and sender. Pure: pass ``now``."""

    def __init__(self, config: GossipConfig) -> None:
        self._config = config
        self._held: dict[str, dict[str, Held]] = {}
        self.stale = 0  # hints dropped on arrival because they were already too old
        self.capped = 0  # bad hints ignored: their sender already held its share of peers

    def merge(self, message: Message, now: float, known: Collection[str]) -> list[Hint]:
        """Take in a message's hints about peers we know; return those that changed ours.

        A bad hint changes ours when we held none from that sender for that peer; an ok
        hint when it withdrew one. Hints about peers we do not know are ignored (so a
        hostile sender cannot grow the book without bound), and so are new bad hints
        from a sender that already holds its share of our peers bad.
        """
        changed: list[Hint] = []
        share = self._config.bad_peers_per_sender(len(known))
        for hint in message.hints:
            if hint.peer not in known:
                continue
            if hint.age > hint.ttl:
                self.stale += 1
                continue
            observed = now - hint.age
            by_sender = self._held.get(hint.peer)
            previous = None if by_sender is None else by_sender.get(message.sender)
            if previous is not None and previous.expires_at <= now:
                previous = None
            if hint.verdict is HintVerdict.OK:
                if previous is not None and observed >= previous.observed_at and by_sender:
                    del by_sender[message.sender]
                    changed.append(hint)
                continue
            if previous is None and self._held_by(message.sender, now) >= share:
                self.capped += 1
                continue
            if by_sender is None:
                by_sender = self._held[hint.peer] = {}
            if previous is not None and previous.observed_at > observed:
                continue  # an older copy arriving late
            if previous is None and len(by_sender) >= MAX_SENDERS_PER_PEER:
                self._prune_peer(hint.peer, now)
                by_sender = self._held.setdefault(hint.peer, {})
                if len(by_sender) >= MAX_SENDERS_PER_PEER:
                    continue
            by_sender[message.sender] = Held(observed, observed + hint.ttl, hint.ttl)
            if previous is None:
                changed.append(hint)
        return changed

    def factor(self, peer: str, now: float, own_last_success: float | None) -> float:
        """The cost multiplier gossip puts on ``peer`` (1: no effect).

        Our own observations win only where they are *news*: a success of ours that is
        fresh (within ``own_fresh_s``) and newer than what a hint reports cancels that
        hint. Our own failures agree with a bad hint, so they never cancel it. (Any own
        sample used to cancel hints: a quiet client whose last request to the peer had
        just timed out ignored the hint that would have kept it away, and sent it two
        more requests before its own breaker opened, 1.7 s after its neighbour's.)
        """
        by_sender = self._held.get(peer)
        if not by_sender:
            return 1.0
        fresh_ok = (
            own_last_success is not None and now - own_last_success <= self._config.own_fresh_s
        )
        remaining = 0.0
        for held in by_sender.values():
            if held.expires_at <= now:
                continue
            if fresh_ok and own_last_success is not None and own_last_success > held.observed_at:
                continue  # we saw it answer after the sender saw it fail
            remaining = max(remaining, (held.expires_at - now) / held.ttl)
        return 1.0 + (self._config.penalty - 1.0) * min(1.0, remaining)

    def _held_by(self, sender: str, now: float) -> int:
        """Peers ``sender`` currently holds bad (unexpired) in this book."""
        return sum(
            1
            for by_sender in self._held.values()
            if (h := by_sender.get(sender)) is not None and h.expires_at > now
        )

    def count(self, peer: str, now: float) -> int:
        """Unexpired bad hints held against ``peer``."""
        by_sender = self._held.get(peer)
        if not by_sender:
            return 0
        return sum(1 for h in by_sender.values() if h.expires_at > now)

    def prune(self, now: float, known: Collection[str] | None = None) -> None:
        """Drop expired hints (and peers no longer known)."""
        for peer in list(self._held):
            if known is not None and peer not in known:
                del self._held[peer]
            else:
                self._prune_peer(peer, now)

    def clear(self) -> None:
        self._held.clear()

    def _prune_peer(self, peer: str, now: float) -> None:
        by_sender = self._held[peer]
        for sender in [s for s, h in by_sender.items() if h.expires_at <= now]:
            del by_sender[sender]
        if not by_sender:
            del self._held[peer]
