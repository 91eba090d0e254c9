#!/usr/bin/env bash
# Build the local Python base image from Debian packages (no container registry needed).
#
# The offline stand-in for `python:3.11-slim-bookworm`: debootstrap lays a minimal bookworm root
# file system holding Debian's Python 3.11 with venv support (`python` is `python3`), the CA
# bundle and the user tools the Dockerfile calls, and nothing else (no compilers, no apt
# lists, caches, documentation or locales). The tree is written as a normalised tar (sorted
# names, numeric owners, every mtime set to SOURCE_DATE_EPOCH, hash-based .pyc files), so the
# same packages give the same layer, and `podman import` (or `docker import`) tags it.
#
# Usage: scripts/base-image.sh IMAGE:TAG
#
# Environment:
#   ENGINE             podman or docker (default: podman)
#   BASE_SUITE         Debian suite (default: bookworm)
#   BASE_MIRROR        Debian mirror (default: http://deb.debian.org/debian)
#   BASE_PACKAGES      packages added to debootstrap's minbase variant
#   SOURCE_DATE_EPOCH  the one timestamp written into the tree (default: 2025-01-01)
#   BASE_WORKDIR       scratch directory (default: a new one under /var/tmp)
set -euo pipefail

tag=${1:?usage: base-image.sh IMAGE:TAG}
engine=${ENGINE:-podman}
suite=${BASE_SUITE:-bookworm}
mirror=${BASE_MIRROR:-http://deb.debian.org/debian}
packages=${BASE_PACKAGES:-python3.11 python3.11-venv python3-distutils python-is-python3 ca-certificates netbase passwd}
epoch=${SOURCE_DATE_EPOCH:-1735689600}
export SOURCE_DATE_EPOCH=$epoch

if [ "$(id -u)" -ne 0 ]; then
    echo "base-image: debootstrap needs root" >&2
    exit 1
fi
command -v debootstrap >/dev/null || { echo "base-image: debootstrap not found (apt-get install debootstrap)" >&2; exit 1; }

work=${BASE_WORKDIR:-$(mktemp -d /var/tmp/ml-service-base.XXXXXX)}
root=$work/rootfs
cleanup() {
    for fs in "$root/proc" "$root/sys" "$root/dev/pts"; do
        mountpoint -q "$fs" && umount -l "$fs"
    done
    rm -rf "$work"
}
trap cleanup EXIT

echo "base-image: debootstrap $suite (minbase + ${packages// /, }) from $mirror" >&2
debootstrap --variant=minbase --include="${packages// /,}" --components=main \
    "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 40 "$work/debootstrap.log" >&2
    exit 1
}

# The package list the image was made from, kept in the image itself.
# shellcheck disable=SC2016  # dpkg-query's own ${...} fields
chroot "$root" dpkg-query -W -f '${Package}=${Version}\n' | LC_ALL=C sort >"$work/packages.txt"
install -D -m 0644 "$work/packages.txt" "$root/usr/share/ml-service-base/packages.txt"

# Only what a container runs: no package indexes, caches, logs, docs, man pages or locales.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/var/lib/dpkg/*-old "$root"/var/log/* "$root"/var/cache/ldconfig/aux-cache \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/usr/share/lintian "$root"/tmp/* "$root"/root/.cache
# The engine mounts its own hostname, resolver and hosts files over these, and links /etc/mtab
# where it is missing: they exist, so that starting a container changes nothing in its root
# file system, and they hold nothing of this host.
: >"$root/etc/machine-id"
: >"$root/etc/hostname"
: >"$root/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
ln -sfn ../proc/self/mounts "$root/etc/mtab"
# Installs need no interaction and no recommended extras, as in the official images.
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$root/etc/apt/apt.conf.d/90-no-recommends"
# A fresh interpreter writes no byte code into the image; the standard library's is compiled
# once here, hash-based, so it is the same on every build and valid whatever the mtimes.
find "$root/usr/lib/python3" "$root/usr/lib/python3.11" -name __pycache__ -type d -prune -exec rm -rf {} +
chroot "$root" python3 -m compileall -q --invalidation-mode unchecked-hash \
    /usr/lib/python3.11 /usr/lib/python3/dist-packages >/dev/null

tar --create --file "$work/rootfs.tar" --directory "$root" \
    --sort=name --numeric-owner --xattrs --mtime="@$epoch" --clamp-mtime \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    --exclude=./proc/* --exclude=./sys/* --exclude=./dev/* .
echo "base-image: root file system $(du -m "$work/rootfs.tar" | cut -f1) MB, sha256 $(sha256sum "$work/rootfs.tar" | cut -c1-16)" >&2

"$engine" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --message "debootstrap $suite minbase + $packages" \
    "$work/rootfs.tar" "$tag" >/dev/null
echo "base-image: tagged $tag" >&2
