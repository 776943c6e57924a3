"""Each attempt's verdict for the policy, net of the balanced client's own stalls.

Why a module of its own: a client whose event loop froze sees every attempt in flight
time out, and its timers fire late; that is the client's doing, not the peers'. This is
the one place that tells the two apart (with the loop-lag monitor of :mod:`lab.looplag`)
before the policy hears of an attempt, and that says when the client should behave like
the plain one for a while.
"""

from __future__ import annotations

import asyncio
import math

from lab.balancer.policies import Pick, Policy
from lab.history import Outcome
from lab.looplag import StallOracle

STARVED_S = 1.0
"""After a stall of the client's own loop, how long it behaves like the plain client."""

LATE_TIMEOUT_S = 0.05
"""A timeout noticed this much after it was due was late because the client was busy.

The loop-lag monitor's stall threshold: a client working off a burst (the backlog of a
freeze) notices its timers late without one 20 ms tick being 50 ms late, and a timeout
noticed late says nothing about whether the peer had answered in time. Measured on the
event loop's own clock, so a fake lab clock's jumps are never taken for lateness.
"""


def loop_now() -> float:
    """The running event loop's own clock (never the lab's, which a test may fake)."""
    return asyncio.get_running_loop().time()


def noticed_late(loop_start: float, allotted: float) -> bool:
    """Was a timeout of ``allotted`` seconds from ``loop_start`` noticed late?"""
    return loop_now() - loop_start - allotted >= LATE_TIMEOUT_S


class StallJudge:
    """Tells ``policy`` how attempts ended, voiding the verdicts ``stalls`` explain."""

    def __init__(self, policy: Policy, stalls: StallOracle | None) -> None:
        self.policy = policy
        self.stalls = stalls
        self.voided = 0  # attempts whose verdict a stall of the client voided

    def starved(self) -> bool:
        """Did the client itself stall in the last second (``STARVED_S``)?

        Then it behaves as the plain client does: one attempt, waiting up to the
        deadline, no retry after a timeout. Its own timers are late, so an attempt timeout measures
        the client; and a retry is more work for a process that cannot keep up already
        (on a starved host, retries and timeouts spent on the client's own lag fed a
        spiral that took its availability below random's).
        """
        return self.stalls is not None and self.stalls.stalled_within(STARVED_S)

    def stalled(self, start: float, end: float) -> bool:
        """Did the client stall at some time between ``start`` and ``end``?"""
        return self.stalls is not None and self.stalls.overlapped(start, end)

    def cut_short(self, pick: Pick, allotted: float) -> bool:
        """Right after a stall, was this attempt given less than the peer's own timeout?

        Requests that fell due while the client was frozen go out on waking with what
        is left of their deadlines, some with a few ms: their timeouts measure how late
        the client was, not the peer (a burst of them opened a healthy peer's breaker).
        A timeout shorter than the peer's ordinary one is a verdict only when the
        client has not stalled lately (a user's short deadline still ejects a dead peer).
        """
        return self.starved() and allotted < self.policy.attempt_timeout(pick.peer, math.inf)

    def judge(
        self,
        pick: Pick,
        start: float,
        end: float,
        outcome: Outcome,
        allotted: float = math.inf,
        *,
        late: bool = False,
    ) -> None:
        """Tell the policy how the attempt ended, net of the client's own stalls.

        A timeout that overlapped a stall gives no verdict (the client, not the peer,
        was late), nor one noticed ``LATE_TIMEOUT_S`` after it was due, nor one cut
        short by the request's deadline right after a stall (:meth:`cut_short`); an
        answer's latency is counted without the stalled time;
        an error (refused, a reply error) is what it is, stall or not.
        """
        rtt = end - start
        if self.stalls is not None and outcome is not Outcome.ERROR:
            stalled = self.stalls.overlap(start, end)
            if outcome is Outcome.TIMEOUT and (
                stalled > 0 or late or self.cut_short(pick, allotted)
            ):
                self.voided += 1
                self.policy.abandoned(pick)
                return
            rtt = max(0.0, rtt - stalled)
        self.policy.finished(pick, rtt, outcome)
