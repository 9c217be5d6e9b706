"""qemu-img: the real binary, its absence, and fake binaries that misbehave.

Side-by-side agreement with Glance's own conversion task is in
test_glance_agreement.py; these are the probe's own behaviours.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import context, listing, need, validate
from glance_harness import GLANCE_PYTHON, shared_directory

import glance_features
from glance_features import Settings, Status
from glance_features.detector import Distro
from glance_features.detectors.qemu_img import QemuImgDetector, which_for

REAL = shutil.which("qemu-img")
CONVERSION = Settings(image_import_plugins=("image_conversion",))


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
    distro: Distro | None = None,
) -> glance_features.FeatureResult:
    monkeypatch.setenv("PATH", path)
    return QemuImgDetector().probe(context(settings, timeout=timeout, distro=distro))


def need_real() -> None:
    need(REAL is not None, "qemu-img is not installed (Debian: apt-get install qemu-utils)")


def need_oslo_python() -> str:
    """An interpreter with oslo.concurrency, as [wsgi] python_interpreter."""
    need(
        os.path.exists(GLANCE_PYTHON),
        "no Glance virtualenv (GLANCE_VENV) to run oslo_concurrency.prlimit with",
    )
    return GLANCE_PYTHON


def test_real_qemu_img_inspects_and_converts_as_glance_runs_it(tmp_path: Path) -> None:
    need_real()
    assert REAL is not None
    python = need_oslo_python()
    first = subprocess.run([REAL, "--version"], capture_output=True, text=True).stdout
    version = re.search(r"version (\d+\.\d+(?:\.\d+)?)", first)
    assert version is not None
    settings = Settings(image_import_plugins=("image_conversion",), python_interpreter=python)
    report = glance_features.probe(settings, features=["qemu-img"])
    result = report["qemu-img"]
    validate(report)
    assert result.status is Status.AVAILABLE, result.reason
    assert result.required
    assert result.details["version"] == version.group(1)
    assert result.details["resolved_path"] == os.path.realpath(REAL)
    assert result.details["checked"] == "qemu-img info via prlimit and convert qcow2 -> raw"
    assert result.reason == (
        f"qemu-img {version.group(1)} at {os.path.realpath(REAL)} inspects and converts "
        "qcow2 to raw as Glance runs it ([image_conversion] output_format)"
    )


def test_unset_interpreter_without_glance_is_a_caveat(monkeypatch: pytest.MonkeyPatch) -> None:
    need_real()
    # No Glance in this interpreter: nothing says which Python Glance would use.
    result = probe_with_path(monkeypatch, "/usr/local/bin:/usr/bin:/bin", settings=CONVERSION)
    assert result.status is Status.DEGRADED, result.reason
    assert "[wsgi] python_interpreter is unset" in result.reason
    assert result.remediation == ("set [wsgi] python_interpreter = /path/to/the/venv/bin/python",)


def test_unset_interpreter_under_a_known_wsgi_server_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Debian's init script switched to uWSGI, [wsgi] python_interpreter
    unset: Glance runs prlimit with the uwsgi binary and every import that
    converts fails (tests/functional/test_glance_deploy.py,
    tests/test_debian_glance.py), so the feature is unavailable, and the fix
    names the service's own interpreter."""
    need_real()
    from dataclasses import replace

    from glance_features.deployment import Deployment

    monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")
    served = Deployment("uwsgi", "uWSGI ini /etc/glance/glance-api-uwsgi.ini",
                        python="/usr/bin/python3", python_from="python3 plugin")  # fmt: skip
    ctx = replace(context(CONVERSION), deployment=served)
    result = QemuImgDetector().probe(ctx)
    assert result.status is Status.UNAVAILABLE, result.reason
    assert "sys.executable of uwsgi" in result.reason
    assert result.remediation == ("set [wsgi] python_interpreter = /usr/bin/python3",)


@pytest.mark.parametrize("output_format", ["raw", "qcow2", "vmdk"])
def test_every_output_format_converts_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, output_format: str
) -> None:
    need_real()
    python = need_oslo_python()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    settings = Settings(
        image_import_plugins=("image_conversion",),
        image_conversion_output_format=output_format,
        python_interpreter=python,
    )
    result = QemuImgDetector().probe(context(settings))
    assert result.status is Status.AVAILABLE, result.reason
    assert result.details["output_format"] == output_format
    assert list(tmp_path.iterdir()) == []


def test_info_runs_under_glances_limits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``qemu-img info`` through ``python -m oslo_concurrency.prlimit`` gets
    Glance's QEMU_IMG_PROC_LIMITS: 2 s of CPU and 1 GiB of address space."""
    need_real()
    python = need_oslo_python()
    seen = tmp_path / "limits"
    bin_dir = fake_bin(
        tmp_path / "bin",
        f'if [ "$1" = info ]; then echo "$(ulimit -t) $(ulimit -v) $LC_ALL" > {seen}; fi\n'
        'exec /usr/bin/qemu-img "$@"',
    )
    monkeypatch.setenv("SECRET_TOKEN", "do-not-leak")
    settings = Settings(image_import_plugins=("image_conversion",), python_interpreter=python)
    result = probe_with_path(monkeypatch, f"{bin_dir}:/usr/bin:/bin", settings=settings)
    assert result.available, result.reason
    assert seen.read_text().split() == ["2", str((1 << 30) // 1024), "C"]


def test_absent_from_path_gives_the_install_command_per_family(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    expected = {
        Distro("ubuntu", "24.04", "debian"): "apt-get install -y qemu-utils",
        Distro("debian", "12", ""): "apt-get install -y qemu-utils",
        Distro("rocky", "9.4", "rhel centos fedora"): "dnf install -y qemu-img",
        Distro("opensuse-leap", "15.6", "suse opensuse"): "zypper install -y qemu-tools",
        Distro("alpine", "3.20", ""): "apk add qemu-img",
    }
    for distro, command in expected.items():
        result = probe_with_path(monkeypatch, str(tmp_path), distro=distro)
        assert result.status is Status.UNAVAILABLE
        assert result.reason == "qemu-img not found on PATH"
        assert result.remediation == (command,)


def test_required_by_settings_and_exit_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    for settings in (CONVERSION, Settings(conversion_format="qcow2")):
        report = glance_features.probe(settings, features=["qemu-img"])
        assert report["qemu-img"].required
        assert int(report.code) == 2
    assert not glance_features.probe(Settings(), features=["qemu-img"])["qemu-img"].required


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ("exec sleep 1000", Status.UNKNOWN, r"--version did not finish within [0-9.]+ s"),
        # A grandchild holding the pipe open: killed with the tree at the deadline.
        ("sleep 1000 & echo started", Status.UNKNOWN, r"--version did not finish within"),
        ("kill -SEGV $$", Status.UNAVAILABLE, r"was killed by SIGSEGV"),
        (
            "echo 'qemu-img: out of luck' >&2; exit 1",
            Status.UNAVAILABLE,
            r"exited with status 1: qemu-img: out of luck",
        ),
        ("head -c 3000 /dev/urandom | od", Status.UNAVAILABLE, r"did not print a qemu-img version"),
        ("exec yes qemu-img", Status.UNAVAILABLE, r"printed more than 1048576 bytes"),
    ],
)
def test_misbehaving_binary_is_reported_on_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, body: str, status: Status, reason: str
) -> None:
    bin_dir = fake_bin(tmp_path / "bin", body)
    before = listing(tmp_path)
    result = probe_with_path(monkeypatch, str(bin_dir), timeout=1, settings=CONVERSION)
    assert result.status is status, result.reason
    assert re.search(reason, result.reason), result.reason
    assert result.details["path"] == str(bin_dir / "qemu-img")
    assert listing(tmp_path) == before


def test_a_file_that_is_not_executable_is_skipped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # As Glance's exec does: the next qemu-img on PATH, or none.
    bin_dir = fake_bin(tmp_path / "bin", "echo hi", mode=0o644)
    result = probe_with_path(monkeypatch, str(bin_dir))
    assert result.status is Status.UNAVAILABLE
    assert result.reason == "qemu-img not found on PATH"


def test_which_for_the_service_user() -> None:
    need(os.geteuid() == 0, "files owned by root with modes only root can use: needs root")
    for base in shared_directory():
        private = fake_bin(base / "private", "true", mode=0o700)
        public = fake_bin(base / "public", "true", mode=0o755)
        search = f"{private}:{public}"
        assert which_for(None, "qemu-img", search) == str(private / "qemu-img")
        assert which_for("nobody", "qemu-img", search) == str(public / "qemu-img")
        assert which_for("nobody", "qemu-img", str(private)) is None
        (base / "private").chmod(0o711)  # searchable, the file itself still 0700
        assert which_for("nobody", "qemu-img", str(private)) is None


def test_binary_in_a_directory_others_can_write_is_degraded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    need_real()
    python = need_oslo_python()
    bin_dir = fake_bin(tmp_path / "bin", 'exec /usr/bin/qemu-img "$@"')
    bin_dir.chmod(0o777)
    settings = Settings(image_import_plugins=("image_conversion",), python_interpreter=python)
    result = probe_with_path(monkeypatch, f"{bin_dir}:/usr/bin", settings=settings)
    assert result.status is Status.DEGRADED, result.reason
    assert f"{bin_dir} can be written by users other than root" in result.reason
    bin_dir.chmod(0o755)
    result = probe_with_path(monkeypatch, f"{bin_dir}:/usr/bin", settings=settings)
    # Root's own directories under the sticky /tmp: only root can replace them.
    assert result.status is Status.AVAILABLE, result.reason
    assert "writable_by_others" not in result.details


FULL_TEMP = """
import json, sys, tempfile
tempfile.tempdir = sys.argv[1]  # what TMPDIR selects when it is writable at all
import glance_features
settings = glance_features.Settings(image_import_plugins=["image_conversion"])
print(glance_features.probe(settings, features=["qemu-img"]).to_json())
"""


def test_full_temporary_directory_is_the_checks_problem_not_qemu_imgs(tmp_path: Path) -> None:
    """Glance converts in its own staging directory: a full temporary
    directory only stops the probe, which says so (unknown), never that
    qemu-img is broken."""
    import json
    import sys

    from conftest import as_root_in_mount_namespace, can_unshare_mounts

    need_real()
    need(can_unshare_mounts(), "needs unshare (util-linux) and root or user namespaces")
    full = tmp_path / "full"
    full.mkdir()
    mounts = f"mount -t tmpfs -o size=4k tmpfs {full}\nhead -c 4096 /dev/zero > {full}/filler"
    proc = subprocess.run(
        [*as_root_in_mount_namespace(mounts), sys.executable, "-c", FULL_TEMP, str(full)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)["features"]["qemu-img"]
    assert result["status"] == "unknown", result
    assert result["reason"].startswith(f"could not prepare the check in {full}/")
    assert result["reason"].endswith("No space left on device")


def test_the_tiny_qcow2_is_one_qemu_img_accepts(tmp_path: Path) -> None:
    from glance_features.detectors.qemu_img import write_tiny_qcow2

    need_real()
    image = tmp_path / "tiny.qcow2"
    write_tiny_qcow2(str(image))
    check = subprocess.run(["qemu-img", "check", str(image)], capture_output=True, text=True)
    assert check.returncode == 0 and check.stderr == "", check
    assert "No errors were found on the image." in check.stdout
    assert image.stat().st_size == 4 << 16


def test_pyuwsgi_is_told_from_a_compiled_uwsgi_by_its_first_line(tmp_path: Path) -> None:
    """pip's pyuwsgi installs ``uwsgi`` as a Python console script (whose
    sys.executable is a Python); a compiled uwsgi is a binary (its own)."""
    from glance_features.detectors.qemu_img import _is_python_script

    script = tmp_path / "uwsgi"
    long_venv = "/srv/" + "deep/" * 60 + "venv"  # a shebang past any small bound
    script.write_text(f"#!{long_venv}/bin/python3\nimport sys\nfrom pyuwsgi import run\n" * 3)
    assert _is_python_script(str(script))
    binary = tmp_path / "uwsgi-core"
    binary.write_bytes(b"\x7fELF" + bytes(range(256)) * 4096)
    assert not _is_python_script(str(binary))
    assert not _is_python_script(str(tmp_path / "missing"))


def test_it_says_launched_once_every_call_glance_makes_is_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The runner holds the other detectors back until then: Glance's prlimit
    interpreter, the longest wait, starts before their Python runs."""
    import dataclasses

    from glance_features._platform import proc

    need_real()
    python = need_oslo_python()
    spawned: list[str] = []
    at_launch: list[list[str]] = []
    real_spawn = proc.spawn

    def spawn(argv: list[str], **kwargs: object) -> object:
        child = real_spawn(argv, **kwargs)  # type: ignore[arg-type]
        spawned.append(" ".join(argv[:4]))
        return child

    monkeypatch.setattr(proc, "spawn", spawn)
    settings = Settings(image_import_plugins=("image_conversion",), python_interpreter=python)
    probed = dataclasses.replace(
        context(settings), launched=lambda: at_launch.append(list(spawned))
    )
    assert QemuImgDetector().probe(probed).status is Status.AVAILABLE
    assert len(at_launch) == 1
    assert len(at_launch[0]) == 3
    assert any("oslo_concurrency.prlimit" in argv for argv in at_launch[0])
