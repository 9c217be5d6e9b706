"""xattr cases of issue 28 that no verdict modelled, each held to Glance's own driver.

* setxattr failing with ENOSPC (a real ext4 with 128-byte inodes, so an xattr
  needs a block of its own, with one block free), or with EPERM or EDQUOT
  (fault injection: a seccomp filter, tests/seccomp_errno.py, since this
  kernel has no quota support and no file system refuses user xattrs on a
  regular file with EPERM). Glance's configure() ignores every setxattr error
  but EOPNOTSUPP: it keeps the xattr driver and every cache write fails.
* No block free at all: the write of ``checkme`` fails before setxattr and
  raises out of configure(): the cache does not load.
* Served without a cache filter in the pipeline: the v2 cache API still loads
  the cache (so the driver) whenever image_cache_dir is set, and its worker
  writes into it; with image_cache_dir unset nothing loads it.

Each test runs Glance's driver (tests/glance_xattr_driver.py) of every release,
as the glance account, on the same directory as the probe, or a running Glance
(tests/releases/harness.py), and asserts the probe's verdict is its outcome.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SOURCE_ROOT, need
from functional.glance_deploy import GlanceClient, GlanceConfig
from functional.postgres import POSTGRES_ENV
from releases.harness import RELEASES, Mode, release, run_probe, start_glance
from test_release_cases import _deploy
from test_releases import READY_TIMEOUT, Case, _release, service_user

from glance_features.checks import SET_XATTR_STEP

__all__ = ["service_user"]  # the fixture, shared with test_releases

HERE = Path(__file__).parent
DRIVER = HERE / "glance_xattr_driver.py"
SECCOMP = HERE / "seccomp_errno.py"
IMAGE_ID = "c0ffee00-0000-4000-8000-000000000001"  # the one glance_xattr_driver.py writes
FIRST_USE = "fails at first use"
FAILS_TO_LOAD = "its image cache fails to load"


def _need_loop_ext4() -> None:
    need(os.geteuid() == 0, "mounts a loop device: needs root")
    for tool in ("mkfs.ext4", "losetup", "mount", "umount"):
        need(shutil.which(tool) is not None, f"{tool} is not installed (e2fsprogs, util-linux)")


def _run(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, (argv, proc.stderr)
    return proc.stdout


def _fill(mount: Path, free: int) -> None:
    """Root-owned files until ``free`` blocks are left to an unprivileged user."""
    for i in range(64):
        os.sync()
        vfs = os.statvfs(mount)
        extra = vfs.f_bavail - free
        if extra <= 0:
            break
        # Leave room for the filler's own extent blocks, then close in by one.
        blocks = extra - 2 if extra > 8 else 1
        fd = os.open(mount / f"filler{i}", os.O_CREAT | os.O_WRONLY, 0o600)
        try:
            os.posix_fallocate(fd, 0, blocks * vfs.f_bsize)
        finally:
            os.close(fd)
    os.sync()
    assert os.statvfs(mount).f_bavail == free, os.statvfs(mount)


@pytest.fixture
def nearly_full_ext4(service_user: str, request: pytest.FixtureRequest) -> Iterator[Path]:
    """An image cache directory (with Glance's three subdirectories, the
    account's) on a fresh 8 MiB ext4 with 128-byte inodes, so no xattr fits in
    the inode, left with ``request.param`` blocks free for the account."""
    _need_loop_ext4()
    base = Path(tempfile.mkdtemp(prefix="glance-features-ext4-"))
    base.chmod(0o755)
    image, mount = base / "ext4.img", base / "mnt"
    device = None
    try:
        with image.open("wb") as f:
            f.truncate(8 << 20)
        _run("mkfs.ext4", "-q", "-F", "-I", "128", "-m", "0", "-O", "^has_journal", str(image))
        device = _run("losetup", "--find", "--show", str(image)).strip()
        mount.mkdir()
        _run("mount", device, str(mount))
        mount.chmod(0o755)
        cache = mount / "cache"
        for sub in ("", "incomplete", "invalid", "queue"):
            (cache / sub).mkdir()
            shutil.chown(cache / sub, service_user, service_user)
        _fill(mount, int(request.param))
        yield cache
    finally:
        if os.path.ismount(mount):
            subprocess.run(["umount", str(mount)], capture_output=True, timeout=60)
        if device:
            subprocess.run(["losetup", "--detach", device], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def shared_cache(service_user: str) -> Iterator[Path]:
    """An empty cache directory of the account's, on this host's disk (two
    levels down, where the ext4 one is too: the probe's config goes beside)."""
    base = Path(tempfile.mkdtemp(prefix="glance-features-xattr-"))
    try:
        base.chmod(0o755)
        cache = base / "disk" / "cache"
        cache.mkdir(parents=True)
        shutil.chown(cache, service_user, service_user)
        yield cache
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _glance_driver(nn: str, user: str, cache: Path, wrap: list[str]) -> dict[str, Any]:
    """Glance's own cache with the xattr driver on ``cache``, as ``user``, then
    one cache write (see glance_xattr_driver.py)."""
    r = _release(nn)
    proc = subprocess.run(
        [*wrap, "setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--",
         str(r.python), str(DRIVER), str(cache), "write"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout, proc.stderr[-3000:]
    found: dict[str, Any] = json.loads(proc.stdout)
    return found


def _probe(nn: str, user: str, cache: Path, wrap: list[str]) -> dict[str, Any]:
    """The probe of this checkout, from the release's venv, as the CLI runs it."""
    r = _release(nn)
    conf = cache.parent.parent / f"glance-api-{nn}.conf"
    conf.write_text(f"[DEFAULT]\nimage_cache_driver = xattr\nimage_cache_dir = {cache}\n")
    try:
        probe = run_probe(
            r.venv, "--config-file", str(conf), "--user", user, "--python", str(r.python),
            "--feature", "xattr", env={"PYTHONPATH": SOURCE_ROOT}, wrap=wrap,
        )  # fmt: skip
    finally:
        conf.unlink()
    return probe.feature("xattr")


def _reset(cache: Path) -> None:
    """Remove what a run of Glance's driver left (checkme, the failed image)."""
    (cache / "checkme").unlink(missing_ok=True)
    for sub in ("incomplete", "invalid", "queue"):
        for leftover in (cache / sub).iterdir():
            leftover.unlink()


def _works(glance: dict[str, Any]) -> bool:
    return glance.get("driver") == "xattr" and bool(glance.get("cached"))


@pytest.mark.parametrize("nearly_full_ext4", [1], indirect=True)
@pytest.mark.parametrize("nn", RELEASES)
def test_setxattr_enospc_configures_then_fails(
    nn: str, nearly_full_ext4: Path, service_user: str
) -> None:
    """One block free: the three bytes of checkme take it, the xattr block
    cannot be had. Glance keeps the driver, leaves checkme, never caches."""
    cache = nearly_full_ext4
    result = _probe(nn, service_user, cache, [])
    assert os.statvfs(cache).f_bavail == 1  # the probe left nothing behind
    glance = _glance_driver(nn, service_user, cache, [])
    print(f"FACT {nn} setxattr ENOSPC: {glance}")
    assert glance["driver"] == "xattr" and glance["check_file_left"], glance
    assert result["available"] is _works(glance), (glance, result)
    assert result["required"] is True
    assert result["details"]["step"] == SET_XATTR_STEP
    assert result["details"]["errno"] == "ENOSPC"
    assert FIRST_USE in result["reason"], result["reason"]
    assert result["remediation"][0].startswith(f"free space on {cache.parent}")


@pytest.mark.parametrize("nearly_full_ext4", [0], indirect=True)
@pytest.mark.parametrize("nn", RELEASES)
def test_no_block_for_checkme_cache_fails_to_load(
    nn: str, nearly_full_ext4: Path, service_user: str
) -> None:
    """No block free: Glance's write of checkme raises out of configure()
    (ENOSPC is not the EOPNOTSUPP it falls back on): no cache at all."""
    cache = nearly_full_ext4
    result = _probe(nn, service_user, cache, [])
    glance = _glance_driver(nn, service_user, cache, [])
    print(f"FACT {nn} checkme ENOSPC: {glance}")
    assert glance["driver"] is None and glance["errno"] == errno.ENOSPC, glance
    assert result["available"] is False, result
    assert result["details"]["errno"] == "ENOSPC"
    assert result["details"]["step"] != SET_XATTR_STEP
    assert FAILS_TO_LOAD in result["reason"], result["reason"]


@pytest.mark.parametrize("code", ["EPERM", "EDQUOT"])
@pytest.mark.parametrize("nn", RELEASES)
def test_setxattr_refused_configures_then_fails(
    nn: str, code: str, shared_cache: Path, service_user: str
) -> None:
    """setxattr refused by the kernel (injected: seccomp) with EPERM or EDQUOT,
    for the probe and Glance alike: Glance configures and never caches."""
    import seccomp_errno

    need(seccomp_errno.supported(), "seccomp fault injection needs Linux on x86_64 or aarch64")
    wrap = [sys.executable, str(SECCOMP), code, "--"]
    result = _probe(nn, service_user, shared_cache, wrap)
    assert sorted(p.name for p in shared_cache.iterdir()) == []
    glance = _glance_driver(nn, service_user, shared_cache, wrap)
    print(f"FACT {nn} setxattr {code}: {glance}")
    assert glance["driver"] == "xattr" and glance["check_file_left"], glance
    assert result["available"] is _works(glance), (glance, result)
    assert result["details"]["errno"] == code
    assert result["details"]["step"] == SET_XATTR_STEP
    assert FIRST_USE in result["reason"], result["reason"]
    if code == "EPERM":
        assert "cannot write there" not in result["reason"]
        assert result["remediation"][0].startswith("allow setxattr and fsetxattr")
    _reset(shared_cache)


# -- a running Glance, served without a cache filter in its pipeline -------------

# The functional harness's "trusted" flavor: Glance's keystone pipeline without
# authtoken (so images have a project), and without Glance's cache filter.
# Every release, each way it serves (33 has no standalone server).
RUNNING_CASES = [
    Case(nn, mode)
    for nn in RELEASES
    for mode in Mode
    if mode is Mode.UWSGI or release(nn).has_standalone_server
]
TEE_FAILED = "Exception encountered while tee'ing image"


def _first_cache_use(client: GlanceClient, log: Path, timeout: float = 60) -> bool:
    """Upload an image, queue it through the v2 cache API (its worker writes
    it into the cache), and wait until it is cached or the write failed."""
    image = client.create_image("cached", disk_format="raw")
    uploaded = client.request(
        "PUT", f"/v2/images/{image.id}/file", b"x" * 65536,
        {"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert uploaded.status == 204, uploaded
    queued = client.request("PUT", f"/v2/cache/{image.id}")
    assert queued.status in (200, 202, 204), queued
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.request("GET", "/v2/cache")
        assert state.status == 200, state
        if any(c.get("image_id") == image.id for c in state.json()["cached_images"]):
            return True
        if TEE_FAILED in log.read_text(errors="replace"):
            return False
        time.sleep(0.3)
    raise TimeoutError(f"image {image.id} neither cached nor failed after {timeout} s")


@pytest.fixture(autouse=True)
def _sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    # The release venvs have no psycopg2: SQLite, even after tests/functional
    # started PostgreSQL for its session.
    monkeypatch.delenv(POSTGRES_ENV, raising=False)


def _serve(case: Case, user: str, cache: Path | None) -> tuple[bool, bool | None, dict[str, Any]]:
    """Glance of ``case`` with image_cache_driver = xattr (and image_cache_dir
    = ``cache`` when given): whether it served, whether its first cache use
    cached the image (None: not tried), and the probe's verdict, given what
    the service was given."""
    r = _release(case.nn)
    work = Path(tempfile.mkdtemp(prefix=f"glance-xattr-{case.id}-"))
    try:
        work.chmod(0o755)
        extra = "image_cache_driver = xattr\n"
        if cache is not None:
            extra += f"image_cache_dir = {cache}\n"
        deployment, port = _deploy(r, work, user, GlanceConfig(), extra)
        config_dir = deployment.config_dir
        args = ["--feature", "xattr", "--served-by", case.mode.value, "--user", user]
        args += ["--python", str(r.python)]
        if case.mode is Mode.EVENTLET:
            args += ["--config-file", str(config_dir / "glance-api.conf")]
        env = {"OS_GLANCE_CONFIG_DIR": str(config_dir), "HOME": str(work)}
        probe = run_probe(r.venv, *args, env={**env, "PYTHONPATH": SOURCE_ROOT})
        with start_glance(
            r.venv, case.mode, config_dir, user, port=port, ready_timeout=READY_TIMEOUT
        ) as run:
            cached = None
            if run.served and cache is not None:
                client = GlanceClient(f"http://127.0.0.1:{port}")
                cached = _first_cache_use(client, run.log_path)
        print(f"FACT {case.id} cache={cache}: served={run.served} cached={cached}")
        if not run.served:
            print(run.log_tail())
        return run.served, cached, probe.feature("xattr")
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("nearly_full_ext4", [1], indirect=True)
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in RUNNING_CASES])
def test_running_glance_setxattr_enospc(
    case: Case, nearly_full_ext4: Path, service_user: str
) -> None:
    """No cache filter, image_cache_dir on the ext4 with one block free: the
    v2 cache API configures the driver at start (checkme is left), Glance
    serves, and the first image its cache worker writes fails."""
    served, cached, result = _serve(case, service_user, nearly_full_ext4)
    assert served
    assert (nearly_full_ext4 / "checkme").exists()  # configure() ran at start
    assert cached is False
    assert result["required"] is True and result["used_by_glance"] is True, result
    assert result["available"] is False, result
    assert FIRST_USE in result["reason"], result["reason"]


@pytest.mark.parametrize("nearly_full_ext4", [0], indirect=True)
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in RUNNING_CASES])
def test_running_glance_no_block_for_checkme(
    case: Case, nearly_full_ext4: Path, service_user: str
) -> None:
    """No cache filter, no block free: configure() raises while the v2 router
    builds the cache API, and Glance does not serve."""
    served, _, result = _serve(case, service_user, nearly_full_ext4)
    assert result["required"] is True and result["available"] is False, result
    assert FAILS_TO_LOAD in result["reason"], result["reason"]
    assert not served


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in RUNNING_CASES])
def test_running_glance_without_cache_dir_never_loads_the_driver(
    case: Case, service_user: str
) -> None:
    """No cache filter and image_cache_dir unset: nothing loads the cache, Glance
    serves, and the probe does not require the feature."""
    served, _, result = _serve(case, service_user, None)
    assert served
    assert result["used_by_glance"] is False and result["required"] is False, result
    assert result["code"] == 0


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in RUNNING_CASES])
def test_running_glance_healthy_cache_caches(
    case: Case, shared_cache: Path, service_user: str
) -> None:
    """The control: on this host's disk the same first use caches the image,
    and the probe calls the feature available."""
    served, cached, result = _serve(case, service_user, shared_cache)
    assert served
    assert cached is True
    assert result["available"] is True and result["required"] is True, result
