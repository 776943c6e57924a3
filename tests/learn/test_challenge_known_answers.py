"""Known answers of the challenge ladder on the local runtime (issue 15): the built-in
adaptive policy passes every challenge, random (in every run beside it) fails the
avoidance ones, the template fails challenge 1. Each challenge is a real run (~35 s).

The whole ladder (six runs, ~5 min) is marked ``ladder`` and left out of ``make test``
(CI's 30 minutes hold it only at the cost of other suites): ``make test-ladder`` runs it.
``make test`` runs challenge 1 for adaptive (random beside it); the template's run of
challenge 1 is the guide's (tests/learn/test_guide.py judges its verdict there: one run,
not two).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from learn_support import lab

from lab.learn.challenges import CHALLENGES

pytestmark = [pytest.mark.toxiproxy, pytest.mark.slow]

AVOIDANCE = {1: "availability", 2: "detection_s", 4: "availability", 5: "gossip_lag_s"}


def _summaries(reports: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in reports.glob("*/summary.json"):
        s = json.loads(path.read_text())
        out[s["scenario"]] = s
    return out


def _random_misses(summaries: dict[str, dict[str, Any]], number: int, metric: str) -> None:
    s = next(v for k, v in summaries.items() if k.startswith(f"challenge-{number}-"))
    (target,) = [e for e in s["expectations"] if e["metric"] == metric]
    random = next(v for v in s["policies"].values() if v["client"] == "client-random")
    value = random.get(metric)
    if value is None:
        return  # random never stopped choosing the hole: no figure, a miss
    bound = float(target["bound_value"])
    missed = value < bound if target["op"].startswith(">") else value > bound
    assert missed, f"challenge {number}: random's {metric} {value} meets {target['bound']}"


@pytest.mark.timeout(300)
def test_adaptive_passes_challenge_1_and_random_beside_it_misses(tmp_path: Path) -> None:
    r = lab("challenge", "1", "--policy", "adaptive", "--reports", str(tmp_path), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert "PASS challenge 1: avoid a blackholed worker" in r.stdout
    _random_misses(_summaries(tmp_path), 1, AVOIDANCE[1])


@pytest.mark.ladder
@pytest.mark.timeout(660)  # six runs of ~35 s each, on a shared host up to ~90 s each
def test_adaptive_passes_the_ladder_and_random_beside_it_misses_the_avoidance_targets(
    tmp_path: Path,
) -> None:
    r = lab("challenge", "--policy", "adaptive", "--reports", str(tmp_path), timeout=640)
    assert "ladder: 6 of 6 challenges passed" in r.stdout, r.stdout + r.stderr[-3000:]
    assert r.returncode == 0
    summaries = _summaries(tmp_path)
    assert len(summaries) == len(CHALLENGES)
    for c in CHALLENGES:
        assert f"PASS challenge {c.number}: {c.title}" in r.stdout
    for number, metric in AVOIDANCE.items():
        _random_misses(summaries, number, metric)
