#!/usr/bin/env bash
# Install Debian's Chromium for the report's browser test (pytest -m browser), once.
# Idempotent: does nothing when a chromium binary is already on PATH. Needs root on
# Debian/Ubuntu (apt-get); elsewhere it says what to install and exits 2. The test itself
# skips, loudly, when no Chromium is found, so this is the step that makes it run.
set -euo pipefail

say() { echo "ensure_chromium: $*" >&2; }

for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then
        exit 0
    fi
done
if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ] || ! command -v apt-get >/dev/null; then
    say "no Chromium found: install Debian's 'chromium' package (or any Chromium on PATH)"
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
say "installing chromium with apt-get"
apt-get install -y -q --no-install-recommends chromium >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends chromium >&2; }
command -v chromium >/dev/null
