"""Installed distributions, through importlib-metadata, asked once per process.

Glance's interpreter has about a hundred distributions; each question to
importlib-metadata scans them all, so the answers are cached until
:func:`forget` (called by ``probe(refresh=True)``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

    import importlib_metadata


@functools.cache
def version(name: str) -> str | None:
    """The installed version, or None when absent or its metadata is unreadable
    (a half-written or foreign dist-info must not crash a service's probe)."""
    import importlib_metadata

    try:
        found: str | None = importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return None
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    return found if isinstance(found, str) else None


@functools.cache
def entry_points(group: str) -> tuple[importlib_metadata.EntryPoint, ...]:
    import importlib_metadata

    try:
        return tuple(importlib_metadata.entry_points(group=group))
    except (OSError, ValueError):
        pass
    # One distribution's unreadable entry_points.txt must hide neither the
    # others' plugins nor the built-ins: read them one by one, skipping it.
    found: list[importlib_metadata.EntryPoint] = []
    seen: set[str] = set()
    for dist in importlib_metadata.distributions():
        try:
            name = dist.name
            if name in seen:
                continue  # shadowed by one earlier on sys.path, as importlib does
            seen.add(name)
            found.extend(ep for ep in dist.entry_points if ep.group == group)
        except (OSError, ValueError, TypeError):
            continue
    return tuple(found)


def forget() -> None:
    version.cache_clear()
    entry_points.cache_clear()


def find_spec(name: str) -> ModuleSpec | None:
    """Where a module would be imported from, without importing it (or its parents)."""
    import importlib.util
    import sys

    if name in sys.modules:
        return getattr(sys.modules[name], "__spec__", None)
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
