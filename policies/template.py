"""Your policy: copy this file (``cp policies/template.py policies/mine.py``) and fill it in.

Name it wherever the lab takes a policy, as ``path/to/file.py:ClassName``::

    lab challenge 1 --policy policies/mine.py:MyPolicy --runtime local
    lab call --policy policies/mine.py:MyPolicy
    # and in a scenario file:  clients: [policies/mine.py:MyPolicy, random, oracle]
    # on the Compose lab too (the file must be in policies/, one of yours per run):
    lab run scenarios/byo.yaml     # after putting policies/mine.py:MyPolicy in it

The interface is :class:`lab.balancer.policies.Policy`, the one every built-in policy
implements (read ``RandomPolicy`` and ``OraclePolicy`` there first: each is ten lines).
The client asks your policy three things and tells it one:

- ``choose(exclude)``: which peer next? Return ``Pick(peer)`` with a peer from
  ``self.known()`` that is not in ``exclude`` (peers this request already tried), or
  raise ``NoPeerAvailable`` when none may go. Keep it fast: over 100 ms is a fault.
- ``attempt_timeout(peer, remaining)``: how long to wait (default: all that remains).
- ``try_retry()``: may a failed request try another peer? Only when ``retries = True``.
- ``finished(pick, rtt, outcome)``: how an attempt ended (``Outcome.OK``, ``ERROR``,
  ``TIMEOUT``) after ``rtt`` seconds. Call ``super().finished(...)`` to keep the shared
  latency estimate that ``lab peers`` shows.

Your code runs inside the lab's client, one process per client. If it raises, hangs or
returns a peer it was not given, the run stops, prints your file:line and the
traceback, removes its faults and exits 2.

This template is deliberately incomplete: it chooses uniformly at random and ignores
every outcome, so it does exactly what upstream Grenache does and fails challenge 1
(``lab challenge 1 --policy policies/template.py:TemplatePolicy --runtime local``).
The TODOs say what to add; LEARNING_GUIDE.md walks through why.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from lab.balancer.policies import Pick, Policy
from lab.errors import NoPeerAvailable
from lab.history import Outcome


class TemplatePolicy(Policy):
    """Uniform random, learning nothing (yet)."""

    name = "template"  # the lab labels your policy by its file:Class reference anyway

    def choose(self, exclude: AbstractSet[str] = frozenset()) -> Pick:
        candidates = [peer for peer in self.known() if peer not in exclude]
        if not candidates:
            raise NoPeerAvailable("every known peer was already tried")
        # TODO(challenge 1): skip peers that failed recently (see finished below).
        # TODO(challenge 3): prefer the peer with the lowest latency estimate; the base
        #   class keeps one per peer: self._metrics[peer].ewma.value(self._clock.monotonic())
        return Pick(self._rng.choice(candidates))

    def finished(self, pick: Pick, rtt: float, outcome: Outcome) -> None:
        super().finished(pick, rtt, outcome)  # keeps the shared latency estimate
        # TODO(challenge 1): remember when pick.peer last failed (outcome is not Outcome.OK),
        #   so choose() can leave it alone for a while.
        # TODO(challenge 4): ...and let it back in once it answers again.
