"""Operator remediation: per-distribution commands, explain, requirements,
constraints and bindep, checked with the real distro, pip and bindep."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import distro
import pytest
from conftest import need, run_cli

from glance_features import Status, registry
from glance_features.cli.requirements import ConstraintsError, parse_constraints
from glance_features.detector import Distro
from glance_features.detectors.qemu_img import QemuImgDetector

OS_RELEASES = {
    "ubuntu-24.04": (
        'NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n'
        'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nVERSION_CODENAME=noble\n',
        "apt-get install -y qemu-utils",
    ),
    "debian-12": (
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
        'VERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n',
        "apt-get install -y qemu-utils",
    ),
    "rocky-9": (
        'NAME="Rocky Linux"\nVERSION="9.4 (Blue Onyx)"\nID="rocky"\n'
        'ID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n',
        "dnf install -y qemu-img",
    ),
    "opensuse-leap-15": (
        'NAME="openSUSE Leap"\nVERSION="15.6"\nID="opensuse-leap"\n'
        'ID_LIKE="suse opensuse"\nVERSION_ID="15.6"\n',
        "zypper install -y qemu-tools",
    ),
    "arch": (
        'NAME="Arch Linux"\nPRETTY_NAME="Arch Linux"\nID=arch\nBUILD_ID=rolling\n',
        "pacman -S --needed --noconfirm qemu-img",
    ),
    "alpine-3.20": (
        'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n',
        "apk add qemu-img",
    ),
}


@pytest.mark.parametrize("name", list(OS_RELEASES))
def test_remediation_per_distribution_via_distro(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    text, command = OS_RELEASES[name]
    os_release = tmp_path / "os-release"
    os_release.write_text(text)
    # distro's documented test hook: read this file instead of the host's.
    answer = distro.LinuxDistribution(
        include_lsb=False, include_uname=False, os_release_file=str(os_release)
    )
    info = Distro(answer.id(), answer.version(), answer.like())
    monkeypatch.setenv("PATH", str(tmp_path))  # no qemu-img here
    from conftest import context

    result = QemuImgDetector().probe(context(distro=info))
    assert result.status is Status.UNAVAILABLE
    assert result.remediation == (command,)


def test_unknown_distribution_says_so_and_gives_generic_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import context

    monkeypatch.setenv("PATH", str(tmp_path))
    result = QemuImgDetector().probe(context(distro=Distro("haiku", "r1", "")))
    assert result.remediation[0].startswith("no package is known for haiku;")
    assert "SUSE: qemu-tools" in result.remediation[0]


def test_explain_gives_purpose_options_commands_verification_and_verdict() -> None:
    proc = run_cli("explain", "qemu-img")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert registry.catalog()["qemu-img"].purpose in out
    assert "  - image_conversion in [image_import_opts] image_import_plugins" in out
    assert "Reads: [image_import_opts] image_import_plugins, " in out
    assert "Debian/Ubuntu: qemu-utils" in out and "SUSE: qemu-tools" in out
    if Path("/etc/debian_version").exists():
        assert "  $ apt-get install -y qemu-utils" in out
    assert "  $ qemu-img --version" in out
    assert out.rstrip().splitlines()[-1].startswith("Now: ")
    data = json.loads(run_cli("explain", "xattr", "--format", "json").stdout)
    assert data["enabled_by"] == ["[DEFAULT] image_cache_driver = xattr"]
    assert data["reads"] == ["[DEFAULT] image_cache_dir", "[DEFAULT] image_cache_driver"]
    assert data["python"] == ['xattr; sys_platform != "win32"']
    assert data["install"][-1].endswith("-m pip install xattr")
    assert data["status"] in ("available", "degraded", "unavailable")


def test_explain_unknown_feature_is_64() -> None:
    proc = run_cli("explain", "warp-drive")
    assert proc.returncode == 64 and "unknown feature 'warp-drive'" in proc.stderr
    assert "Traceback" not in proc.stderr


def write(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_constraints_pins_markers_includes_comments_and_names(tmp_path: Path) -> None:
    (tmp_path / "more").mkdir()
    write(tmp_path / "more" / "extra.txt", "pydevd===3.5.0\n")
    main = write(
        tmp_path / "upper-constraints.txt",
        """\
        # OpenStack upper constraints, as they look
        Eventlet===0.41.2
        dnspython===2.8.0;python_version>='3.8'
        dnspython===1.0.0;python_version<'3.0'
        xattr===9.9.9  # pinned wrongly on purpose
        -c more/extra.txt

        importlib_metadata===9.0.0
        """,
    )
    found = parse_constraints([main])
    assert found["eventlet"].pin == "0.41.2"  # PEP 503: Eventlet is eventlet
    assert found["dnspython"].pin == "2.8.0"  # the marker that applies wins
    assert found["pydevd"].source == f"{tmp_path}/more/extra.txt:1"
    assert found["importlib-metadata"].pin == "9.0.0"
    assert found["xattr"].source == f"{main}:5"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("ok===1.0\nnot a requirement !!\n", 2, "Expected"),
        ("-c missing.txt\n", 1, "missing.txt: no such file"),
        ("--hash sha256:abc\n", 1, "unsupported option"),
        ("-c\n", 1, "needs a file name"),
    ],
)
def test_malformed_constraints_name_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = write(tmp_path / "c.txt", text)
    with pytest.raises(ConstraintsError, match=message) as caught:
        parse_constraints([path])
    assert f"{path}:{line}" in str(caught.value)
    proc = run_cli("requirements", "--constraints", path)
    assert proc.returncode == 64 and f"{path}:{line}" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


def test_requirements_report_against_installed_and_constraints(tmp_path: Path) -> None:
    import importlib.metadata as md

    path = write(tmp_path / "c.txt", f"xattr===9.9.9\npydevd==={md.version('pydevd')}\n")
    proc = run_cli(
        "requirements",
        "--feature",
        "xattr",
        "--feature",
        "pydev",
        "--constraints",
        path,
        "--format",
        "json",
    )
    data = json.loads(proc.stdout)
    rows = {r["name"]: r for r in data["requirements"]}
    assert rows["xattr"]["installed"] == md.version("xattr")
    assert rows["xattr"]["satisfied"] is True and rows["xattr"]["applies"] is True
    assert rows["xattr"]["matches_constraint"] is False
    assert rows["xattr"]["constraint_source"] == f"{path}:1"
    assert rows["pydevd"]["matches_constraint"] is True
    assert data["code"] == 1 and proc.returncode == 1
    text = run_cli("requirements", "--feature", "xattr", "--constraints", path).stdout
    assert "MISMATCH" in text


def test_requirements_format_installs_with_pip(tmp_path: Path) -> None:
    path = write(tmp_path / "upper.txt", "eventlet===0.41.2\ndnspython===2.8.0\n")
    proc = run_cli(
        "requirements",
        "--constraints",
        path,
        "--format",
        "requirements",
        "--output",
        str(tmp_path / "requirements.txt"),
    )
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "requirements.txt").read_text()
    assert "eventlet==0.41.2  # dnspython-ipv6" in text
    assert 'xattr; sys_platform != "win32"  # xattr' in text
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--ignore-installed",
            "--disable-pip-version-check",
            "-r",
            str(tmp_path / "requirements.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    need(
        pip.returncode == 0 or "Could not fetch" not in pip.stderr + pip.stdout,
        "PyPI is not reachable",
    )
    assert pip.returncode == 0, pip.stderr


def bindep_binary() -> str:
    binary = Path(sys.executable).with_name("bindep")
    need(binary.exists(), "bindep is not installed (pip install bindep)")
    return str(binary)


def test_bindep_output_parses_and_lists_exactly_what_is_missing(tmp_path: Path) -> None:
    bindep = bindep_binary()
    proc = run_cli("requirements", "--format", "bindep")
    assert proc.returncode == 0
    spec = tmp_path / "bindep.txt"
    spec.write_text(proc.stdout)
    assert "qemu-utils [platform:dpkg]" in proc.stdout
    assert "qemu-img [platform:redhat]" in proc.stdout
    assert "qemu-tools [platform:suse]" in proc.stdout
    need(shutil.which("dpkg-query") is not None, "needs a Debian host (dpkg) to compare")
    dpkg_packages = [
        line.split()[0] for line in proc.stdout.splitlines() if line.endswith("[platform:dpkg]")
    ]
    missing = {
        p
        for p in dpkg_packages
        if subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True
        ).stdout
        != "install ok installed"
    }
    brief = subprocess.run(
        [bindep, "-b", "-f", str(spec)], capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in brief.stderr
    assert set(brief.stdout.split()) == missing
    assert brief.returncode == (1 if missing else 0)
    # A package that is surely absent is listed, alone, by the same run.
    spec.write_text(proc.stdout + "glance-features-absent-package [platform:dpkg]\n")
    brief = subprocess.run(
        [bindep, "-b", "-f", str(spec)], capture_output=True, text=True, timeout=60
    )
    assert set(brief.stdout.split()) == missing | {"glance-features-absent-package"}


def test_printed_apt_command_provides_the_qemu_img_binary() -> None:
    """The remediation, run as printed, installs the package that owns the binary
    (checked without removing anything: dpkg -S and apt-get's simulation)."""
    need(
        shutil.which("dpkg") is not None and shutil.which("qemu-img") is not None,
        "needs a Debian host with qemu-utils (apt-get install qemu-utils)",
    )
    qemu = os.path.realpath(shutil.which("qemu-img") or "")
    owner = subprocess.run(["dpkg", "-S", qemu], capture_output=True, text=True).stdout
    assert owner.split(":")[0] == registry.catalog()["qemu-img"].packages["debian"]
    explained = json.loads(run_cli("explain", "qemu-img", "--format", "json").stdout)
    assert explained["install"] == ["apt-get install -y qemu-utils"]
    argv = [*explained["install"][0].split(), "--simulate"]
    assert subprocess.run(argv, capture_output=True, timeout=120).returncode == 0


def test_printed_pip_command_makes_xattr_available(tmp_path: Path) -> None:
    """In a fresh virtualenv without the binding: probe, run the printed fix
    exactly, probe again."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    from conftest import isolated_python

    _, env = isolated_python(tmp_path)  # glance_features source, metadata, packaging
    code = (
        "import json, glance_features as g, sys\n"
        "s = g.Settings(image_cache_dir=sys.argv[1])\n"
        "print(json.dumps(g.probe(s, features=['xattr'])['xattr'].to_dict()))"
    )
    cache = tmp_path / "cache"
    cache.mkdir()

    def probe() -> dict[str, object]:
        out = subprocess.run(
            [python, "-c", code, str(cache)], capture_output=True, text=True, env=env, timeout=120
        )
        assert out.returncode == 0, out.stderr
        result: dict[str, object] = json.loads(out.stdout)
        return result

    def requirements_code() -> int:
        return subprocess.run(
            [python, "-m", "glance_features", "requirements", "--feature", "xattr"],
            capture_output=True,
            env=env,
            timeout=120,
        ).returncode

    # The requirements command's own dependency, as any install brings it.
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "importlib-metadata"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    before = probe()
    assert before["status"] == "unavailable"
    assert requirements_code() == 2
    remediation = before["remediation"]
    assert isinstance(remediation, list)
    fix = remediation[0]
    assert fix == f"{python} -m pip install xattr"
    installed = subprocess.run(fix, shell=True, capture_output=True, text=True, timeout=300)
    need(installed.returncode == 0 or "Could not" not in installed.stderr, "PyPI unreachable")
    assert installed.returncode == 0, installed.stderr
    assert probe()["status"] == "available"
    assert requirements_code() == 0
