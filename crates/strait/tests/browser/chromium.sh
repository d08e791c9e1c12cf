#!/usr/bin/env bash
# Headless Chromium for the dashboard test (crates/strait/tests/dashboard.rs).
#
#   chromium.sh install            install Debian's chromium if /usr/bin/chromium is missing
#   chromium.sh ARGS... URL        run it headless with the flags this machine needs, in a fresh
#                                  profile, e.g. `--virtual-time-budget=8000 --dump-dom URL`
#
# Installing needs root (apt-get). If chromium cannot be installed, exits 3 with one message.
set -euo pipefail

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

install() {
    [ -x "$CHROMIUM" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "chromium.sh: $CHROMIUM is missing and this is not root: run 'apt-get install -y chromium' as root" >&2
        exit 3
    fi
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get -y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0)
    echo "chromium.sh: installing Debian's chromium (once)" >&2
    if ! "${apt[@]}" install chromium >&2; then
        "${apt[@]}" update >&2 || true
        "${apt[@]}" install chromium >&2 || true
    fi
    if [ ! -x "$CHROMIUM" ]; then
        echo "chromium.sh: cannot install chromium with apt-get (see above); the dashboard test needs $CHROMIUM" >&2
        exit 3
    fi
}

if [ "${1:-}" = install ]; then
    install
    exit 0
fi

install
profile=$(mktemp -d "${TMPDIR:-/tmp}/strait-chromium.XXXXXX")
trap 'rm -rf "$profile"' EXIT
# Chromium's own chatter (dbus, GPU, ...) goes to stderr; callers read stdout.
"$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --hide-scrollbars --user-data-dir="$profile" "$@"
