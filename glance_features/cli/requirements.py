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
from glance_features.errors import GlanceFeaturesError

MAX_BYTES = 8 << 20  # upper-constraints.txt is about 25 KiB
MAX_INCLUDE_DEPTH = 32  # -c/-r chains; OpenStack's go one or two deep


class ConstraintsError(GlanceFeaturesError, ValueError):
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


# --- requirements --propose: the lines a requirements change would add -----

# License classifiers as global-requirements.txt spells them.
_CLASSIFIER_LICENCES = {
    "Apache Software License": "Apache-2.0",
    "MIT License": "MIT",
    "BSD License": "BSD",
    "ISC License (ISCL)": "ISC",
    "Python Software Foundation License": "PSF",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
}


def licence_of(name: str) -> str | None:
    """The licence of installed distribution ``name``, as its metadata says:
    License-Expression, else a one-line License, else the classifier."""
    import importlib_metadata

    try:
        metadata = importlib_metadata.distribution(name).metadata
    except (importlib_metadata.PackageNotFoundError, OSError, ValueError):
        return None
    expression = (metadata.get("License-Expression") or "").strip()
    if expression:
        return expression
    text = (metadata.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 40 and text.upper() != "UNKNOWN":
        return text
    for classifier in metadata.get_all("Classifier") or []:
        parts = [p.strip() for p in classifier.split("::")]
        if parts[0] != "License" or len(parts) < 2 or parts[-1] == "OSI Approved":
            continue
        last = parts[-1]
        if last in _CLASSIFIER_LICENCES:
            return _CLASSIFIER_LICENCES[last]
        inside = last.rsplit("(", 1)[-1].rstrip(")") if last.endswith(")") else ""
        return inside or last
    return None


@dataclass(frozen=True)
class Found:
    """A line of a requirements file that already names the distribution."""

    source: str  # file:line
    line: str


def find_in_requirements_file(path: str) -> dict[str, Found]:
    """Every requirement line of a global-requirements.txt (or Glance's
    requirements.txt), by PEP 503 name, whatever its markers say."""
    try:
        lines = read_text(path, MAX_BYTES).splitlines()
    except ReadError as exc:
        raise ConstraintsError(f"requirements file {exc.strerror}") from None
    found: dict[str, Found] = {}
    for lineno, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise ConstraintsError(f"{path}:{lineno}: {str(exc).splitlines()[0]}") from None
        found.setdefault(canonicalize_name(requirement.name), Found(f"{path}:{lineno}", raw))
    return found


def _constraint_lines(paths: Iterable[str]) -> dict[str, Found]:
    """Every line of the constraints files by name, markers not evaluated:
    a pin for another Python version is still a pin the file has."""
    found: dict[str, Found] = {}
    for path in paths:
        for name, where in find_in_requirements_file(path).items():
            found.setdefault(name, where)
    return found


def _marker_text(requirement: Requirement) -> str:
    """The marker as openstack/requirements writes it: ``;sys_platform!='win32'``."""
    import re

    if requirement.marker is None:
        return ""
    text = re.sub(r"\s*(===|==|!=|<=|>=|~=|<|>)\s*", r"\1", str(requirement.marker))
    return ";" + text.replace('"', "'")


def _section(name: str) -> str:
    if name.startswith("python-") and name.endswith("client"):
        return "openstack-clients"
    if name.startswith(("oslo.", "oslo-", "os-")):
        return "openstack-general"
    return "general"


@dataclass(frozen=True)
class Proposed:
    feature: str
    name: str
    licence: str | None
    installed: str | None
    global_requirements: str
    global_requirements_section: str
    global_requirements_found: Found | None
    upper_constraints: str | None
    upper_constraints_found: Found | None
    glance_requirements: str
    glance_requirements_found: str | None  # "glance X's metadata" when it already requires it

    def to_dict(self) -> dict[str, object]:
        def found(where: Found | None) -> dict[str, str] | None:
            return None if where is None else {"source": where.source, "line": where.line}

        return {
            "feature": self.feature,
            "name": self.name,
            "licence": self.licence,
            "installed": self.installed,
            "global_requirements": {
                "line": self.global_requirements,
                "section": self.global_requirements_section,
                "present": found(self.global_requirements_found),
            },
            "upper_constraints": {
                "line": self.upper_constraints,
                "present": found(self.upper_constraints_found),
            },
            "glance_requirements": {
                "line": self.glance_requirements,
                "present": self.glance_requirements_found,
            },
        }


def propose(
    feature: str, global_requirements: str | None, constraints: Iterable[str]
) -> list[Proposed]:
    """What moving ``feature``'s Python dependencies into the requirements
    needs: one :class:`Proposed` per distribution."""
    existing = find_in_requirements_file(global_requirements) if global_requirements else {}
    pins = _constraint_lines(constraints)
    glance_requires = _glance_requires()
    proposed = []
    for text in registry.catalog()[feature].python:
        requirement = Requirement(text)
        key = canonicalize_name(requirement.name)
        installed = dists.version(requirement.name)
        present = existing.get(key)
        # The installed distribution's metadata, else what global-requirements
        # already says of it.
        licence = licence_of(requirement.name) or (
            present.line.split("#", 1)[1].strip() or None
            if present is not None and "#" in present.line
            else None
        )
        comment = licence or "<License>"
        pin = pins.get(key)
        marker = _marker_text(requirement)
        # global-requirements.txt holds no minimums (they belong to each
        # project's requirements.txt): only exclusions and caps.
        kept = sorted(
            (s for s in requirement.specifier if s.operator in ("!=", "<", "<=")),
            key=str,
        )
        # The feature's own minimum; else the pin the gate tests (a minimum
        # above it would fail there); else what is installed here.
        pinned = _pinned_version(pin.line) if pin is not None else None
        minimum = next(
            (s.version for s in requirement.specifier if s.operator in (">=", "~=", "==")),
            pinned or installed,
        )
        glance_line = f"{requirement.name}{f'>={minimum}' if minimum else ''}{marker} # {comment}"
        proposed.append(
            Proposed(
                feature=feature,
                name=requirement.name,
                licence=licence,
                installed=installed,
                global_requirements=(
                    f"{requirement.name}{','.join(str(s) for s in kept)}{marker}  # {comment}"
                ),
                global_requirements_section=_section(key),
                global_requirements_found=present,
                upper_constraints=f"{requirement.name}==={installed}" if installed else None,
                upper_constraints_found=pin,
                glance_requirements=glance_line,
                glance_requirements_found=glance_requires.get(key),
            )
        )
    return proposed


def _pinned_version(line: str) -> str | None:
    try:
        specs = list(Requirement(line.split("#", 1)[0].strip()).specifier)
    except InvalidRequirement:
        return None
    return specs[0].version if len(specs) == 1 and specs[0].operator in ("==", "===") else None


def _glance_requires() -> dict[str, str]:
    """What the installed Glance already requires, by name."""
    import importlib_metadata

    version = dists.version("glance")
    try:
        requires = importlib_metadata.requires("glance") or []
    except (importlib_metadata.PackageNotFoundError, OSError, ValueError):
        return {}
    found: dict[str, str] = {}
    for text in requires:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and "extra" in str(requirement.marker):
            continue  # an extra is not a requirement
        found[canonicalize_name(requirement.name)] = f"Glance {version}'s metadata: {text}"
    return found


def proposal_text(feature: str, rows: list[Proposed], *, gr: str | None, uc: list[str]) -> str:
    if not rows:
        return f"{feature} needs no Python distribution: there is nothing to propose.\n"
    names = ", ".join(r.name for r in rows)
    out = [f"Moving {feature}'s Python dependencies ({names}) into the requirements", ""]
    out += _global_requirements_lines(rows, gr)
    out += ["", *_upper_constraints_lines(rows, uc)]
    out += ["", *_glance_requirements_lines(rows)]
    out += _commit_messages(feature, names, rows)
    return "\n".join(out) + "\n"


def _already_there(found: Found) -> str:
    from glance_features.cli.table import safe

    return f"already there, {safe(found.source)}: {safe(found.line.strip())}"


def _global_requirements_lines(rows: list[Proposed], gr: str | None) -> list[str]:
    out = ["1. openstack/requirements, global-requirements.txt:"]
    for r in rows:
        if r.global_requirements_found is not None:
            out.append(f"   # {r.name}: {_already_there(r.global_requirements_found)}")
        else:
            out.append(f"   # {r.name}: add to '## section:{r.global_requirements_section}'")
            out.append(f"   {r.global_requirements}")
            if r.licence is None:
                out.append(f"   # {r.name} is not installed here or names no licence: fill it in")
    if gr is None:
        out.append("   # (give --global-requirements FILE to check which are already there)")
    return out


def _upper_constraints_lines(rows: list[Proposed], uc: list[str]) -> list[str]:
    out = ["2. openstack/requirements, upper-constraints.txt:"]
    for r in rows:
        if r.upper_constraints_found is not None:
            out.append(f"   # {r.name}: {_already_there(r.upper_constraints_found)}")
        elif r.upper_constraints is None:
            out.append(f"   # {r.name} is not installed here: pin the version you tested")
            out.append(f"   # {r.name}===<version>")
        else:
            out.append(f"   {r.upper_constraints}")
    if not uc:
        out.append("   # (give --constraints FILE to check which are already pinned)")
    return out


def _glance_requirements_lines(rows: list[Proposed]) -> list[str]:
    from glance_features.cli.table import safe

    out = ["3. openstack/glance, requirements.txt:"]
    for r in rows:
        if r.glance_requirements_found is not None:
            out.append(f"   # {r.name}: already required, {safe(r.glance_requirements_found)}")
        else:
            out.append(f"   {r.glance_requirements}")
    return out


def _commit_messages(feature: str, names: str, rows: list[Proposed]) -> list[str]:
    """The commit messages, each after a blank line: openstack/requirements' when
    it lacks any of them, then Glance's."""
    missing = [
        r.name
        for r in rows
        if r.global_requirements_found is None or r.upper_constraints_found is None
    ]
    listed = ", ".join(missing)
    out: list[str] = []
    if missing:
        out += [
            "",
            "Commit message for openstack/requirements:",
            "",
            f"    Add {listed} for Glance's {feature}",
            "",
            f"    Glance's {feature} feature needs {listed}, which operators install",
            "    by hand today. <Who enables it: the adoption table of",
            f"    'glance-features summarize --format markdown' for {feature}.>",
            "",
            *(
                f"    {r.name}: {r.licence or '<License>'}, {r.installed or '<version>'} tested"
                for r in rows
                if r.name in missing
            ),
        ]
    else:
        out += ["", "openstack/requirements already has all of them: no change is needed there."]
    out += [
        "",
        "Commit message for openstack/glance:",
        "",
        f"    Require {names} for {feature}",
        "",
        f"    <Why {feature} should work without installing {names} by hand.>",
    ]
    if missing:
        out += [
            "",
            "    Depends-On: https://review.opendev.org/c/openstack/requirements/+/<change>",
        ]
    return out
