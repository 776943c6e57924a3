"""Gossip messages and the hint book: format checks, expiry, own observations win."""

from __future__ import annotations

import json
import random

import pytest

from lab.balancer.adaptive import AdaptivePolicy
from lab.balancer.gossip import (
    GossipConfig,
    Hint,
    HintBook,
    HintVerdict,
    Message,
    Rejected,
    decode,
    encode,
    seal,
    unseal,
)
from lab.balancer.registry import make_policy
from lab.clock import FakeClock

ME = "127.0.0.1:7001"
PEERS = {"10.0.0.1:1", "10.0.0.2:1"}
CFG = GossipConfig(hint_ttl_s=2.0, own_fresh_s=1.0, penalty=10.0)


def bad(peer: str = "10.0.0.1:1", age: float = 0.0, ttl: float = 2.0) -> Hint:
    return Hint(peer, HintVerdict.BAD, age, ttl)


def test_round_trip() -> None:
    data = encode("127.0.0.2:7001", [bad(age=0.25), Hint("10.0.0.2:1", HintVerdict.OK, 0.0, 2.0)])
    m = decode(data, me=ME, max_ttl=30.0)
    assert m.sender == "127.0.0.2:7001"
    assert m.hints == (bad(age=0.25), Hint("10.0.0.2:1", HintVerdict.OK, 0.0, 2.0))


def test_encode_keeps_under_the_size_limit() -> None:
    hints = [bad(f"10.0.{i // 250}.{i % 250}:1") for i in range(128)]
    data = encode("127.0.0.2:7001", hints, max_bytes=1024)
    assert len(data) <= 1024
    assert 0 < len(decode(data, me=ME, max_ttl=30.0, max_bytes=1024).hints) < 128


def _msg(**over: object) -> bytes:
    base: dict[str, object] = {"v": 1, "sender": "127.0.0.2:7001", "hints": [bad().to_json()]}
    base.update(over)
    return json.dumps(base).encode()


def _hint(**over: object) -> bytes:
    return _msg(hints=[{**bad().to_json(), **over}])


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\xff\xfe not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"x" * 9000, "too large"),
        (_msg(v=2), "version"),
        (_msg(v=True), "version"),
        (_msg(sender=ME), "from ourselves"),
        (_msg(sender=5), "sender"),
        (_msg(sender="no-port"), "sender"),
        (_msg(hints="all"), "hints: not a list"),
        (_msg(hints=[{}] * 129), "more than"),
        (_msg(hints=[7]), "not an object"),
        (_hint(verdict="meh"), "verdict"),
        (_hint(age="0"), "age: not a number"),
        (_hint(age=True), "age: not a number"),
        (_hint(age=-0.5), "future"),
        (_hint(ttl=0), "ttl"),
        (_hint(ttl=1e9), "ttl"),
        (_hint(peer=None), "peer"),
        (b'{"v": 1, "sender": "127.0.0.2:7001", "hints": [{"age": NaN}]}', "NaN"),
        (_hint(age=1e999), "not JSON"),  # json.dumps writes Infinity
        (b"[" * 4000 + b"]" * 4000, "nested deeper"),  # was an uncaught RecursionError
        (_msg(hints=[{**bad().to_json(), "x": [[[[1]]]]}]), "nested deeper"),
        (_msg(seq=-1), "seq"),
        (_msg(seq="1"), "seq"),
        (_msg(seq=2**64), "seq"),
    ],
)
def test_hostile_datagrams_are_rejected_with_a_reason(data: bytes, why: str) -> None:
    with pytest.raises(Rejected, match=why):
        decode(data, me=ME, max_ttl=30.0)


def test_a_bad_hint_penalises_and_decays_until_it_expires() -> None:
    book = HintBook(CFG)
    changed = book.merge(Message("127.0.0.2:7001", (bad(age=0.5),)), 10.0, PEERS)
    assert changed == [bad(age=0.5)]
    # observed at 9.5, expires at 11.5: at 10.0, 3/4 of its life is left
    assert book.factor("10.0.0.1:1", 10.0, None) == pytest.approx(1 + 9 * 0.75)
    assert book.factor("10.0.0.2:1", 10.0, None) == 1.0
    assert book.count("10.0.0.1:1", 10.0) == 1
    assert book.factor("10.0.0.1:1", 11.0, None) == pytest.approx(1 + 9 * 0.25)
    assert book.factor("10.0.0.1:1", 11.5, None) == 1.0
    assert book.count("10.0.0.1:1", 11.5) == 0
    book.prune(11.5)
    assert book.count("10.0.0.1:1", 11.5) == 0


def test_stale_hints_are_dropped_on_arrival() -> None:
    book = HintBook(CFG)
    assert book.merge(Message("127.0.0.2:7001", (bad(age=2.5),)), 10.0, PEERS) == []
    assert book.stale == 1
    assert book.factor("10.0.0.1:1", 10.0, None) == 1.0


def test_own_fresh_successes_newer_than_the_hint_win() -> None:
    book = HintBook(CFG)
    book.merge(Message("127.0.0.2:7001", (bad(age=0.5),)), 10.0, PEERS)  # seen bad at 9.5
    # we saw it answer at 9.8, after the sender saw it fail, and 0.2 s ago: ours wins
    assert book.factor("10.0.0.1:1", 10.0, own_last_success=9.8) == 1.0
    # our last success predates the sender's observation: the hint is news, it counts
    assert book.factor("10.0.0.1:1", 10.0, own_last_success=9.3) > 5.0
    # a success newer than the hint but no longer fresh (over 1 s ago) does not cancel it
    assert book.factor("10.0.0.1:1", 11.0, own_last_success=9.8) > 1.0


def test_refreshes_repeat_no_event_and_ok_withdraws() -> None:
    book = HintBook(CFG)
    sender = "127.0.0.2:7001"
    assert len(book.merge(Message(sender, (bad(),)), 10.0, PEERS)) == 1
    assert book.merge(Message(sender, (bad(),)), 10.2, PEERS) == []  # a refresh
    assert book.merge(Message("127.0.0.3:7001", (bad(),)), 10.2, PEERS) != []  # another
    assert book.count("10.0.0.1:1", 10.2) == 2
    ok = Hint("10.0.0.1:1", HintVerdict.OK, 0.0, 2.0)
    assert book.merge(Message(sender, (ok,)), 10.4, PEERS) == [ok]
    assert book.count("10.0.0.1:1", 10.4) == 1
    assert book.merge(Message(sender, (ok,)), 10.5, PEERS) == []  # nothing left to withdraw


def test_hints_about_unknown_peers_are_ignored() -> None:
    book = HintBook(CFG)
    assert book.merge(Message("127.0.0.2:7001", (bad("6.6.6.6:6"),)), 10.0, PEERS) == []
    assert book.count("6.6.6.6:6", 10.0) == 0


def test_one_sender_cannot_outweigh_its_ttl_by_repeating() -> None:
    book = HintBook(CFG)
    for i in range(50):
        book.merge(Message("127.0.0.2:7001", (bad(),)), 10.0 + i * 0.01, PEERS)
    assert book.count("10.0.0.1:1", 10.5) == 1
    assert book.factor("10.0.0.1:1", 10.5, None) <= CFG.penalty


KEY = b"k" * 32


def test_seal_and_unseal() -> None:
    body = encode("127.0.0.2:7001", [bad()], seq=7)
    assert unseal(KEY, seal(KEY, body)) == body
    assert decode(body, me=ME, max_ttl=30.0).seq == 7
    for forged in (
        seal(b"x" * 32, body),  # another lab's key
        seal(KEY, body).replace(b"bad", b"ok!"),  # tampered after sealing
        body,  # not sealed at all
        b"short",
    ):
        with pytest.raises(Rejected, match="mac"):
            unseal(KEY, forged)


def test_one_sender_holds_at_most_its_share_of_peers_bad() -> None:
    """The issue: one datagram claiming two of three workers bad herded every request."""
    peers = {"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"}
    book = HintBook(CFG)
    claim = Message("127.0.0.2:7001", (bad("10.0.0.1:1"), bad("10.0.0.2:1")))
    assert [h.peer for h in book.merge(claim, 10.0, peers)] == ["10.0.0.1:1"]
    assert book.capped == 1 and book.count("10.0.0.2:1", 10.0) == 0
    # A second member's word counts on its own: two members may flag two peers.
    other = Message("127.0.0.3:7001", (bad("10.0.0.2:1"),))
    assert book.merge(other, 10.0, peers) != []
    # Once the first claim expires, the sender may flag another peer.
    later = Message("127.0.0.2:7001", (bad("10.0.0.3:1"),))
    assert book.merge(later, 10.0 + CFG.hint_ttl_s + 0.1, peers) != []
    assert CFG.bad_peers_per_sender(3) == 1 and CFG.bad_peers_per_sender(10) == 3


def test_one_forged_claim_cannot_herd_the_adaptive_policy(clock: FakeClock) -> None:
    peers = ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"]
    policy = make_policy("adaptive", clock=clock, rng=random.Random(3))
    assert isinstance(policy, AdaptivePolicy)
    policy.set_peers(peers)
    claim = Message("127.0.0.9:7001", (bad(peers[0], ttl=3.0), bad(peers[1], ttl=3.0)))
    policy.take_hints(claim)
    counts = dict.fromkeys(peers, 0)
    for _ in range(3000):
        pick = policy.choose()
        counts[pick.peer] += 1
        policy.release(pick)
    # Before: 100 % on the third peer. Now the claim moves at most one peer's share.
    assert counts[peers[2]] / 3000 < 0.75, counts
    assert counts[peers[1]] / 3000 > 0.25, counts
