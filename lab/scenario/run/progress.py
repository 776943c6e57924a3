"""The terminal view of a run: rich Live progress while it runs, a summary table at the end.

Live: elapsed / total, the current phase, the faults in place, and per policy the
availability and the faulty peer's share of attempts over the last few seconds (computed
from the records the collector has already streamed, never by asking the clients). The
final table shows every expectation with its measured value and bound. A run without a
console uses :class:`NullProgress`; nothing here affects the run's outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lab.history import FaultRecord, Outcome, RequestRecord
from lab.report.tables import fmt_metric, policy_sort_key
from lab.scenario.run.collector import Collector
from lab.scenario.run.result import RunResult
from lab.verdict import Verdict

WINDOW_S = 5.0


def recent_figures(
    records: Iterable[RequestRecord], faulty: set[str], now: float, window: float = WINDOW_S
) -> dict[str, tuple[float | None, float | None]]:
    """Per policy: (availability, faulty share of attempts) of requests issued in the window."""
    ok: dict[str, int] = {}
    total: dict[str, int] = {}
    hits: dict[str, int] = {}
    attempts: dict[str, int] = {}
    for r in records:
        if r.issued < now - window or r.issued > now:
            continue
        total[r.policy] = total.get(r.policy, 0) + 1
        ok[r.policy] = ok.get(r.policy, 0) + (r.outcome == Outcome.OK)
        for a in r.attempts:
            attempts[r.policy] = attempts.get(r.policy, 0) + 1
            hits[r.policy] = hits.get(r.policy, 0) + (a.peer in faulty)
    out: dict[str, tuple[float | None, float | None]] = {}
    for p, n in total.items():
        share = hits.get(p, 0) / attempts[p] if attempts.get(p) and faulty else None
        out[p] = (ok.get(p, 0) / n if n else None, share)
    return out


class NullProgress:
    """No terminal: every hook does nothing."""

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def phase(self, name: str) -> None:
        return None

    def fault(self, rec: FaultRecord) -> None:
        return None

    async def follow(self, collector: Collector, run: Any) -> None:
        return None

    def final(self, result: RunResult) -> None:
        return None


class Progress(NullProgress):
    """A rich Live display; :meth:`live` builds it for a console."""

    def __init__(self, console: Console, scenario: Any) -> None:
        self.console = console
        self.scenario = scenario
        self.total = float(scenario.duration_s)
        self._phase = "prepare"
        self._faults: dict[str, FaultRecord] = {}
        self._rows: dict[str, tuple[float | None, float | None]] = {}
        self._t0: float | None = None
        self._live = Live(self._render(), console=console, refresh_per_second=4, transient=True)

    @classmethod
    def live(cls, console: Any, scenario: Any) -> Progress:
        return cls(console, scenario)

    def __enter__(self) -> Progress:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def phase(self, name: str) -> None:
        self._phase = name
        self._refresh()

    def fault(self, rec: FaultRecord) -> None:
        self._faults[rec.id] = rec
        verb = "healed" if rec.ended is not None else "injected"
        self.console.log(f"{verb} {rec.kind} {rec.id} on {rec.target}")
        self._refresh()

    async def follow(self, collector: Collector, run: Any) -> None:
        while True:
            self._t0 = run.load_t0
            faulty = {p for peers in run.faulty.values() for p in peers}
            self._rows = recent_figures(collector.recent, faulty, time.monotonic())
            self._refresh()
            await asyncio.sleep(0.5)

    def _refresh(self) -> None:
        self._live.update(self._render())

    def _render(self) -> Group:
        elapsed = 0.0 if self._t0 is None else time.monotonic() - self._t0
        active = [f for f in self._faults.values() if f.started is not None and f.ended is None]
        head = Text.assemble(
            (f"{self.scenario.name}", "bold"),
            f"  {min(elapsed, self.total):5.1f}s / {self.total:.0f}s  phase ",
            (self._phase, "cyan"),
            "  faults: ",
            (", ".join(f"{f.kind}@{f.target}" for f in active) or "none", "red" if active else ""),
        )
        table = Table(box=None, pad_edge=False)
        table.add_column("policy")
        table.add_column(f"availability ({WINDOW_S:.0f}s)", justify="right")
        table.add_column("faulty share", justify="right")
        for policy, (avail, share) in sorted(self._rows.items()):
            table.add_row(policy, _pct(avail), _pct(share))
        return Group(head, table)

    def final(self, result: RunResult) -> None:
        if result.summary and result.summary.get("policies"):
            self.console.print(comparison_table(result.summary))
        self.console.print(summary_table(result))


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


COMPARED = (
    ("detection", "detection_s"),
    ("availability", "availability"),
    ("p99 ratio", "p99_ratio"),
    ("recovery", "recovery_s"),
    ("errors", "errors"),
)


def comparison_table(summary: dict[str, Any]) -> Table:
    """Per policy: detection, availability, p99 ratio, recovery, errors; the oracle is the
    limit any policy could reach (it is told the fault timeline), so it is marked."""
    table = Table(title="per policy (the oracle is told the faults: the limit)")
    table.add_column("policy")
    for label, _ in COMPARED:
        table.add_column(label, justify="right")
    policies = summary.get("policies") or {}
    for key in sorted(policies, key=policy_sort_key):
        d = policies[key] if isinstance(policies[key], dict) else {}
        name = f"{key} (limit)" if d.get("policy") == "oracle" else str(key)
        cells = []
        for _, metric in COMPARED:
            v = d.get(metric)
            never = metric == "detection_s" and d.get(f"{metric}_reason")
            cells.append(fmt_metric(metric, v) if v is not None else "never" if never else "-")
        table.add_row(Text(name, "dim" if d.get("policy") == "oracle" else ""), *cells)
    return table


def summary_table(result: RunResult) -> Table:
    """Every expectation with its measured value and bound, and the run's verdict."""
    title = f"{result.run_id}: {result.verdict.upper()}"
    if result.abort_reason:  # escaped: a policy's traceback holds [brackets]
        title += f" ({escape(result.abort_reason)})"
    elif (result.summary or {}).get("verdict_reason"):
        title += f" ({(result.summary or {})['verdict_reason']})"
    table = Table(title=title)
    for col in ("client", "metric", "measured", "bound", "verdict"):
        table.add_column(col)
    summary = result.summary or {}
    rows = [("", v) for v in summary.get("steady_state") or []] + [
        ("", v) for v in summary.get("expectations") or []
    ]
    for _, v in rows:
        if not isinstance(v, dict):
            continue
        word = Verdict.parse(v.get("verdict")).value
        metric = str(v.get("metric", ""))
        if v.get("phase"):
            metric = f"steady {v['phase']}: {metric}"
        table.add_row(
            str(v.get("client", "")),
            metric,
            _fmt(v.get("measured")),
            str(v.get("bound", "")),
            Text(word, "green") if word == Verdict.PASS else Text(word.upper(), "red"),
        )
    table.caption = f"wall {result.wall_s:.1f}s; report {result.report or '(none)'}"
    return table


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)
