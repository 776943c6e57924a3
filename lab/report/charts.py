"""SVG geometry for the report: scales, ticks, paths and panels, as plain data.

Templates must not compute (style.md), so every coordinate, path string, tick label and
colour a chart needs is decided here and handed to Jinja as frozen dataclasses; the
template only writes them out as elements. Nothing here reads requests: it maps the
binned series of :mod:`lab.report.model` to pixels, so it is testable with a few values.

Why these choices:
- One x scale for every panel of every policy, so a fault window sits at the same
  horizontal position everywhere (the Jepsen-style shared time axis the brief asks for).
- Latency is drawn on a log axis when it spans more than ~1.5 decades: a 2 ms p50 and a
  1 s timeout p99 are then both readable; a narrow range stays linear.
- Paths break on missing values (an empty bin) instead of drawing a fake line through
  zero, and coordinates are rounded to 0.1 px, which is what keeps the file small.
- Colours come from the Okabe-Ito palette, which stays distinguishable for the common
  colour-vision deficiencies and in greyscale print when paired with direct labels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lab.report.model import Bins, FaultView, Timeline

# Okabe & Ito (2008), "Color Universal Design": safe for colour-blind readers.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
# Order used for series that have no meaning-bound colour (workers' traffic share).
SERIES_COLOURS: tuple[str, ...] = (
    OKABE_ITO["blue"],
    OKABE_ITO["orange"],
    OKABE_ITO["green"],
    OKABE_ITO["purple"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["yellow"],
    OKABE_ITO["black"],
)
BREAKER_COLOURS: dict[str, str] = {
    "closed": "#E8E8E8",
    "half_open": OKABE_ITO["yellow"],
    "open": OKABE_ITO["vermillion"],
}


def colour_for(index: int) -> str:
    """A stable series colour: the n-th Okabe-Ito colour, cycling."""
    return SERIES_COLOURS[index % len(SERIES_COLOURS)]


# -- scales ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinearScale:
    """Maps [d0, d1] onto [r0, r1] (r1 < r0 for a y axis that grows upwards)."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, v: float) -> float:
        span = self.d1 - self.d0
        if span == 0:
            return self.r0
        return self.r0 + (v - self.d0) / span * (self.r1 - self.r0)


@dataclass(frozen=True, slots=True)
class LogScale:
    """Base-10 log scale; values at or below ``d0`` are clamped to the axis floor."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, v: float) -> float:
        lo, hi = math.log10(self.d0), math.log10(self.d1)
        x = math.log10(max(v, self.d0))
        if hi == lo:
            return self.r0
        return self.r0 + (x - lo) / (hi - lo) * (self.r1 - self.r0)


Scale = LinearScale | LogScale


def nice_step(span: float, target: int) -> float:
    """A 1-2-5 step giving about ``target`` intervals over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / max(target, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def nice_max(v: float) -> float:
    """Round ``v`` up to a 1-2-5 value so the top tick is labelled and near the data."""
    if v <= 0:
        return 1.0
    mag = 10.0 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * mag >= v - 1e-12:
            return m * mag
    return 10 * mag


def linear_ticks(lo: float, hi: float, target: int = 4) -> list[float]:
    """Tick values at a 1-2-5 step covering [lo, hi], both ends included when round."""
    step = nice_step(hi - lo, target)
    first = math.ceil(lo / step - 1e-9) * step
    out: list[float] = []
    v = first
    while v <= hi + step * 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def log_ticks(lo: float, hi: float) -> list[float]:
    """Decades between lo and hi, plus 2x and 5x when fewer than three decades show."""
    out: list[float] = []
    e = math.floor(math.log10(lo))
    decades = math.log10(hi) - math.log10(lo)
    mults = (1, 2, 5) if decades < 3 else (1,)
    while 10**e <= hi * 1.0001:
        for m in mults:
            v = m * 10**e
            if lo * 0.9999 <= v <= hi * 1.0001:
                out.append(v)
        e += 1
    return out


def fmt_number(v: float) -> str:
    """Short tick text: 0.5, 2, 10, 1.5k."""
    if v >= 1000 and v % 100 == 0:
        k = v / 1000
        return f"{k:g}k"
    if v == int(v):
        return str(int(v))
    return f"{v:g}"


# -- drawing primitives ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick:
    pos: float  # pixel position along the axis
    label: str


@dataclass(frozen=True, slots=True)
class Line:
    """A polyline; ``d`` is an SVG path, ``label`` the direct label at its right end."""

    d: str
    colour: str
    css: str
    label: str
    label_y: float | None
    dash: str = ""


@dataclass(frozen=True, slots=True)
class Area:
    d: str
    colour: str
    label: str
    label_y: float | None


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    colour: str
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class Mark:
    """A small downward triangle (a gossip hint); ``points`` is the SVG polygon."""

    points: str
    title: str


def triangle(x: float, y: float, size: float = 4.0) -> str:
    return f"{_r(x - size)},{_r(y)} {_r(x + size)},{_r(y)} {_r(x)},{_r(y + size * 1.6)}"


@dataclass(frozen=True, slots=True)
class RowLabel:
    y: float
    text: str


@dataclass(frozen=True, slots=True)
class Panel:
    """One horizontal band of a timeline, sharing the x axis with every other panel."""

    title: str  # includes the unit, e.g. "latency (ms, log scale)"
    top: float
    height: float
    y_ticks: tuple[Tick, ...] = ()
    lines: tuple[Line, ...] = ()
    areas: tuple[Area, ...] = ()
    rects: tuple[Rect, ...] = ()
    marks: tuple[Mark, ...] = ()
    row_labels: tuple[RowLabel, ...] = ()
    note: str = ""  # shown in the panel when it has nothing to draw

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def title_y(self) -> float:
        return self.top - 8

    @property
    def note_y(self) -> float:
        return self.top + self.height / 2 + 4


@dataclass(frozen=True, slots=True)
class Window:
    """A shaded fault window spanning every panel of a chart, with its label."""

    fault_id: str
    x: float
    w: float
    label: str
    title: str
    open_ended: bool
    label_y: float

    @property
    def x_end(self) -> float:
        return self.x + self.w


@dataclass(frozen=True, slots=True)
class Chart:
    """A whole SVG: size, panels, x ticks (drawn under the last panel) and fault windows."""

    width: float
    height: float
    plot_left: float
    plot_right: float
    x_ticks: tuple[Tick, ...]
    x_title: str
    panels: tuple[Panel, ...]
    windows: tuple[Window, ...] = field(default=())
    windows_top: float = 0.0
    windows_bottom: float = 0.0

    @property
    def plot_width(self) -> float:
        return self.plot_right - self.plot_left

    @property
    def windows_height(self) -> float:
        return self.windows_bottom - self.windows_top

    @property
    def axis_y(self) -> float:
        return self.panels[-1].bottom if self.panels else self.windows_bottom

    @property
    def tick_label_y(self) -> float:
        return self.axis_y + 14

    @property
    def x_title_y(self) -> float:
        return self.axis_y + 32

    @property
    def label_x(self) -> float:
        return self.plot_right + 6

    @property
    def x_mid(self) -> float:
        return (self.plot_left + self.plot_right) / 2


# -- geometry --------------------------------------------------------------------------


def px(v: float) -> float:
    """Pixels to 0.1 px: finer is invisible and only makes the file bigger."""
    return round(v, 1)


def _r(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def line_path(xs: Sequence[float], ys: Sequence[float | None], x: Scale, y: Scale) -> str:
    """An SVG path through the points; a ``None`` value breaks the line (an empty bin)."""
    parts: list[str] = []
    pen_down = False
    for xv, yv in zip(xs, ys, strict=True):
        if yv is None:
            pen_down = False
            continue
        parts.append(("L" if pen_down else "M") + _r(x(xv)) + "," + _r(y(yv)))
        pen_down = True
    return "".join(parts)


def step_xs(starts: Sequence[float], width: float) -> list[float]:
    """Bin mid-points: where a binned value is drawn."""
    return [s + width / 2 for s in starts]


def stacked_paths(
    xs: Sequence[float], layers: Sequence[Sequence[float]], x: Scale, y: Scale
) -> list[tuple[str, float | None]]:
    """Closed polygons for a stacked area chart, bottom layer first.

    Returns, per layer, the path and the y pixel of the middle of the layer at its last
    point (where its direct label goes), or ``None`` when the layer is too thin there.
    """
    out: list[tuple[str, float | None]] = []
    base = [0.0] * len(xs)
    for layer in layers:
        top = [b + v for b, v in zip(base, layer, strict=True)]
        if not xs:
            out.append(("", None))
            base = top
            continue
        upper = [f"{_r(x(xv))},{_r(y(tv))}" for xv, tv in zip(xs, top, strict=True)]
        lower = [f"{_r(x(xv))},{_r(y(bv))}" for xv, bv in zip(xs, base, strict=True)]
        d = "M" + "L".join(upper) + "L" + "L".join(reversed(lower)) + "Z"
        thick = top[-1] - base[-1]
        mid = y((top[-1] + base[-1]) / 2) if abs(y(top[-1]) - y(base[-1])) >= 10 else None
        out.append((d, mid if thick > 0 else None))
        base = top
    return out


def spread_labels(ys: list[float | None], min_gap: float = 11.0) -> list[float | None]:
    """Push direct labels apart vertically so they do not overprint each other."""
    present = sorted((v, i) for i, v in enumerate(ys) if v is not None)
    placed: dict[int, float] = {}
    last: float | None = None
    for v, i in present:
        pos = v if last is None else max(v, last + min_gap)
        placed[i] = pos
        last = pos
    return [px(placed[i]) if i in placed else None for i in range(len(ys))]


def time_ticks(duration: float, x: Scale) -> tuple[Tick, ...]:
    """Seconds since the run start, every 1-2-5 step giving about ten ticks."""
    return tuple(Tick(px(x(v)), fmt_number(v)) for v in linear_ticks(0.0, duration, 10))


def value_ticks(
    values: Sequence[float], y: Scale, fmt: str = "{}", factor: float = 1.0
) -> tuple[Tick, ...]:
    """Ticks at ``values``; the label shows ``value * factor`` (fractions as percent)."""
    return tuple(Tick(px(y(v)), fmt.format(fmt_number(round(v * factor, 6)))) for v in values)


def latency_scale(
    max_ms: float, min_ms: float, top: float, bottom: float
) -> tuple[Scale, tuple[Tick, ...], bool]:
    """Pick log or linear for latency; returns the scale, its ticks and whether it is log."""
    hi = nice_max(max(max_ms, 1.0))
    lo_data = max(min_ms, 0.01)
    if hi / lo_data > 30:
        lo = 10 ** math.floor(math.log10(lo_data))
        hi = 10 ** math.ceil(math.log10(hi))
        log = LogScale(lo, hi, bottom, top)
        return log, value_ticks(log_ticks(lo, hi), log), True
    lin = LinearScale(0.0, hi, bottom, top)
    return lin, value_ticks(linear_ticks(0.0, hi, 4), lin), False


# -- layout of one policy's timeline ------------------------------------------------------

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

    # 5. breaker state and gossip hints per peer
    rows = max(len(tl.peers), 1)
    h = rows * (STRIP_ROW + STRIP_GAP)
    rects: list[Rect] = []
    marks: list[Mark] = []
    labels: list[RowLabel] = []
    for r, p in enumerate(tl.peers):
        ry = top + r * (STRIP_ROW + STRIP_GAP)
        labels.append(RowLabel(px(ry + STRIP_ROW / 2), p.short))
        for a, b, state in _runs(p.breaker):
            if not state:
                continue
            x0, x1 = x(a * bins.width), x(min(b * bins.width, axis_end))
            rects.append(
                Rect(
                    px(x0),
                    px(ry),
                    px(x1 - x0),
                    STRIP_ROW,
                    BREAKER_COLOURS[state],
                    f"breaker-{state}",
                    f"{p.short}: breaker {state.replace('_', '-')} "
                    f"{a * bins.width:.2f} to {b * bins.width:.2f} s",
                )
            )
        for i, c in enumerate(p.hints):
            if c:
                marks.append(
                    Mark(
                        triangle(x(xs[i]), ry + 1),
                        f"{c} gossip hint{'s' if c > 1 else ''} about {p.short} "
                        f"at {bins.starts[i]:.2f} s",
                    )
                )
    note = ""
    if tl.breaker_events == 0 and tl.hint_events == 0:
        note = "no breaker transitions and no gossip hints recorded"
    elif tl.breaker_events == 0:
        note = "no breaker transitions recorded"
    panels.append(
        Panel(
            "breaker state per worker (grey closed, yellow half-open, red open); "
            "▼ gossip hints received",
            top,
            h,
            rects=tuple(rects),
            marks=tuple(marks),
            row_labels=tuple(labels),
            note=note,
        )
    )
    bottom = top + h
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
}
POLICY_DASHES: dict[str, str] = {
    "adaptive": "",
    "random": "6 3",
    "round_robin": "2 2",
    "oracle": "1 3",
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
        f"M{_r(PLOT_LEFT)},{_r(y(0.05))}L{_r(PLOT_RIGHT)},{_r(y(0.05))}",
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
    bottom = top + h
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
