#!/usr/bin/env bash
# Install what the tests need and run every check CI runs:
#   bash tests/run.sh            (from the repository root; extra arguments go to pytest)
# System packages (bindep.txt, profile "test") come from apt-get when run as
# root on Debian/Ubuntu; Python packages go into ./.venv, and a pip-installed
# Glance into ./.venv-glance, never into the system interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
PIP=(--disable-pip-version-check -q)

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install "${PIP[@]}" --upgrade pip
.venv/bin/python -m pip install "${PIP[@]}" -e . -r test-requirements.txt -r docs/requirements.txt

# bindep -b prints the packages of bindep.txt that are missing here.
missing=$(.venv/bin/bindep -b test || true)
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing" $missing
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "== missing system packages:" $missing "(install them as root; tests that need them skip)"
  fi
fi

# Debian's own glance-api for tests/test_debian_glance.py: one root file
# system per suite Debian ships it in (12, 13, unstable), built by debootstrap
# from the archive into .cache/debian/SUITE, never into this host's /. The
# three build in parallel with the venvs below, once: a complete tree is kept
# (tests/debian/chroot.sh). Cold, about 7 minutes for the three on 2 cores.
DEBIAN_SUITES=(bookworm trixie sid)
debian_builds=()
if [ "$(id -u)" = 0 ] && command -v debootstrap >/dev/null; then
  mkdir -p .cache/debian
  for suite in "${DEBIAN_SUITES[@]}"; do
    bash tests/debian/chroot.sh "$suite" >".cache/debian/$suite.build" 2>&1 &
    debian_builds+=("$!")
  done
else
  echo "== no Debian chroots (needs root and debootstrap): tests/test_debian_glance.py cannot run"
fi

# Glance runs as its own account; tests look with its eyes, as operators' hosts do.
if [ "$(id -u)" = 0 ] && ! id glance >/dev/null 2>&1; then
  echo "== adding the glance system account"
  useradd --system --no-create-home --shell /usr/sbin/nologin glance
fi

# Glance itself, in a virtualenv of its own, with the WSGI servers it is deployed
# under, so tests can compare every verdict with Glance's own code paths. Built
# from the distribution's Python when there is one: the glance account must be
# able to run it, as on an operator's host.
GLANCE_PYTHON=${GLANCE_PYTHON:-$(command -v /usr/bin/python3 || command -v "$PYTHON")}
if [ ! -x .venv-glance/bin/uwsgi ]; then
  echo "== creating .venv-glance from $GLANCE_PYTHON (pip install glance xattr uwsgi gunicorn)"
  start=$SECONDS
  rm -rf .venv-glance
  "$GLANCE_PYTHON" -m venv .venv-glance
  .venv-glance/bin/python -m pip install "${PIP[@]}" --upgrade pip
  # uwsgi links the libpython of the first python3-config on PATH: make it this
  # venv's Python, and build it here rather than take a wheel built elsewhere.
  PATH="$(dirname "$(readlink -f "$GLANCE_PYTHON")"):$PATH" .venv-glance/bin/python -m pip \
    install "${PIP[@]}" --no-cache-dir --no-binary uwsgi glance xattr uwsgi gunicorn
  echo "   took $((SECONDS - start)) s"
fi
# glance-features itself in Glance's venv, as an operator installs it: the
# health-check entry point and the WSGI guard are loaded from there. psycopg2:
# the functional tests give Glance a PostgreSQL database (tests/functional/postgres.py).
.venv-glance/bin/python -m pip install "${PIP[@]}" -e . psycopg2-binary
export GLANCE_VENV="$PWD/.venv-glance"
# One venv per Glance release operators run, each with its series'
# upper-constraints (tests/test_releases.py), built in parallel.
bash tests/releases/build.sh

# Glance with the store drivers' extras (tests/test_stores.py), on the
# distribution's Python: Debian's rbd bindings are built for it.
if [ ! -x .venv-glance-stores/bin/python ] && [ -x /usr/bin/python3 ]; then
  echo "== creating .venv-glance-stores (glance with the store drivers' extras)"
  /usr/bin/python3 -m venv .venv-glance-stores
  .venv-glance-stores/bin/python -m pip install "${PIP[@]}" glance boto3 os-brick \
    python-cinderclient oslo.privsep oslo.rootwrap -e .
fi
export GLANCE_STORES_VENV="$PWD/.venv-glance-stores"

echo "== ruff"
.venv/bin/ruff check glance_features tests benchmarks
.venv/bin/ruff format --check glance_features tests benchmarks
echo "== mypy --strict"
.venv/bin/mypy
echo "== sphinx-build -W"
.venv/bin/sphinx-build -q -W -b html docs docs/_build/html
echo "== soak (lower count than the full run: benchmarks/soak.py --probes 1000)"
.venv/bin/python benchmarks/soak.py --probes 320 --threads 16 --forks 8
# Everything but the Debian tests runs as on a host without a packaged Glance
# (tests/without_packaged_glance.sh hides one a developer's host may have in
# a private mount namespace; CI installs none on the host itself).
echo "== stestr (tests/glance_style, as Glance runs its unit tests)"
tests/without_packaged_glance.sh .venv/bin/stestr run --concurrency 4 --random
echo "== pytest (unit, agreement with Glance, and end to end under uWSGI)"
tests/without_packaged_glance.sh .venv/bin/python -m pytest -q -p no:cacheprovider \
  --ignore tests/test_debian_glance.py "$@"
echo "== Debian chroots (${DEBIAN_SUITES[*]})"
for i in "${!debian_builds[@]}"; do
  if ! wait "${debian_builds[$i]}"; then
    cat ".cache/debian/${DEBIAN_SUITES[$i]}.build" >&2
    exit 1
  fi
  cat ".cache/debian/${DEBIAN_SUITES[$i]}.build"
done
echo "== pytest (Debian's glance-api in each suite's chroot, started by its init script, both modes)"
.venv/bin/python -m pytest -q -p no:cacheprovider -m functional tests/test_debian_glance.py
