"""The issue-10 library scenarios on the local runtime: real grapes, workers, clients, Toxiproxy.

Each file in ``NEW`` runs as written except for the runtime (``local``) and one grape
instead of three (the grapes play no part in these faults and the host has two cores).
The test asserts what must hold whatever the host's noise: the run was carried out, the
adaptive client's availability held against random's of the same run (the library's own
``>= random - 0.001`` expectation), the adaptive client never refused a request on its own
judgement, and each scenario's point (below). Latency bounds are left to the scenario's
verdict, printed in the report: on a shared 2-core host a p99 comparison is noise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from engine_support import ROOT, toxiproxy_binary

from lab.history import History, read_journal

pytestmark = [pytest.mark.toxiproxy, pytest.mark.slow]

NEW = ["all-slow", "two-blackholed", "all-down-back", "pause-clients", "few-errors",
       "flapping-latency"]  # fmt: skip


def run_local(tmp_path: Path, name: str) -> tuple[int, str, dict[str, Any], History]:
    text = (ROOT / "scenarios" / f"{name}.yaml").read_text()
    text = text.replace(f"name: {name}\n", f"name: {name}\nruntime: local\n"
                        "topology: {grapes: 1, workers: 3}\n", 1)  # fmt: skip
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    reports = tmp_path / "reports"
    env = {**os.environ, "LAB_TOXIPROXY_BIN": str(toxiproxy_binary()), "COLUMNS": "160"}
    proc = subprocess.run(
        [sys.executable, "-m", "lab", "run", str(path), "--reports", str(reports)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    (run_dir,) = [d for d in reports.iterdir() if d.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    return (
        proc.returncode,
        proc.stdout + proc.stderr,
        summary,
        read_journal(run_dir / "journal.jsonl"),
    )


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", NEW)
def test_new_library_scenario_never_worse_than_random(tmp_path: Path, name: str) -> None:
    code, out, summary, history = run_local(tmp_path, name)
    assert code in (0, 1), out  # 2: the run could not be carried out
    assert summary["status"] == "completed", summary.get("abort_reason")
    p = summary["policies"]
    ours, rnd = p["adaptive"], p["random"]
    assert ours["availability"] is not None and rnd["availability"] is not None
    if name != "pause-clients":  # see below
        assert ours["availability"] >= rnd["availability"] - 0.001, (ours, rnd)
    refused = [r for r in history.requests if r.client == "client-adaptive"
               and r.error and "breaker is open" in r.error]  # fmt: skip
    assert not refused, refused[:3]
    assert ours["loop_lag"]["samples"] > 0
    t0 = history.meta.started_mono
    events = [e for e in history.events if e.client == "client-adaptive"]
    if name == "two-blackholed":
        # 0.99 on the Compose lab (the scenario's bound); a starved host turns the client
        # into a plain one for a second after each of its stalls (no retry after a
        # timeout), and that costs some of the requests a retry would have saved
        assert ours["availability"] >= 0.8 and ours["availability"] >= rnd["availability"] + 0.3
        assert rnd["availability"] < 0.5
        assert any(e.kind == "panic" and e.detail["state"] == "start" for e in events)
    elif name == "all-slow":
        assert ours["availability"] >= 0.999
    elif name == "all-down-back":
        first_heal = min(f.ended for f in history.faults if f.ended is not None)
        ok = sorted(r.issued for r in history.requests
                    if r.client == "client-adaptive" and r.outcome.value == "ok"
                    and r.issued >= first_heal)  # fmt: skip
        assert ok and ok[0] - first_heal < 2.0, "service did not resume with the first worker"
    elif name == "pause-clients":
        # Availability in the 1 s window (~100 requests each, the clients paused one
        # after another) says which late arrivals each lost, not how a policy judged:
        # it is the scenario's verdict on the Compose lab. What must hold here: the
        # stall was seen, no breaker opened on the stall itself, and none stayed
        # open. On waking, the three clients' backlogs
        # reach the workers at once; a worker that then fails to answer within the time
        # an attempt was given (on time, measured) is slow for real, and a breaker may
        # trip on it for one open period (seen in CI: 150 ms after waking, closed again
        # 0.57 s later).
        fault = next(f for f in history.faults if f.target == "client-adaptive")
        assert fault.started is not None and fault.ended is not None
        assert any(e.kind == "stall" and e.detail["length_ms"] >= 500 for e in events)
        breaker = [e for e in events if e.kind == "breaker"
                   and fault.started - 0.5 <= e.t <= fault.ended + 2.0]  # fmt: skip
        during = [e for e in breaker if e.detail["to"] == "open" and e.t <= fault.ended + 0.05]
        assert not during, [(round(e.t - t0, 2), e.peer, e.detail) for e in during]
        for e in (e for e in breaker if e.detail["to"] == "open"):
            closed = [c for c in events if c.kind == "breaker" and c.peer == e.peer
                      and c.detail["to"] == "closed" and e.t < c.t <= e.t + 2.0]  # fmt: skip
            assert closed, f"{e.peer}'s breaker opened at {e.t - t0:.2f} s and stayed open"
    elif name == "few-errors":
        opened = [e for e in events if e.kind == "breaker" and e.detail["to"] == "open"]
        assert len(opened) <= 2, "a worker failing 5 % must not flap"
        assert ours["availability"] >= 0.999
