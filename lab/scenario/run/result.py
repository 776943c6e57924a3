"""How a run ended: what the runner returns, the progress view shows and a series combines.

Its own module so the runner's readers (progress, repeat, the command) need not import
the runner, and the runner can import them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.scenario.faults.rollback import UndoResult
from lab.scenario.runtime.protocol import ClockProbe
from lab.verdict import Verdict


@dataclass
class RunResult:
    """How a run ended; ``exit_code`` is the CLI's (``Verdict.exit_code``: 0 pass, 1 fail,
    2 aborted or could not be judged, 3 unknown)."""

    run_id: str
    run_dir: Path
    status: str  # completed | aborted
    verdict: Verdict
    exit_code: int
    abort_reason: str | None = None
    summary: dict[str, Any] | None = None
    rollback: list[UndoResult] = field(default_factory=list)
    clock: list[ClockProbe] = field(default_factory=list)
    wall_s: float = 0.0
    report: Path | None = None
