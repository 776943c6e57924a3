"""The retry budget: exhaustion, refill as the window slides, the per-second floor."""

from __future__ import annotations

import pytest

from lab.balancer.budget import BudgetConfig, RetryBudget


def test_floor_alone_allows_min_per_s_times_window() -> None:
    b = RetryBudget(BudgetConfig(percent=0.2, min_per_s=1.0, window_s=10.0))
    granted = sum(b.try_withdraw(0.0) for _ in range(15))
    assert granted == 10
    assert b.spent == 10 and b.refused == 5


def test_twenty_percent_of_requests_on_top_of_the_floor() -> None:
    b = RetryBudget(BudgetConfig(percent=0.2, min_per_s=0.0, window_s=10.0))
    for _ in range(100):
        b.deposit(1.0)
    assert b.balance(1.0) == pytest.approx(20)
    granted = sum(b.try_withdraw(1.0) for _ in range(30))
    assert granted == 20
    assert not b.can_withdraw(1.0)


def test_exhausted_budget_refills_as_the_window_slides() -> None:
    b = RetryBudget(BudgetConfig(percent=0.2, min_per_s=0.0, window_s=10.0, buckets=10))
    for _ in range(50):
        b.deposit(0.5)
    assert sum(b.try_withdraw(0.5) for _ in range(20)) == 10
    assert not b.try_withdraw(5.0)  # half a window later: still spent
    for _ in range(50):
        b.deposit(5.0)  # new requests deposit more
    assert sum(b.try_withdraw(5.0) for _ in range(20)) == 10
    assert not b.try_withdraw(5.0)
    # once the first second's requests *and* retries have left, only the later ones count
    assert b.balance(10.5) == pytest.approx(0.2 * 50 - 10)
    assert b.balance(15.5) == pytest.approx(0.0)
    assert b.try_withdraw(15.6) is False
    b.deposit(16.0)
    for _ in range(10):
        b.deposit(16.0)
    assert b.try_withdraw(16.0)


def test_budget_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="percent"):
        BudgetConfig(percent=-0.1)
    with pytest.raises(ValueError, match="window_s"):
        BudgetConfig(window_s=0)
