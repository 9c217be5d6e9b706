"""The host test doubles describe: Debian 12 with Glance in a virtualenv.

Each detector's :meth:`~glance_features.detector.DetectorBase.fake` words its
states on this host, and :mod:`glance_features.testing` reports it as the
host of every fake report, so a fake never reads the machine it runs on.
"""

from __future__ import annotations

from glance_features.model import Distro

DISTRO = Distro("debian", "12")
KERNEL = "6.1.0-28-amd64"
HOST = {
    "hostname": "fake-host",
    "os": "linux",
    "kernel": KERNEL,
    "distro": {"id": DISTRO.id, "version": DISTRO.version, "like": DISTRO.like},
    "python": "3.11.2",
}
PYTHON = "/usr/lib/glance/venv/bin/python"
SEARCHED = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
QEMU_IMG = "/usr/bin/qemu-img"
QEMU_VERSION = "7.2.22"
# What `qemu-img --help` lists on Debian 12, the formats Glance converts between first.
QEMU_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhdx", "vpc", "qed", "luks", "parallels")
CACHE_DIR = "/var/lib/glance/image-cache"
