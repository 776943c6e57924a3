"""Run one ``lab`` command inside a Compose client container (``lab call`` on Compose).

The Compose lab's workers are reachable only on its own network (Toxiproxy's proxy ports
are not published), and a learner's policy runs only in the lab's hardened client
containers: so the command runs there, as the container's own user, in its working
directory, where ``policies/`` is the repository's folder mounted read-only
(``compose.yaml``, ``x-client``). An edit to a policy file reaches the next call without
rebuilding an image.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from lab.errors import FaultError, RuntimeUnavailable
from lab.stack.engine import Engine, service_name

CLIENT_SERVICE = "client-adaptive"
"""The container the command runs in: any client would do; this one is always there."""


def run_in_client(argv: Sequence[str], service: str = CLIENT_SERVICE) -> int:
    """``lab ARGV`` in ``service``'s container; its output printed, its exit code returned."""
    import docker.errors

    engine = Engine.connect()
    try:
        found = [c for c in engine.containers(all=False) if service_name(c) == service]
        if not found:
            raise RuntimeUnavailable(
                f"no running {service} container: start the lab with `lab up` "
                "(or use --runtime local)"
            )
        try:
            code, output = found[0].exec_run(["lab", *argv], demux=True)
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(f"cannot run in {service}: {exc}") from exc
    finally:
        engine.close()
    out, err = output if isinstance(output, tuple) else (output, None)
    if out:
        sys.stdout.write(out.decode(errors="replace"))
    if err:
        sys.stderr.write(err.decode(errors="replace"))
    return int(code or 0)


def run_in_swarm_client(argv: Sequence[str], service: str = CLIENT_SERVICE) -> int:
    """``lab ARGV`` in ``service``'s task on the swarm, on the node that runs it (the
    workers are reachable only over the stack's overlay); output printed, code returned."""
    from lab.scenario.runtime.swarm import SwarmRuntime  # why: docker-py, only when asked

    runtime = SwarmRuntime.connect()
    try:
        code, output = runtime.exec_in(service, ["lab", *argv])
    except FaultError as exc:
        raise RuntimeUnavailable(f"cannot run in {service}: {exc}") from exc
    finally:
        runtime.close()
    sys.stdout.write(output)
    return code
