#!/usr/bin/env bash
# Build the network-fault helper image offline: Debian bookworm minbase + python3, iptables
# (nf_tables backend: it needs CAP_NET_ADMIN only, no CAP_NET_RAW) and iproute2 (tc), the
# NFQUEUE binding's wheels unpacked into the system Python, and the agent
# (lab/netfault/agent.py) as /usr/local/bin/lab-netfault. Imported into Docker as a plain
# image, like the offline base (images/base/build-offline-base.sh): no registry needed.
#
#   build-netfault-image.sh MIRROR_URL IMAGE_TAG AGENT_PY WHEEL_DIR [SUITE]
#
# WHEEL_DIR holds the binary wheels for the image's Python (bookworm: 3.11), prepared on the
# host by `lab up` (lab/stack/wheelhouse.py). Needs root (debootstrap chroots).
set -euo pipefail

usage="usage: build-netfault-image.sh MIRROR_URL IMAGE_TAG AGENT_PY WHEEL_DIR [SUITE]"
mirror=${1:?$usage}
tag=${2:?$usage}
agent=${3:?$usage}
wheels=${4:?$usage}
suite=${5:-bookworm}

if [ "$(id -u)" != 0 ]; then
    echo "build-netfault-image: debootstrap needs root" >&2
    exit 2
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    echo "build-netfault-image: installing debootstrap with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/lab-netfault.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"

debootstrap --variant=minbase --include=python3,iptables,iproute2 "$suite" "$root" "$mirror" >&2

# The wheels are plain zip archives of importable trees: unpacked where Debian's python3
# looks, the image needs no pip.
pyver=$(chroot "$root" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
site="$root/usr/local/lib/python${pyver}/dist-packages"
mkdir -p "$site"
for whl in "$wheels"/*.whl; do
    python3 -m zipfile -e "$whl" "$site"
done
chroot "$root" python3 -c 'import fnfqueue' >&2

install -m 0755 "$agent" "$root/usr/local/bin/lab-netfault"
# iptables-nft talks netlink (CAP_NET_ADMIN); the legacy backend would need CAP_NET_RAW.
chroot "$root" update-alternatives --set iptables /usr/sbin/iptables-nft >&2

rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
       "$root"/usr/share/locale/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old

tar --numeric-owner -C "$root" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
    --change 'LABEL com.grenache-lab.image=netfault' \
    --change 'ENTRYPOINT ["/usr/local/bin/lab-netfault"]' \
    --message "grenache-lab netfault helper: debootstrap --variant=minbase $suite + iptables, iproute2, python3" \
    - "$tag" >/dev/null
echo "$tag"
