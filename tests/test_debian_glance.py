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

import contextlib
import json
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI, SOURCE_ROOT, need, validate
from debian import chroot
from debian.chroot import TRUSTED, Glance, Root, json_request, request
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


def glance_direct(
    glance: Glance, data: bytes, until: str, timeout: float = 120, disk_format: str = "qcow2"
) -> dict[str, Any]:
    """Import an image with glance-direct; the image once it is active or the
    log shows ``until`` after this import began (how a failed import ends up)."""
    seen = len(glance.log())
    image_id = create_image(glance, disk_format)
    assert request("PUT", f"{glance.url}/v2/images/{image_id}/stage", data)[0] == 204
    status, body = json_request(
        "POST", f"{glance.url}/v2/images/{image_id}/import", {"method": {"name": "glance-direct"}}
    )
    assert status == 202, (status, body)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, image = json_request("GET", f"{glance.url}/v2/images/{image_id}")
        assert status == 200 and isinstance(image, dict), (status, image)
        if image["status"] == "active" or (until and until in glance.log()[seen:]):
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


def assert_fixes_apply(root: Root, result: dict[str, Any]) -> None:
    """Every package a fix names is one this suite's archive has: a fix for a
    distribution's Glance is what that operator can do on that host."""
    for step in result["remediation"]:
        words = step.split()
        if words[:2] != ["apt-get", "install"]:
            continue
        for package in (w for w in words[2:] if not w.startswith("-")):
            done = root.run(["apt-cache", "policy", package], check=True)
            assert "Candidate: (none)" not in done.stdout and done.stdout, (step, done.stdout)
    assert not any(
        "pip install glance" in s or "upgrade Glance" in s for s in result["remediation"]
    )


@every_case
def test_pydev_host_set_with_no_debug_server(case: tuple[str, str], root: Root) -> None:
    """pydev_worker_debug_host set, no debugger module and no debug server:
    the eventlet server's workers call the pydev hook and die, so Glance never
    serves; under uWSGI Glance never calls it and serves. The probe requires
    pydev exactly when Glance calls it, and says it is missing."""
    mode = case[1]
    port = str(chroot.free_port())
    options = {"DEFAULT": {"pydev_worker_debug_host": "127.0.0.1", "pydev_worker_debug_port": port}}
    served = True
    try:
        with chroot.glance_api(root, mode, options, deadline=60):
            code, report = probe(root, "--feature", "pydev")
    except chroot.ChrootError as err:
        served = False
        log = root.run(["cat", chroot.LOG_FILE]).stdout
        assert "debug" in log.lower(), (str(err), log[-3000:])
        code, report = probe(root, "--feature", "pydev")
    result = feature(report, "pydev")
    assert result["status"] == "unavailable", result
    assert result["used_by_glance"] is (not served), (served, result)
    assert result["required"] is (not served), (served, result)
    assert code == (0 if served else 2), (served, code)
    assert_fixes_apply(root, result)


PRLIMIT = "-m oslo_concurrency.prlimit"


@every_case
def test_image_conversion_only_in_the_import_file(
    case: tuple[str, str], root: Root, database: str | bool
) -> None:
    """image_conversion only in /etc/glance/glance-image-import.conf: the
    standalone server never reads that file, the WSGI application does. An
    import shows which: left qcow2 untouched, or converted. Under Debian's
    uWSGI, with [wsgi] python_interpreter unset, Glance runs prlimit with
    ``uwsgi-core -m oslo_concurrency.prlimit`` and the import fails. The probe
    requires qemu-img and reads the file exactly when Glance tries to convert,
    and says it works exactly when the conversion did."""
    mode = case[1]
    data = qcow2(root)
    root.write(IMPORT_CONF, chroot.ini_text(CONVERSION), append=True)
    with chroot.glance_api(root, mode, TRUSTED_FLAVOR, database=database, paste=TRUSTED) as glance:
        image = glance_direct(glance, data, until=f"{PRLIMIT} --as=")
        log = glance.log()
        code, report = probe(root, "--feature", "qemu-img")
    converted = image["status"] == "active" and image["disk_format"] == "raw"
    tried = converted or PRLIMIT in log
    result = feature(report, "qemu-img")
    assert result["required"] is tried, (image, result)
    assert (IMPORT_CONF in report["config_files"]) is tried, report["config_files"]
    if tried:
        assert result["available"] is converted, (image, result)
        if not converted:
            fix = "set [wsgi] python_interpreter = /usr/bin/python3"
            assert result["remediation"] == [fix], result
            assert code == 2
    else:
        assert image["status"] == "active" and image["disk_format"] == "qcow2", image
        assert result["status"] == "available", result
        assert code == 0


@every_case
def test_qemu_img_only_in_usr_local_bin(
    case: tuple[str, str], root: Root, database: str | bool
) -> None:
    """qemu-img moved to /usr/local/bin, image_conversion in glance-api.conf
    (and, under uWSGI, [wsgi] python_interpreter set to Debian's Python, the
    fix of the test above): root's shell finds qemu-img, the init script's
    PATH does not, and Glance's conversion fails. The probe, run from root's
    shell, says unavailable."""
    mode = case[1]
    data = qcow2(root)
    root.run(["mv", "/usr/bin/qemu-img", "/usr/local/bin/qemu-img"], check=True)
    lookup = "command -v qemu-img; PATH=$0 command -v qemu-img || echo none"
    init_path = "/sbin:/usr/sbin:/bin:/usr/bin"
    found = root.run(["sh", "-c", lookup, init_path], check=True).stdout.split()
    assert found == ["/usr/local/bin/qemu-img", "none"], found
    options: dict[str, dict[str, str]] = {**TRUSTED_FLAVOR, **CONVERSION}
    if mode == "uwsgi":
        options["wsgi"] = {"python_interpreter": "/usr/bin/python3"}
    with chroot.glance_api(root, mode, options, database=database, paste=TRUSTED) as glance:
        failure = "failed to execute qemu-img"
        image = glance_direct(glance, data, until=failure)
        assert image["status"] != "active", image
        assert failure in glance.log()
        code, report = probe(root, "--feature", "qemu-img")
    result = feature(report, "qemu-img")
    assert result["required"], result
    assert result["status"] == "unavailable", result["reason"]
    assert code == 2
    assert_fixes_apply(root, result)


@every_case
def test_xattr_cache_with_the_packaged_root_owned_subdirs(
    case: tuple[str, str], root: Root, database: str | bool
) -> None:
    """glance-common ships image-cache's incomplete/, invalid/ and queue/
    root:root 0755 and chowns only their parent: with the xattr driver and
    the cache in the pipeline a download is served but never cached
    (PermissionError). The probe says xattr is unavailable and gives the chown."""
    mode = case[1]
    owners = root.run(
        ["stat", "-c", "%U", *(f"{CACHE_DIR}/{s}" for s in ("incomplete", "invalid", "queue"))],
        check=True,
    ).stdout.split()
    assert owners == ["root"] * 3, f"the package changed: owners {owners}"
    assert as_glance(root, "test", "-w", f"{CACHE_DIR}/incomplete").returncode != 0
    options = {
        "DEFAULT": {"image_cache_dir": CACHE_DIR, "image_cache_driver": "xattr"},
        "paste_deploy": {"flavor": "trusted+caching"},
    }
    with chroot.glance_api(root, mode, options, database=database, paste=TRUSTED) as glance:
        image_id = create_image(glance, "raw")
        assert request("PUT", f"{glance.url}/v2/images/{image_id}/file", b"x" * 4096)[0] == 204
        status, data = request("GET", f"{glance.url}/v2/images/{image_id}/file")
        assert status == 200 and len(data) == 4096  # served, but not cached:
        deadline = time.monotonic() + 15
        while "into cache" not in glance.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        log = glance.log()
        assert f"Exception encountered while tee'ing image '{image_id}' into cache" in log, log
        assert f"Permission denied: '{CACHE_DIR}/incomplete/" in log, log[-3000:]
        assert not root.exists(f"{CACHE_DIR}/{image_id}")
        code, report = probe(root)
    result = feature(report, "xattr")
    assert result["required"], result
    assert result["status"] == "unavailable", result["reason"]
    assert "incomplete" in result["reason"] + " ".join(result["remediation"]), result
    assert any("chown" in fix and chroot.USER in fix for fix in result["remediation"]), result
    assert code == 2


RESOLVE = """
import json, socket
def r(n):
    try: return sorted({i[4][0] for i in socket.getaddrinfo(n, 80, socket.AF_INET6)})
    except Exception as e: return repr(e)
names = ('::1', 'localhost')
system = {n: r(n) for n in names}
import eventlet
eventlet.hubs.get_hub()
eventlet.patcher.monkey_patch()
print(json.dumps([system, {n: r(n) for n in names}]))
"""


@every_case
def test_dnspython_with_the_eventlet_debian_ships(case: tuple[str, str], root: Root) -> None:
    """Debian patches eventlet (bookworm's 0.33.1-4 carries the dnspython 2.3
    fix): what counts is whether the monkey-patched resolver works as glance,
    as glance/cmd/api.py and the WSGI app patch it, not upstream's versions."""
    system, green = glance_says(root, RESOLVE)
    broken = [n for n in system if isinstance(system[n], list) and not isinstance(green[n], list)]
    code, report = probe(root, "--feature", "dnspython-ipv6", "--deep")
    result = feature(report, "dnspython-ipv6")
    evidence = f"system {system}, eventlet {green}"
    if broken:
        assert result["status"] != "available", (evidence, result["reason"])
        assert_fixes_apply(root, result)
    else:
        assert result["status"] == "available", (evidence, result["reason"])
        assert code == 0


ZIP_AND_LHA = """
import io, json, sys, zipfile
payload = b"x" * 4096
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("disk.img", payload)
# Any file with "-lh" at offset 2 is LHA to Glance's plugin (MAGIC_NUMBERS).
lha = b"\\x00\\x00-lh5-" + payload
sys.stdout.write(json.dumps([buf.getvalue().hex(), lha.hex(), len(payload)]))
"""


@every_case
def test_decompression_plugin_without_lhafile(
    case: tuple[str, str], root: Root, database: str | bool
) -> None:
    """image_decompression in glance-image-import.conf, and no lhafile (Debian
    packages none): the standalone server never runs the plugin; under uWSGI
    Glance 25 and 30 fail a zip import (the plugin extracts into a directory)
    and 33 decompresses it, and every Glance fails an LHA import ("No lhafile
    available."). The probe requires the feature exactly when the plugin runs,
    lists zip exactly when Glance decompressed it and never LHA; its fix is
    one this host can apply."""
    mode = case[1]
    zipped_hex, lha_hex, size = glance_says(root, ZIP_AND_LHA)
    zipped, lha = bytes.fromhex(zipped_hex), bytes.fromhex(lha_hex)
    plugin = {"image_import_opts": {"image_import_plugins": "['image_decompression']"}}
    root.write(IMPORT_CONF, chroot.ini_text(plugin), append=True)
    failed = "Failed to execute task"
    with chroot.glance_api(root, mode, TRUSTED_FLAVOR, database=database, paste=TRUSTED) as glance:
        zip_image = glance_direct(glance, zipped, until=failed, disk_format="raw")
        lha_image = glance_direct(glance, lha, until=failed, disk_format="raw")
        code, report = probe(root, "--feature", "image_decompression")
    ran = zip_image.get("size") != len(zipped) or lha_image["status"] != "active"
    unzipped = zip_image["status"] == "active" and zip_image.get("size") == size
    result = feature(report, "image_decompression")
    assert result["required"] is ran, (zip_image, lha_image, result)
    if ran:
        assert lha_image["status"] != "active", lha_image
        assert ("zip" in result["details"]["formats"]) is unzipped, (zip_image, result)
        assert "lha" not in result["details"]["formats"], result
        assert result["status"] == "degraded", result
        assert code == 1
        # Debian's Python has no pip and refuses it (EXTERNALLY-MANAGED).
        assert not any("pip install" in fix for fix in result["remediation"]), result
    else:
        assert zip_image["status"] == lha_image["status"] == "active", (zip_image, lha_image)
        assert code == 0
    assert_fixes_apply(root, result)


def crc16(data: bytes) -> int:
    """CRC-16/ARC, the checksum LHA keeps of each member."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def lha_archive(name: bytes, payload: bytes) -> bytes:
    """A one-member LHA archive as lha and LHa for UNIX write it: a level 2
    header (-lh0-, stored), a filename extension header, the data, and the
    end-of-archive byte. Level 2 because lhafile's level 0/1 date parsing
    calls ord() on ints and fails on Python 3."""
    ext = b"\x01" + name + struct.pack("<H", 0)  # filename; no further header
    size = len(payload)
    head = struct.pack(
        "<H5sIIIBBHBH", 26 + len(ext), b"-lh0-", size, size, 0, 0x20, 2, crc16(payload),
        ord("U"), len(ext),
    )  # fmt: skip
    return head + ext + payload + b"\x00"


# pip as root from root's home (it needs a working directory it can find).
PIP = ["sh", "-c", 'cd /root && exec "$@"', "sh", "env",
       "PIP_CERT=/etc/glance-features-test-ca.crt", "PIP_DISABLE_PIP_VERSION_CHECK=1",
       "pip", "install", "-q"]  # fmt: skip


def operator_installs_lhafile(root: Root) -> list[str]:
    """lhafile the only way Debian's own Python can get it (no Debian package
    has it, and PEP 668 refuses a plain pip): python3-pip from Debian, then
    ``pip install --break-system-packages lhafile`` as root, into
    /usr/local/lib/python3.X/dist-packages, which Debian's Python (and so
    its Glance) imports from. Where PyPI has no wheel for the suite's Python
    (3.14 in unstable) pip builds it: a compiler and Python's headers first.
    Returns the steps taken."""
    steps = ["apt-get install python3-pip"]
    # As chroot.sh: the archive a test host reaches may be a snapshot older
    # than its Release files' Valid-Until.
    update = ["apt-get", "-q", "-o", "Acquire::Check-Valid-Until=false", "update"]
    root.run(update, check=True, timeout=300)
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends"]
    root.run([*install, "python3-pip"], check=True, timeout=600)
    refused = root.run([*PIP, "lhafile"], timeout=300)
    assert refused.returncode != 0 and "externally-managed-environment" in refused.stderr
    if root.run([*PIP, "--break-system-packages", "lhafile"], timeout=600).returncode != 0:
        root.run([*install, "gcc", "libc6-dev", "python3-dev"], check=True, timeout=900)
        steps.append("apt-get install gcc libc6-dev python3-dev")
        root.run([*PIP, "--break-system-packages", "lhafile"], check=True, timeout=600)
    steps.append("pip install --break-system-packages lhafile")
    return steps


@every_case
def test_decompression_plugin_with_lhafile(
    case: tuple[str, str], root: Root, database: str | bool
) -> None:
    """No Debian suite packages lhafile; installed the way an operator can
    (:func:`operator_installs_lhafile`), Glance's interpreter imports it as
    glance. Then a real LHA image (a stored member, checksummed) is imported:
    Glance 33 under uWSGI decompresses it, 25 and 30 fail it (their plugin
    uses LhaFile as a context manager), the standalone server never runs
    the plugin. The probe lists LHA exactly when Glance decompressed it."""
    mode = case[1]
    for query in (["apt-cache", "search", "--names-only", "lhafile"],
                  ["apt-cache", "search", "--names-only", "python3-lha"]):  # fmt: skip
        assert root.run(query, check=True).stdout == "", query
    steps = operator_installs_lhafile(root)
    where = glance_says(root, "import json, lhafile; print(json.dumps(lhafile.__file__))")
    assert where.startswith("/usr/local/lib/python3"), where
    payload = bytes(range(256)) * 16
    lha = lha_archive(b"disk.img", payload)
    plugin = {"image_import_opts": {"image_import_plugins": "['image_decompression']"}}
    root.write(IMPORT_CONF, chroot.ini_text(plugin), append=True)
    failed = "Failed to execute task"
    with chroot.glance_api(root, mode, TRUSTED_FLAVOR, database=database, paste=TRUSTED) as glance:
        image = glance_direct(glance, lha, until=failed, disk_format="raw")
        log = glance.log()
        code, report = probe(root, "--feature", "image_decompression")
    decompressed = image["status"] == "active" and image.get("size") == len(payload)
    untouched = image["status"] == "active" and image.get("size") == len(lha)
    result = feature(report, "image_decompression")
    evidence = (steps, image, result)
    print(f"FACT lhafile {case}: {steps}; image {image['status']} {image.get('size')}; "
          f"probe {result['status']} {result['details']['formats']}")  # fmt: skip
    assert decompressed or untouched or failed in log, evidence
    assert result["required"] is not untouched, evidence
    if untouched:
        assert code == 0, evidence
        return
    if not decompressed:  # lhafile imported; the plugin's own use of it fails
        assert "does not support the context manager protocol" in log, log[-3000:]
    assert ("lha" in result["details"]["formats"]) is decompressed, evidence
    assert result["status"] == ("available" if decompressed else "degraded"), evidence
    assert code == (0 if decompressed else 1), evidence
    assert_fixes_apply(root, result)


# -- the rbd store: Debian's python3-rbd, python3-rados and ceph-common ----------------

CEPH_PACKAGES = ("python3-rbd", "python3-rados", "ceph-common")
CEPH_CONF = "/etc/ceph/ceph.conf"
KEYRING = "/etc/ceph/ceph.client.glance.keyring"
# Short waits for a cluster that never answers. glance_store 4.1 (Debian 12)
# ignores rados_connect_timeout (python3-rados' connect() drops its timeout),
# so librados' client_mount_timeout in ceph.conf bounds its wait; 4.9 and 5.7
# set client_mount_timeout from rados_connect_timeout.
RADOS_TIMEOUT = "5"
CEPH_OPTIONS = {
    "rbd_store_pool": "images",
    "rbd_store_user": "glance",
    "rbd_store_ceph_conf": CEPH_CONF,
    "rados_connect_timeout": RADOS_TIMEOUT,
}
# How an operator points Glance at Ceph: multi-store with a file backend
# beside rbd (the default), rbd alone, or the legacy [glance_store] stores.
LAYOUTS: dict[str, dict[str, dict[str, str]]] = {
    "rbd+file": {
        "DEFAULT": {"enabled_backends": "fs:file, ceph:rbd"},
        "glance_store": {"default_backend": "ceph"},
        "fs": {"filesystem_store_datadir": "/var/lib/glance/images"},
        "ceph": CEPH_OPTIONS,
    },
    "rbd-only": {
        "DEFAULT": {"enabled_backends": "ceph:rbd"},
        "glance_store": {"default_backend": "ceph"},
        "ceph": CEPH_OPTIONS,
    },
    "legacy": {
        "glance_store": {"stores": "file, http, rbd", "default_store": "rbd", **CEPH_OPTIONS}
    },
}
# (monitor, layout): "refused", nothing listens on the monitor's port (the
# monitor is down); "silent", something accepts there and never answers (a
# hung monitor, or another service on its port).
MONITOR_CASES = [
    ("refused", "rbd+file"),
    ("refused", "rbd-only"),
    ("refused", "legacy"),
    ("silent", "rbd+file"),
]
every_monitor_case = pytest.mark.parametrize(
    "monitor_case", MONITOR_CASES, ids=[f"{m}-{layout}" for m, layout in MONITOR_CASES]
)


@contextlib.contextmanager
def monitor_port(kind: str) -> Iterator[int]:
    """A port of 127.0.0.1 for ceph.conf's mon_host (the chroot shares the
    host's network): "refused" is a free port; "silent" a socket listening
    there, whose connections the kernel completes and nothing ever reads."""
    if kind == "refused":
        yield chroot.free_port()
        return
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        yield silent.getsockname()[1]


def ceph_client(root: Root, port: int) -> None:
    """/etc/ceph as an operator sets up a Ceph client for Glance: ceph.conf
    naming the monitor, and client.glance's keyring (a key made by Debian's
    ceph-authtool) readable by glance."""
    conf = (
        "[global]\n"
        "fsid = 7a1b8f4e-0c2d-4e5f-9a6b-3c4d5e6f7a8b\n"
        f"mon host = [v2:127.0.0.1:{port}/0]\n"
        f"client mount timeout = {RADOS_TIMEOUT}\n"
    )
    root.write(CEPH_CONF, conf)
    root.run(
        ["ceph-authtool", "--create-keyring", KEYRING, "--gen-key", "-n", "client.glance"],
        check=True,
    )
    root.run(["chown", f"root:{chroot.USER}", KEYRING], check=True)
    root.run(["chmod", "0640", KEYRING], check=True)


def serve_and_upload(
    root: Root, mode: str, layout: str, database: str | bool, deadline: float
) -> tuple[dict[str, tuple[int, str]], int, dict[str, Any], str]:
    """Glance with the rbd ``layout``: an upload to each backend, then the
    probe's code and report; when Glance never serves, no uploads and why."""
    uploads: dict[str, tuple[int, str]] = {}
    failed = ""
    options = {**TRUSTED_FLAVOR, **LAYOUTS[layout]}
    try:
        with chroot.glance_api(
            root, mode, options, database=database, paste=TRUSTED, deadline=deadline
        ) as glance:
            uploads["rbd"] = upload(glance)
            if layout == "rbd+file":
                uploads["fs"] = upload(glance, "fs")
            code, report = probe(root, "--feature", "store-rbd")
    except chroot.ChrootError as err:
        failed = str(err)
        code, report = probe(root, "--feature", "store-rbd")
    return uploads, code, report, failed


def upload(glance: Glance, store: str | None = None) -> tuple[int, str]:
    """PUT /v2/images/ID/file of a fresh image (to ``store`` when named):
    the HTTP status, and the image's status afterwards."""
    image_id = create_image(glance, "raw")
    headers = {"X-Image-Meta-Store": store} if store else {}
    status, _ = request(
        "PUT", f"{glance.url}/v2/images/{image_id}/file", b"x" * 4096, timeout=60, headers=headers
    )
    found, image = json_request("GET", f"{glance.url}/v2/images/{image_id}")
    assert found == 200 and isinstance(image, dict), (found, image)
    return status, str(image["status"])


@every_case
@every_monitor_case
def test_rbd_backend_with_its_monitor_down(
    case: tuple[str, str], monitor_case: tuple[str, str], root: Root, database: str | bool
) -> None:
    """An rbd backend whose ceph.conf names a monitor that refuses
    connections or never answers, the bindings from Debian's packages: in
    multi-store mode glance_store connects at start-up, and Glance fails to
    start (rbd alone) or starts with adding to rbd disabled (beside a file
    backend); the legacy store connects on each upload, which fails. No
    upload to rbd can succeed: the probe (without --deep) says unavailable,
    required, and names what Glance does."""
    suite, mode = case
    kind, layout = monitor_case
    need(chroot.missing(suite, CEPH_PACKAGES) is None, chroot.missing(suite, CEPH_PACKAGES) or "")
    with monitor_port(kind) as port:
        ceph_client(root, port)
        uploads, code, report, failed = serve_and_upload(root, mode, layout, database, 90)
    result = feature(report, "store-rbd")
    reason = result["reason"]
    assert result["required"] is True, result
    assert result["status"] == "unavailable", (uploads, reason)
    assert code == 2, code
    assert f"127.0.0.1:{port}" in reason, reason
    if not uploads:  # Glance never served
        assert layout == "rbd-only", failed[-3000:]
        assert "Glance fails to start" in reason, reason
        return
    assert "Glance fails to start" not in reason, (uploads, reason)
    assert uploads["rbd"][1] != "active", uploads
    if layout == "rbd+file":  # adding to rbd disabled at start-up: 410 Gone
        assert uploads["rbd"][0] == 410 and uploads["fs"] == (204, "active"), uploads
        assert "disables adding images" in reason, reason
    else:  # the legacy store fails to connect on the upload: 500
        assert uploads["rbd"][0] == 500, uploads
        assert "uploads to and downloads from this store fail" in reason, reason


@every_case
@pytest.mark.parametrize("layout", ["rbd+file", "legacy"])
def test_rbd_backend_without_the_bindings(
    case: tuple[str, str], layout: str, root: Root, database: str | bool
) -> None:
    """An rbd backend (beside a file one, or the legacy store), Debian's
    python3-rbd and python3-rados not installed. glance_store 4.4.0 and
    later (Debian 13, unstable) disable adding to rbd: Glance starts and
    uploads to rbd are refused (HTTP 410). Debian 12's 4.1.0 calls
    rados.Rados on None: in multi-store mode at start-up, so Glance fails to
    start; the legacy store on the upload (HTTP 500). Uploads to the file
    backend work. The probe says unavailable, what Glance does, and gives
    Debian's packages as the fix, never pip."""
    suite, mode = case
    need(chroot.missing(suite, CEPH_PACKAGES) is None, chroot.missing(suite, CEPH_PACKAGES) or "")
    ceph_client(root, chroot.free_port())
    root.run(["apt-get", "remove", "-y", "-q", "python3-rbd", "python3-rados"], check=True)
    uploads, code, report, failed = serve_and_upload(root, mode, layout, database, 60)
    log = root.run(["cat", chroot.LOG_FILE]).stdout
    result = feature(report, "store-rbd")
    assert result["required"] is True and result["status"] == "unavailable", result
    assert result["remediation"] == ["apt-get install -y python3-rbd python3-rados"], result
    assert code == 2
    assert_fixes_apply(root, result)
    if "The required libraries(rbd and rados) are not available" in log:
        assert uploads["rbd"][0] == 410 and uploads["rbd"][1] != "active", uploads
        assert (
            "Glance starts, and every upload to this backend fails (HTTP 410)" in result["reason"]
        )
    elif not uploads:
        assert "Glance fails to start" in result["reason"], (failed[-3000:], result)
    else:
        assert uploads["rbd"][0] == 500 and uploads["rbd"][1] != "active", uploads
        assert "every upload to this store fails (HTTP 500)" in result["reason"], result
    if uploads and layout == "rbd+file":
        assert uploads["fs"] == (204, "active"), uploads
