"""The real Node.js Grenache as local processes: grapes, RPC servers, one-shot clients.

Why a module of its own: the interop tests and the benchmarks (``benchmarks/``) drive
the same pinned npm packages in ``tests/interop/node`` the same way. Everything is a real
process: ``node_modules/.bin/grape`` for grapes, ``server.js`` (a PeerRPCServer),
``client.js`` (a PeerRPCClient), ``link.js`` (a Link) and ``bench.js`` (closed-loop load).

Facts that shape it (checked against grenache-grape 1.0.0):
- the Node grape binds its DHT socket on every interface (``-b`` only binds the HTTP
  API), so its DHT port must be free on 0.0.0.0, and DHT peers see each other as
  127.0.0.1; we bind the API on 127.0.0.1 too so each announcement is recorded once;
- the binary passes undefined options through, so ``--dpa`` (peer max age) and
  ``--check_maxPayloadSize`` are always given (without them announcements never expire
  and bodies have no size limit);
- the grape has no health endpoint: it is ready when ``POST /lookup`` answers 200, and
  it has joined its DHT when an announce through it reports at least one storing node.

Readiness is always polled with a deadline (``lab.procs.wait_until``), never slept for.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.procs import ServiceProcess, free_port, wait_until

NODE_DIR = Path(__file__).resolve().parent / "node"
GRAPE_BIN = NODE_DIR / "node_modules" / ".bin" / "grape"
PAYLOAD_LIMIT = 8192


def node_binary() -> str | None:
    return shutil.which("node")


def missing_reason() -> str | None:
    """Why the Node side cannot run here, or None when it can."""
    if node_binary() is None:
        return "node is not installed (install Node.js >= 18 with npm, then `make test-deps`)"
    if not (NODE_DIR / "node_modules").is_dir():
        return f"no node_modules in {NODE_DIR}: run `images/host/setup.sh node` (npm ci)"
    for pkg in ("grenache-grape", "grenache-nodejs-link", "grenache-nodejs-http"):
        if not (NODE_DIR / "node_modules" / pkg / "package.json").is_file():
            return f"{pkg} missing from {NODE_DIR}/node_modules: run `npm ci` there"
    if not GRAPE_BIN.exists():
        return f"{GRAPE_BIN} is missing: run `npm ci` in {NODE_DIR}"
    return None


# -- plain HTTP to a grape or an RPC server ---------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status and the raw body (None status: no answer in time)."""

    status: int | None
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None


def http_raw(
    url: str,
    body: bytes | None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    timeout: float = 3.0,
) -> Answer:
    """Send bytes as they are (garbage included); a timeout gives ``Answer(None, b"")``."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Answer(resp.status, resp.read())
    except TimeoutError:
        return Answer(None, b"")
    finally:
        conn.close()


def grape_post(url: str, endpoint: str, data: Any, timeout: float = 3.0) -> Answer:
    """Grenache's envelope ``{"rid", "data"}`` to ``url/endpoint``."""
    body = json.dumps({"rid": "interop", "data": data}).encode()
    return http_raw(f"{url}/{endpoint}", body, timeout=timeout)


def lookup(url: str, name: str) -> list[str]:
    """A lookup through one grape; [] on anything but a list."""
    try:
        answer = grape_post(url, "lookup", name).json()
    except (OSError, ValueError):
        return []
    return [str(p) for p in answer] if isinstance(answer, list) else []


def wait_joined(urls: Sequence[str], timeout: float = 20.0) -> None:
    """Until an announce through each grape is stored by at least one other DHT node."""

    def joined(url: str) -> bool:
        try:
            answer = grape_post(url, "announce", ["interop_join_probe", 1]).json()
        except (OSError, ValueError):
            return False
        return isinstance(answer, int) and not isinstance(answer, bool) and answer >= 1

    for url in urls:
        wait_until(lambda u=url: joined(u), timeout, interval=0.1, what=f"{url} to join its DHT")  # type: ignore[misc]


# -- Node grapes ------------------------------------------------------------------------


@dataclass
class NodeGrape:
    """One ``grenache-grape`` process."""

    name: str
    dht_port: int
    api_port: int
    process: ServiceProcess
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    def ready(self) -> bool:
        try:
            return grape_post(self.url, "lookup", "interop_ready_probe", timeout=0.5).status == 200
        except OSError:
            return False


def start_node_grapes(
    count: int, logdir: Path, *, max_age_ms: int = 120_000, ready_timeout: float = 20.0
) -> list[NodeGrape]:
    """``count`` Node grapes bootstrapped off each other, started and joined."""
    node = node_binary()
    if node is None:
        raise RuntimeError(missing_reason())
    ports = [(free_port("0.0.0.0"), free_port("0.0.0.0")) for _ in range(count)]
    grapes: list[NodeGrape] = []
    try:
        for i, (dht, api) in enumerate(ports):
            others = ",".join(f"127.0.0.1:{d}" for j, (d, _) in enumerate(ports) if j != i)
            name = f"node-grape-{i + 1}"
            argv = [
                node, str(GRAPE_BIN), "--dp", str(dht), "--aph", str(api), "--bn", others,
                "--dpa", str(max_age_ms), "-b", "127.0.0.1",
                "--check_maxPayloadSize", str(PAYLOAD_LIMIT),
            ]  # fmt: skip
            proc = ServiceProcess(name, argv, log_path=logdir / f"{name}.log")
            grapes.append(NodeGrape(name, dht, api, proc.start()))
        for g in grapes:
            wait_until(
                lambda g=g: g.process.exited() or g.ready(),  # type: ignore[misc]
                ready_timeout,
                what=f"{g.name} API on {g.url}",
            )
            if g.process.exited():
                raise RuntimeError(f"{g.name} exited: {g.process.tail()}")
        if count > 1:
            wait_joined([g.url for g in grapes], ready_timeout)
    except BaseException:
        stop_all(g.process for g in grapes)
        raise
    return grapes


# -- Node RPC servers -------------------------------------------------------------------


@dataclass
class NodeServer:
    """One ``server.js`` process: a PeerRPCServer announcing ``service`` every 0.5 s."""

    name: str
    port: int
    process: ServiceProcess


def start_node_server(
    grape: str,
    service: str,
    logdir: Path,
    *,
    mode: str = "echo",
    name: str | None = None,
    ready_timeout: float = 15.0,
) -> NodeServer:
    """Start it and wait for its ``{"ready": true}`` line (listening and announced once)."""
    node = node_binary()
    if node is None:
        raise RuntimeError(missing_reason())
    port = free_port("0.0.0.0")
    name = name or f"node-server-{port}"
    argv = [
        node, str(NODE_DIR / "server.js"), "--grape", grape, "--service", service,
        "--port", str(port), "--mode", mode,
    ]  # fmt: skip
    proc = ServiceProcess(name, argv, log_path=logdir / f"{name}.log").start()

    def ready() -> bool:
        return proc.exited() or '"ready":true' in (proc.tail(50) or "")

    try:
        wait_until(ready, ready_timeout, what=f"{name} to listen and announce")
    except TimeoutError:
        proc.stop()
        raise
    if proc.exited():
        raise RuntimeError(f"{name} exited: {proc.tail()}")
    return NodeServer(name, port, proc)


# -- one-shot Node clients -------------------------------------------------------------


def _script_argv(script: str, args: Iterable[str]) -> list[str]:
    node = node_binary()
    if node is None:
        raise RuntimeError(missing_reason())
    return [node, str(NODE_DIR / script), *args]


def _last_json(stdout: bytes, stderr: bytes, what: str) -> dict[str, Any]:
    lines = [ln for ln in stdout.decode(errors="replace").splitlines() if ln.strip()]
    if not lines:
        raise RuntimeError(f"{what} printed nothing; stderr: {stderr.decode(errors='replace')}")
    result = json.loads(lines[-1])
    if not isinstance(result, dict):
        raise RuntimeError(f"{what} printed {lines[-1]!r}")
    return result


def run_node(script: str, *args: str, timeout: float = 20.0) -> dict[str, Any]:
    """Run ``script`` to completion; its last stdout line as JSON."""
    argv = _script_argv(script, args)
    done = subprocess.run(argv, cwd=NODE_DIR, capture_output=True, timeout=timeout, check=False)
    return _last_json(done.stdout, done.stderr, f"{script} {' '.join(args)}")


async def run_node_async(script: str, *args: str, limit_s: float = 20.0) -> dict[str, Any]:
    """:func:`run_node` without blocking the event loop (for servers in this process)."""
    proc = await asyncio.create_subprocess_exec(
        *_script_argv(script, args),
        cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(limit_s):
            out, err = await proc.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return _last_json(out, err, script)


def node_client_args(
    grape: str,
    service: str,
    payload: Any,
    *,
    op: str = "request",
    compress: bool = False,
    timeout_ms: int = 5000,
) -> list[str]:
    """Arguments of ``client.js`` (PeerRPCClient request or map)."""
    args = [
        "--grape", grape, "--service", service, "--op", op,
        "--payload", json.dumps(payload), "--timeout", str(timeout_ms),
    ]  # fmt: skip
    return [*args, "--compress"] if compress else args


def node_link(grape: str, op: str, data: Any) -> dict[str, Any]:
    """One call of the Node Link (``link.js``): announce, lookup, put or get."""
    return run_node("link.js", "--grape", grape, "--op", op, "--data", json.dumps(data))


def stop_all(processes: Iterable[ServiceProcess]) -> None:
    """Stop every process (each tried, errors ignored): fixture teardown."""
    for p in list(processes):
        with contextlib.suppress(Exception):
            p.stop()
