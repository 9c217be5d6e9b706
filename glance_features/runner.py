"""Run detectors concurrently under one deadline; cache the report per process."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterable

from glance_features import host, registry
from glance_features._record import replace
from glance_features._version import __version__
from glance_features.detector import ProbeContext
from glance_features.model import FeatureResult, Report, Status
from glance_features.required import required_by_settings
from glance_features.settings import Settings

TYPE_CHECKING = False  # typing itself would cost Glance's start-up; see __init__
if TYPE_CHECKING:
    from typing import Any

DEFAULT_TIMEOUT = 10.0

_CacheKey = tuple[Settings, "tuple[str, ...] | None", bool]
_DEFAULT_KEY: _CacheKey = (Settings(), None, False)

# The one piece of process-wide state: reports already made, and the probes
# under way, so that concurrent callers of the same probe share one run.
_cache: dict[_CacheKey, Report] = {}
# Reports installed by glance_features.testing.override(), innermost last.
_overrides: list[Report] = []
_inflight: dict[_CacheKey, threading.Event] = {}
_lock = threading.Lock()


class UnknownFeature(ValueError):
    """A feature name that no registered detector provides."""


def probe(
    settings: Settings | None = None,
    features: Iterable[str] | None = None,
    deep: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    refresh: bool = False,
) -> Report:
    """Probe this host; the same arguments return the cached report.

    Never raises because a detector failed: such a feature is ``unknown``.
    Raises :class:`UnknownFeature` for a feature no detector provides and
    ``ValueError`` for a timeout that is not a positive number.
    """
    if isinstance(features, str):
        features = [features]  # probe(features="xattr") means the one feature
    if _overrides:
        return _overridden(_overrides[-1], features)
    if settings is None and features is None and not deep:
        key = _DEFAULT_KEY
    else:
        names = tuple(sorted(set(features))) if features is not None else None
        key = (settings or Settings(), names, deep)
    if not refresh:
        cached = _cache.get(key)
        if cached is not None:
            return cached
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    while True:
        with _lock:
            if not refresh and key in _cache:
                return _cache[key]
            running = _inflight.get(key)
            if running is None:
                done = _inflight[key] = threading.Event()
                break
        running.wait()
        refresh = False  # the run we waited for is as fresh as one of our own
    try:
        report = _run(key[0], key[1], key[2], float(timeout))
        with _lock:
            _cache[key] = report
        return report
    finally:
        with _lock:
            _inflight.pop(key, None)
        done.set()


def _overridden(report: Report, features: Iterable[str] | None) -> Report:
    if features is None:
        return report
    names = list(dict.fromkeys(features))
    missing = [n for n in names if n not in report]
    if missing:
        raise UnknownFeature(f"unknown feature {missing[0]!r} (known: {', '.join(report)})")
    return Report(
        {n: report[n] for n in names},
        host=report.host,
        config_files=report.config_files,
        generated_at=report.generated_at,
        glance_features_version=report.glance_features_version,
    )


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def _after_fork_in_child() -> None:
    # A fork taken while another thread held the lock or ran a probe leaves the
    # child with a locked lock and waiters nobody will wake. Cached reports
    # stay valid: the child is the same host, settings and installation.
    global _lock
    _lock = threading.Lock()
    _inflight.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Slot:
    def __init__(self, plugin: registry.Plugin) -> None:
        self.plugin = plugin
        self.result: FeatureResult | None = None
        self.done = threading.Event()

    def run(self, context: ProbeContext) -> None:
        start = time.perf_counter()
        try:
            detector = self.plugin.load()
            found: Any = detector.probe(context)
            if not isinstance(found, FeatureResult):
                raise TypeError(f"probe() returned {type(found).__name__}, not a FeatureResult")
            result = replace(found, name=self.plugin.name)
        except registry.PluginError as exc:
            result = _unknown(self.plugin.name, str(exc))
        except Exception as exc:
            result = _unknown(self.plugin.name, f"probe failed: {type(exc).__name__}: {exc}")
        self.result = replace(result, elapsed_ms=_ms(time.perf_counter() - start))
        self.done.set()


def _run(
    settings: Settings, features: tuple[str, ...] | None, deep: bool, timeout: float
) -> Report:
    deadline = time.monotonic() + timeout
    plugins = registry.plugins(features)
    if features is not None:
        missing = sorted(set(features) - {p.name for p in plugins})
        if missing:
            known = ", ".join(sorted(p.name for p in registry.plugins())) or "none"
            raise UnknownFeature(f"unknown feature {missing[0]!r} (known: {known})")
    distro = host.distro_info()
    host_facts = host.host_dict(distro)
    context = ProbeContext(settings=settings, deep=deep, deadline=deadline, distro=distro)
    slots = [_Slot(p) for p in plugins]
    for slot in slots:
        # Daemon threads: a detector that never returns must not keep a
        # service from exiting, nor the probe from returning on time.
        threading.Thread(
            target=slot.run,
            args=(context,),
            name=f"glance-features:{slot.plugin.name}",
            daemon=True,
        ).start()
    required = required_by_settings(settings)
    results: dict[str, FeatureResult] = {}
    for slot in slots:
        slot.done.wait(max(0.0, deadline - time.monotonic()))
        name = slot.plugin.name
        result = slot.result
        if result is None:
            result = _unknown(name, f"timed out after {timeout:g} s")
            result = replace(result, elapsed_ms=_ms(timeout))
        if name in required:
            details = {**result.details, "required_by": required[name]}
            result = replace(result, required=True, details=details)
        results[name] = result
    return Report(
        results,
        host=host_facts,
        config_files=settings.config_files,
        generated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        glance_features_version=__version__,
    )


def _unknown(name: str, reason: str) -> FeatureResult:
    return FeatureResult(name=name, status=Status.UNKNOWN, reason=reason)


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 1)
