"""Peak EWMA, the bucketed window and per-peer counters, on explicit times."""

from __future__ import annotations

import math

import pytest

from lab.balancer.metrics import MetricsConfig, PeakEwma, PeerMetrics
from lab.balancer.window import BucketRing


def test_peak_ewma_jumps_up_at_once() -> None:
    e = PeakEwma(tau_s=1.0)
    assert e.value(0.0) is None and not e.has_history
    e.observe(0.001, 0.0)
    e.observe(0.300, 0.01)
    assert e.value(0.01) == pytest.approx(0.300)


def test_peak_ewma_decays_with_its_time_constant() -> None:
    e = PeakEwma(tau_s=1.5)
    e.observe(0.300, 10.0)
    assert e.value(10.0 + 1.5) == pytest.approx(0.300 / math.e)
    assert e.value(10.0 + 3.0) == pytest.approx(0.300 / math.e**2)
    assert e.value(9.0) == pytest.approx(0.300)  # never grows when read early


def test_peak_ewma_moves_toward_lower_samples_gradually() -> None:
    e = PeakEwma(tau_s=1.0)
    e.observe(0.100, 0.0)
    e.observe(0.001, 0.01)  # 10 ms later: barely moved
    assert 0.095 < (e.value(0.01) or 0) < 0.100
    t = 0.01
    for _ in range(400):  # a second of 1 ms answers at 2.5 ms spacing: decay and samples
        t += 0.0025  # together pull it down at about twice the rate of 1/tau...
        e.observe(0.001, t)
    assert (e.value(t) or 0) == pytest.approx(0.001 + 0.099 * math.exp(-2), rel=0.05)
    for _ in range(800):  # ...so three seconds bring it to about the new latency
        t += 0.0025
        e.observe(0.001, t)
    assert 0.001 <= (e.value(t) or 0) < 0.0015
    e.reset()
    assert e.value(t) is None


def test_bucket_ring_forgets_after_its_window() -> None:
    r = BucketRing(window_s=2.0, buckets=10)
    r.add(0.05)
    r.add(1.0, 3)
    assert r.total(1.0) == 4
    assert r.total(2.05) == 3  # the first bucket [0, 0.2) has left
    assert r.total(3.3) == 0
    r.add(100.0)  # slot reuse after a long gap does not resurrect old counts
    assert r.total(100.0) == 1


def test_bucket_ring_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="window_s"):
        BucketRing(0.0)
    with pytest.raises(ValueError, match="buckets"):
        BucketRing(1.0, 0)


def test_peer_metrics_counts_timeouts_as_failures_and_tracks_load() -> None:
    m = PeerMetrics(MetricsConfig(window_s=2.0))
    m.started()
    m.started()
    assert m.in_flight == 2
    m.finished(1.0, 0.002, ok=True)
    m.finished(1.1, 0.100, ok=False)  # a timeout: a failure, not a latency sample
    assert m.in_flight == 0
    assert m.counts(1.1) == (1, 1)
    assert m.consecutive_failures == 1
    assert m.ewma.value(1.0) == pytest.approx(0.002)
    assert m.last_failure == 1.1 and m.last_success == 1.0 and m.last_sample == 1.1
    assert m.failure_rate(1.1) == (0.5, 2)
    m.started()
    m.abandoned()
    assert m.in_flight == 0
    assert m.counts(5.0) == (0, 0)


def test_metrics_config_names_the_bad_field() -> None:
    with pytest.raises(ValueError, match="tau_s"):
        MetricsConfig(tau_s=-1)
