"""compose.yaml bounds every container (issue 13, item 6): a pids limit, rotated logs and
a healthcheck on every service, Toxiproxy's without a shell (its image is FROM scratch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def services() -> dict[str, Any]:
    model = yaml.safe_load((ROOT / "compose.yaml").read_text())
    found: dict[str, Any] = model["services"]
    assert len(found) == 12
    return found


def test_every_service_has_a_pids_limit_and_rotated_logs() -> None:
    for name, svc in services().items():
        assert 0 < int(svc["pids_limit"]) <= 256, name
        logging = svc["logging"]
        assert logging["driver"] == "json-file", name
        assert logging["options"]["max-size"].endswith("m"), name
        assert int(logging["options"]["max-file"]) >= 1, name


def test_every_service_has_a_healthcheck_that_needs_no_shell() -> None:
    for name, svc in services().items():
        test = svc["healthcheck"]["test"]
        assert test[0] == "CMD", (name, test)  # CMD-SHELL would need /bin/sh
        assert not {"sh", "/bin/sh", "bash"} & set(test), (name, test)
    toxi = services()["toxiproxy"]["healthcheck"]["test"]
    assert toxi == ["CMD", "/toxiproxy-cli", "inspect", "worker-3"]
    dockerfile = (ROOT / "images" / "toxiproxy" / "Dockerfile").read_text()
    assert "COPY toxiproxy-cli /toxiproxy-cli" in dockerfile
