"""Known answers: detection and recovery on synthetic histories whose truth is set.

10,000 seeds at 100 req/s (Poisson arrivals, the lab's rate): the policy's true share of
the faulty peer P is a known function of time, each attempt goes to P with that
probability, and the estimator must land within 0.5 s of the instant the true share
crossed its threshold in >= 99 % of seeds (issue 12's bar). Also the noise case that
made the old 500 ms estimator unreliable: a policy that recovers at once (the oracle)
must measure <= 0.5 s in >= 99 % of seeds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from lab.scenario.checks.recovery import Measure, detection_of, recovery_of

RATE = 100.0
SEEDS = 10_000
FAIR = 1 / 3  # three healthy peers
Share = Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]


def _arrivals(rng: np.random.Generator, span: float) -> npt.NDArray[np.float64]:
    gaps = rng.exponential(1 / RATE, int(span * RATE * 1.3) + 50)
    t = np.cumsum(gaps)
    return t[t < span]


def _errors(
    case: Callable[[np.random.Generator], tuple[float, Measure]],
) -> tuple[npt.NDArray[np.float64], int]:
    errs, unmeasured = [], 0
    for seed in range(SEEDS):
        truth, m = case(np.random.default_rng(seed))
        if m.value is None:
            unmeasured += 1
        else:
            errs.append(m.value - truth)
    return np.asarray(errs), unmeasured


def _share_within(errs: npt.NDArray[np.float64], unmeasured: int, tol: float = 0.5) -> float:
    return float(np.sum(np.abs(errs) <= tol)) / (len(errs) + unmeasured)


def _detect(probe_share: float) -> Callable[[np.random.Generator], tuple[float, Measure]]:
    """Fair share until T (uniform in [0, 3) s after t0), then ``probe_share``."""

    def case(rng: np.random.Generator) -> tuple[float, Measure]:
        truth = rng.uniform(0.0, 3.0)
        t = _arrivals(rng, 20.0)
        hits = rng.random(len(t)) < np.where(t < truth, FAIR, probe_share)
        return truth, detection_of(t, hits, 0.0, 20.0)

    return case


def _recover(ramp_s: float) -> Callable[[np.random.Generator], tuple[float, Measure]]:
    """No share until S, then a linear ramp to fair over ``ramp_s`` (0: a step).

    The truth is when the true share crosses half the fair share: S + ramp_s / 2.
    """

    def case(rng: np.random.Generator) -> tuple[float, Measure]:
        start = rng.uniform(0.0, 3.0)
        t = _arrivals(rng, 12.0)
        share = FAIR * np.clip((t - start) / ramp_s, 0, 1) if ramp_s else (t >= start) * FAIR
        hits = rng.random(len(t)) < share
        return start + ramp_s / 2, recovery_of(t, hits, 0.0, 12.0, 3)

    return case


def test_detection_of_a_step_lands_within_half_a_second_in_99_percent_of_seeds() -> None:
    errs, unmeasured = _errors(_detect(0.0))
    assert _share_within(errs, unmeasured) >= 0.99
    assert abs(float(np.median(errs))) < 0.1  # and is not biased


def test_detection_with_probes_to_the_faulty_peer_afterwards() -> None:
    """1 % of choices still go to P after the switch (half-open probes)."""
    errs, unmeasured = _errors(_detect(0.01))
    assert _share_within(errs, unmeasured) >= 0.99


def test_recovery_of_a_step_lands_within_half_a_second_in_99_percent_of_seeds() -> None:
    errs, unmeasured = _errors(_recover(0.0))
    assert _share_within(errs, unmeasured) >= 0.99
    assert abs(float(np.median(errs))) < 0.1


def test_recovery_of_a_slow_start_ramp_is_when_it_crosses_half_the_fair_share() -> None:
    """A ramp crosses the line less sharply: the window's noise (sd ~0.05 of share)
    over the ramp's slope spreads the crossing (2 s ramp: sd ~0.3 s)."""
    errs, unmeasured = _errors(_recover(1.0))
    assert _share_within(errs, unmeasured) >= 0.99
    errs, unmeasured = _errors(_recover(2.0))
    assert _share_within(errs, unmeasured, tol=0.75) >= 0.99


def test_an_at_once_recovery_measures_at_most_half_a_second() -> None:
    """The oracle's case: fair share from the heal on (binomial noise only)."""

    def case(rng: np.random.Generator) -> tuple[float, Measure]:
        t = _arrivals(rng, 12.0)
        return 0.0, recovery_of(t, rng.random(len(t)) < FAIR, 0.0, 12.0, 3)

    errs, unmeasured = _errors(case)
    assert _share_within(errs, unmeasured) >= 0.99
    assert unmeasured == 0 and float(np.max(errs)) <= 1.0  # noise never holds it back long


def test_a_policy_that_never_leaves_or_never_returns_is_not_measured() -> None:
    rng = np.random.default_rng(1)
    t = _arrivals(rng, 20.0)
    stays = rng.random(len(t)) < FAIR
    assert detection_of(t, stays, 0.0, 20.0).value is None
    assert recovery_of(t, np.zeros(len(t), dtype=np.bool_), 0.0, 20.0, 3).value is None
