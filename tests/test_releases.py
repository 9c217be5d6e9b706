"""Each Glance release operators run, served both ways, against the probe's verdicts.

For every release venv (tests/releases/build.sh: .venv-glance-29..32; tests/run.sh:
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
* config files: ``image_conversion`` enabled only in glance-image-import.conf.
  Glance logs (debug) the files it parsed; the probe's
  ``features.qemu-img.required`` must be true exactly for the modes that read it.

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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import need
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

MODES = [pytest.param(m, id=m.value) for m in Mode]


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


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A work dir the service user can reach: pytest's tmp_path is under a 0700 dir."""
    path = Path(tempfile.mkdtemp(prefix="glance-releases-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


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
    def api_conf(self) -> Path:
        return self.config_dir / "glance-api.conf"

    def tail(self) -> str:
        return f"{self.outcome} (rc {self.returncode}):\n{self.log[-3000:]}"


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
    args = ["--feature", feature]
    if config_file:
        args += ["--config-file", str(started.api_conf)]
    args += ["--served-by", started.mode.value, "--python", str(started.release.python)]
    # The environment the service had: init_app reads OS_GLANCE_CONFIG_DIR.
    return run_probe(
        started.release.venv, *args, env={"OS_GLANCE_CONFIG_DIR": str(started.config_dir)}
    )


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


class PydevRuns:
    """Glance started once per case with the debugger pointed at a closed port,
    shared by the Glance-side and the probe-side test of that case."""

    def __init__(self, base: Path, user: str) -> None:
        self.base, self.user = base, user
        self.started: dict[str, Started] = {}

    def __call__(self, case: Case) -> Started:
        if case.id not in self.started:
            r = _release(case.nn)
            default = {
                "pydev_worker_debug_host": "127.0.0.1",
                "pydev_worker_debug_port": str(closed_port()),
            }
            if case.workers is not None:
                default["workers"] = case.workers
            work = self.base / case.id
            work.mkdir(mode=0o755)
            self.started[case.id] = _start(r, case.mode, work, self.user, {"DEFAULT": default})
        return self.started[case.id]


@pytest.fixture(scope="module")
def pydev_runs(service_user: str) -> Iterator[PydevRuns]:
    base = Path(tempfile.mkdtemp(prefix="glance-releases-pydev-"))
    base.chmod(0o755)
    yield PydevRuns(base, service_user)
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in PYDEV_CASES])
def test_glance_pydev_start(case: Case, pydev_runs: PydevRuns) -> None:
    """What each release does, measured: the facts the probe is held to."""
    started = pydev_runs(case)
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
def test_probe_pydev_matches_glance(case: Case, pydev_runs: PydevRuns) -> None:
    """Probe says pydev required and unavailable (exit 2) exactly when Glance did not
    serve because of it; used_by_glance is false where the mode never calls the hook."""
    started = pydev_runs(case)
    probe = _probe(started, "pydev")
    _assert_glance_block(probe, started)
    pydev = probe.feature("pydev")
    probe_says_fails = (
        probe.returncode == 2 and bool(pydev["required"]) and not bool(pydev["available"])
    )
    glance_failed = _pydev_fails_glance(case)
    assert probe_says_fails == glance_failed, (
        f"probe rc {probe.returncode}, pydev {pydev}; Glance {started.tail()}"
    )
    hook_called = case.mode is Mode.EVENTLET and started.release.calls_pydev_hook
    if case.workers == "0" or not hook_called:
        assert pydev["used_by_glance"] is False, pydev
    else:
        assert pydev["used_by_glance"] is True, pydev


# -- config files -------------------------------------------------------------

_CONFIG_FILES = re.compile(r"DEBUG glance\.common\.config \[[^]]*\] config files: (\[.*?\])")


def _files_read(log: str) -> list[str]:
    """The files Glance parsed, from its own start-up log (debug: load_paste_app
    calls CONF.log_opt_values, whose first line is "config files: [...]")."""
    found = _CONFIG_FILES.search(log)
    assert found is not None, f"no 'config files:' line in the log:\n{log[-3000:]}"
    files = ast.literal_eval(found.group(1))
    assert isinstance(files, list)
    return [os.path.basename(str(f)) for f in files]


@pytest.fixture
def import_started(request: pytest.FixtureRequest, service_user: str, open_tmp: Path) -> Started:
    case: Case = request.param
    r = _release(case.nn)
    image_import = {
        "image_import_opts": {"image_import_plugins": "['image_conversion']"},
        "image_conversion": {"output_format": "raw"},
    }
    return _start(r, case.mode, open_tmp, service_user, {}, image_import)


@pytest.mark.parametrize(
    ("case", "import_started"),
    [pytest.param(c, c, id=c.id) for c in CONFIG_CASES],
    indirect=["import_started"],
)
def test_config_files_each_mode_reads(case: Case, import_started: Started) -> None:
    """glance-api --config-file reads only that file (oslo.config's discovery of
    glance.conf/glance-api.conf is replaced by it; glance-image-import.conf is never
    looked for); init_app reads glance-image-import.conf then glance-api.conf from
    OS_GLANCE_CONFIG_DIR. The probe, given what the service was given, must agree."""
    started = import_started
    assert started.served, started.tail()
    files = _files_read(started.log)
    reads_import_conf = "glance-image-import.conf" in files
    if case.mode is Mode.EVENTLET:
        assert files == ["glance-api.conf"], files
    else:
        assert files == ["glance-image-import.conf", "glance-api.conf"], files
    # The service's own inputs: glance-api got --config-file; init_app got the env only.
    probe = _probe(started, "qemu-img", config_file=case.mode is Mode.EVENTLET)
    _assert_glance_block(probe, started)
    qemu = probe.feature("qemu-img")
    assert bool(qemu["required"]) == reads_import_conf, (
        f"probe: qemu-img required={qemu['required']} ({qemu.get('reason')}); Glance "
        f"({case.mode.value}) read {files}"
    )
