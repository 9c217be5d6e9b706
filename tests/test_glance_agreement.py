"""xattr: the probe's verdict equals what Glance's own image cache does.

Each case prepares one cache directory (with mounts in a private namespace
where it needs them), probes it as the glance user, then builds Glance's
``ImageCache`` with ``image_cache_driver = xattr`` as the glance user on the
same directory. The feature works exactly when Glance ends up with the xattr
driver; any other outcome (the sqlite fallback, or a cache that fails to
load) must be a verdict that is not available. The probe must leave the
directory as it found it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import need
from glance_harness import (
    GLANCE_PYTHON,
    chown_to_service_user,
    glance_script,
    need_glance,
    run_both,
    run_script,
    shared_directory,
)


@pytest.fixture
def base() -> Iterator[Path]:
    yield from shared_directory()


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    # Prepares the case under the base directory; returns image_cache_dir
    # (None: unset) and the mounts to make in a private namespace (or None).
    setup: Callable[[Path], tuple[Path | None, str | None]]
    glance_driver: str | None  # "xattr", "sqlite", or None: the cache fails to load
    probe_status: str  # the verdict that agrees with it
    reason_has: str = ""
    venv: str = ""  # "", "pyxattr" or "no-binding": which Glance virtualenv


def owned_dir(path: Path) -> Path:
    path.mkdir()
    chown_to_service_user(path)
    return path


def disk(base: Path) -> tuple[Path | None, str | None]:
    return owned_dir(base / "cache"), None


def ramfs(base: Path) -> tuple[Path | None, str | None]:
    cache = base / "cache"
    cache.mkdir()
    return cache, f"mount -t ramfs ramfs {cache}\nchown glance: {cache}"


def read_only(base: Path) -> tuple[Path | None, str | None]:
    cache = owned_dir(base / "cache")
    return cache, f"mount --bind {cache} {cache}\nmount -o remount,bind,ro {cache}"


def full(base: Path) -> tuple[Path | None, str | None]:
    cache = base / "cache"
    cache.mkdir()
    # One page, filled: directories and empty files still fit, the three
    # bytes Glance writes into its check file do not.
    return cache, (
        f"mount -t tmpfs -o size=4k tmpfs {cache}\n"
        f"head -c 4096 /dev/zero > {cache}/filler\nchown glance: {cache}"
    )


def few_inodes(base: Path) -> tuple[Path | None, str | None]:
    cache = base / "cache"
    cache.mkdir()
    # The root takes one of three inodes: room for the probe's one file, not
    # for Glance's incomplete/, invalid/, queue/ and checkme.
    return cache, f"mount -t tmpfs -o nr_inodes=3,size=1m tmpfs {cache}\nchown glance: {cache}"


def noatime(base: Path) -> tuple[Path | None, str | None]:
    cache = base / "cache"
    cache.mkdir()
    return cache, f"mount -t tmpfs -o noatime,size=1m tmpfs {cache}\nchown glance: {cache}"


def regular_file(base: Path) -> tuple[Path | None, str | None]:
    cache = base / "cache"
    cache.write_text("not a directory")
    chown_to_service_user(cache)
    return cache, None


def dangling_symlink(base: Path) -> tuple[Path | None, str | None]:
    cache = base / "cache"
    cache.symlink_to(base / "nowhere")
    return cache, None


def symlink_to_dir(base: Path) -> tuple[Path | None, str | None]:
    real = owned_dir(base / "real")
    cache = base / "cache"
    cache.symlink_to(real)
    return cache, None


def unset(base: Path) -> tuple[Path | None, str | None]:
    return None, None


def missing_creatable(base: Path) -> tuple[Path | None, str | None]:
    return owned_dir(base / "glance") / "image-cache", None


def missing_not_creatable(base: Path) -> tuple[Path | None, str | None]:
    parent = base / "lib"
    parent.mkdir(mode=0o755)
    return parent / "image-cache", None


def not_writable(base: Path) -> tuple[Path | None, str | None]:
    cache = base / "cache"
    cache.mkdir(mode=0o755)
    return cache, None


def parent_not_searchable(base: Path) -> tuple[Path | None, str | None]:
    locked = base / "locked"
    locked.mkdir(mode=0o700)
    return owned_dir(locked / "cache"), None


def parent_search_only(base: Path) -> tuple[Path | None, str | None]:
    passage = base / "passage"
    passage.mkdir(mode=0o711)  # glance may traverse it, not list it
    return owned_dir(passage / "cache"), None


def stale_root_checkme(base: Path) -> tuple[Path | None, str | None]:
    cache = owned_dir(base / "cache")
    (cache / "checkme").write_bytes(b"XXX")  # left by configure() run as root
    (cache / "checkme").chmod(0o644)
    return cache, None


def stale_own_checkme(base: Path) -> tuple[Path | None, str | None]:
    cache = owned_dir(base / "cache")
    (cache / "checkme").write_bytes(b"XXX")
    chown_to_service_user(cache / "checkme")
    return cache, None


def checkme_link_writable(base: Path) -> tuple[Path | None, str | None]:
    cache = owned_dir(base / "cache")
    elsewhere = owned_dir(base / "elsewhere")
    (cache / "checkme").symlink_to(elsewhere / "target")
    return cache, None


def checkme_link_unwritable(base: Path) -> tuple[Path | None, str | None]:
    cache = owned_dir(base / "cache")
    private = base / "private"
    private.mkdir(mode=0o700)
    (cache / "checkme").symlink_to(private / "target")
    return cache, None


CASES = [
    Case("disk directory", disk, "xattr", "available", "user xattrs work in"),
    Case("ramfs", ramfs, "sqlite", "unavailable", "ramfs"),
    Case("read-only bind mount", read_only, None, "unavailable", "read-only"),
    Case("full tmpfs", full, None, "unavailable", "ENOSPC"),
    Case("tmpfs with two free inodes", few_inodes, None, "unavailable", "free inodes"),
    Case("noatime tmpfs", noatime, "xattr", "degraded", "noatime"),
    Case("cache dir is a regular file", regular_file, None, "unavailable", "ENOTDIR"),
    Case("dangling symlink", dangling_symlink, None, "unavailable", "does not exist"),
    Case("symlink to a directory", symlink_to_dir, "xattr", "available", "user xattrs work"),
    Case("image_cache_dir unset", unset, None, "unavailable", "image_cache_dir is not set"),
    Case("missing, creatable", missing_creatable, "xattr", "available", "will create"),
    Case("missing, parent not writable", missing_not_creatable, None, "unavailable", "EACCES"),
    Case("cache dir not writable", not_writable, None, "unavailable", "EACCES"),
    Case("a parent glance cannot search", parent_not_searchable, None, "unavailable", "EACCES"),
    Case("a parent glance may only traverse", parent_search_only, "xattr", "available", "work"),
    Case("stale root-owned checkme", stale_root_checkme, None, "unavailable", "/checkme"),
    Case("stale checkme of glance", stale_own_checkme, "xattr", "available", "user xattrs"),
    Case("checkme links to a writable place", checkme_link_writable, "xattr", "degraded", "link"),
    Case("checkme links to a private dir", checkme_link_unwritable, None, "unavailable", "link"),
    Case("pyxattr instead of xattr", disk, "xattr", "available", "pyxattr", venv="pyxattr"),
    Case("no xattr binding", disk, "sqlite", "unavailable", "binding", venv="no-binding"),
]


class Venvs:
    """Copies of the Glance virtualenv, made when first asked for: without the
    xattr binding, with pyxattr (which provides the same module name) in its
    place, and with its Python also called ``platform-python``."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.made: dict[str, str] = {"": GLANCE_PYTHON}

    def __getitem__(self, name: str) -> str:
        if name not in self.made:
            self.made[name] = self._make(name)
        return self.made[name]

    def _make(self, name: str) -> str:
        venv = Path(GLANCE_PYTHON).parent.parent
        copy = self.work / name
        # Hard links: instant, and pip replaces files rather than writing
        # into them, so the original virtualenv is never changed.
        linked = subprocess.run(["cp", "-al", str(venv), str(copy)], capture_output=True)
        if linked.returncode != 0:  # another file system: a real copy
            shutil.rmtree(copy, ignore_errors=True)
            subprocess.run(["cp", "-a", str(venv), str(copy)], check=True, timeout=300)
        if name == "bare":
            # A Python without oslo.concurrency: a virtualenv of the
            # distribution's Python with nothing installed (Debian's
            # glance-api package puts oslo.concurrency in its system site).
            shutil.rmtree(copy, ignore_errors=True)
            subprocess.run(["/usr/bin/python3", "-m", "venv", str(copy)], check=True, timeout=300)
            return str(copy / "bin" / "python3")
        if name == "renamed":
            # The interpreter under a name that is not python* (RHEL 8's
            # platform-python): still the virtualenv's Python.
            (copy / "bin" / "platform-python").symlink_to("python3")
            return str(copy / "bin" / "platform-python")
        python = str(copy / "bin" / "python")
        pip = [python, "-m", "pip", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "uninstall", "-y", "xattr"], check=True, timeout=300)
        if name == "pyxattr":
            proc = subprocess.run(
                [*pip, "install", "pyxattr"], capture_output=True, text=True, timeout=600
            )
            need(proc.returncode == 0, f"cannot install pyxattr: {proc.stderr[-500:]}")
        return python


@pytest.fixture(scope="session")
def venvs() -> Iterator[Venvs]:
    need_glance()
    work = Path(tempfile.mkdtemp(prefix="glance-features-venvs-"))
    work.chmod(0o755)  # the glance user runs these interpreters
    try:
        yield Venvs(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_xattr_agrees_with_glance(case: Case, base: Path, request: pytest.FixtureRequest) -> None:
    python = GLANCE_PYTHON
    if case.venv:
        python = request.getfixturevalue("venvs")[case.venv]
    cache, mounts = case.setup(base)
    settings: dict[str, Any] = {"image_cache_driver": "xattr"}
    if cache is not None:
        settings["image_cache_dir"] = str(cache)
    out = run_both(
        "xattr",
        settings,
        [glance_script("glance_xattr_driver.py"), str(cache) if cache else "-"],
        root=base,
        mounts=mounts,
        python=python,
    )
    glance, result = out["glance"], out["result"]
    # The case is what it claims to be: Glance itself behaves as expected...
    assert glance["driver"] == case.glance_driver, glance
    # ...and the probe agrees: available exactly when Glance uses xattr.
    assert result["available"] is (glance["driver"] == "xattr"), (glance, result)
    assert result["status"] == case.probe_status, result
    assert case.reason_has in result["reason"] + str(result["details"]), result
    # Without image_cache_dir (and no cache filter in the pipeline) no Glance
    # loads the driver at all, so the setting alone does not require it.
    assert result["required"] is (cache is not None), result
    assert result["details"]["checked_as"] == "glance"
    assert out["probe"]["checked_as"] == "glance"
    if case.name == "stale root-owned checkme":
        assert f"{cache}/checkme" in result["reason"]
        assert result["remediation"] == [
            f"rm {cache}/checkme  # Glance's own check file; it recreates it"
        ]
    if case.name.startswith("missing"):
        assert result["details"]["cache_dir_exists"] is False


def test_glance_and_probe_share_the_interpreter() -> None:
    """The harness's premise: Glance is importable where the probe runs."""
    need_glance()
    proc = subprocess.run(
        [GLANCE_PYTHON, "-c", "import importlib.metadata as m; print(m.version('glance'))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr


# qemu-img: Glance's own _ConvertImage._execute on a real qcow2 (the format
# inspector, `qemu-img info` through `python -m oslo_concurrency.prlimit` with
# Glance's limits, `qemu-img convert`, stderr judged as Glance judges it),
# against the default-mode probe with the same PATH and [wsgi]
# python_interpreter. The probe works exactly when the conversion succeeds.

REAL_QEMU_IMG = shutil.which("qemu-img")


@dataclasses.dataclass(frozen=True)
class Conversion:
    name: str
    wrapper: str | None  # a shell script installed as qemu-img first on PATH
    python: str  # "glance", "unset", "true", "system", "renamed": the interpreter
    converts: bool  # what Glance does
    reason_has: str = ""
    path: str = "system"  # "system", or "none": PATH without qemu-img
    output_format: str = "raw"
    wrapper_mode: int = 0o755


PASS_THROUGH = 'exec /usr/bin/qemu-img "$@"'
CONVERSIONS = [
    Conversion("qemu-img present", None, "glance", True, "inspects and converts"),
    Conversion("to qcow2", None, "glance", True, "qcow2 to qcow2", output_format="qcow2"),
    Conversion("to vmdk", None, "glance", True, "to vmdk", output_format="vmdk"),
    Conversion("python_interpreter unset", None, "unset", True, "sys.executable"),
    Conversion("PATH without qemu-img", None, "glance", False, "not found", path="none"),
    Conversion("interpreter is not Python", None, "true", False, "no usable JSON"),
    Conversion("interpreter lacks oslo", None, "system", False, "oslo_concurrency"),
    Conversion("interpreter under another name", None, "renamed", True, "inspects"),
    Conversion(
        "stderr on every command, exit 0",
        f"echo 'qemu-img: warning: something' >&2\n{PASS_THROUGH}",
        "glance",
        False,
        "wrote to stderr",
    ),
    Conversion(
        "stderr only from create and --version",
        f'case "$1" in create|--version) echo note >&2;; esac\n{PASS_THROUGH}',
        "glance",
        True,
        "converts qcow2 to raw",
    ),
    Conversion(
        "convert broken",
        f'if [ "$1" = convert ]; then echo "qemu-img: broken" >&2; exit 1; fi\n{PASS_THROUGH}',
        "glance",
        False,
        "convert",
    ),
    Conversion(
        "convert fails silently",
        f'if [ "$1" = convert ]; then exit 1; fi\n{PASS_THROUGH}',
        "glance",
        False,
        "exited with status 1",
    ),
    Conversion(
        # Glance's exec and prlimit's lookup skip it and find /usr/bin/qemu-img.
        "first qemu-img on PATH not executable by glance",
        PASS_THROUGH,
        "glance",
        True,
        "at /usr/bin/qemu-img",
        wrapper_mode=0o700,
    ),
    Conversion(
        "only qemu-img not executable by glance",
        PASS_THROUGH,
        "glance",
        False,
        "cannot be run by glance, and no other qemu-img on PATH can",
        path="none",
        wrapper_mode=0o700,
    ),
    Conversion(
        # A multi-call binary (busybox style) that goes by the name it is called.
        "qemu-img a symlink to a multi-call binary",
        "MULTICALL",
        "glance",
        True,
        "converts qcow2 to raw",
    ),
]
MULTICALL = (
    'case "$(basename "$0")" in\n'
    '  qemu-img) exec /usr/bin/qemu-img "$@";;\n'
    '  *) echo "multicall: unknown applet $0" >&2; exit 1;;\n'
    "esac"
)


@pytest.mark.parametrize("case", CONVERSIONS, ids=[c.name for c in CONVERSIONS])
def test_qemu_img_agrees_with_glance(
    case: Conversion, base: Path, request: pytest.FixtureRequest
) -> None:
    need(REAL_QEMU_IMG is not None, "qemu-img is not installed (apt-get install qemu-utils)")
    need_glance()
    staging = owned_dir(base / "staging")
    source = staging / "image.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", str(source), "1M"], check=True, timeout=30
    )
    chown_to_service_user(source)
    bin_dir = base / "bin"
    bin_dir.mkdir(mode=0o755)
    if case.wrapper == "MULTICALL":
        dispatch = bin_dir / "multicall"
        dispatch.write_text("#!/bin/sh\n" + MULTICALL + "\n")
        dispatch.chmod(0o755)
        (bin_dir / "qemu-img").symlink_to("multicall")
    elif case.wrapper is not None:
        wrapper = bin_dir / "qemu-img"
        wrapper.write_text("#!/bin/sh\n" + case.wrapper + "\n")
        wrapper.chmod(case.wrapper_mode)
    python = {
        "glance": GLANCE_PYTHON,
        "unset": "",
        "true": "/usr/bin/true",
        "system": "",
        "renamed": "",
    }[case.python]
    if case.python == "renamed":
        python = request.getfixturevalue("venvs")["renamed"]
    if case.python == "system":
        python = request.getfixturevalue("venvs")["bare"]
        lacks = subprocess.run([python, "-c", "import oslo_concurrency"])
        assert lacks.returncode != 0, "the bare virtualenv has oslo.concurrency"
    path = str(bin_dir) if case.path == "none" else f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"
    settings: dict[str, Any] = {
        "image_import_plugins": ["image_conversion"],
        "image_conversion_output_format": case.output_format,
    }
    if python:
        settings["python_interpreter"] = python
    out = run_both(
        "qemu-img",
        settings,
        [
            glance_script("glance_qemu_convert.py"),
            str(source),
            case.output_format,
            python or "-",
        ],
        root=base,
        env={"PATH": path},
        python=python if case.python == "renamed" else GLANCE_PYTHON,
    )
    glance, result = out["glance"], out["result"]
    assert glance["converted"] is case.converts, glance
    assert result["available"] is glance["converted"], (glance, result)
    assert case.reason_has in result["reason"] + str(result["details"]), result
    assert result["required"] is True


# pydev: Glance before 33 calls pydevd.settrace(host, port), which connects
# through pydevd's own start_client. The probe must connect exactly when
# start_client does (the installed pydevd's, run here side by side), and
# with Glance 33 it must not make the feature required at all.

PYDEV_BOTH = r"""
import json, os, socket, subprocess, sys, threading
spec = json.loads(sys.argv[1])
GREETINGS = {
    # What a pydev debug server (an IDE) sends first: CMD_VERSION, CMD_RUN.
    "ide": b"501\t1\t1.1\tLINUX\tID\n101\t3\t\n",
    "silent": b"",
    "http": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
}

def serve(server):
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        def talk(conn=conn):
            with conn:
                conn.sendall(GREETINGS[spec["peer"]])
                if spec["peer"] == "http":
                    return
                try:
                    while conn.recv(65536):
                        pass
                except OSError:
                    pass
        threading.Thread(target=talk, daemon=True).start()

listeners, port = [], None
for address in spec["listen"]:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    server = socket.socket(family)
    if family == socket.AF_INET6:
        server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    server.bind((address, port or 0))
    server.listen()
    port = server.getsockname()[1]
    listeners.append(server)
    threading.Thread(target=serve, args=(server,), daemon=True).start()
if port is None:  # bound, never listening: refused
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    port = held.getsockname()[1]
import glance_features
settings = glance_features.Settings(pydev_worker_debug_host=spec["host"],
                                    pydev_worker_debug_port=port)
result = glance_features.probe(settings, features=["pydev"], timeout=10)["pydev"]
# Glance's hook, as Glance calls it but without suspending the thread (which
# would wait for a human at the IDE): it returns once the server said "run".
SETTRACE = (
    "import os, sys, pydevd\n"
    "pydevd.settrace(sys.argv[1], port=int(sys.argv[2]), stdoutToServer=True,"
    " stderrToServer=True, suspend=False)\n"
    "os.write(1, b'returned')\n"
    "os._exit(0)\n"
)
try:
    child = subprocess.run(
        [sys.executable, "-c", SETTRACE, spec["host"], str(port)],
        capture_output=True, timeout=6, env={**os.environ, "PYDEVD_CONNECT_TIMEOUT": "3"},
    )
    pydevd = {"returned": child.stdout.endswith(b"returned"),
              "stderr": child.stderr.decode(errors="replace")[-300:]}
except subprocess.TimeoutExpired:
    pydevd = {"returned": False, "blocked": True}
print(json.dumps({"probe": result.to_dict(), "pydevd": pydevd}))
"""

HOSTS = "127.0.0.1 localhost\n::1 v6only.test\n127.0.0.1 dual.test\n::1 dual.test\n"


@dataclasses.dataclass(frozen=True)
class Debugger:
    name: str
    host: str
    listen: tuple[str, ...]
    returns: bool  # whether Glance's pydevd.settrace() gets past the server
    hosts_file: bool = False
    peer: str = "ide"  # what the listener says: "ide", "silent", "http"


DEBUGGERS = [
    Debugger("127.0.0.1, a debug server there", "127.0.0.1", ("127.0.0.1",), True),
    Debugger("::1, a debug server there", "::1", ("::1",), True),
    Debugger("localhost (IPv4 only), server on ::1 only", "localhost", ("::1",), False),
    Debugger("name with only ::1, server there", "v6only.test", ("::1",), True, True),
    Debugger("name with both, server on ::1 only", "dual.test", ("::1",), False, True),
    Debugger("name with both, server on 127.0.0.1", "dual.test", ("127.0.0.1",), True, True),
    Debugger("nothing listening", "127.0.0.1", (), False),
    Debugger("a listener that says nothing", "127.0.0.1", ("127.0.0.1",), False, peer="silent"),
    Debugger("an HTTP server", "127.0.0.1", ("127.0.0.1",), False, peer="http"),
]


def has_ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("case", DEBUGGERS, ids=[c.name for c in DEBUGGERS])
def test_pydev_available_exactly_when_settrace_gets_through(case: Debugger, base: Path) -> None:
    import importlib.util
    import json

    need(importlib.util.find_spec("pydevd") is not None, "pydevd is not installed")
    need(has_ipv6_loopback(), "no IPv6 loopback (::1) on this host")
    mounts: str | None = None
    if case.hosts_file:
        need(os.geteuid() == 0, "replaces /etc/hosts in a mount namespace: needs root")
        hosts = base / "hosts"
        hosts.write_text(HOSTS)
        mounts = f"mount --bind {hosts} /etc/hosts"
    spec = {"host": case.host, "listen": list(case.listen), "peer": case.peer}
    stdout = run_script(PYDEV_BOTH, spec, mounts=mounts, timeout=60)
    out = json.loads(stdout.strip().splitlines()[-1])
    pydevd, result = out["pydevd"], out["probe"]
    assert pydevd["returned"] is case.returns, pydevd
    assert result["available"] is pydevd["returned"], (pydevd, result)
    if case.peer != "ide" and case.listen:
        assert "is not a pydev debug server" in result["reason"]


def test_glance_33_never_reads_the_pydev_options(base: Path) -> None:
    """Glance's own code: nothing calls its pydev hook, so with the debug
    host set the probe must neither require pydev nor fail on it."""
    import ast

    need_glance()
    proc = subprocess.run(
        [GLANCE_PYTHON, "-c", "import glance, os; print(os.path.dirname(glance.__file__))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    package = Path(proc.stdout.strip())
    callers = []
    for source in package.rglob("*.py"):
        if "tests" in source.parts:
            continue
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            called = isinstance(node, ast.Call) and (
                getattr(node.func, "attr", None) == "setup_remote_pydev_debug"
                or getattr(node.func, "id", None) == "setup_remote_pydev_debug"
            )
            read = isinstance(node, ast.Attribute) and node.attr == "pydev_worker_debug_host"
            if called or read:
                callers.append(f"{source}:{getattr(node, 'lineno', '?')}")
    version = subprocess.run(
        [GLANCE_PYTHON, "-c", "import importlib.metadata as m; print(m.version('glance'))"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    need(version.startswith("33."), f"these facts are Glance 33's; installed: {version}")
    assert callers == []
    out = run_both(
        "pydev",
        {"pydev_worker_debug_host": "127.0.0.1", "pydev_worker_debug_port": 9},
        ["-c", "import json; print(json.dumps({'ok': True}))"],
        root=base,
    )
    result = out["result"]
    assert out["probe"]["glance"]["version"] == version
    assert result["used_by_glance"] is False
    assert result["required"] is False
    assert result["code"] == 0
    assert result["details"]["ignored_by_glance"] == (
        "[DEFAULT] pydev_worker_debug_host is set, but Glance "
        f"{version} never calls its pydev hook served this way: only the standalone eventlet "
        "glance-api of releases before 33 does (glance.common.wsgi_app.init_app never does)"
    )


# dnspython-ipv6: Glance 33 does not monkey-patch, but it still imports
# eventlet through futurist when it loads its task executor. A pair that
# breaks `import eventlet` stops Glance: unavailable (never degraded, which
# would count as available); a healthy pair works and blocks nothing.

GLANCE_IMPORTS_EVENTLET = (
    "import json\n"
    "try:\n"
    "    import glance.async_.taskflow_executor\n"
    "    print(json.dumps({'loads': True}))\n"
    "except Exception as exc:\n"
    "    print(json.dumps({'loads': False, 'error': '%s: %s' % (type(exc).__name__, exc)}))\n"
)


@pytest.fixture(scope="session")
def broken_pair() -> Iterator[str]:
    """eventlet 0.33.1 and dnspython 2.3.0, really installed (in a directory
    put first on the Glance virtualenv's path)."""
    need_glance()
    overlay = Path(tempfile.mkdtemp(prefix="glance-features-eventlet-"))
    overlay.chmod(0o755)
    try:
        proc = subprocess.run(
            [
                *(GLANCE_PYTHON, "-m", "pip", "install", "-q", "--disable-pip-version-check"),
                *("--no-deps", "--target", str(overlay)),
                *("eventlet==0.33.1", "dnspython==2.3.0", "six"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        need(proc.returncode == 0, f"cannot install eventlet 0.33.1: {proc.stderr[-500:]}")
        for path, _, names in os.walk(overlay):
            for name in [*names, "."]:
                os.chmod(os.path.join(path, name), 0o755 if name == "." else 0o644)
        yield str(overlay)
    finally:
        shutil.rmtree(overlay, ignore_errors=True)


PAIRS = ["installed", "eventlet 0.33.1 + dnspython 2.3.0", "the same with EVENTLET_NO_GREENDNS=yes"]


@pytest.mark.parametrize("pair", PAIRS)
def test_dnspython_ipv6_agrees_with_glance(
    pair: str, base: Path, request: pytest.FixtureRequest
) -> None:
    env = {}
    if pair != "installed":
        env["PYTHONPATH"] = request.getfixturevalue("broken_pair")
    if pair.endswith("=yes"):
        env["EVENTLET_NO_GREENDNS"] = "yes"
    out = run_both("dnspython-ipv6", {}, ["-c", GLANCE_IMPORTS_EVENTLET], root=base, env=env)
    glance, result = out["glance"], out["result"]
    assert glance["loads"] is (pair != PAIRS[1]), glance
    assert result["available"] is glance["loads"], (glance, result)
    assert result["details"]["glance_monkey_patches"] is False
    if pair == PAIRS[0]:
        assert result["status"] == "available" and result["code"] == 0
    elif pair == PAIRS[1]:
        # Not "degraded", which would count as available.
        assert result["status"] == "unavailable" and result["code"] == 2
        assert "fails to load" in result["reason"]
        assert result["details"]["eventlet"] == "0.33.1"
    else:
        assert result["status"] == "available"
        assert "worked around by EVENTLET_NO_GREENDNS=yes" in result["reason"]


# Under eventlet.monkey_patch(), as Glance before 33 starts its services:
# subprocess-based checks still work (green pipes lack read1), and the
# deadline holds while a detector blocks in a call eventlet cannot make green.

PATCHED = r"""
import eventlet
eventlet.monkey_patch()
import json, sys
from eventlet.patcher import original
import glance_features
from glance_features import registry

class Blocker:
    name = "blocker"
    summary = "blocks in the original select(), out of eventlet's reach"

    def probe(self, context):
        original("select").select([], [], [], 30)

registry.register(Blocker())
clock = original("time")
start = clock.monotonic()
settings = glance_features.Settings(
    image_import_plugins=["image_conversion"], python_interpreter=sys.argv[1],
    image_cache_dir=sys.argv[2], image_cache_driver="xattr")
report = glance_features.probe(settings, features=["qemu-img", "sendfile", "xattr", "blocker"],
                               timeout=2)
wall = clock.monotonic() - start
print(json.dumps({"report": report.to_dict(), "wall": wall}))
"""


def test_under_eventlet_monkey_patch_checks_work_and_the_deadline_holds(tmp_path: Path) -> None:
    import importlib.util
    import json
    import sys

    need(importlib.util.find_spec("eventlet") is not None, "eventlet is not installed")
    need(REAL_QEMU_IMG is not None, "qemu-img is not installed (apt-get install qemu-utils)")
    need_glance()  # its Python runs oslo_concurrency.prlimit for qemu-img info
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PATCHED, GLANCE_PYTHON, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    features = out["report"]["features"]
    assert features["qemu-img"]["status"] == "available", features["qemu-img"]
    assert features["sendfile"]["status"] == "available", features["sendfile"]
    assert features["xattr"]["available"] is True, features["xattr"]
    assert features["blocker"]["status"] == "unknown"
    assert features["blocker"]["reason"] == "timed out after 2 s"
    # Wall time is reported, not asserted (no timing asserts): the verdicts
    # above can only be reached when the runner returned at its deadline
    # rather than after the 30 s the blocker sleeps (the subprocess timeout
    # of 60 s would otherwise fail the test only much later).
    print(f"monkey-patched probe wall time: {out['wall']:.2f} s")


def test_glance_33_and_glance_store_never_call_sendfile(base: Path) -> None:
    """Glance's own code: no sendfile anywhere in glance or glance_store, so
    the probe says the installed Glance does not use it."""
    need_glance()
    proc = subprocess.run(
        [
            GLANCE_PYTHON,
            "-c",
            "import glance, glance_store, os\n"
            "for m in (glance, glance_store): print(os.path.dirname(m.__file__))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    users = [
        str(source)
        for package in proc.stdout.split()
        for source in Path(package).rglob("*.py")
        if "tests" not in source.parts and "sendfile" in source.read_text(encoding="utf-8")
    ]
    assert users == []
    out = run_both("sendfile", {}, ["-c", "print('{}')"], root=base)
    result = out["result"]
    assert result["used_by_glance"] is False
    assert result["required"] is False and result["code"] == 0
    assert result["status"] == "available"  # the host can; Glance does not ask
