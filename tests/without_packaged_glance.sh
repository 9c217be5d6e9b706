#!/bin/sh
# Run a command as on a host without a distribution-packaged Glance, in a
# private mount namespace: a developer's Debian host may have glance-api
# installed (tests/test_debian_glance.py runs Debian's in chroots of its own,
# not on the host), and the rest of the suite describes a host
# whose Glance is the one each test sets up (discovery would otherwise find
# Debian's init script, /etc/glance and /usr/bin/python3's glance, as it should).
# Nothing outside the namespace changes.
set -eu
if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null || [ ! -e /usr/bin/glance-api ]; then
  exec "$@"
fi
exec unshare -m sh -ec '
mount --make-rprivate /
for path in /etc/init.d/glance-api /lib/systemd/system/glance-api.service /usr/bin/glance-api \
            /usr/bin/glance-wsgi-api; do
  if [ -e "$path" ]; then mount --bind /dev/null "$path"; fi
done
for dir in /etc/glance /usr/lib/python3/dist-packages/glance; do
  if [ -d "$dir" ]; then mount -t tmpfs -o mode=0755 tmpfs "$dir"; fi
done
exec "$@"' sh "$@"
