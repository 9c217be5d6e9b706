"""Shared helpers: schema validation, CLI runs, and skips that CI turns into failures."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import glance_features
from glance_features import registry, runner
from glance_features.detector import Distro, ProbeContext
from glance_features.settings import Settings

IN_CI = os.environ.get("CI", "").lower() == "true"


def need(available: bool, reason: str) -> None:
    """Skip a test whose real component is missing, except under CI=true,
    where a missing component is a broken install step and fails the run."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


def validate(report: glance_features.Report | Mapping[str, object]) -> dict[str, Any]:
    # Tests index and change the document as the JSON it is read as.
    data: dict[str, Any] = dict(
        report.to_dict() if isinstance(report, glance_features.Report) else report
    )
    jsonschema.validate(data, glance_features.json_schema())
    return data


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "glance_features", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def context(
    settings: Settings | None = None,
    deep: bool = False,
    timeout: float = 30.0,
    distro: Distro | None = None,
) -> ProbeContext:
    return ProbeContext(
        settings=settings or Settings(),
        deep=deep,
        deadline=time.monotonic() + timeout,
        distro=distro or Distro("debian", "12", ""),
    )


def listing(directory: Path) -> dict[str, tuple[int, float]]:
    """Every entry under ``directory`` with its size and mtime, to prove nothing changed."""
    return {
        str(p.relative_to(directory)): (p.lstat().st_size, p.lstat().st_mtime)
        for p in sorted(directory.rglob("*"))
    }


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    runner.clear_cache()
    yield
    runner.clear_cache()
    for name in list(registry._registered):
        registry.unregister(name)


PLUGIN_MODULE = """
from glance_features.detector import result
from glance_features.model import Status

class Works:
    name = "{name}"
    summary = "a test plugin that works"

    def probe(self, context):
        return result(self.name, Status.AVAILABLE, "works from {dist}", {{"deep": context.deep}})

class Wrong:
    name = "something-else"
    summary = "declares another name than its entry point"

    def probe(self, context):
        return result(self.name, Status.AVAILABLE, "never")

class Degraded:
    name = "{name}"
    summary = "always degraded"

    def probe(self, context):
        return result(self.name, Status.DEGRADED, "works, but \\x1b[31mcarefully\\x1b[0m",
                      {{}}, ["apt-get install -y something", "then think"])

class Explodes:
    name = "{name}"
    summary = "raises while being constructed"

    def __init__(self):
        raise RuntimeError("constructor blew up")
"""


def install_plugin(
    site: Path, dist: str, entries: dict[str, str], module: str | None = None, name: str = ""
) -> None:
    """Lay out an installed distribution as pip would: a module and a dist-info."""
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entries.items())
    (info / "entry_points.txt").write_text(
        f"[console_scripts]\nx = y:z\n\n[glance_features.detectors]\n{lines}"
    )
    if module:
        (site / f"{module}.py").write_text(PLUGIN_MODULE.format(name=name, dist=dist))


PROBE_SNIPPET = """
import json, sys
import glance_features
from glance_features import Settings
settings = Settings(**json.loads(sys.argv[1]))
report = glance_features.probe(settings, features=[sys.argv[2]], deep=sys.argv[3] == "deep")
print(report.to_json())
"""


def probe_in_subprocess(
    feature: str,
    settings: dict[str, Any] | None = None,
    *,
    deep: bool = False,
    prefix: list[str] | None = None,
    env: dict[str, str] | None = None,
    python: list[str] | None = None,
) -> dict[str, Any]:
    """Probe one feature in a fresh interpreter (optionally wrapped, e.g. in
    unshare) and return that feature's result, schema-validated."""
    import json

    argv = [
        *(prefix or []),
        *(python or [sys.executable]),
        "-c",
        PROBE_SNIPPET,
        json.dumps(settings or {}),
        feature,
        "deep" if deep else "shallow",
    ]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, proc.stderr
    data = validate(json.loads(proc.stdout))
    result: dict[str, Any] = data["features"][feature]
    return result


def as_root_in_mount_namespace(script: str) -> list[str]:
    """A prefix that runs `script` (sh) in a private mount namespace, then
    the command; the mounts vanish with the namespace."""
    base = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]
    return [*base, "sh", "-ec", script + '\nexec "$@"', "sh"]


def can_unshare_mounts() -> bool:
    import shutil

    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        [*as_root_in_mount_namespace("mount -t tmpfs tmpfs /mnt"), "true"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


SOURCE_ROOT = str(Path(__file__).resolve().parents[1])


def copy_runtime_dependencies(directory: Path) -> None:
    """Copy the test environment's glance_features runtime dependencies
    (modules and packages) into ``directory``, for a ``sys.path`` entry."""
    import importlib
    import importlib.util
    import shutil

    directory.mkdir(exist_ok=True)
    for name in ("packaging", "psutil", "distro", "importlib_metadata", "zipp", "lazy_importer"):
        if importlib.util.find_spec(name) is None:
            continue  # lazy_importer: only newer importlib_metadata need it
        module = importlib.import_module(name)
        origin = Path(module.__file__ or "")
        source = origin.parent if origin.name == "__init__.py" else origin
        target = directory / source.name
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)


def isolated_python(tmp_path: Path, *extra_paths: str) -> tuple[list[str], dict[str, str]]:
    """An interpreter without site-packages that sees only the glance_features
    source, its runtime dependencies and ``extra_paths``: a machine where
    nothing else is installed (built-in detectors need no installed metadata)."""
    meta_dir = tmp_path / "runtime-dependencies"
    if not meta_dir.exists():
        copy_runtime_dependencies(meta_dir)
    path = os.pathsep.join([*extra_paths, str(meta_dir), SOURCE_ROOT])
    return [sys.executable, "-S"], {**os.environ, "PYTHONPATH": path}


def without_dac_override() -> list[str]:
    """A prefix under which root meets file permissions as any user does
    (the capabilities that override them are dropped); empty for non-root."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
