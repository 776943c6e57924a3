"""least_request, peak_ewma, prequal and c3: their rules, then whole runs on a fake clock.

The unit tests pin each published rule (P2C on in-flight; peak EWMA x load with
failures as samples; Prequal's hot/cold choice, age-out, reuse limit and failed
probes; C3's cubic queue penalty and stale feedback). The runs send one request every
10 ms through :class:`BalancedClient` over a scripted transport whose peers report their
load, and compare each policy with ``random`` on the same script.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from load_transport import LoadScriptedTransport

from lab.balancer.c3 import C3Policy
from lab.balancer.client import BalancedClient
from lab.balancer.feedback import LoadFeedback, ProbeDriven
from lab.balancer.p2c_policies import LeastRequestPolicy, PeakEwmaPolicy
from lab.balancer.policies import Pick
from lab.balancer.prequal import PrequalPolicy
from lab.balancer.registry import POLICY_NAMES, make_policy
from lab.clock import FakeClock
from lab.errors import LabError, NoPeerAvailable, SettingsError
from lab.grenache.load import LoadReport
from lab.history import Outcome

PEERS = ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"]
A, B, C = PEERS
START = 1000.0


def build(name: str, clock: FakeClock, seed: int = 1, **options: object):  # type: ignore[no-untyped-def]
    policy = make_policy(name, clock=clock, rng=random.Random(seed), **options)
    policy.set_peers(PEERS)
    return policy


def report(rif: int, latency_ms: float, queue: int = 0, service_ms: float = 2.0) -> LoadReport:
    return LoadReport(rif, queue, service_ms / 1000, latency_ms / 1000)


# -- registration ------------------------------------------------------------------------


def test_every_new_policy_is_registered_once_and_takes_only_its_options() -> None:
    clock = FakeClock(START)
    for name in ("least_request", "peak_ewma", "prequal", "c3"):
        assert name in POLICY_NAMES
        policy = build(name, clock)
        assert policy.name == name and not policy.retries
    assert build("prequal", clock, config={"pool_size": 4}).config.pool_size == 4  # type: ignore[attr-defined]
    assert build("c3", clock, config={"clients": 5}).config.clients == 5  # type: ignore[attr-defined]
    with pytest.raises(SettingsError, match="least_request policy: unknown option 'config'"):
        build("least_request", clock, config={})
    with pytest.raises(SettingsError, match=r"prequal policy: config\.hot_quantile"):
        build("prequal", clock, config={"hot_quantile": 1.5})
    with pytest.raises(SettingsError, match="c3 policy: config"):
        build("c3", clock, config={"beta": 1})


def test_only_c3_reads_reply_headers_and_only_prequal_probes() -> None:
    clock = FakeClock(START)
    assert [n for n in POLICY_NAMES if isinstance(build(n, clock), LoadFeedback)] == ["c3"]
    assert [n for n in POLICY_NAMES if isinstance(build(n, clock), ProbeDriven)] == ["prequal"]


# -- least_request -------------------------------------------------------------------------


def test_least_request_never_picks_the_busiest_of_three_and_splits_ties() -> None:
    clock = FakeClock(START)
    policy = build("least_request", clock)
    assert isinstance(policy, LeastRequestPolicy)
    for _ in range(3):
        policy.started(Pick(A))
    counts = Counter(policy.choose().peer for _ in range(2000))
    assert counts[A] == 0  # it loses every pair it is drawn into
    assert 0.4 < counts[B] / 2000 < 0.6
    assert policy.choose(exclude={B, C}).peer == A  # the only one left still goes
    with pytest.raises(NoPeerAvailable):
        policy.choose(exclude=set(PEERS))


def test_least_request_balances_in_flight_tightly() -> None:
    clock = FakeClock(START)
    policy = build("least_request", clock, seed=4)
    for _ in range(300):
        policy.started(policy.choose())
    loads = [s.in_flight for s in policy.stats()]
    assert max(loads) - min(loads) <= 2


# -- peak_ewma ---------------------------------------------------------------------------


def test_peak_ewma_costs_latency_times_load_and_peaks_at_once() -> None:
    clock = FakeClock(START)
    policy = build("peak_ewma", clock)
    assert isinstance(policy, PeakEwmaPolicy)
    assert policy.cost(A) == pytest.approx(0.001)  # no sample: the penalty basis
    policy.started(Pick(A))
    policy.finished(Pick(A), 0.010, Outcome.OK)
    policy.started(Pick(A))
    assert policy.cost(A) == pytest.approx(0.010 * 2)
    policy.finished(Pick(A), 0.500, Outcome.OK)  # slower: replaces at once
    assert policy.cost(A) == pytest.approx(0.5)
    clock.advance(10.0)  # one tau later a fast sample weighs 1 - 1/e
    policy.finished(Pick(A), 0.010, Outcome.OK)
    assert policy.cost(A) == pytest.approx(
        0.5 / 2.718281828 + 0.010 * (1 - 1 / 2.718281828), rel=1e-3
    )


def test_peak_ewma_counts_a_timeout_as_a_sample_of_its_length() -> None:
    clock = FakeClock(START)
    policy = build("peak_ewma", clock)
    assert isinstance(policy, PeakEwmaPolicy)
    for peer in PEERS:
        policy.finished(Pick(peer), 0.005, Outcome.OK)
    policy.finished(Pick(C), 1.0, Outcome.TIMEOUT)
    counts = Counter(policy.choose().peer for _ in range(1000))
    assert counts[C] == 0


# -- prequal -----------------------------------------------------------------------------


def prequal(clock: FakeClock, **config: object) -> PrequalPolicy:
    policy = build("prequal", clock, config=config)
    assert isinstance(policy, PrequalPolicy)
    return policy


def test_prequal_sends_probes_per_request_and_falls_back_to_random_without_any() -> None:
    clock = FakeClock(START)
    policy = prequal(clock)
    asked: list[str] = []
    policy.set_prober(asked.append)
    policy.choose()
    assert sorted(asked) == sorted(PEERS)  # 3 distinct peers of 3
    assert policy.fallbacks == 1


def test_prequal_picks_the_fastest_cold_probe_not_the_least_loaded() -> None:
    clock = FakeClock(START)
    policy = prequal(clock, max_uses=100)
    for _ in range(10):  # the RIF distribution: 2s and 3s, so 10 is hot
        policy.take_probe(B, report(2, 40.0))
    for _ in range(10):
        policy.take_probe(C, report(3, 20.0))  # cold, and faster than B
    policy.take_probe(A, report(10, 1.0))  # fastest but hot
    assert policy.hot_threshold() == 3
    assert policy.choose().peer == C
    assert policy.choose(exclude={C}).peer == B


def test_prequal_when_every_probe_is_hot_takes_the_lowest_rif() -> None:
    clock = FakeClock(START)
    policy = prequal(clock, max_uses=100, hot_quantile=0.5)
    for _ in range(10):
        policy.take_probe(B, report(1, 1.0))
    policy.probe_failed(B)  # B's probes go; its RIFs stay in the distribution
    policy.take_probe(A, report(9, 1.0))
    policy.take_probe(C, report(5, 50.0))
    assert policy.choose().peer == C


def test_prequal_probes_age_out_and_are_reused_a_bounded_number_of_times() -> None:
    clock = FakeClock(START)
    policy = prequal(clock, max_uses=2)
    policy.take_probe(A, report(1, 1.0))
    assert [policy.choose().peer for _ in range(2)] == [A, A]
    assert policy.fallbacks == 0
    policy.choose()  # A's probe was used up
    assert policy.fallbacks == 1
    policy.take_probe(B, report(1, 1.0))
    clock.advance(1.01)
    policy.choose()  # B's probe is too old
    assert policy.fallbacks == 2


def test_prequal_counts_its_own_picks_into_a_reused_probe() -> None:
    clock = FakeClock(START)
    policy = prequal(clock, max_uses=10, hot_quantile=0.5)
    for _ in range(8):
        policy.take_probe(B, report(2, 30.0))
    policy.probe_failed(B)
    policy.take_probe(A, report(2, 1.0))
    policy.take_probe(B, report(2, 30.0))
    picks = [policy.choose().peer for _ in range(4)]
    assert picks[0] == A and B in picks  # A turned hot as we loaded it


def test_prequal_pool_is_bounded_and_keeps_the_newest() -> None:
    clock = FakeClock(START)
    policy = prequal(clock, pool_size=2, max_uses=100)
    policy.take_probe(A, report(1, 1.0))
    clock.advance(0.01)
    policy.take_probe(B, report(1, 5.0))
    clock.advance(0.01)
    policy.take_probe(C, report(1, 3.0))
    assert {s.peer: s.detail["probes_held"] for s in policy.stats()} == {A: 0, B: 1, C: 1}
    picks = [policy.choose().peer for _ in range(5)]
    assert picks[0] == C and A not in picks  # A's probe, the oldest, was evicted


# -- c3 ------------------------------------------------------------------------------------


def test_c3_score_is_response_minus_service_plus_cubic_queue_penalty() -> None:
    clock = FakeClock(START)
    policy = build("c3", clock, config={"clients": 2})
    assert isinstance(policy, C3Policy)
    policy.observe_load(A, report(5, 0, queue=4, service_ms=10.0))
    policy.finished(Pick(A), 0.050, Outcome.OK)
    policy.started(Pick(A))  # one outstanding from us
    q_hat = 1 + 1 * 2 + 4
    assert policy.psi(A, clock.monotonic()) == pytest.approx(0.050 - 0.010 + q_hat**3 * 0.010)


def test_c3_avoids_a_peer_reporting_a_queue_and_forgets_stale_feedback() -> None:
    clock = FakeClock(START)
    policy = build("c3", clock)
    assert isinstance(policy, C3Policy)
    for peer, queue in ((A, 6), (B, 0), (C, 1)):
        policy.observe_load(peer, report(queue + 1, 0, queue=queue, service_ms=5.0))
        policy.finished(Pick(peer), 0.005 * (1 + queue), Outcome.OK)
    assert policy.choose().peer == B
    assert policy.choose(exclude={B}).peer == C
    clock.advance(2.5)  # every peer's feedback is stale: unknown again, so tried again
    policy.finished(Pick(B), 0.005, Outcome.OK)
    assert policy.choose(exclude={C}).peer == A


def test_c3_on_a_plain_peer_ranks_by_response_time() -> None:
    clock = FakeClock(START)
    policy = build("c3", clock)
    for peer, rtt in ((A, 0.030), (B, 0.003), (C, 0.010)):
        policy.finished(Pick(peer), rtt, Outcome.OK)
    assert policy.choose().peer == B


# -- whole runs ----------------------------------------------------------------------------


@dataclass
class Run:
    issued: list[tuple[float, bool, str | None, float]] = field(default_factory=list)

    def availability(self, lo: float = 0.0, hi: float = 1e9) -> float:
        window = [ok for t, ok, _, _ in self.issued if lo <= t < hi]
        return sum(window) / len(window)

    def share(self, peer: str, lo: float = 0.0, hi: float = 1e9) -> float:
        firsts = [p for t, _, p, _ in self.issued if lo <= t < hi and p is not None]
        return Counter(firsts)[peer] / max(1, len(firsts))

    def quantile(self, q: float) -> float:
        xs = sorted(x for *_, x in self.issued)
        return xs[min(len(xs) - 1, int(q * len(xs)))]


Script = Callable[[LoadScriptedTransport, float], None]


async def simulate(policy_name: str, script: Script, seconds: float) -> Run:
    clock = FakeClock(start=START)
    transport = LoadScriptedTransport(clock)
    policy = make_policy(policy_name, clock=clock, rng=random.Random(3))
    if isinstance(policy, LoadFeedback):
        transport.on_load = policy.observe_load
    if isinstance(policy, ProbeDriven):
        transport.answer_probes_for(policy)
    client = BalancedClient(policy, transport, clock=clock, name="c", linger=False)
    client.set_peers(PEERS)
    run = Run()
    i = 0
    while (due := START + i * 0.01) < START + seconds:
        if clock.monotonic() < due:
            clock.advance(due - clock.monotonic())
        t = clock.monotonic() - START
        script(transport, t)
        try:
            result = await client.request("rpc_test", 1, timeout=1.0)
        except LabError as exc:
            attempts = getattr(exc, "attempts", ())
            first = attempts[0].peer if attempts else None
            run.issued.append((t, False, first, clock.monotonic() - START - t))
        else:
            run.issued.append((t, True, result.attempts[0].peer, clock.monotonic() - START - t))
        i += 1
    return run


NEW = ("least_request", "peak_ewma", "prequal", "c3")


def overloaded_a(transport: LoadScriptedTransport, t: float) -> None:
    """A holds a queue of 20 from other clients from 2 s on (an antagonist's share)."""
    transport.queue[A] = 20 if t >= 2.0 else 0
    transport.sync_latency(PEERS)


@pytest.mark.parametrize("name", ("peak_ewma", "prequal", "c3"))
async def test_load_aware_policies_steer_off_a_loaded_peer_and_beat_random_p99(name: str) -> None:
    ours = await simulate(name, overloaded_a, 8.0)
    rnd = await simulate("random", overloaded_a, 8.0)
    assert ours.availability() == 1.0
    assert ours.share(A, 3.0, 8.0) < 0.05 < 0.25 < rnd.share(A, 3.0, 8.0)
    assert ours.quantile(0.99) < rnd.quantile(0.99) / 2


def linkerd_stall(transport: LoadScriptedTransport, t: float) -> None:
    """One peer answers in 2 s (past the 1 s timeout) from 1 s to 4 s: Linkerd's shape."""
    transport.latency.update({A: 0.005, B: 0.005, C: 2.0 if 1.0 <= t < 4.0 else 0.005})


@pytest.mark.parametrize("name", NEW)
async def test_a_stalled_peer_costs_each_new_policy_less_than_round_robin(name: str) -> None:
    ours = await simulate(name, linkerd_stall, 6.0)
    rr = await simulate("round_robin", linkerd_stall, 6.0)
    assert rr.availability(1.0, 4.0) < 0.99
    if name == "least_request":
        # one request at a time: in-flight is always 0 here, so it is random among all
        assert ours.availability(1.0, 4.0) < 0.99
    else:
        assert ours.availability(1.0, 4.0) > rr.availability(1.0, 4.0)
    if name != "peak_ewma":
        assert ours.share(C, 4.5, 6.0) > 0.05  # and it comes back once healthy


async def test_peak_ewma_takes_a_stalled_peer_back_after_its_cost_decays() -> None:
    """Finagle's decay (tau 10 s) from a 1 s timeout sample to a 5 ms peer's cost:
    10 x ln(1 / 0.005) ~ 53 s after the stall, not before."""
    run = await simulate("peak_ewma", linkerd_stall, 62.0)
    assert run.share(C, 4.5, 40.0) == 0.0
    assert run.share(C, 50.0, 62.0) > 0.0  # tried again; one request at a time, so a
    # sample blended with the old peak keeps it a little dearer than A and B for a while


async def test_prequal_never_picks_a_peer_whose_probes_fail() -> None:
    def down_c(transport: LoadScriptedTransport, t: float) -> None:
        transport.mode[C] = "refused" if t >= 1.0 else "ok"

    run = await simulate("prequal", down_c, 3.0)
    assert run.share(C, 1.1, 3.0) < 0.02
    assert run.availability(1.1, 3.0) > 0.98
