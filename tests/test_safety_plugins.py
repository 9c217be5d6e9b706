"""Issue 12, class 5: third-party detectors. Whatever a plugin returns, raises
or leaves running, it is ``unknown`` (or its valid result, bounded) for itself
alone; the report is written, valid, bounded, and the command line exits on
time with no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import validate
from safety_support import BOUND, HUNG, cli_with_site, entry_class, plugin_site

SOURCE = f"""
import threading, time
from glance_features.model import FeatureResult, Status

def plain(name, status="available", reason="fine", details=None, remediation=()):
    return FeatureResult(name, status, reason, details or {{}}, tuple(remediation))

class Base:
    summary = "a hostile test plugin"
    def __init__(self):
        self.name = type(self).NAME

class StringStatus(Base):
    NAME = "string-status"
    def probe(self, context):
        return plain(self.name, "degraded", "said as a string")

class BadStatus(Base):
    NAME = "bad-status"
    def probe(self, context):
        return plain(self.name, "great")

class SetDetails(Base):
    NAME = "set-details"
    def probe(self, context):
        return plain(self.name, details={{"found": {{1, 2}}}})

class DeepDetails(Base):
    NAME = "deep-details"
    def probe(self, context):
        d = {{}}
        for _ in range(5000):
            d = {{"d": d}}
        return plain(self.name, details=d)

class HugeReason(Base):
    NAME = "huge-reason"
    def probe(self, context):
        return plain(self.name, "unavailable", "x" * (50 << 20), {{"blob": "y" * 1000}},
                     ["step %d" % i for i in range(100000)])

class NotAResult(Base):
    NAME = "not-a-result"
    def probe(self, context):
        return {{"status": "available"}}

class RaisesKeyboardInterrupt(Base):
    NAME = "raises-keyboard-interrupt"
    def probe(self, context):
        raise KeyboardInterrupt

class RaisesSystemExit(Base):
    NAME = "raises-system-exit"
    def probe(self, context):
        raise SystemExit(3)

class RaisesBaseException(Base):
    NAME = "raises-base-exception"
    def probe(self, context):
        raise BaseException("odd")

class Sneaky(FeatureResult):
    def __post_init__(self):
        pass  # skips every check

    def to_dict(self):
        raise RuntimeError("boom")

class SubclassSkipsValidation(Base):
    NAME = "subclass-skips-validation"
    def probe(self, context):
        return Sneaky(self.name, "weird", "r", {{"s": {{1}}}})

class SubclassValid(Base):
    NAME = "subclass-valid"
    def probe(self, context):
        return Sneaky(self.name, Status.AVAILABLE, "fine", {{}})

class Hangs(Base):
    NAME = "hangs"
    def probe(self, context):
        time.sleep({HUNG})

class LeavesAThread(Base):
    NAME = "leaves-a-thread"
    def probe(self, context):
        # Non-daemon: it would keep an ordinary interpreter from exiting.
        threading.Thread(target=time.sleep, args=({HUNG},), daemon=False).start()
        return plain(self.name)
"""

ALL = [
    "string-status",
    "bad-status",
    "set-details",
    "deep-details",
    "huge-reason",
    "not-a-result",
    "raises-keyboard-interrupt",
    "raises-system-exit",
    "raises-base-exception",
    "hangs",
    "leaves-a-thread",
    "subclass-skips-validation",
    "subclass-valid",
]
INVALID = {
    "bad-status": "great",
    "set-details": "set",
    "deep-details": "nested deeper",
    "not-a-result": "not a FeatureResult",
    "raises-keyboard-interrupt": "KeyboardInterrupt",
    "raises-system-exit": "SystemExit",
    "raises-base-exception": "BaseException: odd",
    "hangs": "timed out",
    "subclass-skips-validation": "weird",
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return plugin_site(tmp_path / "site", "hostile_plugins", SOURCE, ALL)


def probe(site: Path, *names: str, fmt: str = "json", timeout: str = "5") -> tuple[object, str]:
    args = [f"--feature={n}" for n in (*names, "sendfile")]
    run = cli_with_site(site, *args, "--format", fmt, "--timeout", timeout)
    assert run.elapsed < BOUND, run  # never the HUNG seconds of a plugin
    assert run.returncode in (0, 1, 2), run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    return run, run.stdout


def test_classes_are_named_as_their_entry_points() -> None:
    assert all(f"class {entry_class(n)}(Base)" in SOURCE for n in ALL)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_an_invalid_or_failing_plugin_is_unknown_for_itself_alone(site: Path, name: str) -> None:
    _, out = probe(site, name)
    report = validate(json.loads(out))
    result = report["features"][name]
    assert result["status"] == "unknown"
    assert INVALID[name] in result["reason"]
    assert report["features"]["sendfile"]["status"] == "available"


def test_a_result_subclass_is_rebuilt_as_a_plain_result(site: Path) -> None:
    _, out = probe(site, "subclass-valid")
    assert validate(json.loads(out))["features"]["subclass-valid"]["status"] == "available"


def test_a_string_status_is_taken_as_the_status(site: Path) -> None:
    _, out = probe(site, "string-status")
    assert validate(json.loads(out))["features"]["string-status"]["status"] == "degraded"


@pytest.mark.parametrize("fmt", ["json", "prometheus", "text"])
def test_a_huge_result_is_bounded_in_every_format(site: Path, fmt: str) -> None:
    _, out = probe(site, "huge-reason", fmt=fmt)
    assert len(out) < 64 * 1024  # not the 50 MB the plugin returned
    if fmt == "json":
        result = validate(json.loads(out))["features"]["huge-reason"]
        assert result["status"] == "unavailable"
        assert len(result["reason"]) <= 4096 and result["reason"].endswith("(truncated)")
        assert len(result["remediation"]) == 20


def test_a_plugin_thread_left_running_does_not_keep_the_command_line(site: Path) -> None:
    _run, out = probe(site, "leaves-a-thread")
    assert validate(json.loads(out))["features"]["leaves-a-thread"]["status"] == "available"


def test_every_hostile_plugin_at_once_gives_one_valid_report(site: Path) -> None:
    _run, out = probe(site, *ALL)
    report = validate(json.loads(out))
    assert set(report["features"]) == {*ALL, "sendfile"}
    assert report["features"]["sendfile"]["status"] == "available"


def test_a_plugin_that_hangs_on_import_does_not_hang_the_listing(tmp_path: Path) -> None:
    site = plugin_site(
        tmp_path / "site", "slow_import", f"import time\ntime.sleep({HUNG})\n", ["slow-import"]
    )
    run = cli_with_site(site, "--list")
    assert run.elapsed < BOUND, run
    assert run.returncode == 0, run.stderr
    assert "did not load within" in run.stdout
    assert "sendfile" in run.stdout


@pytest.mark.parametrize("raised", ["KeyboardInterrupt", "SystemExit(4)", "BaseException('x')"])
def test_a_plugin_that_raises_on_import_is_listed_as_failed(tmp_path: Path, raised: str) -> None:
    site = plugin_site(tmp_path / "site", "bad_import", f"raise {raised}\n", ["bad-import"])
    run = cli_with_site(site, "--list")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and run.stderr == ""
    line = next(line for line in run.stdout.splitlines() if line.startswith("bad-import"))
    assert "failed to load" in line
    run = cli_with_site(site, "--feature", "bad-import", "--format", "json")
    assert run.returncode in (0, 1, 2) and "Traceback" not in run.stderr, run.stderr
    assert json.loads(run.stdout)["features"]["bad-import"]["status"] == "unknown"


NOISY = """
import os, subprocess, sys
from glance_features.model import FeatureResult, Status

class Noisy:
    name = "noisy"
    summary = "prints to stdout three ways"

    def probe(self, context):
        print("print garbage")
        sys.stdout.flush()
        os.write(1, b"fd garbage\\n")
        subprocess.run(["/bin/echo", "child garbage"], check=False)
        return FeatureResult("noisy", Status.AVAILABLE, "ok")
"""


@pytest.mark.parametrize("fmt", ["json", "prometheus"])
def test_what_a_plugin_prints_never_corrupts_the_report(tmp_path: Path, fmt: str) -> None:
    site = plugin_site(tmp_path / "site", "noisy_plugin", NOISY, ["noisy"])
    run = cli_with_site(site, "--feature", "noisy", "--format", fmt)
    assert run.returncode == 0, run.stderr
    assert "garbage" not in run.stdout
    assert sorted(run.stderr.split()) == sorted(
        ["child", "fd", "print", "garbage", "garbage", "garbage"]
    )
    if fmt == "json":
        assert validate(json.loads(run.stdout))["features"]["noisy"]["status"] == "available"
    else:
        assert run.stdout.startswith("# HELP ")
