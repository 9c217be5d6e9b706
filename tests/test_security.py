"""Each claim of docs/security.rst, tested."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import context, need, run_cli

import glance_features
from glance_features import Settings, Status, cli, testing
from glance_features._platform import proc
from glance_features.detectors.qemu_img import QemuImgDetector
from glance_features.detectors.xattr import XattrDetector

QEMU_IMG = "/usr/bin/qemu-img"
GLANCE_PYTHON = os.path.abspath(
    os.path.join(os.environ.get("GLANCE_VENV", ".venv-glance"), "bin", "python")
)


def wrapped_qemu_img(bin_dir: Path, before: str = "") -> Path:
    """A qemu-img that runs the real one, after ``before`` (shell lines)."""
    need(os.access(QEMU_IMG, os.X_OK), "qemu-img is not installed (apt-get install qemu-utils)")
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "qemu-img"
    script.write_text(f'#!/bin/sh\n{before}\nexec {QEMU_IMG} "$@"\n')
    script.chmod(0o755)
    return script


def test_binaries_run_from_an_argument_list_never_a_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A directory name a shell would execute; as an argv entry it is just a name.
    script = wrapped_qemu_img(tmp_path / "$(touch pwned)")
    monkeypatch.setenv("PATH", str(script.parent))
    monkeypatch.chdir(tmp_path)
    calls: list[tuple[object, object]] = []
    real_popen = subprocess.Popen

    def spy(args: object, *rest: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs.get("shell", False)))
        return real_popen(args, *rest, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "Popen", spy)
    result = QemuImgDetector().probe(context())
    assert result.status in (Status.AVAILABLE, Status.DEGRADED), result.reason
    assert result.details["path"] == str(script)
    assert calls and all(isinstance(a, list) and shell is False for a, shell in calls)
    assert {a[0] for a, _ in calls if isinstance(a, list)} == {str(script)}
    assert not (tmp_path / "pwned").exists() and not Path("/pwned").exists()


def test_nothing_read_is_evaluated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    payload = "__import__('os').system('touch pwned')"
    conf = tmp_path / "glance-api.conf"
    conf.write_text(
        f"[DEFAULT]\nimage_cache_dir = {payload}\npydev_worker_debug_host = {payload}\n"
        f"[image_import_opts]\nimage_import_plugins = [{payload}]\n"
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "qemu-img").write_text(f"#!/bin/sh\necho 'qemu-img version {payload}'\n")
    (bin_dir / "qemu-img").chmod(0o755)
    proc = run_cli(
        "--config-file",
        str(conf),
        "--format",
        "json",
        cwd=str(tmp_path),
        env={**os.environ, "PATH": str(bin_dir)},
    )
    assert proc.returncode in (0, 1, 2)
    assert not (tmp_path / "pwned").exists()


def test_probe_file_is_private_exclusive_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, str]] = []
    real_setxattr = os.setxattr

    def spy(fd: int, name: str, value: bytes) -> None:
        seen.append((stat.S_IMODE(os.fstat(fd).st_mode), name))
        real_setxattr(fd, name, value)

    monkeypatch.setattr(os, "setxattr", spy)
    result = XattrDetector().probe(context(Settings(image_cache_dir=str(tmp_path))))
    assert result.status in (Status.AVAILABLE, Status.DEGRADED)
    assert seen == [(0o600, "user.glance-features.probe")]
    assert list(tmp_path.iterdir()) == []


def test_probe_file_never_follows_a_planted_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An attacker who guessed the random name: make the guess right.
    monkeypatch.setattr(os, "urandom", lambda n: bytes(n))
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / f".glance-features-probe-{bytes(8).hex()}").symlink_to(victim)
    result = XattrDetector().probe(context(Settings(image_cache_dir=str(tmp_path))))
    # Where O_TMPFILE exists the probe file has no name to plant a link at;
    # elsewhere the exclusive create refuses the planted one.
    expected = Status.AVAILABLE if hasattr(os, "O_TMPFILE") else Status.UNAVAILABLE
    assert result.status is expected, result.reason
    assert victim.read_text() == "precious"
    assert os.listxattr(victim) == []
    assert (tmp_path / f".glance-features-probe-{bytes(8).hex()}").is_symlink()


def test_pydev_check_sends_no_bytes() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    settings = Settings(
        pydev_worker_debug_host="127.0.0.1", pydev_worker_debug_port=server.getsockname()[1]
    )
    glance_features.probe(settings, features=["pydev"])
    conn, _ = server.accept()
    conn.settimeout(5)
    assert conn.recv(1024) == b""  # the peer closed without writing
    conn.close()
    server.close()


def test_output_file_never_follows_a_planted_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    target = tmp_path / "out.json"
    # An attacker who guessed the random temporary name every time.
    monkeypatch.setattr(os, "urandom", lambda n: bytes(n))
    (tmp_path / f".out.json.{bytes(8).hex()}.tmp").symlink_to(victim)
    with testing.override():
        assert cli.main(["--format", "json", "--output", str(target)]) == 64
    assert victim.read_text() == "precious"
    assert not target.exists()
    assert "cannot create a temporary file" in capsys.readouterr().err
    # A link (or device, FIFO) at the target itself is refused, never replaced.
    target.symlink_to(victim)
    with testing.override():
        assert cli.main(["--format", "json", "--output", str(target)]) == 64
    assert victim.read_text() == "precious" and target.is_symlink()
    assert "refusing to replace" in capsys.readouterr().err


def test_child_environment_is_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need(os.path.exists(GLANCE_PYTHON), "no Glance virtualenv (set GLANCE_VENV)")
    out = tmp_path / "calls"
    script = wrapped_qemu_img(
        tmp_path / "bin",
        # One file per call: the probe runs its qemu-img commands side by side.
        f'{{ env; echo "cpu $(ulimit -t)"; echo "as $(ulimit -v)"; }} > {out}.$1',
    )
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}/usr/bin")
    monkeypatch.setenv("LD_PRELOAD", "/nonexistent/evil.so")
    monkeypatch.setenv("PYTHONPATH", "/nonexistent")
    # Glance runs `qemu-img info` through its interpreter's oslo_concurrency.prlimit.
    settings = Settings(python_interpreter=GLANCE_PYTHON, image_import_plugins=["image_conversion"])
    result = QemuImgDetector().probe(context(settings))
    # Degraded at most for where pytest keeps the script (under /tmp).
    assert result.status in (Status.AVAILABLE, Status.DEGRADED), result.reason
    assert result.details["checked"] == "qemu-img info via prlimit and convert qcow2 -> raw"
    calls = {
        path.name.removeprefix(out.name + "."): path.read_text().splitlines()
        for path in tmp_path.glob(out.name + ".*")
    }
    # The probe writes its qcow2 itself: Glance never runs `qemu-img create`.
    assert set(calls) == {"--version", "info", "convert"}
    for name, lines in calls.items():
        env = dict(line.split("=", 1) for line in lines if "=" in line)
        assert set(env) <= {"LC_ALL", "LANG", "PATH", "PWD", "SHLVL", "_"}, name
        assert env["LC_ALL"] == "C" and env["PATH"] == proc.CLEAN_ENV["PATH"]
    # The limits are Glance's own (glance/async_/utils.py QEMU_IMG_PROC_LIMITS),
    # set by the same prlimit Glance uses, on the same command.
    assert calls["info"][-2:] == ["cpu 2", f"as {(1 << 30) // 1024}"]


@pytest.mark.skipif(sys.platform != "linux", reason="os.setxattr is Linux-only")
def test_detectors_change_nothing_they_probe(tmp_path: Path) -> None:
    (tmp_path / "image").write_bytes(b"data")
    os.setxattr(tmp_path / "image", "user.hits", b"3")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.iterdir())
    glance_features.probe(Settings(image_cache_dir=str(tmp_path)), deep=True)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.iterdir()) == before
    assert os.getxattr(tmp_path / "image", "user.hits") == b"3"
