#!/usr/bin/env bash
# Build one virtualenv per Glance release the operators run, so
# tests/test_releases.py can start each release both ways (glance-api and
# uWSGI) and compare the probe's verdicts with what that release really does:
#   bash tests/releases/build.sh            (all of 28 29 30 31 32)
#   bash tests/releases/build.sh 30 32      (only those)
# Each venv is .venv-glance-NN at the repository root, made from the
# distribution's Python (/usr/bin/python3: the glance account must be able to
# run it, and root's home is 0700), with that release's upper-constraints
# (tests/releases/upper-constraints-NN.txt, the only copy CI has). For 33 the
# tests use .venv-glance, which tests/run.sh builds; `build.sh 33` makes a
# constrained .venv-glance-33 instead (GLANCE_VENV_33 points the tests at it).
# glance-features goes in editable from this checkout: the probe under test is
# this tree's. Builds run in parallel; one that
# fails fails the script. A venv whose python already imports the right
# glance is left alone.
set -euo pipefail
cd "$(dirname "$0")/../.."

GLANCE_PYTHON=${GLANCE_PYTHON:-/usr/bin/python3}
PIP=(--disable-pip-version-check -q)
declare -A VERSION=([28]=28.2.0 [29]=29.2.1 [30]=30.2.0 [31]=31.1.0 [32]=32.0.0 [33]=33.0.0)
releases=("$@")
[ ${#releases[@]} -gt 0 ] || releases=(28 29 30 31 32)

build() {
  local nn=$1 version=${VERSION[$1]} venv=.venv-glance-$1 start=$SECONDS
  local constraints=tests/releases/upper-constraints-$1.txt
  if [ -x "$venv/bin/python" ] && [ -x "$venv/bin/uwsgi" ] \
    && "$venv/bin/python" -c "import sys, importlib.metadata as m, glance, pydevd, glance_features
sys.exit(m.version('glance') != '$version')" 2>/dev/null; then
    echo "$venv: glance $version already there (0 s)"
    return 0
  fi
  rm -rf "$venv"
  "$GLANCE_PYTHON" -m venv "$venv"
  # One resolver run, so glance-features' own dependencies (psutil, distro,
  # packaging, importlib-metadata) are held to the release's constraints too.
  # xattr: the xattr cache driver; pyuwsgi: a uwsgi binary from a wheel;
  # pydevd: what setup_remote_pydev_debug imports. The constraints pin xattr;
  # neither pyuwsgi nor pydevd is in any of them.
  "$venv/bin/python" -m pip install "${PIP[@]}" -c "$constraints" \
    "glance==$version" xattr pyuwsgi pydevd -e .
  "$venv/bin/python" -c "import importlib.metadata as m; assert m.version('glance') == '$version'"
  echo "$venv: glance $version built in $((SECONDS - start)) s"
}

declare -A pids=()
for nn in "${releases[@]}"; do
  [ -n "${VERSION[$nn]:-}" ] || { echo "unknown release $nn (one of ${!VERSION[*]})" >&2; exit 2; }
  # (This machine's pip config names local indexes that may be absent: not news.)
  build "$nn" > >(grep --line-buffered -v "^WARNING: Location 'file:" | sed "s/^/[$nn] /") 2>&1 &
  pids[$nn]=$!
done
failed=()
for nn in "${!pids[@]}"; do
  wait "${pids[$nn]}" || failed+=("$nn")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "build failed for: ${failed[*]}" >&2
  exit 1
fi
