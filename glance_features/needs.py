"""What each feature needs: the one place detectors, remediation, the docs and
the ``explain`` and ``requirements`` commands read it from."""

from __future__ import annotations

from collections.abc import Mapping

from glance_features._record import field, record


@record
class Need:
    feature: str
    purpose: str  # what the feature does for Glance, for operators
    python: tuple[str, ...] = ()  # PEP 508 requirements, markers included
    packages: Mapping[str, str] = field(default_factory=dict)  # family -> system package
    verify: tuple[str, ...] = ()  # commands that show it works


NEEDS: Mapping[str, Need] = {
    need.feature: need
    for need in (
        Need(
            "qemu-img",
            "Glance's image_conversion import plugin and taskflow import flow run qemu-img "
            "to inspect uploaded images and convert them to the configured disk format.",
            packages={
                "debian": "qemu-utils",
                "rhel": "qemu-img",
                "suse": "qemu-tools",
                "arch": "qemu-img",
                "alpine": "qemu-img",
                "macos": "qemu",
            },
            verify=("qemu-img --version", "glance-features --feature qemu-img --deep"),
        ),
        Need(
            "sendfile",
            "Zero-copy sendfile(2) moves image data from a file to a socket without copying "
            "it through user space; Python's os.sendfile provides it (the old pysendfile "
            "distribution is no longer used by Glance).",
            verify=("glance-features --feature sendfile",),
        ),
        Need(
            "pydev",
            "With pydev_worker_debug_host set, Glance workers attach to a remote pydev "
            "debug server at start-up, for debugging a running service from an IDE.",
            python=("pydevd",),
            verify=("glance-features --feature pydev",),
        ),
        Need(
            "xattr",
            "The xattr image-cache driver (image_cache_driver = xattr) keeps per-image "
            "statistics in user extended attributes of the cached files and prunes the "
            "cache by access time.",
            python=('xattr; sys_platform != "win32"',),
            verify=("glance-features --feature xattr",),
        ),
        Need(
            "dnspython-ipv6",
            "Glance services run under eventlet, whose green DNS resolver uses dnspython; "
            "some eventlet/dnspython pairs break IPv6 name resolution unless "
            "EVENTLET_NO_GREENDNS=yes keeps the system resolver.",
            python=("eventlet>=0.33.3", "dnspython!=2.0.0,!=2.2.0"),
            verify=("glance-features --feature dnspython-ipv6 --deep",),
        ),
    )
}

# bindep's platform profile for each distribution family.
BINDEP_PROFILE = {
    "debian": "platform:dpkg",
    "rhel": "platform:redhat",
    "suse": "platform:suse",
    "arch": "platform:pacman",
    "alpine": "platform:apk",
    "macos": "platform:brew",
}


def requirement_name(requirement: str) -> str:
    """The distribution name at the start of a PEP 508 string."""
    name = requirement
    for stop in " ;[<>=!~(@":
        name = name.split(stop, 1)[0]
    return name


def bindep_lines(features: list[str]) -> list[str]:
    lines = []
    for feature in features:
        for family, package in NEEDS[feature].packages.items():
            lines.append(f"{package} [{BINDEP_PROFILE[family]}]")
    return sorted(set(lines))
