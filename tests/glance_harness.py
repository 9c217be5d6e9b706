"""Side by side: Glance's own code and the probe, on one host and config, as
the user Glance runs as.

Both sides run in the interpreter of the Glance virtualenv (GLANCE_VENV), so
the probe sees the installed Glance, its bindings and its oslo libraries as
a probe installed beside Glance would. The probe runs as root with
``user=glance`` (as the CLI does); Glance's side runs as ``glance`` itself.
A case may first set up mounts in a private mount namespace, where both
sides then run.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from conftest import (
    SOURCE_ROOT,
    as_root_in_mount_namespace,
    can_unshare_mounts,
    copy_runtime_dependencies,
    need,
)

SERVICE_USER = "glance"
GLANCE_VENV = os.environ.get("GLANCE_VENV") or os.path.join(SOURCE_ROOT, ".venv-glance")
GLANCE_PYTHON = os.path.join(GLANCE_VENV, "bin", "python")
HERE = Path(__file__).resolve().parent
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def as_user(user: str = SERVICE_USER) -> list[str]:
    return [
        shutil.which("setpriv") or "/usr/bin/setpriv",
        f"--reuid={user}",
        f"--regid={user}",
        "--init-groups",
        "--",
    ]


@functools.cache
def _glance_runs_as_service_user(python: str) -> str:
    """'' when ``python`` imports Glance as the service user, else why not."""
    if os.geteuid() != 0:
        return "these tests switch to the glance user: run them as root"
    try:
        import pwd

        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return f"no {SERVICE_USER!r} account (useradd --system {SERVICE_USER})"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    if not os.path.exists(python):
        return (
            f"no Glance virtualenv at {GLANCE_VENV} (set GLANCE_VENV; tests/run.sh makes "
            "one with 'pip install glance xattr')"
        )
    proc = subprocess.run(
        [*as_user(), python, "-c", "import glance, oslo_concurrency"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    if proc.returncode != 0:
        return (
            f"{python} cannot import Glance as {SERVICE_USER} (an interpreter under a "
            f"private home such as /root?): {proc.stderr.strip()[-300:]}"
        )
    return ""


def need_glance(python: str = GLANCE_PYTHON) -> None:
    why = _glance_runs_as_service_user(python)
    need(not why, why)


@functools.cache
def probe_paths() -> str:
    """sys.path entries that make glance_features importable in the Glance
    virtualenv, appended after its own: its packages win, and what it lacks
    (distro, say) comes from copies of the test environment's."""
    import atexit

    deps = Path(tempfile.mkdtemp(prefix="glance-features-deps-"))
    deps.chmod(0o755)
    atexit.register(shutil.rmtree, deps, True)
    copy_runtime_dependencies(deps)
    return json.dumps([SOURCE_ROOT, str(deps)])


PROBE = """
import json, sys
sys.path.extend(json.loads(sys.argv[1]))
import glance_features
from glance_features import Settings
settings = Settings(**json.loads(sys.argv[2]))
report = glance_features.probe(settings, features=[sys.argv[3]], user=sys.argv[4] or None,
                               timeout=float(sys.argv[5]), deep=sys.argv[6] == "deep")
print(report.to_json())
"""

# Runs as root (in the mount namespace, when there is one): the probe, a
# listing to show it changed nothing, then Glance as its own user.
BOTH = r"""
import json, os, stat, subprocess, sys
spec = json.loads(sys.argv[1])

def tree(root):
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            size = st.st_size if stat.S_ISREG(st.st_mode) else 0
            seen[path] = [st.st_mode, st.st_uid, size]
    return seen

before = tree(spec["root"])
probe = subprocess.run(spec["probe"], capture_output=True, text=True, timeout=120,
                       env=spec["env"], cwd="/", stdin=subprocess.DEVNULL)
after = tree(spec["root"])
glance = subprocess.run(spec["glance"], capture_output=True, text=True, timeout=120,
                        env=spec["env"], cwd="/", stdin=subprocess.DEVNULL)
lines = glance.stdout.strip().splitlines()
print(json.dumps({
    "probe": json.loads(probe.stdout) if probe.returncode == 0 else None,
    "probe_stderr": probe.stderr[-2000:],
    "changed": sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)),
    "glance": json.loads(lines[-1]) if lines else None,
    "glance_stderr": glance.stderr[-2000:],
}))
"""


def run_script(
    script: str, spec: Mapping[str, Any], *, mounts: str | None = None, timeout: float
) -> str:
    """Run Python ``script`` in this interpreter with ``spec`` as JSON in
    ``sys.argv[1]``, after ``mounts`` (sh) in a private mount namespace when
    given; returns its output (the script must exit 0)."""
    prefix: list[str] = []
    if mounts is not None:
        need(can_unshare_mounts(), "needs unshare (util-linux) and root or user namespaces")
        prefix = as_root_in_mount_namespace(mounts)
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", script, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def run_both(
    feature: str,
    settings: Mapping[str, Any],
    glance_argv: Sequence[str],
    *,
    root: Path,
    mounts: str | None = None,
    env: Mapping[str, str] | None = None,
    python: str = GLANCE_PYTHON,
    deep: bool = False,
    timeout: float = 30.0,
    user: str = SERVICE_USER,
) -> dict[str, Any]:
    """Probe ``feature`` with ``settings`` and run ``glance_argv`` (after the
    Glance interpreter) as the service user; returns both outcomes, the
    probe's result for the feature under ``probe`` and what the probe
    changed under ``root`` (nothing, or the test fails)."""
    need_glance(python)
    environment = {"PATH": SYSTEM_PATH, "LC_ALL": "C.UTF-8", **(env or {})}
    spec = {
        "root": str(root),
        "env": environment,
        "probe": [
            python,
            "-c",
            PROBE,
            probe_paths(),
            json.dumps(dict(settings)),
            feature,
            user,
            str(timeout),
            "deep" if deep else "shallow",
        ],
        "glance": [*as_user(user), python, *glance_argv],
    }
    out: dict[str, Any] = json.loads(run_script(BOTH, spec, mounts=mounts, timeout=300))
    assert out["probe"] is not None, out["probe_stderr"]
    assert out["glance"] is not None, out["glance_stderr"]
    out["result"] = out["probe"]["features"][feature]
    assert out["changed"] == [], f"the probe changed {out['changed']}"
    return out


def shared_directory() -> Iterator[Path]:
    """A directory the service user can reach (pytest's tmp_path is root's
    own, mode 0700), removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="glance-features-agree-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def chown_to_service_user(*paths: Path) -> None:
    import pwd

    entry = pwd.getpwnam(SERVICE_USER)
    for path in paths:
        os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def glance_script(name: str) -> str:
    return str(HERE / name)
