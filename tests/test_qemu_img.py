"""qemu-img: the real binary, its absence, and fake binaries that misbehave."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import context, listing, need, validate

import glance_features
from glance_features import Settings, Status
from glance_features.detectors.qemu_img import QemuImgDetector, parse_help
from glance_features.host import DistroInfo

REAL = shutil.which("qemu-img")


def fake_bin(directory: Path, body: str, mode: int = 0o755) -> Path:
    directory.mkdir(exist_ok=True)
    script = directory / "qemu-img"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(mode)
    return directory


def probe_with_path(
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    timeout: float = 30,
    settings: Settings | None = None,
    deep: bool = False,
    distro: DistroInfo | None = None,
) -> glance_features.FeatureResult:
    monkeypatch.setenv("PATH", path)
    return QemuImgDetector().probe(context(settings, deep=deep, timeout=timeout, distro=distro))


def test_real_qemu_img_version_and_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    need(REAL is not None, "qemu-img is not installed (Debian: apt-get install qemu-utils)")
    assert REAL is not None
    first = subprocess.run([REAL, "--version"], capture_output=True, text=True).stdout
    version = re.search(r"version (\d+\.\d+(?:\.\d+)?)", first)
    assert version is not None
    report = glance_features.probe(features=["qemu-img"])
    result = report["qemu-img"]
    validate(report)
    assert result.status is Status.AVAILABLE, result.reason
    assert result.details["version"] == version.group(1)
    assert {"qcow2", "raw", "vmdk"} <= set(result.details["formats"])
    assert result.details["resolved_path"] == os.path.realpath(REAL)
    assert result.reason == f"qemu-img {version.group(1)} at {os.path.realpath(REAL)}"


@pytest.mark.parametrize("output_format", ["raw", "qcow2", "vmdk"])
def test_deep_check_converts_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, output_format: str
) -> None:
    need(REAL is not None, "qemu-img is not installed (Debian: apt-get install qemu-utils)")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    settings = Settings(
        image_import_plugins=("image_conversion",), image_conversion_output_format=output_format
    )
    result = QemuImgDetector().probe(context(settings, deep=True))
    assert result.status is Status.AVAILABLE, result.reason
    assert result.details["deep_check"] == (
        f"created qcow2, inspected it, converted it to {output_format}"
    )
    assert list(tmp_path.iterdir()) == []


def test_absent_from_path_gives_the_install_command_per_family(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    expected = {
        DistroInfo("ubuntu", "24.04", "debian"): "apt-get install -y qemu-utils",
        DistroInfo("debian", "12", ""): "apt-get install -y qemu-utils",
        DistroInfo("rocky", "9.4", "rhel centos fedora"): "dnf install -y qemu-img",
        DistroInfo("opensuse-leap", "15.6", "suse opensuse"): "zypper install -y qemu-tools",
        DistroInfo("arch", "", ""): "pacman -S --needed --noconfirm qemu-img",
        DistroInfo("alpine", "3.20", ""): "apk add qemu-img",
    }
    for distro, command in expected.items():
        result = probe_with_path(monkeypatch, str(tmp_path), distro=distro)
        assert result.status is Status.UNAVAILABLE
        assert result.reason == "qemu-img not found on PATH"
        assert result.remediation == (command,)
    unknown = probe_with_path(monkeypatch, str(tmp_path), distro=DistroInfo("plan9", "", ""))
    assert "no package is known for plan9" in unknown.remediation[0]
    assert "Debian/Ubuntu: qemu-utils" in unknown.remediation[0]


def test_required_by_settings_and_exit_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    for settings in (
        Settings(image_import_plugins=("image_conversion",)),
        Settings(conversion_format="qcow2"),
    ):
        report = glance_features.probe(settings, features=["qemu-img"])
        assert report["qemu-img"].required
        assert int(report.code) == 2
    assert not glance_features.probe(Settings(), features=["qemu-img"])["qemu-img"].required


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ("exec sleep 1000", Status.UNKNOWN, r"--help did not finish within [0-9.]+ s"),
        ("sleep 1000 & echo started", Status.UNKNOWN, r"did not finish within [0-9.]+ s"),
        ("kill -SEGV $$", Status.UNAVAILABLE, r"was killed by SIGSEGV"),
        (
            "echo 'qemu-img: out of luck' >&2; exit 1",
            Status.UNAVAILABLE,
            r"exited with status 1: qemu-img: out of luck",
        ),
        (
            "head -c 3000 /dev/urandom | od",
            Status.UNAVAILABLE,
            r"did not print a qemu-img version and format list",
        ),
        ("echo 'qemu-img version 9.0.0'", Status.UNAVAILABLE, r"did not print a qemu-img version"),
        ("exec yes qemu-img", Status.UNAVAILABLE, r"printed more than 1048576 bytes"),
    ],
)
def test_misbehaving_binary_is_reported_on_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, body: str, status: Status, reason: str
) -> None:
    bin_dir = fake_bin(tmp_path / "bin", body)
    before = listing(tmp_path)
    result = probe_with_path(monkeypatch, str(bin_dir), timeout=1)
    assert result.status is status
    assert re.search(reason, result.reason), result.reason
    assert result.details["path"] == str(bin_dir / "qemu-img")
    assert listing(tmp_path) == before


def test_not_executable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bin_dir = fake_bin(tmp_path / "bin", "echo hi", mode=0o644)
    result = probe_with_path(monkeypatch, str(bin_dir))
    assert result.status is Status.UNAVAILABLE
    assert result.reason == f"qemu-img at {bin_dir / 'qemu-img'} cannot be run: Permission denied"


HELP = (
    "qemu-img version {version}\nusage: qemu-img [standard options] command\n\n"
    "Supported formats: {formats}\n"
)


def test_old_version_and_missing_format_are_degraded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = HELP.format(version="2.5.0", formats="raw qcow2")
    bin_dir = fake_bin(tmp_path / "bin", f"cat <<'EOF'\n{text}EOF")
    settings = Settings(
        image_import_plugins=("image_conversion",), image_conversion_output_format="vmdk"
    )
    result = probe_with_path(monkeypatch, str(bin_dir), settings=settings)
    assert result.status is Status.DEGRADED
    assert "version 2.5.0 lacks --force-share" in result.reason
    assert "format 'vmdk' asked for by [image_conversion] output_format is not supported" in (
        result.reason
    )
    assert result.details["formats"] == ["qcow2", "raw"]


def test_binary_in_a_directory_others_can_write_is_degraded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = HELP.format(version="8.2.2", formats="raw qcow2")
    bin_dir = fake_bin(tmp_path / "bin", f"cat <<'EOF'\n{text}EOF")
    bin_dir.chmod(0o777)
    result = probe_with_path(monkeypatch, str(bin_dir))
    assert result.status is Status.DEGRADED
    assert f"{bin_dir} can be written by other users" in result.reason
    bin_dir.chmod(0o755)
    assert probe_with_path(monkeypatch, str(bin_dir)).status is Status.AVAILABLE


def test_parse_help() -> None:
    facts = parse_help(HELP.format(version="7.2.22", formats="vmdk raw qcow2 raw"))
    assert facts is not None
    assert facts.version == "7.2.22" and facts.formats == ("qcow2", "raw", "vmdk")
    assert parse_help("qemu-img version 1.2\n") is None
    assert parse_help("") is None


def test_child_gets_a_clean_environment_and_limits(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "env.txt"
    text = HELP.format(version="8.2.2", formats="raw")
    body = f"env > {out}; ulimit -t >> {out}; ulimit -v >> {out}\ncat <<'EOF'\n{text}EOF"
    bin_dir = fake_bin(tmp_path / "bin", body)
    monkeypatch.setenv("SECRET_TOKEN", "do-not-leak")
    assert probe_with_path(monkeypatch, str(bin_dir)).status is Status.AVAILABLE
    lines = out.read_text().splitlines()
    environment = dict(line.split("=", 1) for line in lines if "=" in line)
    assert environment.get("LC_ALL") == "C"
    assert "SECRET_TOKEN" not in environment
    assert lines[-2:] == ["30", str((1 << 30) // 1024)]
    assert stat.S_IMODE(bin_dir.stat().st_mode) == 0o755
