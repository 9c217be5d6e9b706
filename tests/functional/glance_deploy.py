"""Stand up a real Glance API (from PyPI) under uWSGI, for functional tests.

The point is to compare glance-features' verdicts with what Glance really
does, so nothing here is mocked: a virtualenv holding ``glance``, ``xattr``
and ``uwsgi`` (see :func:`glance_venv`), a config directory written from a
:class:`GlanceConfig`, ``glance-manage db_sync`` on a SQLite file, then
``glance.wsgi.api:application`` served by uWSGI on 127.0.0.1. There is no
Keystone: the paste pipeline is Glance's keystone one minus authtoken, so
Glance trusts the identity headers :class:`GlanceClient` (urllib only) sends.

Typical use::

    config = GlanceConfig(image_import_plugins=["image_conversion"],
                          service_path=tool_path(tmp_path, "qemu-img"))
    with GlanceDeployment(tmp_path / "glance", config) as g:
        outcome = g.client().import_qcow2("cirros", make_qcow2(tmp_path / "disk.qcow2"))

Every wait has a deadline; leaving the ``with`` block kills the service's
whole process group, so no uWSGI worker or qemu-img child outlives a test.
"""

from __future__ import annotations

import configparser
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from .postgres import POSTGRES_ENV, PostgreSQL

__all__ = [
    "GlanceClient",
    "GlanceConfig",
    "GlanceDeployment",
    "GlanceUnavailable",
    "HttpResult",
    "Image",
    "ImportOutcome",
    "Interpreter",
    "Task",
    "glance_venv",
    "make_qcow2",
    "tool_path",
]


class GlanceUnavailable(RuntimeError):
    """The Glance virtualenv (or a tool it needs) is missing; tests turn this into a skip."""


def glance_venv() -> Path:
    """The virtualenv with ``glance`` 33.x, ``xattr`` and ``uwsgi``: ``$GLANCE_VENV``,
    else ``.venv-glance`` at the repository root (where tests/run.sh makes it)."""
    default = Path(__file__).resolve().parents[2] / ".venv-glance"
    venv = Path(os.environ.get("GLANCE_VENV") or default).absolute()
    for tool in ("python", "glance-manage", "uwsgi"):
        if not os.access(venv / "bin" / tool, os.X_OK):
            raise GlanceUnavailable(
                f"{venv}/bin/{tool} missing (tests/run.sh: pip install glance xattr uwsgi "
                "into .venv-glance, or set GLANCE_VENV)"
            )
    return venv


def tool_path(directory: Path, *tools: str) -> str:
    """A PATH for the service holding only ``tools`` (symlinks to the real ones),
    so a test decides exactly what Glance can exec: ``tool_path(d)`` has nothing."""
    bin_dir = directory / ("path-" + "-".join(tools) if tools else "path-empty")
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in tools:
        found = shutil.which(tool)
        if found is None:
            raise GlanceUnavailable(f"{tool} is not installed")
        link = bin_dir / tool
        if not link.exists():
            link.symlink_to(found)
    return str(bin_dir)


def make_qcow2(path: Path, size: str = "1M", timeout: float = 30) -> Path:
    """A small, empty qcow2 made by the real qemu-img (apt: qemu-utils)."""
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise GlanceUnavailable("qemu-img is not installed (apt-get install qemu-utils)")
    subprocess.run(
        [qemu_img, "create", "-q", "-f", "qcow2", str(path), size],
        check=True,
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return path


class Interpreter(enum.Enum):
    """Special values for :attr:`GlanceConfig.python_interpreter`."""

    VENV = "venv"  # the Glance virtualenv's bin/python: what a correct deployment sets
    UNSET = "unset"  # leave [wsgi] python_interpreter out, so Glance uses sys.executable


@dataclass(frozen=True)
class GlanceConfig:
    """The knobs a test turns; everything else is a plain single-node setup."""

    image_import_plugins: Sequence[str] = ()
    output_format: str = "raw"
    image_cache_driver: str | None = None
    image_cache_dir: Path | None = None
    # "trusted", "trusted+caching", "trusted+cachemanagement": Glance's keystone
    # pipelines without authtoken, added by this module (see _paste_ini). The shipped
    # flavors work too, but the no-auth "" one cannot import: its context has no
    # project, and a task's owner must not be NULL.
    paste_flavor: str = "trusted"
    # PATH of the service: only what is on it can be exec'd by Glance (e.g. qemu-img).
    service_path: str = os.defpath
    python_interpreter: str | Interpreter = Interpreter.VENV
    # uWSGI drops to this user (e.g. "glance") after binding; None keeps the current one.
    run_as: str | None = None
    # Argv put in front of uwsgi, e.g. an `unshare -m sh -c 'mount ...; exec "$@"'` prefix.
    wrap: Sequence[str] = ()
    processes: int = 2
    threads: int = 2
    # What the server loads and how: Glance's own entry point, or a wrapper such as
    # glance_features.wsgi:application; "uwsgi" or "gunicorn"; whether workers load
    # the application after forking (uWSGI --lazy-apps; gunicorn without --preload).
    application: str = "glance.wsgi.api:application"
    server: str = "uwsgi"
    lazy_apps: bool = True
    # [app:healthcheck] backends (and extra keys) in the paste file.
    healthcheck_backends: Sequence[str] = ("disable_by_file",)
    healthcheck_options: Mapping[str, str] = field(default_factory=dict)
    debug: bool = True
    # {"glance-api.conf": {"section": {"option": "value"}}}, applied last.
    extra: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return cast(dict[str, Any], json.loads(self.body))


@dataclass(frozen=True)
class Image:
    id: str
    status: str
    disk_format: str | None
    container_format: str | None
    size: int | None
    raw: Mapping[str, Any]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Image:
        return cls(
            data["id"],
            data["status"],
            data.get("disk_format"),
            data.get("container_format"),
            data.get("size"),
            data,
        )


@dataclass(frozen=True)
class Task:
    id: str
    type: str
    status: str
    message: str
    raw: Mapping[str, Any]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Task:
        return cls(data["id"], data["type"], data["status"], data.get("message") or "", data)


@dataclass(frozen=True)
class ImportOutcome:
    image: Image
    tasks: tuple[Task, ...]
    seconds: float

    @property
    def failure_message(self) -> str:
        """The message of the newest failed task, or "" if none failed."""
        failed = [t for t in self.tasks if t.status == "failure"]
        return failed[-1].message if failed else ""


# An image in one of these states will not change by itself any more.
_SETTLED_IMAGE = frozenset({"active", "killed", "deleted"})


class GlanceClient:
    """The few v2 calls the tests need, over urllib. Every request carries the
    identity headers keystonemiddleware would set (an admin and member of one
    project); the "trusted" pipelines believe them, the no-auth one ignores them."""

    def __init__(
        self, base_url: str, timeout: float = 30, project_id: str = "functional-project"
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.identity = {
            "X-Identity-Status": "Confirmed",
            "X-User-Id": "functional-user",
            "X-Project-Id": project_id,
            "X-Roles": "admin,member,reader",
        }

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResult:
        """One HTTP call; error statuses are returned, not raised, so tests can assert them."""
        req = urllib.request.Request(
            self.base_url + path,
            data=body,
            method=method,
            headers={**self.identity, **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return HttpResult(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as err:
            with err:
                return HttpResult(err.code, dict(err.headers), err.read())

    def _json(self, method: str, path: str, payload: object, expect: int) -> HttpResult:
        result = self.request(
            method, path, json.dumps(payload).encode(), {"Content-Type": "application/json"}
        )
        self._expect(result, expect, f"{method} {path}")
        return result

    @staticmethod
    def _expect(result: HttpResult, status: int, what: str) -> None:
        if result.status != status:
            raise AssertionError(
                f"{what}: HTTP {result.status}, expected {status}: {result.body[:500]!r}"
            )

    def healthcheck(self) -> HttpResult:
        return self.request("GET", "/healthcheck")

    def versions(self) -> HttpResult:
        return self.request("GET", "/versions")

    def create_image(
        self, name: str, disk_format: str = "qcow2", container_format: str = "bare"
    ) -> Image:
        payload = {"name": name, "disk_format": disk_format, "container_format": container_format}
        return Image.from_json(self._json("POST", "/v2/images", payload, 201).json())

    def get_image(self, image_id: str) -> Image:
        result = self.request("GET", f"/v2/images/{image_id}")
        self._expect(result, 200, f"GET image {image_id}")
        return Image.from_json(result.json())

    def stage(self, image_id: str, data: bytes) -> None:
        result = self.request(
            "PUT",
            f"/v2/images/{image_id}/stage",
            data,
            {"Content-Type": "application/octet-stream"},
        )
        self._expect(result, 204, f"stage {image_id}")

    def import_image(self, image_id: str, method: str = "glance-direct") -> None:
        self._json("POST", f"/v2/images/{image_id}/import", {"method": {"name": method}}, 202)

    def image_tasks(self, image_id: str) -> tuple[Task, ...]:
        """The image's tasks, oldest first (GET /v2/images/{id}/tasks, API 2.12+)."""
        result = self.request("GET", f"/v2/images/{image_id}/tasks")
        self._expect(result, 200, f"tasks of {image_id}")
        tasks = [Task.from_json(t) for t in result.json()["tasks"]]
        return tuple(sorted(tasks, key=lambda t: str(t.raw.get("created_at"))))

    def download(self, image_id: str) -> bytes:
        result = self.request("GET", f"/v2/images/{image_id}/file")
        self._expect(result, 200, f"download {image_id}")
        return result.body

    def import_qcow2(self, name: str, qcow2: Path, timeout: float = 120) -> ImportOutcome:
        """Create an image, stage ``qcow2`` (see :func:`make_qcow2`), import it
        with glance-direct and wait until the import has settled."""
        image = self.create_image(name, disk_format="qcow2")
        self.stage(image.id, qcow2.read_bytes())
        self.import_image(image.id, "glance-direct")
        return self.wait_for_import(image.id, timeout=timeout)

    def wait_for_import(
        self, image_id: str, timeout: float = 120, interval: float = 0.2
    ) -> ImportOutcome:
        """Poll until the import has settled: the image is active/killed/deleted, or
        its newest task failed and the image left "importing" (a failed glance-direct
        import puts the image back to "queued", which is not an end state by itself)."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            image = self.get_image(image_id)
            tasks = self.image_tasks(image_id)
            failed = bool(tasks) and tasks[-1].status == "failure"
            if image.status in _SETTLED_IMAGE or (failed and image.status != "importing"):
                return ImportOutcome(image, tasks, time.monotonic() - start)
            if time.monotonic() > deadline:
                states = [(t.status, t.message) for t in tasks]
                raise TimeoutError(
                    f"import of {image_id} unsettled after {timeout} s: "
                    f"image {image.status}, tasks {states}"
                )
            time.sleep(interval)


def _free_port() -> int:
    # The port may in principle be taken between close() and uWSGI's bind; on a
    # test machine's loopback that race is rare and fails loudly at readiness.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _render_ini(sections: Mapping[str, Mapping[str, str]]) -> str:
    out = []
    for section, options in sections.items():
        out.append(f"[{section}]")
        # Paste's "/: app" keys want ":"; "key = value" everywhere else.
        out.extend(
            f"{key}: {value}" if key.startswith("/") else f"{key} = {value}"
            for key, value in options.items()
        )
        out.append("")
    return "\n".join(out)


def _merge(
    base: dict[str, dict[str, str]], extra: Mapping[str, Mapping[str, str]] | None
) -> dict[str, dict[str, str]]:
    for section, options in (extra or {}).items():
        base.setdefault(section, {}).update(options)
    return base


def _oslo_list(items: Iterable[str]) -> str:
    # Both options are ListOpt(bounds=True) of quoted strings: ['a', 'b'].
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"


class GlanceDeployment:
    """A Glance API under uWSGI, configured in ``workdir`` (a context manager).

    ``workdir`` gets ``etc/`` (the config directory), ``data/`` (SQLite file,
    store, staging and tasks directories) and ``glance-api.log`` (uWSGI's and
    Glance's output). With ``run_as``, both directories are chowned to that user,
    which must be able to reach ``workdir`` and run the virtualenv's interpreter.
    ``timings`` records seconds taken by "db_sync", "start_to_ready" and "stop".
    """

    def __init__(
        self,
        workdir: Path,
        config: GlanceConfig | None = None,
        *,
        venv: Path | None = None,
        ready_timeout: float = 120,
        stop_timeout: float = 15,
    ) -> None:
        self.workdir = workdir.absolute()
        self.config = config or GlanceConfig()
        self.venv = venv or glance_venv()
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.config_dir = self.workdir / "etc"
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "glance-api.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.timings: dict[str, float] = {}
        self._launched = 0.0
        self._database_url: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 30) -> GlanceClient:
        return GlanceClient(self.url, timeout)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_errors(self, limit: int = 30) -> str:
        """The log's last ERROR lines, for an assertion's message: why an import failed.
        stevedore's complaints about store drivers whose libraries are absent are
        expected here and left out."""
        lines = [
            line
            for line in self.log_text().splitlines()
            if " ERROR " in line and " ERROR stevedore." not in line
        ]
        return "\n".join(lines[-limit:])

    # -- configuration -------------------------------------------------------

    def api_conf(self) -> dict[str, dict[str, str]]:
        """glance-api.conf as sections, before ``extra`` is merged in."""
        c, data = self.config, self.data_dir
        default = {
            "debug": str(c.debug).lower(),
            "enabled_backends": "fs:file",
            "enabled_import_methods": _oslo_list(["glance-direct", "web-download"]),
        }
        if c.image_cache_dir is not None:
            default["image_cache_dir"] = str(c.image_cache_dir)
        if c.image_cache_driver is not None:
            default["image_cache_driver"] = c.image_cache_driver
        conf = {
            "DEFAULT": default,
            "database": {"connection": self.database_url()},
            "glance_store": {"default_backend": "fs"},
            "fs": {"filesystem_store_datadir": f"{data}/images"},
            "os_glance_staging_store": {"filesystem_store_datadir": f"{data}/staging"},
            "os_glance_tasks_store": {"filesystem_store_datadir": f"{data}/tasks"},
            # The flavor picks the pipeline in glance-api-paste.ini (see _paste_ini).
            "paste_deploy": {"flavor": c.paste_flavor},
            "wsgi": {},
        }
        if c.python_interpreter is Interpreter.VENV:
            # Under uWSGI sys.executable is not a Python, so Glance needs telling.
            conf["wsgi"]["python_interpreter"] = str(self.venv / "bin" / "python")
        elif isinstance(c.python_interpreter, str):
            conf["wsgi"]["python_interpreter"] = c.python_interpreter
        return conf

    def import_conf(self) -> dict[str, dict[str, str]]:
        return {
            "image_import_opts": {
                "image_import_plugins": _oslo_list(self.config.image_import_plugins)
            },
            "image_conversion": {"output_format": self.config.output_format},
        }

    def _paste_ini(self) -> str:
        # pip installs the paste file under <venv>/etc/glance, where Glance does not look
        # (oslo.config's find_file searches the config file's directory, ~/.glance,
        # /etc/glance, /etc), so a copy goes into the config dir, plus the "trusted"
        # pipelines: each keystone one minus authtoken, so the context middleware takes
        # the identity headers GlanceClient sends, as Glance's own functional tests do.
        shipped = self.venv / "etc" / "glance" / "glance-api-paste.ini"
        if not shipped.exists():
            raise GlanceUnavailable(f"{shipped} missing: is glance installed in {self.venv}?")
        text = shipped.read_text()
        parser = configparser.RawConfigParser(strict=False)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(text)
        text = self._healthcheck_section(text)
        pipelines = {
            "trusted" + flavor.removeprefix("keystone"): " ".join(
                f for f in pipeline.split() if f != "authtoken"
            )
            for flavor, pipeline in parser["composite:api"].items()
            if flavor.startswith("keystone")
        }
        added = {
            "composite:api-trusted": {"paste.composite_factory": "glance.api:pipeline_factory"}
        }
        added["composite:api-trusted"].update(pipelines)
        for flavor in pipelines:
            added[f"composite:glance-api-{flavor}"] = {
                "paste.composite_factory": "glance.api:root_app_factory",
                "/": "api-trusted",
                "/healthcheck": "healthcheck",
            }
        return text + "\n# Added by tests/functional/glance_deploy.py\n" + _render_ini(added)

    def _healthcheck_section(self, text: str) -> str:
        # The shipped [app:healthcheck] names the backends on one line; the change an
        # operator makes is to that line, so the test makes the same edit.
        c = self.config
        shipped = "backends = disable_by_file\n"
        if shipped not in text:
            raise GlanceUnavailable("the shipped paste file has no 'backends = disable_by_file'")
        lines = [f"backends = {','.join(c.healthcheck_backends)}\n"]
        lines += [f"{key} = {value}\n" for key, value in c.healthcheck_options.items()]
        return text.replace(shipped, "".join(lines), 1)

    def database_url(self) -> str:
        """PostgreSQL when the tests started a server (see postgres.py and
        $GLANCE_DEPLOY_POSTGRES), else a SQLite file in the data dir."""
        if self._database_url is None:
            socket_dir = os.environ.get(POSTGRES_ENV)
            if socket_dir:
                self._database_url = PostgreSQL.at(Path(socket_dir)).create_database()
            else:
                self._database_url = f"sqlite:///{self.data_dir}/glance.sqlite"
        return self._database_url

    def write_config(self) -> None:
        for d in (self.config_dir, self.data_dir, *self._store_dirs()):
            d.mkdir(parents=True, exist_ok=True)
        extra = self.config.extra
        files = {
            "glance-api.conf": _merge(self.api_conf(), extra.get("glance-api.conf")),
            "glance-image-import.conf": _merge(
                self.import_conf(), extra.get("glance-image-import.conf")
            ),
        }
        for name, sections in files.items():
            (self.config_dir / name).write_text(_render_ini(sections))
        (self.config_dir / "glance-api-paste.ini").write_text(self._paste_ini())

    def _store_dirs(self) -> list[Path]:
        return [self.data_dir / name for name in ("images", "staging", "tasks")]

    # -- lifecycle -----------------------------------------------------------

    def glance_command(
        self, tool: str, *args: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run a Glance CLI (glance-manage, glance-status) against this config dir."""
        return subprocess.run(
            [str(self.venv / "bin" / tool), "--config-dir", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self._env(),
            stdin=subprocess.DEVNULL,
        )

    def service_env(self) -> dict[str, str]:
        """The environment the service runs with, for commands that must see what it sees."""
        return self._env()

    def _env(self) -> dict[str, str]:
        # A clean environment: what the service sees is what the config says.
        return {
            "PATH": self.config.service_path,
            "OS_GLANCE_CONFIG_DIR": str(self.config_dir),
            "LANG": "C.UTF-8",
            "HOME": str(self.workdir),
        }

    def db_sync(self) -> None:
        start = time.monotonic()
        proc = self.glance_command("glance-manage", "db_sync", timeout=180)
        self.timings["db_sync"] = time.monotonic() - start
        if proc.returncode != 0:
            raise RuntimeError(f"glance-manage db_sync failed ({proc.returncode}):\n{proc.stderr}")
        if self.database_url().startswith("sqlite:"):
            # Readers then never block a writer (the mode is kept in the file); writers
            # can still collide, hence PostgreSQL where it is installed (postgres.py).
            with contextlib.closing(sqlite3.connect(self.data_dir / "glance.sqlite")) as db:
                db.execute("PRAGMA journal_mode=WAL")

    def _chown(self, user: str) -> None:
        if shutil.which("setpriv") is None:
            raise GlanceUnavailable("run_as needs setpriv (util-linux)")
        python = self.venv / "bin" / "python"
        # Fail early and clearly if the user cannot start the venv's Python or reach the
        # work dir: a venv made from pyenv's Python under root's 0700 home is one such.
        # (uwsgi --version is no test: ld.so may find Debian's libpython3.11 instead,
        # and then Python's initialisation fails only after uWSGI has dropped to the user.)
        as_user = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
        script = '"$0" -c pass && test -x "$1"'
        check = subprocess.run(
            [*as_user, "sh", "-c", script, str(python), str(self.workdir)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check.returncode != 0:
            raise GlanceUnavailable(
                f"user {user} cannot run {python} or reach {self.workdir}: {check.stderr.strip()}"
            )
        targets = [self.config_dir, self.data_dir]
        if self.config.image_cache_dir is not None:
            targets.append(self.config.image_cache_dir)
        for target in targets:
            shutil.chown(target, user, user)
            for path in target.rglob("*"):
                shutil.chown(path, user, user)

    def server_argv(self) -> list[str]:
        return self.gunicorn_argv() if self.config.server == "gunicorn" else self.uwsgi_argv()

    def gunicorn_argv(self) -> list[str]:
        c = self.config
        argv = [
            *c.wrap,
            str(self.venv / "bin" / "gunicorn"),
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(c.processes),
            "--threads", str(c.threads),
            "--graceful-timeout", "5",
            "--error-logfile", "-",
        ]  # fmt: skip
        if not c.lazy_apps:
            argv.append("--preload")
        if c.run_as is not None:
            argv += ["--user", c.run_as, "--group", c.run_as]
        return [*argv, c.application]

    def uwsgi_argv(self) -> list[str]:
        c = self.config
        argv = [
            *c.wrap,
            str(self.venv / "bin" / "uwsgi"),
            "--http-socket", f"127.0.0.1:{self.port}",
            "--home", str(self.venv),
            "--module", c.application,
            "--need-app",
            "--master",
            "--processes", str(c.processes),
            "--threads", str(c.threads),
            "--enable-threads",
            "--http-chunked-input",
            "--http-auto-chunked",
            "--buffer-size", "65535",
            "--die-on-term",
            "--exit-on-reload",
        ]  # fmt: skip
        # As Glance's own uwsgi sample: the app starts threads, so load it per worker,
        # and take chunked uploads (image data) as they come.
        if c.lazy_apps:
            argv.append("--lazy-apps")
        if c.run_as is not None:
            argv += ["--uid", c.run_as, "--gid", c.run_as]
        return argv

    def launch(self) -> None:
        """Start the WSGI server, without waiting for it."""
        self.port = _free_port()
        if self.config.run_as is not None:
            self._chown(self.config.run_as)
        self._launched = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.server_argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=self.workdir,
                # Its own process group, so stop() can kill workers and their children too.
                start_new_session=True,
            )

    def start(self) -> None:
        self.launch()
        self._wait_ready()
        self.timings["start_to_ready"] = time.monotonic() - self._launched

    def run_until_exit(self, timeout: float = 120) -> int:
        """Start the server expecting it to refuse (a start-up guard): wait for the
        master to exit and return its status. Raises TimeoutError if it serves instead."""
        self.write_config()
        self.db_sync()
        self.launch()
        assert self.process is not None
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"{self.config.server} still running after {timeout} s:\n" + self.log_text()[-4000:]
            ) from None
        finally:
            self.timings["start_to_exit"] = time.monotonic() - self._launched
            self.stop()
        return code

    def _wait_ready(self) -> None:
        # Ready means Glance answers: /versions, not /healthcheck, which may say 503
        # by design when a health-check backend finds a problem.
        assert self.process is not None
        deadline = time.monotonic() + self.ready_timeout
        probe = GlanceClient(self.url, timeout=2)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.config.server} exited with {self.process.returncode} before "
                    "serving:\n" + self.log_text()[-4000:]
                )
            try:
                if probe.versions().status in (200, 300):
                    return
            except OSError:
                pass  # not listening yet, or a worker still loading the app
            time.sleep(0.2)
        raise TimeoutError(
            f"Glance not ready after {self.ready_timeout} s:\n" + self.log_text()[-4000:]
        )

    def stop(self) -> None:
        """SIGINT (uWSGI's "kill now") to the process group, SIGKILL after stop_timeout,
        then wait until the group is empty: no worker or qemu-img child is left behind."""
        if self.process is None:
            return
        pgid = self.process.pid
        start = time.monotonic()
        _signal_group(pgid, signal.SIGINT)
        try:
            self.process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(pgid, signal.SIGKILL)
        self.process.wait(timeout=self.stop_timeout)
        deadline = time.monotonic() + self.stop_timeout
        while _group_alive(pgid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"process group {pgid} still alive after SIGKILL")
            time.sleep(0.05)
        self.timings["stop"] = time.monotonic() - start
        self.process = None

    def __enter__(self) -> GlanceDeployment:
        self.write_config()
        self.db_sync()
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs. A zombie does not: an
    orphaned worker waits there for a reaper (a subreaper test process, a
    namespace's init) that may only come later, and kill(0) counts it."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
