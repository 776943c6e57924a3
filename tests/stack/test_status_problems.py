"""`lab status` says what is wrong and exits non-zero (issue 13: it exited 0 with Toxiproxy
exited, and said nothing about a dead run's leftovers). The Docker half is in
test_stack_docker.py; here the judgement over gathered data and the leftovers on disk."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from lab.scenario.faults.marker import MARKER
from lab.stack.status import leftovers, problems


def _data(**services: tuple[str, str]) -> dict[str, Any]:
    return {
        "services": {
            n: {"state": st, "health": h, "exit_code": 137 if st == "exited" else None}
            for n, (st, h) in services.items()
        },
        "lookup": {},
        "proxies": [],
        "clients": {"client-adaptive": {"running": True}},
        "controls": {},
    }


def test_a_healthy_lab_has_no_problems() -> None:
    assert problems(_data(**{"grape-1": ("running", "healthy"), "x": ("running", "none")})) == []


def test_exited_paused_unhealthy_and_starting_services_are_problems() -> None:
    data = _data(
        toxiproxy=("exited", "none"),
        **{
            "worker-2": ("paused", "healthy"),
            "grape-1": ("running", "unhealthy"),
            "client-oracle": ("running", "starting"),
        },
    )
    data["proxies"] = "error: connection refused"
    data["clients"]["client-random"] = {"error": "error: timed out"}
    found = problems(data)
    assert "toxiproxy is exited (health: none, exit code 137)" in found
    assert "worker-2 is paused (health: healthy)" in found
    assert "grape-1 is running (health: unhealthy)" in found
    assert "client-oracle is running (health: starting)" in found
    assert "Toxiproxy's API: connection refused" in found
    assert any(p.startswith("client-random does not answer") for p in found)


def _marker(reports: Path, pid: int) -> None:
    reports.mkdir(exist_ok=True)
    fault = {"id": "f1", "kind": "partition", "target": "worker-2", "proxy": "worker-2"}
    (reports / MARKER).write_text(json.dumps({"run_id": "r-dead", "pid": pid, "faults": [fault]}))


def test_a_dead_runs_marker_is_named_with_how_to_clean_it(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(10)
    _marker(tmp_path, dead.pid)
    (line,) = [x for x in leftovers(tmp_path) if "r-dead" in x]
    assert f"run r-dead (pid {dead.pid}) died and left 1 fault(s) still in place" in line
    assert "partition f1 on worker-2" in line
    assert "`lab down` or the next `lab run`" in line


def test_a_live_runs_marker_is_not_a_leftover(tmp_path: Path) -> None:
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        _marker(tmp_path, live.pid)
        assert not [x for x in leftovers(tmp_path) if "r-dead" in x]
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait(10)
