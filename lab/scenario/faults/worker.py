"""Worker-control faults: slow and errors (``PUT /behaviour``), and the CPU antagonist.

Heal puts back the behaviour read before injecting, not a default, so a worker that was
already changed by hand ends as it was found.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from lab.errors import FaultError, RuntimeUnavailable
from lab.lab_client import http_json
from lab.scenario.faults.base import Fault, FaultContext
from lab.scenario.faults.leftovers import SERVICES, Janitor
from lab.scenario.runtime.protocol import Target


class ControlFault(Fault):
    """A fault through one ``endpoint`` of the worker's control port."""

    endpoint: ClassVar[str]

    def __init__(
        self, fault_id: str, target: Target, params: Mapping[str, Any], ctx: FaultContext
    ) -> None:
        super().__init__(fault_id, target, params, ctx)
        self.url = f"{self._needs(target.control_url, 'control URL')}/{self.endpoint}"

    def _get(self) -> dict[str, Any]:
        data = http_json("GET", self.url, timeout=2.0)
        if not isinstance(data, dict):
            raise FaultError(f"GET {self.url} answered {data!r:.80}")
        return data


class WorkerBehaviourFault(ControlFault):
    """``PUT /behaviour`` on the worker's control port; heal puts back what was there."""

    endpoint = "behaviour"

    def __init__(
        self, fault_id: str, target: Target, params: Mapping[str, Any], ctx: FaultContext
    ) -> None:
        super().__init__(fault_id, target, params, ctx)
        self.change = self.behaviour()
        self.before: dict[str, Any] | None = None

    @abstractmethod
    def behaviour(self) -> dict[str, Any]: ...

    def _apply(self) -> None:
        current = self._get()
        self.before = {k: current[k] for k in self.change if k in current}
        http_json("PUT", self.url, self.change, timeout=2.0)

    def _matches(self, want: Mapping[str, Any]) -> bool:
        now = self._get()
        return all(_same(now.get(k), v) for k, v in want.items())

    def _confirm_applied(self) -> None:
        if not self._matches(self.change):
            raise FaultError(f"{self.url} does not show {self.change} after PUT")

    def _remove(self) -> None:
        if self.before:
            http_json("PUT", self.url, self.before, timeout=2.0)

    def _confirm_removed(self) -> None:
        if self.before and not self._matches(self.before):
            raise FaultError(f"{self.url} does not show {self.before} after restoring it")

    def leftover(self) -> dict[str, Any]:
        return {**super().leftover(), "behaviour_url": self.url, "restore": self.before}

    leftover_stage = SERVICES

    @classmethod
    def undo_leftovers(cls, found: Sequence[Mapping[str, Any]], janitor: Janitor) -> None:
        """Put back the behaviour read before injecting (none read: nothing was changed)."""
        for f in found:
            if f.get("behaviour_url") and f.get("restore"):
                t = f.get("target")
                done, doing = f"restored behaviour of {t}", f"restore behaviour of {t}"
                _call(janitor, "PUT", f["behaviour_url"], f["restore"], done=done, doing=doing)


def _call(janitor: Janitor, method: str, url: Any, body: Any, *, done: str, doing: str) -> None:
    """One leftover undone through the worker's control port, said in the janitor's report."""
    try:
        http_json(method, str(url), body, timeout=2.0)
        janitor.did(done)
    except RuntimeUnavailable as exc:
        janitor.unreachable(doing, exc)


def _same(found: Any, want: Any) -> bool:
    if isinstance(want, Mapping) and isinstance(found, Mapping):
        return all(_same(found.get(k), v) for k, v in want.items())
    if isinstance(want, int | float) and isinstance(found, int | float):
        return abs(float(found) - float(want)) < 1e-9
    return bool(found == want)


class Slow(WorkerBehaviourFault):
    """Application latency: ``latency`` as the worker's control API takes it."""

    kind = "slow"

    def behaviour(self) -> dict[str, Any]:
        latency = self.params.get("latency")
        if latency is None and "latency_ms" in self.params:
            latency = {"kind": "fixed", "ms": self.params["latency_ms"]}
        if not isinstance(latency, Mapping):
            raise FaultError('parameter latency must be like {"kind": "fixed", "ms": 300}')
        cpu = self.params.get("cpu_ms")
        if cpu is None:
            return {"latency": dict(latency)}
        if isinstance(cpu, bool) or not isinstance(cpu, int | float) or cpu < 0:
            raise FaultError(f"parameter cpu_ms must be a number >= 0, not {cpu!r}")
        return {"latency": dict(latency), "cpu_ms": float(cpu)}


class Errors(WorkerBehaviourFault):
    """The worker answers a share ``error_rate`` of requests with an error."""

    kind = "errors"

    def behaviour(self) -> dict[str, Any]:
        rate = self.params.get("error_rate")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise FaultError(f"parameter error_rate must be within [0, 1], not {rate!r}")
        return {"error_rate": float(rate)}


class Antagonist(ControlFault):
    """A co-tenant taking ``share`` of the worker's CPU (``PUT /antagonist``) until healed.

    Heterogeneous capacity as in Prequal's testbed: the worker's requests get only the
    rest of its loop (lab/worker/antagonist.py). No ``for_s`` is sent: the heal ends it
    (``DELETE``), and so do rollback and a later run's leftover cleanup (the marker keeps
    the URL), so an antagonist never outlives the run that started it.
    """

    kind = "antagonist"
    endpoint = "antagonist"

    def __init__(
        self, fault_id: str, target: Target, params: Mapping[str, Any], ctx: FaultContext
    ) -> None:
        super().__init__(fault_id, target, params, ctx)
        share = params.get("share")
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 0.95:
            raise FaultError(f"parameter share must be within (0, 0.95], not {share!r}")
        self.share = float(share)

    def _apply(self) -> None:
        http_json("PUT", self.url, {"share": self.share}, timeout=2.0)

    def _confirm_applied(self) -> None:
        now = self._get()
        if not now.get("running") or not _same(now.get("share"), self.share):
            raise FaultError(f"{self.url} shows {now} after PUT share {self.share:g}")

    def _remove(self) -> None:
        http_json("DELETE", self.url, timeout=2.0)

    def _confirm_removed(self) -> None:
        now = self._get()
        if now.get("running"):
            raise FaultError(f"{self.url} still shows {now} after DELETE")

    def leftover(self) -> dict[str, Any]:
        return {**super().leftover(), "antagonist_url": self.url}

    leftover_stage = SERVICES

    @classmethod
    def undo_leftovers(cls, found: Sequence[Mapping[str, Any]], janitor: Janitor) -> None:
        for f in found:
            if f.get("antagonist_url"):
                t = f.get("target")
                done, doing = f"stopped the antagonist on {t}", f"stop the antagonist on {t}"
                _call(janitor, "DELETE", f["antagonist_url"], None, done=done, doing=doing)
