"""Issue 12, class 3: binaries the probe runs. Only absolute PATH entries are
searched; a qemu-img that another user can replace is reported with a
warning; nothing else is looked up on PATH (no ``lsb_release``, no ``uname``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from safety_support import (
    DEEP_QEMU_IMG_AS_ROOT,
    clean_env,
    cli,
    other_user,
    script,
    world_traversable_dir,
)

HELP = "qemu-img version 8.2.2"
# A working stand-in, so the verdict depends only on where it is found.
FAKE = f"""case "$1" in
  --version) echo "{HELP}";;
  create) : > "$5";;
  info) echo '{{"format": "qcow2"}}';;
  convert) : > "$7";;
esac
"""


def verdict(run_stdout: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(run_stdout)["features"]["qemu-img"]
    return result


def probe_at(path: str | Path, *args: str, cwd: Path | None = None) -> dict[str, object]:
    """The deep qemu-img check's verdict, as root, with ``PATH=path``."""
    run = cli(
        *DEEP_QEMU_IMG_AS_ROOT, *args, "--format", "json", cwd=cwd, env=clean_env(PATH=str(path))
    )
    assert run.returncode in (0, 1, 2), run.stderr
    return verdict(run.stdout)


@pytest.mark.parametrize("path", ["", ".", "bin", "./bin", ":", "bin:"])
def test_relative_and_empty_path_entries_are_never_searched(tmp_path: Path, path: str) -> None:
    work = tmp_path / "cwd"
    marker = tmp_path / "pwned"
    for where in (work / "qemu-img", work / "bin" / "qemu-img"):
        script(where, f"touch {marker}\n{FAKE}")
    result = probe_at(path, cwd=work)
    assert not marker.exists()
    assert result["status"] == "unavailable"
    assert result["reason"] == "qemu-img not found on PATH"


def test_an_absolute_entry_after_a_relative_one_is_used(tmp_path: Path) -> None:
    work, good = tmp_path / "cwd", tmp_path / "good"
    marker = tmp_path / "pwned"
    script(work / "qemu-img", f"touch {marker}\n{FAKE}")
    script(good / "qemu-img", FAKE)
    run = cli(
        "--feature",
        "qemu-img",
        "--format",
        "json",
        "--user",
        "root",
        cwd=work,
        env=clean_env(PATH=f".::{good}"),
    )
    assert not marker.exists()
    assert verdict(run.stdout)["details"]["path"] == str(good / "qemu-img")  # type: ignore[index]


@pytest.fixture
def public() -> Iterator[Path]:
    # Under /run (root's, not sticky): under /tmp every binary has a sticky
    # world-writable directory above it.
    with world_traversable_dir("/run") as path:
        yield path


def test_a_qemu_img_owned_by_another_user_is_degraded(public: Path) -> None:
    user = other_user()
    binary = script(public / "bin" / "qemu-img", FAKE)
    os.chown(binary, int(subprocess.check_output(["id", "-u", user])), -1)
    result = probe_at(binary.parent)
    assert result["status"] == "degraded"
    assert f"{binary} can be written by users other than root" in str(result["reason"])


@pytest.mark.parametrize("mode", [0o1777, 0o777, 0o775])
def test_a_qemu_img_in_a_directory_others_can_write_is_degraded(public: Path, mode: int) -> None:
    binary = script(public / "bin" / "qemu-img", FAKE)
    binary.parent.chmod(mode)
    result = probe_at(binary.parent)
    assert result["status"] == "degraded"
    assert f"{binary.parent} can be written by users other than root" in str(result["reason"])


def test_a_link_to_qemu_img_in_a_directory_others_can_write_is_degraded(public: Path) -> None:
    # The link, not only its target, can be replaced by any user.
    real = script(public / "safe" / "qemu-img", FAKE)
    shared = public / "shared"
    shared.mkdir(mode=0o1777)
    shared.chmod(0o1777)
    (shared / "qemu-img").symlink_to(real)
    result = probe_at(shared)
    assert result["status"] == "degraded", result
    assert f"{shared} can be written by users other than root" in str(result["reason"])


def test_a_root_owned_qemu_img_is_not_flagged(public: Path) -> None:
    result = probe_at(script(public / "bin" / "qemu-img", FAKE).parent)
    assert result["status"] in ("available", "degraded"), result
    assert "can be written by users other than root" not in str(result["reason"])


STUBS = (
    "lsb_release",
    "uname",
    "ldconfig",
    "gcc",
    "cc",
    "ld",
    "objdump",
    "sh",
    "python3",
    "python",
    "id",
    "getent",
    "mount",
    "findmnt",
    "df",
    "stat",
    "ip",
    "hostname",
)


def test_nothing_but_qemu_img_is_looked_up_on_path(tmp_path: Path) -> None:
    stubs, markers = tmp_path / "stubs", tmp_path / "markers"
    markers.mkdir()
    for name in STUBS:
        script(stubs / name, f"touch {markers / name}\nexit 1\n")
    conf = tmp_path / "glance-api.conf"
    conf.write_text(
        f"[DEFAULT]\npydev_worker_debug_host = 127.0.0.1\nimage_cache_dir = {tmp_path / 'cache'}\n"
    )
    run = cli(
        "--deep",
        "--config-file",
        str(conf),
        "--format",
        "json",
        env=clean_env(PATH=f"{stubs}:/usr/bin:/bin"),
    )
    assert run.returncode in (0, 1, 2), run.stderr
    assert sorted(p.name for p in markers.iterdir()) == []


def test_a_relative_python_interpreter_is_never_run_from_the_cwd(tmp_path: Path) -> None:
    work, marker = tmp_path / "cwd", tmp_path / "pwned"
    script(work / "python3", f'touch {marker}\nexec {sys.executable} "$@"\n')
    conf = tmp_path / "glance-api.conf"
    conf.write_text("[wsgi]\npython_interpreter = python3\n")
    result = probe_at(f".:{work}:/usr/bin:/bin", "--config-file", str(conf), cwd=work)
    assert not marker.exists()
    assert result["status"] != "available"
