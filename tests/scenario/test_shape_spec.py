"""Scenario shapes on Compose (issue 16): counts the lab can take, clients of every
policy, worker concurrency, the machine-fit refusal and the antagonist fault kind."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.balancer.registry import POLICY_NAMES, VARIANTS
from lab.errors import ScenarioError
from lab.loadgen import limits
from lab.scenario.plan import fit
from lab.scenario.plan.clients import COMPOSE_CLIENTS
from lab.scenario.plan.fit import Demand, HostFacts, antagonist_cores
from lab.scenario.plan.spec import load_scenario, parse_scenario
from lab.scenario.run.run_command import PROFILED_CLIENTS

ROOT = Path(__file__).resolve().parents[2]
ROOMY = HostFacts(cores=2, mem_mib=24_000)

SHAPED = """\
name: t
topology: {{workers: {workers}, worker_concurrency: 2}}
clients: [{clients}]
load: {{rate: {rate}}}
duration: 30s
timeline:
{timeline}
"""


def shaped(
    workers: int = 11,
    clients: str = "random, prequal",
    rate: float = 40,
    timeline: str = "  - {at: 5s, fault: antagonist, target: worker-11, share: 0.5}",
    host: HostFacts = ROOMY,
) -> object:
    text = SHAPED.format(workers=workers, clients=clients, rate=rate, timeline=timeline)
    return parse_scenario(text, "s.yaml", host=host)


def error_of(**kw: object) -> str:
    with pytest.raises(ScenarioError) as info:
        shaped(**kw)  # type: ignore[arg-type]
    return str(info.value)


def test_every_policy_has_a_compose_client() -> None:
    assert set(COMPOSE_CLIENTS.values()) == set(POLICY_NAMES)
    s = shaped(clients=", ".join(POLICY_NAMES))
    assert [c.name for c in s.clients] == [f"client-{p}" for p in POLICY_NAMES]  # type: ignore[attr-defined]


def test_the_profiled_clients_are_hardened_like_the_base_ones() -> None:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    base = services["client-random"]
    ports = set()
    for name, policy in COMPOSE_CLIENTS.items():
        svc = services[name]
        assert f"--policy={policy}" in svc["command"], name
        assert svc["labels"]["com.grenache-lab.policy"] == policy
        for key in ("user", "read_only", "cap_drop", "security_opt", "pids_limit", "mem_limit"):
            assert svc[key] == base[key], (name, key)
        assert all(p.startswith("127.0.0.1:") for p in svc["ports"])
        ports.add(svc["ports"][0])
        if name in PROFILED_CLIENTS:
            assert svc["profiles"] == ["policies"], name
        else:
            assert "profiles" not in svc, name
    assert len(ports) == len(COMPOSE_CLIENTS)


def test_compose_takes_up_to_16_workers_with_a_concurrency_bound() -> None:
    s = shaped()
    assert (s.topology.workers, s.topology.worker_concurrency) == (11, 2)  # type: ignore[attr-defined]
    assert "topology.workers" in error_of(workers=17)
    text = "name: t\ntopology: {grapes: 1}\nclients: [random]\nload: {rate: 1}\nduration: 9s\n"
    with pytest.raises(ScenarioError, match=r"s.yaml:2: topology.grapes: the compose lab runs 3"):
        parse_scenario(text, "s.yaml", host=ROOMY)
    local = parse_scenario("runtime: local\n" + text, "s.yaml", host=ROOMY)
    assert local.topology.grapes == 1


def test_a_shape_this_machine_cannot_carry_is_refused_naming_why() -> None:
    small = HostFacts(cores=2, mem_mib=2_000)
    text = error_of(host=small)
    assert text.startswith("s.yaml:2: topology:") and "cannot hold the shape" in text
    assert "MiB" in text
    text = error_of(rate=500, clients=", ".join(POLICY_NAMES))  # 9 x 500 req/s on 2 cores
    assert f"cannot carry the load: {500 * len(POLICY_NAMES)} req/s" in text
    # the antagonists' CPU counts: 4 workers fully taken cannot fit in 2 cores
    burn = "\n".join(
        f"  - {{at: 5s, fault: antagonist, target: worker-{i}, share: 0.95}}" for i in range(1, 5)
    )
    assert "cores of antagonists" in error_of(timeline=burn)


def test_antagonists_add_up_only_while_they_overlap() -> None:
    assert antagonist_cores([(0, 10, 0.5), (10, 20, 0.5)]) == 0.5
    assert antagonist_cores([(0, 10, 0.5), (5, 20, 0.25)]) == 0.75
    assert antagonist_cores([]) == 0.0
    d = Demand(grapes=3, workers=3, clients=5, rate=500)
    assert fit.problem(d, HostFacts(cores=2, mem_mib=24_000)) is None


def test_the_fit_budgets_mirror_compose_yaml_limits() -> None:
    model = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for kind, mib in fit.MEM_LIMIT_MIB.items():
        svc = model["services"][
            "toxiproxy"
            if kind == "toxiproxy"
            else f"{kind}-1"
            if kind != "client"
            else "client-random"
        ]
        assert svc["mem_limit"] == f"{mib}m", kind


TOXIPROXY_KIB_PER_CONNECTION = 72
"""Measured: 1,000 open client connections through one proxy, 77.6 MiB RSS (idle: 5)."""


def test_toxiproxy_holds_every_connection_the_cast_may_open() -> None:
    """The one service every request crosses must outlive an overloaded lab: each of the
    Compose cast's clients may hold its whole pool open through it."""
    cast = len(COMPOSE_CLIENTS) + 1  # + client-byo
    worst_mib = cast * limits.MAX_CONNECTIONS * TOXIPROXY_KIB_PER_CONNECTION / 1024
    assert fit.MEM_LIMIT_MIB["toxiproxy"] >= 1.5 * worst_mib


def test_host_facts_are_read_from_this_machine() -> None:
    host = HostFacts.read()
    assert host.cores >= 1 and host.mem_mib > 100


def test_the_antagonist_kind_takes_a_share_and_may_share_a_target_with_another_fault() -> None:
    timeline = (
        "  - {at: 0s, fault: slow, target: worker-1, latency: {kind: fixed, ms: 20}, cpu_ms: 1}\n"
        "  - {at: 5s, fault: antagonist, target: worker-1, share: 0.5, id: a}\n"
        "  - {at: 20s, heal: a}"
    )
    s = shaped(workers=3, timeline=timeline)
    steps = [(p.action, p.kind, p.target, p.params) for p in s.plan()]  # type: ignore[attr-defined]
    assert ("inject", "antagonist", "worker-1", {"share": 0.5}) in steps
    assert steps[0][3] == {"latency": {"kind": "fixed", "ms": 20}, "cpu_ms": 1}
    two = (
        "  - {at: 5s, fault: antagonist, target: worker-1, share: 0.5}\n"
        "  - {at: 6s, fault: antagonist, target: worker-1, share: 0.2}"
    )
    assert "worker-1 already has fault" in error_of(workers=3, timeline=two)
    for bad in ("0", "0.99", "lots"):
        t = f"  - {{at: 5s, fault: antagonist, target: worker-1, share: {bad}}}"
        assert "share" in error_of(workers=3, timeline=t)
    t = "  - {at: 5s, fault: antagonist, target: grape-1, share: 0.5}"
    assert "antagonist acts on worker-N" in error_of(workers=3, timeline=t)


@pytest.mark.parametrize("name", ["linkerd-2016", "antagonist"])
def test_the_canonical_scenarios_run_every_policy_on_compose(name: str) -> None:
    s = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    assert s.runtime == "compose"
    policies = sorted(p for p in POLICY_NAMES if p not in VARIANTS)  # a variant is a setting
    assert sorted(c.policy for c in s.clients) == policies


HEAVY = "name: t\nclients: [random, oracle]\nload: {rate: 900}\nduration: 9s\n"
"""1,800 req/s in all: more than two cores carry."""


def test_a_swarm_run_is_held_to_this_machine_unless_the_swarm_is_of_other_machines() -> None:
    two_cores = HostFacts(cores=2, mem_mib=24_000)
    for run_as in (None, "swarm"):  # the file's compose, or `lab run --runtime swarm`
        with pytest.raises(ScenarioError, match="cannot carry the load"):
            parse_scenario(HEAVY, "s.yaml", host=two_cores, run_as=run_as)
    # local nodes share this machine's cores: a swarm file is checked too
    with pytest.raises(ScenarioError, match="cannot carry the load"):
        parse_scenario("runtime: swarm\n" + HEAVY, "s.yaml", host=two_cores)
    # a swarm of other machines brings its own cores
    remote = parse_scenario(HEAVY, "s.yaml", host=two_cores, run_as="swarm", remote_swarm=True)
    assert remote.load.rate == 900
    # a remote swarm saved does not lift the check from a Compose run
    with pytest.raises(ScenarioError, match="cannot carry the load"):
        parse_scenario(HEAVY, "s.yaml", host=two_cores, run_as="compose", remote_swarm=True)
