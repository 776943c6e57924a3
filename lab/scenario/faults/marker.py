"""The in-flight marker on disk: where it lives, how it is written, whose it is.

``reports/.inflight.json`` says what a run has injected where. The undo stack
(:mod:`lab.scenario.faults.rollback`) writes it, the janitor
(:mod:`lab.scenario.faults.janitor`) and ``lab status`` read it; this module is what
both sides agree on, so neither imports the other to find the file or its owner.

The format: the runtime's facts (``Runtime.inflight_info``: ``runtime``,
``toxiproxy_api``, ``clients``, ``local_pids``, ...), ``run_id``, ``pid``,
``written_wall``, and ``faults``, each fault's own ``Fault.leftover()`` (``id``, ``kind``,
``target`` and what its family needs to undo it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.procs import pid_alive
from lab.stack.engine import Paths

MARKER = ".inflight.json"


def default_reports_dir() -> Path:
    """``reports/`` of the repository when lab runs from its tree, else of the cwd."""
    try:
        return Paths.find().root / "reports"
    except LabError:
        return Path.cwd() / "reports"


def write_marker(path: Path, data: dict[str, Any]) -> None:
    """Atomically (rename) so a crash never leaves half a marker."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def marker_owner_alive(data: dict[str, Any]) -> bool:
    """Whether the run that wrote a marker is still running (not this process)."""
    pid = int(data.get("pid", 0) or 0)
    return bool(pid) and pid != os.getpid() and pid_alive(pid) and _is_lab_process(pid)


def _is_lab_process(pid: int) -> bool:
    """Whether ``pid`` still runs python (a recycled pid of another program is not ours)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # cannot tell: be careful, assume it is
    # Empty while the process is in the middle of exec (seen when a run had just been
    # spawned; its comm then is still the parent's): cannot tell either.
    return not cmdline or b"python" in cmdline or b"lab" in cmdline
