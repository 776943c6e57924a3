"""A whole lab as local processes: grapes, workers (optionally behind Toxiproxy), clients.

Why here: integration tests and the scenario engine's ``local`` runtime need the same
thing, a real cluster of ``lab grape`` / ``lab worker`` / ``lab client`` processes on
127.0.0.x, each on its own loopback address so they look like separate hosts. With
``toxiproxy=True`` one real Toxiproxy server gets a proxy in front of every worker and
each worker announces the proxy's address, so every client-to-worker byte crosses
Toxiproxy exactly as on the Compose network.

Readiness is always a poll with a deadline (health endpoints, then discovery), never a
sleep. Processes are started in parallel per tier and stopped in reverse order; a
failed start stops what did start.

Synchronous on purpose: tests and the runtime drive it from plain code (the runtime
wraps calls in ``asyncio.to_thread``); it reaches the clients through the synchronous
:class:`lab.lab_client.ControlClient` for the same reason.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import platform
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from lab.errors import RuntimeUnavailable
from lab.lab_client import ControlClient, http_json
from lab.loadgen.settings import GOSSIP_KEY_ENV
from lab.procs import ServiceProcess, free_port, wait_until
from lab.toxiproxy_adapter import ToxiproxyAdapter

TOXIPROXY_CANDIDATES = (
    f".cache/toxiproxy/2.12.0/{platform.machine()}/toxiproxy",  # built by `make images`
    ".cache/bin/toxiproxy-server",
    "/tmp/gobin/server",
)


def find_toxiproxy(root: Path | None = None) -> Path | None:
    """The Toxiproxy server binary: $LAB_TOXIPROXY_BIN, PATH, then the build caches."""
    env = os.environ.get("LAB_TOXIPROXY_BIN")
    if env:
        return Path(env) if Path(env).is_file() else None
    on_path = shutil.which("toxiproxy-server")
    if on_path:
        return Path(on_path)
    base = root if root is not None else Path.cwd()
    for candidate in TOXIPROXY_CANDIDATES:
        path = base / candidate if not candidate.startswith("/") else Path(candidate)
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def loopback_hosts(start: int = 20) -> Iterator[str]:
    """127.0.0.<start>, 127.0.0.<start+1>, ...: one address per service."""
    for i in itertools.count(start):
        if i > 254:
            raise RuntimeUnavailable("out of 127.0.0.x addresses")
        yield f"127.0.0.{i}"


# -- Toxiproxy -------------------------------------------------------------------------


@dataclass
class Toxiproxy:
    """One real Toxiproxy server process; its API is :attr:`client` (the lab's adapter)."""

    binary: Path
    host: str
    port: int
    logdir: Path
    process: ServiceProcess | None = None

    @property
    def api(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Toxiproxy:
        self.process = ServiceProcess(
            name="toxiproxy",
            argv=[str(self.binary), "-host", self.host, "-port", str(self.port)],
            health_url=f"{self.api}/version",
            log_path=self.logdir / "toxiproxy.log",
        ).start()
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    @property
    def client(self) -> ToxiproxyAdapter:
        """Its API, through the lab's one Toxiproxy client."""
        return ToxiproxyAdapter(self.api)


# -- the cluster -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientSpec:
    """One client process to start."""

    name: str
    policy: str = "adaptive"
    gossip: bool = True
    seed: int = 0
    extra: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """The shape of a local lab."""

    grapes: int = 3
    workers: int = 3
    clients: tuple[ClientSpec, ...] = ()
    toxiproxy: bool = False
    service: str = "rpc_test"
    peer_max_age: str = "5s"  # as compose.yaml: a dead worker leaves discovery in seconds
    worker_announce_interval: str = "0.5s"
    client_lookup_interval: str = "0.25s"
    worker_extra: tuple[str, ...] = ()


@dataclass
class Grape:
    name: str
    host: str
    dht_port: int
    api_port: int
    process: ServiceProcess

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.api_port}"


@dataclass
class Worker:
    """A worker; ``peer`` is the address clients see (the proxy's, behind Toxiproxy)."""

    name: str
    host: str
    port: int
    control_port: int
    peer: str
    process: ServiceProcess
    proxy: str | None = None

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self.control_port}"

    def behaviour(self, change: Mapping[str, Any]) -> Any:
        """``PUT /behaviour`` on the worker's control port (partial update)."""
        return http_json("PUT", f"{self.control_url}/behaviour", change)


@dataclass
class Client:
    name: str
    policy: str
    host: str
    control_port: int
    gossip_port: int
    process: ServiceProcess
    control: ControlClient = field(init=False)

    def __post_init__(self) -> None:
        self.control = ControlClient(f"http://{self.host}:{self.control_port}")


class LocalCluster:
    """Start, reach and stop a :class:`ClusterSpec` as local processes."""

    def __init__(
        self,
        spec: ClusterSpec,
        logdir: Path,
        hosts: Iterator[str] | None = None,
        toxiproxy_binary: Path | None = None,
    ) -> None:
        self.spec = spec
        self.logdir = logdir
        self._hosts = hosts if hosts is not None else loopback_hosts()
        self._toxiproxy_binary = toxiproxy_binary
        self.grapes: list[Grape] = []
        self.workers: list[Worker] = []
        self.clients: list[Client] = []
        self.toxiproxy: Toxiproxy | None = None
        # The cluster's gossip key, as `lab up` makes one per Compose lab: in the clients'
        # environment only (a flag would show in `ps`).
        self.gossip_key = secrets.token_hex(32)

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, ready_timeout: float = 30.0) -> LocalCluster:
        """Bring every tier up and wait until clients see every worker."""
        try:
            if self.spec.toxiproxy:
                self._start_toxiproxy()
            self._start_grapes()
            self._start_workers()
            self.wait_announced(ready_timeout)
            for cs in self.spec.clients:
                self.add_client(cs, wait=False)
            self._parallel([c.process for c in self.clients])
            for c in self.clients:
                self.wait_client_sees(c, [w.peer for w in self.workers], ready_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop clients, workers, grapes, then Toxiproxy; every step is tried."""
        for proc in [c.process for c in self.clients] + [w.process for w in self.workers]:
            with contextlib.suppress(Exception):
                proc.stop()
        for g in self.grapes:
            with contextlib.suppress(Exception):
                g.process.stop()
        if self.toxiproxy is not None:
            with contextlib.suppress(Exception):
                self.toxiproxy.stop()

    # -- addresses ------------------------------------------------------------------------

    @property
    def grape_urls(self) -> list[str]:
        return [g.url for g in self.grapes]

    def worker(self, name: str) -> Worker:
        return _by_name(self.workers, name)

    def client(self, name: str) -> Client:
        return _by_name(self.clients, name)

    def peers(self) -> list[str]:
        """The worker addresses clients see, in worker order."""
        return [w.peer for w in self.workers]

    # -- process control ------------------------------------------------------------------

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker: no goodbye, no unannounce."""
        self.worker(name).process.kill()

    def restart_worker(self, name: str, ready_timeout: float = 15.0) -> None:
        """Start a stopped or killed worker again on the same addresses."""
        w = self.worker(name)
        w.process.stop()
        w.process.start(ready_timeout)

    def add_client(self, cs: ClientSpec, wait: bool = True) -> Client:
        """Start one more client (``wait``: until it is healthy and sees every worker)."""
        host = next(self._hosts)
        control, gossip = free_port(host), free_port(host)
        argv = [
            "client", "--name", cs.name, "--policy", cs.policy,
            "--grape", ",".join(self.grape_urls), "--service", self.spec.service,
            "--bind", host, "--control-port", str(control), "--gossip-port", str(gossip),
            "--gossip", "on" if cs.gossip else "off", "--seed", str(cs.seed),
            "--lookup-interval", self.spec.client_lookup_interval, *cs.extra,
        ]  # fmt: skip
        proc = ServiceProcess.lab(
            cs.name,
            *argv,
            health_url=f"http://{host}:{control}/health",
            log_path=self.logdir / f"{cs.name}.log",
            env={GOSSIP_KEY_ENV: self.gossip_key},
        )
        client = Client(cs.name, cs.policy, host, control, gossip, proc)
        self.clients.append(client)
        if wait:
            proc.start()
            self.wait_client_sees(client, self.peers(), 30.0)
        return client

    # -- readiness ------------------------------------------------------------------------

    def lookup(self, service: str | None = None, grape: int = 0) -> list[str]:
        """A lookup through one grape's HTTP API (Grenache's envelope)."""
        body = {"rid": "local-cluster", "data": service or self.spec.service}
        try:
            reply = http_json("POST", f"{self.grapes[grape].url}/lookup", body, timeout=2.0)
        except RuntimeUnavailable:
            return []
        return [str(p) for p in reply] if isinstance(reply, list) else []

    def wait_announced(self, timeout: float, peers: Sequence[str] | None = None) -> None:
        """Until every grape's lookup returns every worker's address."""
        want = set(self.peers() if peers is None else peers)
        for i in range(len(self.grapes)):
            wait_until(
                lambda i=i: want <= set(self.lookup(grape=i)),  # type: ignore[misc]
                timeout,
                interval=0.05,
                what=f"grape-{i + 1} to know {sorted(want)}",
            )

    def wait_client_sees(self, client: Client, peers: Sequence[str], timeout: float) -> None:
        want = set(peers)

        def sees() -> bool:
            try:
                known = {p["peer"] for p in client.control.peers()["peers"]}
            except RuntimeUnavailable:
                return False
            return want <= known

        wait_until(sees, timeout, interval=0.05, what=f"{client.name} to see {sorted(want)}")

    # -- internals ------------------------------------------------------------------------

    def _start_toxiproxy(self) -> None:
        binary = self._toxiproxy_binary or find_toxiproxy()
        if binary is None:
            raise RuntimeUnavailable(
                "toxiproxy server binary not found: set LAB_TOXIPROXY_BIN, put "
                "toxiproxy-server on PATH or build .cache/bin/toxiproxy-server (make)"
            )
        host = next(self._hosts)
        self.toxiproxy = Toxiproxy(binary, host, free_port(host), self.logdir).start()

    def _start_grapes(self) -> None:
        specs = []
        for i in range(self.spec.grapes):
            host = next(self._hosts)
            specs.append((f"grape-{i + 1}", host, free_port(host), free_port(host)))
        for name, host, dht, api in specs:
            others = ",".join(f"{h}:{d}" for n, h, d, _ in specs if n != name)
            argv = [
                "grape", "--bind", host, "--dht-port", str(dht), "--api-port", str(api),
                "--peer-max-age", self.spec.peer_max_age, "--cluster-id", "lab-local",
            ]  # fmt: skip
            if others:
                argv += ["--bootstrap", others]
            proc = ServiceProcess.lab(
                name,
                *argv,
                health_url=f"http://{host}:{api}/_lab/health",
                log_path=self.logdir / f"{name}.log",
            )
            self.grapes.append(Grape(name, host, dht, api, proc))
        self._parallel([g.process for g in self.grapes])

    def _start_workers(self) -> None:
        for i in range(self.spec.workers):
            name = f"worker-{i + 1}"
            host = next(self._hosts)
            port, control = free_port(host), free_port(host)
            peer, proxy = f"{host}:{port}", None
            argv = [
                "worker", "--bind", host, "--port", str(port), "--name", name,
                "--service", self.spec.service, "--grape", ",".join(self.grape_urls),
                "--control-port", str(control), "--seed", str(i + 1),
                "--announce-interval", self.spec.worker_announce_interval,
                *self.spec.worker_extra,
            ]  # fmt: skip
            if self.toxiproxy is not None:
                proxy = name
                tp = self.toxiproxy
                listen_port = free_port(tp.host)
                tp.client.create_proxy(proxy, f"{tp.host}:{listen_port}", peer)
                peer = f"{tp.host}:{listen_port}"
                argv += ["--announce-host", tp.host, "--announce-port", str(listen_port)]
            proc = ServiceProcess.lab(
                name,
                *argv,
                health_url=f"http://{host}:{control}/health",
                log_path=self.logdir / f"{name}.log",
            )
            self.workers.append(Worker(name, host, port, control, peer, proc, proxy))
        self._parallel([w.process for w in self.workers])

    @staticmethod
    def _parallel(procs: Sequence[ServiceProcess]) -> None:
        """Start processes side by side (each waits for its own health)."""
        todo = [p for p in procs if p.proc is None or p.exited()]
        if not todo:
            return
        with ThreadPoolExecutor(max_workers=len(todo)) as pool:
            for future in [pool.submit(p.start) for p in todo]:
                future.result()


class _Named(Protocol):
    name: str


N = TypeVar("N", bound=_Named)


def _by_name(items: Sequence[N], name: str) -> N:
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"no service named {name!r}")


__all__ = [
    "Client",
    "ClientSpec",
    "ClusterSpec",
    "Grape",
    "LocalCluster",
    "Toxiproxy",
    "Worker",
    "find_toxiproxy",
    "loopback_hosts",
]
