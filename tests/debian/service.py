"""Start Debian's glance-api the way its init script does, and stop it without a trace.

Debian 12 (glance-api 2:25.1.0) ships ``/etc/init.d/glance-api`` and a systemd
unit whose ``ExecStart`` is that script's ``systemd-start``. Either way the
script sets ``PATH=/sbin:/usr/sbin:/bin:/usr/bin`` and runs, as glance:glance
from /var/lib/glance, the eventlet standalone server::

    /usr/bin/glance-api --config-file=/etc/glance/glance-api.conf \
        --log-file=/var/log/glance/glance-api.log

:func:`glance_api` runs exactly that: the argument list is what the script
itself prints (``show-args``), the process is started with the script's own
``start-stop-daemon`` options, in the environment ``service glance-api start``
gives it (``env -i``, ``LANG``, the script's ``PATH``). With ``stock=True`` it
is the script itself that starts it, on the files in /etc/glance. Otherwise a
private copy of /etc/glance takes the ``--config-file`` (and the log the
``--log-file``), so /etc stays untouched; :func:`edited` changes a stock file
for a test and puts it back byte for byte.

Stopping kills the daemon's process group (start-stop-daemon makes it a
session leader, so its workers share it) and waits until none is left.
"""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import json
import os
import pwd
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

INIT_SCRIPT = Path("/etc/init.d/glance-api")
UNIT = Path("/lib/systemd/system/glance-api.service")
CONFIG_DIR = Path("/etc/glance")
STOCK_PIDFILE = Path("/run/glance/glance-api.pid")
STATE_DIR = "/var/lib/glance"  # start-stop-daemon --chdir
USER = GROUP = "glance"
STOCK_PORT = 9292
# What `service` keeps of the caller's environment (env -i LANG=... PATH=...);
# the init script then replaces PATH with its own.
SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LANG = "C.UTF-8"
STOP_TIMEOUT = 15.0  # the unit's TimeoutStopSec


class GlanceError(RuntimeError):
    """Debian's glance-api did not start or serve; the message has its log's tail."""


def missing() -> str | None:
    """Why Debian's glance-api cannot be run here, or None."""
    if not Path("/etc/debian_version").exists():
        return "not a Debian host"
    if not INIT_SCRIPT.is_file() or not Path("/usr/bin/glance-api").is_file():
        return "Debian's glance-api is not installed (tests/debian/install.sh)"
    if os.geteuid() != 0:
        return "starting Debian's glance-api as its init script does needs root"
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return "no glance account"
    return None


def package_version(package: str = "glance-api") -> str | None:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}\t${Version}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    status, _, version = done.stdout.partition("\t")
    return version if done.returncode == 0 and status.endswith(" installed") else None


def init_path() -> str:
    """The PATH the init script sets for the daemon (and so for its children)."""
    found = re.search(r"^PATH=(\S+)$", INIT_SCRIPT.read_text(), re.MULTILINE)
    if found is None:
        raise GlanceError(f"{INIT_SCRIPT} sets no PATH")
    return found.group(1)


def service_env() -> dict[str, str]:
    """The daemon's environment: what ``service`` passes, PATH as the script sets it."""
    return {"LANG": LANG, "PATH": init_path()}


def init_command() -> list[str]:
    """The daemon's argv as the init script builds it (``show-args``)."""
    done = subprocess.run(
        ["env", "-i", f"LANG={LANG}", f"PATH={SERVICE_PATH}", str(INIT_SCRIPT), "show-args"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    argv = shlex.split(done.stdout)
    if not argv or not argv[0].startswith("/"):
        raise GlanceError(f"{INIT_SCRIPT} show-args printed {done.stdout!r}")
    return argv


def _replace(argv: Sequence[str], option: str, value: str) -> list[str]:
    prefix = f"--{option}="
    if not any(a.startswith(prefix) for a in argv):
        raise GlanceError(f"the init script passes no {prefix}: {list(argv)}")
    return [prefix + value if a.startswith(prefix) else a for a in argv]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def ini_text(options: Mapping[str, Mapping[str, str]]) -> str:
    """Sections to append to a config file: oslo.config lets a later value win."""
    lines = []
    for section, values in options.items():
        lines.append(f"\n[{section}]")
        lines.extend(f"{name} = {value}" for name, value in values.items())
    return "\n".join(lines) + "\n"


@dataclasses.dataclass(frozen=True)
class Glance:
    """A running Debian glance-api."""

    url: str
    pid: int  # the parent; its process group once its server has started
    argv: tuple[str, ...]
    env: Mapping[str, str]
    config_file: Path
    log_file: Path
    isolated_mounts: bool  # runs in a mount namespace of its own (hidden binaries)

    def get(self, path: str, timeout: float = 10) -> tuple[int, bytes]:
        return request("GET", self.url + path, timeout=timeout)

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def processes(self) -> list[int]:
        return group_members(self.pid)

    def in_namespace(self, argv: Sequence[str]) -> list[str]:
        """``argv`` to run in this Glance's view of the file system."""
        if not self.isolated_mounts:
            return list(argv)
        return ["nsenter", f"--target={self.pid}", "--mount", "--", *argv]


def request(
    method: str, url: str, body: bytes | None = None, timeout: float = 10
) -> tuple[int, bytes]:
    headers = dict(IDENTITY)
    if body is not None:
        headers["Content-Type"] = "application/octet-stream"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status: int = resp.status
            return status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


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
TRUSTED = {
    "pipeline:glance-api-trusted": {
        "pipeline": "cors healthcheck http_proxy_to_wsgi versionnegotiation osprofiler context "
        "rootapp"
    }
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


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (state, ppid, pgrp, ...), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
    return text[text.rfind(")") + 2 :].split()


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and len(fields) > 2 and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def _stop(pid: int) -> None:
    """SIGTERM, as the unit and the script's --retry=TERM do, to the daemon's
    process group; SIGKILL to what is left after TimeoutStopSec.

    The group is the daemon's own once Glance's server has started (it calls
    setpgid); before that it is start-stop-daemon's session, so both are swept.
    """
    fields = _stat(pid)
    groups = {pid} | ({int(fields[2])} if fields and len(fields) > 2 else set())
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 10.0)):
        for pgid in groups:
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not any(alive(p) for g in groups for p in group_members(g)):
                return
            time.sleep(0.1)
    left = [p for g in groups for p in group_members(g) if alive(p)]
    if left:
        raise GlanceError(f"glance-api processes {left} survived SIGKILL")


def _read_pid(pidfile: Path, deadline: float) -> int:
    while time.monotonic() < deadline:
        try:
            return int(pidfile.read_text().strip())
        except (OSError, ValueError):
            time.sleep(0.05)
    raise GlanceError(f"start-stop-daemon wrote no {pidfile}")


def _wait_served(glance: Glance, deadline: float) -> None:
    last = "no answer"
    while time.monotonic() < deadline:
        if not alive(glance.pid):
            # Its stderr went to /dev/null (--background): run argv as glance to see it.
            raise GlanceError(
                f"{shlex.join(glance.argv)} exited before serving:\n{glance.log()[-3000:]}"
            )
        try:
            status, _ = glance.get("/versions", timeout=2)
            if status in (200, 300):
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise GlanceError(f"GET /versions: {last} after the deadline:\n{glance.log()[-3000:]}")


def _private_config(
    base: Path,
    options: Mapping[str, Mapping[str, str]],
    port: int,
    database: bool | str,
    paste: Mapping[str, Mapping[str, str]],
) -> tuple[Path, Path]:
    """A copy of /etc/glance (owners and modes kept) with ``options`` appended
    to its glance-api.conf, and a directory the glance account may write for
    its log, its file store and, with ``database``, a database (that URL, or
    SQLite in that directory) and the import staging area: the package
    configures neither (debconf's glance/configure_db is false)."""
    gid = grp.getgrnam(GROUP).gr_gid
    uid = pwd.getpwnam(USER).pw_uid
    etc = base / "etc"
    shutil.copytree(CONFIG_DIR, etc, symlinks=True)
    for path in [etc, *etc.rglob("*")]:
        st = (CONFIG_DIR / path.relative_to(etc)).lstat()
        os.chown(path, st.st_uid, st.st_gid, follow_symlinks=False)
    logs = base / "log"
    logs.mkdir()
    os.chown(logs, uid, gid)
    config = etc / "glance-api.conf"
    images = logs / "images"  # the file store: not the stock /var/lib/glance/images
    images.mkdir()
    os.chown(images, uid, gid)
    own: dict[str, dict[str, str]] = {
        "DEFAULT": {"bind_host": "127.0.0.1", "bind_port": str(port)},
        "glance_store": {"filesystem_store_datadir": str(images)},
    }
    if database:
        url = database if isinstance(database, str) else f"sqlite:///{logs}/glance.sqlite"
        own["database"] = {"connection": url}
        own["DEFAULT"]["node_staging_uri"] = f"file://{logs}/staging"
        (logs / "staging").mkdir()
        os.chown(logs / "staging", uid, gid)
    with config.open("a") as f:
        f.write(ini_text(own) + ini_text(options))
    if paste:  # new sections only: paste.deploy's parser refuses a repeated one
        with (etc / "glance-api-paste.ini").open("a") as f:
            f.write(ini_text(paste))
    if database:
        subprocess.run(
            [
                "runuser",
                "-u",
                USER,
                "--",
                "/usr/bin/glance-manage",
                f"--config-file={config}",
                "db_sync",
            ],
            env=service_env(),
            cwd=STATE_DIR,
            capture_output=True,
            check=True,
            timeout=120,
        )
    return config, logs / "glance-api.log"


def _do_start(argv: Sequence[str], pidfile: Path) -> list[str]:
    """start-stop-daemon's options in the init script's do_start()."""
    return [
        "--start",
        "--quiet",
        "--background",
        "--chuid",
        f"{USER}:{GROUP}",
        "--make-pidfile",
        "--pidfile",
        str(pidfile),
        "--chdir",
        STATE_DIR,
        "--startas",
        argv[0],
        "--",
        *argv[1:],
    ]


def _namespace_script(hide: Sequence[str], local_bin: Sequence[str], base: Path) -> str:
    """Shell run in a private mount namespace before the daemon: each of
    ``hide`` becomes an empty, non-executable file (so PATH lookups pass it by),
    and /usr/local/bin holds nothing but copies of ``local_bin``."""
    empty = base / "hidden"
    empty.write_bytes(b"")
    empty.chmod(0o644)
    staged = base / "local-bin"
    staged.mkdir()
    for binary in local_bin:
        shutil.copy2(binary, staged / Path(binary).name)
    steps = ["set -e"]
    if local_bin:
        steps.append("mount -t tmpfs -o mode=0755 tmpfs /usr/local/bin")
        steps.extend(
            f"cp -p {shlex.quote(str(staged / Path(b).name))} /usr/local/bin/" for b in local_bin
        )
    steps.extend(f"mount --bind {shlex.quote(str(empty))} {shlex.quote(h)}" for h in hide)
    return "; ".join(steps) + '; exec "$@"'


@contextlib.contextmanager
def glance_api(
    options: Mapping[str, Mapping[str, str]] | None = None,
    *,
    stock: bool = False,
    hide: Sequence[str] = (),
    local_bin: Sequence[str] = (),
    database: bool | str = False,
    paste: Mapping[str, Mapping[str, str]] | None = None,
    deadline: float = 120.0,
) -> Iterator[Glance]:
    """Debian's glance-api, started as its init script starts it, serving /versions.

    ``stock``: the init script itself starts it, on /etc/glance and port 9292.
    Otherwise ``options`` (section -> name -> value) go into a private copy of
    /etc/glance, and it listens on a free port of 127.0.0.1. ``hide`` and
    ``local_bin`` change what it sees in a mount namespace of its own
    (:func:`_namespace_script`); :meth:`Glance.in_namespace` runs a command there.
    ``database``: a database synced with glance-manage (True: SQLite; a string:
    that SQLAlchemy URL). ``paste``: sections added to its glance-api-paste.ini.
    """
    reason = missing()
    if reason:
        raise GlanceError(reason)
    if stock and (options or hide or local_bin or database or paste):
        raise ValueError("stock=True runs the init script unchanged")
    end = time.monotonic() + deadline
    env = service_env()
    argv = init_command()
    with tempfile.TemporaryDirectory(prefix="debian-glance-") as tmp:
        base = Path(tmp)
        os.chown(base, 0, grp.getgrnam(GROUP).gr_gid)
        base.chmod(0o750)
        if stock:
            if _port_in_use(STOCK_PORT):
                raise GlanceError(f"port {STOCK_PORT} is taken: is glance-api running already?")
            port, pidfile = STOCK_PORT, STOCK_PIDFILE
            if pidfile.exists():  # a stale one would be read before the new one is written
                old = pidfile.read_text().strip()
                if old.isdigit() and alive(int(old)):
                    raise GlanceError(f"glance-api is running already (pid {old})")
                pidfile.unlink()
            config_file = Path(
                next(a for a in argv if a.startswith("--config-file=")).split("=")[1]
            )
            log_file = Path(next(a for a in argv if a.startswith("--log-file=")).split("=")[1])
            launch = [
                "/usr/bin/env",
                "-i",
                f"LANG={LANG}",
                f"PATH={SERVICE_PATH}",
                str(INIT_SCRIPT),
                "start",
            ]
        else:
            port = free_port()
            config_file, log_file = _private_config(
                base, options or {}, port, database, paste or {}
            )
            # start-stop-daemon writes it after taking the glance account's ids.
            pidfile = log_file.parent / "glance-api.pid"
            argv = _replace(argv, "config-file", str(config_file))
            argv = _replace(argv, "log-file", str(log_file))
            # The init script's do_start(), with our pid file.
            launch = ["start-stop-daemon", *_do_start(argv, pidfile)]
            if hide or local_bin:
                script = _namespace_script(hide, local_bin, base)
                launch = [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    script,
                    "sh",
                    *launch,
                ]
        glance = Glance(
            url=f"http://127.0.0.1:{port}",
            pid=0,
            argv=tuple(argv),
            env=env,
            config_file=config_file,
            log_file=log_file,
            isolated_mounts=bool(hide or local_bin),
        )
        started = subprocess.run(
            launch,
            env=env if not stock else {},
            capture_output=True,
            text=True,
            timeout=max(1.0, end - time.monotonic()),
            check=False,
            stdin=subprocess.DEVNULL,
            cwd="/",  # as `service` does
        )
        if started.returncode != 0:
            raise GlanceError(f"{launch[:6]}... exited {started.returncode}: {started.stderr}")
        pid = _read_pid(pidfile, end)
        glance = dataclasses.replace(glance, pid=pid)
        try:
            _wait_served(glance, end)
            yield glance
        finally:
            try:
                _stop(pid)
            finally:
                if stock:
                    STOCK_PIDFILE.unlink(missing_ok=True)


@contextlib.contextmanager
def edited(path: Path, append: str) -> Iterator[Path]:
    """``path`` with ``append`` added, then restored byte for byte (owner, mode too)."""
    st = path.stat()
    original = path.read_bytes()
    try:
        with path.open("ab") as f:
            f.write(append.encode())
        yield path
    finally:
        with path.open("wb") as f:
            f.write(original)
        os.chown(path, st.st_uid, st.st_gid)
        path.chmod(st.st_mode & 0o7777)
