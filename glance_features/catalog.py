"""What a feature is, as operators and tools need it: one entry per detector.

A detector carries its :class:`Entry` as ``catalog``; ``explain``,
``requirements``, the bindep output, the docs tables and the test doubles all
read it from there, so adding a built-in feature is one module and one line
in :mod:`glance_features.detectors`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from glance_features.settings import Option, Settings


@dataclasses.dataclass(frozen=True)
class RequiredWhen:
    """A configuration that makes the feature required, as the operator writes it."""

    when: str
    applies: Callable[[Settings], bool]


@dataclasses.dataclass(frozen=True)
class GlanceUse:
    """Which Glance releases use the feature, and through which code."""

    code_path: str
    # PEP 440 specifier on the installed Glance version; "" means every release.
    versions: str = ""
    # What the operator is told when the installed Glance does not use it.
    unused: str = ""

    def used_by(self, glance_version: str | None) -> bool | None:
        if glance_version is None:
            return None
        if not self.versions:
            return True
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
        from packaging.version import InvalidVersion, Version

        try:
            return Version(glance_version) in SpecifierSet(self.versions)
        except (InvalidSpecifier, InvalidVersion):
            return None


@dataclasses.dataclass(frozen=True)
class Entry:
    purpose: str
    options: tuple[Option, ...] = ()
    required_when: tuple[RequiredWhen, ...] = ()
    python: tuple[str, ...] = ()  # PEP 508 requirements, markers included
    packages: Mapping[str, str] = dataclasses.field(default_factory=dict)  # family -> package
    verify: tuple[str, ...] = ()  # commands that show it works
    glance: GlanceUse | None = None


UNCATALOGUED = Entry("A third-party detector: see its documentation.")

# bindep's platform profile for each distribution family.
BINDEP_PROFILE = {
    "debian": "platform:dpkg",
    "rhel": "platform:redhat",
    "suse": "platform:suse",
    "arch": "platform:pacman",
    "alpine": "platform:apk",
    "macos": "platform:brew",
}


def entry_of(detector: object) -> Entry:
    entry = getattr(detector, "catalog", None)
    return entry if isinstance(entry, Entry) else UNCATALOGUED


def required_by(entry: Entry, settings: Settings) -> list[str]:
    """The conditions in ``settings`` that require the feature."""
    return [row.when for row in entry.required_when if row.applies(settings)]


def bindep_lines(entries: Mapping[str, Entry]) -> list[str]:
    # One bindep line per package: an entry may name several for one family
    # ("python3-rbd python3-rados"), as the install command takes them.
    lines = {
        f"{package} [{BINDEP_PROFILE[family]}]"
        for entry in entries.values()
        for family, packages in entry.packages.items()
        if family in BINDEP_PROFILE
        for package in packages.split()
    }
    return sorted(lines)
