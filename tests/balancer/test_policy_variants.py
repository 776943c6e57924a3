"""Named variants of a policy: ``adaptive_hedged`` is the adaptive policy with hedging on,
selectable wherever a policy name is (``lab client --policy``, scenarios, Compose)."""

from __future__ import annotations

import random

import pytest

from lab.balancer.adaptive import AdaptivePolicy
from lab.balancer.registry import POLICY_NAMES, VARIANTS, make_policy
from lab.clock import FakeClock
from lab.errors import SettingsError
from lab.history import Outcome
from lab.scenario.plan.clients import COMPOSE_CLIENTS
from lab.scenario.plan.spec import parse_scenario
from lab.scenario.run.run_command import PROFILED_CLIENTS

PEERS = ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"]


def built(name: str, **options: object) -> AdaptivePolicy:
    policy = make_policy(name, clock=FakeClock(1000.0), rng=random.Random(1), **options)
    assert isinstance(policy, AdaptivePolicy)
    policy.set_peers(PEERS)
    return policy


def answered(policy: AdaptivePolicy, n: int) -> None:
    """``n`` answers of 10 ms from the first peer, each through the policy's own pick."""
    for _ in range(n):
        pick = policy.choose()
        policy.started(pick)
        policy.finished(pick, 0.010, Outcome.OK)


def test_the_hedged_variant_hedges_and_plain_adaptive_does_not() -> None:
    hedged, plain = built("adaptive_hedged"), built("adaptive")
    answered(hedged, 30)
    answered(plain, 30)
    assert hedged.name == "adaptive_hedged" and plain.name == "adaptive"
    assert hedged.attempts.hedge and not plain.attempts.hedge
    assert hedged.hedge_delay() == pytest.approx(0.010)
    assert plain.hedge_delay() is None


def test_a_callers_options_merge_over_the_variants_preset_field_by_field() -> None:
    policy = built("adaptive_hedged", attempts={"hedge_quantile": 0.5})
    assert policy.attempts.hedge and policy.attempts.hedge_quantile == 0.5
    with pytest.raises(SettingsError, match="adaptive policy: attempts"):
        built("adaptive_hedged", attempts={"hedge_quantel": 0.5})


def test_the_variant_name_is_listed_where_policies_are_named() -> None:
    with pytest.raises(SettingsError) as info:
        make_policy("adaptive_hedge", clock=FakeClock(0.0), rng=random.Random(1))
    assert "adaptive_hedged" in str(info.value)
    for name in VARIANTS:
        assert name in POLICY_NAMES
        assert f"client-{name}" in PROFILED_CLIENTS  # started only for runs that name it


def test_a_compose_scenario_runs_adaptive_beside_its_hedged_variant() -> None:
    text = (
        "name: t\nseed: 7\nclients: [adaptive, adaptive_hedged, oracle]\n"
        "load: {rate: 50}\nduration: 20s\n"
        "timeline:\n  - {at: 5s, fault: latency, target: worker-2, latency_ms: 300}\n"
    )
    s = parse_scenario(text, "t.yaml")
    assert [(c.name, c.policy) for c in s.clients] == [
        ("client-adaptive", "adaptive"),
        ("client-adaptive_hedged", "adaptive_hedged"),
        ("client-oracle", "oracle"),
    ]
    assert COMPOSE_CLIENTS["client-adaptive_hedged"] == "adaptive_hedged"
