#!/usr/bin/env bash
# Install Debian's own Glance API (glance-api 2:25.1.0 on Debian 12) for
# tests/test_debian_glance.py, without starting it:
#   bash tests/debian/install.sh
# Idempotent: returns at once when the packages are there. Does nothing (and
# exits 0) where it cannot work: not root, or no apt-get/dpkg (not Debian).
# The package's postinst would start the service; a policy-rc.d returning 101
# forbids that for the length of the install and is removed afterwards (an
# existing one is put back as it was).
set -euo pipefail

PACKAGES=(glance-api python3-xattr qemu-utils)

if [ ! -r /etc/debian_version ] || ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
  echo "tests/debian/install.sh: not a Debian host with apt-get; nothing to do"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "tests/debian/install.sh: not root; nothing to do (Debian's glance-api tests skip)"
  exit 0
fi

missing=()
for package in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$package")
done
if [ ${#missing[@]} = 0 ]; then
  echo "== Debian glance-api $(dpkg-query -W -f='${Version}' glance-api) already installed"
  exit 0
fi

start=$SECONDS
policy=/usr/sbin/policy-rc.d
saved=""
if [ -e "$policy" ] || [ -L "$policy" ]; then
  saved=$(mktemp -d)
  mv "$policy" "$saved/"
fi
restore() {
  rm -f "$policy"
  if [ -n "$saved" ]; then
    mv "$saved/policy-rc.d" "$policy"
    rmdir "$saved"
  fi
}
trap restore EXIT
printf '#!/bin/sh\n# tests/debian/install.sh: no service starts during the install\nexit 101\n' >"$policy"
chmod 0755 "$policy"

echo "== installing ${missing[*]} (Debian's Glance, not started)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
echo "   took $((SECONDS - start)) s"
