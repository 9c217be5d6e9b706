"""Which mount holds a path, with its file system type and options."""

from __future__ import annotations

import os
import sys

from glance_features._record import record

MOUNTINFO = "/proc/self/mountinfo"


@record
class Mount:
    mount_point: str
    fs_type: str
    source: str
    options: tuple[str, ...]


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    return (
        field.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
    )


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 6 or len(tail) < 2:
            continue
        options = fields[5].split(",") + (tail[2].split(",") if len(tail) > 2 else [])
        mounts.append(
            Mount(_unescape(fields[4]), tail[0], _unescape(tail[1]), tuple(dict.fromkeys(options)))
        )
    return mounts


def mount_of(path: str) -> Mount | None:
    """The mount that holds ``path`` (the last one mounted there wins)."""
    real = os.path.realpath(path)
    if sys.platform.startswith("linux"):
        try:
            with open(MOUNTINFO, encoding="utf-8", errors="replace") as f:
                mounts = parse_mountinfo(f.read())
        except OSError:
            mounts = []
    else:
        import psutil

        mounts = [
            Mount(p.mountpoint, p.fstype, p.device, tuple(p.opts.split(",")))
            for p in psutil.disk_partitions(all=True)
        ]
    best: Mount | None = None
    for mount in mounts:
        point = mount.mount_point.rstrip("/") or "/"
        inside = real == point or real.startswith(point if point == "/" else point + "/")
        if inside and (best is None or len(point) >= len(best.mount_point.rstrip("/") or "/")):
            best = mount
    return best
