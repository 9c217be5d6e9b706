"""What makes a feature required: the one table code and docs share."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from glance_features._record import record
from glance_features.settings import Settings


@record
class Requirement:
    feature: str
    when: str  # the condition as an operator reads it in glance-api.conf
    applies: Callable[[Settings], bool]


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement(
        "xattr",
        "[DEFAULT] image_cache_driver = xattr",
        lambda s: s.image_cache_driver == "xattr",
    ),
    Requirement(
        "qemu-img",
        "image_conversion in [image_import_opts] image_import_plugins",
        lambda s: "image_conversion" in s.image_import_plugins,
    ),
    Requirement(
        "qemu-img",
        "[taskflow_executor] conversion_format is set",
        lambda s: bool(s.conversion_format),
    ),
    Requirement(
        "pydev",
        "[DEFAULT] pydev_worker_debug_host is set",
        lambda s: bool(s.pydev_worker_debug_host),
    ),
    # Not a setting: Glance services run under eventlet, so eventlet and
    # dnspython installed together is the configuration that needs the check.
    Requirement(
        "dnspython-ipv6",
        "eventlet and dnspython are both installed",
        lambda s: _installed("eventlet") and _installed("dnspython"),
    ),
)


def _installed(name: str) -> bool:
    from glance_features import _metadata

    return _metadata.version(name) is not None


def required_by_settings(settings: Settings) -> Mapping[str, list[str]]:
    """Feature name -> the conditions in ``settings`` that require it."""
    found: dict[str, list[str]] = {}
    for row in REQUIREMENTS:
        if row.applies(settings):
            found.setdefault(row.feature, []).append(row.when)
    return found
