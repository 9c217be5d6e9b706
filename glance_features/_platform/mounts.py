"""Which mount holds a path, with its file system type and options (psutil)."""

from __future__ import annotations

import dataclasses
import os
from typing import Protocol


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


class Facts(Protocol):
    """Where a detector gathers its details: any dict that takes these values."""

    def __setitem__(self, key: str, value: str | list[str], /) -> None: ...


def describe_mount(path: str, details: Facts) -> Mount | None:
    """:func:`mount_of` ``path``, its facts added to a result's ``details``."""
    mount = mount_of(path)
    if mount is not None:
        details["mount_point"] = mount.mount_point
        details["fs_type"] = mount.fs_type
        details["mount_source"] = mount.source
        details["mount_options"] = list(mount.options)
    return mount
