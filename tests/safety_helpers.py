"""Command lines that more than one test_safety_* module runs: the same check,
or the same stall, spelled once so that every case runs it the same way."""

from __future__ import annotations

from pathlib import Path

from safety_support import need_tool

DEEP_QEMU_IMG_AS_ROOT = ("--feature", "qemu-img", "--deep", "--user", "root")


def xattr_json_as_root(conf: Path) -> list[str]:
    """Arguments for the xattr check alone, as root, configured by ``conf``,
    reported as JSON."""
    return ["--config-file", str(conf), "--feature", "xattr", "--user", "root", "--format", "json"]


def fsync_held(seconds: int) -> list[str]:
    """A prefix (strace) holding every fsync of the command and its children
    for ``seconds``: time for a deadline or a signal to land inside it."""
    strace = need_tool("strace")
    return [
        strace,
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=fsync",
        "-e",
        f"inject=fsync:delay_enter={seconds * 1_000_000}",
    ]
