"""``lab challenge [N]``: run the challenge ladder against a policy and print its verdicts.

Each challenge is one scenario run (``lab.learn.challenges``) on the local runtime, under
the same run lock, leftover cleanup, rollback and report as ``lab run``; only the verdict
printed differs: each of ``client-you``'s targets, the measured value beside random's and
the oracle's, pass or fail, and what to read next when it fails.

Exit codes: 0 every challenge run passed, 1 one failed, 2 one could not be run (bad
policy, no Toxiproxy, the policy crashed: its file:line is printed), as ``lab run``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from lab.errors import LabError
from lab.learn.challenges import (
    CHALLENGES,
    Challenge,
    Verdict,
    challenge,
    check_policy,
    judge,
    with_policy,
)
from lab.scenario.faults.janitor import cleanup_leftovers
from lab.scenario.faults.marker import default_reports_dir
from lab.scenario.plan.spec import load_scenario
from lab.scenario.run.run_command import _need_analysis, _refresh_index, run_once
from lab.scenario.run.runlock import acquire, lock_path, reserve_run_dir

DEFAULT_POLICY = "policies/template.py:TemplatePolicy"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "number", type=int, nargs="?", default=None, metavar="N",
        help=f"the challenge to run, 1 to {len(CHALLENGES)} [all, in order]",
    )  # fmt: skip
    parser.add_argument("--list", action="store_true", help="list the challenges; run nothing")
    parser.add_argument(
        "--policy", default=DEFAULT_POLICY,
        help=f"the policy to judge: path/to/file.py:ClassName or a built-in [{DEFAULT_POLICY}]",
    )  # fmt: skip
    parser.add_argument(
        "--runtime", choices=("local", "compose"), default="local",
        help="where to run: local processes behind a real Toxiproxy [local]",
    )  # fmt: skip
    parser.add_argument(
        "--reports", type=Path, default=None, help="reports directory [reports/ of the repo]"
    )


def run(args: argparse.Namespace) -> int:
    if args.list:
        print_list()
        return 0
    chosen = list(CHALLENGES) if args.number is None else [challenge(args.number)]
    policy = check_policy(args.policy)
    if args.runtime != "local":
        raise LabError(
            "challenges run on the local runtime (--runtime local): their scenarios use one "
            "grape, and the Compose lab runs at least three; on Compose, name your policy "
            "in a scenario's clients: as policies/<file>.py:<Class> and `lab run` it "
            "(LEARNING_GUIDE.md, step 10)"
        )
    return _run_ladder(chosen, policy, args)


def print_list() -> None:
    print(f"{'N':<3}{'challenge':<52}{'grades':<14}scenario")
    for c in CHALLENGES:
        print(f"{c.number:<3}{c.title:<52}{c.skill:<14}{c.file.relative_to(c.file.parents[2])}")


def _run_ladder(chosen: list[Challenge], policy: str, args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(stderr=True)
    reports: Path = args.reports or default_reports_dir()
    command = shlex.join(["lab", "challenge", *sys.argv[2:]])
    codes: list[int] = []
    lock = acquire(lock_path("local", reports), scenario="challenges", command=command)
    try:
        _need_analysis()
        cleanup_leftovers(reports, log=lambda m: console.log(m))
        for c in chosen:
            scenario = with_policy(load_scenario(c.file), policy)
            print(f"challenge {c.number}: {c.title} ({c.skill}), policy {policy}", flush=True)
            run_id, _ = reserve_run_dir(reports, scenario.name)
            ns = argparse.Namespace(runtime="local", fail_fast=False)
            result = run_once(scenario, ns, reports, run_id, None, console, command)
            verdict = judge(
                result.summary or {"status": "aborted", "abort_reason": result.abort_reason}
            )
            codes.append(print_verdict(c, verdict, result.report or result.run_dir))
    finally:
        lock.release()
    _refresh_index(reports, console)
    if len(chosen) > 1:
        passed = sum(1 for code in codes if code == 0)
        print(f"ladder: {passed} of {len(chosen)} challenges passed")
    return max(codes, default=0)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.5g}"


def print_verdict(c: Challenge, verdict: Verdict, where: Path) -> int:
    """The verdict block; returns the exit code (0 pass, 1 fail, 2 aborted)."""
    if where.is_absolute() and where.is_relative_to(Path.cwd()):
        where = where.relative_to(Path.cwd())
    if verdict.aborted is not None:
        print(f"ABORTED challenge {c.number}: {verdict.aborted}")
        print(f"  report: {where}")
        return 2
    print(f"  {'target':<44}{'bound':>9}{'measured':>10}{'random':>10}{'oracle':>10}  verdict")
    for t in verdict.targets:
        print(
            f"  {t.metric + ' ' + t.bound:<44}{_num(t.bound_value):>9}{_num(t.measured):>10}"
            f"{_num(t.references.get('client-random')):>10}"
            f"{_num(t.references.get('client-oracle')):>10}  {'pass' if t.passed else 'FAIL'}"
        )
        if t.measured is None and t.detail:
            print(f"    ({t.detail})")
    if verdict.unknown:
        print(f"  note: the oracle's figures moved ({verdict.unknown}); a busy host: run again")
    if verdict.passed:
        print(f"PASS challenge {c.number}: {c.title}")
    else:
        print(f"FAIL challenge {c.number}: {c.title}")
        print(f"  read next: {c.read_next}")
    print(f"  report: {where}")
    return 0 if verdict.passed else 1
