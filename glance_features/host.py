"""Facts about this host that every report carries and remediation depends on."""

from __future__ import annotations

import os
import socket
import sys

from glance_features._record import record

TYPE_CHECKING = False  # typing itself would cost Glance's start-up; see __init__
if TYPE_CHECKING:
    from typing import Any

OS_RELEASE_FILES = ("/etc/os-release", "/usr/lib/os-release")
# The ids the distro package renames, so both paths give the same answer.
NORMALIZED_ID = {"ol": "oracle", "opensuse-leap": "opensuse"}


@record
class DistroInfo:
    id: str
    version: str
    like: str

    @property
    def ids(self) -> tuple[str, ...]:
        """This distribution's id followed by those it is like, most specific first."""
        return (self.id, *self.like.split()) if self.id else tuple(self.like.split())


def os_name() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "win32":
        return "windows"
    return sys.platform


def parse_os_release(text: str) -> DistroInfo:
    """Read the fields of an os-release(5) file that remediation needs."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        fields[key] = value
    distro_id = fields.get("ID", "").lower()
    return DistroInfo(
        id=NORMALIZED_ID.get(distro_id, distro_id),
        version=fields.get("VERSION_ID", ""),
        like=fields.get("ID_LIKE", "").lower(),
    )


def distro_info() -> DistroInfo:
    # os-release is on every current Linux; reading it directly spares the
    # start-up path the import of `distro`, which is kept for other systems.
    for path in OS_RELEASE_FILES:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return parse_os_release(f.read())
        except OSError:
            continue
    if sys.platform == "darwin":
        return DistroInfo("macos", _platform().mac_ver()[0], "")
    if sys.platform == "win32":
        return DistroInfo("windows", _platform().release(), "")
    import distro

    return DistroInfo(distro.id(), distro.version(), distro.like())


def _platform() -> Any:
    import platform  # only where os-release and os.uname are missing

    return platform


def host_dict(info: DistroInfo) -> dict[str, object]:
    return {
        "hostname": socket.gethostname(),
        "os": os_name(),
        "kernel": os.uname().release if hasattr(os, "uname") else _platform().release(),
        "distro": {"id": info.id, "version": info.version, "like": info.like},
        "python": "{}.{}.{}".format(*sys.version_info[:3]),
    }
