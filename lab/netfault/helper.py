"""The helper container: the agent run inside a lab container's network namespace.

As Pumba does it: ``docker run --network container:<target> --cap-drop ALL --cap-add
NET_ADMIN`` of a small image (``lab up`` builds it offline: iptables, tc, python3 and the
agent). The lab's services keep ``cap_drop: [ALL]``; only this helper holds a capability,
and only while it runs: one-shot for rules (``run``/``clean``/``show``: the rules live in
the namespace, not in the helper), kept running only for a queued fault (the agent serves
NFQUEUE) and removed on heal. Read-only root, no new privileges, a few pids, no Docker
socket. Every helper carries :data:`HELPER_LABEL` (its fault id), so ``lab down`` and
leftover cleanup find them by label, never by name.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Sequence
from typing import Any

import docker.errors

from lab.errors import FaultError, RuntimeUnavailable
from lab.stack.engine import Engine, service_name

NETFAULT_REPO = "grenache-lab/netfault"
HELPER_LABEL = "com.grenache-lab.netfault"
TARGET_LABEL = "com.grenache-lab.netfault-target"
NETWORK_LABEL = "com.grenache-lab.network"
DEV = "eth0"


def hardening(network_mode: str) -> dict[str, Any]:
    """The helper's container options: ``network_mode`` is ``container:<id>`` for a lab
    container's namespace, ``host`` for a Swarm node's own (lab/netfault/hostns.py)."""
    return {
        "network_mode": network_mode,
        "cap_drop": ["ALL"],
        "cap_add": ["NET_ADMIN"],
        "read_only": True,
        "tmpfs": {"/run": "size=1m", "/tmp": "size=4m"},  # xtables.lock lives in /run
        "security_opt": ["no-new-privileges:true"],
        "pids_limit": 32,
        "mem_limit": "96m",
        "user": "0:0",  # uid 0 without capabilities beyond NET_ADMIN: what iptables checks
    }


class NetfaultHelper:
    """Runs the agent in lab containers' namespaces through the Docker engine."""

    def __init__(self, engine: Engine, image: str | None = None) -> None:
        self.engine = engine
        self.client: Any = engine.client
        self.image = image or engine.env.get("LAB_NETFAULT_IMAGE") or f"{NETFAULT_REPO}:latest"
        self.exited_at: float | None = None  # monotonic: when the last one-shot agent exited

    # -- the lab's containers -------------------------------------------------------
    def container(self, name: str) -> Any:
        """The container of service ``name``, or the client a run knows by that name
        (client-byo runs the learner's policy under the scenario's name: its
        ``com.grenache-lab.name`` label, lab/scenario/runtime/compose.py)."""
        found = self.engine.containers(all=True)
        for c in found:
            if service_name(c) == name:
                return c
        for c in found:
            if (c.labels or {}).get("com.grenache-lab.name") == name:
                return c
        raise FaultError(f"no container for service {name!r} (run `lab up` first)")

    def address(self, name: str) -> str:
        """``name``'s IPv4 address on the lab network."""
        c = self.container(name)
        nets = (c.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        for net_name, entry in nets.items():
            if net_name.endswith("_lab") or net_name == "lab":
                ip = str(entry.get("IPAddress") or "")
                if ip:
                    return ip
        raise FaultError(f"{name} has no address on the lab network (disconnected?)")

    # -- one-shot agent runs ---------------------------------------------------------
    def agent(self, target: str, args: Sequence[str], timeout: float = 30.0) -> dict[str, Any]:
        """Run ``lab-netfault ARGS`` in ``target``'s namespace; its JSON state, or FaultError."""
        c = self.container(target)
        state, self.exited_at = run_oneshot(
            self.client,
            self.image,
            args,
            labels={HELPER_LABEL: "oneshot", TARGET_LABEL: target},
            network_mode=f"container:{c.id}",
            where=target,
            timeout=timeout,
        )
        return state

    def run(self, target: str, commands: Sequence[Sequence[str]]) -> dict[str, Any]:
        return self.agent(target, ["run", json.dumps({"commands": [list(c) for c in commands]})])

    def clean(
        self, target: str, chains: Sequence[str] | None, qdisc: bool = True
    ) -> dict[str, Any]:
        arg = {"chains": None if chains is None else list(chains), "dev": DEV, "qdisc": qdisc}
        return self.agent(target, ["clean", json.dumps(arg)])

    def show(self, target: str) -> dict[str, Any]:
        return self.agent(target, ["show"])

    # -- the queue agent (kept running while its fault holds) -------------------------
    def start_queue(
        self, target: str, fault_id: str, params: dict[str, Any], timeout: float = 15.0
    ) -> None:
        """Start the NFQUEUE agent and wait until it has bound its queue."""
        c = self.container(target)
        try:
            helper = self.client.containers.run(
                self.image,
                ["queue", json.dumps(params)],
                detach=True,
                name=helper_name(fault_id),
                labels={HELPER_LABEL: fault_id, TARGET_LABEL: target},
                stop_signal="SIGTERM",
                **hardening(f"container:{c.id}"),
            )
        except docker.errors.DockerException as exc:
            raise FaultError(f"netfault queue helper on {target}: {_short(exc)}") from exc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            helper.reload()
            if helper.status not in ("created", "running"):
                err = bytes(helper.logs()).decode(errors="replace")
                raise FaultError(f"netfault queue helper on {target} exited: {err.strip()[:300]}")
            if b"ready" in bytes(helper.logs(stdout=True, stderr=False)):
                return
            time.sleep(0.05)  # polling the helper's log for its "ready" line, with a deadline
        raise FaultError(f"netfault queue helper on {target} not ready within {timeout:.0f}s")

    def queue_running(self, fault_id: str) -> bool:
        return any(c.status == "running" for c in self.helpers(fault_id))

    def helpers(self, fault_id: str | None = None) -> list[Any]:
        """Helper containers (of one fault, or all), running or not.

        A helper removed between Docker's list and its inspect is gone, not an error:
        helpers end (and are removed) while others look at them.
        """
        label = HELPER_LABEL if fault_id is None else f"{HELPER_LABEL}={fault_id}"
        try:
            return list(
                self.client.containers.list(all=True, filters={"label": label}, ignore_removed=True)
            )
        except docker.errors.DockerException as exc:
            raise FaultError(f"cannot list netfault helpers: {_short(exc)}") from exc

    def remove_helpers(self, fault_id: str | None = None) -> list[str]:
        """Stop (SIGTERM: held packets are released) and remove helpers; their names."""
        gone = []
        for h in self.helpers(fault_id):
            with contextlib.suppress(docker.errors.DockerException):
                if h.status == "running":
                    h.stop(timeout=3)
            try:
                h.remove(force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.DockerException as exc:
                raise FaultError(f"cannot remove netfault helper {h.name}: {_short(exc)}") from exc
            gone.append(str(h.name))
        return gone


def run_oneshot(
    client: Any,
    image: str,
    args: Sequence[str],
    *,
    labels: dict[str, str],
    network_mode: str,
    where: str,
    timeout: float = 30.0,
) -> tuple[dict[str, Any], float]:
    """Run the agent once through ``client`` (any engine) in ``network_mode``; its JSON
    state and when it exited (monotonic: the change was in place then), or FaultError.

    The helper is removed on every way out; ``where`` names the namespace in errors.
    """
    try:
        helper = client.containers.run(
            image, list(args), detach=True, labels=labels, **hardening(network_mode)
        )
    except docker.errors.ImageNotFound as exc:
        raise RuntimeUnavailable(
            f"the netfault helper image {image} is missing on {where}'s engine: run `lab up` "
            "(it builds it; a local swarm's nodes get a copy)"
        ) from exc
    except docker.errors.DockerException as exc:
        raise FaultError(f"netfault helper on {where}: {_short(exc)}") from exc
    try:
        result = helper.wait(timeout=timeout)
        exited_at = time.monotonic()  # its commands are done: the change is in place
        out = bytes(helper.logs(stdout=True, stderr=False)).decode(errors="replace")
        err = bytes(helper.logs(stdout=False, stderr=True)).decode(errors="replace")
    except Exception as exc:  # docker or requests timeout: the helper is removed below
        raise FaultError(f"netfault helper on {where}: {type(exc).__name__}: {exc}") from exc
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            helper.remove(force=True)
    state = _last_json(out)
    if int(result.get("StatusCode", 1)) != 0:
        raise FaultError(f"netfault {args[0]} on {where}: {err.strip()[:400] or out[:400]}")
    if state is None:
        raise FaultError(f"netfault {args[0]} on {where} printed no state: {out[:200]!r}")
    return state, exited_at


def helper_name(fault_id: str) -> str:
    return "grenache-lab-netfault-" + re.sub(r"[^A-Za-z0-9_.-]", "_", fault_id)


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        with contextlib.suppress(ValueError):
            data = json.loads(line)
            if isinstance(data, dict):
                return data
    return None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
