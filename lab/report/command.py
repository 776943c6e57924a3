"""``lab report RUN_DIR... [--index]``: re-render reports from what is on disk.

A report is a pure function of the run directory, so it can be redrawn after the
template improves or after a crash left the runner no chance to draw it. A RUN_DIR that
holds no journal or summary but has runs below it (``reports/``) re-renders every run
in it. A series (``lab run --repeat``) re-renders its runs, its ``aggregate.html`` and its
own index. ``--index`` also rewrites ``index.html`` in each affected reports folder.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lab.report.aggregate import render_aggregate
from lab.report.render import JOURNAL, SUMMARY, ReportError, render_index, render_report


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dirs",
        nargs="+",
        type=Path,
        metavar="RUN_DIR",
        help="a run directory (reports/<run-id>), or a reports folder to redo every run in it",
    )
    parser.add_argument(
        "--index",
        action="store_true",
        help="also rewrite index.html in the reports folder (the RUN_DIR's parent)",
    )


def _is_run(d: Path) -> bool:
    return (d / JOURNAL).is_file() or (d / SUMMARY).is_file()


def _is_series(d: Path) -> bool:
    """A ``lab run --repeat`` folder: an aggregate summary, its runs one level down."""
    try:
        data = json.loads((d / SUMMARY).read_text(encoding="utf-8"))
        return isinstance(data, dict) and data.get("kind") == "aggregate"
    except (OSError, ValueError, AttributeError):
        return False


def _redo_series(d: Path) -> None:
    for r in sorted(c for c in d.iterdir() if c.is_dir() and _is_run(c)):
        _redo(r)
    t = time.perf_counter()
    out = render_aggregate(d)
    print(f"{out}  ({out.stat().st_size / 1024:.0f} KiB, {time.perf_counter() - t:.2f} s)")
    render_index(d)


def _redo(r: Path) -> None:
    if _is_series(r):
        _redo_series(r)
        return
    t = time.perf_counter()
    out = render_report(r)
    print(f"{out}  ({out.stat().st_size / 1024:.0f} KiB, {time.perf_counter() - t:.2f} s)")


def run(args: argparse.Namespace) -> int:
    indexes: dict[Path, None] = {}
    for given in args.run_dirs:
        d = Path(given)
        if not d.is_dir():
            raise ReportError(f"{d}: no such run directory")
        if _is_run(d):
            runs, parent = [d], d.resolve().parent
        else:
            runs = sorted(c for c in d.iterdir() if c.is_dir() and _is_run(c))
            if not runs:
                raise ReportError(f"{d}: neither a run directory ({JOURNAL}) nor a reports folder")
            parent = d.resolve()
        for r in runs:
            _redo(r)
        indexes.setdefault(parent, None)
    if args.index:
        for parent in indexes:
            print(render_index(parent))
    return 0
