#!/usr/bin/env bash
# Build the root file system of one Debian suite with Debian's own glance-api,
# for tests/test_debian_glance.py:
#   bash tests/debian/chroot.sh SUITE [DIR]     (SUITE: bookworm, trixie, sid)
# DIR defaults to .cache/debian/SUITE under the checkout (gitignored). A tree
# whose .complete stamp matches this script's content is kept as it is; anything
# else there is removed and built again from Debian's archive: debootstrap
# --variant=minbase, then apt-get install glance-api and what the tests use,
# with a policy-rc.d so that nothing starts. EXTRAS, packages the tests came to
# need later, are added to a kept tree by apt-get (stamped in .extras), so a
# developer's cache grows in a minute instead of being built again. The host's / is never written:
# every command runs in the chroot, inside a private mount namespace (unshare
# -m), so /proc and /dev are mounted there only and vanish with it.
# The probe itself is installed later, by the tests, from the checkout.
set -euo pipefail
cd "$(dirname "$0")/../.."

SUITE=${1:?usage: chroot.sh SUITE [DIR]}
DIR=${2:-$PWD/.cache/debian/$SUITE}
# The archive apt uses on this host (its first deb.debian.org-like URI), so
# debootstrap reaches it the way apt does.
MIRROR=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PACKAGES=(glance-api python3-xattr qemu-utils python3-venv uwsgi-plugin-python3 uwsgi-core
          ca-certificates procps)
# What the tree is made of: a change here builds it again.
STAMP="1 $SUITE ${PACKAGES[*]} $MIRROR"
# Debian's Ceph bindings and client (/etc/ceph, ceph-authtool) for the rbd
# store's tests: installed on top of a kept tree, or with PACKAGES when cold.
EXTRAS=(python3-rbd python3-rados ceph-common)

if [ "$(id -u)" != 0 ]; then
  echo "tests/debian/chroot.sh: building a chroot needs root" >&2
  exit 1
fi

# Every command inside the tree: a private mount namespace with /proc, /dev and
# a tmpfs /run, Debian's frontend, and a minimal environment.
in_tree() {  # SCRIPT
  # shellcheck disable=SC2016
  unshare -m sh -ec '
mount --make-rprivate /
mount -t proc proc "$1/proc"
mount --rbind /dev "$1/dev"
mount -t tmpfs tmpfs "$1/run"
shift
exec chroot "$@"' sh "$DIR" "$DIR" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive sh -ec "$1" >>"$DIR.log" 2>&1 || {
    tail -30 "$DIR.log" >&2
    exit 1
  }
}
INSTALL='apt-get -q -o Acquire::Check-Valid-Until=false update
apt-get install -y -q --no-install-recommends'

if [ -f "$DIR/.complete" ] && [ "$(cat "$DIR/.complete")" = "$STAMP" ]; then
  if [ -f "$DIR/.extras" ] && [ "$(cat "$DIR/.extras")" = "${EXTRAS[*]}" ]; then
    echo "== $SUITE: cached in $DIR"
    exit 0
  fi
  start=$SECONDS
  # The host's resolver may have changed since the tree was built.
  rm -f "$DIR/etc/resolv.conf"
  install -m 0644 /etc/resolv.conf "$DIR/etc/resolv.conf"
  in_tree "$INSTALL ${EXTRAS[*]}
apt-get clean"
  printf '%s\n' "${EXTRAS[*]}" >"$DIR/.extras"
  echo "== $SUITE: cached in $DIR, ${EXTRAS[*]} added in $((SECONDS - start)) s"
  exit 0
fi
DEBOOTSTRAP=${DEBOOTSTRAP:-$(command -v debootstrap || true)}
if [ -z "$DEBOOTSTRAP" ]; then
  echo "tests/debian/chroot.sh: debootstrap is missing (bindep.txt)" >&2
  exit 1
fi

start=$SECONDS
# rm --one-file-system: a mount left inside (none should be) is not crossed;
# rm never follows symlinks, so nothing outside DIR is removed.
rm -rf --one-file-system "$DIR"
mkdir -p "$(dirname "$DIR")"
"$DEBOOTSTRAP" --variant=minbase "$SUITE" "$DIR" "$MIRROR" >"$DIR.log" 2>&1 || {
  tail -20 "$DIR.log" >&2
  exit 1
}

# Regular files copied in, never through a symlink inside the tree: the
# targets are removed first (rm does not follow), then written afresh.
install_file() {  # SRC DEST-inside-DIR MODE
  rm -f "$DIR$2"
  install -m "$3" "$1" "$DIR$2"
}
printf '#!/bin/sh\n# tests/debian/chroot.sh: no service starts during the install\nexit 101\n' >"$DIR.policy"
install_file "$DIR.policy" /usr/sbin/policy-rc.d 0755
rm -f "$DIR.policy"
install_file /etc/resolv.conf /etc/resolv.conf 0644

in_tree "$INSTALL ${PACKAGES[*]} ${EXTRAS[*]}
apt-get clean"
# The package's default state, but nothing may start from here on either.
printf '%s\n' "${EXTRAS[*]}" >"$DIR/.extras"
printf '%s\n' "$STAMP" >"$DIR/.complete"
echo "== $SUITE: built in $((SECONDS - start)) s: glance-api $(chroot "$DIR" dpkg-query -W -f='${Version}' glance-api)"
