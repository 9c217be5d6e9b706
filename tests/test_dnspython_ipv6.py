"""dnspython-ipv6: real eventlet and dnspython, in subprocesses, with real version pairs."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import isolated_python, need, probe_in_subprocess

from glance_features.detectors.dnspython_ipv6 import known_problems


def installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def fake_distribution(site: Path, name: str, version: str) -> None:
    """Metadata only: the detector reads versions, it never imports eventlet."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")


def test_real_pair_installed_here() -> None:
    eventlet, dnspython = installed("eventlet"), installed("dnspython")
    need(
        eventlet is not None and dnspython is not None,
        "eventlet and dnspython are not installed (pip install eventlet dnspython)",
    )
    env = {k: v for k, v in os.environ.items() if k != "EVENTLET_NO_GREENDNS"}
    result = probe_in_subprocess("dnspython-ipv6", env=env)
    assert result["details"]["eventlet"] == eventlet
    assert result["details"]["dnspython"] == dnspython
    assert result["details"]["eventlet_imported"] is False
    assert result["status"] == "available"
    assert result["reason"] == (
        f"eventlet {eventlet} with dnspython {dnspython}: no known IPv6 resolution problem"
    )
    import socket

    assert result["details"]["has_ipv6"] is socket.has_ipv6
    if os.path.exists("/proc/net/if_inet6") and os.path.getsize("/proc/net/if_inet6") > 0:
        assert "lo" in result["details"]["ipv6_interfaces"] or result["details"]["ipv6_interfaces"]


def test_deep_resolution_under_real_eventlet() -> None:
    need(installed("eventlet") is not None, "eventlet is not installed (pip install eventlet)")
    result = probe_in_subprocess("dnspython-ipv6", deep=True)
    resolution = result["details"]["resolution"]
    assert resolution["eventlet"]["::1"] == ["::1"]
    assert resolution["system"]["::1"] == ["::1"]
    assert result["status"] == "available", result["reason"]


def test_nothing_installed_means_nothing_to_work_around(tmp_path: Path) -> None:
    python, env = isolated_python(tmp_path)
    result = probe_in_subprocess("dnspython-ipv6", python=python, env=env)
    assert result["status"] == "available"
    assert result["reason"] == "nothing to work around: eventlet is not installed"
    fake_distribution(tmp_path / "site", "eventlet", "0.33.2")
    python, env = isolated_python(tmp_path, str(tmp_path / "site"))
    result = probe_in_subprocess("dnspython-ipv6", python=python, env=env)
    assert result["reason"] == "nothing to work around: dnspython is not installed"


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (None, "unavailable"),
        ("yes", "available"),
        ("YES", "available"),
        ("1", "unavailable"),
        ("true", "unavailable"),
    ],
)
def test_known_bad_pair_and_the_workaround(tmp_path: Path, value: str | None, status: str) -> None:
    site = tmp_path / "site"
    fake_distribution(site, "eventlet", "0.33.2")
    fake_distribution(site, "dnspython", "2.3.0")
    python, env = isolated_python(tmp_path, str(site))
    env.pop("EVENTLET_NO_GREENDNS", None)
    if value is not None:
        env["EVENTLET_NO_GREENDNS"] = value
    result = probe_in_subprocess("dnspython-ipv6", python=python, env=env)
    assert result["status"] == status
    # `import eventlet` itself fails: nothing works, so never "degraded".
    assert "eventlet before 0.33.3 fails to import with dnspython 2.3.0" in result["reason"]
    assert result["details"]["workaround_active"] is (status == "available")
    assert any("'eventlet>=0.33.3'" in step for step in result["remediation"])
    if status == "unavailable":
        assert any(s.startswith("export EVENTLET_NO_GREENDNS=yes") for s in result["remediation"])


def test_eventlet_imported_before_the_probe_is_too_late(tmp_path: Path) -> None:
    need(installed("eventlet") is not None, "eventlet is not installed (pip install eventlet)")
    site = tmp_path / "site"
    # A pair whose problem is resolution, not the import (which worked here).
    fake_distribution(site, "eventlet", "0.16.1")
    fake_distribution(site, "dnspython", "1.16.0")
    code = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "import eventlet, glance_features\n"
        "print(glance_features.probe(features=['dnspython-ipv6']).to_json())"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("EVENTLET_NO_GREENDNS", None)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)["features"]["dnspython-ipv6"]
    assert result["status"] == "unavailable"
    assert result["details"]["eventlet_imported"] is True
    assert "the workaround can no longer apply" in result["reason"]


def test_known_problem_table() -> None:
    assert [p.upgrade for p in known_problems("0.16.1", "1.16.0")] == ["eventlet>=0.33.3"]
    assert [p.upgrade for p in known_problems("0.33.2", "2.3.0")] == ["eventlet>=0.33.3"]
    assert known_problems("0.33.3", "2.3.0") == []
    assert known_problems("0.33.2", "2.2.1") == []
    assert [p.upgrade for p in known_problems("0.41.0", "2.2.0")] == ["dnspython!=2.0.0,!=2.2.0"]
    assert known_problems("0.41.0", "2.8.0") == []
    assert known_problems("not-a-version", "2.8.0") == []


@pytest.fixture(scope="module")
def eventlet_0_33_2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real pair from eventlet issue #781, from PyPI, beside this venv's greenlet."""
    target = tmp_path_factory.mktemp("eventlet-0.33.2")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            "--target",
            str(target),
            "eventlet==0.33.2",
            "dnspython==2.3.0",
            "six",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    need(proc.returncode == 0, f"cannot install eventlet 0.33.2 from PyPI: {proc.stderr[-300:]}")
    return target


def test_encoded_pair_really_breaks_and_the_workaround_really_helps(eventlet_0_33_2: Path) -> None:
    need(installed("greenlet") is not None, "greenlet is not installed (pip install eventlet)")
    env = {**os.environ, "PYTHONPATH": str(eventlet_0_33_2)}
    env.pop("EVENTLET_NO_GREENDNS", None)
    check = [sys.executable, "-W", "ignore", "-c", "import eventlet"]
    broken = subprocess.run(check, capture_output=True, text=True, env=env, timeout=60)
    assert broken.returncode != 0, "eventlet 0.33.2 imported with dnspython 2.3.0"
    assert "dns" in broken.stderr
    worked_around = subprocess.run(
        check,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "EVENTLET_NO_GREENDNS": "yes"},
    )
    assert worked_around.returncode == 0, worked_around.stderr

    result: dict[str, Any] = probe_in_subprocess("dnspython-ipv6", env=env)
    assert result["status"] == "unavailable"
    assert result["details"]["eventlet"] == "0.33.2"
    result = probe_in_subprocess("dnspython-ipv6", env={**env, "EVENTLET_NO_GREENDNS": "yes"})
    assert result["status"] == "available"
