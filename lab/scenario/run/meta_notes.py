"""What a run notes about itself in its meta: the clock probe's finding and the watch's work.

Why their own module: these notes are read by people (the report header, summary.json's
``versions``), not by the checks, and wording them is a different job from running.
"""

from __future__ import annotations

from lab.history import RunMeta
from lab.scenario.runtime.protocol import ClockProbe
from lab.scenario.runtime.watch import Watch

CLOCK_BOUND_S = 0.005
"""A clock probe worse than this (offset beyond its bracket + this) aborts the run."""


def note_clock(meta: RunMeta, probes: list[ClockProbe]) -> list[ClockProbe]:
    """Record the probe in ``meta``; return the clients whose clock is not the host's."""
    worst = max((abs(p.offset) for p in probes), default=0.0)
    bound = max((p.bound for p in probes), default=0.0)
    meta.clock = (
        f"CLOCK_MONOTONIC shared; max |offset| {worst * 1e3:.3f} ms, bracket ±{bound * 1e3:.3f} ms"
    )
    meta.phases.append(
        {"name": "clock-probe", "probes": [p.to_json() for p in probes], "max_abs_offset_s": worst}
    )
    return [p for p in probes if abs(p.offset) > p.bound + CLOCK_BOUND_S]


def note_watch(meta: RunMeta, watch: Watch) -> None:
    """What the watch did, in the run's meta; a loss also as a phase with its time."""
    meta.watch = (
        f"Toxiproxy polled every {watch.poll_s:g}s (lost after {watch.lost_after_s:g}s silent); "
        f"client leases {watch.lease_s:g}s renewed every {watch.renew_s:g}s, "
        f"{watch.renewals} rounds"
    )
    if watch.lost_reason is not None:
        meta.phases.append({"name": "watch-lost", "t": watch.lost_at, "reason": watch.lost_reason})
