"""What ``lab status`` says about network faults: those a run holds, and stray helpers.

Read from the in-flight marker (which faults a run injected, with their targets) and from
Docker (helper containers by label), both cheap. The namespaces themselves are not read
here: that takes a helper container per service; the faults' own confirmation and the
cleanup's ``clean`` do read them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.netfault.helper import HELPER_LABEL, TARGET_LABEL, NetfaultHelper
from lab.stack.engine import Engine


def netfault_status(engine: Engine, reports_dir: Path | None = None) -> tuple[list[str], list[str]]:
    """(active: one line per network fault in place, stray: helpers no live run owns)."""
    from lab.scenario.rollback import MARKER, default_reports_dir, marker_owner_alive

    active: list[str] = []
    owner_alive = False
    marker = (reports_dir or default_reports_dir()) / MARKER
    try:
        data: Any = json.loads(marker.read_text())
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict):
        owner_alive = marker_owner_alive(data)
        who = f"run {data.get('run_id')} ({'running' if owner_alive else 'dead'})"
        for f in data.get("faults") or []:
            if isinstance(f, dict) and f.get("netfault"):
                active.append(f"{f.get('kind')} {f.get('id')} on {f.get('target')}, {who}")
    stray: list[str] = []
    try:
        helpers = NetfaultHelper(engine).helpers()
    except LabError as exc:
        return active, [f"cannot list netfault helpers: {exc}"]
    for h in helpers:
        labels = h.labels or {}
        line = (
            f"helper {h.name} ({h.status}) of fault {labels.get(HELPER_LABEL)} "
            f"in {labels.get(TARGET_LABEL)}'s namespace"
        )
        active.append(line)
        if not owner_alive:
            stray.append(f"{line}; remove it with `lab down` or the next `lab run`")
    return active, stray
