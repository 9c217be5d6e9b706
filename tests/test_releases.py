"""Each Glance release operators run, served both ways, against the probe's verdicts.

For every release venv (tests/releases/build.sh: .venv-glance-28..32; tests/run.sh:
.venv-glance for 33) and both modes (the release's ``glance-api`` console script,
i.e. the eventlet server with forked workers; uWSGI serving the WSGI
application), Glance really starts as the ``glance`` user and the tests record
what it does, then ask the probe, run from that venv with ``--served-by`` and
``--python``, whether it agrees:

* pydev: with ``pydev_worker_debug_host`` pointing at a closed port, the
  eventlet workers of 29-32 call ``setup_remote_pydev_debug``, which raises, and
  the service never serves; WSGI ``init_app`` never calls the hook, nor does 33
  at all. The probe must say "required and unavailable" (exit 2) exactly when
  Glance does not serve, and ``used_by_glance`` false where the hook is not called.
* config files: ``image_conversion`` enabled only in glance-image-import.conf
  (read by init_app, never by glance-api), or only in ~/.glance/uwsgi.conf.d
  (read by 29-32's init_app under uWSGI only). Glance logs (debug) the files and
  dirs it parsed; the probe's ``features.qemu-img.required`` must be true exactly
  where Glance read the setting.

Each pair of tests shares one start of Glance: ``test_glance_*`` check what
Glance did (they pass today), ``test_probe_*`` hold the probe to it.

A missing venv skips on a laptop and fails under CI=true.
"""

from __future__ import annotations

import ast
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import need
from functional.glance_deploy import GlanceClient, GlanceConfig, GlanceDeployment, make_qcow2
from functional.postgres import POSTGRES_ENV
from releases.harness import (
    RELEASES,
    Mode,
    ProbeRun,
    Release,
    closed_port,
    db_sync,
    free_port,
    release,
    run_probe,
    start_glance,
    write_config,
)

SERVICE_USER = "glance"
# Glance starts in 1-3 s here; a worker stuck in pydevd.settrace would never serve.
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Case:
    nn: str
    mode: Mode
    workers: str | None = None  # [DEFAULT] workers; None leaves Glance's default

    @property
    def id(self) -> str:
        suffix = f"-workers{self.workers}" if self.workers is not None else ""
        return f"{self.nn}-{self.mode.value}{suffix}"


PYDEV_CASES = [Case(nn, mode) for nn in RELEASES for mode in Mode] + [
    # workers = 0: BaseServer.start_wsgi runs _single_run, never run_server, so the
    # eventlet server does not call the pydev hook either.
    Case(nn, Mode.EVENTLET, "0")
    for nn in RELEASES
    if release(nn).has_standalone_server
]
CONFIG_CASES = [
    Case(nn, mode)
    for nn in RELEASES
    for mode in Mode
    # 33's glance-api reads no config: it prints that standalone is gone and exits 1.
    if mode is Mode.UWSGI or release(nn).has_standalone_server
]


@pytest.fixture(scope="module")
def service_user() -> str:
    """The unprivileged account Glance runs as (tests/run.sh creates it as root)."""
    need(os.geteuid() == 0, "starting Glance as another user needs root (setpriv)")
    need(shutil.which("setpriv") is not None, "setpriv (util-linux) is not installed")
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return SERVICE_USER


def _release(nn: str) -> Release:
    r = release(nn)
    why = r.missing()
    need(why is None, f"Glance {r.version}: {why}")
    return r


@dataclass(frozen=True)
class Started:
    """What Glance did, and where its config is (for the probe)."""

    release: Release
    mode: Mode
    config_dir: Path
    served: bool
    outcome: str
    returncode: int | None
    log: str

    @property
    def home(self) -> Path:
        """The service's HOME (see harness._env): oslo.config searches ~/.glance."""
        return self.config_dir.parent

    @property
    def api_conf(self) -> Path:
        return self.config_dir / "glance-api.conf"

    def tail(self, chars: int = 3000) -> str:
        return f"{self.outcome} (rc {self.returncode}):\n{self.log[-chars:]}"


def _start(
    r: Release,
    mode: Mode,
    work: Path,
    user: str,
    api: dict[str, dict[str, str]],
    image_import: dict[str, dict[str, str]] | None = None,
) -> Started:
    port = free_port()
    config_dir = work / "etc"
    write_config(config_dir, work / "data", r.venv, port=port, api=api, image_import=image_import)
    db_sync(r.venv, config_dir, user)
    with start_glance(
        r.venv, mode, config_dir, user, port=port, ready_timeout=READY_TIMEOUT
    ) as run:
        served, outcome = run.served, run.outcome
    return Started(r, mode, config_dir, served, outcome, run.returncode, run.log_text())


def _probe(started: Started, feature: str, *, config_file: bool = True) -> ProbeRun:
    """The probe from the release's venv, told how Glance is served and given what
    the service was given: the --config-file of glance-api (``config_file``), and
    the service's environment (init_app reads OS_GLANCE_CONFIG_DIR; oslo.config
    looks in ~/.glance, so HOME)."""
    args = ["--feature", feature]
    if config_file:
        args += ["--config-file", str(started.api_conf)]
    args += ["--served-by", started.mode.value, "--python", str(started.release.python)]
    env = {"OS_GLANCE_CONFIG_DIR": str(started.config_dir), "HOME": str(started.home)}
    return run_probe(started.release.venv, *args, env=env)


class Runs:
    """Each Glance start made once (a work dir of its own under ``base``, which the
    service user can reach: pytest's tmp_path sits under a 0700 directory) and
    shared by the test of what Glance did and the test of what the probe says."""

    def __init__(self, base: Path, user: str) -> None:
        self.base, self.user = base, user
        self.started: dict[str, Started] = {}

    def __call__(
        self,
        key: str,
        r: Release,
        mode: Mode,
        api: dict[str, dict[str, str]],
        image_import: dict[str, dict[str, str]] | None = None,
        prepare: Callable[[Path], None] | None = None,
    ) -> Started:
        if key not in self.started:
            work = self.base / key
            work.mkdir(mode=0o755)
            if prepare is not None:
                prepare(work)
            self.started[key] = _start(r, mode, work, self.user, api, image_import)
        return self.started[key]


@pytest.fixture(scope="module")
def runs(service_user: str) -> Iterator[Runs]:
    base = Path(tempfile.mkdtemp(prefix="glance-releases-"))
    base.chmod(0o755)
    yield Runs(base, service_user)
    shutil.rmtree(base, ignore_errors=True)


def _assert_glance_block(probe: ProbeRun, started: Started) -> None:
    assert probe.report is not None, (
        f"probe gave no report (rc {probe.returncode}): {probe.stderr[-1500:]}"
    )
    glance = probe.report.get("glance") or {}
    assert glance.get("version") == started.release.version, glance
    assert glance.get("served_by") == started.mode.value, glance
    assert glance.get("python") == str(started.release.python), glance


# -- pydev --------------------------------------------------------------------


def _pydev_fails_glance(case: Case) -> bool:
    """From the code (see the module docstring): only 29-32's eventlet workers call it."""
    return case.mode is Mode.EVENTLET and release(case.nn).calls_pydev_hook and case.workers != "0"


def _pydev_started(runs: Runs, case: Case) -> Started:
    default = {
        "pydev_worker_debug_host": "127.0.0.1",
        "pydev_worker_debug_port": str(closed_port()),
    }
    if case.workers is not None:
        default["workers"] = case.workers
    return runs(f"pydev-{case.id}", _release(case.nn), case.mode, {"DEFAULT": default})


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in PYDEV_CASES])
def test_glance_pydev_start(case: Case, runs: Runs) -> None:
    """What each release does with the debugger absent, measured: the facts the
    probe is held to below."""
    started = _pydev_started(runs, case)
    if case.mode is Mode.EVENTLET and not started.release.has_standalone_server:
        assert started.outcome == "exited" and started.returncode == 1, started.tail()
        assert "Standalone glance-api is no longer supported" in started.log, started.tail()
        return
    if _pydev_fails_glance(case):
        assert not started.served, started.tail()
        # Each worker raises in pydevd.settrace (through eventlet's green socket: the
        # process is monkey-patched) and exits; the parent does not respawn them and
        # ends with status 0: a clean exit to systemd, without ever serving.
        assert "Error setting up the debug environment" in started.log, started.tail()
        assert "eventlet/greenio" in started.log, started.tail()
        assert "All workers have terminated. Exiting" in started.log, started.tail()
        assert started.outcome == "exited" and started.returncode == 0, started.tail()
    else:
        assert started.served, started.tail()
        assert "Error setting up the debug environment" not in started.log, started.tail()


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in PYDEV_CASES])
def test_probe_pydev_matches_glance(case: Case, runs: Runs) -> None:
    """Probe says pydev required and unavailable (exit 2) exactly when Glance does not
    serve because of it; used_by_glance is false where the mode never calls the hook."""
    started = _pydev_started(runs, case)
    probe = _probe(started, "pydev")
    _assert_glance_block(probe, started)
    pydev = probe.feature("pydev")
    probe_says_fails = (
        probe.returncode == 2 and bool(pydev["required"]) and not bool(pydev["available"])
    )
    assert probe_says_fails == _pydev_fails_glance(case), (
        f"probe rc {probe.returncode}, pydev {pydev}; Glance {started.tail(1500)}"
    )
    hook_called = _pydev_fails_glance(case)  # the hook runs, and with no debugger it raises
    assert pydev["used_by_glance"] is hook_called, pydev
    if hook_called:
        # Its traceback runs through eventlet's green socket: this Glance, served
        # this way, monkey-patched, which is what the dnspython-ipv6 rule says.
        assert "eventlet/greenio" in started.log, started.tail()
        dns = _probe(started, "dnspython-ipv6").feature("dnspython-ipv6")
        assert dns["details"]["glance_monkey_patches"] is True, dns


# -- config files -------------------------------------------------------------

_CONFIG_FILES = re.compile(r"DEBUG glance\.common\.config \[[^]]*\] config files: (\[.*?\])")
_CONFIG_DIRS = re.compile(r"DEBUG glance\.common\.config \[[^]]*\] config_dir +=  ?(\[.*?\])")
IMAGE_CONVERSION = {
    "image_import_opts": {"image_import_plugins": "['image_conversion']"},
    "image_conversion": {"output_format": "raw"},
}


def _logged_list(pattern: re.Pattern[str], log: str) -> list[str]:
    """Basenames from Glance's own start-up log: with debug, load_paste_app calls
    CONF.log_opt_values, which logs "config files: [...]" and "config_dir = [...]"."""
    found = pattern.search(log)
    assert found is not None, f"no {pattern.pattern!r} line in the log:\n{log[-3000:]}"
    items = ast.literal_eval(found.group(1))
    assert isinstance(items, list)
    return [os.path.basename(str(item)) for item in items]


def _import_conf_started(runs: Runs, case: Case) -> Started:
    r = _release(case.nn)
    return runs(f"files-{case.id}", r, case.mode, {}, image_import=IMAGE_CONVERSION)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CONFIG_CASES])
def test_glance_config_files(case: Case, runs: Runs) -> None:
    """glance-api --config-file reads only that file (it replaces oslo.config's
    glance.conf/glance-api.conf discovery; glance-image-import.conf is never looked
    for); init_app reads glance-image-import.conf, then glance-api.conf, from
    OS_GLANCE_CONFIG_DIR (wsgi_app._get_config_files)."""
    started = _import_conf_started(runs, case)
    assert started.served, started.tail()
    files = _logged_list(_CONFIG_FILES, started.log)
    if case.mode is Mode.EVENTLET:
        assert files == ["glance-api.conf"], files
    elif int(case.nn) < 29:
        # 28's wsgi_app.CONFIG_FILES also names the paste file, first.
        assert files == [
            "glance-api-paste.ini", "glance-image-import.conf", "glance-api.conf"
        ], files  # fmt: skip
    else:
        assert files == ["glance-image-import.conf", "glance-api.conf"], files


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CONFIG_CASES])
def test_probe_config_files(case: Case, runs: Runs) -> None:
    """image_conversion enabled only in glance-image-import.conf: qemu-img is
    required exactly for the modes whose Glance read that file."""
    started = _import_conf_started(runs, case)
    files = _logged_list(_CONFIG_FILES, started.log)
    # The service's own inputs: glance-api got --config-file; init_app the env only.
    probe = _probe(started, "qemu-img", config_file=case.mode is Mode.EVENTLET)
    _assert_glance_block(probe, started)
    qemu = probe.feature("qemu-img")
    assert bool(qemu["required"]) == ("glance-image-import.conf" in files), (
        f"probe: qemu-img required={qemu['required']} ({qemu.get('reason')}); "
        f"Glance ({case.mode.value}) read {files}"
    )
    assert probe.report is not None
    read = [os.path.basename(str(f)) for f in probe.report["config_files"]]
    assert read[: len(files)] == files, f"probe read {read}; Glance read {files}"


def _conf_d_started(runs: Runs, case: Case) -> Started:
    def prepare(work: Path) -> None:
        home = work / ".glance"
        for name in ("glance.conf.d", "glance-api.conf.d", "uwsgi.conf.d"):
            (home / name).mkdir(parents=True)
        (home / "uwsgi.conf.d" / "import.conf").write_text(
            "[image_import_opts]\nimage_import_plugins = ['image_conversion']\n"
        )

    return runs(f"dirs-{case.id}", _release(case.nn), case.mode, {}, prepare=prepare)


def _prog_conf_d(case: Case) -> str:
    """29-32's init_app calls CONF() without prog, so oslo.config takes
    basename(argv[0]): "uwsgi" under uWSGI. glance-api, and 33's init_app
    (prog='glance-api'), give glance-api."""
    if case.mode is Mode.UWSGI and int(case.nn) < 33:
        return "uwsgi.conf.d"
    return "glance-api.conf.d"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CONFIG_CASES])
def test_glance_config_dirs(case: Case, runs: Runs) -> None:
    """oslo.config also reads <project>.conf.d and <prog>.conf.d (the first of
    ~/.glance, ~, /etc/glance, /etc holding each): ~/.glance has all three here."""
    started = _conf_d_started(runs, case)
    assert started.served, started.tail()
    dirs = _logged_list(_CONFIG_DIRS, started.log)
    assert dirs == ["glance.conf.d", _prog_conf_d(case)], dirs


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CONFIG_CASES])
def test_probe_config_dirs(case: Case, runs: Runs) -> None:
    """image_conversion enabled only in ~/.glance/uwsgi.conf.d: only 29-32 under
    uWSGI read it, so only there is qemu-img required."""
    started = _conf_d_started(runs, case)
    dirs = _logged_list(_CONFIG_DIRS, started.log)
    probe = _probe(started, "qemu-img", config_file=case.mode is Mode.EVENTLET)
    _assert_glance_block(probe, started)
    qemu = probe.feature("qemu-img")
    assert bool(qemu["required"]) == ("uwsgi.conf.d" in dirs), (
        f"probe: qemu-img required={qemu['required']} ({qemu.get('reason')}); "
        f"Glance ({case.mode.value}) read the dirs {dirs}"
    )


def _log_problems(log: str, limit: int = 40) -> str:
    """The log's WARNING/ERROR lines and tracebacks: why an import did not settle."""
    keep = [
        line
        for line in log.splitlines()
        if (" ERROR " in line or " WARNING " in line or "Error" in line)
        and " stevedore." not in line
    ]
    return "\n".join(keep[-limit:]) or log[-3000:]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CONFIG_CASES])
def test_glance_image_conversion_per_mode(
    case: Case, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same split, seen in what Glance does with an image: image_conversion
    (output_format raw) enabled only in glance-image-import.conf, a qcow2
    imported with glance-direct. init_app converts it to raw; glance-api never
    read the plugin list, so the image stays qcow2."""
    qemu_img = shutil.which("qemu-img")
    need(qemu_img is not None, "qemu-img is not installed (apt-get install qemu-utils)")
    r = _release(case.nn)
    # SQLite even after tests/functional started PostgreSQL for its session: the
    # release venvs have no psycopg2, and one start-up needs no concurrency.
    monkeypatch.delenv(POSTGRES_ENV, raising=False)
    work = runs.base / f"convert-{case.id}"
    work.mkdir(mode=0o755)
    # The functional harness writes the config this needs: the "trusted" paste
    # pipeline (an import needs a project in the context), the import conf, and
    # [wsgi] python_interpreter (under uWSGI sys.executable is no use to prlimit).
    deployment = GlanceDeployment(
        work,
        GlanceConfig(image_import_plugins=["image_conversion"], output_format="raw"),
        venv=r.venv,
    )
    deployment.write_config()
    port = free_port()
    api_conf = deployment.config_dir / "glance-api.conf"
    api_conf.write_text(
        api_conf.read_text().replace(
            # One eventlet worker, as uWSGI runs one process here: two processes
            # writing one SQLite file can stall a task (a blocked hub), which
            # is the test's infrastructure, not what it measures.
            "[DEFAULT]\n",
            f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\nworkers = 1\n",
            1,
        )
    )
    db_sync(r.venv, deployment.config_dir, runs.user)
    qcow2 = make_qcow2(work / "disk.qcow2")
    with start_glance(
        r.venv, case.mode, deployment.config_dir, runs.user, port=port, ready_timeout=READY_TIMEOUT
    ) as run:
        assert run.served, run.log_tail()
        try:
            outcome = GlanceClient(f"http://127.0.0.1:{port}").import_qcow2("c", qcow2, timeout=90)
        except (TimeoutError, AssertionError) as err:
            raise AssertionError(f"{err}\n{_log_problems(run.log_text())}") from None
    assert outcome.image.status == "active", (outcome, run.log_tail())
    expected = "qcow2" if case.mode is Mode.EVENTLET else "raw"
    assert outcome.image.disk_format == expected, (outcome, run.log_tail())
