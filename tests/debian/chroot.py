"""Debian's own Glance in a root file system of each suite, started as Debian starts it.

``bash tests/debian/chroot.sh SUITE`` builds ``.cache/debian/SUITE`` once
(debootstrap --variant=minbase, then ``apt-get install glance-api`` with a
policy-rc.d, so nothing started). :func:`install_probe` installs this checkout
there the way the README tells a Debian operator to: a virtualenv over
/usr/bin/python3 with ``--system-site-packages`` at /opt/glance-features.

:func:`booted` gives each test a root of its own: an overlay whose lower layer
is the cached tree and whose upper layer is a temporary directory, mounted
with /proc, /dev, a tmpfs /run and /tmp in a private mount namespace
(``unshare --mount``) held open by a ``sleep`` chrooted into it. Every command
of the test, Debian's init script among them, enters that namespace and root
with ``nsenter``; the host's mount table never sees any of it, and once the
last process in it has gone the mounts are gone too. Files the test changes
(/etc/glance, the init script's defaults) land in the upper layer, which is
removed afterwards, so the cache stays as the package left it.

The chroot shares the host's network namespace, so Glance listens on a free
port of 127.0.0.1 and the tests talk to it from the host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[2]
CACHE = SOURCE_ROOT / ".cache" / "debian"
# suite -> (Debian release, glance-api's upstream series)
SUITES = {"bookworm": "12", "trixie": "13", "sid": "unstable"}
VENV = "/opt/glance-features"
PROBE = f"{VENV}/bin/glance-features"
INIT_SCRIPT = "/etc/init.d/glance-api"
DEFAULTS = "/etc/default/glance-api"
USER = "glance"
# `service glance-api start` runs the script with env -i LANG PATH.
SERVICE_ENV = {
    "LANG": "C.UTF-8",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
}
# An operator's root shell: /usr/local/bin first, as Debian's root PATH has it.
ROOT_ENV = {**SERVICE_ENV, "HOME": "/root"}
STOP_TIMEOUT = 15.0


class ChrootError(RuntimeError):
    """A chroot could not be entered, or its Glance did not start or serve."""


def root(suite: str) -> Path:
    return CACHE / suite


def missing(suite: str, packages: Sequence[str] = ()) -> str | None:
    """Why the ``suite`` chroot (with ``packages`` installed) cannot be used here, or None."""
    if os.geteuid() != 0:
        return "a Debian chroot with its init script needs root"
    for tool in ("unshare", "nsenter", "chroot"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (util-linux, coreutils)"
    if not (root(suite) / ".complete").is_file():
        return f"no {suite} chroot: bash tests/debian/chroot.sh {suite}"
    absent = sorted(set(packages) - installed(suite))
    if absent:
        # A tree cached before chroot.sh listed them: the script adds them.
        return f"{suite} chroot lacks {' '.join(absent)}: bash tests/debian/chroot.sh {suite}"
    return None


def installed(suite: str) -> set[str]:
    """The packages dpkg has installed in the cached tree (its status file)."""
    names: set[str] = set()
    status = (root(suite) / "var/lib/dpkg/status").read_text(errors="replace")
    for stanza in status.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Status") == "install ok installed" and "Package" in fields:
            names.add(fields["Package"])
    return names


def _one_shot(suite: str, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """``argv`` in the cached tree itself (no overlay), in a namespace of its own."""
    tree = str(root(suite))
    script = (
        "mount --make-rprivate /; "
        'mount -t proc proc "$1/proc"; mount --rbind /dev "$1/dev"; '
        'mount -t tmpfs -o mode=0755 tmpfs "$1/run"; shift; exec chroot "$@"'
    )
    return subprocess.run(
        ["unshare", "--mount", "sh", "-ec", script, "sh", tree, tree,
         "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in ROOT_ENV.items()), *argv],
        capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def install_probe(suite: str, wheel: Path) -> None:
    """This checkout, built as ``wheel``, installed in the cached tree as the
    README says for a distribution's Glance. pip reaches its index with the
    host's CA bundle and DNS, copied in (replacing, never writing through, a
    symlink in the tree)."""
    tree = root(suite)
    for source, target in (
        ("/etc/resolv.conf", "etc/resolv.conf"),
        ("/etc/ssl/certs/ca-certificates.crt", "etc/glance-features-test-ca.crt"),
    ):
        _copy_in(source, tree, target)
    staged = _copy_in(str(wheel), tree, f"tmp/{wheel.name}")
    script = (
        f"rm -rf {VENV}; /usr/bin/python3 -m venv --system-site-packages {VENV}; "
        f"PIP_CERT=/etc/glance-features-test-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 "
        f"{VENV}/bin/pip install -q /tmp/{shlex.quote(wheel.name)}"
    )
    done = _one_shot(suite, ["sh", "-ec", script], timeout=600)
    staged.unlink()
    if done.returncode != 0:
        raise ChrootError(f"{suite}: installing the probe failed: {done.stderr[-3000:]}")


def _copy_in(source: str, tree: Path, target: str) -> Path:
    """``source`` copied to ``tree/target`` without following a symlink in the
    tree: a symlinked parent directory is refused, a symlinked target replaced."""
    dest = tree / target
    for parent in dest.relative_to(tree).parents:
        if (tree / parent).is_symlink():
            raise ChrootError(f"{tree / parent} is a symlink: not writing through it")
    if dest.is_symlink() or dest.exists():
        dest.unlink()
    shutil.copyfile(source, dest)
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _root_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/root")
    except OSError:
        return None


@dataclasses.dataclass
class Root:
    """One test's view of a suite: the overlay root and the namespace holding it."""

    suite: str
    merged: str  # the overlay's mount point, as processes inside it see their root
    holder: subprocess.Popen[bytes]

    def argv(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
        environ = ROOT_ENV if env is None else env
        return [
            "nsenter", f"--target={self.holder.pid}", "--mount", "--root", "--wd=/", "--",
            "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in environ.items()), *argv,
        ]  # fmt: skip

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 120,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.argv(argv, env), input=input, capture_output=True, text=True,
            timeout=timeout, check=False, stdin=None if input is not None else subprocess.DEVNULL,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise ChrootError(
                f"{self.suite}: {shlex.join(argv)} exited {done.returncode}: {done.stderr[-3000:]}"
            )
        return done

    def read(self, path: str) -> str:
        return self.run(["cat", path], check=True).stdout

    def write(self, path: str, text: str, append: bool = False) -> None:
        """Written by a process inside the root: a symlink resolves in the chroot."""
        op = ">>" if append else ">"
        self.run(["sh", "-c", f'cat {op} "$1"', "sh", path], input=text, check=True)

    def exists(self, path: str) -> bool:
        return self.run(["test", "-e", path]).returncode == 0

    def processes(self) -> list[int]:
        """The processes inside this root, the holder aside."""
        mine = []
        for entry in Path("/proc").iterdir():
            pid = int(entry.name) if entry.name.isdigit() else self.holder.pid
            if pid != self.holder.pid and _root_of(pid) == self.merged:
                mine.append(pid)
        return mine


@contextlib.contextmanager
def booted(suite: str, binds: Mapping[str, str] | None = None) -> Iterator[Root]:
    """A private, writable root of ``suite`` (see the module's docstring).
    ``binds``: host directory -> directory inside, bind-mounted."""
    reason = missing(suite)
    if reason:
        raise ChrootError(reason)
    with tempfile.TemporaryDirectory(prefix=f"debian-{suite}-") as tmp:
        base = Path(tmp)
        for sub in ("upper", "work", "merged"):
            (base / sub).mkdir()
        merged = str(base / "merged")
        steps = [
            "mount --make-rprivate /",
            f"mount -t overlay overlay -o lowerdir={root(suite)},upperdir={base}/upper,"
            f"workdir={base}/work {merged}",
            f"mount -t proc proc {merged}/proc",
            f"mount --rbind /dev {merged}/dev",
            f"mount -t tmpfs -o mode=0755 tmpfs {merged}/run",
            f"mount -t tmpfs -o mode=1777 tmpfs {merged}/tmp",
        ]
        for source, target in (binds or {}).items():
            steps.append(f"mkdir -p {merged}{target}")
            steps.append(f"mount --bind {shlex.quote(source)} {merged}{shlex.quote(target)}")
        steps.append(f"exec chroot {merged} /bin/sleep infinity")
        holder = subprocess.Popen(
            ["unshare", "--mount", "sh", "-ec", "; ".join(steps)],
            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        chroot = Root(suite, merged, holder)
        try:
            deadline = time.monotonic() + 30
            while _root_of(holder.pid) != merged:
                if holder.poll() is not None or time.monotonic() > deadline:
                    err = holder.stderr.read().decode() if holder.stderr else ""
                    raise ChrootError(f"{suite}: the namespace did not come up: {err}")
                time.sleep(0.05)
            yield chroot
        finally:
            _sweep(chroot)


def _sweep(chroot: Root) -> None:
    """Every process left in the root gets SIGTERM, then SIGKILL; then the
    holder: with it the namespace and its mounts go."""
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 10.0)):
        for pid in chroot.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while chroot.processes() and time.monotonic() < deadline:
            time.sleep(0.1)
    chroot.holder.kill()
    chroot.holder.wait(timeout=30)
    if chroot.holder.stderr is not None:
        chroot.holder.stderr.close()


def ini_text(options: Mapping[str, Mapping[str, str]]) -> str:
    """Sections to append to a config file: oslo.config lets a later value win."""
    lines = []
    for section, values in options.items():
        lines.append(f"\n[{section}]")
        lines.extend(f"{name} = {value}" for name, value in values.items())
    return "\n".join(lines) + "\n"


def package_version(chroot: Root, package: str = "glance-api") -> str:
    return chroot.run(["dpkg-query", "-W", "-f=${Version}", package], check=True).stdout


@dataclasses.dataclass(frozen=True)
class Glance:
    """Debian's glance-api running in a :class:`Root`, started by its init script."""

    root: Root
    mode: str  # "eventlet" or "uwsgi", as the init script was switched
    url: str
    config_file: str

    def get(self, path: str, timeout: float = 10) -> tuple[int, bytes]:
        return request("GET", self.url + path, timeout=timeout)

    def pid(self) -> int:
        return int(self.root.read(PIDFILE).strip())

    def log(self) -> str:
        done = self.root.run(["cat", LOG_FILE])
        return done.stdout if done.returncode == 0 else ""


PIDFILE = "/var/run/glance/glance-api.pid"
LOG_FILE = "/var/log/glance/glance-api.log"
CONFIG_FILE = "/etc/glance/glance-api.conf"
UWSGI_LINES = ("UWSGI_PORT", "UWSGI_INI_PATH", "UWSGI_INI_APP")


def set_mode(chroot: Root, mode: str, port: int) -> None:
    """Switch the init script the Debian way: its UWSGI_PORT, UWSGI_INI_PATH
    and UWSGI_INI_APP lines uncommented for uWSGI (UWSGI_PORT: ``port``),
    commented out for the eventlet server."""
    text = chroot.read(INIT_SCRIPT)
    for name in UWSGI_LINES:
        pattern = re.compile(rf"^#?\s*{name}=(.*)$", re.MULTILINE)
        if not pattern.search(text):
            raise ChrootError(f"{chroot.suite}: {INIT_SCRIPT} has no {name}= line")
        if mode == "eventlet":
            text = pattern.sub(rf"#{name}=\1", text, count=1)
        else:
            value = str(port) if name == "UWSGI_PORT" else r"\1"
            text = pattern.sub(rf"{name}={value}", text, count=1)
    chroot.write(INIT_SCRIPT, text)


def stock_mode(chroot: Root) -> str:
    """How the package's init script serves as shipped."""
    text = chroot.read(INIT_SCRIPT)
    on = all(re.search(rf"^{name}=\S", text, re.MULTILINE) for name in UWSGI_LINES)
    return "uwsgi" if on else "eventlet"


@contextlib.contextmanager
def glance_api(
    chroot: Root,
    mode: str,
    options: Mapping[str, Mapping[str, str]] | None = None,
    *,
    database: str | bool = False,
    paste: Mapping[str, Mapping[str, str]] | None = None,
    deadline: float = 180.0,
) -> Iterator[Glance]:
    """Glance started by ``/etc/init.d/glance-api start`` in ``chroot``, as
    ``service`` runs it, serving /versions on a free port of 127.0.0.1.

    ``options`` are appended to /etc/glance/glance-api.conf (after the
    port); ``database``: a SQLAlchemy URL, or True for SQLite under
    /var/lib/glance, synced with glance-manage as glance, with an import
    staging area (the package configures neither); ``paste``: sections added
    to glance-api-paste.ini."""
    if mode not in ("eventlet", "uwsgi"):
        raise ValueError(mode)
    port = free_port()
    own: dict[str, dict[str, str]] = {"DEFAULT": {"bind_host": "127.0.0.1", "bind_port": str(port)}}
    if database:
        url = database if isinstance(database, str) else "sqlite:////var/lib/glance/glance.sqlite"
        own["database"] = {"connection": url}
        own["DEFAULT"]["node_staging_uri"] = "file:///var/lib/glance/staging"
        chroot.run(["install", "-d", "-o", USER, "-g", USER, "/var/lib/glance/staging"], check=True)
    chroot.write(CONFIG_FILE, ini_text(own) + ini_text(options or {}), append=True)
    if paste:  # new sections only: paste.deploy's parser refuses a repeated one
        chroot.write("/etc/glance/glance-api-paste.ini", ini_text(paste), append=True)
    set_mode(chroot, mode, port)
    if database:
        sync = ["runuser", "-u", USER, "--", "glance-manage", f"--config-file={CONFIG_FILE}",
                "db_sync"]  # fmt: skip
        chroot.run(sync, env=SERVICE_ENV, timeout=180, check=True)
    glance = Glance(chroot, mode, f"http://127.0.0.1:{port}", CONFIG_FILE)
    started = chroot.run([INIT_SCRIPT, "start"], env=SERVICE_ENV, timeout=60)
    if started.returncode != 0:
        raise ChrootError(f"{INIT_SCRIPT} start exited {started.returncode}: {started.stderr}")
    try:
        _wait_served(glance, time.monotonic() + deadline)
        yield glance
    finally:
        # Not the script's stop (TERM, then 30 s for uWSGI's threaded
        # workers): nothing is left to test, so everything in the root goes.
        for pid in chroot.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _wait_served(glance: Glance, deadline: float) -> None:
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, _ = glance.get("/versions", timeout=2)
            if status in (200, 300):
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = str(exc)
        if not glance.root.processes():
            break
        time.sleep(0.3)
    raise ChrootError(
        f"{glance.root.suite} ({glance.mode}): GET /versions: {last}:\n{glance.log()[-3000:]}"
    )


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    timeout: float = 10,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, bytes]:
    headers = {**IDENTITY, **(headers or {})}
    if body is not None:
        headers["Content-Type"] = "application/octet-stream"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status: int = resp.status
            return status, resp.read()
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, exc.read()
        except ConnectionError:
            # A server that refuses an upload answers before reading its body
            # and closes: the status is the answer.
            return exc.code, b""


# Identity headers for the TRUSTED flavor: what keystonemiddleware would set.
IDENTITY = {
    "X-Identity-Status": "Confirmed",
    "X-Project-Id": "0123456789abcdef0123456789abcdef",
    "X-User-Id": "fedcba9876543210fedcba9876543210",
    "X-Roles": "admin,member,reader",
}
# There is no Keystone here, and the shipped noauth flavors give requests no
# project, so Glance cannot record an import task. This pipeline is the
# keystone flavor without authtoken: the context comes from IDENTITY.
FILTERS = "cors http_proxy_to_wsgi versionnegotiation osprofiler context"
TRUSTED = {
    "pipeline:glance-api-trusted": {"pipeline": f"{FILTERS} rootapp"},
    "pipeline:glance-api-trusted+caching": {"pipeline": f"{FILTERS} cache rootapp"},
}


def json_request(
    method: str, url: str, data: object = None, content_type: str = "application/json"
) -> tuple[int, object]:
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, method=method, headers=IDENTITY)
    if body is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read()
            return resp.status, json.loads(text) if text else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
