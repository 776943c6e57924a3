"""`lab validate`: OK or the error per file, exit 0 / 2; the dry-run plan text."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.cli import main
from lab.scenario.plan.spec import load_scenario
from lab.scenario.run.validate_command import describe_plan

ROOT = Path(__file__).resolve().parents[2]


def test_valid_files_print_ok_and_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(ROOT / "scenarios" / n) for n in ("partition.yaml", "chaos-mix.yaml")]
    assert main(["validate", *files]) == 0
    out = capsys.readouterr().out
    assert out.count("OK ") == 2


def test_an_invalid_file_prints_file_line_field_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: b\nclients: [adaptive]\nload: {rate: 10}\nduration: 30s\n"
        "timeline:\n  - {at: soon, fault: partition, target: worker-2}\n",
        encoding="utf-8",
    )
    good = ROOT / "scenarios" / "partition.yaml"
    assert main(["validate", str(good), str(bad)]) == 2
    captured = capsys.readouterr()
    assert f"{bad}:6: timeline[0].at: expected a duration like 15s, got 'soon'" in captured.err
    assert "OK " in captured.out


def test_describe_plan_lists_every_step_in_order() -> None:
    s = load_scenario(ROOT / "scenarios" / "flapping.yaml")
    text = describe_plan(s)
    assert "scenario flapping" in text
    assert text.count(" inject ") == text.count(" heal ") == len(s.plan()) // 2
    assert "adaptive: availability >= 0.995, max_faulty_share <= 0.15" in text
    assert describe_plan(s, seed=3) == describe_plan(s, seed=3)
