"""One host-side build step (debootstrap, ``go install``, pip) with its output in a log file.

Why a module of its own: the offline base, the Toxiproxy binaries, the wheelhouses and
the netfault helper all run host commands the same way: output appended to
``.cache/logs/<name>``, a failure raised as one sentence with the log's last lines, and
the time each step took logged.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from lab.errors import RuntimeUnavailable

Log = Callable[[str], None]


class BuildSteps:
    """Runs host build steps, each logged to a file under ``logs`` and timed in ``log``."""

    def __init__(self, logs: Path, log: Log = print) -> None:
        self.logs = logs
        self.log = log
        logs.mkdir(parents=True, exist_ok=True)

    def run(
        self, argv: list[str], what: str, logname: str, env: dict[str, str] | None = None
    ) -> None:
        """Run a build step with its output appended to <logs>/<logname>."""
        log = self.logs / logname
        t0 = time.monotonic()
        with log.open("a") as fh:
            fh.write(f"\n$ {' '.join(argv)}\n")
            fh.flush()
            try:
                proc = subprocess.run(
                    argv,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    check=False,
                )
            except OSError as exc:
                raise RuntimeUnavailable(f"{what}: cannot run {argv[0]}: {exc}") from exc
        if proc.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-8:])
            raise RuntimeUnavailable(f"{what} failed (exit {proc.returncode}; log {log}):\n{tail}")
        self.log(f"images: {what} done in {time.monotonic() - t0:.1f}s")
