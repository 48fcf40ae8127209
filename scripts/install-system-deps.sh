#!/usr/bin/env bash
# The system programs the tests start for themselves: the Mosquitto broker and
# its clients (mosquitto_pub), PostgreSQL's server binaries (initdb, postgres:
# the journal's tests start a server of their own), and Chromium for the
# dashboard's browser test (driven by Playwright; its own browser download is not used). Installed from Debian's packages when missing and
# this user can install packages; otherwise says what to install and carries on
# (the tests that need a program fail with the same advice).
set -euo pipefail

missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
    || missing+=(postgresql)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "warning: ${missing[*]} missing and this user cannot install packages;" \
        "install them with: sudo apt-get install ${missing[*]}" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "warning: ${missing[*]} missing and apt-get is not available; install them" \
        "with your system's package manager" >&2
    exit 0
fi

echo "installing ${missing[*]} from the system's packages"
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"
