"""The report in a real browser: headless Chromium opens it from file://, logs no
console error, requests nothing but the file itself, and leaves a full-page screenshot
(in the test's tmp dir and at /tmp/report-shot.png) for a person to look at.

Chromium comes from Debian (``tests/report/ensure_chromium.sh``); without it the test
skips with a message that says how to get it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cdp import find_chromium, launch

from lab.report.render import render_index, render_report

pytestmark = pytest.mark.browser

REVIEW_SHOT = Path("/tmp/report-shot.png")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        # addopts has -ra, so the reason is printed in the run's summary
        pytest.skip(
            "NO CHROMIUM on PATH: the report was not checked in a browser; run "
            "tests/report/ensure_chromium.sh (apt-get install chromium) to enable this test"
        )
    return binary


@pytest.mark.timeout(180)
async def test_reports_open_in_chromium_without_errors(
    chromium: str, reports: dict[str, Path], tmp_path: Path
) -> None:
    pages = {
        "pass": render_report(reports["pass"]),
        "aborted": render_report(reports["aborted"]),
        "index": render_index(reports["root"]),
    }
    async with launch(chromium, tmp_path / "chromium") as browser:
        for name, page in pages.items():
            url = page.resolve().as_uri()
            shot = tmp_path / f"{name}.png"
            log = await browser.open(url, 1400, shot)
            assert log.errors == [], f"{name}: {log.errors}"
            assert log.requests == [url], f"{name} asked for more than itself: {log.requests}"
            data = shot.read_bytes()
            assert data.startswith(PNG_MAGIC) and len(data) > 20_000, name
    shutil.copyfile(tmp_path / "pass.png", REVIEW_SHOT)
    shutil.copyfile(tmp_path / "aborted.png", REVIEW_SHOT.with_name("report-shot-aborted.png"))
