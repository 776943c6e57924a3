"""The load limits: one function the control API and the scenario loader both apply."""

from __future__ import annotations

import pytest

from lab.errors import ScenarioError, SettingsError
from lab.loadgen import limits
from lab.loadgen.schedule import LoadSpec
from lab.scenario.plan.spec import parse_scenario

SCENARIO = """\
name: t
seed: 7
clients: [adaptive, {name: client-adaptive-2, rate: 5}]
load: {rate: RATE, payload_bytes: PAYLOAD}
duration: 60s
"""


def scenario(rate: object, payload: object) -> str:
    return SCENARIO.replace("RATE", str(rate)).replace("PAYLOAD", str(payload))


@pytest.mark.parametrize(
    ("rate", "payload", "field"),
    [
        (100_000, 64, "rate"),
        (100, 4 * 2**20, "payload_bytes"),
        (30_000, 2**20, "rate"),
        (2_000, 65536, "payload_bytes"),
        (float("nan"), 64, "rate"),
        (float("inf"), 64, "rate"),
        (-1, 64, "rate"),
    ],
)
def test_refused_loads_name_the_field(rate: float, payload: int, field: str) -> None:
    problem = limits.load_problem(rate, payload)
    assert problem is not None and problem[0] == field
    with pytest.raises(SettingsError, match=f"^{field}: "):
        LoadSpec(rate=rate, payload_bytes=payload)


def test_the_lab_loads_are_accepted() -> None:
    for rate, payload in [(100, 64), (5, 64), (2_000, 4096), (100, 65536), (0, 65536)]:
        assert limits.load_problem(rate, payload) is None


def test_a_scenario_with_one_mib_at_ten_thousand_per_second_is_refused_at_its_line() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(scenario(30_000, 1_048_576), "x.yaml")
    assert str(info.value).startswith("x.yaml:4: load.rate: ")
    with pytest.raises(ScenarioError) as info:
        parse_scenario(scenario(1_000, 65_536), "x.yaml")
    assert str(info.value).startswith("x.yaml:4: load.payload_bytes: ")
    assert "MiB/s" in str(info.value)


def test_a_client_rate_is_held_to_the_payload_too() -> None:
    text = scenario(100, 65_536).replace("rate: 5}", "rate: 1000}")
    with pytest.raises(ScenarioError, match="client-adaptive-2"):
        parse_scenario(text, "x.yaml")
    parse_scenario(scenario(100, 65_536), "x.yaml")  # 6.25 MiB/s: fine


def test_in_flight_cap() -> None:
    assert limits.in_flight_cap(1000, 64) == 1000
    assert limits.in_flight_cap(1000, 65536) == 256
    assert limits.in_flight_cap(1000, 0) == 1000
    assert limits.in_flight_cap(10, 65536) == 10
