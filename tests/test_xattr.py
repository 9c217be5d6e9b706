"""xattr on real file systems: the disk, ramfs, read-only, unwritable, full, noatime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    as_root_in_mount_namespace,
    can_unshare_mounts,
    context,
    isolated_python,
    listing,
    need,
    probe_in_subprocess,
    validate,
    without_dac_override,
)

import glance_features
from glance_features import Settings, Status
from glance_features.detectors.xattr import XattrDetector

# Probe, then list the directory from inside the same namespace, so a leftover
# on a file system that vanishes with the namespace would still be seen.
PROBE_AND_LIST = """
import json, os, sys, glance_features
settings = glance_features.Settings(image_cache_dir=sys.argv[1], image_cache_driver="xattr")
report = glance_features.probe(settings, features=["xattr"])
print(json.dumps({"report": report.to_dict(), "after": sorted(os.listdir(sys.argv[1]))}))
"""


def probe_mounted(
    directory: Path, mount_script: str, prefix: list[str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    need(can_unshare_mounts(), "needs unshare (util-linux) and root or user namespaces")
    argv = [
        *as_root_in_mount_namespace(mount_script),
        *(prefix or []),
        sys.executable,
        "-c",
        PROBE_AND_LIST,
        str(directory),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    validate(out["report"])
    return out["report"]["features"]["xattr"], out["after"]


def test_real_disk_directory_supports_user_xattrs(tmp_path: Path) -> None:
    (tmp_path / "cached-image").write_bytes(b"data")
    before = listing(tmp_path)
    report = glance_features.probe(
        Settings(image_cache_dir=str(tmp_path), image_cache_driver="xattr"), features=["xattr"]
    )
    result = report["xattr"]
    assert result.status in (Status.AVAILABLE, Status.DEGRADED), result.reason
    assert result.required
    assert result.details["probed_dir"] == str(tmp_path)
    assert result.details["cache_dir_exists"] is True
    assert result.details["fs_type"]
    binding = result.details["binding"]
    assert isinstance(binding, str) and binding.startswith(("xattr ", "pyxattr "))
    assert result.details["checked_as"] == "root" or os.geteuid() != 0
    assert listing(tmp_path) == before
    mount_options = result.details["mount_options"]
    assert isinstance(mount_options, tuple)
    if "noatime" not in mount_options:
        assert result.status is Status.AVAILABLE
        assert result.reason.startswith(f"user xattrs work in {tmp_path} as ")


def test_missing_cache_dir_probes_nearest_parent_and_says_so(tmp_path: Path) -> None:
    cache = tmp_path / "glance" / "image-cache"
    result = XattrDetector().probe(context(Settings(image_cache_dir=str(cache))))
    assert result.details["probed_dir"] == str(tmp_path)
    assert result.details["cache_dir_exists"] is False
    assert f"{tmp_path} (Glance will create {cache} there)" in result.reason
    assert not (tmp_path / "glance").exists()
    assert list(tmp_path.iterdir()) == []


def test_ramfs_has_no_user_xattrs(tmp_path: Path) -> None:
    mount = tmp_path / "ramfs"
    mount.mkdir()
    result, after = probe_mounted(mount, f"mount -t ramfs ramfs {mount}")
    assert result["status"] == "unavailable"
    assert result["code"] == 2
    assert result["details"]["errno"] == "EOPNOTSUPP"
    assert result["details"]["fs_type"] == "ramfs"
    assert result["details"]["mount_point"] == str(mount)
    assert "does not support user xattrs" in result["reason"]
    assert "Glance falls back to sqlite" in result["reason"]
    # No mount option gives ramfs user xattrs: moving is the only fix.
    assert result["remediation"] == [
        "move image_cache_dir to a file system with user xattrs (ext4, xfs, btrfs)"
    ]
    assert after == []


def test_read_only_bind_mount(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "keep").write_text("x")
    before = listing(cache)
    result, after = probe_mounted(
        cache, f"mount --bind {cache} {cache}\nmount -o remount,bind,ro {cache}"
    )
    assert result["status"] == "unavailable"
    assert result["details"]["errno"] == "EROFS"
    assert f"{cache} is mounted read-only" in result["reason"]
    assert "ro" in result["details"]["mount_options"]
    assert after == ["keep"]
    assert listing(cache) == before


def test_full_file_system(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    # Two inodes: the root and one file, so nothing more can be created.
    result, after = probe_mounted(
        full, f"mount -t tmpfs -o size=4k,nr_inodes=2 tmpfs {full}\n: > {full}/filler"
    )
    assert result["status"] == "unavailable"
    assert result["details"]["errno"] == "ENOSPC"
    assert "no space or quota left" in result["reason"]
    assert after == ["filler"]


def test_noatime_mount_is_degraded(tmp_path: Path) -> None:
    mount = tmp_path / "noatime"
    mount.mkdir()
    result, after = probe_mounted(mount, f"mount -t tmpfs -o noatime,size=1m tmpfs {mount}")
    need(
        result["details"].get("errno") != "EOPNOTSUPP",
        "this kernel's tmpfs has no user xattrs (Linux 6.6+ has)",
    )
    assert result["status"] == "degraded"
    assert "noatime" in result["details"]["mount_options"]
    assert "mounted noatime: the xattr driver prunes the cache by access time" in result["reason"]
    assert result["remediation"][0].startswith(f"mount -o remount,relatime {mount}")
    assert after == []


def test_directory_the_service_user_cannot_write(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    # As root, take away the capabilities that override file permissions, so
    # the probe meets the directory as an unprivileged service user would.
    prefix = without_dac_override()
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", PROBE_AND_LIST, str(cache)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    result = out["report"]["features"]["xattr"]
    assert result["status"] == "unavailable"
    assert result["details"]["errno"] == "EACCES"
    user = result["details"]["checked_as"]
    assert result["reason"].endswith(f"{user} cannot write there")
    assert result["remediation"] == [
        f"install -d -o {user} -g {user} -m 0750 {cache}  "
        "# the cache dir itself, never a parent such as /var/lib"
    ]
    assert out["after"] == []


def test_binding_missing_still_reports_the_file_system(tmp_path: Path) -> None:
    python, env = isolated_python(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    result = probe_in_subprocess("xattr", {"image_cache_dir": str(cache)}, python=python, env=env)
    assert result["status"] == "unavailable"
    assert result["reason"] == (
        "the Python xattr binding that Glance's cache driver imports is not installed "
        f"for the service's interpreter {python[0]}; Glance falls back to its sqlite "
        "cache driver"
    )
    assert result["remediation"][0].endswith("-m pip install xattr")
    assert result["details"]["binding"] is None
    assert result["details"]["mount_point"]
    assert list(cache.iterdir()) == []


def test_stale_checkme_link_is_never_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "checkme").symlink_to(target)
    before = listing(tmp_path)
    result = XattrDetector().probe(context(Settings(image_cache_dir=str(tmp_path))))
    assert result.status is Status.DEGRADED, result.reason
    assert f"{tmp_path}/checkme is a symbolic link to {target}" in result.reason
    assert result.remediation == (
        f"rm {tmp_path}/checkme  # Glance's own check file; it recreates it",
    )
    assert not target.exists()
    assert listing(tmp_path) == before


def test_unset_and_relative_cache_dirs_are_refused() -> None:
    unset = XattrDetector().probe(context(Settings(image_cache_driver="xattr")))
    assert unset.status is Status.UNAVAILABLE
    assert unset.reason.startswith("image_cache_dir is not set: Glance has no default")
    relative = XattrDetector().probe(context(Settings(image_cache_dir="cache")))
    assert relative.status is Status.UNAVAILABLE
    assert "is a relative path" in relative.reason


def test_windows_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    result = XattrDetector().probe(context())
    assert result.status is Status.UNAVAILABLE
    assert result.reason == "extended attributes are not supported on Windows"


def test_a_check_that_cannot_run_as_the_user_is_unknown(tmp_path: Path) -> None:
    """The probe's own failure says nothing about the cache directory."""
    import dataclasses

    need(os.geteuid() == 0, "runs the check as another account: needs root")
    ctx = dataclasses.replace(
        context(Settings(image_cache_dir=str(tmp_path))), user="no-such-user-here"
    )
    result = XattrDetector().probe(ctx)
    assert result.status is Status.UNKNOWN
    assert result.reason.startswith("could not run the check as no-such-user-here")
    assert list(tmp_path.iterdir()) == []


def service_account() -> str | None:
    import pwd

    try:
        return pwd.getpwnam("glance").pw_name if os.geteuid() == 0 else None
    except KeyError:
        return None


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory the glance account can reach (pytest's tmp_path is root's, 0700)."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="glance-features-xattr-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def probe_as(user: str, cache: Path) -> dict[str, Any]:
    """The xattr result as the command line gets it, checked as ``user``, in
    a fresh interpreter (a fork in this one would meet whatever it imported)."""
    conf = cache.parent / "glance-api.conf"
    conf.write_text(f"[DEFAULT]\nimage_cache_driver = xattr\nimage_cache_dir = {cache}\n")
    run = subprocess.run(
        [sys.executable, "-m", "glance_features", "--config-file", str(conf), "--user", user,
         "--python", sys.executable, "--feature", "xattr", "--format", "json"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert run.stdout, run.stderr
    found: dict[str, Any] = json.loads(run.stdout)["features"]["xattr"]
    return found


def test_a_root_only_cache_dir_is_the_accounts_problem_not_the_probes(shared: Path) -> None:
    """A 0700 root-owned cache dir, checked as glance: unavailable, saying who
    cannot reach what, never unknown."""
    user = service_account()
    need(user is not None, "needs root and a glance account (useradd --system glance)")
    assert user is not None
    cache = shared / "cache"
    cache.mkdir(mode=0o700)
    (cache / "checkme").write_bytes(b"XXX")
    result = probe_as(user, cache)
    assert result["status"] == "unavailable", result["reason"]
    assert f"{user} cannot write there" in result["reason"]
    assert result["details"]["step"] == f"stat {cache}/checkme"  # inside the cache dir
    assert result["details"]["errno"] == "EACCES"
    assert result["remediation"][0].startswith(f"install -d -o {user} -g {user}")


def test_cache_subdirectories_the_account_cannot_write(shared: Path) -> None:
    """Debian ships incomplete/, invalid/ and queue/ owned by root: the driver
    configures, then every cache write fails. Glance's own write shows it."""
    user = service_account()
    need(user is not None, "needs root and a glance account (useradd --system glance)")
    assert user is not None
    import shutil

    cache = shared / "cache"
    cache.mkdir()
    shutil.chown(cache, user, user)
    for sub in ("incomplete", "invalid", "queue"):
        (cache / sub).mkdir(mode=0o755)  # root's, as the package leaves them
    shutil.chown(cache / "queue", user, user)
    result = probe_as(user, cache)
    # What Glance's cache does first with every image, as that account.
    write = subprocess.run(
        ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--",
         "sh", "-c", f"echo x > {cache}/incomplete/image-id"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert write.returncode != 0 and "Permission denied" in write.stderr
    need(result["details"].get("binding") is not None, "the xattr binding is not installed")
    assert result["status"] == "unavailable", result["reason"]
    assert sorted(result["details"]["unwritable_subdirs"]) == ["incomplete", "invalid"]
    assert result["remediation"] == [f"chown {user}:{user} {cache}/incomplete {cache}/invalid"]


def test_not_required_where_glance_never_loads_its_cache() -> None:
    """No image_cache_dir and no cache filter in the pipeline: no Glance
    release builds its image cache, so the xattr driver is never used."""
    unused = glance_features.probe(Settings(image_cache_driver="xattr"), features=["xattr"])
    assert unused["xattr"].required is False
    assert unused["xattr"].used_by_glance is False
    assert unused.code == 0
    caching = Settings(
        {("paste_deploy", "flavor"): "keystone+cachemanagement"}, image_cache_driver="xattr"
    )
    filtered = glance_features.probe(caching, features=["xattr"])
    assert filtered["xattr"].required is True
    assert filtered["xattr"].status is Status.UNAVAILABLE  # the filter refuses no cache dir
