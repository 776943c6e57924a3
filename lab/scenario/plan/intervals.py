"""The timeline expanded into fault intervals, their overlap check, and the plan they make.

Why a module of its own: expansion is the one place chaos choices are made (seeded by the
run's seed and the step's id, so one seed always gives one plan), and the one rule that
two faults never hold one target at once is checked on what it gives, whatever step kind
the faults came from; the runner carries out the plan it returns.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from lab.errors import ScenarioError
from lab.scenario.plan.kinds import KINDS, Params
from lab.scenario.plan.quantities import format_duration
from lab.scenario.plan.steps import ChaosStep, HealStep, Step, repeats


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One resolved action of the plan; ``at_s`` is seconds from the start of the load."""

    at_s: float
    action: str  # "inject" | "heal"
    fault_id: str
    kind: str
    target: str
    params: Params = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Interval:
    """One fault held on one target from ``start`` to ``end``: a step, or one of its repeats."""

    fault_id: str
    kind: str
    target: str
    params: Params
    start: float
    end: float | None  # None: healed at the end of the run
    line: int
    index: int  # timeline index (for error messages)
    end_line: int | None = None  # the heal step's line, when a heal step ends it

    def id_label(self) -> str:
        return f"{self.fault_id} ({self.kind})"


def expand(timeline: tuple[Step, ...], seed: int) -> list[Interval]:
    """Every fault the timeline injects, repeats and chaos choices included, in step order."""
    out: list[Interval] = []
    for index, step in enumerate(timeline):
        if isinstance(step, HealStep):
            continue
        if isinstance(step, ChaosStep):
            # One generator per step, seeded by the run's seed and the step's id: adding a
            # step elsewhere in the file does not change this step's choices.
            rng = random.Random(f"{seed}:{step.id}")
            for k in range(step.count):
                target = rng.choice(step.targets)
                kind, params = rng.choice(step.kinds)
                start = step.at_s + k * step.every_s
                out.append(
                    Interval(
                        f"{step.id}.{k + 1}",
                        kind,
                        target,
                        dict(params),
                        start,
                        start + step.hold_s,
                        step.line,
                        index,
                    )
                )
        elif step.repeating:
            assert step.every_s is not None and step.for_s is not None
            assert step.until_s is not None
            for k in range(repeats(step.at_s, step.every_s, step.until_s)):
                start = step.at_s + k * step.every_s
                out.append(
                    Interval(
                        f"{step.id}.{k + 1}",
                        step.kind,
                        step.target,
                        dict(step.params),
                        start,
                        start + step.for_s,
                        step.line,
                        index,
                    )
                )
        else:
            if KINDS[step.kind].instant:
                end: float | None = step.at_s
            elif step.for_s is not None:
                end = step.at_s + step.for_s
            else:
                end = step.healed_at_s
            out.append(
                Interval(
                    step.id,
                    step.kind,
                    step.target,
                    dict(step.params),
                    step.at_s,
                    end,
                    step.line,
                    index,
                    step.healed_line,
                )
            )
    return out


CO_TENANT_KINDS = frozenset({"antagonist"})
"""Kinds that act beside the target, not on it: an antagonist takes CPU through its own
endpoint and restores nothing of the worker's, so it may hold while another fault (the
worker's own latency, a toxic) holds the same target. One of each layer at a time."""


def check_overlaps(intervals: list[Interval], label: str, duration: float) -> None:
    """Refuse two faults of one layer on one target at once (rollback assumes one)."""
    by_target: dict[tuple[str, bool], list[Interval]] = {}
    for iv in intervals:
        by_target.setdefault((iv.target, iv.kind in CO_TENANT_KINDS), []).append(iv)
    for (target, _layer), ivs in by_target.items():
        ivs.sort(key=lambda iv: (iv.start, iv.index))
        for prev, nxt in itertools.pairwise(ivs):
            prev_end = duration if prev.end is None else prev.end
            if nxt.start < prev_end or nxt.start == prev.start:
                raise ScenarioError(
                    f"{label}:{nxt.line}: timeline[{nxt.index}]: {target} already has fault "
                    f"{prev.id_label()} from {format_duration(prev.start)} to "
                    f"{format_duration(prev_end)}; {nxt.fault_id} starts at "
                    f"{format_duration(nxt.start)}"
                )


def plan_of(intervals: list[Interval], duration: float) -> tuple[PlannedStep, ...]:
    """The time-ordered inject and heal actions; an unhealed fault heals at ``duration``."""
    keyed: list[tuple[float, int, int, PlannedStep]] = []
    for n, iv in enumerate(intervals):
        keyed.append(
            (
                iv.start,
                1,
                n,
                PlannedStep(iv.start, "inject", iv.fault_id, iv.kind, iv.target, dict(iv.params)),
            )
        )
        if KINDS[iv.kind].instant:
            continue
        end = duration if iv.end is None else iv.end
        # heals sort before injections at the same instant: a flap may end and the next
        # one on another target begin together
        keyed.append(
            (end, 0, n, PlannedStep(end, "heal", iv.fault_id, iv.kind, iv.target, dict(iv.params)))
        )
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    return tuple(k[3] for k in keyed)
