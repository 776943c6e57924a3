"""The local runtime: the lab as processes on 127.0.0.x behind a real Toxiproxy binary.

The fast runtime for tests and for machines without Docker. It reuses
:class:`~lab.loadgen.local_cluster.LocalCluster` (grapes, workers behind Toxiproxy proxies,
clients), so every client-to-worker byte crosses a real Toxiproxy exactly as on the
Compose network, and Toxiproxy faults behave the same on both runtimes.

Process faults map onto signals: kill = SIGKILL, stop = SIGTERM (then SIGKILL), pause =
SIGSTOP, unpause = SIGCONT. Loopback has no networks to disconnect, so a grape partition
is a SIGSTOP here too: its DHT (UDP) and HTTP API go silent for everyone, which is what
its peers see of a partition; the difference from Compose (the grape's own timers stop)
is stated in docs/engine.md.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.errors import FaultError, RuntimeUnavailable
from lab.lab_client import LabClient
from lab.loadgen.local_cluster import ClientSpec, ClusterSpec, LocalCluster
from lab.procs import ServiceProcess, http_ok, pid_alive
from lab.scenario.runtime.leftovers import LeftoverReport, client_facts
from lab.scenario.runtime.protocol import Target


class LocalRuntime:
    """A started LocalCluster seen through the Runtime protocol."""

    name = "local"

    def __init__(self, cluster: LocalCluster) -> None:
        if cluster.toxiproxy is None:
            raise RuntimeUnavailable("the local runtime needs a cluster started with toxiproxy")
        self.cluster = cluster
        self._paused: set[str] = set()
        self._disconnected: set[str] = set()

    @classmethod
    def launch(
        cls,
        *,
        grapes: int,
        workers: int,
        clients: Sequence[tuple[str, str, bool]],
        logdir: Path,
        seed: int = 0,
        ready_timeout: float = 30.0,
        toxiproxy_binary: Path | None = None,
        worker_concurrency: int = 0,
    ) -> LocalRuntime:
        """Start grapes, workers behind Toxiproxy and ``clients`` (name, policy, gossip)."""
        spec = ClusterSpec(
            grapes=grapes,
            workers=workers,
            toxiproxy=True,
            worker_extra=("--concurrency", str(worker_concurrency)) if worker_concurrency else (),
            clients=tuple(
                ClientSpec(name=n, policy=p, gossip=g, seed=seed * 100 + i + 1)
                for i, (n, p, g) in enumerate(clients)
            ),
        )
        cluster = LocalCluster(spec, logdir, toxiproxy_binary=toxiproxy_binary)
        cluster.start(ready_timeout)
        return cls(cluster)

    # -- the protocol -------------------------------------------------------------------

    def targets(self) -> Mapping[str, Target]:
        c = self.cluster
        out: dict[str, Target] = {}
        for g in c.grapes:
            out[g.name] = Target(g.name, "grape", control_url=g.url)
        for w in c.workers:
            out[w.name] = Target(w.name, "worker", w.control_url, proxy=w.proxy, peer=w.peer)
        for cl in c.clients:
            out[cl.name] = Target(cl.name, "client", cl.control.base, policy=cl.policy)
        out["toxiproxy"] = Target("toxiproxy", "toxiproxy", control_url=self.toxiproxy_api())
        return out

    def toxiproxy_api(self) -> str:
        assert self.cluster.toxiproxy is not None
        return self.cluster.toxiproxy.api

    def _process(self, name: str) -> ServiceProcess:
        for n, proc in self._processes():
            if n == name:
                return proc
        raise FaultError(f"local runtime has no service named {name!r}")

    def _processes(self) -> list[tuple[str, ServiceProcess]]:
        c = self.cluster
        return (
            [(x.name, x.process) for x in c.clients]
            + [(w.name, w.process) for w in c.workers]
            + [(g.name, g.process) for g in c.grapes]
        )

    def _signal(self, name: str, sig: int) -> None:
        proc = self._process(name)
        if proc.proc is None or proc.exited():
            raise FaultError(f"{name} is not running")
        os.kill(proc.proc.pid, sig)

    def kill(self, name: str) -> None:
        self._resume_if_stopped(name)
        proc = self._process(name)
        proc.kill()
        proc.stop()  # already dead: only closes its log (ServiceProcess.kill leaves it open)

    def stop(self, name: str) -> None:
        self._resume_if_stopped(name)
        self._process(name).stop()

    def start(self, name: str) -> None:
        proc = self._process(name)
        if proc.proc is not None and not proc.exited():
            return
        try:
            proc.start(ready_timeout=15.0)
        except RuntimeUnavailable as exc:
            raise FaultError(f"start {name}: {exc}") from exc

    def pause(self, name: str) -> None:
        self._freeze(name, self._paused)

    def unpause(self, name: str) -> None:
        self._thaw(name, self._paused)

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    def disconnect(self, name: str) -> None:
        self._freeze(name, self._disconnected)

    def reconnect(self, name: str) -> None:
        self._thaw(name, self._disconnected)

    def _freeze(self, name: str, frozen: set[str]) -> None:
        """SIGSTOP, remembered in ``frozen`` (which of pause and partition the state is)."""
        self._signal(name, signal.SIGSTOP)
        frozen.add(name)

    def _thaw(self, name: str, frozen: set[str]) -> None:
        self._signal(name, signal.SIGCONT)
        frozen.discard(name)

    def _resume_if_stopped(self, name: str) -> None:
        if name in self._paused or name in self._disconnected:
            self._signal(name, signal.SIGCONT)
            self._paused.discard(name)
            self._disconnected.discard(name)

    def state(self, name: str) -> str:
        proc = self._process(name)
        if proc.proc is None or proc.exited():
            return "stopped"
        if name in self._paused:
            return "paused"
        if name in self._disconnected:
            return "disconnected"
        return "running"

    def check_health(self, timeout: float) -> None:
        c = self.cluster
        down = [n for n, _p in self._processes() if self.state(n) != "running"]
        if down:
            raise RuntimeUnavailable(f"local lab: not running: {', '.join(down)}")
        for g in c.grapes:
            if not http_ok(f"{g.url}/_lab/health"):
                raise RuntimeUnavailable(f"local lab: {g.name} is not healthy")
        try:
            for cl in c.clients:
                c.wait_client_sees(cl, c.peers(), timeout)
        except TimeoutError as exc:
            raise RuntimeUnavailable(f"local lab: {exc}") from exc

    def pids(self) -> list[int]:
        c = self.cluster
        procs = [p for _n, p in self._processes()]
        if c.toxiproxy is not None and c.toxiproxy.process is not None:
            procs.append(c.toxiproxy.process)
        return [p.proc.pid for p in procs if p.proc is not None and not p.exited()]

    def service_pids(self) -> Mapping[str, int]:
        """None of their own: local processes share the session's cgroup."""
        return {}

    def inflight_info(self) -> dict[str, Any]:
        """The processes to stop after a ``kill -9``, and the clients (for ``lab status``)."""
        return {
            "runtime": self.name,
            "toxiproxy_api": self.toxiproxy_api(),
            "local_pids": self.pids(),
            "clients": client_facts(self.targets().values()),
        }

    def close(self) -> None:
        for name in list(self._paused | self._disconnected):
            with contextlib.suppress(FaultError):
                self._resume_if_stopped(name)
        self.cluster.stop()


class LocalLeftovers:
    """A dead local run's services die with it: its process groups are stopped.

    Nothing to restore first (a killed or paused worker goes with the rest), and its
    clients are among the processes, so there is no load to quiet either.
    """

    services_outlive_run = False

    def restore(self, names: Sequence[str], report: LeftoverReport) -> None:
        """Nothing: :meth:`settle` stops every process of the run, faulted or not."""

    def settle(
        self, info: Mapping[str, Any], report: LeftoverReport, lab: LabClient | None
    ) -> None:
        """SIGCONT then SIGKILL each process group of the run (they had own sessions)."""
        for pid in info.get("local_pids") or []:
            pid = int(pid)
            if not pid_alive(pid) or not _is_ours(pid):
                continue
            for sig in (signal.SIGCONT, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, sig)
            report.actions.append(f"stopped local process {pid}")


LEFTOVERS = LocalLeftovers()
"""The local runtime's hooks for :func:`lab.scenario.faults.janitor.cleanup_leftovers`."""


def _is_ours(pid: int) -> bool:
    """A local run's process: ``lab`` services or Toxiproxy (never a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"-m\x00lab" in cmdline or b"toxiproxy" in cmdline
