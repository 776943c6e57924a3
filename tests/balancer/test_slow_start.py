"""The slow-start ramp."""

from __future__ import annotations

import pytest

from lab.balancer.slowstart import SlowStartConfig


def test_ramp_from_min_weight_to_one_over_the_window() -> None:
    c = SlowStartConfig(window_s=3.0, min_weight=0.1)
    assert c.weight(None, 5.0) == 1.0
    assert c.weight(10.0, 10.0) == pytest.approx(0.1)
    assert c.weight(10.0, 11.5) == pytest.approx(0.55)
    assert c.weight(10.0, 13.0) == 1.0
    assert c.weight(10.0, 9.0) == pytest.approx(0.1)  # never below the floor
    weights = [c.weight(10.0, 10.0 + i * 0.1) for i in range(31)]
    assert weights == sorted(weights)


def test_zero_window_means_no_ramp() -> None:
    assert SlowStartConfig(window_s=0.0).weight(10.0, 10.0) == 1.0


def test_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="min_weight"):
        SlowStartConfig(min_weight=0.0)
