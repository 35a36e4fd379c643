#!/usr/bin/env bash
# Installs every Debian package tuplekv needs to build, test and run.
#
# Idempotent: when every package is present at a usable version it prints one
# line and changes nothing. libraft-dev must be 0.22 or newer, which on
# bookworm lives in bookworm-backports (bookworm's own 0.15 has known safety
# bugs and corrupts entries whose length is not a multiple of 8). Backports are
# enabled by reusing the URI of the machine's existing Debian source entry, so
# no mirror host is ever hard-coded here.
set -euo pipefail
# debian_uri comes from lib.sh
# shellcheck source=deploy/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

PKGS=(cmake pkg-config make gcc clang libclang-rt-14-dev libuv1-dev
      libmsgpack-dev libjansson-dev libcmocka-dev libraft-dev iproute2
      iptables faketime python3 procps)
RAFT_MIN=0.22

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root or sudo" >&2; exit 1; }
    SUDO="sudo"
fi

have_pkg() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

raft_ok() {
    local v
    v=$(dpkg-query -W -f='${Version}' libraft-dev 2>/dev/null) || return 1
    dpkg --compare-versions "$v" ge "$RAFT_MIN"
}

missing=()
for p in "${PKGS[@]}"; do
    have_pkg "$p" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ] && raft_ok; then
    echo "install-deps: all dependencies present"
    exit 0
fi

. /etc/os-release
codename=${VERSION_CODENAME:-bookworm}

# Add a backports suite with the URI of the existing Debian archive entry.
if [ "$codename" = "bookworm" ] && ! grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    uri=$(debian_uri)
    if [ -z "$uri" ]; then
        echo "install-deps: no Debian source entry found to derive backports from" >&2
        exit 1
    fi
    echo "install-deps: enabling ${codename}-backports from $uri"
    $SUDO tee /etc/apt/sources.list.d/tuplekv-backports.sources >/dev/null <<SRC
Types: deb
URIs: $uri
Suites: ${codename}-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# libraft-dev always comes from backports on bookworm, even when a 0.15 is
# installed already: name the suite so apt picks the maintained line.
pkgs=()
for p in "${missing[@]}"; do
    [ "$p" = libraft-dev ] || pkgs+=("$p")
done
if [ "$codename" = "bookworm" ]; then
    pkgs+=("libraft-dev/${codename}-backports" "libraft0/${codename}-backports")
else
    pkgs+=(libraft-dev)
fi
$SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
raft_ok || { echo "install-deps: libraft-dev >= $RAFT_MIN not available" >&2; exit 1; }
echo "install-deps: installed ${missing[*]}; libraft-dev $(dpkg-query -W -f='${Version}' libraft-dev)"
