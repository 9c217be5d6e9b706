"""One table for a fleet: reports from many hosts, failing hosts first."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from glance_features._platform.files import ReadError, read_text
from glance_features.model import Report

# A report is a few KiB; an Ansible fact cache of a big host a few MiB.
MAX_BYTES = 32 << 20

_SHORT = {"available": "ok", "degraded": "DEGR", "unavailable": "MISSING", "unknown": "UNKN"}


@dataclass
class Fleet:
    reports: dict[str, Report] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

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

    def to_dict(self) -> dict[str, Any]:
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
            "warnings": self.warnings,
        }

    def to_text(self) -> str:
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
            data = json.loads(read_text(path, MAX_BYTES))
        except ReadError as exc:
            fleet.warnings.append(f"{exc.strerror}")
            continue
        except (ValueError, RecursionError) as exc:
            # RecursionError: JSON nested deeper than the parser's stack.
            fleet.warnings.append(f"{path}: not readable JSON ({_short(exc)})")
            continue
        report_data, ansible_host = _unwrap(_cached_payload(data), path)
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


def _cached_payload(data: Any) -> Any:
    # ansible-core 2.19's jsonfile cache wraps the facts in a JSON string.
    if isinstance(data, dict) and isinstance(data.get("__payload__"), str):
        try:
            return json.loads(data["__payload__"])
        except ValueError:
            return None
    return data


def _unwrap(data: Any, path: str) -> tuple[Any, str | None]:
    """The report inside ``data``: as is, or in an Ansible fact cache
    (``ansible_local.glance_features``, the jsonfile cache names the file
    after the host)."""
    if isinstance(data, dict) and "schema_version" in data:
        return data, None
    if isinstance(data, dict):
        # Fact caches keep the "ansible_" prefix or not, depending on version.
        local = data.get("ansible_local", data.get("local"))
        if isinstance(local, dict) and isinstance(local.get("glance_features"), dict):
            # The jsonfile cache names each file after the inventory host
            # (ansible-core 2.19 adds an "s1_" format prefix).
            name = re.sub(r"^s\d+_", "", os.path.basename(path))
            return local["glance_features"], name
    return None, None


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
