"""``glance-features status`` where Glance is not installed (the development
venv): our checks still run, Glance's say why they did not, one-line errors for
bad configuration. tests/functional runs it beside a real Glance."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import run_cli


def env_with_path(path: Path) -> dict[str, str]:
    # Only a directory we made on PATH: no qemu-img, whatever the host has.
    return {**os.environ, "PATH": str(path), "OS_GLANCE_CONFIG_DIR": str(path)}


def test_listed_in_help() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    assert "status" in proc.stdout


def test_required_missing_fails_and_unused_missing_is_a_note(tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    conf.write_text("[image_import_opts]\nimage_import_plugins = ['image_conversion']\n")
    proc = run_cli("status", "--json", "--config-file", str(conf), env=env_with_path(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    checks = {c["check"]: c for c in json.loads(proc.stdout)["checks"]}
    qemu = checks["glance-features: qemu-img"]
    assert qemu["result"] == 2
    assert qemu["details"].startswith("unavailable: qemu-img not found on PATH To fix: ")
    assert "required by: image_conversion" in qemu["details"]
    xattr = checks["glance-features: xattr"]  # image_cache_dir unset: unavailable, unused
    assert xattr["result"] == 0
    assert xattr["details"].startswith("Note: not used by this configuration; ")


def test_the_service_config_dir_is_the_default(tmp_path: Path) -> None:
    (tmp_path / "glance-api.conf").write_text(
        "[image_import_opts]\nimage_import_plugins = ['image_conversion']\n"
    )
    proc = run_cli("status", env=env_with_path(tmp_path))
    # Read from OS_GLANCE_CONFIG_DIR: what it requires and lacks is a failure.
    assert proc.returncode == 2, proc.stdout + proc.stderr
    check = proc.stdout.split("Check: glance-features: qemu-img", 1)[1].split("+---", 1)[0]
    assert "Result: Failure" in check
    assert "image_conversion" in check


def test_missing_config_is_one_line(tmp_path: Path) -> None:
    proc = run_cli("status", "--config-file", str(tmp_path / "nope.conf"))
    assert proc.returncode == 64
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith("glance-features: error: ")
