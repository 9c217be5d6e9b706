"""Installed distributions, found by file name instead of importing metadata.

``importlib_metadata`` costs several interpreter starts to import and reads
every distribution's metadata to answer one question. Glance calls the probe at
every service start, so the common questions — "which version of X is
installed?" and "who declares entry points in this group?" — are answered by
listing ``*.dist-info`` directories on ``sys.path``. Zipped ``sys.path`` entries
(eggs, zipapps) are left to ``importlib_metadata``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator

from glance_features._record import record

TYPE_CHECKING = False  # typing itself would cost Glance's start-up; see __init__
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

_SUFFIXES = (".dist-info", ".egg-info")


@record
class Distribution:
    name: str
    version: str
    path: str


@record
class EntryPoint:
    name: str
    value: str
    distribution: str

    @property
    def module(self) -> str:
        return self.value.partition(":")[0].strip()

    @property
    def attr(self) -> str:
        return self.value.partition(":")[2].strip()


def find_spec(name: str) -> ModuleSpec | None:
    """``importlib.util.find_spec`` for a top-level name, without importing the
    module or importlib.util: ask each finder on sys.meta_path (PEP 451)."""
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__spec__", None)
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        spec = find(name, None)
        if spec is not None:
            return spec  # type: ignore[no-any-return]
    return None


def normalize(name: str) -> str:
    """PEP 503 normalised name."""
    return re.sub(r"[-_.]+", "-", name).lower()


# One probe asks about a handful of distributions, and Glance's start-up path
# should list site-packages once, not once per question. The listing is kept
# while sys.path and the modification times of its directories are unchanged
# (installing or removing a distribution changes the directory's mtime).
_listing: tuple[tuple[tuple[str, int], ...], list[tuple[str, str]]] | None = None
# Entry points by group, valid for the listing above: the command line checks
# feature names and then probes, and must not read every entry_points.txt twice.
_entry_points: dict[str, list[EntryPoint]] = {}


def _metadata_dirs() -> list[tuple[str, str]]:
    """(normalised name, directory) for each metadata directory, in path order."""
    global _listing
    key = tuple((entry, _mtime(entry or ".")) for entry in sys.path)
    cached = _listing
    if cached is not None and cached[0] == key:
        return cached[1]
    found: list[tuple[str, str]] = []
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                names = [e.name for e in it if e.name.endswith(_SUFFIXES)]
        except OSError:
            continue
        for dirname in sorted(names):
            stem = dirname.rsplit(".", 1)[0]
            found.append((normalize(stem.partition("-")[0]), os.path.join(entry or ".", dirname)))
    _listing = (key, found)
    _entry_points.clear()
    return found


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _read_version(path: str) -> str | None:
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(path, filename), encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith("Version:"):
                        return line.partition(":")[2].strip()
                    if not line.strip():  # the headers end at the first blank line
                        break
        except OSError:
            continue
    return None


def _zip_entries() -> list[str]:
    return [p for p in sys.path if p and os.path.isfile(p)]


def distribution(name: str) -> Distribution | None:
    """The first installed distribution called ``name`` (any spelling), or None."""
    wanted = normalize(name)
    for dist_name, path in _metadata_dirs():
        if dist_name == wanted:
            version = _read_version(path)
            if version is not None:
                return Distribution(name, version, path)
    zips = _zip_entries()
    if zips:
        import importlib_metadata

        for dist in importlib_metadata.distributions(path=zips):
            if normalize(dist.metadata["Name"] or "") == wanted:
                return Distribution(name, dist.version, str(zips))
    return None


def version(name: str) -> str | None:
    dist = distribution(name)
    return dist.version if dist else None


def entry_points(group: str) -> list[EntryPoint]:
    """Entry points of ``group``, first distribution of each name only."""
    listing = _metadata_dirs()
    cached = _entry_points.get(group)
    if cached is None:
        cached = _entry_points[group] = _scan_entry_points(group, listing)
    return list(cached)


def _scan_entry_points(group: str, listing: list[tuple[str, str]]) -> list[EntryPoint]:
    seen: set[str] = set()
    found: list[EntryPoint] = []
    for dist_name, path in listing:
        if dist_name in seen:
            continue
        seen.add(dist_name)
        try:
            with open(os.path.join(path, "entry_points.txt"), encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError):
            continue
        found.extend(_parse_entry_points(text, group, dist_name))
    zips = _zip_entries()
    if zips:
        import importlib_metadata

        for ep in importlib_metadata.entry_points(group=group):
            dist = normalize(ep.dist.name) if ep.dist else "?"
            if dist not in seen:
                found.append(EntryPoint(ep.name, ep.value, dist))
    return found


def _parse_entry_points(text: str, group: str, dist: str) -> Iterator[EntryPoint]:
    in_group = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            in_group = line.strip("[]").strip() == group
        elif in_group and "=" in line:
            name, _, value = line.partition("=")
            yield EntryPoint(name.strip(), value.strip(), dist)
