"""dnspython-ipv6: real eventlet and dnspython, in subprocesses, with real version pairs."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import isolated_python, need, probe_in_subprocess

from glance_features import checks
from glance_features.detectors.dnspython_ipv6 import judge, known_problems
from glance_features.model import Status, Verdict


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
    # Nothing is known against this pair: not tried without --deep (importing
    # eventlet takes seconds on some hosts), and the reason says so.
    assert result["reason"] == (
        f"eventlet {eventlet} with dnspython {dnspython}: no known problem with this pair "
        "(--deep imports and patches eventlet and resolves under it)"
    )
    assert result["details"]["resolution"]["eventlet"] is None
    deep = probe_in_subprocess("dnspython-ipv6", env=env, deep=True)
    assert deep["reason"] == (
        f"eventlet {eventlet} with dnspython {dnspython}: IPv6 names resolve under "
        "eventlet.monkey_patch() as without it"
    )
    # Tried, not looked up: the lookups ran under the real, patched eventlet.
    assert deep["details"]["resolution"]["eventlet"]["::1"] == ["::1"]
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


def test_a_failed_lookup_once_eventlet_is_imported_is_past_the_workaround() -> None:
    """Inside a service already patched without the workaround, a lookup
    eventlet fails cannot be fixed by setting it now (fault injected: no
    eventlet that runs on this Python fails ::1)."""
    found = checks.ResolutionFound(
        system={"::1": checks.Lookup(addresses=["::1"], failure=None)},
        eventlet={
            "::1": checks.Lookup(
                addresses=[],
                failure=checks.Failure(
                    step=None, errno=None, error="gaierror: [Errno -2] Name or service not known"
                ),
            )
        },
        failure=None,
        eventlet_version="0.33.1",
        dnspython_version="2.3.0",
        greendns=True,
        tried=True,
    )
    kwargs: dict[str, Any] = {
        "patched": True,
        "workaround": False,
        "retry": None,
        "glance": "32.0.0",
        "served_by": "eventlet",
    }
    status, reason, fixes = astuple(judge(found, inside=True, eventlet_imported=True, **kwargs))
    assert status is Status.UNAVAILABLE
    assert "the workaround can no longer apply" in reason
    assert "'::1' for IPv6 under eventlet failed: gaierror: [Errno -2] Name or" in reason
    assert fixes[0].startswith("export EVENTLET_NO_GREENDNS=yes")
    # From the command line the workaround still helps: degraded, fix first.
    status, reason, fixes = astuple(judge(found, inside=False, eventlet_imported=False, **kwargs))
    assert status is Status.DEGRADED
    assert fixes[0].startswith("export EVENTLET_NO_GREENDNS=yes")
    # The same under a WSGI server, which never patches: green DNS is not used.
    kwargs.update(patched=False, served_by="uwsgi")
    status, reason, _ = astuple(judge(found, inside=False, eventlet_imported=False, **kwargs))
    assert status is Status.AVAILABLE and "does not monkey-patch" in reason


def test_the_failing_step_decides_between_import_and_patch() -> None:
    """eventlet_resolution reports one failure; its step says whether the
    import or the patch failed, and the verdict quotes that step's error."""

    def failed(step: str, error: str) -> checks.ResolutionFound:
        return checks.ResolutionFound(
            system={},
            eventlet=None,
            failure=checks.Failure(step=step, errno=None, error=error),
            eventlet_version="0.36.1",
            dnspython_version="2.6.1",
            greendns=None,
            tried=True,
        )

    kwargs: dict[str, Any] = {
        "patched": True,
        "workaround": False,
        "inside": False,
        "eventlet_imported": False,
        "retry": None,
        "glance": "32.0.0",
        "served_by": "eventlet",
    }
    imported = judge(failed(checks.IMPORT_EVENTLET, "ImportError: no dns"), **kwargs)
    assert imported.status is Status.UNAVAILABLE
    assert "`import eventlet` fails in the service's interpreter (ImportError: no dns)" in (
        imported.reason
    )
    patch = judge(failed(checks.MONKEY_PATCH, "RuntimeError: no threads"), **kwargs)
    assert patch.status is Status.UNAVAILABLE
    assert "eventlet.monkey_patch() fails (RuntimeError: no threads)" in patch.reason
    # A WSGI server never patches: the patch's failure does not matter there.
    kwargs.update(patched=False, served_by="uwsgi")
    patch = judge(failed(checks.MONKEY_PATCH, "RuntimeError: no threads"), **kwargs)
    assert patch.status is Status.AVAILABLE


def astuple(verdict: Verdict) -> tuple[Status, str, Sequence[str]]:
    return verdict.status, verdict.reason, verdict.remediation


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
    assert "`import eventlet` fails in the service's interpreter" in result["reason"]
    assert any("'eventlet>=0.33.3'" in step for step in result["remediation"])
    # The probe tried the workaround too, and says that it helps.
    assert result["details"]["imports_with_workaround"] is True
    assert any(s.startswith("export EVENTLET_NO_GREENDNS=yes") for s in result["remediation"])
    for value, status in (("yes", "available"), ("YES", "available"), ("1", "unavailable")):
        result = probe_in_subprocess("dnspython-ipv6", env={**env, "EVENTLET_NO_GREENDNS": value})
        assert result["status"] == status, (value, result["reason"])
        assert result["details"]["workaround_active"] is (status == "available")
