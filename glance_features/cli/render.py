"""The human-readable report printed by the command line.

The first look leads with what the configuration requires and what is
wrong; features nothing enables are named on one line each kind, their
reasons left to ``--verbose``. Every field is escaped (cli/table.py):
nothing a report carries reaches the terminal raw.
"""

from __future__ import annotations

import textwrap
from collections.abc import Collection

from glance_features.cli.table import render as table
from glance_features.cli.table import safe
from glance_features.glance import package_label
from glance_features.model import (
    Code,
    Details,
    FeatureResult,
    Report,
    Status,
    object_of,
    text_of,
)

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


def shown_in_full(result: FeatureResult) -> bool:
    """Whether the first look gives a feature its row: required, or something
    is wrong with it (degraded, or the probe failed)."""
    return result.required or result.status in (Status.DEGRADED, Status.UNKNOWN)


def render_text(
    report: Report,
    *,
    config_note: str,
    colour: bool,
    verbose: bool = False,
    asked: Collection[str] = (),
    width: int | None = None,
) -> str:
    """The text report. ``asked`` (the features named with ``--feature``) and
    ``verbose`` get a row each whatever their verdict; ``width`` wraps the
    reasons (never the fix steps, which are copied as they are)."""
    glance = report.glance
    lines = [
        _header(report),
        f"glance: {_glance(glance)}; checked as: {safe(report.checked_as or 'this process')}",
        config_note,
        "",
    ]
    full = [
        name for name, result in report.items() if verbose or name in asked or shown_in_full(result)
    ]
    if not verbose:
        # What the configuration requires first, then what is wrong elsewhere;
        # --verbose keeps the report's own order, as it always printed.
        full.sort(key=lambda name: not report[name].required)
    if full:
        lines += _table(report, full, colour, width)
    else:
        lines.append("The configuration requires none of the features, and none has a problem.")
    rest = [name for name in report if name not in full]
    working = [n for n in rest if report[n].available]
    idle = [n for n in rest if not report[n].available]
    if rest:
        lines.append("")
    if working:
        lines += _wrapped("works here, not enabled: ", working, "", width)
    if idle:
        lines += _wrapped("not enabled here: ", idle, " (--verbose for reasons)", width)
    lines += ["", f"result: {int(report.code)} ({_VERDICT[report.code]})"]
    return "\n".join(lines) + "\n"


def _table(report: Report, names: list[str], colour: bool, width: int | None) -> list[str]:
    rows = [("FEATURE", "STATUS", "REQUIRED", "REASON")]
    rows += [
        (name, report[name].status.value, "yes" if report[name].required else "no", "R")
        for name in names
    ]
    # The first three columns padded as the table pads them; the reason after
    # (in place of the one-letter stand-in).
    prefix = table(rows)
    indent = len(prefix[0]) - len("REASON")
    lines = [prefix[0]]
    for name, line in zip(names, prefix[1:], strict=True):
        result = report[name]
        start = line[:-1]
        reason = safe(result.reason)
        if colour:
            status = result.status.value
            start = start.replace(status, _COLOURS[result.status] + status + _RESET, 1)
        if width is None:
            lines.append((start + reason).rstrip())
        elif width - indent >= 30:
            parts = textwrap.wrap(reason, width - indent, break_on_hyphens=False) or [""]
            lines.append((start + parts[0]).rstrip())
            lines.extend(" " * indent + part for part in parts[1:])
        else:
            # Too narrow for a reason column: the reason goes under its row.
            lines.append(start.rstrip())
            lines += textwrap.wrap(
                reason,
                width,
                initial_indent="  ",
                subsequent_indent="  ",
                break_on_hyphens=False,
            )
        if result.status is not Status.AVAILABLE:
            # Every step is escaped: a config value cannot forge a second line.
            lines.extend(f"    $ {safe(step)}" for step in result.remediation)
    return lines


def _wrapped(lead: str, names: list[str], tail: str, width: int | None) -> list[str]:
    text = lead + ", ".join(safe(n) for n in names) + tail
    if width is None:
        return [text]
    return textwrap.wrap(
        text, width, subsequent_indent="    ", break_on_hyphens=False, break_long_words=False
    )


def _glance(glance: Details | None) -> str:
    """``30.0.0 (Debian 2:30.0.0-3+deb13u5)``: the release, and the package judged."""
    if not glance:
        return "not installed here"
    return safe(f"{glance.get('version')}{package_label(glance)}")


def _header(report: Report) -> str:
    host = report.host
    distro = object_of(host.get("distro"))
    named = [text_of(distro.get("id")), text_of(distro.get("version"))]
    system = " ".join(filter(None, named)) or host.get("os")
    return safe(
        f"glance-features {report.glance_features_version} on {host.get('hostname')} "
        f"({system}, kernel {host.get('kernel')}, Python {host.get('python')})"
    )
