"""The view model on tiny hand-made histories: each figure checked against arithmetic."""

from __future__ import annotations

import pytest

from lab.history import (
    Attempt,
    ClientEvent,
    FaultRecord,
    History,
    Outcome,
    RequestRecord,
    RunMeta,
    group_clients,
)
from lab.report.layout import timeline_chart
from lab.report.model import build_faults, build_report
from lab.report.tables import fmt_fraction, fmt_metric, fmt_ratio
from lab.report.timelines import (
    Bins,
    build_timelines,
    choose_bins,
    declared_clients,
    trailing_share,
)

T0 = 100.0


def _history(status: str = "completed") -> History:
    return History(
        meta=RunMeta(
            run_id="r",
            scenario="s",
            seed=1,
            started_wall=1_700_000_000.0,
            started_mono=T0,
            duration_s=2.0,
            status=status,
        )
    )


def _req(
    policy: str, t: float, peer: str, ok: bool = True, ms: float = 5.0, client: str = ""
) -> RequestRecord:
    issued = T0 + t
    outcome = Outcome.OK if ok else Outcome.TIMEOUT
    att = (Attempt(peer, issued, issued + ms / 1000, outcome),)
    return RequestRecord(
        client or f"c-{policy}", policy, 0, issued, issued + ms / 1000, outcome, att
    )


def test_bins_are_250ms_for_a_minute_and_widen_for_longer_runs() -> None:
    assert choose_bins(60.0) == Bins(0.25, 240)
    assert choose_bins(61.0).width == 0.5
    assert choose_bins(3600.0).count <= 240


def test_rate_availability_and_latency_per_bin() -> None:
    h = _history()
    # bin 0 (0-0.25 s): 4 requests, one timed out after 1 s; bin 1 empty
    h.requests += [_req("random", 0.01 * i, "a", ms=2.0 + i) for i in range(3)]
    h.requests.append(_req("random", 0.1, "b", ok=False, ms=1000.0))
    (tl,) = build_timelines(h, Bins(0.25, 8))
    assert tl.issued_rate[0] == 16.0  # 4 requests / 0.25 s
    assert tl.failed_rate[0] == 4.0
    assert tl.availability[0] == 0.75
    assert tl.availability[1] is None  # an empty bin is no data, not 0 %
    assert tl.p50_ms[0] == pytest.approx(3.0)  # nearest rank of [2, 3, 4, 1000]
    assert tl.p99_ms[0] == pytest.approx(1000.0)
    assert tl.p50_ms[1] is None


def test_share_uses_the_500ms_window_of_the_recovery_metrics() -> None:
    assert trailing_share([1, 0, 0], [1, 1, 1], 2) == (1.0, 0.5, 0.0)
    h = _history()
    h.requests += [_req("random", 0.0, "a"), _req("random", 0.3, "b")]
    (tl,) = build_timelines(h, Bins(0.25, 8))
    a, b = tl.peers
    assert (a.share[0], b.share[0]) == (1.0, 0.0)
    assert (a.share[1], b.share[1]) == (0.5, 0.5)


def test_breaker_strip_keeps_the_worst_state_of_each_bin() -> None:
    h = _history()
    h.requests.append(_req("adaptive", 0.0, "a"))
    for t, frm, to in (
        (0.30, "closed", "open"),
        (0.40, "open", "half_open"),
        (1.1, "half_open", "closed"),
    ):
        h.events.append(
            ClientEvent("c-adaptive", "adaptive", T0 + t, "breaker", "a", {"from": frm, "to": to})
        )
    h.events.append(ClientEvent("c-adaptive", "adaptive", T0 + 0.6, "gossip_hint", "a", {}))
    (tl,) = build_timelines(h, Bins(0.25, 8))
    (a,) = tl.peers
    assert a.breaker[:6] == ("closed", "open", "half_open", "half_open", "half_open", "closed")
    assert a.hints[2] == 1 and sum(a.hints) == 1
    assert tl.breaker_events == 3 and tl.hint_events == 1


def test_two_clients_of_one_policy_are_charted_apart() -> None:
    h = _history()
    h.requests += [_req("adaptive", 0.0, "a", client="x"), _req("adaptive", 0.1, "a", client="y")]
    h.requests.append(_req("random", 0.0, "a", client="z"))
    keys = [tl.key for tl in build_timelines(h, Bins(0.25, 8))]
    assert keys == ["x", "y", "z"]


def test_fault_times_are_relative_and_an_unhealed_fault_says_so() -> None:
    h = _history(status="aborted")
    h.faults.append(FaultRecord("f1", "kill", "worker-1", ("w1:1",), T0 + 0.9, T0 + 1.0, None))
    (f,) = build_faults(h)
    assert (f.start_s, f.end_s, f.started, f.ended) == (1.0, None, "1.000 s", "not healed")
    assert f.started_wall == "22:13:21.000"


def test_partial_summary_gives_dashes_not_errors() -> None:
    h = _history()
    h.requests.append(_req("adaptive", 0.0, "a"))
    model = build_report(h, {"policies": {"adaptive": {"availability": 0.99951}}}, None)
    (row,) = model.recovery.rows
    assert row.cells[0].text == "—"
    assert row.cells[1].text == "99.951 %"
    assert model.header.verdict == "unknown"


def test_formats() -> None:
    assert fmt_fraction(1.0) == "100 %"
    assert fmt_fraction(0.99999) == "99.999 %"
    assert fmt_fraction(0.5) == "50.0 %"
    assert fmt_ratio(1.234) == "\u00d71.23"
    assert fmt_metric("recovery_s", 2.4) == "2.40 s"
    assert fmt_metric("p99_ms", 1000) == "1000 ms"
    assert fmt_metric("detection_s", None) == "—"
    assert fmt_metric("availability", float("nan")) == "—"


def test_summary_keyed_by_client_name_is_the_same_row() -> None:
    h = _history()
    h.requests.append(_req("adaptive", 0.0, "a", client="client-a"))
    model = build_report(h, {"policies": {"client-a": {"detection_s": 0.5}}}, None)
    assert [r.name for r in model.recovery.rows] == ["client-a"]
    assert model.timelines[0].figures.startswith("detection 0.50 s")


def test_completed_run_axis_is_the_planned_duration() -> None:
    h = _history()
    h.meta.duration_s = 60.0
    h.requests.append(_req("random", 59.9, "a", ok=False, ms=1000.0))  # ends at 60.9 s
    model = build_report(h, None, None)
    assert model.axis_end == 60.0
    assert model.bins == Bins(0.25, 240)


def test_panic_mode_is_a_row_of_the_breaker_strip() -> None:
    h = _history()
    h.requests.append(_req("adaptive", 0.0, "a"))
    for t, state in ((0.3, "start"), (0.9, "end")):
        h.events.append(
            ClientEvent("c-adaptive", "adaptive", T0 + t, "panic", None, {"state": state})
        )
    (tl,) = build_timelines(h, Bins(0.25, 8))
    assert tl.panic == (False, True, True, True, False, False, False, False)
    assert [p.peer for p in tl.peers] == ["a"]  # panic is no peer: no share series for it
    strip = timeline_chart(tl, Bins(0.25, 8), 2.0, (), {}).panels[-1]
    assert [r.text for r in strip.row_labels] == ["a", "panic"]
    (panic,) = [r for r in strip.rects if r.css == "breaker-panic"]
    assert "panic mode" in panic.title and "0.25 to 1.00 s" in panic.title


def test_one_grouping_rule_keys_the_report_as_the_summary_did() -> None:
    """Two adaptive clients, one silent: summary.json (which knows the scenario's clients)
    keys by client, and the report, told the same clients, must not key by policy."""
    h = _history()
    h.requests += [_req("adaptive", 0.1, "a", client="client-a1")]
    assert group_clients(h) == ("policy", {"client-a1": "adaptive"})
    declared = [("client-a1", "adaptive"), ("client-a2", "adaptive")]
    assert group_clients(h, declared) == (
        "client",
        {"client-a1": "client-a1", "client-a2": "client-a2"},
    )
    summary = {
        "grouping": "client",
        "policies": {c: {"client": c, "policy": p} for c, p in declared},
    }
    assert declared_clients(summary) == declared
    (tl,) = build_timelines(h, Bins(0.25, 8), declared=declared_clients(summary))
    assert tl.key == "client-a1" and tl.label == "client-a1 (adaptive)"
