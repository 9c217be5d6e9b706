"""Where detectors come from: the built-ins, ``register()``, and entry points.

Built-ins are registered in code, so they work from a source checkout and no
installed distribution can take their names: a third-party detector that
claims one is reported as ``name@dist``, unknown, and never replaces it.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from glance_features.catalog import Entry, entry_of
from glance_features.detector import Detector
from glance_features.errors import GlanceFeaturesError

if TYPE_CHECKING:
    import importlib_metadata

ENTRY_POINT_GROUP = "glance_features.detectors"

# The built-in detectors, in the order reports list them.
BUILTIN = {
    "qemu-img": "glance_features.detectors.qemu_img:QemuImgDetector",
    "sendfile": "glance_features.detectors.sendfile:SendfileDetector",
    "pydev": "glance_features.detectors.pydev:PydevDetector",
    "xattr": "glance_features.detectors.xattr:XattrDetector",
    "dnspython-ipv6": "glance_features.detectors.dnspython_ipv6:DnspythonIpv6Detector",
    "store-file": "glance_features.detectors.store_file:StoreFileDetector",
    "store-s3": "glance_features.detectors.store_s3:StoreS3Detector",
    "store-rbd": "glance_features.detectors.store_rbd:StoreRbdDetector",
    "store-swift": "glance_features.detectors.store_swift:StoreSwiftDetector",
    "store-cinder": "glance_features.detectors.store_cinder:StoreCinderDetector",
    "store-vmware": "glance_features.detectors.store_vmware:StoreVmwareDetector",
    "image_decompression": (
        "glance_features.detectors.image_decompression:ImageDecompressionDetector"
    ),
}

# Built-ins whose children outlast every other detector's work (qemu-img:
# Glance's prlimit interpreter). The runner starts them first and the others
# once each has called ``context.launched()``, its children started, or
# after runner.HEAD_START: started together, the others' Python would keep
# them waiting for the GIL to start those children. Named here, not found
# by importing every detector first, which would cost what it saves.
HEAD_START = frozenset({"qemu-img"})

_registered: dict[str, Detector] = {}
_registered_lock = threading.Lock()


class PluginError(GlanceFeaturesError):
    """A plugin could not be loaded or does not follow the detector contract."""


@dataclasses.dataclass(frozen=True)
class Plugin:
    """A detector not loaded yet. Loading runs in the probe's worker thread,
    under its deadline, so a plugin that hangs on import cannot hang the probe."""

    name: str
    origin: str
    load: Callable[[], Detector]
    builtin: bool = False
    head_start: bool = False  # a built-in in HEAD_START


def register(detector: Detector) -> None:
    """Add a detector for the rest of this process (tests, embedding code)."""
    check(detector, "register()")
    with _registered_lock:
        if detector.name in _registered or detector.name in BUILTIN:
            raise ValueError(f"a detector named {detector.name!r} is already registered")
        _registered[detector.name] = detector


def unregister(name: str) -> None:
    with _registered_lock:
        _registered.pop(name, None)


def plugins(names: Iterable[str] | None = None, *, installed: bool = True) -> list[Plugin]:
    """Every known detector (or only ``names``): built-ins, registered and,
    with ``installed``, the entry points' (whose names never take a built-in's)."""
    wanted = set(names) if names is not None else None
    found: dict[str, Plugin] = {}

    def add(plugin: Plugin) -> None:
        if plugin.name in found:
            taken = found[plugin.name].origin
            key = f"{plugin.name}@{plugin.origin.rsplit(' ', 1)[-1]}"
            found[key] = Plugin(
                key, plugin.origin, _fail(f"name {plugin.name!r} is taken by {taken}")
            )
        else:
            found[plugin.name] = plugin

    for name, target in BUILTIN.items():
        loader = _builtin_loader(name, target)
        add(Plugin(name, f"{target} (built in)", loader, True, name in HEAD_START))
    with _registered_lock:
        extra = dict(_registered)
    for name, detector in extra.items():
        add(Plugin(name, "register()", lambda d=detector: d))  # type: ignore[misc]
    # In distribution order, not directory-listing order, so which of two
    # claimants keeps a name is the same on every host.
    for dist, ep in sorted(
        (
            (ep.dist.name if ep.dist is not None else "unknown", ep)
            for ep in (_entry_points() if installed else ())
        ),
        key=lambda pair: (pair[0], pair[1].name, pair[1].value),
    ):
        add(Plugin(ep.name, f"{ep.value} from {dist}", _entry_point_loader(ep, dist)))
    if wanted is None:
        return list(found.values())
    return [p for p in found.values() if p.name in wanted or p.name.partition("@")[0] in wanted]


def _entry_points() -> tuple[importlib_metadata.EntryPoint, ...]:
    from glance_features._platform import dists as _dists

    return _dists.entry_points(ENTRY_POINT_GROUP)


def builtin_detector(name: str) -> Detector:
    return _load_target(BUILTIN[name], name, f"{BUILTIN[name]} (built in)")


def catalog(*, installed: bool = True) -> dict[str, Entry]:
    """The catalog entry of every built-in and registered detector and, with
    ``installed``, of every installed plugin that loads: what ``explain``,
    ``requirements``, the census and the docs describe. A probe passes False:
    it loads plugins in its worker threads, under its deadline."""
    entries = {name: entry_of(builtin_detector(name)) for name in BUILTIN}
    with _registered_lock:
        entries.update((name, entry_of(d)) for name, d in _registered.items())
    if installed:
        for plugin in plugins():
            if plugin.name in entries or "@" in plugin.name:
                continue
            try:
                entries[plugin.name] = entry_of(plugin.load())
            except PluginError:
                continue  # the probe reports it, unknown, with why
    return entries


def declared_secrets(*, installed: bool = True) -> frozenset[str]:
    """The option names the detectors' catalogs declare secret."""
    entries = catalog(installed=installed).values()
    return frozenset(name for entry in entries for name in entry.secrets)


def _builtin_loader(name: str, target: str) -> Callable[[], Detector]:
    return lambda: builtin_detector(name)


def _entry_point_loader(ep: importlib_metadata.EntryPoint, dist: str) -> Callable[[], Detector]:
    def load() -> Detector:
        origin = f"{ep.value} from {dist}"
        try:
            obj = ep.load()  # understands "module:attr [extras]"
            detector = obj() if isinstance(obj, type) else obj
        except BaseException as exc:
            # Loading runs in a worker thread: a KeyboardInterrupt or
            # SystemExit raised there is the plugin's failure, not a signal.
            raise PluginError(
                f"plugin {origin} failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        check(detector, origin)
        if detector.name != ep.name:
            raise PluginError(
                f"plugin {origin} is registered as {ep.name!r} but calls itself {detector.name!r}"
            )
        return detector  # type: ignore[no-any-return]

    return load


_builtin_instances: dict[str, Detector] = {}


def _load_target(target: str, name: str, origin: str) -> Detector:
    detector = _builtin_instances.get(name)
    if detector is None:
        module, _, attr = target.partition(":")
        detector = getattr(importlib.import_module(module), attr)()
        _builtin_instances[name] = detector
    return detector


def _fail(message: str) -> Callable[[], Detector]:
    def load() -> Detector:
        raise PluginError(message)

    return load


def check(detector: object, origin: str) -> None:
    for attr in ("name", "summary"):
        if not isinstance(getattr(detector, attr, None), str):
            raise PluginError(f"plugin {origin} has no string {attr!r}")
    if not callable(getattr(detector, "probe", None)):
        raise PluginError(f"plugin {origin} has no probe() method")
