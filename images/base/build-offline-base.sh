#!/usr/bin/env bash
# Build the offline Python base image: Debian bookworm minbase + Debian's python3, imported
# into Docker as a plain image. Used where no container registry answers (python:3.12-slim
# cannot be pulled); `lab up` calls it with the mirror it read from apt's own configuration,
# so no mirror host is ever written into the repository.
#
#   build-offline-base.sh MIRROR_URL IMAGE_TAG [SUITE]
#
# Needs root (debootstrap chroots). Installs debootstrap with apt-get when it is missing.
set -euo pipefail

mirror=${1:?usage: build-offline-base.sh MIRROR_URL IMAGE_TAG [SUITE]}
tag=${2:?usage: build-offline-base.sh MIRROR_URL IMAGE_TAG [SUITE]}
suite=${3:-bookworm}

if [ "$(id -u)" != 0 ]; then
    echo "build-offline-base: debootstrap needs root; run as root or set LAB_PYTHON_BASE to an image you have" >&2
    exit 2
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    echo "build-offline-base: installing debootstrap with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/lab-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"

# python3-venv brings ensurepip (a bundled pip wheel), all the image build needs to install
# the project's wheelhouse into a venv; nothing else beyond minbase.
debootstrap --variant=minbase --include=python3,python3-venv "$suite" "$root" "$mirror" >&2

# Trim what a runtime image never reads: package caches and lists, docs, man pages, locales.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
       "$root"/usr/share/locale/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old

tar --numeric-owner -C "$root" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    --message "grenache-lab offline base: debootstrap --variant=minbase $suite + python3" \
    - "$tag" >/dev/null
echo "$tag"
