"""The probe against Debian 12's own Glance: ``apt-get install glance-api`` (2:25.1.0).

Debian runs it as its init script does (tests/debian/service.py): the eventlet
standalone server /usr/bin/glance-api on /usr/bin/python3, as glance:glance,
``--config-file=/etc/glance/glance-api.conf`` only, PATH=/sbin:/usr/sbin:/bin:/usr/bin.
Each test first shows what that Glance does, then that the probe says so.

The probe is installed as an operator on Debian installs it: Glance comes from
apt and glance-features is not packaged, and pip refuses the system interpreter
(PEP 668), so it goes into a virtualenv over /usr/bin/python3 with
``--system-site-packages`` (it must see Debian's glance, eventlet, xattr...):
/opt/glance-features, or ``$GLANCE_FEATURES_DEBIAN_VENV``, made here when missing.

Install the package with tests/debian/install.sh. Under CI=true its absence fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI, SOURCE_ROOT, need, validate
from debian import service
from debian.service import Glance, json_request, request
from functional.postgres import PostgreSQL, PostgreSQLUnavailable, postgresql_server

pytestmark = pytest.mark.functional

VENV = Path(os.environ.get("GLANCE_FEATURES_DEBIAN_VENV", "/opt/glance-features"))
CACHE_DIR = Path("/var/lib/glance/image-cache")
IMPORT_CONF = service.CONFIG_DIR / "glance-image-import.conf"
CONVERSION = {"image_import_opts": {"image_import_plugins": "['image_conversion']"}}
# An operator's root shell: /usr/local/bin first, as Debian's root PATH has it.
ROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
}


@pytest.fixture(scope="module", autouse=True)
def debian_glance() -> None:
    need(service.missing() is None, service.missing() or "")


@pytest.fixture(scope="module")
def postgres(debian_glance: None) -> Iterator[PostgreSQL | None]:
    """A PostgreSQL server for Glance's databases (Debian's glance depends on
    python3-psycopg2): imports on SQLite now and then fail with "database is
    locked" (tests/functional/postgres.py). SQLite where there is none, but
    not under CI."""
    with contextlib.ExitStack() as stack:
        server: PostgreSQL | None = None
        try:
            server = stack.enter_context(postgresql_server())
        except PostgreSQLUnavailable as err:
            if IN_CI:
                pytest.fail(f"CI must provide PostgreSQL for Glance's database: {err}")
        yield server


@pytest.fixture
def database(postgres: PostgreSQL | None) -> str | bool:
    """A fresh database for one Glance: its URL, or True for SQLite."""
    return True if postgres is None else postgres.create_database()


@pytest.fixture(scope="module")
def probe_venv(debian_glance: None) -> Path:
    """The operator's install of this checkout, made once."""
    python = VENV / "bin" / "python"
    # -I, from /: the check must not find this checkout through the working directory.
    check = [str(python), "-I", "-c", "import glance_features; print(glance_features.__file__)"]
    found = (
        subprocess.run(check, capture_output=True, text=True, check=False, cwd="/")
        if (python.exists())
        else None
    )
    cfg = VENV / "pyvenv.cfg"
    over_debian = cfg.exists() and {"home = /usr/bin", "include-system-site-packages = true"} <= {
        line.strip() for line in cfg.read_text().splitlines()
    }
    if found is None or not found.stdout.startswith(SOURCE_ROOT + "/") or not over_debian:
        subprocess.run(
            ["/usr/bin/python3", "-m", "venv", "--system-site-packages", "--clear", str(VENV)],
            check=True,
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-e", SOURCE_ROOT],
            check=True,
            timeout=600,
        )
    return VENV


def probe(
    venv: Path, *args: str, glance: Glance | None = None, timeout: float = 120
) -> tuple[int, dict[str, Any]]:
    """``glance-features --format json ARGS`` as root, as an operator runs it;
    in ``glance``'s mount namespace when it has one of its own."""
    argv = [str(venv / "bin" / "glance-features"), "--format", "json", *args]
    if glance is not None:
        argv = glance.in_namespace(argv)
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=ROOT_ENV,
        cwd="/",
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.stdout, f"exit {done.returncode}, no report: {done.stderr[-2000:]}"
    return done.returncode, validate(json.loads(done.stdout))


def feature(report: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = report["features"][name]
    return found


def as_glance(*argv: str) -> subprocess.CompletedProcess[str]:
    """A command as the service account, in the service's environment."""
    return subprocess.run(
        ["runuser", "-u", service.USER, "--", *argv],
        env=service.service_env(),
        cwd=service.STATE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def qcow2(tmp_path: Path) -> bytes:
    image = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(image), "1M"], check=True)
    return image.read_bytes()


def create_image(glance: Glance, disk_format: str) -> str:
    status, image = json_request(
        "POST",
        glance.url + "/v2/images",
        {"name": "debian-test", "disk_format": disk_format, "container_format": "bare"},
    )
    assert status == 201 and isinstance(image, dict), (status, image)
    image_id: str = image["id"]
    return image_id


def glance_direct(glance: Glance, data: bytes, until: str, timeout: float = 90) -> dict[str, Any]:
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


def test_stock_debian_glance_serves_and_the_probe_sees_it(probe_venv: Path) -> None:
    """(a) The host as the package leaves it: Glance serves; the probe, with
    its default config discovery, finds nothing wrong and says how Glance runs."""
    assert (service.package_version() or "").startswith("2:25.1.0-"), service.package_version()
    argv = service.init_command()
    assert argv[0] == "/usr/bin/glance-api"
    assert Path(argv[0]).read_text().startswith("#! /usr/bin/python3")
    assert service.init_path() == "/sbin:/usr/sbin:/bin:/usr/bin"
    with service.glance_api(stock=True) as glance:
        status, body = glance.get("/versions")
        assert status == 200 and b'"CURRENT"' in body
        assert Path(f"/proc/{glance.pid}").stat().st_uid == pwd.getpwnam(service.USER).pw_uid
        environ = Path(f"/proc/{glance.pid}/environ").read_bytes().split(b"\0")
        assert b"PATH=/sbin:/usr/sbin:/bin:/usr/bin" in environ
        # [DEFAULT] workers: unset, so one per CPU up to 8, forked by the parent.
        assert len(glance.processes()) == 1 + min(os.cpu_count() or 1, 8)
        code, report = probe(probe_venv)
    seen = report.get("glance") or {}
    expected = {"version": "25.1.0", "served_by": "eventlet", "python": "/usr/bin/python3"}
    # Each thing the probe gets wrong, so one run lists them all.
    wrong = {k: seen.get(k) for k, v in expected.items() if seen.get(k) != v}
    if not seen.get("served_by_from"):
        wrong["served_by_from"] = seen.get("served_by_from")
    if report["checked_as"] != service.USER:
        wrong["checked_as"] = report["checked_as"]
    # What the init script passes, and nothing else: the standalone server
    # never reads glance-image-import.conf.
    if report["config_files"] != ["/etc/glance/glance-api.conf"]:
        wrong["config_files"] = report["config_files"]
    wrong.update(
        (name, (f["status"], f["reason"]))
        for name, f in report["features"].items()
        if f["required"] and f["status"] != "available"
    )
    if code != 0:
        wrong["exit status"] = code
    assert not wrong, wrong


def test_served_by_and_python_flags_agree_with_what_is_found(probe_venv: Path) -> None:
    """The lead's --served-by/--python name what the probe finds on its own here."""
    _, found = probe(probe_venv)
    code, told = probe(probe_venv, "--served-by", "eventlet", "--python", "/usr/bin/python3")
    assert code == found["code"]
    assert (told.get("glance") or {}).get("served_by") == "eventlet", told.get("glance")
    assert (told.get("glance") or {}).get("python") == "/usr/bin/python3", told.get("glance")
    assert {n: f["status"] for n, f in told["features"].items()} == {
        n: f["status"] for n, f in found["features"].items()
    }


def resolution_as_glance() -> tuple[bool, str]:
    """Whether eventlet, monkey-patched as glance/cmd/api.py does, resolves IPv6
    as the service account: every name the system resolver resolves for AF_INET6
    (a host without ``::1 localhost`` has no IPv6 localhost at all)."""
    script = (
        "import json, socket\n"
        "def r(n):\n"
        "    try: return sorted({i[4][0] for i in socket.getaddrinfo(n, 80, socket.AF_INET6)})\n"
        "    except Exception as e: return repr(e)\n"
        "names = ('::1', 'localhost')\n"
        "system = {n: r(n) for n in names}\n"
        "import eventlet\n"
        "eventlet.hubs.get_hub()\n"
        "eventlet.patcher.monkey_patch()\n"
        "print(json.dumps([system, {n: r(n) for n in names}]))\n"
    )
    done = as_glance("/usr/bin/python3", "-c", script)
    if done.returncode != 0:
        return False, done.stderr[-1000:]
    system, green = json.loads(done.stdout)
    broken = [n for n in system if isinstance(system[n], list) and not isinstance(green[n], list)]
    return not broken, f"system {system}, eventlet {green}"


def test_dnspython_ipv6_verdict_is_what_eventlet_does_as_glance(probe_venv: Path) -> None:
    """(b) Debian's eventlet 0.33.1-4 carries the dnspython 2.3 fix: what counts
    is whether the monkey-patched resolver works, not the upstream version."""
    works, evidence = resolution_as_glance()
    code, report = probe(probe_venv, "--feature", "dnspython-ipv6", "--deep")
    result = feature(report, "dnspython-ipv6")
    assert result["required"], result
    if works:
        assert result["status"] == "available", (evidence, result["reason"])
        assert code == 0
    else:
        assert result["status"] != "available", (evidence, result["reason"])


def test_image_conversion_in_the_import_file_is_not_read(
    probe_venv: Path, tmp_path: Path, database: str | bool
) -> None:
    """(c) image_conversion only in /etc/glance/glance-image-import.conf: the
    standalone server never reads that file (only the WSGI app does), so
    imports are not converted and qemu-img is not required."""
    shipped = IMPORT_CONF.read_bytes()
    with service.edited(IMPORT_CONF, service.ini_text(CONVERSION)):
        # The private copy of /etc/glance has the edited file beside its
        # glance-api.conf too; the database and trusted pipeline make an import possible.
        options = {"paste_deploy": {"flavor": "trusted"}}
        with service.glance_api(options, database=database, paste=service.TRUSTED) as glance:
            image = glance_direct(glance, qcow2(tmp_path), until="")
        assert image["disk_format"] == "qcow2", image
        _, report = probe(probe_venv, "--feature", "qemu-img")
    assert IMPORT_CONF.read_bytes() == shipped
    assert not feature(report, "qemu-img")["required"], feature(report, "qemu-img")
    assert str(IMPORT_CONF) not in report["config_files"]


def test_image_conversion_in_glance_api_conf_converts(
    probe_venv: Path, tmp_path: Path, database: str | bool
) -> None:
    """(c, the control) The same line in glance-api.conf: Glance converts, and
    the probe requires qemu-img."""
    options = {"paste_deploy": {"flavor": "trusted"}, **CONVERSION}
    with service.glance_api(options, database=database, paste=service.TRUSTED) as glance:
        image = glance_direct(glance, qcow2(tmp_path), until="")
        _, report = probe(probe_venv, "--config-file", str(glance.config_file))
    assert image["disk_format"] == "raw", image
    result = feature(report, "qemu-img")
    assert result["required"] and result["status"] == "available", result


@pytest.fixture
def untouched_cache() -> Iterator[None]:
    before = sorted(p.name for p in CACHE_DIR.iterdir())
    yield
    assert sorted(p.name for p in CACHE_DIR.iterdir()) == before


def test_xattr_cache_with_the_packaged_root_owned_subdirs(
    probe_venv: Path, untouched_cache: None, database: str | bool
) -> None:
    """(d) glance-common ships incomplete/, invalid/ and queue/ root:root 0755
    and chowns only their parent: with the xattr driver and the cache in the
    pipeline every download fails to tee into the cache (PermissionError). The
    probe must say xattr is unavailable and give the chown."""
    owners = {sub: (CACHE_DIR / sub).stat().st_uid for sub in ("incomplete", "invalid", "queue")}
    assert owners == dict.fromkeys(owners, 0), f"the package changed: owners {owners}"
    assert as_glance("test", "-w", str(CACHE_DIR / "incomplete")).returncode != 0
    options = {
        "DEFAULT": {"image_cache_dir": str(CACHE_DIR), "image_cache_driver": "xattr"},
        "paste_deploy": {"flavor": "caching"},  # the shipped noauth flavor with the cache
    }
    with service.glance_api(options, database=database) as glance:
        image_id = create_image(glance, "raw")
        assert request("PUT", f"{glance.url}/v2/images/{image_id}/file", b"x" * 4096)[0] == 204
        status, data = request("GET", f"{glance.url}/v2/images/{image_id}/file")
        assert status == 200 and len(data) == 4096  # served, but not cached:
        deadline = time.monotonic() + 10
        while "into cache" not in glance.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        log = glance.log()
        assert f"Exception encountered while tee'ing image '{image_id}' into cache" in log, log
        assert f"PermissionError: [Errno 13] Permission denied: '{CACHE_DIR}/incomplete/" in log
        assert not (CACHE_DIR / image_id).exists()
        code, report = probe(probe_venv, "--config-file", str(glance.config_file))
    result = feature(report, "xattr")
    assert result["required"], result
    assert result["status"] == "unavailable", result["reason"]
    assert "incomplete" in result["reason"] + " ".join(result["remediation"]), result
    assert any("chown" in fix and service.USER in fix for fix in result["remediation"]), result
    assert code == 2


def test_qemu_img_only_in_usr_local_bin(
    probe_venv: Path, tmp_path: Path, database: str | bool
) -> None:
    """(e) qemu-img only in /usr/local/bin (a mount namespace hides
    /usr/bin/qemu-img) with image_conversion in glance-api.conf: root's shell
    finds it, the service's PATH does not, and conversion fails."""
    data = qcow2(tmp_path)
    options = {"paste_deploy": {"flavor": "trusted"}, **CONVERSION}
    with service.glance_api(
        options,
        database=database,
        paste=service.TRUSTED,
        hide=["/usr/bin/qemu-img"],
        local_bin=["/usr/bin/qemu-img"],
    ) as glance:
        lookup = "command -v qemu-img; PATH=$0 command -v qemu-img || echo none"
        found = subprocess.run(
            glance.in_namespace(["sh", "-c", lookup, service.init_path()]),
            env=ROOT_ENV,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert found == ["/usr/local/bin/qemu-img", "none"], found
        failure = "failed to execute qemu-img"
        image = glance_direct(glance, data, until=failure)
        assert image["status"] != "active" and failure in glance.log(), image
        code, report = probe(
            probe_venv,
            "--config-file",
            str(glance.config_file),
            "--feature",
            "qemu-img",
            glance=glance,
        )
    result = feature(report, "qemu-img")
    assert result["required"], result
    assert result["status"] == "unavailable", result["reason"]
    assert code == 2
