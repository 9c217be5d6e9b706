"""Glance service integration with the real oslo.config and oslo.upgradecheck."""

from __future__ import annotations

import json
import logging
import os
import pwd
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from conftest import (
    SOURCE_ROOT,
    as_root_in_mount_namespace,
    can_unshare_mounts,
    need,
)
from oslo_config import cfg, types
from oslo_upgradecheck import upgradecheck as oslo_upgradecheck
from test_settings import SAMPLE

import glance_features
from glance_features import FeatureUnavailable, Settings, testing
from glance_features.settings import known_options
from glance_features.upgradecheck import checks

GLANCE_PYTHON = os.path.abspath(
    os.path.join(os.environ.get("GLANCE_VENV", ".venv-glance"), "bin", "python")
)
NO_GLANCE = (
    "no Glance virtualenv (set GLANCE_VENV; tests/run.sh makes .venv-glance "
    "with 'pip install glance xattr')"
)


def effective(settings: Settings) -> dict[str, object]:
    """Every declared option's value as detectors read it, and the files read.

    Settings compare by the values as given: the same setting read from a file
    (a string) and from a registered option (typed) reads the same."""
    values: dict[str, object] = {o.keyword: settings.get(o) for o in known_options().values()}
    return {**values, "config_files": settings.config_files}


def register_glance_options(conf: cfg.ConfigOpts) -> None:
    """The options glance-features reads, registered with the names, groups and
    types Glance registers them with (glance/common/config.py,
    glance/image_cache/__init__.py, glance/async_/flows/...)."""
    conf.register_opts(
        [
            cfg.StrOpt("image_cache_dir"),
            cfg.StrOpt(
                "image_cache_driver",
                default="centralized_db",
                choices=("sqlite", "xattr", "centralized_db"),
            ),
            cfg.HostAddressOpt("pydev_worker_debug_host"),
            cfg.PortOpt("pydev_worker_debug_port", default=5678),
        ]
    )
    conf.register_opts(
        [
            cfg.ListOpt(
                "image_import_plugins",
                default=[],
                bounds=True,
                item_type=types.String(quotes=True),
            )
        ],
        group="image_import_opts",
    )
    conf.register_opts(
        [cfg.StrOpt("output_format", default="raw", choices=("qcow2", "raw", "vmdk"))],
        group="image_conversion",
    )
    conf.register_opts(
        [cfg.StrOpt("conversion_format", choices=("qcow2", "raw", "vmdk"))],
        group="taskflow_executor",
    )


def load(args: list[str]) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    register_glance_options(conf)
    conf(args, project="glance", default_config_files=[])
    return conf


def write_configs(tmp_path: Path) -> tuple[list[str], Path]:
    first = tmp_path / "glance-api.conf"
    first.write_text(SAMPLE)
    second = tmp_path / "override.conf"
    second.write_text(
        "[DEFAULT]\npydev_worker_debug_port = 6000\n"
        "[image_import_opts]\nimage_import_plugins = [image_conversion,\n"
        "    'inject_image_metadata']\n"
    )
    conf_dir = tmp_path / "glance-api.conf.d"
    conf_dir.mkdir()
    (conf_dir / "10-cache.conf").write_text("[DEFAULT]\nimage_cache_dir = /var/cache/glance\n")
    (conf_dir / "20-flow.conf").write_text("[taskflow_executor]\nconversion_format = qcow2\n")
    return [str(first), str(second)], conf_dir


def test_from_oslo_config_equals_from_config_files(tmp_path: Path) -> None:
    files, conf_dir = write_configs(tmp_path)
    args = [a for f in files for a in ("--config-file", f)] + ["--config-dir", str(conf_dir)]
    ours = Settings.from_config_files(files, config_dir=conf_dir)
    conf = load(args)
    oslo = Settings.from_oslo_config(conf)
    assert effective(oslo) == effective(ours)
    # Equal, not just alike: the probe of Glance's CONF is the cached probe of
    # the same files.
    assert oslo == ours and hash(oslo) == hash(ours)
    # What only CONF knows, an override, makes other settings, and wins.
    conf.set_override("image_cache_driver", "sqlite")
    overridden = Settings.from_oslo_config(conf)
    assert overridden != ours and overridden.image_cache_driver == "sqlite"
    assert ours.image_import_plugins == ("image_conversion", "inject_image_metadata")
    assert ours.pydev_worker_debug_port == 6000
    assert ours.image_cache_dir == "/var/cache/glance"
    assert ours.conversion_format == "qcow2"
    assert ours.config_files[-1].endswith("20-flow.conf")


def test_from_oslo_config_with_glances_own_registration(tmp_path: Path) -> None:
    """In Glance's virtualenv: the options as Glance itself registers them."""
    need(os.path.exists(GLANCE_PYTHON), NO_GLANCE)
    files, conf_dir = write_configs(tmp_path)
    code = textwrap.dedent("""
        import json, sys, warnings
        warnings.simplefilter("ignore")
        from oslo_config import cfg
        import glance.common.config, glance.image_cache
        import glance.async_.flows.api_image_import, glance.async_.flows.convert
        import glance.async_.flows.plugins.image_conversion
        from glance_features.settings import Settings, known_options
        cfg.CONF(sys.argv[1:], project="glance", default_config_files=[])
        settings = Settings.from_oslo_config(cfg.CONF)
        print(json.dumps({o.keyword: settings.get(o) for o in known_options().values()}
                         | {"config_files": settings.config_files}))
    """)
    args = [a for f in files for a in ("--config-file", f)] + ["--config-dir", str(conf_dir)]
    proc = subprocess.run(
        [GLANCE_PYTHON, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": SOURCE_ROOT},
    )
    assert proc.returncode == 0, proc.stderr
    from_glance = json.loads(proc.stdout)
    ours = effective(Settings.from_config_files(files, config_dir=conf_dir))
    assert {k: tuple(v) if isinstance(v, list) else v for k, v in from_glance.items()} == ours


def test_glance_stores_registered_list_default_adds_nothing(tmp_path: Path) -> None:
    """glance_store registers [glance_store] stores with the list default
    ['file', 'http']; unset in the files, it is the default either way."""
    conf_file = tmp_path / "glance-api.conf"
    conf_file.write_text("[glance_store]\ndefault_store = file\n")
    conf = cfg.ConfigOpts()
    conf.register_opts(
        [cfg.ListOpt("stores", default=["file", "http"]), cfg.StrOpt("default_store")],
        group="glance_store",
    )
    conf(["--config-file", str(conf_file)], project="glance", default_config_files=[])
    assert Settings.from_oslo_config(conf) == Settings.from_config_files([conf_file])


def test_unregistered_options_are_unset() -> None:
    conf = cfg.ConfigOpts()
    conf.register_opts([cfg.StrOpt("image_cache_driver", default="xattr")])
    conf([], project="glance", default_config_files=[])
    settings = Settings.from_oslo_config(conf)
    assert settings == Settings(image_cache_driver="xattr")


def test_check_startup_logs_one_line_per_feature_at_the_right_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = testing.make_report(
        qemu_img="unavailable",
        xattr="degraded",
        pydev="unavailable",
        sendfile="degraded",
        required=["qemu-img", "xattr"],
    )
    logger = logging.getLogger("glance.api")

    def per_feature() -> dict[str, logging.LogRecord]:
        return {
            r.getMessage().split()[1]: r
            for r in caplog.records
            if r.getMessage().split()[2:3] == ["is"]
        }

    def summaries() -> list[str]:
        return [r.getMessage() for r in caplog.records if "features probed" in r.getMessage()]

    with testing.override(fake), caplog.at_level(logging.INFO, logger="glance.api"):
        with pytest.raises(FeatureUnavailable, match="'qemu-img' is unavailable"):
            glance_features.check_startup(Settings(), logger)
        caplog.clear()
        report = glance_features.check_startup(Settings(), logger, raise_on_failure=False)
        quiet = per_feature()
        # dnspython-ipv6 is required wherever eventlet and dnspython are installed.
        required = ", ".join(n for n, r in report.items() if r.required)
        assert required.startswith("qemu-img, xattr")
        assert summaries() == [
            f"glance-features: Glance not installed; {len(report)} features probed; required: "
            f"{required}; missing: qemu-img"
        ]
        caplog.clear()
        glance_features.check_startup(Settings(), logger, raise_on_failure=False, verbose=True)
        verbose = per_feature()
    assert report is not None and int(report.code) == 2
    # Only what matters to this configuration speaks up by default.
    assert set(quiet) == {"qemu-img", "xattr"}
    assert quiet["qemu-img"].levelno == logging.ERROR
    assert "(required)" in quiet["qemu-img"].getMessage()
    assert "; to fix: apt-get install -y qemu-utils" in quiet["qemu-img"].getMessage()
    assert quiet["xattr"].levelno == logging.WARNING
    # verbose=True says the rest, as information: none of it is required.
    assert set(verbose) == set(fake)
    assert {n: r.levelno for n, r in verbose.items() if n not in quiet} == {
        n: logging.INFO for n in fake if n not in quiet
    }


# One case per row of the requirement table: (config, environment tweak),
# once on a host where the feature works and once where it does not.
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


STARTUP = textwrap.dedent("""
    import json, logging, sys
    from oslo_config import cfg
    sys.path.insert(0, sys.argv[1])
    from test_service import register_glance_options
    import glance_features
    register_glance_options(cfg.CONF)
    cfg.CONF(["--config-file", sys.argv[2]], project="glance", default_config_files=[])
    report = glance_features.check_startup(cfg.CONF, logging.getLogger("t"),
                                           raise_on_failure=False)
    print(json.dumps({n: r.code for n, r in report.items()} | {"": int(report.code)}))
""")


def both_verdicts(
    conf: Path, feature: str, env: dict[str, str], prefix: list[str] | None = None
) -> tuple[int, int]:
    """(CLI exit code, check_startup's report code), asserting they agree per feature."""
    tests_dir = str(Path(__file__).parent)
    cli = subprocess.run(
        [
            *(prefix or []),
            sys.executable,
            "-m",
            "glance_features",
            "--config-file",
            str(conf),
            "--format",
            "json",
            # The service below runs as this user: the operator checks with its eyes.
            "--user",
            pwd.getpwuid(os.geteuid()).pw_name,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    startup = subprocess.run(
        [*(prefix or []), sys.executable, "-c", STARTUP, tests_dir, str(conf)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert startup.returncode == 0, startup.stderr
    codes = json.loads(startup.stdout)
    data = json.loads(cli.stdout)
    assert {n: f["code"] for n, f in data["features"].items()} | {"": data["code"]} == codes
    assert data["features"][feature]["required"] is True
    return cli.returncode, codes[feature]


@pytest.mark.parametrize(
    ("row", "works"),
    [
        (row, works)
        for row in ("xattr", "qemu-plugin", "qemu-format", "pydev")
        for works in (True, False)
    ],
)
def test_requirement_rows_from_cli_and_check_startup(tmp_path: Path, row: str, works: bool) -> None:
    env = dict(os.environ)
    prefix: list[str] | None = None
    cache = tmp_path / "cache"
    cache.mkdir()
    if row == "xattr":
        feature, text = (
            "xattr",
            f"[DEFAULT]\nimage_cache_driver = xattr\nimage_cache_dir = {cache}\n",
        )
        if not works:
            need(can_unshare_mounts(), "needs unshare (util-linux) and root or user namespaces")
            prefix = as_root_in_mount_namespace(f"mount -t ramfs ramfs {cache}")
    elif row.startswith("qemu"):
        need(
            works is False or subprocess.run(["which", "qemu-img"]).returncode == 0,
            "qemu-img is not installed (Debian: apt-get install qemu-utils)",
        )
        feature = "qemu-img"
        text = (
            "[image_import_opts]\nimage_import_plugins = ['image_conversion']\n"
            if row == "qemu-plugin"
            else "[taskflow_executor]\nconversion_format = qcow2\n"
        )
        if works:
            # Glance runs qemu-img under its interpreter's oslo_concurrency.prlimit;
            # without one, the feature is only degraded.
            need(os.path.exists(GLANCE_PYTHON), NO_GLANCE)
            text += f"[wsgi]\npython_interpreter = {GLANCE_PYTHON}\n"
        else:
            env["PATH"] = str(tmp_path)
    else:
        feature = "pydev"
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        if works:
            # A debug server speaks first (CMD_VERSION, CMD_RUN); a silent
            # listener is one pydevd.settrace() would wait for forever.
            server.listen()

            def greet() -> None:
                try:
                    while True:
                        conn, _ = server.accept()
                        with conn:
                            conn.sendall(b"501\t1\t1.1\tLINUX\tID\n101\t3\t\n")
                except OSError:
                    pass  # closed at the end of the test

            threading.Thread(target=greet, daemon=True).start()
        port = server.getsockname()[1]
        text = f"[DEFAULT]\npydev_worker_debug_host = 127.0.0.1\npydev_worker_debug_port = {port}\n"
    conf = tmp_path / "glance-api.conf"
    conf.write_text(text)
    try:
        exit_code, feature_code = both_verdicts(conf, feature, env, prefix)
    finally:
        if row == "pydev":
            server.close()
    assert feature_code == (0 if works else 2)
    assert exit_code == (0 if works else 2) or (works and exit_code == 1)


class GlanceChecks(oslo_upgradecheck.UpgradeCommands):
    _upgrade_checks = checks(
        Settings(image_import_plugins=("image_conversion",), python_interpreter=GLANCE_PYTHON),
        features=["qemu-img", "sendfile"],
    )


def test_upgradecheck_adapter_in_real_upgrade_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    need(os.path.exists(GLANCE_PYTHON), NO_GLANCE)  # Glance's prlimit interpreter
    # The human table first: oslo.upgradecheck keeps main()'s --json afterwards.
    table_code = GlanceChecks().check()
    table = capsys.readouterr().out
    assert "Check: glance-features: sendfile" in table and "Result: Success" in table
    assert table_code in (oslo_upgradecheck.Code.SUCCESS, oslo_upgradecheck.Code.FAILURE)

    glance_features.clear_cache()
    monkeypatch.setenv("PATH", str(tmp_path))  # no qemu-img: a failure
    conf = cfg.ConfigOpts()
    code = oslo_upgradecheck.main(
        conf, "glance", GlanceChecks(), argv=["upgrade", "check", "--json"], default_config_files=[]
    )
    assert code == oslo_upgradecheck.Code.FAILURE
    output = json.loads(capsys.readouterr().out)
    results = {c["check"]: c for c in output["checks"]}
    assert results["glance-features: qemu-img"]["result"] == 2
    assert results["glance-features: qemu-img"]["details"].startswith(
        "unavailable: qemu-img not found on PATH To fix: "
    )
    assert results["glance-features: sendfile"]["result"] == 0


def test_upgradecheck_reads_cfg_conf_when_it_runs() -> None:
    ((name, check),) = checks(features=["pydev"])
    assert name == "glance-features: pydev"
    with testing.override(pydev="degraded", required=["pydev"]):
        result = check(oslo_upgradecheck.UpgradeCommands())
    assert result.code == oslo_upgradecheck.Code.WARNING
    assert result.details is not None and result.details.startswith(
        "degraded: pydevd (pydevd 3.2.3) reaches the debug server"
    )


FORK = textwrap.dedent("""
    import os, sys, threading, time
    import glance_features
    from glance_features import FeatureResult, Status

    class Slow:
        name, summary, runs = "slow", "slow", 0
        def probe(self, context):
            Slow.runs += 1
            time.sleep(float(sys.argv[1]))
            return FeatureResult("slow", Status.AVAILABLE, "ok")

    glance_features.register(Slow())
    first = glance_features.probe(features=["slow"], timeout=5)
    runs_before = Slow.runs
    # A probe in flight in another thread while this one forks.
    threading.Thread(target=glance_features.probe,
                     kwargs={"features": ["slow"], "refresh": True, "timeout": 5}).start()
    time.sleep(0.1)
    pid = os.fork()
    if pid == 0:
        cached_same = glance_features.probe(features=["slow"]) is first or Slow.runs > runs_before
        fresh = glance_features.probe(features=["slow"], refresh=True, timeout=5)
        os._exit(0 if fresh["slow"].status is Status.AVAILABLE and cached_same else 3)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print("child", os.waitstatus_to_exitcode(status))
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        print("child deadlocked")
""")


def test_fork_while_probing_does_not_deadlock_the_child() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", FORK, "1.0"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "child 0"


def test_report_cached_before_fork_is_reused_in_the_child() -> None:
    code = textwrap.dedent("""
        import os, glance_features
        report = glance_features.probe(features=["sendfile"])
        pid = os.fork()
        if pid == 0:
            os._exit(0 if glance_features.probe(features=["sendfile"]) is report else 4)
        print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "0", proc.stderr
