"""Python distributions the features need, checked against what is installed
and against OpenStack-style constraints files (upper-constraints.txt)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from glance_features import registry
from glance_features._platform import dists
from glance_features._platform.files import ReadError, read_text

MAX_BYTES = 8 << 20  # upper-constraints.txt is about 25 KiB
MAX_INCLUDE_DEPTH = 32  # -c/-r chains; OpenStack's go one or two deep


class ConstraintsError(ValueError):
    """A constraints file is missing or has a line that does not parse."""


@dataclass(frozen=True)
class Constraint:
    name: str
    specifier: SpecifierSet
    source: str  # file:line

    @property
    def pin(self) -> str | None:
        specs = list(self.specifier)
        if len(specs) == 1 and specs[0].operator in ("==", "==="):
            return specs[0].version
        return None


def parse_constraints(paths: Iterable[str]) -> dict[str, Constraint]:
    """Constraints by PEP 503 name, from files in pip's format: ``name===1.0``,
    environment markers, comments, and ``-c``/``-r`` includes relative to
    the including file. Lines whose markers do not apply here are skipped."""
    found: dict[str, Constraint] = {}
    for path in paths:
        _read_constraints(path, found, seen=set(), included_from=None)
    return found


def _read_constraints(
    path: str,
    found: dict[str, Constraint],
    seen: set[str],
    included_from: str | None,
    depth: int = 0,
) -> None:
    if depth > MAX_INCLUDE_DEPTH:
        raise ConstraintsError(f"{included_from}: includes nested deeper than {MAX_INCLUDE_DEPTH}")
    real = os.path.realpath(path)
    if real in seen:
        return  # pip allows include cycles to end; so do we
    seen.add(real)
    try:
        lines = read_text(path, MAX_BYTES).splitlines()
    except ReadError as exc:
        where = f"{included_from}: " if included_from else ""
        raise ConstraintsError(f"{where}constraints file {exc.strerror}") from None
    for lineno, raw in enumerate(lines, 1):
        where = f"{path}:{lineno}"
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        for option in ("-c", "-r", "--constraint", "--requirement"):
            if line == option or line.startswith((option + " ", option + "=")):
                target = line[len(option) :].lstrip(" =")
                if not target:
                    raise ConstraintsError(f"{where}: {option} needs a file name")
                include = os.path.join(os.path.dirname(path), target)
                _read_constraints(include, found, seen, where, depth + 1)
                break
        else:
            if line.startswith("-"):
                raise ConstraintsError(f"{where}: unsupported option {line.split()[0]!r}")
            try:
                requirement = Requirement(line)
            except InvalidRequirement as exc:
                raise ConstraintsError(f"{where}: {str(exc).splitlines()[0]}") from None
            if requirement.marker is not None and not requirement.marker.evaluate():
                continue
            name = canonicalize_name(requirement.name)
            found[name] = Constraint(name, requirement.specifier, where)


@dataclass(frozen=True)
class Row:
    feature: str
    requirement: str
    name: str
    specifier: str
    marker: str
    applies: bool
    installed: str | None
    satisfied: bool
    constraint: Constraint | None

    @property
    def matches_constraint(self) -> bool | None:
        if self.constraint is None or self.installed is None:
            return None
        return self.constraint.specifier.contains(self.installed, prereleases=True)

    @property
    def code(self) -> int:
        if not self.applies:
            return 0
        if not self.satisfied:
            return 2
        return 1 if self.matches_constraint is False else 0

    def to_dict(self) -> dict[str, object]:
        return {
            "feature": self.feature,
            "requirement": self.requirement,
            "name": self.name,
            "specifier": self.specifier,
            "marker": self.marker,
            "applies": self.applies,
            "installed": self.installed,
            "satisfied": self.satisfied,
            "constraint": str(self.constraint.specifier) if self.constraint else None,
            "constraint_source": self.constraint.source if self.constraint else None,
            "matches_constraint": self.matches_constraint,
            "code": self.code,
        }


def check(features: Iterable[str], constraints: dict[str, Constraint]) -> list[Row]:
    catalog = registry.catalog()
    rows = []
    for feature in features:
        for text in catalog[feature].python:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            installed = dists.version(requirement.name)
            applies = requirement.marker is None or requirement.marker.evaluate()
            satisfied = installed is not None and requirement.specifier.contains(
                installed, prereleases=True
            )
            rows.append(
                Row(
                    feature=feature,
                    requirement=text,
                    name=name,
                    specifier=str(requirement.specifier),
                    marker=str(requirement.marker or ""),
                    applies=applies,
                    installed=installed,
                    satisfied=satisfied,
                    constraint=constraints.get(name),
                )
            )
    return rows


def as_requirements_txt(rows: list[Row]) -> str:
    """A pip-installable list: pinned to the constraints where they pin."""
    lines = ["# Python distributions for Glance's advanced features (glance-features)"]
    for row in rows:
        marker = f"; {row.marker}" if row.marker else ""
        pin = row.constraint.pin if row.constraint else None
        spec = f"=={pin}" if pin is not None else row.specifier
        lines.append(f"{row.name}{spec}{marker}  # {row.feature}")
    return "\n".join(dict.fromkeys(lines)) + "\n"
