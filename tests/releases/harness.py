"""Start one Glance release the way operators serve it, for tests that compare
the probe's verdicts with what that release really does.

Two modes (:class:`Mode`): ``EVENTLET`` is the release's own ``glance-api``
console script with ``--config-file`` (glance/cmd/api.py: the eventlet
``wsgi.Server`` that forks workers); ``UWSGI`` serves the WSGI application
(``glance.wsgi.api:application``, or ``bin/glance-wsgi-api`` for 28 and 29, which have
no ``glance.wsgi`` package) with ``OS_GLANCE_CONFIG_DIR`` pointing at the
config directory, as ``glance.common.wsgi_app.init_app`` expects.

The virtualenvs are the ones tests/releases/build.sh makes (``.venv-glance-NN``
at the repository root) and, for 33, ``.venv-glance`` from tests/run.sh.

Typical use::

    port = free_port()
    write_config(config_dir, data_dir, venv, port=port, api={"DEFAULT": {...}})
    db_sync(venv, config_dir, user="glance")
    with start_glance(venv, Mode.EVENTLET, config_dir, "glance", port=port) as run:
        assert run.served, run.log_tail()

Every wait has a deadline, and leaving the ``with`` block kills the service's
whole process group and waits until it is empty.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functional.glance_deploy import _group_alive, _signal_group

__all__ = [
    "RELEASES",
    "GlanceRun",
    "Mode",
    "ProbeRun",
    "Release",
    "closed_port",
    "db_sync",
    "free_port",
    "release",
    "run_probe",
    "start_glance",
    "write_config",
]

REPO = Path(__file__).resolve().parents[2]
# NN -> the PyPI release operators run.
VERSIONS = {
    "28": "28.2.0",
    "29": "29.2.1",
    "30": "30.2.0",
    "31": "31.1.0",
    "32": "32.0.0",
    "33": "33.0.0",
}
RELEASES = tuple(VERSIONS)


class Mode(enum.Enum):
    """How the release is served; the value is the probe's ``--served-by``."""

    EVENTLET = "eventlet"
    UWSGI = "uwsgi"


@dataclass(frozen=True)
class Release:
    nn: str
    version: str
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def missing(self) -> str | None:
        """Why this venv cannot be used, or None."""
        for tool in ("python", "glance-api", "glance-manage", "uwsgi"):
            if not os.access(self.venv / "bin" / tool, os.X_OK):
                return f"{self.venv}/bin/{tool} missing (bash {self.build_hint()})"
        return None

    def build_hint(self) -> str:
        return "tests/run.sh" if self.nn == "33" else f"tests/releases/build.sh {self.nn}"

    @property
    def has_standalone_server(self) -> bool:
        """33's glance-api only prints that standalone is gone and exits 1."""
        return int(self.nn) < 33

    @property
    def calls_pydev_hook(self) -> bool:
        """Whether the eventlet server's workers call setup_remote_pydev_debug
        (glance/common/wsgi.py BaseServer.run_server); WSGI init_app never does."""
        return self.has_standalone_server


def release(nn: str) -> Release:
    """The release ``nn`` ("28".."33") with its virtualenv: ``$GLANCE_VENV_NN``,
    else ``.venv-glance-NN`` (``.venv-glance``, or ``$GLANCE_VENV``, for 33)."""
    if nn == "33":
        default = os.environ.get("GLANCE_VENV") or str(REPO / ".venv-glance")
    else:
        default = str(REPO / f".venv-glance-{nn}")
    venv = Path(os.environ.get(f"GLANCE_VENV_{nn}") or default).absolute()
    return Release(nn, VERSIONS[nn], venv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released: refused on connect)."""
    return free_port()


def _render_ini(sections: Mapping[str, Mapping[str, str]]) -> str:
    out: list[str] = []
    for section, options in sections.items():
        out.append(f"[{section}]")
        out.extend(f"{key} = {value}" for key, value in options.items())
        out.append("")
    return "\n".join(out)


def _merge(
    base: dict[str, dict[str, str]], extra: Mapping[str, Mapping[str, str]] | None
) -> dict[str, dict[str, str]]:
    for section, options in (extra or {}).items():
        base.setdefault(section, {}).update(options)
    return base


def write_config(
    config_dir: Path,
    data_dir: Path,
    venv: Path,
    *,
    port: int,
    api: Mapping[str, Mapping[str, str]] | None = None,
    image_import: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """A minimal single-node config in ``config_dir``: glance-api.conf (SQLite,
    file store, no auth, debug so Glance logs its config files and option values
    at start), the release's own paste file, and glance-image-import.conf only
    when ``image_import`` is given. Returns the glance-api.conf path."""
    for d in (config_dir, data_dir, *(data_dir / n for n in ("images", "staging", "tasks"))):
        d.mkdir(parents=True, exist_ok=True)
    conf = {
        "DEFAULT": {
            "debug": "true",
            "bind_host": "127.0.0.1",
            "bind_port": str(port),
            "enabled_backends": "fs:file",
        },
        "database": {"connection": f"sqlite:///{data_dir}/glance.sqlite"},
        "glance_store": {"default_backend": "fs"},
        "fs": {"filesystem_store_datadir": f"{data_dir}/images"},
        "os_glance_staging_store": {"filesystem_store_datadir": f"{data_dir}/staging"},
        "os_glance_tasks_store": {"filesystem_store_datadir": f"{data_dir}/tasks"},
    }
    path = config_dir / "glance-api.conf"
    path.write_text(_render_ini(_merge(conf, api)))
    if image_import is not None:
        (config_dir / "glance-image-import.conf").write_text(_render_ini(_merge({}, image_import)))
    # pip puts the paste file under <venv>/etc/glance, where Glance does not look;
    # beside the config file it is found. No [paste_deploy] flavor: the no-auth pipeline.
    shipped = venv / "etc" / "glance" / "glance-api-paste.ini"
    shutil.copyfile(shipped, config_dir / "glance-api-paste.ini")
    return path


def _as_user(user: str | None) -> list[str]:
    if user is None:
        return []
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--"]


def _chown_tree(path: Path, user: str) -> None:
    shutil.chown(path, user, user)
    for p in path.rglob("*"):
        shutil.chown(p, user, user)


def _env(config_dir: Path, home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    # A clean environment: what the service sees is what the config says.
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "OS_GLANCE_CONFIG_DIR": str(config_dir),
        **(extra or {}),
    }


def db_sync(venv: Path, config_dir: Path, user: str | None = None, timeout: float = 180) -> None:
    """``glance-manage db_sync`` as ``user``, after handing it the config and data dirs
    (the data dir is the parent of the SQLite file, see :func:`write_config`)."""
    databases = [
        Path(line.split("sqlite:///", 1)[1].strip())
        for line in (config_dir / "glance-api.conf").read_text().splitlines()
        if "sqlite:///" in line
    ]
    if user is not None:
        _chown_tree(config_dir, user)
        for db in databases:
            _chown_tree(db.parent, user)
    proc = subprocess.run(
        [
            *_as_user(user),
            str(venv / "bin" / "glance-manage"),
            "--config-file",
            str(config_dir / "glance-api.conf"),
            "db_sync",
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(config_dir, config_dir.parent),
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"glance-manage db_sync failed ({proc.returncode}):\n{proc.stderr}")
    for db in databases:
        # As tests/functional/glance_deploy.py: readers then never block a writer
        # (an import's task threads and the API share the file); the mode is kept
        # in the file, so setting it as root leaves nothing root-owned behind.
        with contextlib.closing(sqlite3.connect(db)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")


@dataclass
class GlanceRun:
    """One start of Glance. ``outcome`` is "served" (GET /versions answered 200
    or 300), "exited" (the service's main process ended first) or "timeout"."""

    mode: Mode
    argv: Sequence[str]
    port: int
    log_path: Path
    outcome: str = "timeout"
    status: int | None = None
    returncode: int | None = None
    seconds: float = 0.0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def served(self) -> bool:
        return self.outcome == "served"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 3000) -> str:
        return (
            f"{self.mode.value} {self.outcome} (rc {self.returncode}):\n"
            + (self.log_text()[-chars:])
        )


def _server_argv(
    venv: Path, mode: Mode, config_dir: Path, port: int, uwsgi_server: Sequence[str] = ()
) -> list[str]:
    bin_dir = venv / "bin"
    if mode is Mode.EVENTLET:
        return [str(bin_dir / "glance-api"), "--config-file", str(config_dir / "glance-api.conf")]
    uwsgi = Path(uwsgi_server[0]) if uwsgi_server else bin_dir / "uwsgi"
    argv = [
        str(uwsgi),
        *uwsgi_server[1:],
        "--http-socket", f"127.0.0.1:{port}",
        "--need-app",
        "--master",
        "--processes", "1",
        "--threads", "2",
        "--enable-threads",
        "--lazy-apps",
        "--die-on-term",
        "--exit-on-reload",
        "--buffer-size", "65535",
    ]  # fmt: skip
    # pyuwsgi's uwsgi is a console script already running the venv's Python; a
    # compiled uwsgi (tests/run.sh builds one) needs --home to find the venv.
    with uwsgi.open("rb") as f:
        if f.read(2) != b"#!":
            argv += ["--home", str(venv)]
    if any((venv / "lib").glob("python3*/site-packages/glance/wsgi/api.py")):
        return [*argv, "--module", "glance.wsgi.api:application"]
    # 28.x, 29.x: pbr's wsgi_scripts entry, glance.common.wsgi_app:init_app.
    return [*argv, "--wsgi-file", str(bin_dir / "glance-wsgi-api")]


def _versions_status(port: int, timeout: float) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/versions", timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as err:
        with err:
            return int(err.code)
    except OSError:
        return None


def _stop(process: subprocess.Popen[bytes], mode: Mode, timeout: float) -> None:
    pgid = process.pid
    # glance-api's parent kills its workers on SIGTERM; uWSGI stops at once on SIGINT.
    _signal_group(pgid, signal.SIGTERM if mode is Mode.EVENTLET else signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(pgid, signal.SIGKILL)
    process.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"process group {pgid} still alive after SIGKILL")
        time.sleep(0.05)


@contextlib.contextmanager
def start_glance(
    venv: Path,
    mode: Mode,
    config_dir: Path,
    user: str | None = None,
    *,
    port: int,
    ready_timeout: float = 60.0,
    stop_timeout: float = 10.0,
    env: Mapping[str, str] | None = None,
    wrap: Sequence[str] = (),
    uwsgi_server: Sequence[str] = (),
) -> Iterator[GlanceRun]:
    """Start Glance from ``venv`` in ``mode`` with the config in ``config_dir``
    (see :func:`write_config`; ``port`` is the one written there), as ``user``
    when given (via setpriv; the config and data dirs must be theirs, see
    :func:`db_sync`). Waits until it serves, exits, or ``ready_timeout`` passes,
    then yields the :class:`GlanceRun` (not raising: a service that fails to
    start is an outcome the tests compare). The process group is killed on exit.
    ``wrap`` goes in front (e.g. an ``unshare -m`` that mounts over a directory
    for this service alone); it must exec what follows. ``uwsgi_server``: another
    uWSGI and its own arguments instead of the venv's (Debian's ``/usr/bin/uwsgi
    --plugin python3``), given ``--home`` the venv."""
    argv = [
        *wrap,
        *_as_user(user),
        *_server_argv(venv, mode, config_dir, port, uwsgi_server),
    ]
    log_path = config_dir.parent / f"glance-{mode.value}.log"
    run = GlanceRun(mode, argv, port, log_path)
    start = time.monotonic()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(config_dir, config_dir.parent, env),
            cwd=config_dir.parent,
            # Its own process group, so every worker goes with it.
            start_new_session=True,
        )
    run.process = process
    try:
        deadline = start + ready_timeout
        while time.monotonic() < deadline:
            status = _versions_status(port, timeout=2)
            if status in (200, 300):
                run.outcome, run.status = "served", status
                break
            if process.poll() is not None:
                run.outcome, run.returncode = "exited", process.returncode
                break
            time.sleep(0.2)
        run.seconds = time.monotonic() - start
        yield run
    finally:
        _stop(process, mode, stop_timeout)
        if run.returncode is None:
            run.returncode = process.returncode


@dataclass(frozen=True)
class ProbeRun:
    returncode: int
    report: dict[str, Any] | None
    stderr: str

    def feature(self, name: str) -> dict[str, Any]:
        if self.report is None:
            raise AssertionError(f"no JSON report (rc {self.returncode}): {self.stderr[-2000:]}")
        return dict(self.report["features"][name])


def run_probe(
    venv: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    wrap: Sequence[str] = (),
) -> ProbeRun:
    """``<venv>/bin/python -m glance_features --format json *args`` (glance-features
    is installed editable in every release venv), with a clean environment."""
    proc = subprocess.run(
        [*wrap, str(venv / "bin" / "python"), "-m", "glance_features", "--format", "json", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    try:
        report = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        report = None
    return ProbeRun(proc.returncode, report, proc.stderr)
