"""``lab status``: one screen saying whether the lab works, read through the real network.

Four tables: every service's container state and health; what each grape answers for
``/lookup rpc_test`` (all three workers at their Toxiproxy addresses is the goal);
Toxiproxy's proxies and any toxics on them (a leftover toxic is the classic "why is it
slow"); and each client's request rate, from two samples of its ``/health`` a second
apart. Services that are down or not written yet show as such; nothing here raises
because one of them is missing.

Then what is wrong, in sentences, and the exit code says it: 0 the lab is up and
healthy with no dead run's leftovers, 1 otherwise (a service missing, exited, paused
or unhealthy; Toxiproxy's API down; a dead run's faults still injected or its lock
left behind, with how to clean them), so scripts and CI can gate on ``lab status``.
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
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lab.errors import LabError, RuntimeUnavailable
from lab.netfault.helper import HELPER_LABEL, TARGET_LABEL, NetfaultHelper
from lab.scenario.faults.marker import MARKER, default_reports_dir, marker_owner_alive
from lab.scenario.run.runlock import COMPOSE_LOCK_NAME, holder, state_dir
from lab.stack import health, toxiapi
from lab.stack.engine import CONTROL_LABEL, Engine, Paths, service_kind, service_name
from lab.swarm import state as swarm_state
from lab.swarm import status as swarm_status

SERVICE = "rpc_test"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("--service", default=SERVICE, help=f"service to look up [{SERVICE}]")
    parser.add_argument(
        "--reports", type=Path, default=None, help="reports directory [reports/ of the repo]"
    )


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


def problems(data: dict[str, Any]) -> list[str]:
    """What keeps the lab from working, one sentence each (empty: healthy)."""
    out: list[str] = []
    for name, st in data["services"].items():
        ready = st["state"] == "running" and st["health"] in {"healthy", "none"}
        if not ready:
            code = f", exit code {st['exit_code']}" if st.get("exit_code") is not None else ""
            out.append(f"{name} is {st['state']} (health: {st['health']}{code})")
    if isinstance(data["proxies"], str):
        out.append(f"Toxiproxy's API: {data['proxies'].removeprefix('error: ')}")
    for c, r in data["clients"].items():
        if "error" in r:
            out.append(f"{c} does not answer on its control port: {r['error'][:80]}")
    return out


def leftovers(reports_dir: Path | None = None) -> list[str]:
    """A dead run's leftovers: its in-flight marker (faults still injected) and its lock."""
    out: list[str] = []
    clean = "clean them with `lab down` or the next `lab run`"
    marker = (reports_dir or default_reports_dir()) / MARKER
    try:
        data = json.loads(marker.read_text())
    except FileNotFoundError:
        data = None
    except (OSError, ValueError):
        out.append(f"{marker} is unreadable; {clean}")
        data = None
    if isinstance(data, dict) and not marker_owner_alive(data):
        faults = [
            f"{f.get('kind', 'fault')} {f.get('id', '?')} on {f.get('target', '?')}"
            for f in data.get("faults") or []
            if isinstance(f, dict)
        ]
        what = f"{len(faults)} fault(s) still in place: {', '.join(faults)}" if faults else (
            "no fault recorded, but its clients may still hold its load"
        )  # fmt: skip
        out.append(
            f"run {data.get('run_id')} (pid {data.get('pid')}) died and left {what} "
            f"({marker}); {clean}"
        )
    try:
        owner, alive = holder(state_dir() / COMPOSE_LOCK_NAME)
    except LabError:
        owner, alive = None, False
    if owner is not None and not alive:
        out.append(f"a dead run's lock names {owner.describe()}; the next `lab run` takes it over")
    return out


def print_status(
    engine: Engine, services: Sequence[str] | None = None, service: str = SERVICE
) -> None:
    names = list(services) if services else sorted(service_name(c) for c in engine.containers())
    render(asyncio.run(gather(engine, names, service)), Console(), service)


def run(args: argparse.Namespace) -> int:
    on_swarm = swarm_state.load(Paths.find())
    if on_swarm is not None:
        return _swarm_status(on_swarm)
    engine = Engine.connect()
    try:
        names = sorted(service_name(c) for c in engine.containers())
        left = leftovers(args.reports)
        if not names:
            print("the lab is not running: start it with `lab up`")
            for line in left:
                print(f"leftover: {line}")
            return 1
        data = asyncio.run(gather(engine, names, args.service))
        wrong = problems(data)

        netfaults, stray = netfault_status(engine, args.reports)
        left += stray
        if args.json:
            print(
                json.dumps(
                    {**data, "problems": wrong, "leftovers": left, "netfaults": netfaults},
                    indent=2,
                    default=str,
                )
            )
        else:
            console = Console()
            render(data, console, args.service)
            for line in netfaults:
                console.print(f"[cyan]network fault[/]: {line}")
            for line in wrong:
                console.print(f"[red]not ok[/]: {line}")
            for line in left:
                console.print(f"[yellow]leftover[/]: {line}")
            if not wrong and not left:
                console.print("[green]ok[/]: every service up and healthy, no leftovers")
        return 1 if wrong or left else 0
    finally:
        engine.close()


def netfault_status(engine: Engine, reports_dir: Path | None = None) -> tuple[list[str], list[str]]:
    """Network faults read from the in-flight marker and Docker's helper labels (cheap).

    (active: one line per network fault in place, stray: helpers no live run owns)."""
    active: list[str] = []
    owner_alive = False
    marker = (reports_dir or default_reports_dir()) / MARKER
    try:
        data: Any = json.loads(marker.read_text())
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict):
        owner_alive = marker_owner_alive(data)
        who = f"run {data.get('run_id')} ({'running' if owner_alive else 'dead'})"
        for f in data.get("faults") or []:
            if isinstance(f, dict) and f.get("netfault"):
                active.append(f"{f.get('kind')} {f.get('id')} on {f.get('target')}, {who}")
    stray: list[str] = []
    try:
        helpers = NetfaultHelper(engine).helpers()
    except LabError as exc:
        return active, [f"cannot list netfault helpers: {exc}"]
    for h in helpers:
        labels = h.labels or {}
        line = (
            f"helper {h.name} ({h.status}) of fault {labels.get(HELPER_LABEL)} "
            f"in {labels.get(TARGET_LABEL)}'s namespace"
        )
        active.append(line)
        if not owner_alive:
            stray.append(f"{line}; remove it with `lab down` or the next `lab run`")
    return active, stray


def _swarm_status(state: swarm_state.SwarmState) -> int:
    """The swarm stack's services (node, task, health); exit 1 when one is not well."""
    found, wrong = swarm_status.rows(state)
    console = Console()
    kind = f"local swarm of {len(state.nodes)}" if state.local else "swarm"
    table = Table(title=f"grenache-lab on a {kind} (stack {state.stack})")
    for col in ("service", "node", "task", "health"):
        table.add_column(col)
    for r in found:
        table.add_row(r.service, r.node, r.task, "ok" if r.ok else f"[red]{escape(r.why)}[/]")
    console.print(table)
    for line in wrong:
        console.print(f"[red]not ok[/]: {escape(line)}")
    return 1 if wrong else 0
