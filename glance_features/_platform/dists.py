"""Installed distributions, through importlib-metadata, asked once per process.

Glance's interpreter has about a hundred distributions; each question to
importlib-metadata scans them all, so the answers are cached until
:func:`forget` (called by ``probe(refresh=True)``).
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def version(name: str) -> str | None:
    import importlib_metadata

    try:
        found: str = importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return None
    return found


@functools.cache
def entry_points(group: str) -> tuple[Any, ...]:
    import importlib_metadata

    return tuple(importlib_metadata.entry_points(group=group))


def forget() -> None:
    version.cache_clear()
    entry_points.cache_clear()


def find_spec(name: str) -> Any:
    """Where a module would be imported from, without importing it (or its parents)."""
    import importlib.util
    import sys

    if name in sys.modules:
        return getattr(sys.modules[name], "__spec__", None)
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
