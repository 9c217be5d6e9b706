"""sendfile: the real system call on a socket pair; timeouts and a full TMPDIR are unknown."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from conftest import (
    as_root_in_mount_namespace,
    can_unshare_mounts,
    context,
    need,
    probe_in_subprocess,
)

import glance_features
from glance_features import Status
from glance_features.detectors import sendfile
from glance_features.detectors.sendfile import SendfileDetector


def test_real_sendfile_moves_the_bytes() -> None:
    report = glance_features.probe(features=["sendfile"])
    result = report["sendfile"]
    assert result.status is Status.AVAILABLE, result.reason
    assert result.details["bytes_sent"] == sendfile.PAYLOAD_SIZE
    assert result.details["kernel"] == os.uname().release
    assert result.details["pysendfile"] is None
    assert not result.required


def test_transfer_of_odd_sizes() -> None:
    for size in (1, 65537, 1 << 20):
        assert sendfile.transfer(size, 10) == size


def test_platform_without_sendfile_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    # Windows cannot exist here: take the function away as it is there.
    monkeypatch.delattr(os, "sendfile")
    monkeypatch.setattr("sys.platform", "win32")
    result = SendfileDetector().probe(context())
    assert result.status is Status.UNAVAILABLE
    assert result.reason == "os.sendfile does not exist on this platform (win32)"


def test_failing_sendfile_is_degraded_with_errno(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuses(*args: object) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "sendfile", refuses)
    result = SendfileDetector().probe(context())
    assert result.status is Status.DEGRADED
    assert result.details["errno"] == "EINVAL"
    assert "EINVAL" in result.reason


def test_corrupting_sendfile_is_degraded(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.sendfile

    def corrupts(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        os.write(out_fd, b"X")
        return real(out_fd, in_fd, offset + 1, count - 1) + 1

    monkeypatch.setattr(os, "sendfile", corrupts)
    result = SendfileDetector().probe(context())
    assert result.status is Status.DEGRADED
    assert "differ from those sent" in result.reason


def test_legacy_pysendfile_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    info = tmp_path / "pysendfile-2.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pysendfile\nVersion: 2.0.1\n\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = SendfileDetector().probe(context())
    assert result.status is Status.AVAILABLE
    assert result.details["pysendfile"] == "2.0.1"
    assert result.remediation[0].startswith("pip uninstall pysendfile")


def test_no_time_left_is_unknown_not_degraded() -> None:
    """A check that runs out of time says nothing about sendfile."""
    result = SendfileDetector().probe(context(timeout=0.0))
    assert result.status is Status.UNKNOWN, result.reason
    assert result.reason.startswith("sendfile transfer did not finish within")


def test_full_tmpdir_is_unknown(tmp_path: Path) -> None:
    need(can_unshare_mounts(), "needs unshare (util-linux) and root or user namespaces")
    full = tmp_path / "full"
    full.mkdir()
    result = probe_in_subprocess(
        "sendfile",
        prefix=as_root_in_mount_namespace(
            f"mount -t tmpfs -o size=4k tmpfs {full}\nhead -c 4096 /dev/zero > {full}/filler"
        ),
        env={**os.environ, "TMPDIR": str(full)},
    )
    assert result["status"] == "unknown", result
    assert result["reason"].startswith("could not prepare the check: No space left on device")
    assert result["code"] == 0  # not required: never a failure


def test_glance_29_and_later_do_not_use_sendfile() -> None:
    glance = sendfile.CATALOG.glance
    assert glance is not None
    assert glance.used_by("33.0.0") is False
    assert glance.used_by("29.0.0") is False
    assert glance.used_by("28.1.0") is True
    assert glance.used_by(None) is None
