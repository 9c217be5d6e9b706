"""Issue 12, class 7: config meaning. ``$name`` and ``${group.name}`` expand
as oslo.config expands them; a relative cache path, or one that cannot be
expanded, is refused with a clear reason; nothing is ever probed in (or
written to) the working directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safety_support import cli, tree, xattr_json_as_root


def xattr_with(tmp_path: Path, value: str, extra: str = "") -> tuple[dict[str, object], int]:
    work = tmp_path / "cwd"
    work.mkdir()
    (work / "keep").write_text("cwd content")
    conf = tmp_path / "glance-api.conf"
    conf.write_text(
        f"[DEFAULT]\nstate_path = {tmp_path / 'state'}\nimage_cache_dir = {value}\n{extra}"
    )
    before = tree(work)
    run = cli(*xattr_json_as_root(conf), cwd=work)
    assert run.returncode in (0, 1, 2), run.stderr
    assert tree(work) == before  # nothing probed or written in the working directory
    result: dict[str, object] = json.loads(run.stdout)["features"]["xattr"]
    return result, run.returncode


@pytest.mark.parametrize("value", ["$state_path/image-cache", "${state_path}/image-cache"])
def test_templates_expand_as_oslo_config_expands_them(tmp_path: Path, value: str) -> None:
    result, _ = xattr_with(tmp_path, value)
    details = result["details"]
    assert isinstance(details, dict)
    assert details["image_cache_dir"] == str(tmp_path / "state" / "image-cache")


@pytest.mark.parametrize("value", ["image-cache", "./", ".", "~/cache", "$$state/image-cache"])
def test_a_relative_cache_path_is_refused_with_a_reason(tmp_path: Path, value: str) -> None:
    result, _ = xattr_with(tmp_path, value)
    assert result["status"] == "unavailable"
    assert "is a relative path" in str(result["reason"])
    assert result["remediation"] == ["set [DEFAULT] image_cache_dir to an absolute path"]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("$state/image-cache", "cannot expand $state: no option 'state' is set"),
        ("$image_cache_dir/x", "$image_cache_dir: template refers to itself"),
        (
            "${nosuchgroup.path}/x",
            "cannot expand $nosuchgroup.path: no option 'nosuchgroup.path' is set",
        ),
        # oslo.config has no group named DEFAULT to look $DEFAULT.x up in.
        ("${DEFAULT.state_path}/x", "cannot expand $DEFAULT.state_path: no group 'DEFAULT'"),
    ],
)
def test_a_template_that_cannot_expand_is_never_taken_literally(
    tmp_path: Path, value: str, why: str
) -> None:
    # As oslo.config refuses to start Glance: bad input, one line, exit 64,
    # and nothing probed in (or written to) the working directory.
    work = tmp_path / "cwd"
    work.mkdir()
    conf = tmp_path / "glance-api.conf"
    conf.write_text(
        f"[DEFAULT]\nstate_path = {tmp_path / 'state'}\nimage_cache_dir = {value}\n"
        "image_cache_driver = xattr\n"
    )
    run = cli("--config-file", str(conf), "--user", "root", cwd=work)
    assert run.returncode == 64, run
    assert run.message == f"glance-features: error: {conf}: {why}"
    assert list(work.iterdir()) == []


def test_a_config_file_with_binary_data_is_one_line_and_exit_64(tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    conf.write_bytes(b"[DEFAULT]\nimage_cache_dir = /x\x00\xff\n")
    run = cli("--config-file", str(conf))
    assert run.returncode == 64
    assert run.message == f"glance-features: error: config file {conf}: not UTF-8 text"


def test_a_huge_config_file_is_refused_unread(tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    with conf.open("wb") as f:
        f.truncate(1 << 40)
    run = cli("--config-file", str(conf))
    assert run.returncode == 64 and "larger than" in run.message


def test_a_config_file_link_loop_is_one_line(tmp_path: Path) -> None:
    loop = tmp_path / "loop.conf"
    loop.symlink_to(loop)
    run = cli("--config-file", str(loop))
    assert run.returncode == 64
    assert run.message == (
        f"glance-features: error: config file {loop}: Too many levels of symbolic links"
    )
