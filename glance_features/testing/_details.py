"""What a fake result says, feature by feature: the reason, details and
remediation the real detector gives in that state on a plain Debian host.

Kept here, keyed by feature name, rather than next to each detector, so the
detectors carry no test code. The keys of ``details`` are the ones each
detector writes (the tests compare them with a real probe), so code under test
that reads ``details["version"]`` or ``details["fs_type"]`` works under a fake.
Values that follow from the configuration (the cache directory, the output
format, the debug host) are read from the settings ``probe()`` was given.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from glance_features.model import FeatureResult, Status
from glance_features.options import CONVERSION_FORMAT as _CONVERSION_FORMAT
from glance_features.options import DEBUG_HOST as _DEBUG_HOST
from glance_features.options import DEBUG_PORT as _DEBUG_PORT
from glance_features.options import IMAGE_CACHE_DIR as _CACHE_DIR
from glance_features.options import OUTPUT_FORMAT as _OUTPUT_FORMAT
from glance_features.options import PYTHON_INTERPRETER as _PYTHON
from glance_features.settings import Settings

MARK = " (faked by glance_features.testing)"
PYTHON = "/usr/lib/glance/venv/bin/python"
QEMU_IMG = "/usr/bin/qemu-img"
QEMU_VERSION = "7.2.22"
# What `qemu-img --help` lists on Debian 12, the formats Glance converts between first.
QEMU_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhdx", "vpc", "qed", "luks", "parallels")
SEARCHED = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KERNEL = "6.1.0-28-amd64"
CACHE_DIR = "/var/lib/glance/image-cache"

Parts = tuple[str, dict[str, Any], list[str]]


def _qemu_img(status: Status, settings: Settings) -> Parts:
    target = settings.get(_CONVERSION_FORMAT) or settings.get(_OUTPUT_FORMAT) or "raw"
    python = settings.get(_PYTHON)
    details: dict[str, Any] = {"path": QEMU_IMG, "searched": SEARCHED}
    if status is Status.UNAVAILABLE:
        details["path"] = None
        return "qemu-img not found on PATH", details, ["apt-get install -y qemu-utils"]
    degraded = status is Status.DEGRADED
    details.update(
        resolved_path=QEMU_IMG,
        # Degraded is the real detector's commonest caveat: no interpreter set.
        python_interpreter=None if degraded else python or PYTHON,
        python_interpreter_from="[wsgi] python_interpreter" + (" is unset" if degraded else ""),
        output_format=target,
        version=QEMU_VERSION,
        formats=list(QEMU_FORMATS),
        checked=f"qemu-img info{'' if degraded else ' via prlimit'} and convert qcow2 -> {target}",
    )
    if status is Status.DEGRADED:
        return (
            f"qemu-img {QEMU_VERSION} at {QEMU_IMG} converts to {target}, but [wsgi] "
            "python_interpreter is unset: under uwsgi or mod_wsgi Glance then runs prlimit "
            "with the server's binary and every conversion fails",
            details,
            ["set [wsgi] python_interpreter = /path/to/the/venv/bin/python"],
        )
    return (
        f"qemu-img {QEMU_VERSION} at {QEMU_IMG} inspects and converts qcow2 to {target} "
        "as Glance runs it",
        details,
        [],
    )


def _sendfile(status: Status, settings: Settings) -> Parts:
    details: dict[str, Any] = {"platform": "linux", "kernel": KERNEL, "pysendfile": None}
    if status is Status.UNAVAILABLE:
        details["platform"] = "sunos5"
        return (
            "os.sendfile does not exist on this platform (sunos5)",
            details,
            ["none: this platform has no sendfile(2); Glance copies data instead"],
        )
    if status is Status.DEGRADED:
        details["errno"] = "EINVAL"
        return (
            "os.sendfile exists but failed: EINVAL: Invalid argument",
            details,
            [
                "check that the kernel and the file system allow sendfile(2) "
                "from regular files to sockets"
            ],
        )
    details["bytes_sent"] = 262144
    return "sent 262144 bytes from a file to a socket with os.sendfile", details, []


def _pydev(status: Status, settings: Settings) -> Parts:
    host = settings.get(_DEBUG_HOST)
    port = settings.get(_DEBUG_PORT)
    details: dict[str, Any] = {"debug_host": host, "debug_port": port}
    if status is Status.UNAVAILABLE:
        return (
            "no pydev debugger module (pydev.pydevd or pydevd) is installed",
            details,
            [f"{PYTHON} -m pip install pydevd  # or pydevd-pycharm for your IDE"],
        )
    path = "/usr/lib/glance/venv/lib/python3.11/site-packages/pydevd.py"
    details.update(module="pydevd", module_path=path, distribution="pydevd", version="3.2.3")
    provider = "pydevd (pydevd 3.2.3)"
    if status is Status.DEGRADED:
        # Only a debug server on another host degrades it: fake that one.
        host = host or "192.0.2.10"
        details.update(debug_host=host, addresses=["192.0.2.10"], connected_to="192.0.2.10")
        return (
            f"{provider} reaches the debug server at {host}:{port}, which is not on this "
            "host: a pydev server can run code inside Glance",
            details,
            [
                "debug only on a trusted network, or tunnel the debugger over loopback "
                "(ssh -R) and set pydev_worker_debug_host = 127.0.0.1"
            ],
        )
    if not host:
        return f"{provider} is installed; debugging is not enabled", details, []
    details.update(addresses=["127.0.0.1"], connected_to="127.0.0.1")
    return f"{provider} reaches the debug server at {host}:{port}", details, []


def _xattr(status: Status, settings: Settings) -> Parts:
    cache_dir = settings.get(_CACHE_DIR) or CACHE_DIR
    details: dict[str, Any] = {
        "image_cache_dir": cache_dir,
        "binding": "xattr 1.1.0",
        "python": "/usr/bin/python3",
        "cache_dir_exists": True,
        "probed_dir": cache_dir,
        "stale_check_file": False,
        "checked_as": "glance",
        "mount_point": "/var/lib/glance",
        "fs_type": "ext4",
        "mount_source": "/dev/sdb1",
        "mount_options": ["rw", "relatime"],
    }
    if status is Status.UNAVAILABLE:
        # The classic: an NFSv3 export, which has no extended attributes at all.
        details.update(
            fs_type="nfs",
            mount_source="filer:/export/glance",
            mount_options=["rw", "relatime", "vers=3"],
            step="set a user xattr",
            errno="EOPNOTSUPP",
        )
        return (
            "nfs on /var/lib/glance does not support user xattrs (EOPNOTSUPP): Glance's "
            "xattr driver refuses to configure and Glance falls back to sqlite",
            details,
            [
                "mount -o remount,user_xattr /var/lib/glance  # and add user_xattr in /etc/fstab",
                "move image_cache_dir to a file system with user xattrs (ext4, xfs, btrfs)",
            ],
        )
    if status is Status.DEGRADED:
        details["mount_options"] = ["rw", "noatime"]
        return (
            f"user xattrs work in {cache_dir}, but /var/lib/glance is mounted noatime: "
            "the xattr driver prunes the cache by access time",
            details,
            [
                "mount -o remount,relatime /var/lib/glance  "
                "# and replace noatime with relatime in /etc/fstab"
            ],
        )
    return f"user xattrs work in {cache_dir} as glance (xattr 1.1.0)", details, []


def _dnspython_ipv6(status: Status, settings: Settings) -> Parts:
    details: dict[str, Any] = {
        "eventlet": "0.36.1",
        "dnspython": "2.6.1",
        "has_ipv6": True,
        "ipv6_interfaces": ["eth0", "lo"],
        "EVENTLET_NO_GREENDNS": None,
        "workaround_active": False,
        "eventlet_imported": False,
        "known_problems": [],
        "glance_monkey_patches": True,
        "import_error": None,
        "resolution": {
            "system": {"::1": ["::1"], "localhost": ["::1"]},
            "eventlet": {"::1": ["::1"], "localhost": ["::1"]},
        },
    }
    pair = "eventlet 0.36.1 with dnspython 2.6.1"
    workaround = "export EVENTLET_NO_GREENDNS=yes  # in the environment of every Glance service"
    if status is Status.AVAILABLE:
        return (
            f"{pair}: IPv6 names resolve under eventlet.monkey_patch() as without it",
            details,
            [],
        )
    failure = "gaierror: [Errno -2] Name or service not known"
    why = f"resolving '::1' for IPv6 under eventlet failed: {failure}"
    details["resolution"]["eventlet"]["::1"] = failure
    details["known_problems"] = []
    if status is Status.DEGRADED:
        return f"{pair}: {why}", details, [workaround]
    details["eventlet_imported"] = True
    return (
        f"{pair}: {why}; eventlet is already imported in this process without "
        "EVENTLET_NO_GREENDNS=yes, so the workaround can no longer apply",
        details,
        [workaround + " before the service starts"],
    )


BUILDERS: dict[str, Callable[[Status, Settings], Parts]] = {
    "qemu-img": _qemu_img,
    "sendfile": _sendfile,
    "pydev": _pydev,
    "xattr": _xattr,
    "dnspython-ipv6": _dnspython_ipv6,
}


@functools.lru_cache(maxsize=256)
def fake(name: str, status: Status, settings: Settings) -> FeatureResult:
    """A result for ``name`` in ``status`` as its detector would word it
    (results are immutable, so tests share them: a fixture costs little)."""
    if status is Status.UNKNOWN:
        # What the runner reports for a detector that overran or raised.
        return FeatureResult(name, status, "timed out after 10 s" + MARK)
    builder = BUILDERS.get(name)
    if builder is None:  # a third-party feature: nothing to imitate
        fix = [] if status is Status.AVAILABLE else [f"install or configure {name}"]
        return FeatureResult(name, status, f"{name} is {status.value}{MARK}", {}, tuple(fix))
    reason, details, remediation = builder(status, settings)
    return FeatureResult(name, status, reason + MARK, details, tuple(remediation))
