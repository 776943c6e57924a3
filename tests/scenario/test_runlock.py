"""One run at a time per lab (the run lock) and one folder per run (issue 13, item 3).

The holder is a real second process: the lock is an flock, which a process's own second
open would also be refused, but the point is two `lab` processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import lab.scenario.run.run_command  # noqa: F401  (imported here: the timing is the refusal's, not the interpreter's imports)
from lab.cli import main
from lab.scenario.faults.marker import MARKER
from lab.scenario.run.runlock import (
    LOCK_NAME,
    LabBusy,
    acquire,
    holder,
    lock_path,
    reserve_run_dir,
)

ROOT = Path(__file__).resolve().parents[2]

HOLDER = """
import sys, time
from pathlib import Path
from lab.scenario.run.runlock import acquire
lock = acquire(Path(sys.argv[1]), scenario="first-run", command="lab run first.yaml")
print("held", flush=True)
sys.stdin.read()  # hold until the test closes our stdin (or kills us)
lock.release()
"""

SCENARIO = """
name: second
runtime: local
topology: {grapes: 1, workers: 1}
clients: [random]
load: {rate: 10}
duration: 2s
warmup: 0s
"""


def hold(path: Path) -> subprocess.Popen[str]:
    """A second process holding the lock at ``path`` (it says so on stdout first)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_lab_run_is_refused_with_exit_2_before_touching_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    # a dead run's marker: the refused run must not clean it up (it touches nothing)
    marker = reports / MARKER
    marker.write_text(json.dumps({"run_id": "first", "pid": 0, "faults": []}))
    spec = tmp_path / "second.yaml"
    spec.write_text(SCENARIO)
    first = hold(reports / LOCK_NAME)
    try:
        t0 = time.monotonic()
        code = main(["run", str(spec), "--runtime", "local", "--reports", str(reports)])
        took = time.monotonic() - t0
    finally:
        first.communicate("", timeout=10)
    err = capsys.readouterr().err
    assert code == 2
    assert "another run holds this lab" in err
    assert f"pid {first.pid}" in err and "scenario first-run" in err
    assert f"kill {first.pid}" in err
    assert took < 1.0
    assert marker.exists()
    assert sorted(p.name for p in reports.iterdir()) == sorted([LOCK_NAME, MARKER])


def test_a_dead_runs_lock_is_stale_and_taken_over(tmp_path: Path) -> None:
    path = tmp_path / LOCK_NAME
    first = hold(path)
    owner, alive = holder(path)
    assert owner is not None and owner.pid == first.pid and alive
    with pytest.raises(LabBusy):
        acquire(path)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    owner, alive = holder(path)
    assert owner is not None and owner.pid == first.pid and not alive
    lock = acquire(path, scenario="next")
    try:
        assert lock.stale is not None and lock.stale.pid == first.pid
        assert lock.owner.pid == os.getpid()
        assert holder(path) == (lock.owner, True)
    finally:
        lock.release()
    assert holder(path) == (None, False)  # released: empty, free


def test_a_released_lock_is_not_stale(tmp_path: Path) -> None:
    path = tmp_path / LOCK_NAME
    acquire(path).release()
    lock = acquire(path)
    assert lock.stale is None
    lock.release()


def test_the_compose_lab_has_one_lock_whatever_the_reports_dir(tmp_path: Path) -> None:
    a, b = lock_path("compose", tmp_path / "a"), lock_path("compose", tmp_path / "b")
    assert a == b and not a.is_relative_to(tmp_path)
    assert a.parent.stat().st_mode & 0o077 == 0  # only this user may plant or hold it
    assert lock_path("local", tmp_path / "a") == tmp_path / "a" / LOCK_NAME


def test_a_lock_file_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("keep")
    (tmp_path / LOCK_NAME).symlink_to(target)
    with pytest.raises(Exception, match="cannot open the run lock"):
        acquire(tmp_path / LOCK_NAME)
    assert target.read_text() == "keep"


def test_runs_in_the_same_millisecond_get_their_own_folders(tmp_path: Path) -> None:
    """Issue 13: two runs of one scenario in one second shared a folder and overwrote it."""
    wall = 1_764_675_603.25
    found: list[tuple[str, Path]] = []
    lock = threading.Lock()

    def reserve() -> None:
        got = reserve_run_dir(tmp_path, "partition", wall)
        with lock:
            found.append(got)

    threads = [threading.Thread(target=reserve) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    ids = sorted(i for i, _ in found)
    assert len(set(ids)) == 12
    stamp = ids[0].removesuffix("-partition")
    assert stamp.endswith("-250")  # millisecond resolution
    assert set(ids) == {f"{stamp}-partition"} | {f"{stamp}-partition-{n}" for n in range(2, 13)}
    assert all(d.is_dir() and not any(d.iterdir()) for _, d in found)


def test_an_existing_folder_is_never_reused(tmp_path: Path) -> None:
    wall = 1_764_675_603.0
    run_id, run_dir = reserve_run_dir(tmp_path, "x", wall)
    (run_dir / "summary.json").write_text("{}")
    again, other = reserve_run_dir(tmp_path, "x", wall)
    assert again != run_id and other != run_dir
    assert (run_dir / "summary.json").read_text() == "{}"
