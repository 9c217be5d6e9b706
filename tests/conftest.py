"""Shared helpers: schema validation, CLI runs, and skips that CI turns into failures."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import glance_features
from glance_features import registry, runner
from glance_features.detector import ProbeContext
from glance_features.host import DistroInfo
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


def validate(report: glance_features.Report | dict[str, Any]) -> dict[str, Any]:
    data = report.to_dict() if isinstance(report, glance_features.Report) else report
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
    distro: DistroInfo | None = None,
) -> ProbeContext:
    return ProbeContext(
        settings=settings or Settings(),
        deep=deep,
        deadline=time.monotonic() + timeout,
        distro=distro or DistroInfo("debian", "12", ""),
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
