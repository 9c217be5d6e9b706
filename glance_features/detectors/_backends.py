"""Which glance_store backends a Glance configuration enables, and where each
keeps its options: the facts Glance itself reads, for the store detectors.

Glance 33 (``glance.common.wsgi_app.init_app``) chooses between two modes:
``[DEFAULT] enabled_backends`` (a DictOpt ``id:driver,...``; each backend's
options live in the group named by its id, and Glance adds two reserved file
stores for staging and tasks), or, when that is empty, the legacy
``[glance_store] stores`` list whose options all live in ``[glance_store]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Literal, overload

from glance_features.catalog import RequiredWhen
from glance_features.errors import ConfigError
from glance_features.model import JSON
from glance_features.options import ENABLED_BACKENDS, STORE_SELECTION, STORES, Kind, Option
from glance_features.settings import Settings

# glance.common.wsgi_app.RESERVED_STORES: added whenever enabled_backends is set.
RESERVED = {"os_glance_staging_store": "file", "os_glance_tasks_store": "file"}
LEGACY_GROUP = "glance_store"

# glance_store 5.7's entry points (group glance_store.drivers) -> driver.
DRIVER_OF_ENTRY = {
    "file": "file",
    "http": "http",
    "rbd": "rbd",
    "s3": "s3",
    "swift": "swift",
    "cinder": "cinder",
    "vmware": "vmware",
    "glance.store.filesystem.Store": "file",
    "glance.store.http.Store": "http",
    "glance.store.rbd.Store": "rbd",
    "glance.store.s3.Store": "s3",
    "glance.store.swift.Store": "swift",
    "glance.store.cinder.Store": "cinder",
    "glance.store.vmware_datastore.Store": "vmware",
}


@dataclasses.dataclass(frozen=True)
class Backend:
    """One configured store: its id, driver, and the group holding its options."""

    id: str
    driver: str
    group: str
    reserved: bool = False

    # The value's type follows the option's kind (options._CONVERTERS), or
    # is its default's when it is unset.
    @overload
    def get(
        self, settings: Settings, name: str, kind: Literal["str"] = ..., default: str | None = ...
    ) -> str | None: ...
    @overload
    def get(
        self, settings: Settings, name: str, kind: Literal["int", "port"], default: int
    ) -> int: ...
    @overload
    def get(
        self,
        settings: Settings,
        name: str,
        kind: Literal["int", "port"],
        default: None = ...,
    ) -> int | None: ...
    @overload
    def get(self, settings: Settings, name: str, kind: Literal["bool"], default: bool) -> bool: ...
    @overload
    def get(
        self, settings: Settings, name: str, kind: Literal["bool"], default: None = ...
    ) -> bool | None: ...
    @overload
    def get(
        self,
        settings: Settings,
        name: str,
        kind: Literal["list", "bounded_list"],
        default: Sequence[str] | None = ...,
    ) -> Sequence[str] | None: ...
    @overload
    def get(
        self,
        settings: Settings,
        name: str,
        kind: Literal["dict"],
        default: Mapping[str, str] | None = ...,
    ) -> Mapping[str, str] | None: ...
    def get(self, settings: Settings, name: str, kind: Kind = "str", default: JSON = None) -> JSON:
        value: JSON = settings.get(Option(self.group, name, kind, default))
        return value

    def is_set(self, settings: Settings, name: str) -> bool:
        return settings.is_set(Option(self.group, name))

    def label(self, name: str) -> str:
        return f"[{self.group}] {name}"


def multi_store(settings: Settings) -> bool:
    return bool(settings.get(ENABLED_BACKENDS))


def backends(settings: Settings, driver: str) -> list[Backend]:
    """The backends of ``driver`` Glance would configure with these settings;
    none when no Glance configuration was read or given at all."""
    if not settings.config_files and not any(settings.is_set(o) for o in STORE_SELECTION):
        return []
    enabled = settings.get(ENABLED_BACKENDS)
    if enabled:
        found = [
            Backend(name, driver, name)
            for name, entry in dict(enabled).items()
            if DRIVER_OF_ENTRY.get(str(entry).strip()) == driver and name not in RESERVED
        ]
        # Glance adds its reserved stores itself (they are file stores).
        found += [Backend(n, d, n, True) for n, d in RESERVED.items() if d == driver]
        return found
    # Legacy mode: one store per driver, options in [glance_store].
    entries = {DRIVER_OF_ENTRY.get(str(e).strip()) for e in settings.get(STORES) or ()}
    return [Backend(driver, driver, LEGACY_GROUP)] if driver in entries else []


def user_backends(settings: Settings) -> dict[str, str]:
    """``enabled_backends`` as the operator wrote it (Glance's reserved stores aside)."""
    enabled = settings.get(ENABLED_BACKENDS) or {}
    return {k: str(v) for k, v in dict(enabled).items() if k not in RESERVED}


def enabled(settings: Settings, driver: str) -> bool:
    """True when the configuration enables a backend of ``driver``.

    Without any Glance configuration nothing is enabled: the probe cannot tell
    a Glance API host from any other, and the legacy defaults would otherwise
    make every host need a file store.
    """
    return bool(backends(settings, driver))


def required_when(driver: str) -> tuple[RequiredWhen, ...]:
    rows = [
        RequiredWhen(
            f"[DEFAULT] enabled_backends names a backend of type {driver}",
            lambda s: multi_store(s) and any(not b.reserved for b in backends(s, driver)),
        ),
        RequiredWhen(
            f"[glance_store] stores includes {driver} (legacy single-store mode)",
            lambda s: not multi_store(s) and enabled(s, driver),
        ),
    ]
    return tuple(rows)


@overload
def option_value(
    backend: Backend,
    settings: Settings,
    name: str,
    kind: Literal["str"] = ...,
    default: str | None = ...,
) -> tuple[str | None, str | None]: ...
@overload
def option_value(
    backend: Backend,
    settings: Settings,
    name: str,
    kind: Literal["int"],
    default: int | None = ...,
) -> tuple[int | None, str | None]: ...
@overload
def option_value(
    backend: Backend, settings: Settings, name: str, kind: Kind, default: JSON = ...
) -> tuple[JSON, str | None]: ...
def option_value(
    backend: Backend, settings: Settings, name: str, kind: Kind = "str", default: JSON = None
) -> tuple[JSON, str | None]:
    """An option's value, or the config error that stops Glance from reading it."""
    try:
        value: JSON = settings.get(Option(backend.group, name, kind, default))
    except ConfigError as exc:
        return None, str(exc)
    return value, None
