#!/bin/sh
# tools/deps.sh [CMD=PKG[,PKG...]] PKG... - install the Debian packages that are missing, quietly.
#
# CMD=PKGS: install PKGS only when no command CMD is on PATH (a machine may
# already have Node.js and npm from elsewhere, which conflict with Debian's npm).
# Idempotent: when everything is present it prints nothing and runs no apt.
# Runs apt-get through sudo when not root. Used by `make deps`.
set -eu
missing=""
for p in "$@"; do
    case "$p" in
    *=*)
        cmd=${p%%=*}
        if ! command -v "$cmd" >/dev/null 2>&1; then
            missing="$missing $(echo "${p#*=}" | tr ',' ' ')"
        fi
        continue
        ;;
    esac
    st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    case "$st" in
    ii*) ;;
    *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists once, when they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n 1)" ]; then
    $SUDO apt-get update -qq
fi
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
