"""Runtime faults on a worker or grape: kill, stop, pause, restart, grape_partition.

They act only through the :class:`~lab.scenario.runtime.protocol.Runtime` protocol, so the
same fault runs on the Compose lab and on local processes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from lab.errors import FaultError
from lab.scenario.faults.base import Fault
from lab.scenario.faults.leftovers import Janitor
from lab.scenario.faults.toxic import disabled_proxies, sweep_ours


class RuntimeFault(Fault):
    """A process/container fault: the runtime's ``action`` puts it in place, its
    ``undo_action`` takes it away (``pause``/``unpause``); the marker names the latter."""

    target_kinds: ClassVar[tuple[str, ...]] = ("worker", "grape")
    state_in: ClassVar[str]
    action: ClassVar[str]
    undo_action: ClassVar[str]
    closes_proxy: ClassVar[bool] = False  # see _close_proxy

    def _apply(self) -> None:
        if self.closes_proxy:
            self._close_proxy()
        getattr(self.ctx.runtime, self.action)(self.target.name)

    def _remove(self) -> None:
        getattr(self.ctx.runtime, self.undo_action)(self.target.name)
        if self.closes_proxy:
            self._open_proxy()

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

    def leftover(self) -> dict[str, Any]:
        out = {**super().leftover(), "undo": self.undo_action}
        if self.closes_proxy and self.target.proxy:
            out |= {"proxy": self.target.proxy, "disabled": True}
        return out

    @classmethod
    def undo_leftovers(cls, found: Sequence[Mapping[str, Any]], janitor: Janitor) -> None:
        """Proxies we closed open again, then the runtime brings the services back."""
        proxies = disabled_proxies(found)
        if proxies:
            sweep_ours(janitor, proxies, needed=True)
        janitor.runtime.restore(
            [str(f["target"]) for f in found if f.get("target")], janitor.report
        )

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
    action = "kill"
    undo_action = "start"
    closes_proxy = True


class Stop(Kill):
    """A graceful stop (SIGTERM, then SIGKILL); heal starts it again."""

    kind = "stop"
    action = "stop"


class Pause(RuntimeFault):
    """Frozen (cgroup freezer / SIGSTOP): connections stay open and silent.

    A client may be paused too: the client's own stall, which its loop-lag monitor must
    tell apart from its peers' faults (docs/balancer.md, "Stall discounting").
    """

    kind = "pause"
    target_kinds: ClassVar[tuple[str, ...]] = ("worker", "grape", "client")
    state_in = "paused"
    action = "pause"
    undo_action = "unpause"


class GrapePartition(RuntimeFault):
    """Cut off the lab network (grape-to-grape is UDP, which Toxiproxy cannot touch)."""

    kind = "grape_partition"
    state_in = "disconnected"
    action = "disconnect"
    undo_action = "reconnect"


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
