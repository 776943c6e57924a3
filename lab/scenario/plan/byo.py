"""A learner's policy on the Compose lab: which references a Compose scenario may name.

On the local runtime a policy file is read by client processes that share ``lab run``'s
working directory, so any path works. A Compose client sees one folder of the host: the
repository's ``policies/``, bind-mounted read-only at ``policies/`` of its working
directory (compose.yaml, ``x-client``). So on Compose the reference must be written
``policies/<file>.py:<Class>``, is read relative to the repository (the folder that is
mounted, whatever directory ``lab run`` started in), and must stay inside ``policies/``
once symlinks are followed (a link out of it points at nothing in the container). The
text as written is what the client container is given, so the client's records, the
report's rows and the expectations all carry that one name.

One learner's policy per Compose run: it runs in the lab's one ``client-byo`` service
(profile ``byo``), started for the run and removed after it (lab/stack/shape.py). Why not
several: every extra client is another loaded process on the lab's 2 cores and another
published port, and comparing two of one's own policies side by side is what the local
runtime does well (each client there is a process of its own). The mirror of this name
is lab/stack/shape.py ``BYO_SERVICE`` (not imported: validation needs no Docker SDK).

Pure: no Docker, no import of the learner's code (:func:`lab.balancer.policy_file.check_policy_ref`
parses it with ``ast``); fast enough for ``lab validate``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from lab.balancer.policy_file import check_policy_ref, parse_policy_ref
from lab.errors import SettingsError

POLICY_DIR = "policies"
"""The repository's folder of learner policies: the only one the Compose clients mount."""
BYO_SERVICE = "client-byo"
"""compose.yaml's service that runs the learner's policy (lab/stack/shape.py BYO_SERVICE)."""


def compose_root(start: Path | None = None) -> Path | None:
    """The repository whose compose.yaml the Compose runtime uses (lab.stack.engine.Paths).

    This package's own source tree when it holds compose.yaml, else the working directory
    or a parent of it; None when neither does (a wheel run outside the repository).
    """
    candidates = [Path(__file__).resolve().parents[3]]
    here = (start or Path.cwd()).resolve()
    candidates += [here, *here.parents]
    for c in candidates:
        if (c / "compose.yaml").is_file() and (c / POLICY_DIR).is_dir():
            return c
    return None


def check_compose_policy(text: str, root: Path | None) -> str:
    """``text`` when a Compose client can run it; else a SettingsError saying what to write.

    ``root``: the repository (:func:`compose_root`); its ``policies/`` is what is mounted.
    """
    ref = parse_policy_ref(text)
    where = f"policies/{ref.path.name}:{ref.class_name}"
    parts = PurePosixPath(ref.path.as_posix()).parts
    if ref.path.is_absolute() or len(parts) < 2 or parts[0] != POLICY_DIR or ".." in parts:
        raise SettingsError(
            f"policy {text!r}: on the Compose lab a policy file lives in the repository's "
            f"{POLICY_DIR}/ (the only folder its clients mount): copy it there and write "
            f"{where}, or use runtime: local"
        )
    if root is None:
        raise SettingsError(
            f"policy {text!r}: cannot find the lab's repository (compose.yaml and "
            f"{POLICY_DIR}/); run lab from the grenache-lab repository"
        )
    folder = (root / POLICY_DIR).resolve()
    if not (root / ref.path).resolve().is_relative_to(folder):
        raise SettingsError(
            f"policy {text!r}: {ref.path} leads out of {POLICY_DIR}/ (a symlink?); the "
            f"Compose clients see only {POLICY_DIR}/ itself: copy the file there"
        )
    return check_policy_ref(text, base=root).text
