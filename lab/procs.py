"""Lab services as local processes: start, wait until healthy, stop.

Used by the ``local`` runtime of the scenario engine and by integration tests, which
both run real ``lab grape`` / ``lab worker`` / ``lab client`` processes on 127.0.0.x.
Readiness is a poll with a deadline on the service's health endpoint, never a sleep.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lab.errors import RuntimeUnavailable


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port that is free for both TCP and UDP on ``host`` right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, other) as s2:
            try:
                s2.bind((host, port))
            except OSError:
                continue
        return port
    raise RuntimeUnavailable(f"no free port on {host}")


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    interval: float = 0.02,
    what: str = "condition",
) -> None:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass (then TimeoutError)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def http_ok(url: str, timeout: float = 0.5) -> bool:
    """True when ``GET url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user's counts: it exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class ServiceProcess:
    """One ``lab <service>`` (or any) process with its log file."""

    name: str
    argv: Sequence[str]
    health_url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @classmethod
    def lab(cls, name: str, *args: str, **kw: object) -> ServiceProcess:
        """A process running ``python -m lab <args>`` with this interpreter."""
        return cls(name=name, argv=[sys.executable, "-m", "lab", *args], **kw)  # type: ignore[arg-type]

    def start(self, ready_timeout: float = 15.0) -> ServiceProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        out = self._log if self._log is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            list(self.argv), env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        if self.health_url is not None:
            try:
                wait_until(
                    lambda: self.exited() or http_ok(self.health_url or ""),
                    ready_timeout,
                    what=f"{self.name} at {self.health_url}",
                )
            except TimeoutError:
                self.stop()
                raise RuntimeUnavailable(
                    f"{self.name} did not become healthy: {self.tail()}"
                ) from None
            if self.exited():
                raise RuntimeUnavailable(
                    f"{self.name} exited with {self.proc.returncode}: {self.tail()}"
                )
        return self

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._close_log()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL (a crash, as a fault injects it); the log is closed like after stop()."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None
