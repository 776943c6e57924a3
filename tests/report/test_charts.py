"""SVG geometry: scales, ticks and paths on a handful of numbers."""

from __future__ import annotations

from lab.report.charts import (
    LinearScale,
    LogScale,
    latency_scale,
    line_path,
    linear_ticks,
    log_ticks,
    nice_max,
    spread_labels,
    stacked_paths,
)
from lab.report.layout import PLOT_LEFT, PLOT_RIGHT, timeline_chart
from lab.report.model import FaultView
from lab.report.timelines import Bins, PeerSeries, Timeline


def test_scales_map_domain_to_range() -> None:
    y = LinearScale(0, 100, 200, 100)
    assert (y(0), y(50), y(100)) == (200, 150, 100)
    log = LogScale(1, 1000, 300, 0)
    assert (log(1), log(10), log(1000)) == (300, 200, 0)
    assert log(0) == 300  # clamped, never a math error


def test_ticks_are_round() -> None:
    assert linear_ticks(0, 60, 10) == [0, 10, 20, 30, 40, 50, 60]
    assert linear_ticks(0, 22, 10) == [0, 2.5, 5, 7.5, 10, 12.5, 15, 17.5, 20]
    assert log_ticks(1, 100) == [1, 2, 5, 10, 20, 50, 100]
    assert log_ticks(1, 1000) == [1, 10, 100, 1000]
    assert log_ticks(0.1, 10000) == [0.1, 1, 10, 100, 1000, 10000]
    assert nice_max(87) == 100 and nice_max(101) == 120


def test_latency_goes_log_only_when_it_spans_decades() -> None:
    _, _, is_log = latency_scale(1000.0, 2.0, 0, 100)
    assert is_log
    _, ticks, is_log = latency_scale(8.0, 2.0, 0, 100)
    assert not is_log and ticks[0].label == "0"


def test_line_path_breaks_at_missing_values() -> None:
    x = LinearScale(0, 3, 0, 30)
    y = LinearScale(0, 1, 10, 0)
    assert line_path([0, 1, 2, 3], [0, 1, None, 0.5], x, y) == "M0,10L10,0M30,5"


def test_stacked_layers_close_and_label_at_the_right_end() -> None:
    x = LinearScale(0, 1, 0, 100)
    y = LinearScale(0, 1, 100, 0)
    (d1, m1), (_, m2) = stacked_paths([0, 1], [[0.5, 0.5], [0.5, 0.5]], x, y)
    assert d1 == "M0,50L100,50L100,100L0,100Z"
    assert (m1, m2) == (75, 25)


def test_direct_labels_do_not_overprint() -> None:
    assert spread_labels([10.0, 12.0, None]) == [10.0, 21.0, None]


def _fault(start: float | None, end: float | None) -> FaultView:
    return FaultView(
        "f1", "kill", "worker-1", "w1:1", "f1: kill worker-1", 0.0, start, end,
        "", "", "", "", "", "", "", "",
    )  # fmt: skip


def test_timeline_panels_share_the_x_scale_and_shade_each_fault() -> None:
    n = 40
    peer = PeerSeries("w1:1", "worker-1 (w1:1)", "worker-1", (1.0,) * n, ("closed",) * n, (0,) * n)
    tl = Timeline(
        "adaptive", "adaptive", "adaptive", ("c",), (100.0,) * n, (0.0,) * n, (1.0,) * n,
        (3.0,) * n, (9.0,) * n, (peer,), 0, 0, 4000,
    )  # fmt: skip
    faults = [_fault(2.5, 5.0), _fault(7.5, None), _fault(None, None)]
    chart = timeline_chart(tl, Bins(0.25, n), 10.0, faults, {})
    assert [p.title.split(" (")[0] for p in chart.panels] == [
        "request rate",
        "availability",
        "latency of requests issued in the bin",
        "traffic share per worker",
        "breaker state per worker",
    ]
    x = LinearScale(0.0, 10.0, PLOT_LEFT, PLOT_RIGHT)
    healed, open_ended = chart.windows  # the unconfirmed fault draws no window
    assert (healed.x, healed.x_end) == (x(2.5), x(5.0))
    assert open_ended.open_ended and open_ended.x_end == PLOT_RIGHT
    assert chart.windows_bottom == chart.panels[-1].bottom
