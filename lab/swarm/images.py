"""The lab's images as a local swarm's nodes need them: which, and whether a node has them.

The nodes have no registry (the lab builds offline); they start from an image store
template (:mod:`lab.swarm.template`) loaded once from the host engine. Which images: those
the last ``lab up --images-only`` wrote into ``.cache/stack.env``, never a guess.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

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
