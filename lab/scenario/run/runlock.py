"""One run at a time per lab, and one folder per run.

Why a lock and not the in-flight marker: the marker (``reports/.inflight.json``) is
written at the first fault, so a second ``lab run`` started before it was accepted and
changed the first run's client rates. The lock is taken before anything is touched (the
leftovers cleanup, the run folder, the runtime) and held until the run's process ends.

How: ``fcntl.flock`` on a lock file. The kernel drops the lock when its holder dies,
``kill -9`` included, so a dead run can never block the lab; the file's content (owner's
pid, host, start time, scenario) only says *who* holds it. A file that still names an
owner while its lock is free is a dead run's: :func:`acquire` reports it as stale and
takes over. The file itself is never removed (removing a lock file races with a second
taker that opened the old inode); release empties it.

Which lab: the Compose lab is one per Docker engine whatever checkout or ``--reports``
a run uses, so its lock lives in a per-user state directory; a local run owns its
processes, and what it shares with other runs is the reports directory (marker, folders),
so its lock lives there.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from lab.errors import LabError

LOCK_NAME = ".run.lock"
COMPOSE_LOCK_NAME = "compose-run.lock"
MAX_LOCK_BYTES = 4096
"""A lock file's content is a few hundred bytes; more is not ours and is not read."""


class LabBusy(LabError):
    """Another run holds the lab; the message names it and says what to do."""


@dataclass(frozen=True, slots=True)
class Owner:
    """Who holds (or held) a lab's run lock."""

    pid: int
    host: str
    started_wall: float
    scenario: str = ""
    command: str = ""

    def describe(self, now: float | None = None) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started_wall))
        age = max(0.0, (time.time() if now is None else now) - self.started_wall)
        what = f"scenario {self.scenario} " if self.scenario else ""
        return f"{what}(pid {self.pid} on {self.host}, started {when}, {age:.0f} s ago)"

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        """The owner a lock file names, or None for an empty or foreign file."""
        try:
            data = json.loads(text)
            return cls(
                pid=int(data["pid"]),
                host=str(data["host"]),
                started_wall=float(data["started_wall"]),
                scenario=str(data.get("scenario", "")),
                command=str(data.get("command", "")),
            )
        except (ValueError, TypeError, KeyError):
            return None


def state_dir() -> Path:
    """A directory only this user can write: ``$XDG_RUNTIME_DIR`` or ``/tmp/grenache-lab-UID``.

    Not a bare ``/tmp`` file: another user could plant a symlink or hold the lock there.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "grenache-lab" if runtime else None
    if base is None:
        base = Path(tempfile.gettempdir()) / f"grenache-lab-{os.getuid()}"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = base.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise LabError(f"{base} is not a directory of this user: cannot keep the run lock there")
    if info.st_mode & 0o077:
        base.chmod(0o700)
    return base


def lock_path(runtime: str, reports_dir: Path) -> Path:
    """Where a run on ``runtime`` takes its lock (see the module's docstring)."""
    if runtime == "compose":
        return state_dir() / COMPOSE_LOCK_NAME
    return reports_dir / LOCK_NAME


@dataclass
class RunLock:
    """A held lock; :meth:`release` (or the process's death) frees it."""

    path: Path
    owner: Owner
    stale: Owner | None  # the dead run whose lock this one replaced, if any
    _file: IO[str] | None

    def release(self) -> None:
        f, self._file = self._file, None
        if f is None:
            return
        with contextlib.suppress(OSError):
            f.seek(0)
            f.truncate()
            f.flush()
        f.close()  # closing the descriptor drops the flock


def acquire(path: Path, *, scenario: str = "", command: str = "") -> RunLock:
    """Take the lab's run lock at ``path`` or raise :class:`LabBusy` naming its holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise LabError(f"cannot open the run lock {path}: {exc.strerror}") from None
    f = os.fdopen(fd, "r+", encoding="utf-8")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = Owner.parse(f.read(MAX_LOCK_BYTES))
        f.close()
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise LabError(f"cannot lock {path}: {exc.strerror}") from None
        who = holder.describe() if holder else "(owner unknown: the lock file is empty)"
        stop = f"; wait for it or stop it (kill {holder.pid})" if holder else ""
        raise LabBusy(
            f"another run holds this lab: {who}{stop}. One run at a time: a second run "
            f"would change the first one's load and faults (lock {path})"
        ) from None
    try:
        stale = Owner.parse(f.read(MAX_LOCK_BYTES))
        owner = Owner(os.getpid(), socket.gethostname(), time.time(), scenario, command)
        f.seek(0)
        f.truncate()
        f.write(json.dumps(asdict(owner)))
        f.flush()
    except BaseException:
        f.close()
        raise
    return RunLock(path, owner, stale, f)


def holder(path: Path) -> tuple[Owner | None, bool]:
    """(the owner the file names, whether that owner is alive and holds the lock).

    For ``lab status``: a named owner that does not hold the lock is a dead run's.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None, False
    with os.fdopen(fd, "r", encoding="utf-8") as f:
        owner = Owner.parse(f.read(MAX_LOCK_BYTES))
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return owner, True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return owner, False


@contextlib.contextmanager
def held(path: Path, **owner: Any) -> Iterator[RunLock]:
    """:func:`acquire` for a ``with`` block."""
    lock = acquire(path, **owner)
    try:
        yield lock
    finally:
        lock.release()


# -- run folders ------------------------------------------------------------------------

MAX_COLLISIONS = 100


def run_stamp(wall: float) -> str:
    """``20261202-114003-123``: local time to the millisecond (sorts like the runs)."""
    ms = int((wall % 1.0) * 1000)
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(wall)) + f"-{ms:03d}"


def reserve_run_dir(reports_dir: Path, name: str, wall: float | None = None) -> tuple[str, Path]:
    """A new, empty folder for one run and its id; an existing folder is never reused.

    The id has millisecond resolution, and ``mkdir`` without ``exist_ok`` is the
    collision check: two runs of one scenario in one millisecond get ``...-name`` and
    ``...-name-2``, whatever processes they are in.
    """
    stamp = run_stamp(time.time() if wall is None else wall)
    reports_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1, MAX_COLLISIONS + 1):
        run_id = f"{stamp}-{name}" if n == 1 else f"{stamp}-{name}-{n}"
        run_dir = reports_dir / run_id
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        return run_id, run_dir
    raise LabError(f"{reports_dir}: {MAX_COLLISIONS} runs named {stamp}-{name} exist already")
