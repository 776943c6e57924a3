"""Settings of ``lab worker``: flags that fall back to ``LAB_WORKER_*`` variables.

Validated once before any socket is bound (``lab.settings`` reads the environment);
the options are exactly those of ``docs/contracts.md``. The address parsers are
``lab.settings``'s, so every service accepts the same grape lists and ports.
"""

from __future__ import annotations

import argparse
import socket
from dataclasses import dataclass

from lab.errors import SettingsError
from lab.settings import (
    WILDCARDS,
    add_option,
    parse_duration,
    parse_grapes,
    parse_name,
    parse_port,
    within,
)
from lab.worker.behaviour import Behaviour, Latency, parse_latency

NO_LATENCY = Latency()


parse_rate = within(float, 0.0, 1.0, "must be within [0, 1]")
parse_ms = within(float, 0.0, 10_000.0, "must be within 0..10000 ms")
parse_concurrency = within(int, 0, 10_000, "must be within 0..10000")


def parse_optional_port(text: str) -> int:
    return 0 if text.strip() == "" else parse_port(text)


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """Everything ``lab worker`` needs to start."""

    name: str = "worker"
    bind: str = "0.0.0.0"
    port: int = 1337
    service: str = "rpc_test"
    grapes: tuple[str, ...] = ("http://127.0.0.1:30001",)
    announce_host: str | None = None
    announce_port: int | None = None
    announce_interval: float = 1.0
    control_port: int = 9100
    latency: Latency = NO_LATENCY
    error_rate: float = 0.0
    cpu_ms: float = 0.0
    seed: int = 0
    max_body: int = 1024 * 1024
    drain_timeout: float = 5.0
    concurrency: int = 0  # requests in service at once; the rest queue (0: no bound)

    def __post_init__(self) -> None:
        if self.concurrency < 0:
            raise SettingsError("concurrency: must be 0 (no bound) or more")
        if self.announce_interval <= 0:
            raise SettingsError("announce-interval: must be positive")
        if self.drain_timeout < 0:
            raise SettingsError("drain timeout: must not be negative")

    def behaviour(self) -> Behaviour:
        return Behaviour(self.latency, self.error_rate, self.cpu_ms)

    def local_host(self) -> str | None:
        """The source address for grape calls: the bind address when it is a specific one.

        A grape records the announcing caller's address; on 127.0.0.x that must be the
        address this worker listens on, not 127.0.0.1.
        """
        return None if self.bind in WILDCARDS else self.bind


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``lab worker``'s options to ``parser``."""
    d = WorkerSettings()
    opt = add_option
    # fmt: off
    opt(parser, "--bind", env="LAB_WORKER_BIND", parse=str, default=d.bind,
        help="address the RPC and control ports bind to")
    opt(parser, "--port", env="LAB_WORKER_PORT", parse=parse_port, default=d.port,
        help="TCP port of the Grenache RPC server (0: any free port)")
    opt(parser, "--name", env="LAB_WORKER_NAME", parse=parse_name,
        default=socket.gethostname() or d.name, help="name in replies, logs and metrics")
    opt(parser, "--service", env="LAB_WORKER_SERVICE", parse=parse_name, default=d.service,
        help="the Grenache service name announced")
    opt(parser, "--grape", env="LAB_WORKER_GRAPES", parse=parse_grapes, default=d.grapes,
        help="grape API URLs, comma separated", metavar="URLS")
    opt(parser, "--announce-host", env="LAB_WORKER_ANNOUNCE_HOST", parse=str, default="",
        help="host to announce (e.g. a proxy's); default: the grape records the caller's")
    opt(parser, "--announce-port", env="LAB_WORKER_ANNOUNCE_PORT", parse=parse_optional_port,
        default=0, help="port to announce (e.g. a proxy's); default: --port")
    opt(parser, "--announce-interval", env="LAB_WORKER_ANNOUNCE_INTERVAL", parse=parse_duration,
        default=d.announce_interval, help="mean time between announces (jittered 0.5-1.5x)")
    opt(parser, "--control-port", env="LAB_WORKER_CONTROL_PORT", parse=parse_port,
        default=d.control_port, help="TCP port of /health, /metrics and /behaviour")
    opt(parser, "--latency", env="LAB_WORKER_LATENCY", parse=parse_latency, default=d.latency,
        help="added latency in ms: fixed:0 | uniform:100-300 | normal:300,50 | exp:50")
    opt(parser, "--error-rate", env="LAB_WORKER_ERROR_RATE", parse=parse_rate,
        default=d.error_rate, help="share of requests answered with an error")
    opt(parser, "--cpu-ms", env="LAB_WORKER_CPU_MS", parse=parse_ms, default=d.cpu_ms,
        help="CPU busy-work per request, in ms")
    opt(parser, "--concurrency", env="LAB_WORKER_CONCURRENCY", parse=parse_concurrency,
        default=d.concurrency,
        help="requests served at once, the rest queue in order (0: no bound, no queue)")
    opt(parser, "--seed", env="LAB_WORKER_SEED", parse=int, default=d.seed,
        help="seed of the latency and error draws")
    # fmt: on


def from_args(args: argparse.Namespace) -> WorkerSettings:
    """The settings ``configure``'s parser produced, validated."""
    return WorkerSettings(
        name=args.name,
        bind=args.bind,
        port=args.port,
        service=args.service,
        grapes=tuple(args.grape),
        announce_host=args.announce_host or None,
        announce_port=args.announce_port or None,
        announce_interval=args.announce_interval,
        control_port=args.control_port,
        latency=args.latency,
        error_rate=args.error_rate,
        cpu_ms=args.cpu_ms,
        seed=args.seed,
        concurrency=args.concurrency,
    )
