"""Where detectors come from: the entry-point group and ``register()``."""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Iterable

from glance_features import _metadata
from glance_features._record import record
from glance_features.detector import Detector

ENTRY_POINT_GROUP = "glance_features.detectors"

_registered: dict[str, Detector] = {}
_registered_lock = threading.Lock()


class PluginError(Exception):
    """A plugin could not be loaded or does not follow the detector contract."""


@record
class Plugin:
    """A detector not loaded yet. Loading runs in the probe's worker thread,
    under its deadline, so a plugin that hangs on import cannot hang the probe."""

    name: str
    origin: str
    load: Callable[[], Detector]


def _after_fork_in_child() -> None:
    global _registered_lock
    _registered_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def register(detector: Detector) -> None:
    """Add a detector for the rest of this process (tests, embedding code)."""
    _check(detector, "register()")
    with _registered_lock:
        if detector.name in _registered:
            raise ValueError(f"a detector named {detector.name!r} is already registered")
        _registered[detector.name] = detector


def unregister(name: str) -> None:
    with _registered_lock:
        _registered.pop(name, None)


def plugins(names: Iterable[str] | None = None) -> list[Plugin]:
    """Every known detector (or only ``names``), entry points first."""
    wanted = set(names) if names is not None else None
    found: dict[str, Plugin] = {}
    for ep in _metadata.entry_points(ENTRY_POINT_GROUP):
        if wanted is not None and ep.name not in wanted:
            continue
        origin = f"{ep.value} from {ep.distribution}"
        if ep.name in found:
            key = f"{ep.name}@{ep.distribution}"
            taken = found[ep.name].origin
            found[key] = Plugin(key, origin, _fail(f"name {ep.name!r} is already taken by {taken}"))
        else:
            found[ep.name] = Plugin(ep.name, origin, _loader(ep.name, ep.module, ep.attr, origin))
    with _registered_lock:
        extra = dict(_registered)
    for name, detector in extra.items():
        if wanted is not None and name not in wanted:
            continue
        if name in found:
            taken = found[name].origin
            key = f"{name}@register"
            found[key] = Plugin(
                key, "register()", _fail(f"name {name!r} is already taken by {taken}")
            )
        else:
            found[name] = Plugin(name, "register()", lambda d=detector: d)  # type: ignore[misc]
    return list(found.values())


def _loader(name: str, module: str, attr: str, origin: str) -> Callable[[], Detector]:
    def load() -> Detector:
        try:
            obj: object = importlib.import_module(module)
            for part in filter(None, attr.split(".")):
                obj = getattr(obj, part)
            detector = obj() if isinstance(obj, type) else obj
        except Exception as exc:
            raise PluginError(
                f"plugin {origin} failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        _check(detector, origin)
        if detector.name != name:  # type: ignore[union-attr]
            raise PluginError(
                f"plugin {origin} is registered as {name!r} but calls itself {detector.name!r}"  # type: ignore[union-attr]
            )
        return detector  # type: ignore[return-value]

    return load


def _fail(message: str) -> Callable[[], Detector]:
    def load() -> Detector:
        raise PluginError(message)

    return load


def _check(detector: object, origin: str) -> None:
    for attr in ("name", "summary"):
        if not isinstance(getattr(detector, attr, None), str):
            raise PluginError(f"plugin {origin} has no string {attr!r}")
    if not callable(getattr(detector, "probe", None)):
        raise PluginError(f"plugin {origin} has no probe() method")
