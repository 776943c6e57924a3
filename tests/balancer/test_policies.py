"""Policies by name, the baselines, and the adaptive policy's pure choices."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from lab.balancer.adaptive import AdaptivePolicy
from lab.balancer.attempts import AttemptConfig
from lab.balancer.breaker import State
from lab.balancer.gossip import Hint, HintVerdict, Message
from lab.balancer.policies import OraclePolicy, Pick
from lab.balancer.registry import make_policy
from lab.clock import FakeClock
from lab.errors import NoPeerAvailable, SettingsError
from lab.history import Outcome

PEERS = ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"]
A, B, C = PEERS


def policy(name: str, clock: FakeClock, **options: object) -> object:
    p = make_policy(name, clock=clock, rng=random.Random(1), **options)
    p.set_peers(PEERS)
    return p


def test_make_policy_by_name_and_clear_errors(clock: FakeClock) -> None:
    for name in ("adaptive", "random", "round_robin", "oracle"):
        assert make_policy(name, clock=clock, rng=random.Random(0)).name == name
    with pytest.raises(SettingsError, match="unknown 'fastest'"):
        make_policy("fastest", clock=clock, rng=random.Random(0))
    with pytest.raises(SettingsError, match="unknown option 'breaker'"):
        make_policy("random", clock=clock, rng=random.Random(0), breaker={})
    with pytest.raises(SettingsError, match=r"breaker\.failure_rate"):
        make_policy("adaptive", clock=clock, rng=random.Random(0), breaker={"failure_rate": 2})
    with pytest.raises(SettingsError, match="attempts"):
        make_policy("adaptive", clock=clock, rng=random.Random(0), attempts={"nope": 1})
    p = make_policy("adaptive", clock=clock, rng=random.Random(0), attempts={"floor_s": 0.05})
    assert isinstance(p, AdaptivePolicy) and p.attempts.floor_s == 0.05


def test_round_robin_cycles_in_order_and_skips_tried(clock: FakeClock) -> None:
    p = make_policy("round_robin", clock=clock, rng=random.Random(0))
    p.set_peers([C, A, B])
    assert [p.choose().peer for _ in range(4)] == [A, B, C, A]
    assert p.choose({B}).peer == C
    with pytest.raises(NoPeerAvailable, match="already tried"):
        p.choose(set(PEERS))


def test_random_is_uniform_and_never_retries(clock: FakeClock) -> None:
    p = make_policy("random", clock=clock, rng=random.Random(2))
    p.set_peers(PEERS)
    counts = Counter(p.choose().peer for _ in range(3000))
    assert all(900 < counts[x] < 1100 for x in PEERS)
    assert not p.retries and not p.try_retry()
    with pytest.raises(NoPeerAvailable, match="no peer known"):
        make_policy("random", clock=clock, rng=random.Random(0)).choose()


def test_oracle_skips_exactly_the_faulty(clock: FakeClock) -> None:
    p = make_policy("oracle", clock=clock, rng=random.Random(2))
    assert isinstance(p, OraclePolicy)
    p.set_peers(PEERS)
    p.set_faulty([B])
    counts = Counter(p.choose().peer for _ in range(2000))
    assert counts[B] == 0 and counts[A] > 900 and counts[C] > 900
    p.set_faulty(PEERS)  # nothing healthy left: any peer beats none
    assert p.choose().peer in PEERS
    assert p.faulty() == PEERS


def _serve(p: AdaptivePolicy, clock: FakeClock, latency: dict[str, float], n: int) -> Counter[str]:
    """``n`` sequential requests at 100/s, each answered after the peer's latency."""
    sent: Counter[str] = Counter()
    for _ in range(n):
        pick = p.choose()
        p.started(pick)
        clock.advance(latency[pick.peer])
        p.finished(pick, latency[pick.peer], Outcome.OK)
        clock.advance(0.01)
        sent[pick.peer] += 1
    return sent


def test_p2c_prefers_the_fast_peer(clock: FakeClock) -> None:
    p = policy("adaptive", clock)
    assert isinstance(p, AdaptivePolicy)
    latency = {A: 0.001, B: 0.0012, C: 0.100}
    _serve(p, clock, latency, 100)  # learn
    sent = _serve(p, clock, latency, 1000)
    assert sent[C] / 1000 < 0.05  # only the decay's occasional probes
    assert sent[C] > 0  # ...but not starved outright
    assert sent[A] > sent[B] * 0.6


def test_latency_noise_below_the_floor_does_not_herd(clock: FakeClock) -> None:
    """1, 4 and 15 ms are all 'fast' (under the 20 ms floor): each gets about a third.

    Without the floor and the tie band the 1 ms peer took nearly everything and the
    15 ms one starved, which is what made healed workers' shares keep dipping.
    """
    p = policy("adaptive", clock)
    latency = {A: 0.001, B: 0.004, C: 0.015}
    _serve(p, clock, latency, 100)
    sent = _serve(p, clock, latency, 1500)
    for peer in (A, B, C):
        assert 0.25 < sent[peer] / 1500 < 0.42, sent


def test_a_new_peer_is_priced_at_the_median_and_ramps(clock: FakeClock) -> None:
    p = make_policy("adaptive", clock=clock, rng=random.Random(4))
    assert isinstance(p, AdaptivePolicy)
    p.set_peers([A, B])
    _serve(p, clock, {A: 0.001, B: 0.003}, 100)
    p.set_peers([A, B, C])
    stats = {s.peer: s for s in p.stats()}
    assert stats[C].ewma_s is None
    assert stats[C].detail["latency_s"] == pytest.approx(p.typical_latency(clock.monotonic()))
    assert stats[C].detail["weight"] == pytest.approx(0.1)
    first = _serve(p, clock, {A: 0.001, B: 0.001, C: 0.001}, 50)  # 0.5 s
    clock.advance(3.0)
    later = _serve(p, clock, {A: 0.001, B: 0.001, C: 0.001}, 300)
    assert first[C] / 50 < later[C] / 300
    assert later[C] / 300 > 0.2


def test_attempt_timeout_uses_the_typical_latency_not_a_slow_peers(clock: FakeClock) -> None:
    p = policy("adaptive", clock, attempts=AttemptConfig(floor_s=0.05, multiplier=4))
    assert isinstance(p, AdaptivePolicy)
    _serve(p, clock, {A: 0.03, B: 0.03, C: 0.03}, 60)
    slow = Pick(C, p._peers[C].breaker.acquire(clock.monotonic()))
    p.started(slow)
    p.finished(slow, 0.5, Outcome.OK)  # C turned slow
    typical = p.typical_latency(clock.monotonic())
    assert typical < 0.035
    assert p.attempt_timeout(C, 5.0) == pytest.approx(4 * typical)
    assert p.attempt_timeout(A, 0.02) == 0.02  # bounded by the deadline
    clock.advance(100)  # everything decays toward zero: the floor holds
    assert p.attempt_timeout(A, 5.0) == 0.05


def test_breaker_state_shows_in_stats_and_gossip_verdicts(clock: FakeClock) -> None:
    p = policy("adaptive", clock)
    assert isinstance(p, AdaptivePolicy)
    for _ in range(2):
        pick = Pick(C, p._peers[C].breaker.acquire(clock.monotonic()))
        p.started(pick)
        clock.advance(0.1)
        p.finished(pick, 0.1, Outcome.TIMEOUT)
    stats = {s.peer: s for s in p.stats()}
    assert stats[C].breaker == "open" and stats[C].detail["trips"] == 1
    (hint,) = p.verdicts()
    assert (hint.peer, hint.verdict, hint.age) == (C, HintVerdict.BAD, 0.0)
    assert all(p.choose().peer != C for _ in range(200))


def test_hints_steer_choice_unless_we_saw_the_peer_answer_since(clock: FakeClock) -> None:
    p = policy("adaptive", clock)
    assert isinstance(p, AdaptivePolicy)
    _serve(p, clock, {A: 0.001, B: 0.001, C: 0.001}, 60)
    message = Message("127.0.0.2:7946", (Hint(C, HintVerdict.BAD, 0.5, 3.0),))
    # the sender saw C fail 0.5 s ago; C answered us since, within the last second:
    # our newer view wins
    assert p.take_hints(message) == list(message.hints)
    assert {s.peer: s.hints for s in p.stats()}[C] == 1
    sent = _serve(p, clock, {A: 0.001, B: 0.001, C: 0.001}, 30)
    assert sent[C] > 0
    clock.advance(1.1)  # idle for a while: now the fresh hint decides
    p.take_hints(Message("127.0.0.2:7946", (Hint(C, HintVerdict.BAD, 0.0, 3.0),)))
    picks = Counter(p.choose().peer for _ in range(300))
    assert picks[C] == 0
    p.set_hints_enabled(False)  # gossip off: hints forgotten
    assert {s.peer: s.hints for s in p.stats()}[C] == 0
    assert Counter(p.choose().peer for _ in range(300))[C] > 0


def test_every_breaker_open_fails_fast_then_probes_early_with_panic_off(
    clock: FakeClock,
) -> None:
    p = policy("adaptive", clock, panic={"max_ejected_share": 1.0})
    assert isinstance(p, AdaptivePolicy)
    for peer in PEERS:
        for _ in range(5):
            pick = Pick(peer, p._peers[peer].breaker.acquire(clock.monotonic()))
            p.started(pick)
            p.finished(pick, 0.001, Outcome.ERROR)
    with pytest.raises(NoPeerAvailable, match="every peer's breaker is open"):
        p.choose()
    clock.advance(0.41)  # the base open time (minus jitter) has passed
    pick = p.choose()
    assert pick.permit is not None and pick.permit.probe
    assert p._peers[pick.peer].breaker.state(clock.monotonic()) is State.HALF_OPEN
