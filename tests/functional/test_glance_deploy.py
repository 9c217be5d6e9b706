"""Smoke tests for glance_deploy: a real Glance 33 imports a qcow2 image with
the image_conversion plugin when qemu-img is on its PATH, and fails the import
when it is not, or when [wsgi] python_interpreter is left to uWSGI's default;
it also runs as an unprivileged user, and an xattr cache on ramfs makes it
fall back to the SQLite driver rather than refuse to start. Each import test
prints its timings (see them with -rP)."""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import need

from .glance_deploy import (
    GlanceConfig,
    GlanceDeployment,
    GlanceUnavailable,
    ImportOutcome,
    Interpreter,
    make_qcow2,
    tool_path,
)

pytestmark = pytest.mark.functional

ONE_MIB = 1024 * 1024


def import_qcow2(deployment: GlanceDeployment, workdir: Path) -> ImportOutcome:
    client = deployment.client()
    assert client.healthcheck().body == b"OK"
    outcome = client.import_qcow2("smoke", make_qcow2(workdir / "disk.qcow2"))
    print(f"timings {deployment.timings}, import {outcome.seconds:.2f} s")
    return outcome


def converting(path: str) -> GlanceConfig:
    """Glance set to convert imports to raw, with ``path`` as the service's PATH."""
    return GlanceConfig(image_import_plugins=["image_conversion"], service_path=path)


def assert_group_gone(deployment: GlanceDeployment, pgid: int) -> None:
    assert deployment.process is None
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)


def test_qcow2_becomes_raw_with_qemu_img(tmp_path: Path, venv: Path, qemu_img: str) -> None:
    with GlanceDeployment(tmp_path / "glance", converting(tool_path(tmp_path, "qemu-img"))) as g:
        assert g.process is not None
        pgid = g.process.pid
        outcome = import_qcow2(g, tmp_path)
        assert outcome.image.status == "active", (outcome, g.log_errors())
        assert outcome.image.disk_format == "raw"
        assert outcome.image.size == ONE_MIB
        assert g.client().download(outcome.image.id) == bytes(ONE_MIB)
    assert "qemu-img convert -f qcow2 -O raw" in g.log_text()
    assert_group_gone(g, pgid)


def test_import_fails_without_qemu_img_on_path(tmp_path: Path, venv: Path, qemu_img: str) -> None:
    with GlanceDeployment(tmp_path / "glance", converting(tool_path(tmp_path))) as g:
        outcome = import_qcow2(g, tmp_path)
    # The image goes back to queued, the task says nothing useful, the log says why.
    assert outcome.image.status == "queued", outcome
    assert outcome.image.disk_format == "qcow2"
    assert outcome.image.raw.get("os_glance_failed_import") == "fs"
    assert outcome.failure_message == "Task failed due to Internal Error"
    log = g.log_text()
    assert "prlimit: failed to execute qemu-img: [Errno 2] No such file or directory" in log


def test_unset_python_interpreter_runs_uwsgi_as_python(
    tmp_path: Path, venv: Path, qemu_img: str
) -> None:
    config = replace(
        converting(tool_path(tmp_path, "qemu-img")), python_interpreter=Interpreter.UNSET
    )
    with GlanceDeployment(tmp_path / "glance", config) as g:
        outcome = import_qcow2(g, tmp_path)
    # sys.executable under uWSGI is the uwsgi binary, which takes -m for --master.
    assert outcome.image.status == "queued", outcome
    log = g.log_text()
    assert f"{venv}/bin/uwsgi -m oslo_concurrency.prlimit" in log
    assert "unable to load configuration from oslo_concurrency.prlimit" in log


def test_runs_as_service_user(open_tmp: Path, venv: Path, qemu_img: str, service_user: str) -> None:
    config = replace(converting(tool_path(open_tmp, "qemu-img")), run_as=service_user)
    try:
        with GlanceDeployment(open_tmp / "glance", config) as g:
            assert g.process is not None
            data = (g.data_dir / "images", g.data_dir / "staging")
            owners = {p.stat().st_uid for p in data}
            outcome = import_qcow2(g, open_tmp)
            status = Path(f"/proc/{g.process.pid}/status").read_text()
    except GlanceUnavailable as err:
        # e.g. the user cannot run a venv made from pyenv's Python in root's 0700 home
        need(False, str(err))
        return
    assert outcome.image.status == "active", (outcome, g.log_errors())
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    assert owners == {int(uid)} != {0}


def test_xattr_cache_on_ramfs_falls_back_to_sqlite(
    tmp_path: Path, venv: Path, qemu_img: str
) -> None:
    need(os.geteuid() == 0 and shutil.which("unshare") is not None, "needs root and unshare")
    cache = tmp_path / "cache"
    cache.mkdir()
    # Mounted in the service's own mount namespace, gone when it exits.
    mount = f'mount -t ramfs ramfs {shlex.quote(str(cache))}\nexec "$@"'
    config = GlanceConfig(
        image_cache_driver="xattr",
        image_cache_dir=cache,
        wrap=["unshare", "-m", "sh", "-ec", mount, "sh"],
    )
    with GlanceDeployment(tmp_path / "glance", config) as g:
        assert g.client().request("GET", "/v2/cache").status == 200
    log = g.log_text()
    assert f"The device housing the image cache directory {cache} does not support xattr" in log
    assert "Defaulting to SQLite driver." in log
