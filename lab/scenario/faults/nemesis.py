"""The nemesis: one class per fault kind, each with ``inject()`` / ``heal()`` / ``undo()``.

Why confirmed times: detection times of a few hundred milliseconds are measured from the
fault's start, so ``started`` is ``time.monotonic()`` right after the call that put the
fault in place returned (Toxiproxy applies a toxic before it answers; Docker pauses before
it answers), and the state is then read back (toxics listed, proxy state, container
state, worker behaviour): a fault that did not take raises :class:`FaultError` instead of
leaving a start time for something that never happened. ``ended`` is measured the same
way at heal. ``requested`` is taken before the call, so ``started - requested`` is the
API's latency, visible in the journal.

Three families:

- Toxiproxy (via :class:`~lab.toxiproxy_adapter.ToxiproxyAdapter`) on the proxy in front of
  a worker: latency (+jitter), partition (``timeout`` 0 on both streams: data dropped, the
  client hangs), one_way_partition (one stream), down (proxy disabled: refused, open
  connections closed), reset_peer, bandwidth, slow_close. Toxic names start with
  :data:`TOXIC_PREFIX`, so leftover cleanup removes ours and nobody else's.
- Runtime (via :class:`~lab.scenario.runtime.protocol.Runtime`) on a worker or grape: kill, stop,
  pause, restart, grape_partition (network disconnect).
- Worker control (``PUT /behaviour`` on the worker's control port): slow (application
  latency) and errors (error rate); heal restores the behaviour read before injecting.
  The antagonist (``PUT``/``DELETE /antagonist``) takes a share of the worker's CPU.

Composite faults (flapping, seeded chaos) arrive already expanded in the plan, so each step
here is one of these. Every call blocks; the runner runs them in a thread.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from lab.errors import FaultError, LabError
from lab.history import FaultRecord
from lab.lab_client import http_json
from lab.scenario.runtime.protocol import Runtime, Target
from lab.toxiproxy_adapter import ToxiproxyAdapter

TOXIC_PREFIX = "lab-"
"""Every toxic the engine adds is named ``lab-<fault id>-<stream>``."""


@dataclass(frozen=True)
class FaultContext:
    """What faults act through; ``now`` is the clock of every recorded time."""

    runtime: Runtime
    toxiproxy: ToxiproxyAdapter
    now: Callable[[], float] = time.monotonic


class Fault(ABC):
    """One planned fault on one target; ``record`` is its journal entry so far."""

    kind: ClassVar[str]
    target_kinds: ClassVar[tuple[str, ...]] = ("worker",)

    def __init__(
        self, fault_id: str, target: Target, params: Mapping[str, Any], ctx: FaultContext
    ) -> None:
        if target.kind not in self.target_kinds:
            raise FaultError(
                f"fault {fault_id}: {self.kind} applies to a {' or '.join(self.target_kinds)}, "
                f"not to {target.kind} {target.name}"
            )
        self.id = fault_id
        self.target = target
        self.params = dict(params)
        self.ctx = ctx
        self.injected = False
        self.healed = False
        self.record = FaultRecord(
            id=fault_id,
            kind=self.kind,
            target=target.name,
            peers=(target.peer,) if target.peer and target.kind == "worker" else (),
            requested=0.0,
            params=dict(params),
        )

    # -- the template: timing and confirmation are the same for every kind --------------

    def inject(self) -> FaultRecord:
        """Put the fault in place; ``record.started`` is set once it is confirmed."""
        self.record = replace(self.record, requested=self.ctx.now())
        try:
            self.injected = True  # from here on, undo() has something to do
            self._apply()
            started = self.ctx.now()
            self._confirm_applied()
        except LabError as exc:
            self.record = replace(self.record, error=f"inject: {exc}")
            raise FaultError(f"fault {self.id} ({self.kind} on {self.target.name}): {exc}") from exc
        started = self._started(started)
        self.record = replace(self.record, started=started)
        return self.record

    def heal(self) -> FaultRecord:
        """Remove the fault; ``record.ended`` is set once its removal is confirmed."""
        if not self.injected:
            raise FaultError(f"fault {self.id}: heal before inject")
        if self.healed:
            return self.record
        try:
            self._remove()
            ended = self.ctx.now()
            self._confirm_removed()
        except LabError as exc:
            self.record = replace(self.record, error=f"heal: {exc}")
            raise FaultError(f"fault {self.id} ({self.kind} on {self.target.name}): {exc}") from exc
        self.healed = True
        self.record = replace(self.record, ended=self._ended(ended))
        return self.record

    def undo(self) -> None:
        """Rollback's heal: idempotent, tolerant of a fault that half happened."""
        if self.injected and not self.healed:
            self.heal()

    def leftover(self) -> dict[str, Any]:
        """What the in-flight marker stores so a later process can undo this fault."""
        return {"id": self.id, "kind": self.kind, "target": self.target.name}

    def _started(self, t: float) -> float:
        return t

    def _ended(self, t: float) -> float:
        return t

    @abstractmethod
    def _apply(self) -> None: ...

    @abstractmethod
    def _confirm_applied(self) -> None: ...

    @abstractmethod
    def _remove(self) -> None: ...

    @abstractmethod
    def _confirm_removed(self) -> None: ...


# -- Toxiproxy ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToxicSpec:
    name: str
    type: str
    stream: str
    attributes: dict[str, int]


def toxic_name(fault_id: str, stream: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", fault_id)
    return f"{TOXIC_PREFIX}{safe}-{stream}"


def _int_param(params: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = params.get(key, default)
    if value is None:
        raise FaultError(f"parameter {key} is required")
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FaultError(f"parameter {key} must be a number >= 0, not {value!r}")
    return round(value)


class ToxicFault(Fault):
    """A fault made of toxics on the worker's proxy."""

    def __init__(
        self, fault_id: str, target: Target, params: Mapping[str, Any], ctx: FaultContext
    ) -> None:
        super().__init__(fault_id, target, params, ctx)
        if not target.proxy:
            raise FaultError(f"fault {fault_id}: {target.name} has no Toxiproxy proxy in front")
        self.proxy = target.proxy
        self.specs = self.toxics()

    @abstractmethod
    def toxics(self) -> list[ToxicSpec]: ...

    def _spec(self, type_: str, stream: str, **attributes: int) -> ToxicSpec:
        return ToxicSpec(toxic_name(self.id, stream), type_, stream, dict(attributes))

    def _apply(self) -> None:
        for s in self.specs:
            self.ctx.toxiproxy.add_toxic(self.proxy, s.name, s.type, s.attributes, s.stream)

    def _confirm_applied(self) -> None:
        present = {t.name: t for t in self.ctx.toxiproxy.toxics(self.proxy)}
        for s in self.specs:
            t = present.get(s.name)
            if t is None or t.type != s.type or t.stream != s.stream:
                raise FaultError(f"toxic {s.name} is not on proxy {self.proxy} after adding it")
            for key, value in s.attributes.items():
                if t.attributes.get(key) != value:
                    raise FaultError(
                        f"toxic {s.name} on proxy {self.proxy}: {key}={t.attributes.get(key)!r}, "
                        f"expected {value!r}"
                    )

    def _remove(self) -> None:
        present = {t.name for t in self.ctx.toxiproxy.toxics(self.proxy)}
        for s in self.specs:
            if s.name in present:  # undo after a half-applied inject: remove what is there
                self.ctx.toxiproxy.remove_toxic(self.proxy, s.name)

    def _confirm_removed(self) -> None:
        ours = {s.name for s in self.specs}
        left = [t.name for t in self.ctx.toxiproxy.toxics(self.proxy) if t.name in ours]
        if left:
            raise FaultError(f"toxic(s) {', '.join(left)} still on proxy {self.proxy}")

    def leftover(self) -> dict[str, Any]:
        return {**super().leftover(), "proxy": self.proxy, "toxics": [s.name for s in self.specs]}


class Latency(ToxicFault):
    """Replies delayed by ``latency_ms`` (± ``jitter_ms``): the downstream stream."""

    kind = "latency"

    def toxics(self) -> list[ToxicSpec]:
        return [
            self._spec(
                "latency",
                str(self.params.get("stream", "downstream")),
                latency=_int_param(self.params, "latency_ms"),
                jitter=_int_param(self.params, "jitter_ms", 0),
            )
        ]


class Partition(ToxicFault):
    """A blackhole: ``timeout`` 0 on both streams, so data is dropped and the caller hangs."""

    kind = "partition"

    def toxics(self) -> list[ToxicSpec]:
        return [self._spec("timeout", s, timeout=0) for s in ("upstream", "downstream")]


class OneWayPartition(ToxicFault):
    """A blackhole on one stream (``direction``: upstream = requests, downstream = replies)."""

    kind = "one_way_partition"

    def toxics(self) -> list[ToxicSpec]:
        direction = str(self.params.get("direction", "upstream"))
        if direction not in ("upstream", "downstream"):
            raise FaultError(f"parameter direction must be upstream or downstream: {direction!r}")
        return [self._spec("timeout", direction, timeout=0)]


class ResetPeer(ToxicFault):
    """TCP RST (after ``timeout_ms``) on connections opened while it is in place."""

    kind = "reset_peer"

    def toxics(self) -> list[ToxicSpec]:
        return [
            self._spec("reset_peer", "upstream", timeout=_int_param(self.params, "timeout_ms", 0))
        ]


class Bandwidth(ToxicFault):
    """Replies limited to ``rate_kbps`` KB/s."""

    kind = "bandwidth"

    def toxics(self) -> list[ToxicSpec]:
        return [self._spec("bandwidth", "downstream", rate=_int_param(self.params, "rate_kbps"))]


class SlowClose(ToxicFault):
    """Connections close ``delay_ms`` late."""

    kind = "slow_close"

    def toxics(self) -> list[ToxicSpec]:
        return [self._spec("slow_close", "downstream", delay=_int_param(self.params, "delay_ms"))]


class Down(Fault):
    """The proxy disabled: new connections refused, open ones closed."""

    kind = "down"

    def __init__(
        self, fault_id: str, target: Target, params: Mapping[str, Any], ctx: FaultContext
    ) -> None:
        super().__init__(fault_id, target, params, ctx)
        if not target.proxy:
            raise FaultError(f"fault {fault_id}: {target.name} has no Toxiproxy proxy in front")
        self.proxy = target.proxy

    def _apply(self) -> None:
        self.ctx.toxiproxy.set_enabled(self.proxy, False)

    def _confirm_applied(self) -> None:
        if self.ctx.toxiproxy.proxy(self.proxy).enabled:
            raise FaultError(f"proxy {self.proxy} still enabled after disabling it")

    def _remove(self) -> None:
        self.ctx.toxiproxy.set_enabled(self.proxy, True)

    def _confirm_removed(self) -> None:
        if not self.ctx.toxiproxy.proxy(self.proxy).enabled:
            raise FaultError(f"proxy {self.proxy} still disabled after enabling it")

    def leftover(self) -> dict[str, Any]:
        return {**super().leftover(), "proxy": self.proxy, "disabled": True}


# -- runtime -----------------------------------------------------------------------------


class RuntimeFault(Fault):
    """A process/container fault: ``_do`` puts it in place, ``_undo`` takes it away."""

    target_kinds: ClassVar[tuple[str, ...]] = ("worker", "grape")
    state_in: ClassVar[str]
    undo_action: ClassVar[str]

    def _confirm_applied(self) -> None:
        self._expect(self.state_in)

    def _confirm_removed(self) -> None:
        self._expect("running")

    def undo(self) -> None:
        """Rollback's heal; a target found running has nothing to reverse.

        Why: an inject that failed before taking effect (Docker refused the pause, the
        container was gone) is still armed, and ``docker unpause`` of a running container
        fails, which would turn a clean abort into "rollback failed".
        """
        if (
            self.injected
            and not self.healed
            and self.state_in != "running"
            and self.ctx.runtime.state(self.target.name) == "running"
        ):
            self.healed = True
            return
        super().undo()

    def _expect(self, state: str) -> None:
        found = self.ctx.runtime.state(self.target.name)
        if found != state:
            raise FaultError(f"{self.target.name} is {found}, expected {state}")

    closes_proxy: ClassVar[bool] = False  # see _close_proxy

    def leftover(self) -> dict[str, Any]:
        out = {**super().leftover(), "undo": self.undo_action}
        if self.closes_proxy and self.target.proxy:
            out |= {"proxy": self.target.proxy, "disabled": True}
        return out

    def _close_proxy(self) -> None:
        """Make the worker's address refuse connections (workers only), as a dead process does.

        Why not leave the dead container's address as it is: nothing answers there, so
        Toxiproxy's dials to it sit in SYN retransmission back-off, and Toxiproxy dials
        inside its accept loop: on the Compose lab every request through worker-2's
        proxy kept timing out for ~15 s after the worker was back and healthy, and
        disabling the proxy then blocked behind the stuck dial. With the proxy closed
        first, clients see what a crashed process on a live host gives them
        (connection refused) and the path is whole again the moment it reopens.
        """
        if self.target.proxy:
            self.ctx.toxiproxy.set_enabled(self.target.proxy, False)

    def _open_proxy(self) -> None:
        if self.target.proxy:
            self.ctx.toxiproxy.set_enabled(self.target.proxy, True)


class Kill(RuntimeFault):
    """SIGKILL (``docker kill``): no goodbye, no unannounce; heal starts it again."""

    kind = "kill"
    state_in = "stopped"
    undo_action = "start"
    closes_proxy = True

    def _apply(self) -> None:
        self._close_proxy()
        self.ctx.runtime.kill(self.target.name)

    def _remove(self) -> None:
        self.ctx.runtime.start(self.target.name)
        self._open_proxy()


class Stop(Kill):
    """A graceful stop (SIGTERM, then SIGKILL); heal starts it again."""

    kind = "stop"

    def _apply(self) -> None:
        self._close_proxy()
        self.ctx.runtime.stop(self.target.name)


class Pause(RuntimeFault):
    """Frozen (cgroup freezer / SIGSTOP): connections stay open and silent.

    A client may be paused too: the client's own stall, which its loop-lag monitor must
    tell apart from its peers' faults (docs/balancer.md, "Stall discounting").
    """

    kind = "pause"
    target_kinds: ClassVar[tuple[str, ...]] = ("worker", "grape", "client")
    state_in = "paused"
    undo_action = "unpause"

    def _apply(self) -> None:
        self.ctx.runtime.pause(self.target.name)

    def _remove(self) -> None:
        self.ctx.runtime.unpause(self.target.name)


class GrapePartition(RuntimeFault):
    """Cut off the lab network (grape-to-grape is UDP, which Toxiproxy cannot touch)."""

    kind = "grape_partition"
    state_in = "disconnected"
    undo_action = "reconnect"

    def _apply(self) -> None:
        self.ctx.runtime.disconnect(self.target.name)

    def _remove(self) -> None:
        self.ctx.runtime.reconnect(self.target.name)


class Restart(RuntimeFault):
    """A restart is over by itself: inject stops it (start) and starts it again (end).

    ``started`` is when the stop returned and ``ended`` when the start returned, so the
    window the checks see is the real outage; ``heal()`` then only confirms it is running.
    """

    kind = "restart"
    state_in = "running"
    undo_action = "start"
    closes_proxy = True

    def _apply(self) -> None:
        self._close_proxy()
        self.ctx.runtime.stop(self.target.name)
        self._down_at = self.ctx.now()
        self.ctx.runtime.start(self.target.name)
        self._open_proxy()

    def _started(self, t: float) -> float:
        self.record = replace(self.record, ended=t)  # the start returned at t
        return self._down_at

    def _remove(self) -> None:
        if self.ctx.runtime.state(self.target.name) != "running":
            self.ctx.runtime.start(self.target.name)

    def _ended(self, t: float) -> float:
        return self.record.ended if self.record.ended is not None else t


# -- worker control ----------------------------------------------------------------------


class WorkerBehaviourFault(Fault):
    """``PUT /behaviour`` on the worker's control port; heal puts back what was there."""

    def __init__(
        self, fault_id: str, target: Target, params: Mapping[str, Any], ctx: FaultContext
    ) -> None:
        super().__init__(fault_id, target, params, ctx)
        if not target.control_url:
            raise FaultError(f"fault {fault_id}: {target.name} has no control URL")
        self.url = f"{target.control_url}/behaviour"
        self.change = self.behaviour()
        self.before: dict[str, Any] | None = None

    @abstractmethod
    def behaviour(self) -> dict[str, Any]: ...

    def _get(self) -> dict[str, Any]:
        data = http_json("GET", self.url, timeout=2.0)
        if not isinstance(data, dict):
            raise FaultError(f"GET {self.url} answered {data!r:.80}")
        return data

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


class Antagonist(Fault):
    """A co-tenant taking ``share`` of the worker's CPU (``PUT /antagonist``) until healed.

    Heterogeneous capacity as in Prequal's testbed: the worker's requests get only the
    rest of its loop (lab/worker/antagonist.py). No ``for_s`` is sent: the heal ends it
    (``DELETE``), and so do rollback and a later run's leftover cleanup (the marker keeps
    the URL), so an antagonist never outlives the run that started it.
    """

    kind = "antagonist"

    def __init__(
        self, fault_id: str, target: Target, params: Mapping[str, Any], ctx: FaultContext
    ) -> None:
        super().__init__(fault_id, target, params, ctx)
        if not target.control_url:
            raise FaultError(f"fault {fault_id}: {target.name} has no control URL")
        share = params.get("share")
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 0.95:
            raise FaultError(f"parameter share must be within (0, 0.95], not {share!r}")
        self.share = float(share)
        self.url = f"{target.control_url}/antagonist"

    def _state(self) -> dict[str, Any]:
        data = http_json("GET", self.url, timeout=2.0)
        if not isinstance(data, dict):
            raise FaultError(f"GET {self.url} answered {data!r:.80}")
        return data

    def _apply(self) -> None:
        http_json("PUT", self.url, {"share": self.share}, timeout=2.0)

    def _confirm_applied(self) -> None:
        now = self._state()
        if not now.get("running") or not _same(now.get("share"), self.share):
            raise FaultError(f"{self.url} shows {now} after PUT share {self.share:g}")

    def _remove(self) -> None:
        http_json("DELETE", self.url, timeout=2.0)

    def _confirm_removed(self) -> None:
        now = self._state()
        if now.get("running"):
            raise FaultError(f"{self.url} still shows {now} after DELETE")

    def leftover(self) -> dict[str, Any]:
        return {**super().leftover(), "antagonist_url": self.url}


FAULT_KINDS: dict[str, type[Fault]] = {
    cls.kind: cls
    for cls in (
        Latency,
        Partition,
        OneWayPartition,
        ResetPeer,
        Bandwidth,
        SlowClose,
        Down,
        Kill,
        Stop,
        Pause,
        Restart,
        GrapePartition,
        Slow,
        Errors,
        Antagonist,
    )
}
