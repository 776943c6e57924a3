"""RunMeta's notes have fields of their own, and the JSON ``versions`` object is unchanged."""

from __future__ import annotations

from lab.history import RunMeta, meta_from_json, meta_to_json


def _meta() -> RunMeta:
    return RunMeta(
        run_id="r1",
        scenario="s",
        seed=1,
        started_wall=0.0,
        started_mono=0.0,
        duration_s=1.0,
        versions={"runtime": "compose", "toxiproxy": "2.9.0"},
    )


def test_notes_land_in_versions_in_the_order_a_run_finds_them() -> None:
    meta = _meta()
    meta.clock = "CLOCK_MONOTONIC shared"
    meta.watch = "Toxiproxy polled"
    meta.history_dropped = {"c1": 3}
    meta.history_stale = {"c2": 1}
    meta.junit_error = "OSError: full"
    meta.report_error = "ValueError: bad"
    assert meta_to_json(meta)["versions"] == {
        "runtime": "compose",
        "toxiproxy": "2.9.0",
        "clock": "CLOCK_MONOTONIC shared",
        "watch": "Toxiproxy polled",
        "history_dropped": '{"c1": 3}',
        "history_stale": '{"c2": 1}',
        "junit_error": "OSError: full",
        "report_error": "ValueError: bad",
    }


def test_a_meta_without_notes_writes_only_its_versions() -> None:
    d = meta_to_json(_meta())
    assert d["versions"] == {"runtime": "compose", "toxiproxy": "2.9.0"}
    assert "clock" not in d and "history_dropped" not in d


def test_the_journal_meta_reads_back_into_named_fields() -> None:
    meta = _meta()
    meta.clock = "shared"
    meta.history_stale = {"c2": 4}
    back = meta_from_json(meta_to_json(meta))
    assert back == meta
    assert back.versions == {"runtime": "compose", "toxiproxy": "2.9.0"}
