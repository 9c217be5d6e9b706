"""The xattr verdict agrees with Glance's own cache driver on the same directory.

Needs a virtualenv with Glance installed, named by GLANCE_VENV (tests/run.sh
makes one in .venv-glance). Glance's configure() creates its cache layout
(incomplete/, invalid/, queue/) in the directory, so each side gets its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import as_root_in_mount_namespace, can_unshare_mounts, need

DRIVER = str(Path(__file__).with_name("glance_xattr_driver.py"))
GLANCE_PYTHON = os.path.join(os.environ.get("GLANCE_VENV", ".venv-glance"), "bin", "python")

BOTH = """
import json, subprocess, sys, glance_features
glance_dir, ours_dir = sys.argv[1], sys.argv[2]
settings = glance_features.Settings(image_cache_dir=ours_dir, image_cache_driver="xattr")
ours = glance_features.probe(settings, features=["xattr"])["xattr"]
glance = subprocess.run([sys.argv[3], sys.argv[4], glance_dir], capture_output=True, text=True)
print(json.dumps({"ours": ours.to_dict(), "glance": json.loads(glance.stdout or "{}"),
                  "glance_stderr": glance.stderr[-500:]}))
"""


def run_both(tmp_path: Path, mount_script: str | None = None) -> dict[str, Any]:
    need(
        os.path.exists(GLANCE_PYTHON),
        "no Glance virtualenv (set GLANCE_VENV; tests/run.sh "
        "makes .venv-glance with 'pip install glance xattr')",
    )
    glance_dir, ours_dir = tmp_path / "glance", tmp_path / "ours"
    glance_dir.mkdir()
    ours_dir.mkdir()
    prefix: list[str] = []
    if mount_script is not None:
        need(can_unshare_mounts(), "needs unshare (util-linux) and root or user namespaces")
        script = mount_script.format(glance=glance_dir, ours=ours_dir)
        prefix = as_root_in_mount_namespace(script)
    proc = subprocess.run(
        [
            *prefix,
            sys.executable,
            "-c",
            BOTH,
            str(glance_dir),
            str(ours_dir),
            os.path.abspath(GLANCE_PYTHON),
            DRIVER,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    assert out["glance"], out["glance_stderr"]
    return out


def test_disk_directory_both_accept(tmp_path: Path) -> None:
    out = run_both(tmp_path)
    assert out["glance"]["configured"] is True
    assert out["ours"]["available"] is True


def test_ramfs_both_refuse(tmp_path: Path) -> None:
    out = run_both(tmp_path, "mount -t ramfs ramfs {glance}\nmount -t ramfs ramfs {ours}")
    assert out["glance"]["configured"] is False and out["glance"]["refused"] is True
    assert "does not support xattr" in out["glance"]["error"]
    assert out["ours"]["status"] == "unavailable"
    assert out["ours"]["details"]["errno"] == "EOPNOTSUPP"


def test_read_only_both_fail(tmp_path: Path) -> None:
    out = run_both(
        tmp_path,
        "for d in {glance} {ours}; do mount --bind $d $d; mount -o remount,bind,ro $d; done",
    )
    assert out["glance"]["configured"] is False
    assert out["ours"]["status"] == "unavailable"
    assert out["ours"]["details"]["errno"] == "EROFS"
