"""The command line run as an ordinary account, as a new user runs it: neither
root nor the service account, with Glance in the probe's venv and with
Glance elsewhere (``--python``). Root's tests do not see what an account
that cannot run another interpreter, or switch users, meets.

Each run enables every built-in detector's feature, so every detector runs;
none may crash (``probe failed: ...``) and the xattr verdict is compared with
Glance's own driver run as the same account on the same directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SOURCE_ROOT, context, copy_runtime_dependencies, need, validate
from glance_harness import GLANCE_PYTHON, HERE

from glance_features.detectors.xattr import XattrDetector
from glance_features.model import Status
from glance_features.registry import BUILTIN
from glance_features.settings import Settings

pytestmark = pytest.mark.functional

BUILTINS = tuple(BUILTIN)


def _setpriv(user: str) -> list[str]:
    entry = pwd.getpwnam(user)
    return [
        shutil.which("setpriv") or "/usr/bin/setpriv",
        f"--reuid={entry.pw_uid}",
        f"--regid={entry.pw_gid}",
        "--clear-groups",
        "--",
    ]


@pytest.fixture(scope="module")
def ready() -> None:
    need(os.geteuid() == 0, "switches to unprivileged accounts: run as root")
    need(shutil.which("setpriv") is not None, "setpriv (util-linux) is not installed")
    need(os.path.exists(GLANCE_PYTHON), f"no Glance virtualenv at {GLANCE_PYTHON}")


@pytest.fixture(scope="module")
def fresh_account(ready: None) -> Iterator[str]:
    """An account made for this run, with no home and no groups."""
    name = f"gf{secrets.token_hex(4)}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        timeout=60,
    )
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, timeout=60)


@pytest.fixture(scope="module")
def probe_without_glance(ready: None) -> Iterator[Path]:
    """glance-features installed without Glance, in a venv over the system's
    Python that any account can run: the probe of "Glance elsewhere"."""
    base = Path(tempfile.mkdtemp(prefix="gf-probe-venv-", dir="/var/tmp"))
    try:
        base.chmod(0o755)
        subprocess.run(
            ["/usr/bin/python3", "-m", "venv", "--without-pip", str(base / "venv")],
            check=True,
            timeout=120,
        )
        deps = base / "deps"
        copy_runtime_dependencies(deps)
        site = subprocess.run(
            [
                str(base / "venv/bin/python"),
                "-c",
                "import sysconfig; print(sysconfig.get_path('purelib'))",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        Path(site, "glance_features_test.pth").write_text(f"{deps}\n{SOURCE_ROOT}\n")
        subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True, timeout=60)
        yield base / "venv/bin/python"
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["nobody", "fresh"])
def account(request: pytest.FixtureRequest, ready: None) -> str:
    if request.param == "fresh":
        return str(request.getfixturevalue("fresh_account"))
    need(_has_account("nobody"), "no nobody account")
    return "nobody"


def _has_account(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture
def host(account: str) -> Iterator[dict[str, Path]]:
    """A cache dir and a store dir the account owns, on a disk file system
    (user xattrs), and a config enabling every built-in feature."""
    entry = pwd.getpwnam(account)
    base = Path(tempfile.mkdtemp(prefix="gf-account-", dir="/var/tmp"))
    try:
        base.chmod(0o755)
        cache, store = base / "image-cache", base / "images"
        for directory in (cache, store):
            directory.mkdir()
            os.chown(directory, entry.pw_uid, entry.pw_gid)
        config = base / "glance-api.conf"
        config.write_text(
            "[DEFAULT]\n"
            "image_cache_driver = xattr\n"
            f"image_cache_dir = {cache}\n"
            "enabled_backends = local:file\n"
            "pydev_worker_debug_host = 127.0.0.1\n"
            "pydev_worker_debug_port = 9\n"
            "[glance_store]\n"
            "default_backend = local\n"
            "[local]\n"
            f"filesystem_store_datadir = {store}\n"
            "[os_glance_staging_store]\n"
            f"filesystem_store_datadir = {store}\n"
        )
        (base / "glance-image-import.conf").write_text(
            "[image_import_opts]\n"
            "image_import_plugins = ['image_conversion', 'image_decompression']\n"
            "[image_conversion]\n"
            "output_format = raw\n"
        )
        yield {"base": base, "cache": cache, "config": config}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _probe(account: str, argv: list[str], config: Path) -> tuple[dict[str, Any], str]:
    proc = subprocess.run(
        [*_setpriv(account), *argv, "--config-file", str(config), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd="/",
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
    )
    assert proc.returncode in (0, 1, 2), (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    report = validate(json.loads(proc.stdout))
    assert report["code"] == proc.returncode
    return report, proc.stderr


def _glance_xattr(account: str, cache: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [*_setpriv(account), GLANCE_PYTHON, str(HERE / "glance_xattr_driver.py"), str(cache)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd="/",
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    found: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("where", ["in the probe's venv", "elsewhere"])
def test_every_detector_as_an_ordinary_account(
    where: str, account: str, host: dict[str, Path], request: pytest.FixtureRequest
) -> None:
    if where == "elsewhere":
        python = request.getfixturevalue("probe_without_glance")
        argv = [str(python), "-m", "glance_features", "--python", GLANCE_PYTHON]
    else:
        argv = [GLANCE_PYTHON, "-m", "glance_features"]
    report, _ = _probe(account, argv, host["config"])
    assert report["checked_as"] in (None, account)
    features = report["features"]
    assert sorted(features) == sorted(BUILTINS)
    for name, result in features.items():
        assert not result["reason"].startswith("probe failed"), (name, result["reason"])
        assert result["status"] != "unknown", (name, result["reason"])
    # Glance's own driver, as the same account, on the same directory.
    glance = _glance_xattr(account, host["cache"])
    assert glance["driver"] == "xattr", glance
    xattr = features["xattr"]
    assert xattr["status"] == "available", xattr["reason"]
    assert f"as {account}" in xattr["reason"]
    assert xattr["details"]["python"] == GLANCE_PYTHON or os.path.samefile(
        xattr["details"]["python"], GLANCE_PYTHON
    )


def test_a_binding_that_cannot_be_looked_for_is_unknown_not_a_crash(tmp_path: Path) -> None:
    """The service's interpreter cannot be run (here: no execute bit; for an
    account, one under root's 0700 home): the lookup fails, and the verdict
    says what could not be looked at, after the cache dir was checked."""
    python = tmp_path / "python3"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o644)
    cache = tmp_path / "cache"
    cache.mkdir()
    settings = Settings(image_cache_driver="xattr", image_cache_dir=str(cache))
    found = XattrDetector().probe(dataclasses.replace(context(settings), python=str(python)))
    assert found.status is Status.UNKNOWN, found.reason
    assert found.reason.startswith(f"the xattr binding could not be looked for in {python}: ")
    assert "Permission denied" in found.reason
    assert found.details["python"] == str(python)
    assert found.details["binding"] is None
    assert found.remediation == ()
