"""The human-readable table printed by the command line."""

from __future__ import annotations

from glance_features.model import Code, Report, Status
from glance_features.settings import default_search_paths

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


def render_text(report: Report, *, explicit_config: bool, colour: bool) -> str:
    lines = [_header(report), _config_line(report, explicit_config), ""]
    rows = [("FEATURE", "STATUS", "REQUIRED", "REASON")]
    rows += [
        (name, r.status.value, "yes" if r.required else "no", _one_line(r.reason))
        for name, r in report.items()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for i, row in enumerate(rows):
        status = row[1].ljust(widths[1])
        if colour and i > 0:
            status = f"{_COLOURS[Status(row[1])]}{status}{_RESET}"
        lines.append(
            f"{row[0].ljust(widths[0])}  {status}  {row[2].ljust(widths[2])}  {row[3]}".rstrip()
        )
        if i == 0:
            continue
        result = report[row[0]]
        if result.status is not Status.AVAILABLE:
            lines.extend(
                f"    $ {step}" if _is_command(step) else f"    - {step}"
                for step in result.remediation
            )
    lines += ["", f"result: {int(report.code)} ({_VERDICT[report.code]})"]
    return "\n".join(lines) + "\n"


def _header(report: Report) -> str:
    host = report.host
    distro = host.get("distro") or {}
    system = " ".join(filter(None, [distro.get("id"), distro.get("version")])) or host.get("os")
    return (
        f"glance-features {report.glance_features_version} on {host.get('hostname')} "
        f"({system}, kernel {host.get('kernel')}, Python {host.get('python')})"
    )


def _config_line(report: Report, explicit: bool) -> str:
    if report.config_files:
        return "config: read " + ", ".join(report.config_files)
    if explicit:
        return "config: no files given"
    return "config: none found (looked for " + ", ".join(default_search_paths()) + ")"


def _one_line(text: str) -> str:
    # Reasons can quote a broken binary's output or a plugin's text: never let
    # them move the cursor or recolour the operator's terminal.
    printable = "".join(
        c if c.isprintable() else f"\\x{ord(c):02x}" for c in " ".join(text.split())
    )
    return printable


def _is_command(step: str) -> bool:
    # Remediation mixes commands and advice; commands are shown as prompts
    # so an operator can tell what to paste.
    return step.split(" ", 1)[0] in {
        "apt-get",
        "dnf",
        "yum",
        "zypper",
        "pacman",
        "apk",
        "brew",
        "pip",
        "python3",
        "export",
        "mount",
        "sudo",
        "chmod",
        "chown",
        "setfattr",
        "systemctl",
    }
