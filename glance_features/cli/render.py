"""The human-readable report printed by the command line."""

from __future__ import annotations

from glance_features.cli.table import render as table
from glance_features.cli.table import safe
from glance_features.model import Code, Report, Status

_COLOURS = {
    Status.AVAILABLE: "\033[32m",
    Status.DEGRADED: "\033[33m",
    Status.UNAVAILABLE: "\033[31m",
    Status.UNKNOWN: "\033[35m",
}
_RESET = "\033[0m"
_VERDICT = {
    Code.SUCCESS: "ok",
    Code.WARNING: "warning: a required feature is degraded",
    Code.FAILURE: "failure: a required feature is not available",
}


def render_text(report: Report, *, config_note: str, colour: bool) -> str:
    glance = report.glance
    lines = [
        _header(report),
        f"glance: {safe(glance['version']) if glance else 'not installed here'}; "
        f"checked as: {safe(report.checked_as or 'this process')}",
        config_note,
        "",
    ]
    rows = [("FEATURE", "STATUS", "REQUIRED", "REASON")]
    rows += [
        (name, r.status.value, "yes" if r.required else "no", r.reason)
        for name, r in report.items()
    ]
    for i, line in enumerate(table(rows)):
        if i == 0:
            lines.append(line)
            continue
        name = list(report)[i - 1]
        result = report[name]
        if colour:
            line = line.replace(
                result.status.value, _COLOURS[result.status] + result.status.value + _RESET, 1
            )
        lines.append(line)
        if result.status is not Status.AVAILABLE:
            # Every step is escaped: a config value cannot forge a second line.
            lines.extend(f"    $ {safe(step)}" for step in result.remediation)
    lines += ["", f"result: {int(report.code)} ({_VERDICT[report.code]})"]
    return "\n".join(lines) + "\n"


def _header(report: Report) -> str:
    host = report.host
    distro = host.get("distro") or {}
    system = " ".join(filter(None, [distro.get("id"), distro.get("version")])) or host.get("os")
    return safe(
        f"glance-features {report.glance_features_version} on {host.get('hostname')} "
        f"({system}, kernel {host.get('kernel')}, Python {host.get('python')})"
    )
