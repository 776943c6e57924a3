"""Content-keyed images for the lab, from a registry or built offline: one design, two sources.

Where a registry answers, the bases are upstream: ``python:3.12-slim`` and
``ghcr.io/shopify/toxiproxy:2.12.0``. Where none does (this lab's CI machines), the same
roles are filled by images built here: a Debian bookworm ``debootstrap --variant=minbase``
tree with Debian's python3 (``images/base/build-offline-base.sh``, mirror read from apt's
own configuration), and Toxiproxy 2.12.0 compiled with ``go install`` into a FROM-scratch
image laid out like upstream. compose.yaml only sees the variables of :class:`ImageSet`.

Every built image is tagged with a hash of what went into it (Dockerfile, scripts, the
project's sources and dependency list, the base image's id), so a warm ``lab up`` finds every
tag present and builds nothing. The services image installs from a wheelhouse prepared on
the host for the *base's* Python version (3.12 upstream, 3.11 offline), so its build never
needs a package index.

This module decides the source and finds or builds each image; what goes into them lives
beside it: the content keys (``image_keys``), the wheelhouses (``wheelhouse``), the
Toxiproxy binaries (``toxiproxy_build``), apt's mirror (``apt_mirror``) and the logged
host steps (``build_steps``).
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from lab.errors import RuntimeUnavailable
from lab.stack.apt_mirror import apt_mirror
from lab.stack.build_steps import BuildSteps
from lab.stack.engine import Engine, Paths
from lab.stack.image_keys import file_digest, package_files
from lab.stack.toxiproxy_build import TOXIPROXY_VERSION, go_install
from lab.stack.wheelhouse import Wheelhouse

UPSTREAM_PYTHON = "python:3.12-slim"
UPSTREAM_TOXIPROXY = "ghcr.io/shopify/toxiproxy:2.12.0"
SERVICES_REPO = "grenache-lab/services"
BASE_REPO = "grenache-lab/base"
TOXIPROXY_REPO = "grenache-lab/toxiproxy"
NETFAULT_REPO = "grenache-lab/netfault"
SOURCES = ("auto", "upstream", "offline")

Log = Callable[[str], None]


@dataclass(frozen=True)
class ImageSet:
    """The images one run of the lab uses; ``env()`` is what compose.yaml interpolates."""

    source: str  # upstream | offline | custom
    python_base: str
    toxiproxy: str
    services: str
    netfault: str = ""  # the network-fault helper ("": could not be built here)

    def env(self) -> dict[str, str]:
        out = {
            "LAB_IMAGE_SOURCE": self.source,
            "LAB_PYTHON_BASE": self.python_base,
            "LAB_TOXIPROXY_IMAGE": self.toxiproxy,
            "LAB_SERVICES_IMAGE": self.services,
        }
        if self.netfault:
            out["LAB_NETFAULT_IMAGE"] = self.netfault
        return out


class Builder:
    """Finds or builds every image of :class:`ImageSet`; each step logs what it did and how long."""

    def __init__(self, engine: Engine, log: Log = print) -> None:
        self.engine = engine
        self.client: Any = engine.client
        self.paths: Paths = engine.paths
        self.log = log
        self.cache = self.paths.cache
        self.steps = BuildSteps(self.cache / "logs", log)
        self.wheelhouse = Wheelhouse(self.steps, self.paths.root, self.cache)

    # -- entry point -------------------------------------------------------------------
    def ensure(
        self,
        source: str = "auto",
        python_base: str | None = None,
        toxiproxy: str | None = None,
        mirror: str | None = None,
    ) -> ImageSet:
        """Decide the source, then make sure every image exists locally; returns their names."""
        if source not in SOURCES:
            raise RuntimeUnavailable(f"image source {source!r} is not one of {', '.join(SOURCES)}")
        if source == "auto":
            source = self._detect(python_base, toxiproxy)
        if source == "upstream":
            base = python_base or self._pull(UPSTREAM_PYTHON)
            toxi = toxiproxy or self._pull(UPSTREAM_TOXIPROXY)
        else:
            base = python_base or self._offline_base(mirror)
            toxi = toxiproxy or self._offline_toxiproxy()
        for ref in (base, toxi):
            if not self.exists(ref):
                self._pull(ref)
        if python_base or toxiproxy:
            source = "custom" if (python_base and toxiproxy) else source
        services = self._services(base)
        netfault = self._netfault_or_none(mirror)
        return ImageSet(
            source=source, python_base=base, toxiproxy=toxi, services=services, netfault=netfault
        )

    def exists(self, ref: str) -> bool:
        try:
            self.client.images.get(ref)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(f"cannot inspect image {ref}: {exc}") from exc
        return True

    # -- source detection ---------------------------------------------------------------
    def _detect(self, python_base: str | None, toxiproxy: str | None) -> str:
        """Upstream images already here win; built offline images next; then ask a registry."""
        if self.exists(python_base or UPSTREAM_PYTHON) and self.exists(
            toxiproxy or UPSTREAM_TOXIPROXY
        ):
            return "upstream"
        if self.exists(self._base_tag()) and self.exists(self._toxiproxy_tag()):
            return "offline"
        t0 = time.monotonic()
        answered = self.registry_answers(UPSTREAM_PYTHON)
        self.log(
            f"images: registry for {UPSTREAM_PYTHON} "
            f"{'answers' if answered else 'does not answer'} ({time.monotonic() - t0:.1f}s): "
            f"using {'upstream' if answered else 'offline-built'} bases"
        )
        return "upstream" if answered else "offline"

    def registry_answers(self, ref: str, timeout: float = 15.0) -> bool:
        """True when the engine can resolve ``ref`` in its registry within ``timeout``."""
        try:
            probe = docker.from_env(timeout=int(timeout))
            try:
                probe.api.inspect_distribution(ref)
            finally:
                probe.close()
        except (docker.errors.DockerException, OSError):  # DNS, TLS, timeout, auth: no
            return False
        return True

    def _pull(self, ref: str) -> str:
        if self.exists(ref):
            return ref
        t0 = time.monotonic()
        self.log(f"images: pulling {ref}")
        repo, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "latest")
        try:
            self.client.images.pull(repo, tag=tag)
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(
                f"cannot pull {ref} ({str(exc).splitlines()[0][:160]}): check the registry, "
                f"or run with LAB_IMAGE_SOURCE=offline to build the bases here"
            ) from exc
        self.log(f"images: pulled {ref} in {time.monotonic() - t0:.1f}s")
        return ref

    # -- offline base -------------------------------------------------------------------
    def _base_tag(self) -> str:
        script = self.paths.images / "base" / "build-offline-base.sh"
        return f"{BASE_REPO}:bookworm-{file_digest([script], self.paths.root)}"

    def _offline_base(self, mirror: str | None) -> str:
        tag = self._base_tag()
        if self.exists(tag):
            return tag
        mirror = mirror or apt_mirror()
        script = self.paths.images / "base" / "build-offline-base.sh"
        self.log(f"images: building the offline base {tag} with debootstrap from {mirror}")
        self.steps.run([str(script), mirror, tag], "offline base", "base-build.log")
        return tag

    # -- Toxiproxy -----------------------------------------------------------------------
    def _toxiproxy_tag(self) -> str:
        dockerfile = self.paths.images / "toxiproxy" / "Dockerfile"
        key = file_digest([dockerfile], self.paths.root, [TOXIPROXY_VERSION, platform.machine()])
        return f"{TOXIPROXY_REPO}:{TOXIPROXY_VERSION}-{key}"

    def _offline_toxiproxy(self) -> str:
        tag = self._toxiproxy_tag()
        if self.exists(tag):
            return tag
        binary = self.toxiproxy_binary()
        ctx = self.cache / "build" / "toxiproxy"
        shutil.rmtree(ctx, ignore_errors=True)
        ctx.mkdir(parents=True)
        shutil.copy2(self.paths.images / "toxiproxy" / "Dockerfile", ctx / "Dockerfile")
        shutil.copy2(binary, ctx / "toxiproxy")
        shutil.copy2(self.toxiproxy_cli_binary(), ctx / "toxiproxy-cli")
        self._build(ctx, tag, {}, "toxiproxy-build.log")
        return tag

    def toxiproxy_binary(self) -> Path:
        """Toxiproxy's server, built once with the Go toolchain (static, version stamped).

        Also what the local runtime and the tests run (``lab.loadgen.local_cluster``
        finds it in ``.cache/toxiproxy``), so ``lab up --images-only`` makes sure of it
        even when the Toxiproxy image already exists.
        """
        return go_install(self.steps, self.cache, "server", "toxiproxy")

    def toxiproxy_cli_binary(self) -> Path:
        """Toxiproxy's CLI: the image's healthcheck (``FROM scratch`` has no shell or curl;
        upstream's image ships the CLI at the same path)."""
        return go_install(self.steps, self.cache, "cli", "toxiproxy-cli")

    # -- the network-fault helper -----------------------------------------------------
    def _netfault_or_none(self, mirror: str | None) -> str:
        """The helper image's tag, or "" (logged) when it cannot be built: the lab runs
        without it, and only the network-namespace faults refuse, naming the cause."""
        try:
            return self._netfault(mirror)
        except RuntimeUnavailable as exc:
            self.log(f"images: no netfault helper image (network-namespace faults off): {exc}")
            return ""

    def _netfault(self, mirror: str | None) -> str:
        here = self.paths.images / "netfault"
        script = here / "build-netfault-image.sh"
        agent = self.paths.root / "lab" / "netfault" / "agent.py"
        reqs = here / "requirements.txt"
        key = file_digest([script, agent, reqs], self.paths.root, [platform.machine()])
        tag = f"{NETFAULT_REPO}:{key}"
        if not self.exists(tag):
            wheels = self.wheelhouse.for_netfault(reqs)
            mirror = mirror or apt_mirror()
            self.log(f"images: building the netfault helper {tag} with debootstrap from {mirror}")
            self.steps.run(
                [str(script), mirror, tag, str(agent), str(wheels)],
                "netfault helper",
                "netfault-build.log",
            )
            self._prune(NETFAULT_REPO, keep=tag)
        self.client.images.get(tag).tag(NETFAULT_REPO, "latest")
        return tag

    # -- the services image -----------------------------------------------------------
    def _services(self, base: str) -> str:
        base_id = str(self.client.images.get(base).id)
        here = self.paths.images / "services"
        key = file_digest(
            [here / "Dockerfile", *package_files(self.paths.root)],
            self.paths.root,
            [base_id],
        )
        tag = f"{SERVICES_REPO}:{key}"
        if not self.exists(tag):
            pyver = self.python_version(base)
            wheels = self.wheelhouse.for_services(pyver)
            ctx = self.cache / "build" / "services"
            shutil.rmtree(ctx, ignore_errors=True)
            (ctx / "wheels").mkdir(parents=True)
            shutil.copy2(here / "Dockerfile", ctx / "Dockerfile")
            for whl in wheels.glob("*.whl"):
                os.link(whl, ctx / "wheels" / whl.name)
            self.wheelhouse.project_wheel(ctx / "wheels")
            self._build(ctx, tag, {"LAB_PYTHON_BASE": base}, "services-build.log")
            self._prune(SERVICES_REPO, keep=tag)
        self.client.images.get(tag).tag(SERVICES_REPO, "latest")
        return tag

    def python_version(self, base: str) -> str:
        """``3.12``: the base image's own Python, cached per image id (one short container)."""
        image_id = str(self.client.images.get(base).id).split(":")[-1][:16]
        stamp = self.cache / "images" / f"python-{image_id}"
        if stamp.is_file():
            return stamp.read_text().strip()
        try:
            out = self.client.containers.run(
                base,
                ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                remove=True,
                network_disabled=True,
            )
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(f"{base} has no working python3: {exc}") from exc
        version = bytes(out).decode().strip()
        if not re.fullmatch(r"3\.\d+", version):
            raise RuntimeUnavailable(f"{base}: unexpected python3 version output {version!r}")
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(version)
        return version

    # -- helpers ----------------------------------------------------------------------
    def _build(self, ctx: Path, tag: str, buildargs: dict[str, str], logname: str) -> None:
        t0 = time.monotonic()
        self.log(f"images: building {tag}")
        log = self.cache / "logs" / logname
        try:
            _, stream = self.client.images.build(
                path=str(ctx), tag=tag, buildargs=buildargs, rm=True, forcerm=True, pull=False
            )
            log.write_text("".join(str(chunk.get("stream", "")) for chunk in stream))
        except docker.errors.BuildError as exc:
            text = "".join(str(c.get("stream", "") or c.get("error", "")) for c in exc.build_log)
            log.write_text(text)
            tail = "\n".join(text.strip().splitlines()[-8:])
            raise RuntimeUnavailable(
                f"building {tag} failed: {exc.msg} (full log {log}):\n{tail}"
            ) from exc
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(f"building {tag} failed: {exc}") from exc
        self.log(f"images: built {tag} in {time.monotonic() - t0:.1f}s")

    def _prune(self, repo: str, keep: str) -> None:
        """Drop older content-keyed tags of ``repo`` and the dangling build stages.

        Best effort: an image a container still uses stays until that container is gone.
        """
        for image in self.client.images.list(name=repo):
            for t in image.tags:
                if t != keep and not t.endswith(":latest"):
                    with contextlib.suppress(docker.errors.DockerException):
                        self.client.images.remove(t, noprune=False)
        with contextlib.suppress(docker.errors.DockerException):
            self.client.images.prune(filters={"dangling": True, "label": "com.grenache-lab.image"})
