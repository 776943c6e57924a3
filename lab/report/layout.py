"""The report's charts, laid out: one timeline per policy and one comparison chart.

Arranges the primitives of :mod:`lab.report.charts` into panels that share one x scale
(seconds since the run started), so a fault window sits at the same place in every
panel of every chart: the Jepsen-style shared time axis. Pure, like the model it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial

from lab.report.charts import (
    BREAKER_COLOURS,
    OKABE_ITO,
    Area,
    Chart,
    Line,
    LinearScale,
    Mark,
    Panel,
    Rect,
    RowLabel,
    Scale,
    Window,
    colour_for,
    latency_scale,
    line_path,
    linear_ticks,
    nice_max,
    px,
    spread_labels,
    stacked_paths,
    step_xs,
    svg_num,
    time_ticks,
    triangle,
    value_ticks,
)
from lab.report.model import FaultView
from lab.report.timelines import Bins, Timeline

WIDTH = 1200.0
PLOT_LEFT = 64.0
PLOT_RIGHT = 1040.0  # the rest holds direct labels
TOP = 64.0  # room for two rows of fault labels above the first panel's title
LABEL_ROWS = (14.0, 28.0)  # baselines of the two fault-label rows
WINDOWS_TOP = 34.0
PANEL_GAP = 34.0  # room for the next panel's title
STRIP_ROW = 16.0
STRIP_GAP = 5.0
LABEL_CHAR_PX = 6.6  # width of one character of an 11 px label, for label placement


def _last_y(xs: Sequence[float], ys: Sequence[float | None], y: Scale) -> float | None:
    for v in reversed(ys):
        if v is not None:
            return y(v)
    return None


def _runs(values: Sequence[str]) -> list[tuple[int, int, str]]:
    """Run-length encoding: (first index, end index exclusive, value)."""
    out: list[tuple[int, int, str]] = []
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            out.append((start, i, values[start]))
            start = i
    return out


StripStyle = Callable[[str, float, float], tuple[str, str, str]]
"""A state's run from t0 to t1 s -> (colour, CSS class, title) of its rectangle."""


def _strips(
    states: Sequence[str], ry: float, width: float, x: Scale, axis_end: float, style: StripStyle
) -> list[Rect]:
    """One row of a strip panel: a rectangle per run of bins in the same non-empty state."""
    out: list[Rect] = []
    for a, b, state in _runs(states):
        if not state:
            continue
        x0, x1 = x(a * width), x(min(b * width, axis_end))
        colour, css, title = style(state, a * width, b * width)
        out.append(Rect(px(x0), px(ry), px(x1 - x0), STRIP_ROW, colour, css, title))
    return out


def _breaker_style(short: str, state: str, t0: float, t1: float) -> tuple[str, str, str]:
    title = f"{short}: breaker {state.replace('_', '-')} {t0:.2f} to {t1:.2f} s"
    return BREAKER_COLOURS[state], f"breaker-{state}", title


def _panic_style(_state: str, t0: float, t1: float) -> tuple[str, str, str]:
    title = f"panic mode (every peer eligible) {t0:.2f} to {t1:.2f} s"
    return BREAKER_COLOURS["open"], "breaker-panic", title


def fault_windows(faults: Sequence[FaultView], axis_end: float, x: Scale) -> tuple[Window, ...]:
    """One shaded window per confirmed fault; an unhealed one runs to the axis end."""
    out = []
    row_ends = [-1e9, -1e9]  # right end of the last label on each of two label rows
    for f in faults:
        if f.start_s is None:
            continue
        end = f.end_s if f.end_s is not None else axis_end
        x0, x1 = x(max(0.0, f.start_s)), x(min(axis_end, end))
        title = f"{f.label}: confirmed {f.started} → {f.ended}"
        row = 0 if row_ends[0] < x0 else (1 if row_ends[1] < x0 else 0)
        row_ends[row] = x0 + LABEL_CHAR_PX * len(f.label) + 8
        out.append(
            Window(
                f.fault_id,
                px(x0),
                px(max(x1 - x0, 1.0)),
                f.label,
                title,
                f.end_s is None,
                LABEL_ROWS[row],
            )
        )
    return tuple(out)


def _run_chart(
    panels: Sequence[Panel],
    bottom: float,
    axis_end: float,
    x: Scale,
    faults: Sequence[FaultView],
) -> Chart:
    """Panels stacked over the run's seconds, under the fault windows: what every
    chart against time shares (width, plot area, time axis), so they line up."""
    return Chart(
        width=WIDTH,
        height=bottom + 40.0,
        plot_left=PLOT_LEFT,
        plot_right=PLOT_RIGHT,
        x_ticks=time_ticks(axis_end, x),
        x_title="seconds since the run started",
        panels=tuple(panels),
        windows=fault_windows(faults, axis_end, x),
        windows_top=WINDOWS_TOP,
        windows_bottom=bottom,
    )


def timeline_chart(
    tl: Timeline,
    bins: Bins,
    axis_end: float,
    faults: Sequence[FaultView],
    peer_colours: Mapping[str, str],
) -> Chart:
    """The stacked panels of one policy on the shared time axis, with the fault windows."""
    x = LinearScale(0.0, axis_end, PLOT_LEFT, PLOT_RIGHT)
    xs = step_xs(bins.starts, bins.width)
    panels: list[Panel] = []
    top = TOP

    # 1. request rate
    h = 90.0
    peak = max((v for v in tl.issued_rate if v is not None), default=0.0)
    y = LinearScale(0.0, nice_max(peak * 1.05), top + h, top)
    ly = spread_labels([_last_y(xs, tl.issued_rate, y), _last_y(xs, tl.failed_rate, y)])
    panels.append(
        Panel(
            "request rate (requests/s issued in each bin)",
            top,
            h,
            value_ticks(linear_ticks(0.0, y.d1, 3), y),
            lines=(
                Line(
                    line_path(xs, tl.issued_rate, x, y), OKABE_ITO["black"], "rate", "issued", ly[0]
                ),
                Line(
                    line_path(xs, tl.failed_rate, x, y),
                    OKABE_ITO["vermillion"],
                    "failed",
                    "failed",
                    ly[1],
                ),
            ),
        )
    )
    top += h + PANEL_GAP

    # 2. availability
    h = 80.0
    y = LinearScale(0.0, 100.0, top + h, top)
    pct = [None if v is None else v * 100 for v in tl.availability]
    panels.append(
        Panel(
            "availability (% of requests issued in the bin that succeeded)",
            top,
            h,
            value_ticks((0.0, 50.0, 100.0), y, "{} %"),
            lines=(
                Line(
                    line_path(xs, pct, x, y),
                    OKABE_ITO["blue"],
                    "avail",
                    "availability",
                    _last_y(xs, pct, y),
                ),
            ),
        )
    )
    top += h + PANEL_GAP

    # 3. latency
    h = 110.0
    present = [v for v in (*tl.p50_ms, *tl.p99_ms) if v is not None]
    yl, ticks, is_log = latency_scale(
        max(present, default=1.0), min(present, default=1.0), top, top + h
    )
    ly = spread_labels([_last_y(xs, tl.p50_ms, yl), _last_y(xs, tl.p99_ms, yl)])
    panels.append(
        Panel(
            "latency of requests issued in the bin (ms" + (", log scale)" if is_log else ")"),
            top,
            h,
            ticks,
            lines=(
                Line(line_path(xs, tl.p50_ms, x, yl), OKABE_ITO["blue"], "p50", "p50", ly[0]),
                Line(
                    line_path(xs, tl.p99_ms, x, yl),
                    OKABE_ITO["vermillion"],
                    "p99",
                    "p99",
                    ly[1],
                    dash="5 3",
                ),
            ),
            note="" if present else "no completed requests",
        )
    )
    top += h + PANEL_GAP

    # 4. traffic share per worker
    h = 100.0
    y = LinearScale(0.0, 1.0, top + h, top)
    stacked = stacked_paths(xs, [p.share for p in tl.peers], x, y)
    label_ys = spread_labels([mid for _, mid in stacked])
    areas = tuple(
        Area(d, peer_colours.get(p.peer, colour_for(i)), p.short, label_ys[i])
        for i, (p, (d, _)) in enumerate(zip(tl.peers, stacked, strict=True))
    )
    panels.append(
        Panel(
            "traffic share per worker (% of attempts sent in the last 500 ms)",
            top,
            h,
            value_ticks((0.0, 0.5, 1.0), y, "{} %", factor=100.0),
            areas=areas,
            note="" if tl.peers else "no attempts recorded",
        )
    )
    top += h + PANEL_GAP

    # 5. breaker state and gossip hints per peer (and panic mode, a row of its own)
    rows = max(len(tl.peers), 1) + (1 if any(tl.panic) else 0)
    h = rows * (STRIP_ROW + STRIP_GAP)
    rects: list[Rect] = []
    marks: list[Mark] = []
    labels: list[RowLabel] = []
    for r, p in enumerate(tl.peers):
        ry = top + r * (STRIP_ROW + STRIP_GAP)
        labels.append(RowLabel(px(ry + STRIP_ROW / 2), p.short))
        rects += _strips(p.breaker, ry, bins.width, x, axis_end, partial(_breaker_style, p.short))
        for i, c in enumerate(p.hints):
            if c:
                marks.append(
                    Mark(
                        triangle(x(xs[i]), ry + 1),
                        f"{c} gossip hint{'s' if c > 1 else ''} about {p.short} "
                        f"at {bins.starts[i]:.2f} s",
                    )
                )
    if any(tl.panic):
        ry = top + len(tl.peers) * (STRIP_ROW + STRIP_GAP)
        labels.append(RowLabel(px(ry + STRIP_ROW / 2), "panic"))
        panic = ["open" if v else "" for v in tl.panic]
        rects += _strips(panic, ry, bins.width, x, axis_end, _panic_style)
    note = ""
    if tl.breaker_events == 0 and tl.hint_events == 0:
        note = "no breaker transitions and no gossip hints recorded"
    elif tl.breaker_events == 0:
        note = "no breaker transitions recorded"
    panels.append(
        Panel(
            "breaker state per worker (grey closed, yellow half-open, red open; "
            "a 'panic' row when the client balanced over every peer); ▼ gossip hints received",
            top,
            h,
            rects=tuple(rects),
            marks=tuple(marks),
            row_labels=tuple(labels),
            note=note,
        )
    )
    return _run_chart(panels, top + h, axis_end, x, faults)


def peer_colour_map(timelines: Sequence[Timeline]) -> dict[str, str]:
    """One colour per worker across every policy's chart, so worker-2 is always orange."""
    seen: dict[str, None] = {}
    for tl in timelines:
        for p in tl.peers:
            seen.setdefault(p.peer, None)
    return {p: colour_for(i) for i, p in enumerate(seen)}


POLICY_COLOURS: dict[str, str] = {
    "adaptive": OKABE_ITO["blue"],
    "random": OKABE_ITO["vermillion"],
    "round_robin": OKABE_ITO["orange"],
    "oracle": OKABE_ITO["green"],
    "least_request": OKABE_ITO["sky_blue"],
    "peak_ewma": OKABE_ITO["purple"],
    "prequal": OKABE_ITO["yellow"],
    "c3": OKABE_ITO["black"],
    "adaptive_hedged": OKABE_ITO["blue"],  # adaptive's colour, its own dash
}
POLICY_DASHES: dict[str, str] = {
    "adaptive": "",
    "random": "6 3",
    "round_robin": "2 2",
    "oracle": "1 3",
    "least_request": "4 2 1 2",
    "peak_ewma": "8 2",
    "prequal": "3 1",
    "c3": "1 1",
    "adaptive_hedged": "10 2 2 2",
}


def policy_style(index: int, tl: Timeline) -> tuple[str, str]:
    """Colour and dash of a policy's line: fixed for the known policies, so a reader
    learns them once; dashes too, so the lines part in greyscale print."""
    extra = (OKABE_ITO["purple"], OKABE_ITO["sky_blue"], OKABE_ITO["black"])
    colour = POLICY_COLOURS.get(tl.policy, extra[index % len(extra)])
    return colour, POLICY_DASHES.get(tl.policy, "4 2 1 2")


def faulty_share(tl: Timeline, faulty: set[str]) -> tuple[float | None, ...]:
    """Per bin, the share of attempts that went to any peer a fault named."""
    rows = [p.share for p in tl.peers if p.peer in faulty]
    if not rows:
        return tuple(None for _ in tl.issued_rate)
    return tuple(sum(col) for col in zip(*rows, strict=True))


def comparison_chart(
    timelines: Sequence[Timeline], bins: Bins, axis_end: float, faults: Sequence[FaultView]
) -> Chart:
    """Every policy in one chart, one line each: availability, p99 and the share of the
    faulty workers, so the candidate is read next to the baseline and the limit."""
    x = LinearScale(0.0, axis_end, PLOT_LEFT, PLOT_RIGHT)
    xs = step_xs(bins.starts, bins.width)
    styles = [policy_style(i, tl) for i, tl in enumerate(timelines)]
    faulty = {p.strip() for f in faults for p in f.peers.split(",") if f.start_s is not None}
    panels: list[Panel] = []
    top = TOP

    def lines_for(series: list[tuple[float | None, ...]], y: Scale) -> tuple[Line, ...]:
        label_ys = spread_labels([_last_y(xs, s, y) for s in series])
        return tuple(
            Line(line_path(xs, s, x, y), colour, "policy", tl.label, ly, dash=dash)
            for s, tl, (colour, dash), ly in zip(series, timelines, styles, label_ys, strict=True)
        )

    h = 90.0
    y = LinearScale(0.0, 100.0, top + h, top)
    avail = [tuple(None if v is None else v * 100 for v in tl.availability) for tl in timelines]
    panels.append(
        Panel(
            "availability (% of requests issued in the bin that succeeded)",
            top,
            h,
            value_ticks((0.0, 50.0, 100.0), y, "{} %"),
            lines=lines_for(avail, y),
        )
    )
    top += h + PANEL_GAP

    h = 110.0
    p99 = [tl.p99_ms for tl in timelines]
    present = [v for s in p99 for v in s if v is not None]
    yl, ticks, is_log = latency_scale(
        max(present, default=1.0), min(present, default=1.0), top, top + h
    )
    panels.append(
        Panel(
            "p99 latency of requests issued in the bin (ms" + (", log scale)" if is_log else ")"),
            top,
            h,
            ticks,
            lines=lines_for(p99, yl),
        )
    )
    top += h + PANEL_GAP

    h = 90.0
    y = LinearScale(0.0, 1.0, top + h, top)
    shares = [faulty_share(tl, faulty) for tl in timelines]
    threshold = Line(
        f"M{svg_num(PLOT_LEFT)},{svg_num(y(0.05))}L{svg_num(PLOT_RIGHT)},{svg_num(y(0.05))}",
        "#777777",
        "threshold",
        "",
        None,
        dash="2 3",
    )
    panels.append(
        Panel(
            "share of attempts sent to the faulted workers (last 500 ms; dotted line: 5 %)",
            top,
            h,
            value_ticks((0.0, 0.5, 1.0), y, "{} %", factor=100.0),
            lines=(threshold, *lines_for(shares, y)),
            note="" if faulty else "no fault was confirmed",
        )
    )
    return _run_chart(panels, top + h, axis_end, x, faults)
