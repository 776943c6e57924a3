"""lab.swarm.stack on compose.yaml's real interpolated model (pure: no engine).

The fixture is ``docker compose -p grenache-lab -f compose.yaml --profile policies
--profile byo config --format json`` with the images of a ``lab up`` (paths rewritten to
/lab). Regenerate it when compose.yaml changes; test_fixture_matches_compose_yaml says when.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.errors import RuntimeUnavailable
from lab.swarm.stack import (
    LOSSES,
    Counts,
    config_name,
    derive_stack,
    toxiproxy_config,
)

HERE = Path(__file__).resolve().parent
MODEL: dict[str, Any] = json.loads((HERE / "compose_model.json").read_text())


@dataclass(frozen=True)
class N:
    name: str
    address: str


NODES = (
    N("lab-n1", "192.168.231.11"),
    N("lab-n2", "192.168.231.12"),
    N("lab-n3", "192.168.231.13"),
)


def _stack(counts: Counts | None = None, nodes: tuple[N, ...] = NODES) -> dict[str, Any]:
    return derive_stack(MODEL, nodes, counts or Counts(), Path("/cache/swarm"))


def _node(svc: dict[str, Any]) -> str:
    (constraint,) = svc["deploy"]["placement"]["constraints"]
    return str(constraint.split("==")[1].strip())


def test_fixture_matches_compose_yaml() -> None:
    """Every service of compose.yaml is in the fixture (a cheap drift alarm)."""
    text = (HERE.parent.parent / "compose.yaml").read_text()
    declared = yaml.safe_load(text)["services"]
    assert set(declared) == set(MODEL["services"])


def test_base_services_and_no_profiled_ones() -> None:
    services = _stack()["services"]
    assert sorted(services) == sorted(
        [f"grape-{i}" for i in (1, 2, 3)]
        + [f"worker-{i}" for i in (1, 2, 3)]
        + ["toxiproxy"]
        + [f"client-{p}" for p in ("adaptive", "random", "round_robin", "oracle", "adaptive-2")]
    )


def test_swarm_rejected_and_silently_dropped_keys_are_gone() -> None:
    stack = _stack()
    assert "name" not in stack
    for name, svc in stack["services"].items():
        for key in (
            "mem_limit",
            "cpus",
            "cpu_shares",
            "pull_policy",
            "depends_on",
            "tmpfs",
            "security_opt",
            "pids_limit",
        ):
            assert key not in svc, (name, key)
        assert svc["networks"] == ["lab"], name
        assert "ipam" not in json.dumps(stack["networks"])


def test_hardening_swarm_honours_is_kept() -> None:
    for name, svc in _stack()["services"].items():
        assert svc["user"] == "10001:10001", name
        assert svc["read_only"] is True
        assert svc["cap_drop"] == ["ALL"]
        assert svc["init"] is True
        assert svc["stop_grace_period"] == "5s"
        assert svc["logging"]["options"] == {"max-file": "2", "max-size": "5m"}
        assert {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 32 * 1024**2}} in svc[
            "volumes"
        ]
        limits = svc["deploy"]["resources"]["limits"]
        assert limits["pids"] == 128
        assert int(limits["memory"]) == int(MODEL["services"][name]["mem_limit"])
    check = _stack()["services"]["toxiproxy"]["healthcheck"]
    assert check["test"][1] == "/toxiproxy-cli"
    assert (check["interval"], check["retries"]) == ("5s", 3)  # Swarm: DNS waits for it


def test_deploy_policy_dnsrr_no_restart_and_reservations_fit_two_cores() -> None:
    services = _stack(Counts(workers=16, grapes=8))["services"]
    cpus = 0.0
    for svc in services.values():
        deploy = svc["deploy"]
        assert deploy["endpoint_mode"] == "dnsrr"
        assert deploy["restart_policy"] == {"condition": "none"}
        cpus += float(deploy["resources"]["reservations"]["cpus"])
        assert "cpus" not in deploy["resources"]["limits"]  # no CFS quota (compose.yaml)
    assert cpus < 2.0  # the whole stack schedules on one 2-core node


def test_ports_are_host_mode_and_control_labels_name_the_node() -> None:
    services = _stack()["services"]
    worker = services["worker-2"]
    assert worker["ports"] == [
        {"target": 9100, "published": 9102, "protocol": "tcp", "mode": "host"}
    ]
    node = {n.name: n for n in NODES}[_node(worker)]
    assert worker["labels"]["com.grenache-lab.control"] == f"{node.address}:9102"
    assert worker["deploy"]["labels"] == worker["labels"]
    assert worker["labels"]["com.grenache-lab.announce"] == "toxiproxy:21002"


def test_workers_spread_over_nodes_and_every_node_used() -> None:
    services = _stack()["services"]
    assert len({_node(services[f"worker-{i}"]) for i in (1, 2, 3)}) == 3
    assert {_node(s) for s in services.values()} == {n.name for n in NODES}
    two = _stack(nodes=NODES[:2])["services"]
    assert len({_node(two[f"worker-{i}"]) for i in (1, 2, 3)}) == 2
    one = _stack(nodes=NODES[:1])["services"]
    assert {_node(s) for s in one.values()} == {"lab-n1"}


def test_toxiproxy_config_by_worker_names_content_hashed() -> None:
    stack = _stack(Counts(workers=5))
    tp = stack["services"]["toxiproxy"]
    assert tp["configs"] == [
        {"source": "toxiproxy", "target": "/config/toxiproxy.json", "mode": 0o444}
    ]
    assert "volumes" not in tp or all(v["type"] != "bind" for v in tp["volumes"])
    content = toxiproxy_config(5)
    proxies = json.loads(content)
    assert [p["upstream"] for p in proxies] == [f"worker-{i}:1337" for i in range(1, 6)]
    assert proxies[4]["listen"] == "0.0.0.0:21005"
    name = config_name(content)
    assert stack["configs"]["toxiproxy"] == {"name": name, "file": f"/cache/swarm/{name}.json"}
    assert config_name(toxiproxy_config(3)) != name
    # the command still reads the file the config lands at
    assert "-config=/config/toxiproxy.json" in tp["command"]


def test_network_is_an_attachable_labelled_overlay() -> None:
    assert _stack()["networks"] == {
        "lab": {
            "driver": "overlay",
            "attachable": True,
            "labels": {"com.grenache-lab.network": "lab"},
        }
    }


def test_more_workers_cloned_from_worker_1() -> None:
    services = _stack(Counts(workers=5))["services"]
    w5 = services["worker-5"]
    assert "--name=worker-5" in w5["command"] and "--announce-port=21005" in w5["command"]
    assert w5["ports"][0]["published"] == 9105
    assert w5["labels"]["com.grenache-lab.proxy"] == "worker-5"
    assert w5["labels"]["com.grenache-lab.index"] == "5"
    assert "networks" in w5 and w5["networks"] == ["lab"]
    assert w5["user"] == services["worker-1"]["user"]


def test_fewer_workers_and_more_grapes() -> None:
    services = _stack(Counts(workers=2, grapes=4))["services"]
    assert "worker-3" not in services and "worker-2" in services
    assert services["grape-4"]["ports"][0]["published"] == 30004
    assert json.loads(toxiproxy_config(2))[-1]["name"] == "worker-2"


def test_extra_and_profiled_clients() -> None:
    services = _stack(Counts(clients=("client-c3", "client-random-2", "client-random-3")))[
        "services"
    ]
    assert "client-c3" in services
    r2, r3 = services["client-random-2"], services["client-random-3"]
    assert "--name=client-random-2" in r2["command"] and "--policy=random" in r2["command"]
    assert r2["labels"]["com.grenache-lab.index"] == "12"
    assert r3["ports"][0]["published"] == 8513
    assert "--seed=23" in r3["command"]
    assert all(v["type"] != "bind" for v in r2["volumes"])  # no policies/ bind on Swarm


def test_refusals_name_the_culprit() -> None:
    with pytest.raises(RuntimeUnavailable, match="client-byo is not offered"):
        _stack(Counts(clients=("client-byo",)))
    with pytest.raises(RuntimeUnavailable, match="client-nope-2"):
        _stack(Counts(clients=("client-nope-2",)))
    odd = json.loads(json.dumps(MODEL))
    odd["services"]["grape-1"]["ulimits"] = {"nofile": 10}
    with pytest.raises(RuntimeUnavailable, match="grape-1 has ulimits"):
        derive_stack(odd, NODES)
    with pytest.raises(ValueError):
        Counts(workers=0)


def test_worker_concurrency_reaches_every_worker() -> None:
    services = _stack(Counts(workers=4, worker_concurrency=8))["services"]
    for i in range(1, 5):
        assert services[f"worker-{i}"]["environment"]["LAB_WORKER_CONCURRENCY"] == "8"


def test_losses_are_said() -> None:
    assert any("cpu_shares" in line for line in LOSSES)
    assert any("no-new-privileges" in line for line in LOSSES)
