"""Toxiproxy faults on the proxy in front of a worker: toxics, and the proxy disabled.

Toxic names start with :data:`TOXIC_PREFIX`, so leftover cleanup removes ours and nobody
else's.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lab.errors import FaultError
from lab.scenario.faults.base import Fault, FaultContext
from lab.scenario.faults.leftovers import Janitor
from lab.scenario.runtime.protocol import Target

TOXIC_PREFIX = "lab-"
"""Every toxic the engine adds is named ``lab-<fault id>-<stream>``."""


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


class ProxyFault(Fault):
    """A fault on the Toxiproxy proxy in front of a worker."""

    def __init__(
        self, fault_id: str, target: Target, params: Mapping[str, Any], ctx: FaultContext
    ) -> None:
        super().__init__(fault_id, target, params, ctx)
        self.proxy = self._needs(target.proxy, "Toxiproxy proxy in front")


class ToxicFault(ProxyFault):
    """A fault made of toxics on the worker's proxy."""

    def __init__(
        self, fault_id: str, target: Target, params: Mapping[str, Any], ctx: FaultContext
    ) -> None:
        super().__init__(fault_id, target, params, ctx)
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

    @classmethod
    def undo_leftovers(cls, found: Sequence[Mapping[str, Any]], janitor: Janitor) -> None:
        """Every ``lab-`` toxic goes, also one a crash left before its fault was recorded."""
        sweep_ours(janitor, (), needed=bool(found))


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


class Down(ProxyFault):
    """The proxy disabled: new connections refused, open ones closed."""

    kind = "down"

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

    @classmethod
    def undo_leftovers(cls, found: Sequence[Mapping[str, Any]], janitor: Janitor) -> None:
        proxies = disabled_proxies(found)
        if proxies:
            sweep_ours(janitor, proxies, needed=True)


def disabled_proxies(found: Sequence[Mapping[str, Any]]) -> list[str]:
    """The proxies these leftovers say their faults disabled (``proxy``, ``disabled``)."""
    return [str(f["proxy"]) for f in found if f.get("disabled") and f.get("proxy")]


def sweep_ours(janitor: Janitor, reenable: Sequence[str], *, needed: bool) -> None:
    """Our toxics off every proxy of the dead run's Toxiproxy, ``reenable`` enabled again.

    ``needed``: the leftovers name a proxy, so a Toxiproxy that does not answer is a
    failure (the marker stays); otherwise there was nothing of ours to find there.
    """
    toxi = janitor.toxiproxy()
    if toxi is None:
        return
    try:
        swept = toxi.sweep(ours=TOXIC_PREFIX, reenable=reenable)
    except FaultError as exc:
        if needed:
            janitor.failed(str(exc))
        return
    for p, t in swept.removed:
        janitor.did(f"removed toxic {t} from proxy {p}")
    for p in swept.enabled:
        janitor.did(f"re-enabled proxy {p}")
    for e in swept.errors:
        janitor.failed(e)
