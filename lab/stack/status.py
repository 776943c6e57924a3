"""``lab status``: one screen saying whether the lab works, read through the real network.

Four tables: every service's container state and health; what each grape answers for
``/lookup rpc_test`` (all three workers at their Toxiproxy addresses is the goal);
Toxiproxy's proxies and any toxics on them (a leftover toxic is the classic "why is it
slow"); and each client's request rate, from two samples of its ``/health`` a second
apart. Services that are down or not written yet show as such; nothing here raises
because one of them is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from lab.errors import RuntimeUnavailable
from lab.stack import health, toxiapi
from lab.stack.engine import CONTROL_LABEL, Engine, service_kind, service_name

SERVICE = "rpc_test"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("--service", default=SERVICE, help=f"service to look up [{SERVICE}]")


def _http(method: str, url: str, body: Any = None, timeout: float = 2.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


async def _try(method: str, url: str, body: Any = None) -> Any:
    """The decoded answer, or the error text prefixed with ``error:``: status never raises."""
    try:
        return await asyncio.to_thread(_http, method, url, body)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"error: {reason}"


def controls(engine: Engine) -> dict[str, str]:
    """service -> its published control address (from the com.grenache-lab.control label)."""
    return {
        service_name(c): str(c.labels[CONTROL_LABEL])
        for c in engine.containers(all=False)
        if CONTROL_LABEL in (c.labels or {})
    }


async def gather(engine: Engine, services: Sequence[str], service: str = SERVICE) -> dict[str, Any]:
    """Everything the tables show, as plain data (also what ``--json`` prints)."""
    st = await asyncio.to_thread(health.states, engine, services)
    ctl = await asyncio.to_thread(controls, engine)
    grapes = sorted(s for s in ctl if service_kind(s) == "grape")
    clients = sorted(s for s in ctl if service_kind(s) == "client")

    async def lookup(g: str) -> Any:
        body = {"rid": str(uuid.uuid4()), "data": service}
        return await _try("POST", f"http://{ctl[g]}/lookup", body)

    async def rate(c: str) -> dict[str, Any]:
        first = await _try("GET", f"http://{ctl[c]}/health")
        t0 = time.monotonic()
        await asyncio.sleep(1.0)
        second = await _try("GET", f"http://{ctl[c]}/health")
        dt = time.monotonic() - t0
        if not (isinstance(first, dict) and isinstance(second, dict)):
            return {"error": str(second)}
        load1, load2 = first.get("load") or {}, second.get("load") or {}
        issued1, issued2 = load1.get("issued"), load2.get("issued")
        spec = load2.get("spec") or {}
        return {
            "running": bool(load2.get("running")),
            "target_rate": spec.get("rate"),
            "rate": (issued2 - issued1) / dt
            if isinstance(issued1, int) and isinstance(issued2, int)
            else None,
            "issued": issued2,
            "in_flight": load2.get("in_flight"),
        }

    async def proxies() -> Any:
        try:
            return [p.__dict__ for p in await asyncio.to_thread(toxiapi.proxies)]
        except RuntimeUnavailable as exc:
            return f"error: {exc}"

    lookups, rates, prox = await asyncio.gather(
        asyncio.gather(*(lookup(g) for g in grapes)),
        asyncio.gather(*(rate(c) for c in clients)),
        proxies(),
    )
    return {
        "services": {k: v.__dict__ for k, v in st.items()},
        "lookup": dict(zip(grapes, lookups, strict=True)),
        "proxies": prox,
        "clients": dict(zip(clients, rates, strict=True)),
        "controls": ctl,
    }


def render(data: dict[str, Any], console: Console, service: str = SERVICE) -> None:
    svc = Table(title="services", title_justify="left")
    for col in ("service", "state", "health", "control", "detail"):
        svc.add_column(col)
    for name, s in data["services"].items():
        colour = (
            "green" if s["state"] == "running" and s["health"] in {"healthy", "none"} else "red"
        )
        svc.add_row(
            name,
            f"[{colour}]{s['state']}[/]",
            f"[{colour}]{s['health']}[/]",
            data["controls"].get(name, ""),
            s["detail"][:60],
        )
    console.print(svc)

    look = Table(title=f"discovery: /lookup {service}", title_justify="left")
    look.add_column("grape")
    look.add_column("peers")
    for g, answer in data["lookup"].items():
        text = ", ".join(sorted(answer)) if isinstance(answer, list) else str(answer)
        look.add_row(g, text or "[yellow](none)[/]")
    if not data["lookup"]:
        look.add_row("[yellow](no grape running)[/]", "")
    console.print(look)

    tox = Table(title="toxiproxy", title_justify="left")
    for col in ("proxy", "listen", "upstream", "enabled", "toxics"):
        tox.add_column(col)
    if isinstance(data["proxies"], list):
        for p in data["proxies"]:
            toxics = ", ".join(
                f"{t.get('name')}: {t.get('type')} {t.get('stream')} "
                + " ".join(f"{k}={v}" for k, v in (t.get("attributes") or {}).items())
                for t in p["toxics"]
            )
            tox.add_row(
                p["name"],
                p["listen"],
                p["upstream"],
                str(p["enabled"]),
                f"[yellow]{toxics}[/]" if toxics else "-",
            )
    else:
        tox.add_row(str(data["proxies"]), "", "", "", "")
    console.print(tox)

    cl = Table(title="clients", title_justify="left")
    for col in ("client", "load", "rate req/s", "target", "issued", "in flight"):
        cl.add_column(col)
    for c, r in data["clients"].items():
        if "error" in r:
            cl.add_row(c, f"[red]{r['error'][:60]}[/]", "", "", "", "")
            continue
        rate = "-" if r["rate"] is None else f"{r['rate']:.1f}"
        cl.add_row(
            c,
            "running" if r["running"] else "idle",
            rate,
            str(r["target_rate"] or "-"),
            str(r["issued"]),
            str(r["in_flight"]),
        )
    if not data["clients"]:
        cl.add_row("[yellow](no client running)[/]", "", "", "", "", "")
    console.print(cl)


def print_status(
    engine: Engine, services: Sequence[str] | None = None, service: str = SERVICE
) -> None:
    names = list(services) if services else sorted(service_name(c) for c in engine.containers())
    render(asyncio.run(gather(engine, names, service)), Console(), service)


def run(args: argparse.Namespace) -> int:
    engine = Engine.connect()
    try:
        names = sorted(service_name(c) for c in engine.containers())
        if not names:
            print("the lab is not running: start it with `lab up`")
            return 0
        data = asyncio.run(gather(engine, names, args.service))
        if args.json:
            print(json.dumps(data, indent=2, default=str))
        else:
            render(data, Console(), args.service)
        return 0
    finally:
        engine.close()
