"""Release cases of issue 28 that no verdict modelled, each measured against a
running Glance of every release (tests/releases/build.sh) served both ways.

* output_format: Glance's ``[image_conversion] output_format`` (and the legacy
  ``[taskflow_executor] conversion_format``) have ``choices``. Glance starts
  with any other value and refuses it at the first import, when the task reads
  the option. The probe must call such a value refused before that import, and
  accept every value the release's own option accepts.
* conversion_format under a WSGI server: the legacy tasks API's import flow
  runs ``qemu-img info`` through ``oslo_concurrency.prlimit`` with
  ``sys.executable`` (never ``[wsgi] python_interpreter``); the probe's
  verdict must match what the task then does.

Each ``test_glance_*`` records what Glance did; the ``test_probe_*`` beside it
holds the probe to it, sharing one start of Glance. A missing venv skips on a
laptop and fails under CI=true.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import need
from functional.glance_deploy import (
    GlanceClient,
    GlanceConfig,
    GlanceDeployment,
    ImportOutcome,
    Interpreter,
    Task,
    make_qcow2,
)
from functional.postgres import POSTGRES_ENV
from releases.harness import (
    RELEASES,
    Mode,
    ProbeRun,
    Release,
    db_sync,
    free_port,
    run_probe,
    start_glance,
)
from test_releases import CONFIG_CASES, READY_TIMEOUT, Case, _release, service_user

from glance_features.detectors.qemu_img import OUTPUT_FORMATS

__all__ = ["service_user"]  # the fixture, shared with test_releases

# A disk format Glance and qemu-img both know (qemu-img writes it as "vpc"), so
# the only thing refusing it is the option's choices.
REFUSED_FORMAT = "vhd"


@dataclass
class Measured:
    """One start of Glance and what it did with one image."""

    release: Release
    mode: Mode
    config_dir: Path
    home: Path
    served: bool
    log: str
    outcome: ImportOutcome | None = None
    task: Task | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def tail(self, chars: int = 3000) -> str:
        return self.log[-chars:]

    def probe(self, feature: str) -> ProbeRun:
        """The probe from the release's venv, given what the service was given."""
        args = ["--feature", feature, "--served-by", self.mode.value]
        args += ["--python", str(self.release.python)]
        if self.mode is Mode.EVENTLET:
            args += ["--config-file", str(self.config_dir / "glance-api.conf")]
        env = {"OS_GLANCE_CONFIG_DIR": str(self.config_dir), "HOME": str(self.home)}
        return run_probe(self.release.venv, *args, env=env)


class Starts:
    """Each start made once, shared by the Glance test and the probe test."""

    def __init__(self, base: Path, user: str) -> None:
        self.base, self.user = base, user
        self.done: dict[str, Measured] = {}

    def workdir(self, key: str) -> Path:
        # A new one each time: a start that failed its test is tried afresh.
        work = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=self.base))
        work.chmod(0o755)
        return work


@pytest.fixture(scope="module")
def starts(service_user: str) -> Iterator[Starts]:
    base = Path(tempfile.mkdtemp(prefix="glance-release-cases-"))
    base.chmod(0o755)
    yield Starts(base, service_user)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(autouse=True)
def _sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    # The release venvs have no psycopg2: SQLite, even after tests/functional
    # started PostgreSQL for its session.
    monkeypatch.delenv(POSTGRES_ENV, raising=False)


def _deploy(
    r: Release, work: Path, user: str, config: GlanceConfig, extra_default: str = ""
) -> tuple[GlanceDeployment, int]:
    """The functional harness's config (the "trusted" pipeline, so imports have
    a project), one worker bound to a free port, the database synced as ``user``."""
    deployment = GlanceDeployment(work, config, venv=r.venv)
    deployment.write_config()
    port = free_port()
    api_conf = deployment.config_dir / "glance-api.conf"
    api_conf.write_text(
        api_conf.read_text().replace(
            "[DEFAULT]\n",
            f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\nworkers = 1\n{extra_default}",
            1,
        )
    )
    db_sync(r.venv, deployment.config_dir, user)
    return deployment, port


def _qemu_img() -> None:
    need(shutil.which("qemu-img") is not None, "qemu-img is not installed (qemu-utils)")


def _settle_task(client: GlanceClient, task_id: str, timeout: float = 90) -> Task:
    deadline = time.monotonic() + timeout
    while True:
        result = client.request("GET", f"/v2/tasks/{task_id}")
        assert result.status == 200, result
        task = Task.from_json(result.json())
        if task.status in ("success", "failure"):
            return task
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {task_id} still {task.status} after {timeout} s")
        time.sleep(0.3)


# -- [image_conversion] output_format: what Glance refuses, and when ------------


def _refused_format(starts: Starts, case: Case) -> Measured:
    key = f"format-{case.id}"
    if key in starts.done:
        return starts.done[key]
    _qemu_img()
    r = _release(case.nn)
    work = starts.workdir(key)
    plugins = {
        "image_import_opts": {"image_import_plugins": "['image_conversion']"},
        "image_conversion": {"output_format": REFUSED_FORMAT},
    }
    # In both files: glance-api reads only glance-api.conf, init_app both.
    config = GlanceConfig(
        image_import_plugins=["image_conversion"],
        output_format=REFUSED_FORMAT,
        extra={"glance-api.conf": plugins},
    )
    deployment, port = _deploy(r, work, starts.user, config)
    qcow2 = make_qcow2(work / "disk.qcow2")
    with start_glance(
        r.venv, case.mode, deployment.config_dir, starts.user, port=port,
        ready_timeout=READY_TIMEOUT,
    ) as run:  # fmt: skip
        outcome = None
        if run.served:
            outcome = GlanceClient(f"http://127.0.0.1:{port}").import_qcow2(
                "refused", qcow2, timeout=90
            )
    measured = Measured(
        r, case.mode, deployment.config_dir, work, run.served, run.log_text(), outcome
    )
    starts.done[key] = measured
    return measured


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CONFIG_CASES])
def test_glance_refuses_output_format_at_first_import(case: Case, starts: Starts) -> None:
    """output_format = vhd: Glance starts and serves, accepts the import, and
    the image_conversion task fails on the value; the image is not converted."""
    m = _refused_format(starts, case)
    assert m.served, m.tail()
    assert m.outcome is not None
    assert m.outcome.image.status != "active", m.outcome
    failed = m.outcome.failure_message + "\n" + m.log
    assert "output_format" in failed and f"'{REFUSED_FORMAT}'" in failed, (
        m.outcome.failure_message,
        m.tail(),
    )


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CONFIG_CASES])
def test_probe_refuses_output_format_before_first_import(case: Case, starts: Starts) -> None:
    """The probe says so before any import: required, unavailable, refused."""
    m = _refused_format(starts, case)
    failed = m.outcome is not None and m.outcome.image.status != "active"
    probe = m.probe("qemu-img")
    qemu = probe.feature("qemu-img")
    refused = (qemu.get("details") or {}).get("refused") or {}
    says_refused = (
        probe.returncode == 2
        and qemu["required"] is True
        and qemu["available"] is False
        and refused.get("value") == REFUSED_FORMAT
    )
    assert says_refused == failed, (qemu, m.outcome)
    assert "first image import" in qemu["reason"], qemu


OPTION_CHOICES = Path(__file__).parent / "releases" / "option_choices.py"
CANDIDATES = ("qcow2", "raw", "vmdk", REFUSED_FORMAT, "RAW", "qed")


def _release_judges(r: Release) -> dict[str, Any]:
    """Both options' choices, and which candidates each option's own type
    accepts, asked of the release's registered options in its venv."""
    proc = subprocess.run(
        [str(r.python), str(OPTION_CHOICES), *CANDIDATES],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return dict(json.loads(proc.stdout))


@pytest.mark.parametrize("nn", RELEASES)
def test_probe_accepts_exactly_the_release_choices(nn: str, tmp_path: Path) -> None:
    """Every value the release's options accept is accepted by the probe, and
    nothing else is: each candidate judged by the release's own option type."""
    _qemu_img()
    r = _release(nn)
    judges = _release_judges(r)
    for option in ("output_format", "conversion_format"):
        assert judges[option]["choices"] == sorted(OUTPUT_FORMATS), judges
    tmp_path.chmod(0o755)
    for value in CANDIDATES:
        for section, option, enable in (
            ("image_conversion", "output_format",
             "[image_import_opts]\nimage_import_plugins = ['image_conversion']\n"),
            ("taskflow_executor", "conversion_format", ""),
        ):  # fmt: skip
            conf = tmp_path / f"{option}-{value}.conf"
            conf.write_text(
                f"{enable}[{section}]\n{option} = {value}\n"
                f"[wsgi]\npython_interpreter = {r.python}\n"
            )
            probe = run_probe(
                r.venv, "--feature", "qemu-img", "--config-file", str(conf),
                "--served-by", "eventlet", "--python", str(r.python),
            )  # fmt: skip
            qemu = probe.feature("qemu-img")
            refused = (qemu.get("details") or {}).get("refused")
            glance_accepts = judges[option]["accepts"][value]
            assert (refused is None) == glance_accepts, (option, value, qemu)


# -- [taskflow_executor] conversion_format: the legacy import task ----------------


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _serve(directory: Path) -> Iterator[int]:
    """``directory`` over HTTP on a loopback port: the legacy task's import_from."""
    handler = functools.partial(_Files, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _legacy_task(starts: Starts, case: Case, uwsgi_server: tuple[str, ...] = ()) -> Measured:
    """conversion_format = raw, [wsgi] python_interpreter unset (Glance's default),
    and one legacy import task (POST /v2/tasks) of a qcow2 served over HTTP.
    With ``uwsgi_server``, the probe also runs while Glance serves, so it finds
    the server's command line as on a host (facts["probe"])."""
    key = f"legacy-{case.id}{'-compiled' if uwsgi_server else ''}"
    if key in starts.done:
        return starts.done[key]
    _qemu_img()
    r = _release(case.nn)
    work = starts.workdir(key)
    served_dir = work / "served"
    served_dir.mkdir(mode=0o755)
    make_qcow2(served_dir / "disk.qcow2").chmod(0o644)
    with _serve(served_dir) as http_port:
        config = GlanceConfig(
            python_interpreter=Interpreter.UNSET,
            extra={
                "glance-api.conf": {
                    "taskflow_executor": {"conversion_format": "raw"},
                    # Newer releases filter the legacy import_from like web-download
                    # (33 refuses loopback hosts by default).
                    "import_filtering_opts": {
                        "allowed_ports": f"[{http_port}]",
                        "allowed_hosts": "[127.0.0.1]",
                    },
                }
            },
        )
        deployment, port = _deploy(r, work, starts.user, config)
        with start_glance(
            r.venv, case.mode, deployment.config_dir, starts.user, port=port,
            ready_timeout=READY_TIMEOUT, uwsgi_server=uwsgi_server,
        ) as run:  # fmt: skip
            task = None
            probe = None
            if run.served:
                client = GlanceClient(f"http://127.0.0.1:{port}")
                body = {
                    "type": "import",
                    "input": {
                        "import_from": f"http://127.0.0.1:{http_port}/disk.qcow2",
                        "import_from_format": "qcow2",
                        "image_properties": {
                            "name": "legacy", "disk_format": "qcow2", "container_format": "bare",
                        },
                    },
                }  # fmt: skip
                created = client.request(
                    "POST", "/v2/tasks", json.dumps(body).encode(),
                    {"Content-Type": "application/json"},
                )  # fmt: skip
                assert created.status == 201, (created, run.log_tail())
                task = _settle_task(client, str(created.json()["id"]))
                if uwsgi_server:
                    probe = run_probe(
                        r.venv, "--feature", "qemu-img", "--served-by", "uwsgi",
                        env={"OS_GLANCE_CONFIG_DIR": str(deployment.config_dir),
                             "HOME": str(work)},
                    )  # fmt: skip
    measured = Measured(r, case.mode, deployment.config_dir, work, run.served, run.log_text())
    measured.task = task
    measured.facts["probe"] = probe
    starts.done[key] = measured
    return measured


_PRLIMIT = re.compile(r"Running cmd \(subprocess\): (\S+) -m oslo_concurrency\.prlimit ")


def _prlimit_interpreter(m: Measured) -> str:
    """The interpreter Glance ran prlimit with, from processutils' debug line."""
    found = _PRLIMIT.search(m.log)
    assert found is not None, f"no prlimit command in the log:\n{m.tail()}"
    return found.group(1)


def _is_python(program: str) -> bool:
    """Whether ``program`` is a Python interpreter, not a WSGI server's binary
    (never run to find out: a uwsgi binary given -c would serve)."""
    return os.path.basename(os.path.realpath(program)).startswith("python")


def _runs_prlimit(python: str, user: str) -> bool:
    """Whether ``python -m oslo_concurrency.prlimit`` runs qemu-img as ``user``."""
    proc = subprocess.run(
        ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--",
         python, "-m", "oslo_concurrency.prlimit", "--as=1073741824", "--cpu=2", "--",
         "qemu-img", "--version"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}, cwd="/",
    )  # fmt: skip
    return proc.returncode == 0 and "qemu-img version" in proc.stdout


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CONFIG_CASES])
def test_glance_legacy_conversion_task(case: Case, starts: Starts) -> None:
    """The legacy task with python_interpreter unset runs qemu-img info through
    prlimit with the service's sys.executable, and succeeds exactly when that
    interpreter can run prlimit."""
    m = _legacy_task(starts, case)
    assert m.served, m.tail()
    assert m.task is not None
    python = _prlimit_interpreter(m)
    print(f"FACT legacy {case.id}: prlimit by {python}, task {m.task.status}")
    assert (m.task.status == "success") == _runs_prlimit(python, starts.user), (
        python,
        m.task,
        m.tail(),
    )
    if m.task.status == "success":
        # The convert step ran (without prlimit), to the configured format.
        assert "qemu-img convert -f qcow2 -O raw" in m.log, m.tail()


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CONFIG_CASES])
def test_probe_legacy_conversion_task(case: Case, starts: Starts) -> None:
    """The probe names the interpreter Glance ran, and is available exactly when
    the task succeeded."""
    m = _legacy_task(starts, case)
    assert m.task is not None
    probe = m.probe("qemu-img")
    qemu = probe.feature("qemu-img")
    details = qemu.get("details") or {}
    assert qemu["required"] is True, qemu
    ran = _prlimit_interpreter(m)
    if _is_python(ran):
        assert details.get("legacy_python") == ran, (details, m.tail())
    else:
        # A compiled uwsgi's own binary: the probe names no interpreter and says why.
        assert details.get("legacy_python") is None, (details, ran)
        assert "the server's binary" in details.get("legacy_python_from", ""), (details, ran)
    assert bool(qemu["available"]) == (m.task.status == "success"), (qemu, m.task)


# -- release rules keyed on the release: what each release's code does ---------

RELEASE_FACTS = Path(__file__).parent / "releases" / "release_facts.py"


@pytest.mark.parametrize("nn", RELEASES)
def test_release_rules_match_each_release(nn: str, tmp_path: Path) -> None:
    """The probe's rules keyed on the release (sendfile used before 29, zip
    decompression broken before 32) against that release's own code, run."""
    r = _release(nn)
    proc = subprocess.run(
        [str(r.python), str(RELEASE_FACTS)],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    facts = json.loads(proc.stdout)
    tmp_path.chmod(0o755)
    conf = tmp_path / "glance-api.conf"
    conf.write_text("[image_import_opts]\nimage_import_plugins = ['image_decompression']\n")
    probe = run_probe(
        r.venv, "--feature", "sendfile", "--feature", "image_decompression",
        "--config-file", str(conf), "--served-by", "eventlet", "--python", str(r.python),
    )  # fmt: skip
    sendfile = probe.feature("sendfile")
    assert sendfile["used_by_glance"] is facts["client_sendfile"], (facts, sendfile)
    decompression = probe.feature("image_decompression")
    zip_works = facts["zip_result"] == "file"
    assert ("zip" in decompression["details"]["formats"]) is zip_works, (facts, decompression)


# -- the staging store's default location in multi-store mode -----------------

# An empty, root-owned /var/lib for this service alone (a private mount
# namespace): the staging store's default, /var/lib/glance/os_glance_staging_store,
# is then missing and the glance account cannot create it, as on a host where
# Glance was installed with pip and nobody made Glance's state directory.
EMPTY_VAR_LIB = (
    "unshare", "-m", "sh", "-ec",
    'mount --make-rprivate /; mount -t tmpfs -o mode=0755 tmpfs /var/lib; exec "$@"', "sh",
)  # fmt: skip


def _staging_default(starts: Starts, case: Case) -> Measured:
    """[os_glance_staging_store] left out (its default), /var/lib empty and
    root's; Glance started, then one image staged (PUT /v2/images/{id}/stage)."""
    key = f"staging-{case.id}"
    if key in starts.done:
        return starts.done[key]
    need(shutil.which("unshare") is not None, "unshare (util-linux) is not installed")
    r = _release(case.nn)
    work = starts.workdir(key)
    deployment, port = _deploy(r, work, starts.user, GlanceConfig())
    api_conf = deployment.config_dir / "glance-api.conf"
    text = api_conf.read_text()
    section = re.search(r"\[os_glance_staging_store\]\n[^[]*", text)
    assert section is not None, text
    api_conf.write_text(text.replace(section.group(0), ""))
    with start_glance(
        r.venv, case.mode, deployment.config_dir, starts.user, port=port,
        ready_timeout=READY_TIMEOUT, wrap=EMPTY_VAR_LIB,
    ) as run:  # fmt: skip
        staged: int | None = None
        if run.served:
            client = GlanceClient(f"http://127.0.0.1:{port}")
            image = client.create_image("staged", disk_format="raw")
            staged = client.request(
                "PUT", f"/v2/images/{image.id}/stage", b"\0" * 4096,
                {"Content-Type": "application/octet-stream"},
            ).status  # fmt: skip
    m = Measured(r, case.mode, deployment.config_dir, work, run.served, run.log_text())
    m.facts["staged"] = staged
    starts.done[key] = m
    return m


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CONFIG_CASES])
def test_glance_staging_store_default(case: Case, starts: Starts) -> None:
    """What Glance does when its staging store's default directory cannot be made."""
    m = _staging_default(starts, case)
    print(f"FACT staging {case.id}: served={m.served} stage={m.facts['staged']}")
    assert "os_glance_staging_store" in m.log, m.tail()
    if m.served:
        assert m.facts["staged"] != 204, (m.facts, m.tail())


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CONFIG_CASES])
def test_probe_staging_store_default(case: Case, starts: Starts) -> None:
    """The probe, seeing the same /var/lib, says unavailable exactly when Glance
    cannot stage, and names the reserved store and its default directory."""
    m = _staging_default(starts, case)
    args = [
        "--feature",
        "store-file",
        "--served-by",
        m.mode.value,
        "--python",
        str(m.release.python),
    ]
    if m.mode is Mode.EVENTLET:
        args += ["--config-file", str(m.config_dir / "glance-api.conf")]
    env = {"OS_GLANCE_CONFIG_DIR": str(m.config_dir), "HOME": str(m.home)}
    probe = run_probe(m.release.venv, *args, env=env, wrap=EMPTY_VAR_LIB)
    store = probe.feature("store-file")
    glance_fails = not m.served or m.facts["staged"] != 204
    assert (store["available"] is False) == glance_fails, (store, m.facts, m.tail())
    staging = store["details"]["backends"]["os_glance_staging_store"]
    # Which default it is (it changed with glance_store 5.0.0) is shown where
    # Glance can write there: test_probe_staging_store_default_directory.
    assert staging["datadir"].startswith("/var/lib/glance/"), staging
    if glance_fails:
        assert "Glance still starts" in staging["reason"], staging


# -- [backend_defaults] for multi-store file stores ---------------------------


def _backend_defaults(starts: Starts, case: Case) -> Measured:
    """No filesystem_store_datadir in [fs] nor an [os_glance_staging_store]
    section, [backend_defaults] filesystem_store_datadir set to a directory of
    the service's, /var/lib empty and root's: one image uploaded to the default
    backend and one staged; where each landed (or the status that refused it)."""
    key = f"defaults-{case.id}"
    if key in starts.done:
        return starts.done[key]
    need(shutil.which("unshare") is not None, "unshare (util-linux) is not installed")
    r = _release(case.nn)
    work = starts.workdir(key)
    shared = work / "data" / "shared"
    deployment, port = _deploy(r, work, starts.user, GlanceConfig())
    api_conf = deployment.config_dir / "glance-api.conf"
    text = api_conf.read_text()
    for pattern in (
        r"\[os_glance_staging_store\]\n[^[]*",
        r"filesystem_store_datadir = \S+/images\n",
    ):
        found = re.search(pattern, text)
        assert found is not None, (pattern, text)
        text = text.replace(found.group(0), "")
    api_conf.write_text(text + f"\n[backend_defaults]\nfilesystem_store_datadir = {shared}\n")
    shared.mkdir(mode=0o755)
    shutil.chown(shared, starts.user, starts.user)
    facts: dict[str, Any] = {}
    with start_glance(
        r.venv, case.mode, deployment.config_dir, starts.user, port=port,
        ready_timeout=READY_TIMEOUT, wrap=EMPTY_VAR_LIB,
    ) as run:  # fmt: skip
        if run.served:
            client = GlanceClient(f"http://127.0.0.1:{port}")
            for what, path in (("upload", "file"), ("stage", "stage")):
                image = client.create_image(what, disk_format="raw")
                facts[what] = client.request(
                    "PUT", f"/v2/images/{image.id}/{path}", b"\0" * 4096,
                    {"Content-Type": "application/octet-stream"},
                ).status  # fmt: skip
                facts[f"{what}_in_shared"] = (shared / image.id).exists()
    m = Measured(r, case.mode, deployment.config_dir, work, run.served, run.log_text(), facts=facts)
    starts.done[key] = m
    return m


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CONFIG_CASES])
def test_glance_backend_defaults_file_stores(case: Case, starts: Starts) -> None:
    """Which file stores take their directory from [backend_defaults]."""
    m = _backend_defaults(starts, case)
    print(f"FACT defaults {case.id}: served={m.served} {m.facts}")
    assert m.served, m.tail()
    for what in ("upload", "stage"):
        # Stored where [backend_defaults] says, or refused: never somewhere else.
        assert (m.facts[what] == 204) == m.facts[f"{what}_in_shared"], (m.facts, m.tail())


def _var_lib_glance(work: Path) -> tuple[str, ...]:
    """An empty /var/lib whose glance/ is ``work``/var-lib-glance (root's, 0755,
    with an images/ of the service's): where Glance writes can be seen."""
    return (
        "unshare", "-m", "sh", "-ec",
        "mount --make-rprivate /; mount -t tmpfs -o mode=0755 tmpfs /var/lib; "
        f'mkdir /var/lib/glance; mount --bind {work}/var-lib-glance /var/lib/glance; exec "$@"',
        "sh",
    )  # fmt: skip


def _staging_images(starts: Starts, case: Case) -> Measured:
    """[os_glance_staging_store] left out, /var/lib/glance root's with only an
    images/ the service owns: where one staged image lands."""
    key = f"staging-images-{case.id}"
    if key in starts.done:
        return starts.done[key]
    need(shutil.which("unshare") is not None, "unshare (util-linux) is not installed")
    r = _release(case.nn)
    work = starts.workdir(key)
    images = work / "var-lib-glance" / "images"
    images.mkdir(parents=True, mode=0o755)
    (work / "var-lib-glance").chmod(0o755)
    shutil.chown(images, starts.user, starts.user)
    deployment, port = _deploy(r, work, starts.user, GlanceConfig())
    api_conf = deployment.config_dir / "glance-api.conf"
    text = api_conf.read_text()
    section = re.search(r"\[os_glance_staging_store\]\n[^[]*", text)
    assert section is not None, text
    api_conf.write_text(text.replace(section.group(0), ""))
    wrap = _var_lib_glance(work)
    facts: dict[str, Any] = {}
    with start_glance(
        r.venv, case.mode, deployment.config_dir, starts.user, port=port,
        ready_timeout=READY_TIMEOUT, wrap=wrap,
    ) as run:  # fmt: skip
        if run.served:
            client = GlanceClient(f"http://127.0.0.1:{port}")
            image = client.create_image("staged", disk_format="raw")
            facts["stage"] = client.request(
                "PUT", f"/v2/images/{image.id}/stage", b"\0" * 4096,
                {"Content-Type": "application/octet-stream"},
            ).status  # fmt: skip
            facts["in_images"] = (images / image.id).exists()
    m = Measured(r, case.mode, deployment.config_dir, work, run.served, run.log_text(), facts=facts)
    m.facts["wrap"] = wrap
    starts.done[key] = m
    return m


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CONFIG_CASES])
def test_glance_staging_store_default_directory(case: Case, starts: Starts) -> None:
    """Which directory the staging store uses when its section does not say."""
    m = _staging_images(starts, case)
    print(f"FACT staging-images {case.id}: served={m.served} {m.facts}")
    assert m.served, m.tail()
    assert (m.facts["stage"] == 204) == m.facts["in_images"], (m.facts, m.tail())


def _store_probe(m: Measured, wrap: tuple[str, ...]) -> dict[str, Any]:
    """store-file from the release's venv, seeing the service's /var/lib."""
    args = ["--feature", "store-file", "--served-by", m.mode.value]
    args += ["--python", str(m.release.python)]
    if m.mode is Mode.EVENTLET:
        args += ["--config-file", str(m.config_dir / "glance-api.conf")]
    env = {"OS_GLANCE_CONFIG_DIR": str(m.config_dir), "HOME": str(m.home)}
    return run_probe(m.release.venv, *args, env=env, wrap=wrap).feature("store-file")


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CONFIG_CASES])
def test_probe_staging_store_default_directory(case: Case, starts: Starts) -> None:
    """The probe names the directory Glance staged into, and is available
    exactly when Glance could stage."""
    m = _staging_images(starts, case)
    store = _store_probe(m, m.facts["wrap"])
    staging = store["details"]["backends"]["os_glance_staging_store"]
    assert (staging["status"] != "unavailable") == (m.facts["stage"] == 204), (staging, m.facts)
    assert (staging["datadir"] == "/var/lib/glance/images") == m.facts["in_images"], (
        staging,
        m.facts,
    )


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CONFIG_CASES])
def test_probe_backend_defaults_file_stores(case: Case, starts: Starts) -> None:
    """The probe reads [backend_defaults] exactly where Glance does: each file
    store's directory is the shared one where Glance wrote there, and it is
    unavailable where Glance refused."""
    m = _backend_defaults(starts, case)
    store = _store_probe(m, EMPTY_VAR_LIB)
    shared = str(m.home / "data" / "shared")
    for backend, what in (("fs", "upload"), ("os_glance_staging_store", "stage")):
        seen = store["details"]["backends"][backend]
        assert (seen["datadir"] == shared) == m.facts[f"{what}_in_shared"], (seen, m.facts)
        assert (seen["status"] != "unavailable") == (m.facts[what] == 204), (seen, m.facts)


# -- the rbd driver's own imports, and what Glance does without rados/rbd --------

RBD_IMPORTS = Path(__file__).parent / "releases" / "rbd_imports.py"


@pytest.mark.parametrize("nn", RELEASES)
def test_rbd_driver_imports_what_the_probe_imports(nn: str, tmp_path: Path) -> None:
    """Each release's glance_store rbd driver, imported with the distribution's
    rados and rbd on its path: the modules it imports that its own requirements
    do not provide are exactly those the probe imports for it."""
    from glance_features.detectors.store_rbd import MODULES

    r = _release(nn)
    bindings = tmp_path / "bindings"
    bindings.mkdir()
    for module in MODULES:
        found = sorted(Path("/usr/lib/python3/dist-packages").glob(f"{module}.cpython-*.so"))
        need(bool(found), f"python3-{module} (Debian's binding) is not installed")
        (bindings / found[0].name).symlink_to(found[0])
    proc = subprocess.run(
        [str(r.python), "-W", "ignore", str(RBD_IMPORTS)],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": str(bindings)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    facts = json.loads(proc.stdout)
    print(f"FACT rbd-imports {nn}: {facts}")
    assert all(facts["imports"].values()), facts
    assert facts["outside_requirements"] == sorted(MODULES), facts


def _rbd_without_bindings(starts: Starts, case: Case) -> Measured:
    """enabled_backends with a ceph:rbd backend, the venv without rados/rbd:
    does Glance start, and what does an upload to that backend get?"""
    key = f"rbd-{case.id}"
    if key in starts.done:
        return starts.done[key]
    r = _release(case.nn)
    work = starts.workdir(key)
    config = GlanceConfig(
        extra={
            "glance-api.conf": {
                "DEFAULT": {"enabled_backends": "fs:file, ceph:rbd"},
                "ceph": {"rbd_store_pool": "images", "rbd_store_user": "glance"},
            }
        }
    )
    deployment, port = _deploy(r, work, starts.user, config)
    facts: dict[str, Any] = {}
    with start_glance(
        r.venv, case.mode, deployment.config_dir, starts.user, port=port,
        ready_timeout=READY_TIMEOUT,
    ) as run:  # fmt: skip
        if run.served:
            client = GlanceClient(f"http://127.0.0.1:{port}")
            image = client.create_image("rbd", disk_format="raw")
            facts["upload"] = client.request(
                "PUT", f"/v2/images/{image.id}/file", b"\0" * 4096,
                {"Content-Type": "application/octet-stream", "X-Image-Meta-Store": "ceph"},
            ).status  # fmt: skip
            facts["fs_upload"] = client.request(
                "PUT", f"/v2/images/{client.create_image('fs', disk_format='raw').id}/file",
                b"\0" * 4096, {"Content-Type": "application/octet-stream"},
            ).status  # fmt: skip
    m = Measured(r, case.mode, deployment.config_dir, work, run.served, run.log_text(), facts=facts)
    starts.done[key] = m
    return m


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CONFIG_CASES])
def test_glance_rbd_backend_without_bindings(case: Case, starts: Starts) -> None:
    """Glance starts and serves; uploads to the rbd backend fail, the file
    backend's work, and glance_store logs why."""
    m = _rbd_without_bindings(starts, case)
    print(f"FACT rbd {case.id}: served={m.served} {m.facts}")
    assert m.served, m.tail()
    assert m.facts["upload"] != 204 and m.facts["fs_upload"] == 204, (m.facts, m.tail())
    assert "The required libraries(rbd and rados) are not available" in m.log, m.tail()


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CONFIG_CASES])
def test_probe_rbd_backend_without_bindings(case: Case, starts: Starts) -> None:
    """The probe says before the first upload: required, unavailable, rados
    and rbd missing, in the words glance_store logs."""
    m = _rbd_without_bindings(starts, case)
    probe = m.probe("store-rbd")
    rbd = probe.feature("store-rbd")
    glance_fails = m.served and m.facts["upload"] != 204
    says = rbd["required"] is True and rbd["available"] is False
    assert says == glance_fails, (rbd, m.facts)
    assert "The required libraries(rbd and rados) are not available" in rbd["reason"], rbd
    missing = rbd["details"]["backends"]["ceph"]["missing_modules"]
    assert set(missing) == {"rados", "rbd"}, rbd
    assert "Glance starts" in rbd["reason"], rbd


# Debian's uWSGI (uwsgi-core and its python3 plugin, built for /usr/bin/python3
# as the release venvs are): a compiled server, whose sys.executable is itself.
DEBIAN_UWSGI = ("/usr/bin/uwsgi", "--plugin", "python3")
COMPILED_CASES = [Case(nn, Mode.UWSGI) for nn in RELEASES]


def _debian_uwsgi() -> None:
    plugin = Path("/usr/lib/uwsgi/plugins/python3_plugin.so")
    need(
        Path(DEBIAN_UWSGI[0]).exists() and plugin.exists(),
        "Debian's uwsgi-core and uwsgi-plugin-python3 are not installed",
    )


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in COMPILED_CASES])
def test_glance_legacy_task_under_a_compiled_uwsgi(case: Case, starts: Starts) -> None:
    """Under Debian's uWSGI, sys.executable is the server's binary: the legacy
    task's prlimit cannot run, and the task fails."""
    _qemu_img()
    _debian_uwsgi()
    m = _legacy_task(starts, case, DEBIAN_UWSGI)
    assert m.served, m.tail()
    assert m.task is not None
    python = _prlimit_interpreter(m)
    print(f"FACT legacy-compiled {case.id}: prlimit by {python}, task {m.task.status}")
    assert os.path.basename(os.path.realpath(python)).startswith("uwsgi"), python
    assert (m.task.status == "success") == _runs_prlimit(python, starts.user), (m.task, m.tail())


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in COMPILED_CASES])
def test_probe_legacy_task_under_a_compiled_uwsgi(case: Case, starts: Starts) -> None:
    """The probe, finding the running server, says unavailable exactly when the
    task failed, and names the server's binary."""
    _qemu_img()
    _debian_uwsgi()
    m = _legacy_task(starts, case, DEBIAN_UWSGI)
    assert m.task is not None
    probe = m.facts["probe"]
    assert isinstance(probe, ProbeRun)
    qemu = probe.feature("qemu-img")
    assert qemu["required"] is True, qemu
    assert bool(qemu["available"]) == (m.task.status == "success"), (qemu, m.task)
    assert "/usr/bin/uwsgi" in str(qemu["details"].get("legacy_python_from")), qemu
    if m.task.status != "success":
        assert "Glance starts and serves" in qemu["reason"], qemu
