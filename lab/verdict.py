"""The verdict of a check, a run or a series of runs, and the exit code that carries it.

Four answers, not two (Jepsen's checkers answer ``:unknown`` when the history cannot
decide): ``unknown`` says the run could not tell a regression from a bad day, because
the control (the oracle, told the fault timeline) itself moved. A CI gate must treat it
as neither pass nor fail: ``lab run`` exits 3 for it, distinct from 2 (could not run).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Verdict(StrEnum):
    """One answer; the string values are the ones written to summary.json and JUnit."""

    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"
    ABORTED = "aborted"

    @property
    def exit_code(self) -> int:
        """``lab run``'s exit code: 0 pass, 1 fail, 2 could not run / aborted, 3 unknown."""
        return EXIT_CODES[self]

    @classmethod
    def parse(cls, value: object) -> Verdict:
        """A verdict from summary.json; anything unrecognised is ``unknown``, never a pass."""
        try:
            return cls(str(value))
        except ValueError:
            return cls.UNKNOWN


EXIT_CODES: dict[Verdict, int] = {
    Verdict.PASS: 0,
    Verdict.FAIL: 1,
    Verdict.ABORTED: 2,
    Verdict.UNKNOWN: 3,
}


def combine(checks: Iterable[Verdict], *, control_moved: bool = False) -> Verdict:
    """A run's verdict from its checks' verdicts.

    Aborted wins (nothing can be judged); then a moved control makes the run unknown,
    whatever the other checks say (their bounds compare against noise); then any fail
    fails the run; any unknown check makes it unknown; otherwise it passes.
    """
    seen = set(checks)
    if Verdict.ABORTED in seen:
        return Verdict.ABORTED
    if control_moved:
        return Verdict.UNKNOWN
    if Verdict.FAIL in seen:
        return Verdict.FAIL
    if Verdict.UNKNOWN in seen:
        return Verdict.UNKNOWN
    return Verdict.PASS
