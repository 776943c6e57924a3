"""``lab status`` when the lab runs on a swarm: each service's node, task and health.

The same judgement as ``lab up --engine swarm`` waits for (:func:`lab.swarm.ready.judge`),
asked once, plus what discovery looks like from every client: a table's worth of plain
rows, printed by the ``lab status`` command.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.swarm.ready import discovery_gaps, judge
from lab.swarm.state import SwarmState
from lab.swarm.tasks import Swarm


@dataclass(frozen=True, slots=True)
class Row:
    service: str
    node: str
    task: str
    ok: bool
    why: str


def rows(state: SwarmState) -> tuple[list[Row], list[str]]:
    """One row per service of the stack, and the problems in sentences (empty: all well)."""
    swarm = Swarm(state)
    try:
        tasks = swarm.tasks()
        verdicts = judge(tasks, sorted(tasks))
        out = [
            Row(n, t.node or "-", t.state, verdicts[n].ok, verdicts[n].why)
            for n, t in sorted(tasks.items())
        ]
        problems = [f"{r.service}: {r.why or r.task}" for r in out if not r.ok]
        if not tasks:
            problems.append(f"the stack {state.stack} has no services: `lab up --engine swarm`")
        elif not problems:
            problems += [f"{c}: {why}" for c, why in discovery_gaps(tasks).items()]
        return out, problems
    finally:
        swarm.close()
