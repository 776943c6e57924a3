"""The Compose lab's shape for a run (lab/stack/shape.py): the generated override clones
the base services with the next address, port, proxy and labels, and keeps their
hardening. The last test parses the override with the real `docker compose config`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lab.scenario.plan import spec
from lab.stack import shape as shaping
from lab.stack.shape import BASE, Shape, override, wanted_services

ROOT = Path(__file__).resolve().parents[2]

HARDENING = {"user": "10001:10001", "read_only": True, "cap_drop": ["ALL"], "pids_limit": 128}


def _worker(i: int) -> dict[str, Any]:
    """A base worker as `docker compose config --format json` prints it."""
    return {
        **HARDENING,
        "command": ["worker", f"--name=worker-{i}", "--port=1337", f"--announce-port={21000 + i}",
                    f"--seed={i}"],
        "ports": [{"mode": "ingress", "host_ip": "127.0.0.1", "target": 9100,
                   "published": str(9100 + i), "protocol": "tcp"}],
        "networks": {"lab": {"ipv4_address": f"10.231.0.2{i}"}},
        "labels": {"com.grenache-lab.service": "worker", "com.grenache-lab.index": str(i),
                   "com.grenache-lab.control": f"127.0.0.1:{9100 + i}",
                   "com.grenache-lab.proxy": f"worker-{i}",
                   "com.grenache-lab.announce": f"toxiproxy:{21000 + i}"},
        "environment": {"PYTHONUNBUFFERED": "1"},
    }  # fmt: skip


def _grape(i: int) -> dict[str, Any]:
    return {
        **HARDENING,
        "command": ["grape", "--api-port=30001", "--bootstrap=grape-1:20001,grape-2:20001"],
        "ports": [{"host_ip": "127.0.0.1", "target": 30001, "published": str(30000 + i)}],
        "networks": {"lab": None},
        "labels": {"com.grenache-lab.service": "grape", "com.grenache-lab.index": str(i),
                   "com.grenache-lab.control": f"127.0.0.1:{30000 + i}"},
    }  # fmt: skip


MODEL: dict[str, Any] = {
    "services": {
        **{f"grape-{i}": _grape(i) for i in (1, 2, 3)},
        **{f"worker-{i}": _worker(i) for i in (1, 2, 3)},
        "toxiproxy": {},
        "client-random": {},
        "client-adaptive-2": {},
        "client-prequal": {"profiles": ["policies"]},
        "client-c3": {"profiles": ["policies"]},
    }
}


def test_the_base_shape_adds_nothing_and_runs_no_profiled_client() -> None:
    assert override(MODEL, BASE) == {"services": {}}
    assert "client-prequal" not in wanted_services(MODEL, BASE)
    assert "worker-3" in wanted_services(MODEL, BASE)


def test_extra_workers_get_their_own_address_port_proxy_and_labels() -> None:
    out = override(MODEL, Shape(workers=11, worker_concurrency=2))["services"]
    w = out["worker-11"]
    assert "--name=worker-11" in w["command"] and "--announce-port=21011" in w["command"]
    assert "--seed=11" in w["command"]
    assert w["ports"][0]["published"] == "9111" and w["ports"][0]["host_ip"] == "127.0.0.1"
    assert w["networks"] == {"lab": {"ipv4_address": "10.231.0.31"}}
    labels = w["labels"]
    assert labels["com.grenache-lab.index"] == "11"
    assert labels["com.grenache-lab.control"] == "127.0.0.1:9111"
    assert labels["com.grenache-lab.proxy"] == "worker-11"
    assert labels["com.grenache-lab.announce"] == "toxiproxy:21011"
    for key, value in HARDENING.items():
        assert w[key] == value, key
    assert w["environment"] == {"PYTHONUNBUFFERED": "1", "LAB_WORKER_CONCURRENCY": "2"}
    # the base workers only gain the bound (environment merges by key in Compose)
    assert out["worker-1"] == {"environment": {"LAB_WORKER_CONCURRENCY": "2"}}
    assert MODEL["services"]["worker-3"]["command"][1] == "--name=worker-3"  # not mutated
    addresses = {s["networks"]["lab"]["ipv4_address"] for n, s in out.items() if "networks" in s}
    assert len(addresses) == 8  # worker-4..11, all distinct


def test_extra_grapes_bootstrap_from_the_base_three() -> None:
    g = override(MODEL, Shape(grapes=5))["services"]["grape-5"]
    assert "--bootstrap=grape-1:20001,grape-2:20001,grape-3:20001" in g["command"]
    assert g["ports"][0]["published"] == "30005"
    assert g["labels"]["com.grenache-lab.control"] == "127.0.0.1:30005"


def test_fewer_workers_leave_the_rest_out_and_named_clients_in() -> None:
    wanted = wanted_services(MODEL, Shape(workers=2, clients=("client-prequal",)))
    assert "worker-3" not in wanted and "worker-2" in wanted
    assert "client-prequal" in wanted and "client-c3" not in wanted
    assert Shape(workers=2).peers() == {"toxiproxy:21001", "toxiproxy:21002"}


def test_shapes_out_of_bounds_are_refused() -> None:
    for bad in ({"workers": 0}, {"workers": 17}, {"grapes": 2}, {"worker_concurrency": -1}):
        with pytest.raises(ValueError):
            Shape(**bad)  # type: ignore[arg-type]
    assert (spec.COMPOSE_MAX_WORKERS, spec.COMPOSE_MAX_GRAPES) == (
        shaping.MAX_WORKERS,
        shaping.MAX_GRAPES,
    )


def _compose() -> list[str] | None:
    if shutil.which("docker") is None:
        return None
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return ["docker", "compose"] if probe.returncode == 0 else None


@pytest.mark.skipif(_compose() is None, reason="the docker compose CLI is not installed")
def test_real_compose_merges_the_override_into_hardened_services(tmp_path: Path) -> None:
    """`docker compose config` only parses (no engine): the override Compose really reads."""
    argv = [*(_compose() or []), "-p", "grenache-lab", "-f", str(ROOT / "compose.yaml")]
    out = subprocess.run(
        [*argv, "--profile", "policies", "config", "--format", "json"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    model = json.loads(out)
    assert {"client-prequal", "client-c3"} <= set(model["services"])
    extra = tmp_path / "o.json"
    extra.write_text(json.dumps(override(model, Shape(grapes=4, workers=11, worker_concurrency=3))))
    merged = json.loads(
        subprocess.run(
            [*argv, "-f", str(extra), "config", "--format", "json"],
            capture_output=True, text=True, check=True, cwd=ROOT,
        ).stdout
    )["services"]  # fmt: skip
    w = merged["worker-11"]
    assert w["cap_drop"] == ["ALL"] and w["read_only"] is True and w["user"] == "10001:10001"
    assert w["networks"]["lab"]["ipv4_address"] == "10.231.0.31"
    assert [p["published"] for p in w["ports"]] == ["9111"]
    assert w["environment"]["LAB_WORKER_CONCURRENCY"] == "3"
    assert merged["worker-1"]["environment"]["LAB_WORKER_CONCURRENCY"] == "3"
    assert [p["published"] for p in merged["worker-1"]["ports"]] == ["9101"]
    assert merged["grape-4"]["labels"]["com.grenache-lab.control"] == "127.0.0.1:30004"
    assert "client-prequal" not in merged  # profiled: absent unless asked for
