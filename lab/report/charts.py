"""SVG geometry for the report: scales, ticks, paths and panels, as plain data.

Templates must not compute (style.md), so every coordinate, path string, tick label and
colour a chart needs is decided here and handed to Jinja as frozen dataclasses; the
template only writes them out as elements. This module holds the primitives (scales,
ticks, paths, the shapes a chart is made of); :mod:`lab.report.layout` arranges them
into the report's charts. Nothing here knows about runs, so it tests with a few numbers.

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
from collections.abc import Sequence
from dataclasses import dataclass, field

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
    """A downward triangle's polygon points, its tip ``1.6 * size`` below ``y``."""
    n = svg_num
    return f"{n(x - size)},{n(y)} {n(x + size)},{n(y)} {n(x)},{n(y + size * 1.6)}"


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


def svg_num(v: float) -> str:
    """A coordinate as path text: 0.1 px, no trailing zeros."""
    return f"{v:.1f}".rstrip("0").rstrip(".")


def line_path(xs: Sequence[float], ys: Sequence[float | None], x: Scale, y: Scale) -> str:
    """An SVG path through the points; a ``None`` value breaks the line (an empty bin)."""
    parts: list[str] = []
    pen_down = False
    for xv, yv in zip(xs, ys, strict=True):
        if yv is None:
            pen_down = False
            continue
        parts.append(("L" if pen_down else "M") + svg_num(x(xv)) + "," + svg_num(y(yv)))
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
        upper = [f"{svg_num(x(xv))},{svg_num(y(tv))}" for xv, tv in zip(xs, top, strict=True)]
        lower = [f"{svg_num(x(xv))},{svg_num(y(bv))}" for xv, bv in zip(xs, base, strict=True)]
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
