"""End to end: glance-features in a real Glance 33 served by uWSGI or gunicorn.

Each scenario sets a host condition Glance's configuration depends on, then
reads every signal glance-features gives, and compares them with what Glance
itself does and with the CLI run as the service user on the same config:

- all present: /healthcheck 200, a qcow2 glance-direct import comes out raw;
- qemu-img missing from the service's PATH: /healthcheck 503 naming qemu-img,
  the start-up guard refuses (non-zero exit, one CRITICAL line), ``status``
  exits 2, and Glance without the guard fails the import task;
- image cache on ramfs (no user xattrs), in the service's own mount
  namespace: the same signals name xattr, and Glance without the guard
  silently falls back to its SQLite cache driver.

Timings per scenario, and the guard's start-up cost against the unguarded
application load, are printed (see them with -rP) and appended to the file
``GLANCE_FUNCTIONAL_TIMINGS`` names, if set; nothing asserts on them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import need

from .glance_deploy import (
    GlanceConfig,
    GlanceDeployment,
    HttpResult,
    make_qcow2,
    tool_path,
)

pytestmark = pytest.mark.functional

GUARDED = "glance_features.wsgi:application"
UNGUARDED = "glance.wsgi.api:application"
BACKENDS = ("disable_by_file", "glance_features")
FEATURES = ("qemu-img", "sendfile", "pydev", "xattr", "dnspython-ipv6")
ONE_MIB = 1024 * 1024
# The INFO line check_startup logs once per probe at start-up.
SUMMARY = re.compile(r"INFO glance_features .*glance-features: Glance \S+; \d+ features probed")
CRITICAL = re.compile(r"CRITICAL glance_features .*")


@pytest.fixture
def features_venv(venv: Path) -> Path:
    """The Glance venv must hold glance-features too (tests/run.sh: pip install -e .)."""
    tool = venv / "bin" / "glance-features"
    need(os.access(tool, os.X_OK), f"{tool} missing: pip install -e . into the Glance venv")
    return venv


def tool(name: str) -> str:
    found = shutil.which(name)
    need(found is not None, f"{name} (util-linux) is not installed")
    assert found is not None
    return found


@pytest.fixture
def as_service(service_user: str) -> list[str]:
    # Absolute paths throughout: the service's PATH (which commands get) may be empty.
    setpriv = tool("setpriv")
    return [setpriv, f"--reuid={service_user}", f"--regid={service_user}", "--clear-groups"]


def config(path: str, user: str, **changes: Any) -> GlanceConfig:
    """Glance converting imports to raw, health checked by glance_features, as ``user``."""
    base = GlanceConfig(
        image_import_plugins=["image_conversion"],
        service_path=path,
        run_as=user,
        application=GUARDED,
        healthcheck_backends=BACKENDS,
        healthcheck_options={"detailed": "true"},
    )
    return replace(base, **changes)


def run_in_service_env(
    g: GlanceDeployment, argv: Sequence[str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``argv`` with the service's environment (so its OS_GLANCE_CONFIG_DIR and PATH)."""
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        env=g.service_env(),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def cli(
    g: GlanceDeployment,
    as_service: Sequence[str],
    *args: str,
    enter: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """glance-features as the service user, with the service's environment;
    ``enter`` puts it in the service's namespaces."""
    executable = str(g.venv / "bin" / "glance-features")
    return run_in_service_env(g, [*enter, *as_service, executable, *args])


def probe_json(g: GlanceDeployment, as_service: Sequence[str], **kw: Any) -> dict[str, Any]:
    proc = cli(g, as_service, "--format", "json", **kw)
    assert proc.returncode in (0, 1, 2), proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    data["exit"] = proc.returncode
    return data


def status_json(g: GlanceDeployment, as_service: Sequence[str], **kw: Any) -> dict[str, Any]:
    proc = cli(g, as_service, "status", "--json", **kw)
    assert proc.returncode in (0, 1, 2), proc.stdout + proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    data["exit"] = proc.returncode
    data["by_check"] = {c["check"]: c for c in data["checks"]}
    return data


def probe_and_status(
    g: GlanceDeployment, as_service: Sequence[str], enter: Sequence[str] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The CLI's two verdicts: the probe's report and ``status``'s upgrade checks."""
    return probe_json(g, as_service, enter=enter), status_json(g, as_service, enter=enter)


def assert_cli_verdict(
    probe: dict[str, Any], status: dict[str, Any], feature: str, verdict: str, code: int
) -> None:
    """Both CLI commands call required ``feature`` ``verdict`` and exit ``code``."""
    assert probe["features"][feature]["status"] == verdict
    assert probe["features"][feature]["required"] is True
    assert probe["exit"] == code
    assert status["exit"] == code
    assert status["by_check"][f"glance-features: {feature}"]["result"] == code


def detailed(g: GlanceDeployment) -> tuple[HttpResult, dict[str, Any]]:
    result = g.client().request("GET", "/healthcheck", headers={"Accept": "application/json"})
    return result, result.json()


def ours(body: dict[str, Any]) -> dict[str, Any]:
    """Our backend's entry in the detailed view (disable_by_file's says nothing of features)."""
    found: list[dict[str, Any]] = [r for r in body["reasons"] if "generated at" in r["details"]]
    assert len(found) == 1, body["reasons"]
    return found[0]


def record(name: str, value: float) -> None:
    """Print a measurement (see it with -rP) and, when GLANCE_FUNCTIONAL_TIMINGS
    names a file, append it there as a JSON line. (Not record_property: junit's
    xunit2 family warns about it, and warnings are errors here.)"""
    print(f"{name}: {value:.3f}")
    path = os.environ.get("GLANCE_FUNCTIONAL_TIMINGS")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"name": name, "value": round(value, 3)}) + "\n")


def report_time(name: str, seconds: float) -> None:
    record(f"seconds {name}", seconds)


def log_lines(g: GlanceDeployment, pattern: re.Pattern[str]) -> list[str]:
    return [line for line in g.log_text().splitlines() if pattern.search(line)]


# -- all present ---------------------------------------------------------------


def test_all_present(
    open_tmp: Path,
    features_venv: Path,
    qemu_img: str,
    as_service: list[str],
    service_user: str,
) -> None:
    start = time.monotonic()
    cfg = config(tool_path(open_tmp, "qemu-img"), service_user)
    with GlanceDeployment(open_tmp / "glance", cfg) as g:
        health = g.client().healthcheck()
        result, body = detailed(g)
        outcome = g.client().import_qcow2("all-present", make_qcow2(open_tmp / "disk.qcow2"))
        probe, status = probe_and_status(g, as_service)
        glance_status = g.glance_command("glance-status", "upgrade", "check")
    report_time("all_present", time.monotonic() - start)
    for step, seconds in g.timings.items():
        record(f"seconds all_present {step}", seconds)
    record("seconds all_present import", outcome.seconds)

    assert health.status == 200, health
    assert result.status == 200
    lines = ours(body)["details"].splitlines()
    assert set(FEATURES) <= set(probe["features"])
    for feature in probe["features"]:  # the detailed view lists every feature
        assert any(line.startswith(f"{feature}: ") for line in lines), lines
    assert "qemu-img: available (required)" in ours(body)["details"]

    assert outcome.image.status == "active", (outcome, g.log_errors())
    assert outcome.image.disk_format == "raw"
    assert outcome.image.size == ONE_MIB

    # The CLI, as the service user on the same config, agrees.
    assert probe["checked_as"] in (None, service_user)
    assert_cli_verdict(probe, status, "qemu-img", "available", 0)
    # Glance's own checks ran too, and did not crash on unregistered options,
    # as Glance's glance-status does on the same config (why status exists).
    assert status["by_check"]["Sheepdog Driver Removal"]["result"] == 0
    assert glance_status.returncode == 255, glance_status.stdout
    assert "NoSuchOptError: no such option enabled_backends" in glance_status.stdout
    # Quiet: nothing from us but one summary line per loaded application (one
    # per worker here, with lazy apps), none per feature.
    said = log_lines(g, re.compile(r" (DEBUG|INFO|WARNING|ERROR|CRITICAL) glance_features "))
    assert said == log_lines(g, SUMMARY)
    assert 1 <= len(said) <= cfg.processes, said


# -- qemu-img missing ------------------------------------------------------------


def test_qemu_img_missing_unguarded(
    open_tmp: Path,
    features_venv: Path,
    qemu_img: str,
    as_service: list[str],
    service_user: str,
) -> None:
    start = time.monotonic()
    cfg = config(tool_path(open_tmp), service_user, application=UNGUARDED)
    with GlanceDeployment(open_tmp / "glance", cfg) as g:
        health = g.client().healthcheck()
        _, body = detailed(g)
        outcome = g.client().import_qcow2("no-qemu-img", make_qcow2(open_tmp / "disk.qcow2"))
        probe, status = probe_and_status(g, as_service)
        text = cli(g, as_service, "status")
    report_time("qemu_img_missing_unguarded", time.monotonic() - start)

    assert health.status == 503, health
    assert health.body.splitlines() == [b"OK", b"glance_features: qemu-img unavailable"]
    assert "qemu-img: unavailable (required)" in ours(body)["details"]
    assert "qemu-img is unavailable" in ours(body)["details"]
    assert "to fix:" in ours(body)["details"]

    # What Glance itself does without the guard: the import task fails.
    assert outcome.image.status == "queued", outcome
    assert outcome.image.disk_format == "qcow2"
    assert outcome.failure_message == "Task failed due to Internal Error"
    assert "prlimit: failed to execute qemu-img" in g.log_text()

    assert_cli_verdict(probe, status, "qemu-img", "unavailable", 2)
    assert text.returncode == 2
    assert "Result: Failure" in text.stdout
    # A feature this configuration does not use reads as a note, never a failure.
    assert status["by_check"]["glance-features: xattr"]["result"] == 0
    assert status["by_check"]["glance-features: xattr"]["details"].startswith("Note: ")
    # The backend logs the problem once, not per request.
    assert len(log_lines(g, re.compile(r"WARNING glance_features .*/healthcheck"))) <= 2


@pytest.mark.parametrize(
    ("server", "lazy_apps", "status"),
    [
        ("uwsgi", False, 22),
        ("uwsgi", True, 22),
        ("gunicorn", False, 4),
        ("gunicorn", True, 4),
    ],
    ids=["uwsgi", "uwsgi-lazy-apps", "gunicorn-preload", "gunicorn"],
)
def test_qemu_img_missing_guard_refuses(
    open_tmp: Path,
    features_venv: Path,
    qemu_img: str,
    service_user: str,
    server: str,
    lazy_apps: bool,
    status: int,
) -> None:
    processes = 2
    cfg = config(
        tool_path(open_tmp),
        service_user,
        server=server,
        lazy_apps=lazy_apps,
        processes=processes,
        healthcheck_backends=("disable_by_file",),
    )
    g = GlanceDeployment(open_tmp / "glance", cfg)
    code = g.run_until_exit(timeout=120)
    report_time(f"guard_refuses_{server}_{lazy_apps}", g.timings["start_to_exit"])

    log = "\n".join(ln for ln in g.log_text().splitlines() if "DEBUG" not in ln)
    if server == "gunicorn" and lazy_apps and code == 1:
        # Both workers refused at once: gunicorn's master raises HaltServer a
        # second time inside its own halt() and exits 1 (its exit status, not
        # ours; each worker's 4 is in its log).
        assert log.count("exited with code 4") == processes, log
    else:
        assert code == status, log
    critical = log_lines(g, CRITICAL)
    # Loaded once in the master: one line. Loaded per worker: at most one each
    # (the master may stop a worker before it logs).
    assert 1 <= len(critical) <= (processes if lazy_apps else 1), critical
    assert "refusing to start Glance: qemu-img is unavailable" in critical[0]
    assert "to fix: " in critical[0]
    # No traceback of ours repeats the line (Glance's own atexit hook may still
    # print one when a gunicorn master that loaded it exits).
    assert "StartupRefused" not in g.log_text()
    assert "FeatureUnavailable" not in g.log_text()


# -- cache directory on ramfs ----------------------------------------------------


def ramfs_wrap(cache: Path, user: str) -> list[str]:
    # Mounted in the service's own mount namespace, gone when it exits; owned by
    # the service user, so only the missing user xattrs stand in the way.
    q = shlex.quote(str(cache))
    mount, chown = tool("mount"), shutil.which("chown") or "/bin/chown"
    script = f'{mount} -t ramfs ramfs {q}\n{chown} {user}:{user} {q}\nexec "$@"'
    return [tool("unshare"), "-m", "/bin/sh", "-ec", script, "sh"]


def test_xattr_cache_on_ramfs(
    open_tmp: Path,
    features_venv: Path,
    qemu_img: str,
    as_service: list[str],
    service_user: str,
) -> None:
    need(os.geteuid() == 0, "mounting ramfs needs root")
    start = time.monotonic()
    cache = open_tmp / "cache"
    cache.mkdir()
    cfg = config(
        tool_path(open_tmp, "qemu-img"),
        service_user,
        application=UNGUARDED,
        image_cache_driver="xattr",
        image_cache_dir=cache,
        wrap=ramfs_wrap(cache, service_user),
    )
    with GlanceDeployment(open_tmp / "glance", cfg) as g:
        assert g.process is not None
        health = g.client().healthcheck()
        _, body = detailed(g)
        # The CLI in the service's own mount namespace: the same ramfs.
        enter = [tool("nsenter"), "-t", str(g.process.pid), "-m", "--"]
        probe, status = probe_and_status(g, as_service, enter=enter)
    guarded = GlanceDeployment(open_tmp / "guarded", replace(cfg, application=GUARDED))
    code = guarded.run_until_exit(timeout=120)
    report_time("xattr_on_ramfs", time.monotonic() - start)

    assert health.status == 503, health
    assert health.body.splitlines() == [b"OK", b"glance_features: xattr unavailable"]
    assert "xattr: unavailable (required)" in ours(body)["details"]
    # What Glance itself does without the guard: a different cache driver, said once.
    log = g.log_text()
    assert f"The device housing the image cache directory {cache} does not support xattr" in log
    assert "Defaulting to SQLite driver." in log

    assert_cli_verdict(probe, status, "xattr", "unavailable", 2)

    assert code == 22, guarded.log_text()[-3000:]
    critical = log_lines(guarded, CRITICAL)
    assert 1 <= len(critical) <= cfg.processes
    assert "refusing to start Glance: xattr is unavailable" in critical[0]


# -- what an unauthenticated caller learns ----------------------------------------


ACCEPTS = {"text": "text/plain", "json": "application/json", "html": "text/html"}


@pytest.mark.parametrize("shown", [False, True], ids=["plain", "detailed"])
def test_healthcheck_tells_a_caller_only_what_fails(
    open_tmp: Path, features_venv: Path, qemu_img: str, service_user: str, shown: bool
) -> None:
    """Glance serves /healthcheck before authentication: with ``detailed``
    off, a failing xattr cache and a missing qemu-img show as their names and
    statuses, and no path, account, version, errno or command; with it on,
    the details carry the reasons."""
    need(os.geteuid() == 0, "mounting ramfs needs root")
    cache = open_tmp / "cache"
    cache.mkdir()
    cfg = config(
        tool_path(open_tmp),
        service_user,
        application=UNGUARDED,
        image_cache_driver="xattr",
        image_cache_dir=cache,
        wrap=ramfs_wrap(cache, service_user),
        healthcheck_options={"detailed": str(shown).lower()},
    )
    with GlanceDeployment(open_tmp / "glance", cfg) as g:
        answers = {
            kind: g.client().request("GET", "/healthcheck", headers={"Accept": accept})
            for kind, accept in ACCEPTS.items()
        }
    terse = "glance_features: qemu-img unavailable, xattr unavailable"
    for kind, answer in answers.items():
        assert answer.status == 503, (kind, answer)
        body = answer.body.decode()
        assert terse in body, (kind, body)
        if shown:
            continue
        # Nothing of the host: its paths, the account, errno names, fixes, versions.
        for told in (str(open_tmp), "/usr", "EOPNOTSUPP", "ramfs", "to fix", "install"):
            assert told not in body, (kind, told, body)
        assert re.search(rf"\b{re.escape(service_user)}\b(?!_features)", body) is None, body
        assert re.search(r"\d+\.\d+\.\d+", body) is None, (kind, body)
    text = answers["text"].body.decode().split()
    assert " ".join(text).count("glance_features:") == 1
    reasons = answers["json"].json()["reasons"]
    if not shown:
        assert reasons == ["OK", terse]
        return
    details = ours(answers["json"].json())["details"]
    assert "xattr is unavailable" in details and "ramfs" in details
    assert "qemu-img is unavailable" in details and "to fix:" in details
    assert str(cache) in details


# -- one probe per master, and what the guard costs -------------------------------


@pytest.mark.parametrize(
    ("server", "lazy_apps"),
    [("uwsgi", False), ("gunicorn", False), ("uwsgi", True)],
    ids=["uwsgi", "gunicorn-preload", "uwsgi-lazy-apps"],
)
def test_probes_once_per_loaded_application(
    open_tmp: Path,
    features_venv: Path,
    qemu_img: str,
    service_user: str,
    server: str,
    lazy_apps: bool,
) -> None:
    processes = 3
    cfg = config(
        tool_path(open_tmp, "qemu-img"),
        service_user,
        server=server,
        lazy_apps=lazy_apps,
        processes=processes,
    )
    expected = processes if lazy_apps else 1
    with GlanceDeployment(open_tmp / "glance", cfg) as g:
        # Ready means one worker answers; with lazy apps the others may still load.
        deadline = time.monotonic() + 120
        while len(log_lines(g, SUMMARY)) < expected and time.monotonic() < deadline:
            time.sleep(0.2)
        # Every worker answers from the report it inherited or made.
        answers = {g.client().healthcheck().status for _ in range(2 * processes)}
    summaries = log_lines(g, SUMMARY)
    pids = {line.split()[2] for line in summaries}
    assert answers == {200}
    # Forking after the load: the master probed, once. Loading per worker: once each.
    assert len(summaries) == len(pids) == expected, summaries


# glance_features.wsgi.load_application()'s two steps, timed apart: Glance's own
# load (all that glance.wsgi.api does) and, when guarded, the guard after it.
LOAD = """
import sys, time
start = time.perf_counter()
from glance.common import wsgi_app
application = wsgi_app.init_app()
loaded = time.perf_counter()
if sys.argv[1] == "guarded":
    # What the guard runs (glance_features.wsgi would load Glance once more on import).
    from oslo_config import cfg
    from glance_features.service import check_startup
    check_startup(cfg.CONF)
print("LOADED", loaded - start, time.perf_counter() - loaded, flush=True)
"""


def load_seconds(
    g: GlanceDeployment, as_service: Sequence[str], variant: str
) -> tuple[float, float]:
    """(Glance's application load, the guard after it) in a fresh interpreter."""
    python = str(g.venv / "bin" / "python")
    proc = run_in_service_env(g, [*as_service, python, "-I", "-c", LOAD, variant], cwd=g.workdir)
    found = re.search(r"^LOADED (\S+) (\S+)$", proc.stdout, re.M)
    assert found, proc.stdout[-2000:] + proc.stderr[-2000:]
    return float(found.group(1)), float(found.group(2))


def test_guard_startup_cost(
    open_tmp: Path,
    features_venv: Path,
    qemu_img: str,
    as_service: list[str],
    service_user: str,
) -> None:
    """The application load with and without the guard, alternated in fresh
    interpreters as the service user on one config (the health check without
    our backend, so only the guard differs). Recorded, not asserted: medians of
    the unguarded and the guarded load, their ratio, and the guard's own time."""
    rounds = 7
    cfg = config(
        tool_path(open_tmp, "qemu-img"), service_user, healthcheck_backends=("disable_by_file",)
    )
    g = GlanceDeployment(open_tmp / "glance", cfg)
    g.write_config()
    g.db_sync()
    g._chown(service_user)
    plain: list[float] = []
    guarded: list[float] = []
    guard_only: list[float] = []
    for _ in range(rounds):
        load, _none = load_seconds(g, as_service, "plain")
        plain.append(load)
        load, guard = load_seconds(g, as_service, "guarded")
        guarded.append(load + guard)
        guard_only.append(guard)
    # Paired, within each guarded process: (load + guard) / load. Less exposed to
    # what else the host runs than the ratio of medians across processes.
    paired = statistics.median((t / (t - u)) for t, u in zip(guarded, guard_only, strict=True))
    record("guard_paired_ratio", paired)
    unguarded_median = statistics.median(plain)
    guarded_median = statistics.median(guarded)
    ratio = guarded_median / unguarded_median
    record("load_unguarded_median_s", unguarded_median)
    record("load_guarded_median_s", guarded_median)
    record("guard_median_s", statistics.median(guard_only))
    record("guard_ratio", ratio)
    print(f"application load, {rounds} rounds alternated, seconds")
    print(f"  unguarded: {[round(t, 3) for t in plain]}")
    print(f"  guarded:   {[round(t, 3) for t in guarded]}")
    print(f"  guard:     {[round(t, 3) for t in guard_only]}")
    print(
        f"medians: unguarded {unguarded_median:.3f} s, guarded {guarded_median:.3f} s, "
        f"ratio {ratio:.2f}; the guard itself {statistics.median(guard_only):.3f} s, "
        f"paired ratio {paired:.2f}"
    )
    assert all(t > 0 for t in (*plain, *guard_only))


# -- systemd drop-in -------------------------------------------------------------

DROP_IN = Path(__file__).resolve().parents[2] / "glance_features/data/systemd/glance-features.conf"


def exec_start_pre() -> str:
    """The drop-in's ExecStartPre= line as systemd hands it to exec: ``$$`` is ``$``
    and ``%%`` is ``%`` (its only escapes in this line)."""
    lines = [ln for ln in DROP_IN.read_text().splitlines() if ln.startswith("ExecStartPre=")]
    assert len(lines) == 1, lines
    command = lines[0].removeprefix("ExecStartPre=")
    assert re.search(r"%[^%]", command.replace("%%", "")) is None, "unescaped specifier"
    return command.replace("$$", "$").replace("%%", "%")


def test_systemd_drop_in_verifies(tmp_path: Path, features_venv: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    need(analyze is not None, "systemd-analyze is not installed (apt-get install systemd)")
    assert analyze is not None
    unit = tmp_path / "glance-api.service"
    unit.write_text(
        "[Unit]\nDescription=OpenStack Image Service API (uWSGI)\n\n"
        "[Service]\nType=notify\nUser=glance\nGroup=glance\n"
        "Environment=OS_GLANCE_CONFIG_DIR=/etc/glance\n"
        f"ExecStart={features_venv}/bin/uwsgi --ini /etc/glance/glance-api-uwsgi.ini\n"
        "KillSignal=SIGQUIT\n\n[Install]\nWantedBy=multi-user.target\n"
    )
    (tmp_path / "glance-api.service.d").mkdir()
    shutil.copy(DROP_IN, tmp_path / "glance-api.service.d" / DROP_IN.name)
    proc = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    # systemd-analyze exits 0 on unknown keys too, so its messages are checked as well.
    assert proc.returncode == 0, proc.stderr
    assert DROP_IN.name not in proc.stderr, proc.stderr
    assert "glance-api.service" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("tools", "plugins", "blocks"),
    [
        (("qemu-img",), ["image_conversion"], False),
        ((), ["image_conversion"], True),
        ((), [], False),  # qemu-img missing, but this configuration does not use it
    ],
    ids=["all-present", "required-missing", "unused-missing"],
)
def test_systemd_exec_start_pre_blocks_only_on_required(
    open_tmp: Path,
    features_venv: Path,
    qemu_img: str,
    as_service: list[str],
    service_user: str,
    tools: tuple[str, ...],
    plugins: list[str],
    blocks: bool,
) -> None:
    cfg = config(tool_path(open_tmp, *tools), service_user, image_import_plugins=plugins)
    g = GlanceDeployment(open_tmp / "glance", cfg)
    g.write_config()
    g._chown(service_user)
    command = exec_start_pre().replace(
        "/opt/glance-features/bin/glance-features", str(g.venv / "bin/glance-features")
    )
    argv = shlex.split(command)
    # As systemd runs it: the unit's user and environment (OS_GLANCE_CONFIG_DIR, PATH).
    proc = run_in_service_env(g, [*as_service, *argv])
    assert (proc.returncode != 0) is blocks, proc.stdout + proc.stderr
    if blocks:  # the reason reaches the journal
        assert re.search(r"^qemu-img +unavailable", proc.stdout, re.M), proc.stdout
    else:  # quiet when all is well
        assert proc.stdout == "" and proc.stderr == ""
