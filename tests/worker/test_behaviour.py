"""Behaviour knobs: parsing, partial updates with errors naming the field, seeded draws."""

from __future__ import annotations

import random
from typing import Any

import pytest

from lab.errors import SettingsError
from lab.worker.behaviour import Behaviour, Latency, parse_latency


@pytest.mark.parametrize(
    ("text", "kind", "params"),
    [
        ("fixed:0", "fixed", (0.0,)),
        ("uniform:100-300", "uniform", (100.0, 300.0)),
        ("normal:300,50", "normal", (300.0, 50.0)),
        ("exp:50", "exp", (50.0,)),
    ],
)
def test_parse_latency(text: str, kind: str, params: tuple[float, ...]) -> None:
    lat = parse_latency(text)
    assert (lat.kind, lat.params) == (kind, params)
    assert parse_latency(lat.spec()) == lat


@pytest.mark.parametrize("text", ["", "fixed", "slow:3", "uniform:300-100", "fixed:-1", "exp:x"])
def test_bad_latency_is_refused(text: str) -> None:
    with pytest.raises(SettingsError):
        parse_latency(text)


def test_partial_update_keeps_the_rest() -> None:
    b = Behaviour(parse_latency("uniform:1-2"), 0.1, 3)
    b2 = b.updated({"error_rate": 0.5})
    assert (b2.latency, b2.error_rate, b2.cpu_ms) == (b.latency, 0.5, 3)
    b3 = b2.updated({"latency": {"kind": "fixed", "ms": 300}})
    assert b3.latency == Latency("fixed", (300.0,)) and b3.error_rate == 0.5
    assert b3.to_json()["latency"] == {"kind": "fixed", "ms": 300.0}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ([1], "body"),
        ({"eror_rate": 1}, "eror_rate"),
        ({"error_rate": 2}, "error_rate"),
        ({"error_rate": True}, "error_rate"),
        ({"cpu_ms": -1}, "cpu_ms"),
        ({"latency": 5}, "latency"),
        ({"latency": {"kind": "slow"}}, "latency.kind"),
        ({"latency": {"kind": "fixed"}}, "latency.ms"),
        ({"latency": {"kind": "fixed", "ms": 1, "max_ms": 2}}, "latency.max_ms"),
        ({"latency": {"kind": "uniform", "min_ms": 5, "max_ms": 1}}, "latency.max_ms"),
    ],
)
def test_bad_updates_name_the_field(change: Any, field: str) -> None:
    with pytest.raises(SettingsError, match=rf"^{field}\b"):
        Behaviour().updated(change)


def test_get_json_round_trips_through_put() -> None:
    b = Behaviour(parse_latency("normal:300,50"), 0.25, 1.5)
    got = b.to_json()
    assert Behaviour().updated({k: got[k] for k in ("latency", "error_rate", "cpu_ms")}) == b


def test_draws_follow_the_distribution_and_the_seed() -> None:
    lat = parse_latency("uniform:100-300")
    a = [lat.sample_ms(random.Random(7)) for _ in range(3)]
    assert a == [lat.sample_ms(random.Random(7)) for _ in range(3)]
    rng = random.Random(1)
    draws = [lat.sample_ms(rng) for _ in range(2000)]
    assert min(draws) >= 100 and max(draws) <= 300
    assert 190 < sum(draws) / len(draws) < 210
    exp = [parse_latency("exp:50").sample_ms(rng) for _ in range(4000)]
    assert 45 < sum(exp) / len(exp) < 55
    assert all(parse_latency("normal:10,50").sample_ms(rng) >= 0 for _ in range(500))


@pytest.mark.parametrize("kind", [[], {}, None, 5, ["fixed"]])
def test_a_latency_kind_of_the_wrong_type_is_a_clear_error(kind: object) -> None:
    """``{"latency": {"kind": []}}`` used to raise TypeError (unhashable): a 500."""
    with pytest.raises(SettingsError, match=r"latency\.kind"):
        Behaviour().updated({"latency": {"kind": kind}})
