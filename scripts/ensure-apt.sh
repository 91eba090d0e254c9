#!/usr/bin/env bash
# Install the named Debian packages when their commands are missing.
# Usage: scripts/ensure-apt.sh COMMAND[=PACKAGE] ...   (e.g. chromium wrk cloud-init=cloud-init)
set -euo pipefail

missing=()
for spec in "$@"; do
    cmd=${spec%%=*}
    pkg=${spec#*=}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    sudo=sudo
else
    sudo=
fi
echo "ensure-apt: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
