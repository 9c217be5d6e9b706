"""Facts about this host that every report carries and remediation depends on."""

from __future__ import annotations

import functools
import os
import socket
import sys

from glance_features.model import Distro


def os_name() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "win32":
        return "windows"
    return sys.platform


@functools.lru_cache(maxsize=1)
def distro() -> Distro:
    """This host's distribution, from ``distro`` (os-release and friends)."""
    if sys.platform == "darwin":
        import platform

        return Distro("macos", platform.mac_ver()[0], "")
    if sys.platform == "win32":
        import platform

        return Distro("windows", platform.release(), "")
    import distro as distro_

    # include_lsb=False: distro would otherwise run `lsb_release -a` from PATH,
    # an unbounded child on the start-up path of every Glance service.
    info = distro_.LinuxDistribution(include_lsb=False, include_uname=False)
    return Distro(info.id(), info.version(), info.like())


def facts(info: Distro) -> dict[str, object]:
    return {
        "hostname": socket.gethostname(),
        "os": os_name(),
        "kernel": os.uname().release if hasattr(os, "uname") else "",
        "distro": {"id": info.id, "version": info.version, "like": info.like},
        "python": "{}.{}.{}".format(*sys.version_info[:3]),
    }
