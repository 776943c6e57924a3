"""Every policy is selectable by ``lab client --policy`` and in scenarios, and the client
service connects C3 to the reply headers and Prequal to a prober."""

from __future__ import annotations

import argparse

import pytest

from lab.balancer.prober import Prober
from lab.balancer.registry import POLICY_NAMES
from lab.clock import SYSTEM_CLOCK
from lab.errors import SettingsError
from lab.grenache.transport import HttpTransport
from lab.loadgen.policy_side import PolicySide
from lab.loadgen.settings import ClientSettings, configure, from_args
from lab.scenario.plan.spec import parse_scenario

NEW = ("least_request", "peak_ewma", "prequal", "c3")


def parsed(*argv: str) -> ClientSettings:
    parser = argparse.ArgumentParser()
    configure(parser)
    return from_args(parser.parse_args(list(argv)))


@pytest.mark.parametrize("name", NEW)
def test_lab_client_takes_each_new_policy(name: str) -> None:
    assert parsed(f"--policy={name}").policy == name


def test_lab_client_names_the_choices_on_a_bad_policy(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises((SystemExit, SettingsError)) as info:
        parsed("--policy=prequel")
    text = str(info.value) + capsys.readouterr().err
    assert "prequal" in text and "c3" in text


SCENARIO = """\
name: t
seed: 7
{runtime}clients: [adaptive, {policy}]
load: {{rate: 50}}
duration: 20s
timeline:
  - {{at: 5s, fault: partition, target: worker-2}}
"""


@pytest.mark.parametrize("name", NEW)
def test_scenarios_take_the_new_policies_on_the_local_runtime(name: str) -> None:
    s = parse_scenario(SCENARIO.format(runtime="runtime: local\n", policy=name), "t.yaml")
    assert [c.policy for c in s.clients] == ["adaptive", name]


@pytest.mark.parametrize("name", NEW)
def test_compose_scenarios_take_the_new_policies_from_their_profiled_clients(name: str) -> None:
    s = parse_scenario(SCENARIO.format(runtime="", policy=name), "t.yaml")
    assert [(c.name, c.policy) for c in s.clients] == [
        ("client-adaptive", "adaptive"),
        (f"client-{name}", name),
    ]


def test_every_registered_policy_is_known_to_the_client_settings() -> None:
    for name in POLICY_NAMES:
        assert ClientSettings(policy=name).policy == name


@pytest.mark.parametrize("name", POLICY_NAMES)
async def test_the_client_service_feeds_load_only_to_the_policies_that_read_it(
    name: str,
) -> None:
    transport = HttpTransport()
    settings = ClientSettings(policy=name, bind="127.0.0.1", gossip_port=0, control_port=0)
    side = PolicySide(settings, SYSTEM_CLOCK, transport, lambda _e: None)
    try:
        assert (transport.on_load is not None) == (name == "c3")
        assert isinstance(side.prober, Prober) == (name == "prequal")
    finally:
        await side.aclose()
        await transport.aclose()
