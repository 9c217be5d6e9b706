"""Run detectors under one deadline; cache the report per process."""

from __future__ import annotations

import dataclasses
import math
import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

from glance_features import deployment, host, registry
from glance_features._platform import green as _green
from glance_features._platform.proc import current_user
from glance_features.catalog import (
    NOT_REQUIRED,
    UNCATALOGUED,
    Requirement,
    entry_of,
    requirement_of,
)
from glance_features.deployment import Deployment
from glance_features.detector import Distro, ProbeContext
from glance_features.errors import GlanceFeaturesError
from glance_features.model import FeatureResult, Report, Status
from glance_features.redaction import redact
from glance_features.settings import Settings

if TYPE_CHECKING:
    from glance_features.interpreters import Interpreters

DEFAULT_TIMEOUT = 10.0
# The longest the other detectors wait for the built-ins with a head start
# to have started their children (registry.HEAD_START).
HEAD_START = 0.05


class _CacheKey(NamedTuple):
    """What makes two probes the same probe."""

    settings: Settings
    features: tuple[str, ...] | None
    deep: bool
    user: str | None
    served_by: str | None
    python: str | None
    from_host: bool
    remember: bool


# The one piece of process-wide state: reports already made, the probes under
# way (so concurrent callers share one run), and test doubles in force.
_cache: dict[_CacheKey, Report] = {}
_inflight: dict[_CacheKey, threading.Event] = {}
_lock = threading.Lock()
_DEFAULT_SETTINGS = Settings()
_DEFAULT_KEY = _CacheKey(_DEFAULT_SETTINGS, None, False, None, None, None, False, False)
# What a test double answers probe(settings, features) with.
Override = Callable[[Settings, "tuple[str, ...] | None"], Report]
_overrides: list[Override] = []


class UnknownFeature(GlanceFeaturesError, ValueError):
    """A feature name that no registered detector provides."""


def probe(
    settings: Settings | None = None,
    features: Iterable[str] | None = None,
    deep: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    refresh: bool = False,
    user: str | None = None,
    served_by: str | None = None,
    python: str | None = None,
    from_host: bool = False,
    remember: bool = False,
    children: Interpreters | None = None,
) -> Report:
    """Probe this host; the same arguments return the cached report.

    Inside a Glance process, this process is the service. Elsewhere
    ``from_host`` reads how the service is run from the host (its systemd
    unit, init script, WSGI server config or process, as the command line
    does); ``served_by`` and ``python`` say it where the host does not.
    ``remember`` (the command line's) keeps a slow try on disk until the
    files it depends on change (:mod:`glance_features._platform.memo`).
    ``children`` are children of the service's interpreter already started
    (the command line's, which asked one which Glance it runs): the probe's
    checks use them, and the caller closes them.

    Never raises because a detector failed: such a feature is ``unknown``.
    Raises :class:`UnknownFeature` for a feature no detector provides and
    ``ValueError`` for a timeout that is not a positive number.
    """
    if (
        settings is None
        and features is None
        and user is None
        and served_by is None
        and python is None
        and not from_host
        and not remember
        and not deep
        and not refresh
        and not _overrides
    ):
        # The call a service makes again and again: one dict lookup.
        cached = _cache.get(_DEFAULT_KEY)
        if cached is not None:
            return cached
    if isinstance(features, str):
        features = [features]  # probe(features="xattr") means the one feature
    names = tuple(sorted(set(features))) if features is not None else None
    settings = settings if settings is not None else _DEFAULT_SETTINGS
    if _overrides:
        return _overrides[-1](settings, names)
    key = _CacheKey(settings, names, deep, user, served_by, python, from_host, remember)
    if not refresh:
        cached = _cache.get(key)
        if cached is not None:
            return cached
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and 0 < timeout <= 3600):
        raise ValueError(f"timeout must be a number of seconds in (0, 3600], not {timeout!r}")
    return _probe_shared(key, timeout, refresh, children)


def _probe_shared(
    key: _CacheKey, timeout: float, refresh: bool, children: Interpreters | None = None
) -> Report:
    """Run the probe ``key`` describes, or wait for the same probe already under
    way in another thread, within ``timeout`` seconds; cache what it reports."""
    settings, names = key.settings, key.features
    clock = _green.original("time")
    deadline = clock.monotonic() + timeout
    if refresh:
        from glance_features._platform import dists as _dists

        _dists.forget()
    while True:
        with _lock:
            if not refresh and key in _cache:
                return _cache[key]
            running = _inflight.get(key)
            if running is None:
                done = _inflight[key] = _green.original("threading").Event()
                break
        # Share the run in flight, but only for as long as this caller may wait.
        if not running.wait(max(0.0, deadline - clock.monotonic())):
            return _timed_out(settings, names, timeout)
        refresh = False  # the run we waited for is as fresh as one of our own
    try:
        service = deployment.discover(key.served_by, key.python, key.from_host)
        report = _run(key, deadline, timeout, service, children)
        with _lock:
            _cache[key] = report
        return report
    finally:
        with _lock:
            _inflight.pop(key, None)
        done.set()


def clear_cache() -> None:
    with _lock:
        _cache.clear()
    from glance_features import glance
    from glance_features._platform import dists as _dists

    _dists.forget()
    glance.installed_version.cache_clear()
    glance.version_in.cache_clear()
    glance.found_in.cache_clear()
    glance.package_of.cache_clear()
    deployment.discover.cache_clear()


def push_override(make: Override) -> None:
    """Make :func:`probe` answer with ``make(settings, features)`` until popped
    (the hook :mod:`glance_features.testing` uses)."""
    with _lock:
        _overrides.append(make)


def pop_override(make: Override) -> None:
    with _lock:
        for i in range(len(_overrides) - 1, -1, -1):
            if _overrides[i] is make:
                del _overrides[i]
                return


def overridden() -> bool:
    return bool(_overrides)


def _after_fork_in_child() -> None:
    # A fork taken while another thread held the lock or ran a probe leaves the
    # child with a locked lock and waiters nobody will wake. Cached reports
    # stay valid: the child is the same host, settings and installation.
    global _lock
    _lock = threading.Lock()
    _inflight.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def required_features(
    settings: Settings,
    glance_version: str | None,
    names: Iterable[str] | None = None,
    served_by: str | None = None,
    installed: bool = True,
) -> dict[str, Requirement]:
    """The features ``settings`` require, each with why (the one rule the
    runner, the command line and the test doubles apply); ``installed``
    plugins too, unless a probe in flight asks."""
    found: dict[str, Requirement] = {}
    for name, entry in registry.catalog(installed=installed).items():
        if names is None or name in names:
            requirement = requirement_of(entry, settings, glance_version, served_by)
            if requirement.conditions:
                found[name] = requirement
    return found


class _Slot:
    def __init__(self, plugin: registry.Plugin) -> None:
        self.plugin = plugin
        self.result: FeatureResult | None = None
        self.requirement = NOT_REQUIRED
        self.entry = UNCATALOGUED
        self.done = _green.original("threading").Event()
        self.launched = _green.original("threading").Event()

    def start(self, context: ProbeContext) -> None:
        """:meth:`run` in a daemon thread: a detector that never returns must
        not keep a service from exiting, nor the probe from returning on time."""
        name = f"glance-features:{self.plugin.name}"
        context = dataclasses.replace(context, launched=self.launched.set)
        worker = _green.original("threading").Thread(
            target=self.run, args=(context,), name=name, daemon=True
        )
        try:
            worker.start()
        except RuntimeError as exc:  # an address-space or thread limit: say so, go on
            self.result = _unknown(
                self.plugin.name,
                f"no thread could be started to probe it ({exc}): the process limits "
                "(ulimit -v, -u; LimitAS=, TasksMax=) are too small",
            )
            self.done.set()
            self.launched.set()

    def run(self, context: ProbeContext) -> None:
        clock = _green.original("time")
        start = clock.perf_counter()
        try:
            detector = self.plugin.load()
            self.entry = entry_of(detector)
            self.requirement = requirement_of(
                self.entry, context.settings, context.glance_version, context.served_by
            )
            found: object = detector.probe(context)  # a plugin may return anything
            if not isinstance(found, FeatureResult):
                raise TypeError(f"probe() returned {type(found).__name__}, not a FeatureResult")
            # Rebuilt as a plain FeatureResult: a subclass could skip the
            # validation (or change to_dict) and take the whole report down.
            result = FeatureResult(
                name=self.plugin.name,
                status=found.status,
                reason=found.reason,
                details=found.details,
                remediation=found.remediation,
            )
        except registry.PluginError as exc:
            result = _unknown(self.plugin.name, str(exc))
        except BaseException as exc:
            result = _unknown(self.plugin.name, f"probe failed: {type(exc).__name__}: {exc}")
        self.result = result.replace(elapsed_ms=_ms(clock.perf_counter() - start))
        self.done.set()
        self.launched.set()


def _run(
    key: _CacheKey,
    deadline: float,
    timeout: float,
    service: Deployment,
    children: Interpreters | None,
) -> Report:
    from glance_features import glance, runas

    # Without a list, the entry points are read once the head start is over.
    plugins = None
    if key.features is not None:
        plugins = registry.plugins(key.features)
        missing = sorted(set(key.features) - {p.name for p in plugins})
        if missing:
            known = ", ".join(sorted(p.name for p in registry.plugins())) or "none"
            raise UnknownFeature(f"unknown feature {missing[0]!r} (known: {known})")
    pool = children or runas.Interpreters()
    other = _other_account(key.user)
    glance_version, location = glance.found_in(service.python, min(5.0, timeout / 2), other, pool)
    context = ProbeContext(
        settings=key.settings,
        deep=key.deep,
        deadline=deadline,
        distro=host.distro(),
        glance_version=glance_version,
        user=key.user,
        python=service.python,
        deployment=service,
        remember=key.remember and not service.inside,
        interpreters=pool,
    )
    # dpkg's answer takes as long as a detector: ask it beside them.
    package = _green.Background(lambda: _package(location), "glance-features:package")
    try:
        return _collect(context, plugins, key.settings, timeout, service, package)
    finally:
        if pool is not children:
            pool.close()


def _started(context: ProbeContext, plugins: list[registry.Plugin] | None) -> list[_Slot]:
    """Every detector's slot, started: those with a head start first and
    alone, the others once those have started their children (``plugins``
    None: every known detector, the entry points read after the head start)."""
    clock = _green.original("time")
    listed = plugins if plugins is not None else registry.plugins(installed=False)
    first = {p.name: _Slot(p) for p in listed if p.head_start}
    for slot in first.values():
        slot.start(context)
    held_until = min(context.deadline, clock.monotonic() + HEAD_START)
    for slot in first.values():
        slot.launched.wait(max(0.0, held_until - clock.monotonic()))
    if plugins is None:
        plugins = registry.plugins()
    slots = [first.get(p.name) or _Slot(p) for p in plugins]
    for slot in slots:
        if slot.plugin.name not in first:
            slot.start(context)
    return slots


def _collect(
    context: ProbeContext,
    plugins: list[registry.Plugin] | None,
    settings: Settings,
    timeout: float,
    service: Deployment,
    package: _green.Background[dict[str, str] | None],
) -> Report:
    from glance_features import glance

    deadline, glance_version = context.deadline, context.glance_version
    clock = _green.original("time")
    slots = _started(context, plugins)
    for slot in slots:
        slot.done.wait(max(0.0, deadline - clock.monotonic()))
    # Taken once: a slot that ends from here on is not reported, so no result
    # comes in after the secrets that mask it were gathered.
    found = {slot.plugin.name: slot.result for slot in slots}
    # Every catalog's secrets mask every result: one detector may quote an
    # option another declares secret. A plugin's catalog is known once loaded.
    catalog = registry.catalog(installed=False)
    entries = [*catalog.values(), *(slot.entry for slot in slots)]
    secrets = settings.secret_values(name for entry in entries for name in entry.secrets)
    results: dict[str, FeatureResult] = {}
    for slot in slots:
        name = slot.plugin.name
        result = found[name]
        if result is None:
            result = _unknown(name, f"timed out after {timeout:g} s").replace(
                elapsed_ms=_ms(timeout)
            )
        requirement = slot.requirement
        if slot.entry is UNCATALOGUED and name in catalog:
            # Never loaded (no thread, or a load that overran): the catalog
            # still says whether the configuration requires it.
            requirement = requirement_of(catalog[name], settings, glance_version, context.served_by)
        results[name] = requirement.apply(redact(result, secrets))
    return Report.build(
        results,
        host=host.facts(context.distro),
        config_files=settings.config_files,
        glance=glance.describe(
            glance_version,
            service,
            package.wait(deadline),
        ),
        checked_as=context.user,
    )


def _timed_out(settings: Settings, names: tuple[str, ...] | None, timeout: float) -> Report:
    from glance_features import glance

    required = required_features(settings, glance.installed_version(), installed=False)
    results = {
        p.name: required.get(p.name, NOT_REQUIRED).apply(
            _unknown(p.name, f"timed out after {timeout:g} s waiting for a probe in flight")
        )
        for p in registry.plugins(names)
    }
    return Report.build(results, host=host.facts(host.distro()), config_files=settings.config_files)


def _unknown(name: str, reason: str) -> FeatureResult:
    return FeatureResult(name=name, status=Status.UNKNOWN, reason=reason)


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 1)


__all__ = ["DEFAULT_TIMEOUT", "Distro", "UnknownFeature", "clear_cache", "probe"]


def _other_account(user: str | None) -> str | None:
    return user if user and user != current_user() else None


def _package(location: str | None) -> dict[str, str] | None:
    """The distribution package (dpkg) that installed the Glance at ``location``, if any."""
    from glance_features import glance

    vendor = host.distro().id
    names = {"debian": "Debian", "ubuntu": "Ubuntu"}
    return glance.package_of(location, names.get(vendor, vendor.capitalize()))
