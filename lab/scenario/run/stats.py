"""Statistics over repeated runs: a median's confidence interval and a two-sample test.

Thin wrappers over ``scipy.stats`` (the ``analysis`` extra) that return plain floats or
``None`` with the reason, never a number made from too little data:

- ``median_ci``: the 95 % percentile bootstrap interval of the median
  (``scipy.stats.bootstrap``, 9,999 resamples, seeded so a re-render is identical). With
  fewer than 3 values there is no interval to speak of. With 5 runs the interval is
  wide by nature; it is shown so a reader sees how far a verdict on the median can be
  trusted (hyperfine and criterion report spread for the same reason).
- ``compare``: Mann-Whitney U, two-sided (``scipy.stats.mannwhitneyu``; Kayenta's canary
  judge uses the same test): does one policy's metric tend to sit above another's? It
  assumes nothing about the distribution, which for recovery times on a busy host is
  anything but normal. With n runs per side the smallest two-sided p-value is
  2 / C(2n, n) (0.0079 for 5 vs 5): a p-value is meaningful from ~4 runs per side.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

CI_LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 9_999
BOOTSTRAP_SEED = 12
MIN_CI_VALUES = 3
MIN_TEST_VALUES = 2


@dataclass(frozen=True, slots=True)
class Comparison:
    """Mann-Whitney U of sample a against sample b (two-sided)."""

    u: float | None
    p_value: float | None
    n_a: int
    n_b: int
    median_diff: float | None  # median(a) - median(b)
    reason: str | None = None


def median(values: Sequence[float]) -> float | None:
    """The sample median (mean of the middle two for an even count); ``None`` when empty."""
    if not values:
        return None
    s = sorted(values)
    k = len(s) // 2
    return s[k] if len(s) % 2 else (s[k - 1] + s[k]) / 2


def median_ci(values: Sequence[float]) -> tuple[float, float] | None:
    """95 % percentile-bootstrap interval of the median; ``None`` below 3 values."""
    if len(values) < MIN_CI_VALUES:
        return None
    if min(values) == max(values):
        return (float(values[0]), float(values[0]))
    import numpy as np
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's notes on tiny samples; the rule is above
        res = stats.bootstrap(
            (np.asarray(values, dtype=np.float64),),
            np.median,
            confidence_level=CI_LEVEL,
            n_resamples=BOOTSTRAP_RESAMPLES,
            method="percentile",
            rng=np.random.default_rng(BOOTSTRAP_SEED),
        )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return (lo, hi)


def compare(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Mann-Whitney U (two-sided) of ``a`` against ``b``; ``None`` below 2 values a side."""
    ma, mb = median(a), median(b)
    diff = None if ma is None or mb is None else ma - mb
    if len(a) < MIN_TEST_VALUES or len(b) < MIN_TEST_VALUES:
        return Comparison(None, None, len(a), len(b), diff, "fewer than 2 measured runs a side")
    if len(set(a) | set(b)) == 1:
        return Comparison(None, 1.0, len(a), len(b), diff, "every value is the same")
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.mannwhitneyu(a, b, alternative="two-sided")
    return Comparison(float(res.statistic), float(res.pvalue), len(a), len(b), diff)
