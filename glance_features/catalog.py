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
    from glance_features.model import Details, FeatureResult
    from glance_features.settings import Option, Settings


@dataclasses.dataclass(frozen=True)
class RequiredWhen:
    """A configuration that makes the feature required, as the operator writes it."""

    when: str
    applies: Callable[[Settings], bool]


@dataclasses.dataclass(frozen=True)
class GlanceUse:
    """Which Glance releases use the feature, served how, and through which code."""

    code_path: str
    # PEP 440 specifier on the Glance release; "" means every release.
    versions: str = ""
    # How the service must be run for that code to run; () means every way.
    served_by: tuple[str, ...] = ()
    # What the operator is told when the installed Glance does not use it.
    unused: str = ""
    # The releases and modes the rule was measured on, and the test that shows it.
    measured: str = ""
    # Settings without which that code never runs (pydev: workers = 0), and
    # what the operator is told then.
    runs_if: Callable[[Settings], bool] | None = None
    unused_if_not: str = ""

    def used_with(
        self, glance_version: str | None, served_by: str | None, settings: Settings
    ) -> bool | None:
        """:meth:`used_by`, and False where these settings keep the code from running."""
        used = self.used_by(glance_version, served_by)
        if used is not False and self.runs_if is not None and not self.runs_if(settings):
            return False
        return used

    def used_by(self, glance_version: str | None, served_by: str | None = None) -> bool | None:
        """True or False for that Glance served that way; None when it cannot
        be known (no Glance, or a mode that decides and is not known)."""
        if glance_version is None:
            return None
        if served_by is None and self.served_by:
            modes = self.by_mode(glance_version)
            answers = set(modes.values())
            return answers.pop() if len(answers) == 1 else None
        if self.served_by and served_by not in self.served_by:
            return False
        return self._release_uses(glance_version)

    def by_mode(self, glance_version: str) -> dict[str, bool | None]:
        """Whether each way of serving that release uses the feature."""
        from glance_features.deployment import SERVERS

        return {mode: self.used_by(glance_version, mode) for mode in SERVERS}

    def _release_uses(self, glance_version: str) -> bool | None:
        if not self.versions:
            return True
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
        from packaging.version import InvalidVersion, Version

        try:
            # A dev or pre-release build (devstack's 31.1.1.dev3) is judged
            # like its release, whatever prerelease rules this packaging has.
            release = Version(Version(glance_version).base_version)
            return release in SpecifierSet(self.versions)
        except (InvalidSpecifier, InvalidVersion):
            return None


@dataclasses.dataclass(frozen=True)
class Entry:
    purpose: str
    options: tuple[Option[object], ...] = ()
    required_when: tuple[RequiredWhen, ...] = ()
    python: tuple[str, ...] = ()  # PEP 508 requirements, markers included
    packages: Mapping[str, str] = dataclasses.field(default_factory=dict)  # family -> package
    verify: tuple[str, ...] = ()  # commands that show it works
    glance: GlanceUse | None = None
    # Options read (in any group) that Glance or glance_store declare
    # secret=True: their values are never shown (glance_features.redaction).
    secrets: tuple[str, ...] = ()


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


@dataclasses.dataclass(frozen=True)
class Requirement:
    """Whether the configuration requires a feature, for one Glance served one
    way: the ``conditions`` that enable it; ``ignored``, the note saying why
    this Glance (release, way of serving) does not use it after all, so it is
    not required; ``used_by_glance``, whether that Glance runs its code."""

    conditions: tuple[str, ...] = ()
    ignored: str | None = None
    used_by_glance: bool | None = None

    def apply(self, result: FeatureResult) -> FeatureResult:
        """``result`` with ``required``, ``used_by_glance`` and the details
        that say why: the one rule for probes and test doubles alike."""
        result = result.replace(used_by_glance=self.used_by_glance)
        if not self.conditions:
            return result
        if self.ignored is not None:
            details: Details = {**result.details, "ignored_by_glance": self.ignored}
            reason = f"{result.reason} (not required: {self.ignored})"
            return result.replace(details=details, reason=reason)
        details = {**result.details, "required_by": list(self.conditions)}
        return result.replace(required=True, details=details)


NOT_REQUIRED = Requirement()


def requirement_of(
    entry: Entry, settings: Settings, glance_version: str | None, served_by: str | None
) -> Requirement:
    """What ``settings`` make of the feature in that Glance served that way."""
    use = entry.glance
    used = use.used_with(glance_version, served_by, settings) if use else None
    conditions = tuple(row.when for row in entry.required_when if row.applies(settings))
    note = None
    if conditions and use is not None and used is False:
        how = f" served by {served_by}" if served_by and use.served_by else ""
        unused = use.unused or "does not use this feature"
        if use.used_by(glance_version, served_by) is not False:
            unused = use.unused_if_not
        note = f"{'; '.join(conditions)}, but Glance {glance_version}{how} {unused}"
    elif conditions and use is not None and used is None and glance_version and use.served_by:
        # How Glance is served decides, and nothing shows it: say which
        # verdict holds for which server rather than refuse a service that
        # may well run (the guard and check_startup, inside Glance, know).
        note = f"{'; '.join(conditions)}, but {mode_note(use, glance_version)}"
    return Requirement(conditions, note, used)


def mode_note(use: GlanceUse, glance_version: str) -> str:
    """Which ways of serving Glance use the feature, when the way is not known."""
    modes = use.by_mode(glance_version)
    users = [m for m, used in modes.items() if used]
    others = [m for m, used in modes.items() if used is False]
    return (
        f"how Glance {glance_version} is served is not known: it is used when served by "
        f"{', '.join(users) or 'none'}, not by {', '.join(others) or 'none'} "
        "(--served-by says which)"
    )


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
