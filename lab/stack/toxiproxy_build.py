"""Toxiproxy's binaries built from source with the Go toolchain, for where no registry answers.

Why a module of its own: the offline Toxiproxy image, the local runtime and the tests all
run the same static, version-stamped binaries, cached per version and architecture under
``.cache/toxiproxy``; building them needs Go and nothing else of the image builds.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

from lab.errors import RuntimeUnavailable
from lab.stack.build_steps import BuildSteps

TOXIPROXY_VERSION = "2.12.0"
TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2"


def go_install(steps: BuildSteps, cache: Path, command: str, name: str) -> Path:
    """``cmd/<command>`` of Toxiproxy as ``<cache>/toxiproxy/<version>/<arch>/<name>``.

    Built once: a binary already there is returned as it is.
    """
    out = cache / "toxiproxy" / TOXIPROXY_VERSION / platform.machine()
    binary = out / name
    if binary.is_file():
        return binary
    go = shutil.which("go") or next(
        (p for p in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go") if os.access(p, os.X_OK)),
        None,
    )
    if go is None:
        raise RuntimeUnavailable(
            "Toxiproxy must be built here (no registry) but there is no Go toolchain: "
            "install Go >= 1.22 (https://go.dev/dl) "
            "or set LAB_TOXIPROXY_IMAGE to an image you have"
        )
    gobin = out / "gobin"
    gobin.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(gobin), "CGO_ENABLED": "0"}
    steps.log(f"images: building Toxiproxy {TOXIPROXY_VERSION} {command} with {go}")
    steps.run(
        [
            go,
            "install",
            "-trimpath",
            "-ldflags",
            f"-s -w -X {TOXIPROXY_MODULE}.Version={TOXIPROXY_VERSION}",
            f"{TOXIPROXY_MODULE}/cmd/{command}@v{TOXIPROXY_VERSION}",
        ],
        f"Toxiproxy {command} build",
        f"toxiproxy-go-{command}.log",
        env=env,
    )
    (gobin / command).replace(binary)
    return binary
