"""The Compose lab's gossip key: made by ``lab up``, handed to the clients, gone at ``lab down``.

Clients accept peer-health hints only when sealed with this key
(:mod:`lab.balancer.gossip`), so a process that can reach the lab's network but was not
started by this lab cannot forge hints. The key lives in ``.cache/gossip.key`` (mode
0600, owner only) and reaches the containers as ``LAB_GOSSIP_KEY`` in Compose's
environment, which compose.yaml passes to each client as ``LAB_CLIENT_GOSSIP_KEY``
(``docker inspect`` shows it, but whoever can run that owns the engine anyway).

One key per lab, not per ``lab up``: a second ``lab up`` on a running lab reuses the
file, so Compose sees no change and recreates no client under someone's run;
``lab down`` deletes it, so the next lab gets a new key.
"""

from __future__ import annotations

import contextlib
import os
import secrets

from lab.stack.engine import Paths

ENV = "LAB_GOSSIP_KEY"


def ensure(paths: Paths) -> dict[str, str]:
    """``{LAB_GOSSIP_KEY: key}``, making the key file (0600) when there is none."""
    path = paths.cache / "gossip.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    key = path.read_text().strip()
    if len(key) < 32:  # truncated or edited by hand: replace it rather than run weak
        path.unlink()
        return ensure(paths)
    return {ENV: key}


def forget(paths: Paths) -> None:
    """Delete the key (``lab down``): the next lab gets a new one."""
    with contextlib.suppress(FileNotFoundError):
        (paths.cache / "gossip.key").unlink()
