"""Which mount holds a path, with its file system type and options (psutil)."""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class Mount:
    mount_point: str
    fs_type: str
    source: str
    options: tuple[str, ...]


def mount_of(path: str) -> Mount | None:
    """The mount that holds ``path``: the longest mount point above it, the
    last one mounted there winning."""
    import psutil

    real = os.path.realpath(path)
    best: Mount | None = None
    for part in psutil.disk_partitions(all=True):
        point = part.mountpoint
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.mount_point)):
            best = Mount(point, part.fstype, part.device, tuple(part.opts.split(",")))
    return best
