"""compose.yaml bounds every container (issue 13, item 6): a pids limit, rotated logs, and
health for every service: the Python services' asked from the host (a label names the
path; no in-container probe, issue 11), Toxiproxy's own CLI without a shell (FROM scratch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def services() -> dict[str, Any]:
    model = yaml.safe_load((ROOT / "compose.yaml").read_text())
    found: dict[str, Any] = model["services"]
    assert len(found) == 18  # 12 always up, 6 profiled clients (4 field policies, 1 variant, byo)
    return found


def test_every_service_has_a_pids_limit_and_rotated_logs() -> None:
    for name, svc in services().items():
        assert 0 < int(svc["pids_limit"]) <= 256, name
        logging = svc["logging"]
        assert logging["driver"] == "json-file", name
        assert logging["options"]["max-size"].endswith("m"), name
        assert int(logging["options"]["max-file"]) >= 1, name


def test_every_service_has_health_and_none_needs_a_shell() -> None:
    for name, svc in services().items():
        if name == "toxiproxy":
            continue
        assert "healthcheck" not in svc, name  # asked from the host, never a docker exec
        assert svc["labels"]["com.grenache-lab.health"].startswith("/"), name
    check = services()["toxiproxy"]["healthcheck"]
    assert check["test"] == ["CMD", "/toxiproxy-cli", "inspect", "worker-3"]  # no /bin/sh
    assert check["interval"] == "30s"  # not a periodic burst during measurements
    dockerfile = (ROOT / "images" / "toxiproxy" / "Dockerfile").read_text()
    assert "COPY toxiproxy-cli /toxiproxy-cli" in dockerfile
