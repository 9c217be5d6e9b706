"""The command line, run as an operator runs it: in a subprocess."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import install_plugin, need, run_cli, validate, without_dac_override

from glance_features import cli, runner
from glance_features._version import __version__
from glance_features.registry import BUILTIN

NO_QEMU_PATH = "/nonexistent-bin"


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 64, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("glance-features: error: ")
    return lines[0]


def test_json_format_is_exactly_the_report() -> None:
    proc = run_cli("--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = validate(json.loads(proc.stdout))
    assert set(data["features"]) == set(BUILTIN)
    assert data["glance_features_version"] == __version__


def test_text_format_table_with_remediation_under_missing_features() -> None:
    proc = run_cli(
        "--feature", "qemu-img", "--feature", "sendfile", env=env(PATH=NO_QEMU_PATH, NO_COLOR="1")
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("FEATURE"))
    assert lines[header].split() == ["FEATURE", "STATUS", "REQUIRED", "REASON"]
    qemu = lines.index(next(line for line in lines if line.startswith("qemu-img ")))
    assert lines[qemu].split()[:3] == ["qemu-img", "unavailable", "no"]
    assert lines[qemu + 1].startswith("    $ ")  # the install command for this host
    assert "\x1b[" not in proc.stdout
    assert lines[-1] == "result: 0 (ok)"
    # Columns are aligned: the status column starts at the same offset.
    assert lines[qemu].index("unavailable") == lines[header].index("STATUS")


def test_config_file_makes_features_required_and_sets_exit_code(tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    conf.write_text("[image_import_opts]\nimage_import_plugins = ['image_conversion']\n")
    proc = run_cli(
        "--config-file",
        str(conf),
        "--feature",
        "qemu-img",
        "--format",
        "json",
        env=env(PATH=NO_QEMU_PATH),
    )
    assert proc.returncode == 2
    data = validate(json.loads(proc.stdout))
    assert data["config_files"] == [str(conf)]
    assert data["features"]["qemu-img"]["required"] is True
    text = run_cli("--config-file", str(conf), "--feature", "qemu-img", env=env(PATH=NO_QEMU_PATH))
    assert f"config: read {conf}" in text.stdout
    assert "result: 2 (failure" in text.stdout


def test_config_dir_is_read_after_files(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    # With image_cache_dir: Glance's v2 cache API then loads the driver.
    (tmp_path / "d" / "x.conf").write_text(
        f"[DEFAULT]\nimage_cache_driver = xattr\nimage_cache_dir = {tmp_path}/cache\n"
    )
    proc = run_cli("--config-dir", str(tmp_path / "d"), "--feature", "xattr", "--format", "json")
    data = json.loads(proc.stdout)
    assert data["features"]["xattr"]["required"] is True
    assert data["config_files"] == [str(tmp_path / "d" / "x.conf")]


def test_no_config_found_is_said(tmp_path: Path) -> None:
    quiet = {k: v for k, v in env(HOME=str(tmp_path)).items() if k != "OS_GLANCE_CONFIG_DIR"}
    proc = subprocess.run(
        [sys.executable, "-m", "glance_features", "--feature", "sendfile"],
        capture_output=True,
        text=True,
        timeout=60,
        env=quiet,
    )
    need(
        not (
            os.path.exists("/etc/glance/glance-api.conf") or os.path.exists("/etc/glance-api.conf")
        ),
        "this host has a system-wide glance-api.conf, which the default search finds",
    )
    assert proc.returncode == 0, proc.stderr
    assert "config: none found (glance-api.conf in ~/.glance, ~, /etc/glance, /etc)" in (
        proc.stdout
    )


def test_os_glance_config_dir_is_read_and_its_glance_api_conf_must_exist(tmp_path: Path) -> None:
    # As Glance 33's WSGI application: glance-api.conf there is not optional.
    line = one_line_error(run_cli(env=env(OS_GLANCE_CONFIG_DIR=str(tmp_path))))
    assert f"{tmp_path}/glance-api.conf: no such file" in line
    (tmp_path / "glance-api.conf").write_text(
        f"[DEFAULT]\nimage_cache_driver = xattr\nimage_cache_dir = {tmp_path}/cache\n"
    )
    proc = run_cli(
        "--feature", "xattr", "--format", "json", env=env(OS_GLANCE_CONFIG_DIR=str(tmp_path))
    )
    data = validate(json.loads(proc.stdout))
    assert data["config_files"] == [str(tmp_path / "glance-api.conf")]
    assert data["features"]["xattr"]["required"] is True


def test_require_turns_a_missing_feature_into_exit_2() -> None:
    proc = run_cli("--require", "qemu-img", "--feature", "qemu-img", env=env(PATH=NO_QEMU_PATH))
    assert proc.returncode == 2
    assert "qemu-img" in proc.stdout and "yes" in proc.stdout


def test_a_required_feature_left_out_of_the_probe_is_a_failure_not_a_pass() -> None:
    proc = run_cli("--feature", "sendfile", "--require", "qemu-img", "--format", "json")
    assert proc.returncode == 2, proc.stderr
    data = validate(json.loads(proc.stdout))
    assert sorted(data["features"]) == ["qemu-img", "sendfile"]
    qemu = data["features"]["qemu-img"]
    assert (qemu["status"], qemu["required"], qemu["code"]) == ("unknown", True, 2)
    assert "not probed" in qemu["reason"]


def test_required_degraded_feature_is_exit_1_and_colour_only_on_a_tty(tmp_path: Path) -> None:
    install_plugin(
        tmp_path, "acme_glance_probe", {"acme": "acme_probe:Degraded"}, "acme_probe", "acme"
    )
    plugin_env = env(PYTHONPATH=str(tmp_path))
    proc = run_cli("--feature", "acme", "--require", "acme", env=plugin_env)
    assert proc.returncode == 1
    assert "    $ apt-get install -y something" in proc.stdout
    assert "    $ then think" in proc.stdout
    assert "result: 1 (warning" in proc.stdout
    # The reason is printed, but not the terminal escapes a plugin put in it.
    assert "\x1b[31m" not in proc.stdout

    def on_tty(extra: dict[str, str]) -> str:
        controller, terminal = pty.openpty()
        child = subprocess.run(
            [sys.executable, "-m", "glance_features", "--feature", "acme"],
            stdout=terminal,
            stderr=subprocess.PIPE,
            env={**plugin_env, **extra},
            timeout=60,
        )
        os.close(terminal)
        output = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        os.close(controller)
        assert child.returncode == 0
        return output.decode()

    no_colour_env = {k: v for k, v in plugin_env.items() if k != "NO_COLOR"}
    assert "\x1b[33mdegraded" in on_tty({"TERM": "xterm", **no_colour_env})
    assert "\x1b[" not in on_tty({"TERM": "xterm", "NO_COLOR": "1"})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--feature", "nope"], "unknown feature 'nope'"),
        (["--require", "nope"], "unknown feature 'nope'"),
        (["--config-file", "/nonexistent/glance-features-test/glance-api.conf"], "no such file"),
        (["--config-dir", "/nonexistent/glance-features-test"], "no such directory"),
        (["--timeout", "abc"], "not a number of seconds: 'abc'"),
        (["--timeout", "-1"], "must be a number of seconds from 0 to 3600: '-1'"),
        (["--timeout", "nan"], "must be a number of seconds from 0 to 3600: 'nan'"),
        (["--timeout", "3601"], "must be a number of seconds from 0 to 3600: '3601'"),
        (["--user", "no-such-account-here"], "--user 'no-such-account-here': no such account"),
        (["explain", "nope"], "unknown feature 'nope'"),
        (["requirements", "--feature", "nope"], "unknown feature 'nope'"),
        (["--format", "yaml"], "invalid choice: 'yaml'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_invocation_is_exit_64_with_one_line(args: list[str], message: str) -> None:
    assert message in one_line_error(run_cli(*args))


@pytest.mark.parametrize(
    "content",
    [b"[DEFAULT\n", b"no section = here\n", b"\x00\x01\x02\xff" * 100, b"[DEFAULT]\nwords\n"],
)
def test_malformed_config_is_exit_64(tmp_path: Path, content: bytes) -> None:
    conf = tmp_path / "glance-api.conf"
    conf.write_bytes(content)
    line = one_line_error(run_cli("--config-file", str(conf)))
    assert str(conf) in line
    assert conf.read_bytes() == content  # nothing is damaged


def test_unreadable_config_is_exit_64(tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    conf.write_text("[DEFAULT]\n")
    conf.chmod(0)
    # Root reads anything: take away the capabilities that let it.
    prefix = without_dac_override()
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "glance_features", "--config-file", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Permission denied" in one_line_error(proc)


def test_fifo_config_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "glance-api.conf"
    os.mkfifo(fifo)
    assert "not a regular file" in one_line_error(run_cli("--config-file", str(fifo), timeout=20))


def test_version_and_list() -> None:
    proc = run_cli("--version")
    assert (proc.returncode, proc.stdout.strip()) == (0, f"glance-features {__version__}")
    listing = run_cli("--list").stdout.splitlines()
    # Built-ins in their registration order, as reports list them.
    assert [line.split()[0] for line in listing] == list(BUILTIN)
    assert list(BUILTIN)[:5] == ["qemu-img", "sendfile", "pydev", "xattr", "dnspython-ipv6"]
    assert all(len(line.split(None, 1)) == 2 for line in listing)


def test_internal_error_is_exit_255_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("fault injected")

    monkeypatch.setattr(runner, "probe", broken)
    assert cli.main(["--feature", "sendfile"]) == 255
    captured = capsys.readouterr()
    assert captured.err == "glance-features: internal error: RuntimeError: fault injected\n"


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("glance-features")
    assert script.exists()
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == f"glance-features {__version__}"


def test_deep_probe_on_this_host_gives_a_verdict_for_every_builtin() -> None:
    proc = run_cli("--deep", "--format", "json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = validate(json.loads(proc.stdout))
    assert set(data["features"]) == set(BUILTIN)
    for name, feature in data["features"].items():
        assert feature["status"] != "unknown", (name, feature["reason"])
        assert feature["reason"]


def _root_with_glance_importing(monkeypatch: pytest.MonkeyPatch, imports_glance: bool) -> None:
    """As root with a glance account, in an interpreter that imports Glance or not."""
    import importlib.util
    import pwd

    need(os.geteuid() == 0, "the account's child is started as root")
    try:
        pwd.getpwnam("glance")
    except KeyError:
        need(False, "needs the glance account")
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> object:
        if name == "glance":
            return object() if imports_glance else None
        return real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


class _RecordsWarming:
    def __init__(self) -> None:
        self.warmed: list[tuple[str, str | None]] = []

    def warm(self, python: str, user: str | None) -> None:
        self.warmed.append((python, user))


HERE = "this interpreter"


@pytest.mark.parametrize(
    ("imports_glance", "usual_home", "service_python", "python_option", "warmed"),
    [
        # Started on the guess, before the host is read, then confirmed.
        (True, None, None, None, [HERE, HERE]),
        # No Glance here nor in a usual home: once the host names this interpreter.
        (False, None, None, None, [HERE]),
        # Debian's, even where this interpreter sees its Glance too: its
        # interpreter's child, which the version question then asks.
        (True, "/usr/bin/python3", "/usr/bin/python3", None, ["/usr/bin/python3"]),
        # The host names another than the guess: that guess was wasted.
        (True, None, "/usr/bin/python3", None, [HERE]),
        # --python names it: nothing is guessed.
        (True, None, None, "/usr/bin/python3", []),
        # The host spells this interpreter another way: its child, as the host spells it.
        (True, None, "SAME", None, [HERE, "SAME"]),
    ],
)
def test_the_command_line_starts_the_accounts_child_before_reading_the_host(
    monkeypatch: pytest.MonkeyPatch,
    imports_glance: bool,
    usual_home: str | None,
    service_python: str | None,
    python_option: str | None,
    warmed: list[str],
) -> None:
    """As root, the checks as glance need a child of the service's interpreter:
    started before the host is read, so that its start overlaps that."""
    import argparse

    from glance_features import deployment
    from glance_features.cli.main import _warm
    from glance_features.interpreters import this_interpreter

    _root_with_glance_importing(monkeypatch, imports_glance)
    monkeypatch.setattr(deployment, "usual_home", lambda: usual_home)
    # This interpreter by another path: the directory's other name for it.
    same = os.path.join(os.path.dirname(this_interpreter()), "python3")
    need(os.path.samefile(same, this_interpreter()), f"{same} is not this interpreter")
    spelled = {HERE: this_interpreter(), "SAME": same}
    args = argparse.Namespace(user=None, python=python_option)
    pool = _RecordsWarming()
    _warm(args, pool, None)  # type: ignore[arg-type]
    service = deployment.Deployment(python=spelled.get(service_python or "", service_python))
    _warm(args, pool, service)  # type: ignore[arg-type]
    expected = [spelled.get(python, python) for python in warmed]
    assert pool.warmed == [(python, "glance") for python in expected]


def test_the_accounts_child_starts_before_the_host_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The order that gives the child its head start: warmed, then the host read."""
    import argparse

    from glance_features import deployment
    from glance_features.cli.main import _settings
    from glance_features.interpreters import this_interpreter

    _root_with_glance_importing(monkeypatch, True)
    events: list[str] = []

    class Pool:
        def warm(self, python: str, user: str | None) -> None:
            events.append(f"warm {python} as {user}")

    def read_host(args: argparse.Namespace) -> deployment.Deployment:
        events.append("host read")
        return deployment.Deployment()

    monkeypatch.setattr(deployment, "usual_home", lambda: None)
    monkeypatch.setattr(sys.modules["glance_features.cli.main"], "_deployment", read_host)
    args = argparse.Namespace(config_file=None, config_dir=None, user=None, python=None)
    _settings(args, children=Pool())  # type: ignore[arg-type]
    warm = f"warm {this_interpreter()} as glance"
    assert events == [warm, "host read", warm]
