"""Run directories shared by the report tests, built once per session (they take ~0.5 s)."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import WALL0, FaultPlan, RunPlan, write_run


@pytest.fixture(scope="session")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three runs an hour apart: a pass, a two-fault fail, and one aborted at 22 s."""
    root = tmp_path_factory.mktemp("reports")
    runs = {
        "pass": write_run(root, RunPlan(run_id="20261118-110640-pass", wall0=WALL0)),
        "fail": write_run(
            root,
            RunPlan(
                run_id="20261118-120640-fail",
                wall0=WALL0 + 3600,
                faults=(
                    FaultPlan("f1", "partition", "worker-2", 10.0, 20.0),
                    FaultPlan("f2", "latency", "worker-3", 30.0, 45.0),
                ),
            ),
            verdict="fail",
        ),
        "aborted": write_run(
            root,
            RunPlan(
                run_id="20261118-130640-aborted",
                wall0=WALL0 + 7200,
                abort_at=22.0,
                abort_reason="toxiproxy stopped answering: connection refused <at> 127.0.0.1:8474",
            ),
        ),
    }
    return {**runs, "root": root}
