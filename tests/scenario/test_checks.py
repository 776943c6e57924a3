"""The checker on hand-built histories whose answers are known exactly."""

from __future__ import annotations

import numpy as np
from histbuild import (
    STEP,
    T0,
    A,
    B,
    C,
    fault,
    history,
    round_robin,
    stream,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.history import Attempt, Outcome
from lab.scenario.checks.figures import client_figures, fault_windows
from lab.scenario.checks.recovery import (
    DETECTION_SHARE,
    Measure,
    as_arrays,
    detection,
    quantile,
    recovery,
    share_windows,
    wilson,
)

RR = round_robin((A, B, C))


def adaptive_choice(i: int, t: float) -> str:
    """Round robin; at the fault two more tries on B (10.0, 10.25), then A/C; from 21 s
    round robin again starting with B."""
    if t < 10:
        return RR(i, t)
    if t < 10.375:
        return {10.0: B, 10.125: A, 10.25: B}[t]
    if t < 21:
        return A if i % 2 else C
    k = round((t - 21) / STEP)
    return (B, A, C)[k % 3]


def oracle_choice(i: int, t: float) -> str:
    return A if 10 <= t < 20 and i % 2 else C if 10 <= t < 20 else RR(i, t)


def partitioned(t: float, peer: str) -> Outcome:
    return Outcome.TIMEOUT if 10 <= t < 20 and peer == B else Outcome.OK


def run() -> dict[str, object]:
    reqs = (
        stream("client-adaptive", "adaptive", 0, 40, adaptive_choice)
        + stream("client-random", "random", 0, 40, RR, outcome=partitioned)
        + stream("client-oracle", "oracle", 0, 40, oracle_choice)
    )
    h = history(reqs, [fault()])
    return dict(client_figures(h, warmup_s=5))


def test_detection_is_exactly_the_last_attempt_to_p() -> None:
    figs = run()
    adaptive = figs["client-adaptive"]
    assert adaptive.detection == Measure(0.25)  # last B attempt at 10.25 s


def test_client_that_never_leaves_p_is_never_detected_with_a_reason() -> None:
    random = run()["client-random"]
    assert random.detection.value is None
    assert "still >= 5 %" in (random.detection.reason or "")
    assert random.detection.reason and random.detection.reason.startswith("f1: ")


def test_oracle_that_skips_p_from_t0_detects_at_zero() -> None:
    assert run()["client-oracle"].detection == Measure(0.0)


def test_recovery_is_when_share_stays_above_half_the_fair_share() -> None:
    figs = run()
    assert figs["client-adaptive"].recovery == Measure(1.0)  # B again from 21 s
    assert figs["client-random"].recovery == Measure(0.0)


def test_availability_counts_requests_issued_in_the_fault_window() -> None:
    figs = run()
    # 80 requests in [10, 20); round robin sends i = 82, 85, ..., 157 to B: 26 time out
    assert figs["client-random"].availability == Measure(54 / 80)
    assert figs["client-adaptive"].availability == Measure(1.0)
    f1 = figs["client-random"].faults[0]
    assert f1.requests == 80 and f1.errors == 26


def test_faulty_share_and_attempts_before_detection() -> None:
    figs = run()
    adaptive = figs["client-adaptive"].faults[0]
    assert adaptive.attempts_to_faulty_before_detection == 2
    assert adaptive.faulty_share == Measure(2 / 80)
    assert figs["client-adaptive"].max_faulty_share == Measure(2 / 80)


def test_latency_quantiles_before_and_during_and_their_ratio() -> None:
    def slow_b(t: float, peer: str) -> float:
        return 0.25 if 10 <= t < 20 and peer == B else 1 / 64

    h = history(stream("c", "random", 0, 30, RR, latency=slow_b), [fault(kind="latency")])
    cf = client_figures(h, warmup_s=5)["c"]
    assert cf.p99_ms_before == 15.625 and cf.p50_ms_before == 15.625
    assert cf.p99_ms_during == 250.0 and cf.p50_ms_during == 15.625
    assert cf.p99_ratio == Measure(16.0)
    assert cf.faults[0].p99_ratio == 16.0


def test_rejected_requests_do_not_flatter_latency_but_count_as_failures() -> None:
    def rejected(t: float, peer: str) -> Outcome:
        return Outcome.REJECTED if 10 <= t < 20 and peer == B else Outcome.OK

    def slow(t: float, peer: str) -> float:
        return 0.0 if 10 <= t < 20 and peer == B else 1 / 64

    h = history(stream("c", "random", 0, 30, RR, latency=slow, outcome=rejected), [fault()])
    cf = client_figures(h, warmup_s=5)["c"]
    assert cf.p50_ms_during == 15.625
    assert cf.availability == Measure(54 / 80)


def test_empty_fault_window_gives_none_with_reasons() -> None:
    reqs = stream("c", "random", 0, 10, RR) + stream("c", "random", 20, 30, RR)
    cf = client_figures(history(reqs, [fault()]), warmup_s=5)["c"]
    f1 = cf.faults[0]
    assert f1.detection == Measure(None, "no attempts during the fault")
    assert f1.availability.value is None and f1.availability.reason
    assert cf.p99_ratio.value is None


def test_fault_never_confirmed_is_skipped_and_grape_fault_has_no_detection() -> None:
    reqs = stream("c", "random", 0, 30, RR)
    h = history(
        reqs,
        [
            fault("f1", start=None, end=None),
            fault("g1", peer="", kind="kill", target="grape-1", start=12, end=18),
        ],
        duration=30,
    )
    windows, skipped = fault_windows(h)
    assert [w.fault.id for w in windows] == ["g1"]
    assert [(f.id, why) for f, why in skipped] == [("f1", "never confirmed in place")]
    cf = client_figures(h, warmup_s=5)["c"]
    assert cf.faults[0].detection == Measure(None, "the fault names no peer")
    assert cf.detection == Measure(None, "no fault in this run names a peer")
    assert cf.availability == Measure(1.0)


def test_unhealed_fault_ends_with_the_run() -> None:
    h = history(stream("c", "random", 0, 30, RR), [fault(end=None)], duration=30)
    (w,) = fault_windows(h)[0]
    assert w.t1 == T0 + 30 and w.t_end == T0 + 30
    cf = client_figures(h)["c"]
    assert cf.faults[0].recovery.value is None


def test_gossip_lag_and_lead_compare_clients_of_one_run() -> None:
    def quiet(i: int, t: float) -> str:
        if t < 10:
            return RR(i, t)
        return {10.0: A, 10.5: B}.get(t, C if i % 2 else A)

    reqs = stream("loud", "adaptive", 0, 40, adaptive_choice) + stream(
        "quiet", "adaptive", 0, 40, quiet, step=0.25
    )
    h = history(reqs, [fault()])
    figs = client_figures(h, warmup_s=5, gossip={"loud": False, "quiet": True})
    assert figs["quiet"].detection == Measure(0.5)  # its one attempt to B, at 10.5 s
    assert figs["quiet"].gossip_lag == Measure(0.25)
    assert figs["loud"].gossip_lag == Measure(-0.25)
    assert figs["quiet"].gossip_lead == Measure(-0.25)  # gossip did not help here
    assert figs["loud"].gossip_lead == Measure(None, "f1: gossip is off for this client")
    alone = client_figures(h, gossip={"loud": True, "quiet": True})["quiet"]
    assert alone.gossip_lead.value is None
    assert "compare two runs" in (alone.gossip_lead.reason or "")


def test_recovery_needs_traffic_and_healthy_peers() -> None:
    atts = [Attempt(A, T0 + 1, T0 + 1.01, Outcome.OK)]
    assert recovery(atts, (B,), T0 + 5, T0 + 10, 3).reason == "no attempts after the heal"
    assert recovery(atts, (B,), T0 + 5, T0 + 10, 0).value is None
    assert recovery(atts, (B,), T0 + 5, T0 + 5, 3).reason == "no time observed after the heal"
    assert detection(atts, (), T0, T0 + 1).reason == "the fault names no peer"


def test_quantile_is_nearest_rank() -> None:
    assert quantile([], 0.5) is None
    assert quantile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert quantile([float(i) for i in range(1, 101)], 0.99) == 99.0
    assert quantile([5.0], 0.999) == 5.0


grid = st.integers(min_value=0, max_value=5 * 64).map(lambda k: k / 64)


@settings(max_examples=200, deadline=None)
@given(
    attempts=st.lists(st.tuples(grid, st.sampled_from([A, B, C])), max_size=120),
    size=st.integers(min_value=1, max_value=60),
)
def test_share_windows_match_a_naive_count(attempts: list[tuple[float, str]], size: int) -> None:
    atts = [Attempt(p, T0 + t, T0 + t + 0.01, Outcome.OK) for t, p in attempts]
    lo, hi = T0 + 1, T0 + 4
    w = share_windows(*as_arrays(atts, (B,)), lo, hi, size)
    inside = sorted((a for a in atts if lo <= a.start < hi), key=lambda a: a.start)
    if not inside:
        assert w is None
        return
    assert w is not None
    n = min(size, len(inside))
    assert len(w.share) == len(inside) - n + 1
    for i in range(len(w.share)):
        win = inside[i : i + n]
        assert w.share[i] == sum(a.peer == B for a in win) / n
        assert w.mid[i] == (win[0].start + win[-1].start) / 2
        assert w.low[i] <= w.share[i] <= w.high[i]


def test_wilson_interval_matches_the_textbook_values() -> None:
    # 8 of 50 at 95 %: (0.0834, 0.2852), the score interval's published value
    lo, hi = wilson(np.array([8.0]), np.array([50.0]), 1.959964)
    assert abs(lo[0] - 0.0834) < 5e-4 and abs(hi[0] - 0.2852) < 5e-4
    lo, hi = wilson(np.array([0.0]), np.array([50.0]))
    assert lo[0] == 0.0 and 0 < hi[0] < 0.15


@settings(max_examples=150, deadline=None)
@given(attempts=st.lists(st.tuples(grid, st.sampled_from([A, B, C])), min_size=1, max_size=120))
def test_detection_holds_its_definition(attempts: list[tuple[float, str]]) -> None:
    atts = sorted(
        (Attempt(p, T0 + t, T0 + t + 0.01, Outcome.OK) for t, p in attempts),
        key=lambda a: a.start,
    )
    t0, t1 = T0 + 1, T0 + 4
    m = detection(atts, (B,), t0, t1)
    w = share_windows(*as_arrays(atts, (B,)), t0, t1)
    if m.value is None:
        assert m.reason
        return
    assert w is not None
    assert 0 <= m.value < t1 - t0
    at = t0 + m.value
    # no window confidently >= 5 % is centred after the detection instant ...
    assert not any(lo > DETECTION_SHARE and mid > at for lo, mid in zip(w.low, w.mid, strict=True))
    # ... and it is an attempt to P (the last one the policy made), or t0 with none
    assert m.value == 0 or any(a.peer == B and a.start == at for a in atts)


def _every_third_to_b(dip: tuple[float, float]) -> list[Attempt]:
    """100/s for 10 s from T0; B gets every third attempt except during ``dip``."""
    out = []
    for i in range(1000):
        t = T0 + i / 100
        in_dip = T0 + dip[0] <= t < T0 + dip[1]
        out.append(Attempt(B if i % 3 == 0 and not in_dip else A, t, t + 0.005, Outcome.OK))
    return out


def test_recovery_tolerates_a_dip_after_the_hold_but_not_inside_it() -> None:
    # a dip 5 s after the heal is past the 3 s hold: recovered at once
    assert recovery(_every_third_to_b((5, 6)), (B,), T0, T0 + 10, 3) == Measure(0.0)
    # the same dip 1 s after the heal is inside it: recovery waits until it has passed
    # (the last window holding a dip attempt ends 0.5 s after it)
    measured = recovery(_every_third_to_b((1, 2)), (B,), T0, T0 + 10, 3).value
    assert measured is not None and 2.0 <= measured <= 2.5


def test_requests_between_a_fault_request_and_its_confirmation_are_not_steady_state() -> None:
    """A kill bites while ``docker kill`` returns: 0.25 s before the read-back confirms it.

    The failures in that gap belong to the fault: "before" ends at the request, so the
    steady-state latency before the fault stays that of the healthy requests.
    """
    import dataclasses

    from histbuild import request

    reqs = stream("client-random", "random", 0, 20, RR)
    reqs += [
        request(
            "client-random",
            "random",
            900 + k,
            9.75 + k * STEP,
            B,
            latency=1.0,
            outcome=Outcome.TIMEOUT,
        )
        for k in range(2)
    ]
    f = dataclasses.replace(fault(start=10.0), requested=T0 + 9.75)
    figs = client_figures(history(reqs, [f], duration=20.0))
    p99 = figs["client-random"].p99_ms_before
    assert p99 is not None and abs(p99 - 10.0) < 1e-6  # the healthy 10 ms answers only


def test_recovery_is_judged_against_the_peers_up_at_the_heal() -> None:
    # Every peer down at 10 s, back one by one at 14, 17, 20 s: the first one back has
    # the traffic to itself (fair 1/1), the last one shares it with two (fair 1/3).
    faults = [
        fault("d1", A, 10.0, 14.0, kind="down", target="worker-1"),
        fault("d2", B, 10.0, 17.0, kind="down", target="worker-2"),
        fault("d3", C, 10.0, 20.0, kind="down", target="worker-3"),
    ]
    reqs = stream("c", "adaptive", 0.0, 30.0, round_robin((A, B, C)))
    windows, skipped = fault_windows(history(reqs, faults))
    assert not skipped
    assert [(w.fault.id, w.healthy_after) for w in windows] == [("d1", 1), ("d2", 2), ("d3", 3)]
