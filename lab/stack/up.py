"""``lab up``: build what is missing, start the Compose lab, wait until every service is healthy.

Idempotent by design: images are content-keyed (a warm run builds nothing), ``docker
compose up -d`` leaves running containers alone and restarts killed ones, and the wait is
a poll with a deadline. On success it prints the status table; on failure one sentence
naming the culprit and the fix, and exit code 2. ``--engine swarm`` hands over to
:mod:`lab.swarm.command` (the same topology as a Swarm stack; images are only read).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from lab.errors import RuntimeUnavailable
from lab.settings import add_option, parse_duration
from lab.stack import gossip_key, health, status, toxiapi
from lab.stack.engine import Engine, Paths, service_kind, write_env_file
from lab.stack.images import SOURCES, Builder
from lab.swarm import command as swarm
from lab.swarm.stack import Counts

ENGINES = ("compose", "swarm")
MAX_LOCAL_NODES = 5


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _source(text: str) -> str:
    if text not in SOURCES:
        raise ValueError(f"not one of {', '.join(SOURCES)}")
    return text


def configure(parser: argparse.ArgumentParser) -> None:
    add_option(
        parser,
        "--source",
        env="LAB_IMAGE_SOURCE",
        parse=_source,
        default="auto",
        help="where the base images come from: auto (registry if it answers), "
        "upstream (python:3.12-slim, ghcr.io toxiproxy) or offline (built here)",
    )
    add_option(
        parser,
        "--python-base",
        env="LAB_PYTHON_BASE",
        parse=str,
        default="",
        help="use this Python base image instead of the source's",
    )
    add_option(
        parser,
        "--toxiproxy-image",
        env="LAB_TOXIPROXY_IMAGE",
        parse=str,
        default="",
        help="use this Toxiproxy (>= 2.5) image instead of the source's",
    )
    add_option(
        parser,
        "--mirror",
        env="LAB_DEBIAN_MIRROR",
        parse=str,
        default="",
        help="Debian mirror for the offline base (default: read from apt's sources)",
    )
    add_option(
        parser,
        "--skip",
        env="LAB_UP_SKIP",
        parse=_csv,
        default=[],
        metavar="KINDS",
        help="comma list of service kinds or names not to start (e.g. client)",
    )
    add_option(
        parser,
        "--timeout",
        env="LAB_UP_TIMEOUT",
        parse=parse_duration,
        default=180.0,
        help="how long to wait for every service to be healthy",
    )
    parser.add_argument(
        "--images-only",
        action="store_true",
        help="build or pull the images and stop (what `make images` runs)",
    )
    parser.add_argument("--quiet", action="store_true", help="no status table at the end")
    swarm = parser.add_argument_group("swarm (--engine swarm)")
    add_option(
        swarm,
        "--engine",
        env="LAB_ENGINE",
        parse=_engine,
        default="compose",
        help="compose (one Docker engine) or swarm (the stack on a Docker Swarm; the images "
        "must exist: `lab up --images-only`)",
    )
    swarm.add_argument(
        "--local-nodes",
        type=_nodes,
        default=None,
        metavar="N",
        help="build a swarm of N local nodes (network namespaces, one dockerd each) for the "
        "lab; without it the swarm is the one DOCKER_HOST / the docker context manages, "
        "with the lab's images on every node",
    )
    swarm.add_argument("--workers", type=int, default=3, help="workers on the swarm [3]")
    swarm.add_argument("--grapes", type=int, default=3, help="grapes on the swarm [3]")
    swarm.add_argument(
        "--clients",
        type=_csv,
        default=[],
        metavar="NAMES",
        help="clients beyond compose.yaml's base ones: profiled ones (client-c3) or "
        "client-<declared>-<k> (client-random-2)",
    )


def _engine(text: str) -> str:
    if text not in ENGINES:
        raise ValueError(f"not one of {', '.join(ENGINES)}")
    return text


def _nodes(text: str) -> int:
    n = int(text)
    if not 1 <= n <= MAX_LOCAL_NODES:
        raise argparse.ArgumentTypeError(f"--local-nodes: 1..{MAX_LOCAL_NODES}, not {n}")
    return n


def compose_model(engine: Engine) -> dict[str, Any]:
    """compose.yaml after interpolation, as Compose itself reads it."""
    out = engine.compose("config", "--format", "json").stdout
    model: dict[str, Any] = json.loads(out)
    return model


def published_ports(service: dict[str, Any]) -> list[int]:
    ports: list[int] = []
    for p in service.get("ports") or []:
        if isinstance(p, dict) and p.get("published"):
            ports.append(int(p["published"]))
    return ports


def run(args: argparse.Namespace) -> int:
    if args.engine == "swarm":
        return run_swarm(args)
    t0 = time.monotonic()
    engine = Engine.connect()
    try:
        engine.check_disk()
        builder = Builder(engine, _log)
        images = builder.ensure(
            source=args.source,
            python_base=args.python_base or None,
            toxiproxy=args.toxiproxy_image or None,
            mirror=args.mirror or None,
        )
        _log(
            f"images: {images.source}: services={images.services} "
            f"base={images.python_base} toxiproxy={images.toxiproxy} "
            f"({time.monotonic() - t0:.1f}s)"
        )
        write_env_file(engine.paths.state_env, images.env())
        engine.env = {**images.env(), **gossip_key.ensure(engine.paths)}
        if args.images_only:
            try:  # the local runtime and the tests run the same Toxiproxy as a process
                _log(f"images: Toxiproxy binary {builder.toxiproxy_binary()}")
            except RuntimeUnavailable as exc:
                _log(f"images: no local Toxiproxy binary (the local runtime needs one): {exc}")
            return 0
        model = compose_model(engine)
        known = set(model["services"]) | {service_kind(n) for n in model["services"]}
        unknown = sorted(set(args.skip) - known)
        if unknown:
            raise RuntimeUnavailable(
                f"--skip {','.join(unknown)}: no such service or kind in compose.yaml "
                f"(kinds: {', '.join(sorted({service_kind(n) for n in model['services']}))})"
            )
        services = [
            name
            for name in sorted(model["services"])
            if name not in args.skip and service_kind(name) not in args.skip
        ]
        engine.check_ports([p for s in services for p in published_ports(model["services"][s])])
        t1 = time.monotonic()
        engine.compose("up", "--detach", "--no-build", "--pull", "never", *services)
        _log(f"compose: up in {time.monotonic() - t1:.1f}s; waiting for health")
        health.wait_healthy(engine, services, args.timeout, log=_log)
        if "toxiproxy" in services:
            _log(f"toxiproxy: version {toxiapi.check_version()}")
        if not args.quiet:
            status.print_status(engine, services)
        _log(f"lab up: ready in {time.monotonic() - t0:.1f}s")
        return 0
    finally:
        engine.close()


def run_swarm(args: argparse.Namespace) -> int:
    """``lab up --engine swarm``: no image is built or tagged here (lab.swarm.command)."""
    t0 = time.monotonic()
    try:
        counts = Counts(grapes=args.grapes, workers=args.workers, clients=tuple(args.clients))
    except ValueError as exc:
        raise RuntimeUnavailable(f"lab up --engine swarm: {exc}") from None
    report = swarm.up(
        Paths.find(), local_nodes=args.local_nodes, counts=counts, timeout=args.timeout, log=_log
    )
    nodes = ", ".join(f"{n.name} {n.address}" for n in report.state.nodes)
    _log(
        f"lab up --engine swarm: ready in {time.monotonic() - t0:.1f}s (swarm "
        f"{report.swarm_s:.1f}s, deploy {report.deploy_s:.1f}s, healthy and discovered "
        f"{report.ready_s:.1f}s); {report.services} services on {nodes}"
    )
    return 0
