"""One table for a fleet: reports from many hosts, failing hosts first; and
the adoption of each feature across census files and reports."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypedDict

from glance_features._platform.files import ReadError, read_text
from glance_features.model import Report

if TYPE_CHECKING:
    from packaging.version import Version

    from glance_features.census import Census

# A report is a few KiB; an Ansible fact cache of a big host a few MiB.
MAX_BYTES = 32 << 20

_SHORT = {"available": "ok", "degraded": "DEGR", "unavailable": "MISSING", "unknown": "UNKN"}


# What `summarize --format json` prints: per host its features, the failing
# ones, and the adoption counts.
class HostFeature(TypedDict):
    status: str
    required: bool
    code: int


class HostRow(TypedDict):
    code: int
    features: dict[str, HostFeature]


class Count(TypedDict):
    enabled: int
    working: int


class DependencyCount(TypedDict):
    deployments: int
    from_distribution: int


class FeatureCounts(TypedDict):
    reported: int
    enabled: int
    working: int
    by_release: dict[str, Count]
    by_distro: dict[str, Count]
    # distribution name -> its version -> how many deployments use it
    dependencies: dict[str, dict[str, DependencyCount]]


class AdoptionDict(TypedDict):
    deployments: int
    duplicates: int
    releases: dict[str, int]
    distros: dict[str, int]
    features: dict[str, FeatureCounts]


class FleetDict(TypedDict):
    code: int
    hosts: dict[str, HostRow]
    failing: dict[str, list[str]]
    adoption: AdoptionDict
    warnings: list[str]


@dataclass
class Fleet:
    reports: dict[str, Report] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Census documents read as such, by id (or by file when they have none).
    censuses: dict[str, Census] = field(default_factory=dict)
    duplicates: int = 0

    def deployments(self) -> list[Census]:
        """One census per deployment: those read, then each report's own."""
        from glance_features.census import census_of

        found = list(self.censuses.values())
        found += [census_of(report) for _, report in sorted(self.reports.items())]
        return found

    def adoption(self) -> Adoption:
        return Adoption.of(self.deployments(), self.duplicates)

    @property
    def features(self) -> list[str]:
        return sorted({name for report in self.reports.values() for name in report})

    @property
    def code(self) -> int:
        return max((int(r.code) for r in self.reports.values()), default=0)

    def failing(self) -> dict[str, list[str]]:
        """Feature -> hosts where it is required and not available (or degraded)."""
        found: dict[str, list[str]] = {}
        for host, report in self.reports.items():
            for name, result in report.items():
                if result.code:
                    found.setdefault(name, []).append(host)
        return {name: sorted(hosts) for name, hosts in sorted(found.items())}

    def ordered_hosts(self) -> list[str]:
        return sorted(self.reports, key=lambda h: (-int(self.reports[h].code), h))

    def to_dict(self) -> FleetDict:
        return {
            "code": self.code,
            "hosts": {
                host: {
                    "code": int(self.reports[host].code),
                    "features": {
                        n: {"status": r.status.value, "required": r.required, "code": int(r.code)}
                        for n, r in self.reports[host].items()
                    },
                }
                for host in self.ordered_hosts()
            },
            "failing": self.failing(),
            "adoption": self.adoption().to_dict(),
            "warnings": self.warnings,
        }

    def to_markdown(self) -> str:
        # Only the adoption: the host table names hosts, and Markdown is for
        # pasting into an etherpad or a review.
        return self.adoption().to_markdown()

    def to_text(self) -> str:
        adoption = self.adoption().to_text()
        if not self.reports:
            return adoption
        return self.hosts_text() + "\n" + adoption

    def hosts_text(self) -> str:
        # Host and feature names come from files anyone may have written:
        # every one is escaped before it reaches a terminal.
        from glance_features.cli.table import safe

        features = self.features
        rows = [["HOST", *(safe(f) for f in features)]]
        for host in self.ordered_hosts():
            report = self.reports[host]
            cells = []
            for name in features:
                result = report.get(name)
                cell = "-" if result is None else _SHORT[result.status.value]
                cells.append(cell + ("*" if result is not None and result.required else ""))
            rows.append([safe(host), *cells])
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
        ]
        lines.append("")
        lines.append(f"{len(self.reports)} hosts; * = required")
        for name, hosts in self.failing().items():
            shown = ", ".join(safe(h) for h in hosts[:20]) + (
                f" and {len(hosts) - 20} more" if len(hosts) > 20 else ""
            )
            lines.append(
                f"{safe(name)}: required but not fully working on {len(hosts)} hosts: {shown}"
            )
        return "\n".join(lines) + "\n"


def collect(paths: Iterable[str]) -> Fleet:
    """Read report files, directories of them, and Ansible fact-cache files."""
    fleet = Fleet()
    for path in _files(paths, fleet):
        try:
            # A regular file, bounded: a FIFO, /dev/zero or a huge file is one
            # warning, never a hang or a MemoryError.
            data: object = json.loads(read_text(path, MAX_BYTES))
        except ReadError as exc:
            fleet.warnings.append(f"{exc.strerror}")
            continue
        except (ValueError, RecursionError) as exc:
            # RecursionError: JSON nested deeper than the parser's stack.
            fleet.warnings.append(f"{path}: not readable JSON ({_short(exc)})")
            continue
        data = _cached_payload(data)
        if isinstance(data, dict) and "census_version" in data:
            _add_census(fleet, data, path)
            continue
        report_data, ansible_host = _unwrap(data, path)
        if report_data is None:
            fleet.warnings.append(f"{path}: not a glance-features report")
            continue
        try:
            report = Report.from_dict(report_data)
        except ValueError as exc:
            fleet.warnings.append(f"{path}: not a valid glance-features report ({exc})")
            continue
        host = ansible_host or str(report.host.get("hostname") or os.path.basename(path))
        if host in fleet.reports:
            fleet.warnings.append(f"{path}: a second report for host {host}; keeping the newer")
            if fleet.reports[host].generated_at > report.generated_at:
                continue
        fleet.reports[host] = report
    return fleet


def _add_census(fleet: Fleet, data: Mapping[str, object], path: str) -> None:
    from glance_features.census import CensusError, validate

    try:
        census = validate(data)
    except CensusError as exc:
        fleet.warnings.append(f"{path}: not a valid glance-features census ({exc})")
        return
    key = census.get("id") or f"file:{os.path.realpath(path)}"
    if key in fleet.censuses:
        fleet.duplicates += 1  # the same submission again: counted once
        return
    fleet.censuses[key] = census


def _files(paths: Iterable[str], fleet: Fleet) -> Iterator[str]:
    """The files to read; what cannot be listed is a warning. Anything that is
    not a directory is yielded, so reading it says what is wrong with it (a
    FIFO, a device, a symbolic link loop)."""
    for path in paths:
        if not os.path.isdir(path):
            yield path
            continue
        try:
            with os.scandir(path) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            fleet.warnings.append(f"{path}: {exc.strerror}")
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    continue  # not recursive: fact caches are flat
            except OSError:
                pass  # a link loop: reading it says so
            yield entry.path


def _cached_payload(data: object) -> object:
    # ansible-core 2.19's jsonfile cache wraps the facts in a JSON string.
    payload = data.get("__payload__") if isinstance(data, dict) else None
    if isinstance(payload, str):
        try:
            found: object = json.loads(payload)
        except ValueError:
            return None
        return found
    return data


def _unwrap(data: object, path: str) -> tuple[object, str | None]:
    """The report inside ``data``: as is, or in an Ansible fact cache
    (``ansible_local.glance_features``, the jsonfile cache names the file
    after the host)."""
    if isinstance(data, dict) and "schema_version" in data:
        return data, None
    if isinstance(data, dict):
        # Fact caches keep the "ansible_" prefix or not, depending on version.
        local = data.get("ansible_local", data.get("local"))
        report = local.get("glance_features") if isinstance(local, dict) else None
        if isinstance(report, dict):
            # The jsonfile cache names each file after the inventory host
            # (ansible-core 2.19 adds an "s1_" format prefix).
            name = re.sub(r"^s\d+_", "", os.path.basename(path))
            return report, name
    return None, None


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def _release(census: Census) -> str:
    glance = census["glance"]
    if glance is None:
        return "no glance"
    return glance["release"] or "unknown"


def _distro(census: Census) -> str:
    distro = census["distro"]
    if distro["id"] in (None, "other"):
        return f"other {distro['family']}" if distro["family"] else "unknown"
    return " ".join(filter(None, [distro["id"], distro["version"]]))


def _version_key(text: str) -> tuple[int, Version | None, str]:
    from packaging.version import InvalidVersion, Version

    try:
        return (0, Version(text), text)
    except InvalidVersion:
        return (1, None, text)


def _sorted_releases(names: Iterable[str]) -> list[str]:
    return sorted(names, key=lambda n: (_version_key(n)[0], _version_key(n)[1] or 0, n))


@dataclass
class Adoption:
    """Counts over deployments: per feature, how many enable it, how many of
    those work, which dependency versions they use, by release and distro."""

    deployments: int
    duplicates: int
    releases: dict[str, int]
    distros: dict[str, int]
    features: dict[str, FeatureCounts]

    @classmethod
    def of(cls, censuses: list[Census], duplicates: int = 0) -> Adoption:
        releases: dict[str, int] = {}
        distros: dict[str, int] = {}
        features: dict[str, FeatureCounts] = {}
        for census in censuses:
            release, distro = _release(census), _distro(census)
            releases[release] = releases.get(release, 0) + 1
            distros[distro] = distros.get(distro, 0) + 1
            for name, feature in census["features"].items():
                counts = features.setdefault(
                    name,
                    {
                        "reported": 0,
                        "enabled": 0,
                        "working": 0,
                        "by_release": {},
                        "by_distro": {},
                        "dependencies": {},
                    },
                )
                counts["reported"] += 1
                if not feature["enabled"]:
                    continue
                working = int(feature["working"])
                counts["enabled"] += 1
                counts["working"] += working
                for key, group in ((release, counts["by_release"]), (distro, counts["by_distro"])):
                    cell = group.setdefault(key, {"enabled": 0, "working": 0})
                    cell["enabled"] += 1
                    cell["working"] += working
                for dist in feature["provided_by"]:
                    versions = counts["dependencies"].setdefault(dist["name"], {})
                    used = versions.setdefault(
                        dist["version"], {"deployments": 0, "from_distribution": 0}
                    )
                    used["deployments"] += 1
                    used["from_distribution"] += int(dist["source"] == "distribution")
        for counts in features.values():
            counts["by_release"] = {
                k: counts["by_release"][k] for k in _sorted_releases(counts["by_release"])
            }
            counts["by_distro"] = dict(sorted(counts["by_distro"].items()))
            counts["dependencies"] = {
                name: {v: versions[v] for v in sorted(versions, key=_version_key, reverse=True)}
                for name, versions in sorted(counts["dependencies"].items())
            }
        return cls(
            deployments=len(censuses),
            duplicates=duplicates,
            releases={k: releases[k] for k in _sorted_releases(releases)},
            distros=dict(sorted(distros.items())),
            features=dict(
                sorted(features.items(), key=lambda item: (-item[1]["enabled"], item[0]))
            ),
        )

    def to_dict(self) -> AdoptionDict:
        return {
            "deployments": self.deployments,
            "duplicates": self.duplicates,
            "releases": self.releases,
            "distros": self.distros,
            "features": self.features,
        }

    def _tables(self) -> list[tuple[str, list[list[str]]]]:
        total = self.deployments
        main = [
            ["FEATURE", "ENABLED", "WORKING", "DEPENDENCIES IN USE (from distribution packages)"]
        ]
        for name, counts in self.features.items():
            deps = [
                f"{dist} {version} x{cell['deployments']} ({cell['from_distribution']})"
                for dist, versions in counts["dependencies"].items()
                for version, cell in versions.items()
            ]
            main.append(
                [
                    name,
                    f"{counts['enabled']}/{total}",
                    f"{counts['working']}/{counts['enabled']}" if counts["enabled"] else "-",
                    ", ".join(deps) or "-",
                ]
            )
        tables = [("", main)]
        groups: tuple[tuple[str, Literal["by_release", "by_distro"], dict[str, int]], ...] = (
            ("by Glance release", "by_release", self.releases),
            ("by distribution", "by_distro", self.distros),
        )
        for title, group, columns in groups:
            rows = [
                [f"ENABLED (WORKING) {title.upper()}", *columns],
                ["deployments", *(str(n) for n in columns.values())],
            ]
            for name, counts in self.features.items():
                if not counts["enabled"]:
                    continue  # the main table says 0 already
                cells = []
                for key in columns:
                    cell = counts[group].get(key)
                    cells.append("-" if cell is None else f"{cell['enabled']} ({cell['working']})")
                rows.append([name, *cells])
            tables.append((title, rows))
        return tables

    def _heading(self) -> str:
        plural = "s" if self.duplicates != 1 else ""
        again = (
            f"; {self.duplicates} repeated submission{plural} counted once"
            if self.duplicates
            else ""
        )
        return f"Adoption across {self.deployments} deployments{again}"

    def to_text(self) -> str:
        from glance_features.cli.table import render

        lines = [self._heading(), ""]
        for i, (_, rows) in enumerate(self._tables()):
            if i:
                lines.append("")
            lines += render(rows, last_free=i == 0)
        return "\n".join(lines) + "\n"

    def to_markdown(self) -> str:
        from glance_features.cli.table import safe

        def cell(text: str) -> str:
            return safe(text).replace("\\", "\\\\").replace("|", "\\|")

        lines = [f"### {self._heading()}"]
        for title, rows in self._tables():
            lines.append("")
            if title:
                lines += [f"#### {title.capitalize()}", ""]
            lines.append("| " + " | ".join(cell(c) for c in rows[0]) + " |")
            align = ["---", *(["---:"] * (len(rows[0]) - 1))]
            if not title:
                align[-1] = "---"  # the dependencies: text, not a count
            lines.append("|" + "|".join(align) + "|")
            lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows[1:]]
        return "\n".join(lines) + "\n"
