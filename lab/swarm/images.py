"""The lab's images, copied from the host engine into every node of a local swarm.

Why copy: the nodes have no registry (the lab builds offline) and their engines start
empty. One ``docker save`` to a file, then one ``docker load`` per node, all at once: the
save is the slow part and runs once, the loads run in parallel. Which images: those the
last ``lab up --images-only`` wrote into ``.cache/stack.env``, never a guess.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from lab.errors import RuntimeUnavailable
from lab.stack.engine import Paths, read_env_file

IMAGE_KEYS = ("LAB_SERVICES_IMAGE", "LAB_TOXIPROXY_IMAGE", "LAB_NETFAULT_IMAGE", "LAB_PYTHON_BASE")


def lab_images(paths: Paths) -> list[str]:
    """The image names in ``.cache/stack.env``; RuntimeUnavailable naming the fix if absent."""
    env = read_env_file(paths.state_env)
    missing = [k for k in IMAGE_KEYS if not env.get(k)]
    if missing:
        raise RuntimeUnavailable(
            f"{paths.state_env} does not name {', '.join(missing)}: build the images first "
            "with `lab up --images-only` (the swarm's nodes get copies of them)"
        )
    return [env[k] for k in IMAGE_KEYS]


def client_env() -> dict[str, str]:
    """The docker CLI's environment for a node: ``-H`` decides, not the caller's context."""
    return {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}


def _nice() -> list[str]:
    return ["nice", "-n", "19"]


def start_save(images: Sequence[str], tar: Path) -> subprocess.Popen[bytes]:
    """``docker save`` of ``images`` from the host engine (``DOCKER_HOST`` as the lab's) to
    ``tar``, started in the background."""
    tar.parent.mkdir(parents=True, exist_ok=True)
    return _spawn([*_nice(), "docker", "save", "-o", str(tar), *images], os.environ.copy())


def start_load(docker_host: str, tar: Path) -> subprocess.Popen[bytes]:
    """``docker load`` of ``tar`` into the engine at ``docker_host``, in the background."""
    return _spawn([*_nice(), "docker", "-H", docker_host, "load", "-q", "-i", str(tar)],
                  client_env())  # fmt: skip


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
    except OSError as exc:
        raise RuntimeUnavailable(f"cannot run `{' '.join(argv)}`: {exc}") from exc


def finish(proc: subprocess.Popen[bytes], what: str, timeout: float = 300.0) -> None:
    """Wait for ``proc``; RuntimeUnavailable with its stderr when it failed."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.communicate()
        raise RuntimeUnavailable(f"{what} took more than {timeout:.0f}s") from exc
    if proc.returncode != 0:
        raise RuntimeUnavailable(
            f"{what} failed (exit {proc.returncode}): {err.decode(errors='replace').strip()}"
        )


def missing_on(docker_host: str, images: Sequence[str]) -> list[str]:
    """Those of ``images`` the engine at ``docker_host`` does not have."""
    done = subprocess.run(
        ["docker", "-H", docker_host, "image", "inspect", "--format", "{{.Id}}", *images],
        capture_output=True, text=True, env=client_env(), timeout=30, check=False,
    )  # fmt: skip
    if done.returncode == 0:
        return []
    return [i for i in images if i in done.stderr] or list(images)
