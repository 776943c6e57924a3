"""How policies that read the servers' own load get it: reply headers and probes.

Two small protocols, checked with ``isinstance`` by the wiring (:mod:`lab.loadgen.
policy_side`), so the request loop and the other policies know nothing of them:

- :class:`LoadFeedback`: told the :class:`~lab.grenache.load.LoadReport` carried by
  each reply's headers (C3);
- :class:`ProbeDriven`: asks for asynchronous probes through a ``ProbeRequester``
  it is given, and is told each probe's result or failure (Prequal). The policy never
  awaits: the prober (:mod:`lab.balancer.prober`) runs the probes and reports back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from lab.grenache.load import LoadReport

ProbeRequester = Callable[[str], None]
"""Ask for one probe of a peer; returns at once, the result comes later."""


@runtime_checkable
class LoadFeedback(Protocol):
    def observe_load(self, peer: str, report: LoadReport) -> None:
        """A reply from ``peer`` carried ``report``."""


@runtime_checkable
class ProbeDriven(Protocol):
    def set_prober(self, requester: ProbeRequester) -> None:
        """Where to ask for probes from now on."""

    def take_probe(self, peer: str, report: LoadReport) -> None:
        """A probe of ``peer`` answered ``report``."""

    def probe_failed(self, peer: str) -> None:
        """A probe of ``peer`` got no answer (timeout, refused, garbage)."""
