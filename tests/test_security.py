"""Each claim of docs/security.rst, tested."""

from __future__ import annotations

import os
import socket
import stat
import sys
from pathlib import Path

import pytest
from conftest import context, run_cli

import glance_features
from glance_features import Settings, Status, cli, testing
from glance_features.detectors import xattr as xattr_detector
from glance_features.detectors.qemu_img import QemuImgDetector
from glance_features.detectors.xattr import XattrDetector

HELP = "qemu-img version 8.2.2\nSupported formats: raw qcow2\n"


def test_binaries_run_from_an_argument_list_never_a_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A directory name a shell would execute; as an argv entry it is just a name.
    bin_dir = tmp_path / "$(touch pwned)"
    bin_dir.mkdir()
    script = bin_dir / "qemu-img"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{HELP}EOF\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.chdir(tmp_path)
    result = QemuImgDetector().probe(context())
    assert result.status is Status.AVAILABLE
    assert result.details["path"] == str(script)
    assert not (tmp_path / "pwned").exists()


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
    monkeypatch.setattr(xattr_detector, "_random_hex", lambda: "guessed")
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / ".glance-features-probe-guessed").symlink_to(victim)
    result = XattrDetector().probe(context(Settings(image_cache_dir=str(tmp_path))))
    assert result.status is Status.UNAVAILABLE
    assert victim.read_text() == "precious"
    assert os.listxattr(victim) == []


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
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    target = tmp_path / "out.json"
    (tmp_path / f".out.json.{os.getpid()}.tmp").symlink_to(victim)
    with testing.override():
        assert cli.main(["--format", "json", "--output", str(target)]) == 64
    assert victim.read_text() == "precious"
    assert not target.exists()
    assert "cannot write" in capsys.readouterr().err


def test_child_environment_is_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "env"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "qemu-img").write_text(
        f"#!/bin/sh\nenv > {out}\nulimit -t >> {out}\nulimit -v >> {out}\ncat <<'EOF'\n{HELP}EOF\n"
    )
    (bin_dir / "qemu-img").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin")
    monkeypatch.setenv("LD_PRELOAD", "/nonexistent/evil.so")
    monkeypatch.setenv("PYTHONPATH", "/nonexistent")
    QemuImgDetector().probe(context())
    lines = out.read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    assert set(env) <= {"LC_ALL", "LANG", "PATH", "PWD", "SHLVL", "_"}
    assert env["LC_ALL"] == "C" and env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert lines[-2:] == ["30", str((1 << 30) // 1024)]


@pytest.mark.skipif(sys.platform != "linux", reason="os.setxattr is Linux-only")
def test_detectors_change_nothing_they_probe(tmp_path: Path) -> None:
    (tmp_path / "image").write_bytes(b"data")
    os.setxattr(tmp_path / "image", "user.hits", b"3")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.iterdir())
    glance_features.probe(Settings(image_cache_dir=str(tmp_path)), deep=True)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.iterdir()) == before
    assert os.getxattr(tmp_path / "image", "user.hits") == b"3"
