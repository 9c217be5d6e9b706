"""The probe against Debian's own Glance on every suite Debian ships it in,
served both ways the package can serve it.

Debian 12 (bookworm, glance-api 2:25.1.x), 13 (trixie, 2:30.0.0-3+deb13u5) and
unstable (sid, 2:33.0.0-x), each a root file system built from Debian's
archive by tests/debian/chroot.sh and entered as tests/debian/chroot.py
describes. In each, Glance is started by its own init script as ``service
glance-api start`` does, running as ``glance``: the eventlet standalone server
as shipped (bookworm, trixie), or uWSGI switched on the Debian way, by
uncommenting UWSGI_PORT, UWSGI_INI_PATH and UWSGI_INI_APP in the init script
(as sid ships it: its standalone server refuses to run, see
:func:`test_sid_standalone_server_is_gone`).

The probe is installed as the README tells a Debian operator:
``/usr/bin/python3 -m venv --system-site-packages /opt/glance-features`` and
``pip install`` of this checkout, and run there as root, ``--format json``.
Each test first shows what that Glance does (a request to it, or an import in
its interpreter as its account), then that the probe's verdict says the same.

Build the chroots with ``bash tests/debian/chroot.sh SUITE`` (tests/run.sh
builds the three in parallel). Under CI=true a missing one fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI, SOURCE_ROOT, need, validate
from debian import chroot
from debian.chroot import Glance, Root, json_request, request
from functional.postgres import PostgreSQL, PostgreSQLUnavailable, postgresql_server

pytestmark = pytest.mark.functional

# The ways each suite's package serves (test_sid_standalone_server_is_gone).
MODES = {"bookworm": ("eventlet", "uwsgi"), "trixie": ("eventlet", "uwsgi"), "sid": ("uwsgi",)}
CASES = [(suite, mode) for suite in chroot.SUITES for mode in MODES[suite]]
IDS = [f"{suite}-{mode}" for suite, mode in CASES]
CACHE_DIR = "/var/lib/glance/image-cache"
IMPORT_CONF = "/etc/glance/glance-image-import.conf"
CONVERSION = {"image_import_opts": {"image_import_plugins": "['image_conversion']"}}
TRUSTED_FLAVOR = {"paste_deploy": {"flavor": "trusted"}}
_installed: set[str] = set()

every_case = pytest.mark.parametrize("case", CASES, ids=IDS, indirect=True)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout as the wheel pip would build from it, built once."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), SOURCE_ROOT],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return next(out.glob("glance_features-*.whl"))


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgreSQL | None]:
    """Glance's database server: Debian's glance depends on python3-psycopg2,
    and imports on SQLite now and then fail with "database is locked"
    (tests/functional/postgres.py). SQLite where there is none, not under CI."""
    try:
        with postgresql_server() as server:
            yield server
            return
    except PostgreSQLUnavailable as err:
        if IN_CI:
            pytest.fail(f"CI must provide PostgreSQL for Glance's database: {err}")
    yield None


@pytest.fixture
def case(request: pytest.FixtureRequest, wheel: Path) -> tuple[str, str]:
    suite, mode = request.param
    reason = chroot.missing(suite)
    need(reason is None, reason or "")
    if suite not in _installed:
        chroot.install_probe(suite, wheel)
        _installed.add(suite)
    return suite, mode


@pytest.fixture
def root(case: tuple[str, str], postgres: PostgreSQL | None) -> Iterator[Root]:
    binds = {str(postgres.socket_dir): str(postgres.socket_dir)} if postgres else {}
    with chroot.booted(case[0], binds=binds) as found:
        yield found


@pytest.fixture
def database(postgres: PostgreSQL | None) -> str | bool:
    """A fresh database for one Glance: its URL, or True for SQLite."""
    return True if postgres is None else postgres.create_database()


def probe(root: Root, *args: str, fmt: str = "json") -> tuple[int, dict[str, Any]]:
    """``glance-features --format json ARGS`` as root in the chroot, from /."""
    done = root.run([chroot.PROBE, "--format", fmt, *args], timeout=180)
    assert done.stdout, f"exit {done.returncode}, no report: {done.stderr[-2000:]}"
    return done.returncode, validate(json.loads(done.stdout))


def feature(report: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = report["features"][name]
    return found


def as_glance(root: Root, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A command as the service account, in the service's environment, from its home."""
    return root.run(
        ["runuser", "-u", chroot.USER, "--", "sh", "-c", 'cd /var/lib/glance && exec "$@"', "sh",
         *argv],
        env=chroot.SERVICE_ENV,
        timeout=timeout,
    )  # fmt: skip


def glance_says(root: Root, script: str) -> Any:
    """What ``script`` prints as JSON, run by Glance's interpreter as glance."""
    done = as_glance(root, "/usr/bin/python3", "-c", script)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def create_image(glance: Glance, disk_format: str) -> str:
    status, image = json_request(
        "POST",
        glance.url + "/v2/images",
        {"name": "debian-test", "disk_format": disk_format, "container_format": "bare"},
    )
    assert status == 201 and isinstance(image, dict), (status, image)
    image_id: str = image["id"]
    return image_id


def qcow2(root: Root) -> bytes:
    """A 1 MiB qcow2 image made by the chroot's own qemu-img."""
    root.run(["qemu-img", "create", "-q", "-f", "qcow2", "/tmp/tiny.qcow2", "1M"], check=True)
    done = subprocess.run(
        root.argv(["cat", "/tmp/tiny.qcow2"]), capture_output=True, check=True, timeout=30
    )
    return done.stdout


def glance_direct(glance: Glance, data: bytes, until: str, timeout: float = 120) -> dict[str, Any]:
    """Import a qcow2 image with glance-direct; the image once it is active or
    the log shows ``until`` (how a failed import ends up)."""
    image_id = create_image(glance, "qcow2")
    assert request("PUT", f"{glance.url}/v2/images/{image_id}/stage", data)[0] == 204
    status, body = json_request(
        "POST", f"{glance.url}/v2/images/{image_id}/import", {"method": {"name": "glance-direct"}}
    )
    assert status == 202, (status, body)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, image = json_request("GET", f"{glance.url}/v2/images/{image_id}")
        assert status == 200 and isinstance(image, dict), (status, image)
        if image["status"] == "active" or (until and until in glance.log()):
            return image
        time.sleep(0.3)
    raise AssertionError(f"import of {image_id} did not finish:\n{glance.log()[-3000:]}")


def service_processes(root: Root) -> list[tuple[int, str, str]]:
    """(uid, executable's name, command line) of each process in the root,
    the probe's and ours aside."""
    found = []
    for pid in root.processes():
        try:
            uid = Path(f"/proc/{pid}/status").read_text().split("\nUid:\t")[1].split()[0]
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        found.append((int(uid), argv[0].decode(errors="replace"), b" ".join(argv).decode()))
    return found


@every_case
def test_stock_host(case: tuple[str, str], root: Root) -> None:
    """The host as the package leaves it (but for the port): Glance serves
    as glance, in the mode the init script is in; the probe, with its default
    discovery, names that Glance (release, package, server, interpreter),
    checks as glance and finds nothing wrong."""
    mode = case[1]
    package = chroot.package_version(root, "python3-glance")
    # What Glance itself says it is, imported by its interpreter.
    version = glance_says(
        root, "import json; from glance.version import version_info as v; "
        "print(json.dumps(v.release_string()))"
    )  # fmt: skip
    assert package.split(":")[-1].startswith(version + "-"), (package, version)
    uid = int(root.run(["id", "-u", chroot.USER], check=True).stdout)
    with chroot.glance_api(root, mode) as glance:
        status, body = glance.get("/versions")
        assert status in (200, 300) and b'"CURRENT"' in body, (status, body[:200])
        procs = [p for p in service_processes(root) if "glance-features" not in p[2]]
        servers = [p for p in procs if p[0] == uid]
        assert servers, procs
        if mode == "uwsgi":
            assert all(Path(p[1]).name.startswith("uwsgi") for p in servers), servers
        else:
            assert all("/usr/bin/glance-api" in p[2] for p in servers), servers
        code, report = probe(root)
        text = root.run([chroot.PROBE], timeout=180).stdout
    seen = report.get("glance") or {}
    expected = {"version": version, "served_by": mode, "python": "/usr/bin/python3"}
    # Each thing the probe gets wrong, so one run lists them all.
    wrong = {k: seen.get(k) for k, v in expected.items() if seen.get(k) != v}
    if (seen.get("package") or {}).get("version") != package:
        wrong["package"] = seen.get("package")
    if report["checked_as"] != chroot.USER:
        wrong["checked_as"] = report["checked_as"]
    if chroot.CONFIG_FILE not in report["config_files"]:
        wrong["config_files"] = report["config_files"]
    wrong.update(
        (name, (f["status"], f["reason"]))
        for name, f in report["features"].items()
        if f["required"] and f["status"] != "available"
    )
    if code != 0:
        wrong["exit status"] = code
    if f"glance: {version} (Debian {package})" not in text:
        wrong["text"] = text.splitlines()[:3]
    assert not wrong, wrong


@pytest.mark.parametrize("case", [("sid", "eventlet")], indirect=True, ids=["sid"])
def test_sid_standalone_server_is_gone(case: tuple[str, str], root: Root) -> None:
    """Why sid has one mode: Glance 33's standalone server refuses to run, so
    Debian's init script ships switched to uWSGI."""
    assert chroot.stock_mode(root) == "uwsgi"
    done = as_glance(root, "/usr/bin/glance-api", f"--config-file={chroot.CONFIG_FILE}")
    assert done.returncode != 0
    assert "no longer supported" in done.stdout + done.stderr, done.stdout + done.stderr
