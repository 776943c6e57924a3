"""The learner's client on Compose (issue 15, item 3), without Docker: compose.yaml's
``client-byo`` is hardened like every client, the shape starts it only for a run that
names a policy of the learner's (profile ``byo``, the policy and name by environment),
the arguments given to ``docker compose``, and the name the run's engine finds it by.
The last test asks the real ``docker compose config`` (a parser; no engine)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from lab.errors import LabError, SettingsError
from lab.scenario.plan import byo as plan_byo
from lab.scenario.plan.fit import HostFacts
from lab.scenario.plan.spec import parse_scenario
from lab.scenario.run.run_command import shape_of
from lab.scenario.runtime.compose import NAME_LABEL, target_name
from lab.stack import shape as shaping
from lab.stack.shape import BASE, Byo, Shape, byo_env, up_args, wanted_services

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = "policies/template.py:TemplatePolicy"
MODEL: dict[str, Any] = {
    "services": {
        "grape-1": {},
        "worker-1": {},
        "toxiproxy": {},
        "client-random": {},
        "client-c3": {"profiles": ["policies"]},
        "client-byo": {"profiles": ["byo"]},
    }
}


def services() -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    return found


def test_client_byo_is_hardened_like_the_other_clients_and_mounts_policies_read_only() -> None:
    svc, base = services()["client-byo"], services()["client-random"]
    for key in ("user", "read_only", "tmpfs", "cap_drop", "security_opt", "pids_limit",
                "mem_limit", "cpu_shares", "init", "volumes", "logging"):  # fmt: skip
        assert svc[key] == base[key], key
    assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
    assert svc["volumes"] == ["./policies:/tmp/policies:ro"]  # the working directory's policies/
    assert svc["ports"] == ["127.0.0.1:8511:8500"]
    assert svc["profiles"] == [shaping.BYO_PROFILE]
    published = {p for s in services().values() for p in s.get("ports", [])}
    assert sum(1 for s in services().values() for _ in s.get("ports", [])) == len(published)
    env = svc["environment"]
    assert env["LAB_CLIENT_POLICY"] == f"${{{shaping.BYO_POLICY_ENV}:-{TEMPLATE}}}"
    assert env["LAB_CLIENT_NAME"] == f"${{{shaping.BYO_NAME_ENV}:-client-byo}}"
    assert env["LAB_CLIENT_GOSSIP_KEY"] == base["environment"]["LAB_CLIENT_GOSSIP_KEY"]
    assert not any(a.startswith(("--policy", "--name")) for a in svc["command"])  # env decides
    labels = svc["labels"]
    assert labels["com.grenache-lab.service"] == "client"
    assert labels["com.grenache-lab.policy"] == env["LAB_CLIENT_POLICY"]
    assert labels[NAME_LABEL] == env["LAB_CLIENT_NAME"]
    assert shaping.BYO_SERVICE == plan_byo.BYO_SERVICE == "client-byo"


def test_only_a_shape_with_a_learner_client_runs_client_byo() -> None:
    assert "client-byo" not in wanted_services(MODEL, BASE)
    assert byo_env(BASE) == {}
    mine = Shape(byo=Byo("client-you", TEMPLATE))
    wanted = wanted_services(MODEL, mine)
    assert "client-byo" in wanted and "client-c3" not in wanted
    assert byo_env(mine) == {"LAB_BYO_POLICY": TEMPLATE, "LAB_BYO_NAME": "client-you"}
    assert mine != BASE  # so the run restores the base lab after it


def test_compose_arguments_name_both_profiles_and_never_build_or_pull(tmp_path: Path) -> None:
    args = up_args(None, ["client-byo", "grape-1"])
    assert args == ["--profile", "policies", "--profile", "byo", "up", "--detach",
                    "--no-build", "--pull", "never", "client-byo", "grape-1"]  # fmt: skip
    override = tmp_path / "shape.compose.json"
    assert up_args(override, ["grape-1"])[:2] == ["-f", str(override)]


def test_a_compose_scenario_shapes_the_lab_with_its_learner_client() -> None:
    text = f"name: t\nclients: [{TEMPLATE}, random, c3]\nload: {{rate: 10}}\nduration: 20s\n"
    sc = parse_scenario(text, "t.yaml", host=HostFacts(cores=2, mem_mib=24_000), root=ROOT)
    shape = shape_of(sc)
    assert shape.byo == Byo("client-TemplatePolicy", TEMPLATE)
    assert shape.clients == ("client-c3",)
    plain = parse_scenario(text.replace(f"{TEMPLATE}, ", ""), "t.yaml",
                           host=HostFacts(cores=2, mem_mib=24_000))  # fmt: skip
    assert shape_of(plain).byo is None


def _container(service: str, **labels: str) -> Any:
    return SimpleNamespace(
        labels={"com.docker.compose.service": service, **labels},
        name=f"grenache-lab-{service}-1",
    )


def test_the_run_finds_the_learner_client_by_the_scenarios_name() -> None:
    client = {"com.grenache-lab.service": "client"}
    byo = _container("client-byo", **client, **{NAME_LABEL: "client-you"})
    rnd = _container("client-random", **{"com.grenache-lab.service": "client"})
    services = {"client-byo", "client-random"}
    assert target_name(byo, services) == "client-you"
    assert target_name(rnd, services) == "client-random"
    # a label naming another service is ignored: never two containers under one name
    liar = _container("client-byo", **{"com.grenache-lab.service": "client",
                                       NAME_LABEL: "client-random"})  # fmt: skip
    assert target_name(liar, services) == "client-byo"
    worker = _container("worker-1", **{"com.grenache-lab.service": "worker", NAME_LABEL: "x"})
    assert target_name(worker, {"worker-1"}) == "worker-1"


def _compose() -> list[str] | None:
    if shutil.which("docker") is None:
        return None
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return ["docker", "compose"] if probe.returncode == 0 else None


def test_real_compose_interpolates_the_learner_policy_into_client_byo() -> None:
    """`docker compose config` only parses (no engine): what Compose would really start."""
    compose = _compose()
    if compose is None:
        pytest.skip("the docker compose CLI is not installed")
    argv = [*compose, "-p", "grenache-lab", "-f", str(ROOT / "compose.yaml")]
    env = {"PATH": os.environ.get("PATH", ""), **byo_env(Shape(byo=Byo("client-you", TEMPLATE)))}
    out = subprocess.run(
        [*argv, *shaping.profile_args(), "config", "--format", "json"],
        capture_output=True, text=True, check=True, cwd=ROOT, env=env,
    ).stdout  # fmt: skip
    svc = json.loads(out)["services"]["client-byo"]
    assert svc["environment"]["LAB_CLIENT_POLICY"] == TEMPLATE
    assert svc["environment"]["LAB_CLIENT_NAME"] == "client-you"
    assert svc["labels"][NAME_LABEL] == "client-you"
    assert svc["labels"]["com.grenache-lab.policy"] == TEMPLATE
    (mount,) = svc["volumes"]
    assert mount["source"] == str(ROOT / "policies") and mount["read_only"] is True
    assert mount["target"] == "/tmp/policies"
    assert svc["ports"][0]["host_ip"] == "127.0.0.1"
    plain = subprocess.run(
        [*argv, "config", "--format", "json"], capture_output=True, text=True, check=True,
        cwd=ROOT, env={"PATH": env["PATH"]},
    ).stdout  # fmt: skip
    assert "client-byo" not in json.loads(plain)["services"]  # its own profile: never by default


def test_a_learner_client_that_exits_at_start_shows_its_whole_traceback() -> None:
    log = "lab client: /tmp/policies/x.py:5: importing failed\nTraceback ...\nZeroDivisionError"
    dead = SimpleNamespace(
        labels={"com.docker.compose.service": "client-byo"}, name="b", status="exited",
        logs=lambda tail: log.encode(),
    )  # fmt: skip
    engine: Any = SimpleNamespace(containers=lambda all: [dead])
    mine = Shape(byo=Byo("client-you", "policies/x.py:X"))
    err = shaping._byo_failed(engine, mine)
    assert err is not None and str(err).endswith(log)
    assert "client-byo (client-you, policy policies/x.py:X) exited at start" in str(err)
    assert shaping._byo_failed(engine, BASE) is None  # no learner client: the health error
    dead.status = "running"
    assert shaping._byo_failed(engine, mine) is None


def test_a_local_file_run_on_compose_has_its_learner_policy_checked_first() -> None:
    faulty = "tests/balancer/policy_files/faulty.py"
    text = (
        "name: t\nruntime: local\ntopology: {grapes: 3, workers: 3}\n"
        "clients: [%s, random]\nload: {rate: 10}\nduration: 20s\n"
    )
    host = HostFacts(cores=2, mem_mib=24_000)
    two = parse_scenario(text % f"{TEMPLATE}, {faulty}:Raises", "t.yaml", host=host, root=ROOT)
    with pytest.raises(LabError, match=r"t.yaml: the compose lab runs one policy of yours"):
        shape_of(two)
    outside = parse_scenario(text % f"{faulty}:Raises", "t.yaml", host=host, root=ROOT)
    with pytest.raises(SettingsError, match="the only folder its clients mount"):
        shape_of(outside)
    inside = parse_scenario(text % TEMPLATE, "t.yaml", host=host, root=ROOT)
    assert shape_of(inside).byo == Byo("client-TemplatePolicy", TEMPLATE)
