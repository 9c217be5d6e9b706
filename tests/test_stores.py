"""glance_store drivers and image_decompression, side by side with glance_store itself.

Each verdict is compared with what glance_store 5.7's own driver does with the
same config file, on this host, as the same user: ``tests/glance_store_driver.py``
runs register_store_opts + create_multi_stores as Glance's init_app() does.
Real components: file systems (a mount namespace for read-only and full), a
moto S3 server on loopback, Debian's python3-rados/python3-rbd, os-brick.
No Ceph cluster or vCenter runs here: monitors are a closed loopback port.

Needs GLANCE_VENV (pip-installed Glance, nothing more) and GLANCE_STORES_VENV
(a Glance venv on the system Python, readable by the glance account, with
boto3, os-brick, python-cinderclient, oslo.privsep, oslo.rootwrap and this
package installed); tests/run.sh builds both.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SOURCE_ROOT, as_root_in_mount_namespace, can_unshare_mounts, need

from glance_features import Settings, checks, registry, runner
from glance_features.detectors import _backends, _stores

HERE = Path(__file__).resolve().parent
DRIVER = str(HERE / "glance_store_driver.py")
GLANCE_VENV = os.environ.get("GLANCE_VENV", "")
STORES_VENV = os.environ.get("GLANCE_STORES_VENV", "")
USER = "glance"
RESERVED = """
[os_glance_staging_store]
filesystem_store_datadir = {base}/staging
[os_glance_tasks_store]
filesystem_store_datadir = {base}/tasks
"""


def venv_python(venv: str) -> str:
    return os.path.join(venv, "bin", "python")


def has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def need_venvs(*venvs: str) -> None:
    for venv in venvs:
        need(
            bool(venv) and os.path.exists(venv_python(venv)),
            "needs GLANCE_VENV and GLANCE_STORES_VENV (tests/run.sh builds them)",
        )
    need(os.geteuid() == 0 and has_user(USER), "needs root and a glance account")


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory the glance account can reach (pytest's tmp_path is 0700 root),
    with Glance's reserved stores in it, owned by glance as on a real host."""
    path = Path(tempfile.mkdtemp(prefix="gf-stores-", dir="/tmp"))
    path.chmod(0o755)
    for name in ("staging", "tasks"):
        (path / name).mkdir()
        if has_user(USER):
            shutil.chown(path / name, USER, USER)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write_conf(base: Path, body: str, name: str = "glance-api.conf") -> Path:
    conf = base / name
    conf.write_text(body + RESERVED.format(base=base))
    conf.chmod(0o644)
    return conf


def as_glance() -> list[str]:
    return ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups"]


def ours_argv(
    conf: Path, feature: str, python: str, deep: bool = False, user: str = USER
) -> list[str]:
    argv = [python, "-m", "glance_features", "--config-file", str(conf)]
    argv += ["--feature", feature, "--format", "json", "--user", user]
    return argv + (["--deep"] if deep else [])


def glance_argv(conf: Path, python: str, adds: tuple[str, ...] = ()) -> list[str]:
    return [*as_glance(), python, DRIVER, str(conf), *(f"add:{a}" for a in adds)]


def run_json(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], "HOME": "/nonexistent", **(env or {})},
        stdin=subprocess.DEVNULL,
        cwd="/",
    )
    assert proc.stdout.strip(), proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def ours(
    conf: Path,
    feature: str,
    python: str,
    deep: bool = False,
    user: str = USER,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    report = run_json(ours_argv(conf, feature, python, deep, user), env)
    result: dict[str, Any] = report["features"][feature]
    return result


def in_namespace(setup: str, base: Path, commands: list[list[str]]) -> list[dict[str, Any]]:
    """Run ``commands`` after ``setup`` in one private mount namespace; each
    prints JSON, collected in order."""
    need(can_unshare_mounts(), "needs unshare (util-linux) and root")
    outs = [base / f"out{i}.json" for i in range(len(commands))]
    lines = [
        " ".join(_quote(a) for a in argv) + f" > {o}"
        for argv, o in zip(commands, outs, strict=True)
    ]
    script = setup + "\n" + "\n".join(f"{line} || true" for line in lines)
    proc = subprocess.run(
        [*as_root_in_mount_namespace(script), "true"],
        capture_output=True,
        text=True,
        timeout=90,
        env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"},
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(o.read_text()) for o in outs]


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


# -- which backends are enabled, and when each feature is required ---------------------


def required(settings: Settings) -> set[str]:
    return set(runner.required_features(settings, "33.0.0"))


def test_nothing_is_required_without_configuration() -> None:
    stores = {n for n in registry.catalog() if n.startswith("store-")}
    assert stores == {
        "store-file",
        "store-rbd",
        "store-s3",
        "store-swift",
        "store-cinder",
        "store-vmware",
    }
    assert not required(Settings()) & (stores | {"image_decompression"})


def test_enabled_backends_require_their_drivers_and_the_reserved_file_stores() -> None:
    settings = Settings(enabled_backends="ceph:rbd, cheap:s3 ,other:rbd")
    assert required(settings) >= {"store-rbd", "store-s3", "store-file"}
    assert not required(settings) & {"store-swift", "store-cinder", "store-vmware"}
    ids = [b.id for b in _backends.backends(settings, "rbd")]
    assert ids == ["ceph", "other"]
    assert [b.id for b in _backends.backends(settings, "file")] == list(_backends.RESERVED)


def test_legacy_stores_option_from_a_config_file(base: Path) -> None:
    conf = base / "legacy.conf"
    conf.write_text("[glance_store]\nstores = file, glance.store.swift.Store\n")
    settings = Settings.from_config_files([conf])
    assert {"store-file", "store-swift"} <= required(settings)
    assert "store-s3" not in required(settings)
    (backend,) = _backends.backends(settings, "swift")
    assert (backend.id, backend.group) == ("swift", "glance_store")


def test_image_decompression_required_when_the_plugin_is_enabled() -> None:
    settings = Settings(image_import_plugins="['image_decompression', 'image_conversion']")
    assert "image_decompression" in required(settings)
    assert "image_decompression" not in required(Settings(image_import_plugins="[]"))


LOCATE_ONLY = """
import json, sys, glance_features
result = glance_features.probe(glance_features.Settings(), features=["store-s3"])["store-s3"]
print(json.dumps({"reason": result.reason, "imported": "boto3" in sys.modules}))
"""


def test_unconfigured_drivers_are_located_not_imported() -> None:
    """A host that uses no s3 store pays nothing for boto3's import."""
    import importlib.util

    need(importlib.util.find_spec("boto3") is not None, "needs boto3 (moto's dependency)")
    found = run_json([sys.executable, "-c", LOCATE_ONLY])
    assert found == {
        "reason": "boto3 and botocore installed (not imported: no s3 backend is configured)",
        "imported": False,
    }


def test_bindep_lines_name_one_package_each() -> None:
    from glance_features.catalog import bindep_lines

    entries = registry.catalog()
    lines = bindep_lines({n: entries[n] for n in ("store-rbd", "store-cinder")})
    assert "python3-rbd [platform:dpkg]" in lines
    assert "python3-rados [platform:dpkg]" in lines
    assert "open-iscsi [platform:dpkg]" in lines
    assert all(len(line.split(" [")[0].split()) == 1 for line in lines)


# -- file store ----------------------------------------------------------------------


FILE_CONF = """
[DEFAULT]
enabled_backends = fast:file, slow:file
[glance_store]
default_backend = fast
[fast]
filesystem_store_datadir = {base}/fast
[slow]
filesystem_store_datadir = {base}/slow
"""


def test_file_store_ok_and_wrong_owner_agree_with_glance_store(base: Path) -> None:
    need_venvs(STORES_VENV)
    (base / "fast").mkdir()
    shutil.chown(base / "fast", USER, USER)
    (base / "slow").mkdir(mode=0o755)  # root's: the glance account cannot write
    conf = write_conf(base, FILE_CONF.format(base=base))
    result = ours(conf, "store-file", venv_python(STORES_VENV))
    glance = run_json(glance_argv(conf, venv_python(STORES_VENV), adds=("fast", "slow")))
    # One result for the driver; each backend's own verdict in details.
    assert result["status"] == "unavailable"
    assert result["required"] is True
    per = result["details"]["backends"]
    assert per["fast"]["status"] == "available"
    assert per["slow"]["status"] == "unavailable"
    assert per["slow"]["errno"] == "EACCES"
    assert per["slow"]["owner"] == "root"
    assert result["reason"].startswith(f"file backend 'slow': {USER} cannot write in {base}/slow")
    assert result["reason"].endswith(
        "working: fast, os_glance_staging_store, os_glance_tasks_store"
    )
    assert result["details"]["checked_as"] == USER
    # glance_store: the same two answers.
    assert glance["backends"]["fast"] == {
        "loaded": True,
        "write": True,
        "add": {"ok": True, "size": 960},
    }
    assert glance["backends"]["slow"]["write"] is False
    assert any(f"Permission to write in {base}/slow denied" in m for m in glance["messages"])
    assert os.listdir(base / "fast") == []  # the probe left nothing (the add was deleted)


def test_file_store_read_only_mount_agrees(base: Path) -> None:
    need_venvs(STORES_VENV)
    images = base / "images"
    images.mkdir()
    shutil.chown(images, USER, USER)
    conf = write_conf(
        base, f"[DEFAULT]\nenabled_backends = ro:file\n[ro]\nfilesystem_store_datadir = {images}\n"
    )
    python = venv_python(STORES_VENV)
    result, glance = in_namespace(
        f"mount --bind {images} {images}\nmount -o remount,bind,ro {images}",
        base,
        [ours_argv(conf, "store-file", python), glance_argv(conf, python)],
    )
    verdict = result["features"]["store-file"]["details"]["backends"]["ro"]
    assert verdict["status"] == "unavailable"
    assert verdict["errno"] == "EROFS"
    assert f"{images} is mounted read-only" in verdict["reason"]
    assert glance["backends"]["ro"]["write"] is False


def test_file_store_full_is_degraded_and_glance_store_add_fails(base: Path) -> None:
    need_venvs(STORES_VENV)
    full = base / "full"
    full.mkdir()
    conf = write_conf(
        base,
        f"[DEFAULT]\nenabled_backends = full:file\n[full]\nfilesystem_store_datadir = {full}\n",
    )
    python = venv_python(STORES_VENV)
    result, glance = in_namespace(
        f"mount -t tmpfs -o size=64k,uid={USER},gid={USER} tmpfs {full}\n"
        f"dd if=/dev/zero of={full}/filler bs=4k 2>/dev/null || true",
        base,
        [ours_argv(conf, "store-file", python), glance_argv(conf, python, adds=("full",))],
    )
    feature = result["features"]["store-file"]
    verdict = feature["details"]["backends"]["full"]
    assert feature["status"] == "degraded"
    assert feature["code"] == 1  # required and degraded: a warning
    assert verdict["free_bytes"] == 0
    assert verdict["errno"] == "ENOSPC"
    assert f"{full} accepts no new file (ENOSPC)" in verdict["reason"]
    assert verdict["reason"].endswith("uploads fail with StorageFull")
    # glance_store keeps the store writable, and add() runs out of space.
    assert glance["backends"]["full"]["write"] is True
    assert glance["backends"]["full"]["add"]["ok"] is False
    assert glance["backends"]["full"]["add"]["error"].startswith("StorageFull")


def test_legacy_single_store_mode_agrees(base: Path) -> None:
    need_venvs(STORES_VENV)
    (base / "images").mkdir(mode=0o755)  # root's
    conf = base / "legacy.conf"
    conf.write_text(
        f"[glance_store]\nstores = file, http\ndefault_store = file\n"
        f"filesystem_store_datadir = {base}/images\n"
    )
    conf.chmod(0o644)
    result = ours(conf, "store-file", venv_python(STORES_VENV))
    glance = run_json(glance_argv(conf, venv_python(STORES_VENV)))
    assert result["status"] == "unavailable"
    assert result["required"] is True
    assert list(result["details"]["backends"]) == ["file"]  # no reserved stores in legacy mode
    assert result["details"]["multi_store"] is False
    assert glance["backends"]["filesystem"]["write"] is False


# -- s3 against a real S3 server (moto) on loopback ---------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = shutil.which("moto_server", path=os.path.dirname(sys.executable))
    need(server is not None, "needs moto[server] in the test environment")
    assert server is not None
    port = free_port()
    proc = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "moto_server did not listen within 30 s"
                assert proc.poll() is None, "moto_server exited"
                time.sleep(0.1)
        import importlib

        boto3 = importlib.import_module("boto3")  # moto's dependency; untyped
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="glance",
            aws_secret_access_key="secret",
            region_name="us-east-1",
        ).create_bucket(Bucket="images")
        yield endpoint
    finally:
        proc.kill()
        proc.wait(timeout=10)


S3_CONF = """
[DEFAULT]
enabled_backends = there:s3, missing:s3
[glance_store]
default_backend = there
[there]
s3_store_host = {endpoint}
s3_store_access_key = glance
s3_store_secret_key = secret
s3_store_bucket = images
[missing]
s3_store_host = {endpoint}
s3_store_access_key = glance
s3_store_secret_key = secret
s3_store_bucket = no-such-bucket
"""


def test_s3_bucket_exists_or_not_agrees_with_glance_store_add(base: Path, s3_endpoint: str) -> None:
    need_venvs(STORES_VENV)
    conf = write_conf(base, S3_CONF.format(endpoint=s3_endpoint))
    python = venv_python(STORES_VENV)
    shallow = ours(conf, "store-s3", python)
    deep = ours(conf, "store-s3", python, deep=True)
    glance = run_json(glance_argv(conf, python, adds=("there", "missing")))
    # Without --deep nothing is contacted, like glance_store's configure().
    assert shallow["status"] == "available"
    assert glance["backends"]["there"]["write"] is True
    assert glance["backends"]["missing"]["write"] is True
    assert shallow["details"]["boto3"].startswith(STORES_VENV)
    per = deep["details"]["backends"]
    assert per["there"]["status"] == "available"
    assert per["there"]["bucket_exists"] is True
    assert per["missing"]["status"] == "unavailable"
    assert per["missing"]["bucket_exists"] is False
    assert deep["reason"].startswith("s3 backend 'missing': bucket no-such-bucket does not exist")
    assert glance["backends"]["there"]["add"]["ok"] is True
    assert glance["backends"]["missing"]["add"]["ok"] is False
    assert "bucket no-such-bucket does not exist" in glance["backends"]["missing"]["add"]["error"]


def test_s3_endpoint_that_never_answers_is_bounded_by_the_deadline(base: Path) -> None:
    need_venvs(STORES_VENV)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections, never answers a request
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        conf = write_conf(base, S3_CONF.format(endpoint=endpoint).replace(", missing:s3", ""))
        argv = ours_argv(conf, "store-s3", venv_python(STORES_VENV), deep=True)
        report = run_json([*argv, "--timeout", "4"])
    result = report["features"]["store-s3"]
    assert result["status"] == "unavailable"
    assert result["reason"].startswith(f"s3 backend 'there': cannot reach {endpoint}")
    assert "timeout" in result["reason"].lower()


def isolated_env(base: Path) -> dict[str, str]:
    """glance_features on an interpreter that has none of the store libraries:
    GLANCE_VENV's Python with the source and its runtime dependencies only."""
    import importlib

    deps = base / "runtime"
    for name in ("packaging", "psutil", "distro", "importlib_metadata", "zipp"):
        origin = Path(importlib.import_module(name).__file__ or "")
        source = origin.parent if origin.name == "__init__.py" else origin
        if source.is_dir():
            shutil.copytree(source, deps / source.name)
        else:
            deps.mkdir(exist_ok=True)
            shutil.copy2(source, deps / source.name)
    return {"PYTHONPATH": f"{SOURCE_ROOT}:{deps}"}


def test_missing_driver_libraries_agree_with_glance_store(base: Path, s3_endpoint: str) -> None:
    """GLANCE_VENV has Glance only: s3 loses add, swift/vmware/cinder stop Glance."""
    need_venvs(GLANCE_VENV)
    python = venv_python(GLANCE_VENV)
    env = isolated_env(base)
    body = S3_CONF.format(endpoint=s3_endpoint).replace(", missing:s3", "")
    # As root, like the glance_store run: GLANCE_VENV's Python lives under /root.
    s3 = ours(write_conf(base, body, "s3.conf"), "store-s3", python, user="root", env=env)
    assert s3["status"] == "unavailable"
    assert "boto3, botocore cannot be imported by the service's interpreter" in s3["reason"]
    assert "glance_store disables adding images" in s3["reason"]
    assert s3["remediation"][0].endswith("-m pip install 'boto3>=1.9.199'")
    glance = run_json([python, DRIVER, str(base / "s3.conf")])
    assert glance["backends"]["there"]["write"] is False
    assert "boto3 or botocore is not available." in glance["messages"]
    for driver, module, extra in (
        ("swift", "swiftclient", "swift_store_auth_address = http://127.0.0.1:1/v3"),
        (
            "vmware",
            "oslo_vmware",
            "vmware_server_host = 127.0.0.1\nvmware_server_username = u"
            "\nvmware_server_password = p\nvmware_datastores = dc:ds:100",
        ),
        ("cinder", "os_brick", ""),
    ):
        conf = write_conf(
            base,
            f"[DEFAULT]\nenabled_backends = x:{driver}\n[glance_store]\ndefault_backend = x\n"
            f"[x]\n{extra}\n",
            f"{driver}.conf",
        )
        result = ours(conf, f"store-{driver}", python, user="root", env=env)
        glance = run_json([python, DRIVER, str(conf)])
        assert result["status"] == "unavailable", driver
        assert module in result["reason"].split(" cannot be imported by ")[0]
        assert "Glance fails to start" in result["reason"]
        assert "startup_error" in glance, (driver, glance)
        assert module in glance["startup_error"] or driver in glance["startup_error"]


# -- rbd with Debian's bindings --------------------------------------------------------


def system_site_venv(base: Path) -> str:
    """GLANCE_STORES_VENV's packages on the system Python, with system site
    packages: what an operator gets by switching include-system-site-packages on."""
    need(os.path.exists("/usr/bin/python3"), "needs the distribution's /usr/bin/python3")
    venv = base / "venv-system-site"
    subprocess.run(
        ["/usr/bin/python3", "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=60,
    )
    (site,) = Path(STORES_VENV).glob("lib/python3*/site-packages")
    (own,) = venv.glob("lib/python3*/site-packages")
    # addsitedir, not a bare path: the editable glance_features install is itself a .pth.
    (own / "glance-venv.pth").write_text(f"import site; site.addsitedir({str(site)!r})\n")
    return venv_python(str(venv))


def test_rbd_bindings_invisible_from_a_venv_and_visible_with_system_site(base: Path) -> None:
    need_venvs(STORES_VENV)
    need(bool(_stores.system_copies("rados")), "needs Debian's python3-rados and python3-rbd")
    ceph = base / "ceph"
    ceph.mkdir(mode=0o755)
    keyring = ceph / "ceph.client.glance.keyring"
    keyring.write_text("[client.glance]\nkey = AQAAAAAAAAAAABAAAAAAAAAAAAAAAAAAAAAAAA==\n")
    keyring.chmod(0o600)  # root's: unreadable by the glance account
    port = free_port()  # nothing listens there: an unreachable monitor
    (ceph / "ceph.conf").write_text(
        f"[global]\nmon host = [v2:127.0.0.1:{port}/0]\nkeyring = {keyring}\n"
    )
    conf = write_conf(
        base,
        "[DEFAULT]\nenabled_backends = ceph:rbd\n[glance_store]\ndefault_backend = ceph\n"
        f"[ceph]\nrbd_store_ceph_conf = {ceph}/ceph.conf\nrbd_store_user = glance\n"
        "rados_connect_timeout = 1\n",
    )
    # A venv without system site packages: installed, but invisible.
    hidden = ours(conf, "store-rbd", venv_python(STORES_VENV))
    glance = run_json(glance_argv(conf, venv_python(STORES_VENV)))
    assert hidden["status"] == "unavailable"
    assert (
        "without system site packages, so it cannot see the distribution's bindings"
        in (hidden["reason"])
    )
    assert "/usr/lib/python3/dist-packages/rados" in hidden["reason"]
    assert "include-system-site-packages = true" in hidden["remediation"][0]
    assert glance["backends"]["ceph"]["write"] is False
    assert any("The required libraries(rbd and rados)" in m for m in glance["messages"])
    # With system site packages the bindings import; the keyring is root's.
    python = system_site_venv(base)
    unreadable = ours(conf, "store-rbd", python)
    assert unreadable["status"] == "unavailable"
    assert f"the keyring for client.glance is not readable by {USER}" in unreadable["reason"]
    assert "EACCES" in unreadable["reason"]
    shutil.chown(keyring, USER, USER)
    # glance_store connects at start-up in multi-store mode: so does the
    # default probe, and the monitor that is down is found without --deep.
    for deep in (False, True):
        found = ours(conf, "store-rbd", python, deep=deep)
        assert found["status"] == "unavailable", found["reason"]
        assert f"127.0.0.1:{port}: Connection refused" in found["reason"]
        assert "with one backend Glance fails to start" in found["reason"]
    # glance_store with the same bindings, config and user: start-up fails too.
    glance = run_json(glance_argv(conf, python))
    assert glance["startup_error"].startswith("BackendException")
    # rbd_store_user unset: glance_store hands librados the string "None".
    legacy = base / "legacy-rbd.conf"
    legacy.write_text(
        "[glance_store]\nstores = rbd\ndefault_store = rbd\n"
        f"rbd_store_ceph_conf = {ceph}/ceph.conf\n"
    )
    legacy.chmod(0o644)
    unset = ours(legacy, "store-rbd", python)
    glance = run_json(glance_argv(legacy, python))
    assert glance["backends"]["rbd"]["user"] == "None"
    assert unset["status"] == "unavailable"
    assert "librados authenticates as client.None" in unset["reason"]
    assert unset["remediation"][0].startswith("set [glance_store] rbd_store_user = glance")


# -- cinder with os-brick installed ------------------------------------------------------


def test_cinder_rootwrap_and_privsep_config_missing_then_present(base: Path) -> None:
    need_venvs(STORES_VENV)
    need(shutil.which("sudo") is not None, "needs sudo (apt-get install sudo)")
    rootwrap = base / "rootwrap.conf"
    body = (
        "[DEFAULT]\nenabled_backends = vol:cinder\n[glance_store]\ndefault_backend = vol\n"
        f"[vol]\nrootwrap_config = {rootwrap}\n"
    )
    conf = write_conf(base, body)
    python = venv_python(STORES_VENV)
    missing = ours(conf, "store-cinder", python)
    glance = run_json(glance_argv(conf, python))
    assert missing["status"] == "unavailable"
    assert f"rootwrap_config {rootwrap} is missing" in missing["reason"]
    # glance_store checks only its imports at start-up; attaching fails later.
    assert glance["backends"]["vol"]["write"] is True
    filters = base / "rootwrap.d"
    filters.mkdir()
    (filters / "glance_cinder_store.filters").write_text("[Filters]\n")
    # exec_dirs without the system's bin directories: Debian's glance-api
    # package (tests/debian) puts a privsep-helper in /usr/bin.
    nothing = base / "no-helpers"
    nothing.mkdir()
    rootwrap.write_text(f"[DEFAULT]\nfilters_path = {filters}\nexec_dirs = {nothing}\n")
    no_privsep = ours(conf, "store-cinder", python)
    assert no_privsep["status"] == "unavailable"
    assert "lets glance-rootwrap start privsep-helper" in no_privsep["reason"]
    # glance_store's own filters, as pip installs them beside Glance.
    (shipped,) = Path(STORES_VENV).glob("etc/glance/rootwrap.d/glance_cinder_store.filters")
    shutil.copy(shipped, filters / "glance_cinder_store.filters")
    not_found = ours(conf, "store-cinder", python)
    assert not_found["status"] == "unavailable"
    assert f"privsep-helper is not in rootwrap's exec_dirs ({nothing})" in not_found["reason"]
    assert not_found["remediation"] == [f"add {STORES_VENV}/bin to exec_dirs in {rootwrap}"]
    rootwrap.write_text(
        f"[DEFAULT]\nfilters_path = {filters}\nexec_dirs = {nothing},{STORES_VENV}/bin\n"
    )
    present = ours(conf, "store-cinder", python)
    expected = "available" if shutil.which("iscsiadm", path=_stores_path()) else "degraded"
    assert present["status"] == expected, present["reason"]
    vol = present["details"]["backends"]["vol"]
    assert vol["filters_path"] == [str(filters)]
    assert vol["privsep_helper"] == f"{STORES_VENV}/bin/privsep-helper"


def _stores_path() -> str:
    from glance_features.detectors.store_cinder import SYSTEM_PATH

    return SYSTEM_PATH


# -- image_decompression -------------------------------------------------------------------


def test_image_decompression_without_lhafile_is_degraded() -> None:
    from glance_features import probe

    need(importlib_missing("lhafile"), "lhafile is installed in the test environment")
    report = probe(
        Settings(image_import_plugins="['image_decompression']"), features=["image_decompression"]
    )
    result = report["image_decompression"]
    assert result.status.value == "degraded"
    assert result.required
    assert result.details["formats"] == ("zip", "gzip")
    assert '"No lhafile available."' in result.reason
    assert result.remediation[0].endswith("-m pip install lhafile")


def importlib_missing(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is None


def python_found(executable: str) -> checks.PythonFound:
    """What checks.python() says of ``executable``: a virtualenv's unless
    it is the distribution's own."""
    prefix = os.path.dirname(os.path.dirname(executable))
    return checks.PythonFound(
        executable=executable,
        version="3.11.2",
        prefix=prefix,
        base_prefix="/usr",
        venv=prefix != "/usr",
        system_site_packages=False if prefix != "/usr" else None,
        ext_suffix=".cpython-311-x86_64-linux-gnu.so",
    )


def test_broken_archives_fix_for_a_distribution_glance_is_no_upgrade() -> None:
    """Glance before 32 fails zip and LHA imports. A distribution's Glance
    (Debian 13 ships 30.0.0) cannot be upgraded to a release its archive does
    not have: the fix is what that operator can do, gzip; a pip-installed
    Glance in a virtualenv can upgrade."""
    from glance_features.detectors.image_decompression import _archives_fix

    debian = _archives_fix(python_found("/usr/bin/python3"), "30.0.0")
    assert "upgrade" not in debian and "gzip -c" in debian and "30.0.0" in debian
    venv = _archives_fix(python_found("/opt/glance/bin/python3"), "30.0.0")
    assert venv.startswith("upgrade Glance to 32.0.0")


def test_lhafile_fix_on_a_distribution_python_is_no_pip() -> None:
    """Debian's /usr/bin/python3 has no pip and is EXTERNALLY-MANAGED, and no
    Debian package provides lhafile (tests/test_debian_glance.py, sid): the fix
    there is gzip; in a virtualenv it is pip."""
    from glance_features.detectors.image_decompression import _lhafile_fix

    debian = _lhafile_fix(python_found("/usr/bin/python3"))
    assert "pip" not in debian and "gzip" in debian
    venv = _lhafile_fix(python_found("/opt/glance/bin/python3"))
    assert venv.endswith("-m pip install lhafile")
