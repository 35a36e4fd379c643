# shellcheck shell=bash
# Shell functions shared by tuplekv's scripts; source it, do not run it:
#   . "$ROOT/deploy/lib.sh"
# Users: deploy/install-deps.sh (the backports entry), bench/compare.sh
# (a private deb-src entry for etcd's source package).

# Print the URI of the machine's Debian archive entry (deb822 or one-line
# form), skipping the security archive; nothing when there is none. The
# scripts derive their extra apt entries from it, so that no mirror host is
# ever hard-coded.
debian_uri() {
    local f uri=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' "$f" |
              grep -v -- '-security' | grep -m1 '/debian' || true)
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f" |
              grep -v -- '-security' | grep -m1 '/debian' || true)
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
}
