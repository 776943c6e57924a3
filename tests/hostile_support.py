"""What the hostile-input tests share: real service processes, their memory, and a fuzz loop.

The services run as real ``lab grape`` / ``lab worker`` / ``lab client`` processes on a
127.0.0.x address. Memory is judged by the process's peak resident size (``VmHWM`` in
``/proc/<pid>/status``: the high-water mark over its whole life, so a spike between two
samples still counts) against the ``mem_limit`` its container has in ``compose.yaml``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import yaml

from lab.loadgen.settings import GOSSIP_KEY_ENV
from lab.procs import ServiceProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
GOSSIP_KEY = "fuzz-" + "0123456789abcdef" * 4

_UNITS = {"k": 2**10, "m": 2**20, "g": 2**30}


def mem_limit(kind: str) -> int:
    """The ``mem_limit`` of ``x-<kind>`` in compose.yaml, in bytes."""
    model = yaml.safe_load((ROOT / "compose.yaml").read_text())
    text = str(model[f"x-{kind}"]["mem_limit"]).lower()
    m = re.fullmatch(r"(\d+)([kmg])", text)
    assert m, text
    return int(m.group(1)) * _UNITS[m.group(2)]


def peak_rss(proc: ServiceProcess) -> int:
    """The process's peak resident set size in bytes (VmHWM)."""
    assert proc.proc is not None
    status = Path(f"/proc/{proc.proc.pid}/status").read_text()
    m = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert m, status
    return int(m.group(1)) * 1024


def start_grape(host: str, logdir: Path) -> tuple[ServiceProcess, str]:
    api = free_port(host)
    proc = ServiceProcess.lab(
        "grape", "grape", "--bind", host, "--dht-port", str(free_port(host)),
        "--api-port", str(api), "--bootstrap", "", "--peer-max-age", "120s",
        "--log-level", "WARNING",
        health_url=f"http://{host}:{api}/_lab/health", log_path=logdir / "grape.log",
    ).start()  # fmt: skip
    return proc, f"http://{host}:{api}"


def start_worker(host: str, grape: str, logdir: Path) -> tuple[ServiceProcess, str, str]:
    """A worker; returns it, its control URL and its RPC URL."""
    port, control = free_port(host), free_port(host)
    proc = ServiceProcess.lab(
        "worker", "worker", "--bind", host, "--port", str(port), "--name", "w-fuzz",
        "--grape", grape, "--control-port", str(control), "--announce-interval", "1s",
        health_url=f"http://{host}:{control}/health", log_path=logdir / "worker.log",
    ).start()  # fmt: skip
    return proc, f"http://{host}:{control}", f"http://{host}:{port}/"


def start_client(host: str, grape: str, logdir: Path) -> tuple[ServiceProcess, str, int]:
    """A client with the test's gossip key; returns it, its control URL, its gossip port."""
    control, gossip = free_port(host), free_port(host)
    proc = ServiceProcess.lab(
        "client", "client", "--name", "c-fuzz", "--policy", "adaptive", "--grape", grape,
        "--bind", host, "--control-port", str(control), "--gossip-port", str(gossip),
        "--lookup-interval", "0.2s",
        health_url=f"http://{host}:{control}/health", log_path=logdir / "client.log",
        env={GOSSIP_KEY_ENV: GOSSIP_KEY},
    ).start()  # fmt: skip
    return proc, f"http://{host}:{control}", gossip


def assert_clean_exit(proc: ServiceProcess, *others: ServiceProcess) -> None:
    """SIGTERM ``proc``: it must exit 0 with no traceback logged; ``others`` are stopped
    whatever happens (a starved 2-core machine may take seconds to shut Python down)."""
    try:
        assert proc.stop(timeout=15.0) == 0, proc.tail()
        assert "Traceback" not in proc.tail(100_000), proc.tail(60)
    finally:
        for other in others:
            other.stop()


@dataclass(frozen=True)
class HttpCase:
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FuzzResult:
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    slowest: float = 0.0

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())


async def fuzz_http(
    base: str,
    cases: Iterable[HttpCase],
    accept: Callable[[int, bytes], bool],
    concurrency: int = 16,
) -> FuzzResult:
    """Send every case (``concurrency`` at a time); each must be answered within 1 s."""
    queue: asyncio.Queue[HttpCase] = asyncio.Queue()
    for case in cases:
        queue.put_nowait(case)
    result = FuzzResult()

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            case = queue.get_nowait()
            started = time.perf_counter()
            try:
                async with asyncio.timeout(1.0):
                    async with session.request(
                        case.method, base + case.path, data=case.body, headers=case.headers,
                        skip_auto_headers=("Content-Type",),
                    ) as resp:  # fmt: skip
                        status, body = resp.status, await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                result.failures.append(f"{case!r:.300}: {type(exc).__name__} {exc}")
                continue
            result.slowest = max(result.slowest, time.perf_counter() - started)
            result.statuses[status] += 1
            if not accept(status, body):
                result.failures.append(f"{case!r:.300}: {status} {body[:200]!r}")

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return result
