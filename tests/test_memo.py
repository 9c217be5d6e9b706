"""The command line remembers a slow try (eventlet's import and patch in the
service's interpreter) until the interpreter or the distributions change,
in a directory it trusts only when it is its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import need, validate
from glance_harness import GLANCE_PYTHON
from safety_support import as_user, clean_env, need_root

from glance_features._platform import memo

BROKEN_PAIR = ("--disable-pip-version-check", "eventlet==0.33.2", "dnspython==2.3.0")
KEY = {"check": "example", "python": ["/usr/bin/python3", 1, 2]}


@pytest.fixture
def cache_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(memo, "base", lambda: str(tmp_path))
    return tmp_path


def test_a_value_is_recalled_for_its_key_only(cache_base: Path) -> None:
    assert memo.recall(KEY) is None
    memo.remember(KEY, {"found": [1, "two"]})
    value, when = memo.recall(KEY) or (None, "")
    assert value == {"found": [1, "two"]}
    assert when.endswith("Z")
    assert memo.recall({**KEY, "python": ["/usr/bin/python3", 1, 3]}) is None
    directory = cache_base / memo.NAME
    assert directory.stat().st_mode & 0o777 == 0o700
    assert [p.stat().st_mode & 0o777 for p in directory.iterdir()] == [0o600]


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o755])
def test_a_directory_open_to_others_is_neither_read_nor_written(
    cache_base: Path, mode: int
) -> None:
    memo.remember(KEY, "kept")
    directory = cache_base / memo.NAME
    directory.chmod(mode)
    assert memo.recall(KEY) is None
    before = sorted(p.name for p in directory.iterdir())
    memo.remember({"other": 1}, "new")
    assert sorted(p.name for p in directory.iterdir()) == before


def test_a_planted_link_is_never_followed(cache_base: Path, tmp_path_factory: Any) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    elsewhere.chmod(0o700)
    (cache_base / memo.NAME).symlink_to(elsewhere)
    memo.remember(KEY, "value")
    assert list(elsewhere.iterdir()) == []
    assert memo.recall(KEY) is None


def test_an_entry_that_is_a_link_or_too_large_is_ignored(cache_base: Path) -> None:
    memo.remember(KEY, "value")
    directory = cache_base / memo.NAME
    (entry,) = directory.iterdir()
    target = cache_base / "target.json"
    target.write_bytes(entry.read_bytes())
    entry.unlink()
    entry.symlink_to(target)
    assert memo.recall(KEY) is None
    entry.unlink()
    entry.write_text(json.dumps({"key": KEY, "value": "x" * memo.MAX_ENTRY, "at": "now"}))
    assert memo.recall(KEY) is None


@pytest.fixture(scope="module")
def broken_pair() -> Iterator[Path]:
    """A service interpreter with the pair of eventlet issue #781, which
    fails to import: the try that the command line remembers."""
    need_root()
    base = Path(tempfile.mkdtemp(prefix="gf-memo-", dir="/var/tmp"))
    base.chmod(0o755)
    try:
        venv = base / "venv"
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, timeout=120)
        proc = subprocess.run(
            [str(venv / "bin/python"), "-m", "pip", "install", "-q", *BROKEN_PAIR],
            capture_output=True,
            text=True,
            timeout=300,
        )
        need(proc.returncode == 0, f"cannot install eventlet 0.33.2: {proc.stderr[-300:]}")
        subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True, timeout=60)
        yield venv / "bin/python"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _probe(python: Path, cache: Path, workaround: bool = False) -> dict[str, Any]:
    env = clean_env(XDG_CACHE_HOME=str(cache))
    if workaround:
        env["EVENTLET_NO_GREENDNS"] = "yes"
    proc = subprocess.run(
        [*as_user("nobody"), GLANCE_PYTHON, "-I", "-m", "glance_features", *_args(python)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode in (0, 1, 2), proc.stderr
    result: dict[str, Any] = validate(json.loads(proc.stdout))["features"]["dnspython-ipv6"]
    return result


def test_the_command_line_remembers_a_try_until_the_files_change(broken_pair: Path) -> None:
    need(os.path.exists(GLANCE_PYTHON), f"no Glance virtualenv at {GLANCE_PYTHON}")
    cache = Path(tempfile.mkdtemp(prefix="gf-memo-cache-", dir="/var/tmp"))
    try:
        os.chown(cache, *_ids("nobody"))
        broken = _probe(broken_pair, cache)
        assert broken["status"] == "unavailable", broken["reason"]
        assert "`import eventlet` fails" in broken["reason"]
        assert broken["details"]["imports_with_workaround"] is True
        # What worked is kept (the try with the workaround); the failure is
        # not: it may be passing, and is tried again next time.
        assert len(list((cache / memo.NAME).iterdir())) == 1
        again = _probe(broken_pair, cache)
        assert "tried_at" not in again["details"]
        assert again["status"] == "unavailable"

        # With the workaround in the service's environment: that try, kept.
        worked = _probe(broken_pair, cache, workaround=True)
        assert worked["status"] == "available", worked["reason"]
        assert worked["reason"].endswith("; the same interpreter and files since)")
        assert worked["details"]["tried_at"].endswith("Z")

        # dnspython replaced (its metadata directory changes): tried again.
        site = broken_pair.parent.parent / "lib"
        (record,) = site.glob("python3*/site-packages/dnspython-2.3.0.dist-info")
        record.chmod(0o755)
        fresh = _probe(broken_pair, cache, workaround=True)
        assert "tried_at" not in fresh["details"]
        assert fresh["status"] == "available"
        assert fresh["reason"] == worked["reason"].rsplit(" (as tried at ", 1)[0]
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _args(python: Path) -> list[str]:
    return ["--python", str(python), "--feature", "dnspython-ipv6", "--format", "json"]


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
