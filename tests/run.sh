#!/usr/bin/env bash
# Install what the tests need and run every check CI runs:
#   bash tests/run.sh            (from the repository root)
# System packages come from apt-get when run as root on Debian/Ubuntu;
# Python packages go into ./.venv, never into the system interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SYSTEM_PACKAGES=(qemu-utils util-linux iproute2 prometheus)

missing=()
if command -v dpkg-query >/dev/null; then
  for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
fi
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "== missing system packages: ${missing[*]} (install them as root; tests that need them will skip)"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,docs]'

# Glance itself, in a virtualenv of its own, so tests can check that the
# xattr verdict agrees with Glance's cache driver (about 30 s on first run).
if [ ! -x .venv-glance/bin/python ]; then
  echo "== creating .venv-glance (pip install glance xattr)"
  start=$SECONDS
  "$PYTHON" -m venv .venv-glance
  .venv-glance/bin/python -m pip install -q --disable-pip-version-check glance xattr
  echo "   took $((SECONDS - start)) s"
fi
export GLANCE_VENV="$PWD/.venv-glance"

echo "== ruff"
.venv/bin/ruff check glance_features tests
.venv/bin/ruff format --check glance_features tests
echo "== mypy --strict"
.venv/bin/mypy
echo "== sphinx-build -W"
.venv/bin/sphinx-build -q -W -b html docs docs/_build/html
echo "== soak (lower count than the full run: benchmarks/soak.py --probes 1000)"
.venv/bin/python benchmarks/soak.py --probes 320 --threads 16 --forks 8
echo "== pytest"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
