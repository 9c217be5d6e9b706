"""Runtime capability probe for OpenStack Glance's advanced features.

>>> import glance_features
>>> report = glance_features.probe()          # doctest: +SKIP
>>> report.available("qemu-img")              # doctest: +SKIP

Importing this package loads nothing but this file: Glance imports it at every
service start, so the names below are resolved on first use.
"""

from glance_features._version import __version__

# Not `from typing import TYPE_CHECKING` (nor `from __future__ import
# annotations`, itself an import): each would cost this package a noticeable
# share of an interpreter start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from glance_features.detector import Detector, ProbeContext
    from glance_features.errors import GlanceFeaturesError
    from glance_features.model import (
        Code,
        FeatureResult,
        FeatureUnavailable,
        Report,
        Status,
        json_schema,
    )
    from glance_features.registry import register, unregister
    from glance_features.runner import UnknownFeature, clear_cache, probe
    from glance_features.service import check_startup
    from glance_features.settings import ConfigError, Settings

_EXPORTS = {
    "Code": "glance_features.model",
    "FeatureResult": "glance_features.model",
    "FeatureUnavailable": "glance_features.model",
    "Report": "glance_features.model",
    "Status": "glance_features.model",
    "json_schema": "glance_features.model",
    "ConfigError": "glance_features.settings",
    "Settings": "glance_features.settings",
    "Detector": "glance_features.detector",
    "GlanceFeaturesError": "glance_features.errors",
    "ProbeContext": "glance_features.detector",
    "register": "glance_features.registry",
    "unregister": "glance_features.registry",
    "UnknownFeature": "glance_features.runner",
    "check_startup": "glance_features.service",
    "clear_cache": "glance_features.runner",
    "probe": "glance_features.runner",
}

__all__ = [
    "Code",
    "ConfigError",
    "Detector",
    "FeatureResult",
    "FeatureUnavailable",
    "GlanceFeaturesError",
    "ProbeContext",
    "Report",
    "Settings",
    "Status",
    "UnknownFeature",
    "__version__",
    "check_startup",
    "clear_cache",
    "json_schema",
    "probe",
    "register",
    "unregister",
]


def __getattr__(name: str) -> object:  # the names above give each its own type
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'glance_features' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
