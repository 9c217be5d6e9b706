from pathlib import Path

from glance_features import __version__ as release
from glance_features import registry
from glance_features.remediation import FAMILY_NAMES, INSTALL_COMMAND

project = "glance-features"
author = "glance-features developers"
copyright = "2026, glance-features developers"
version = release
extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
autodoc_typehints = "none"
exclude_patterns = ["_build", "_generated"]
html_theme = "alabaster"

GENERATED = Path(__file__).with_name("_generated")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """A reStructuredText simple table, columns as wide as their widest cell."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    lines = [
        rule,
        "  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip(),
        rule,
    ]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return [*lines, rule, ""]


def _write_install_tables() -> None:
    """One table per feature from its detector's catalog entry, the same entry
    the detectors' remediation and ``explain`` read, so the docs cannot drift
    from the code."""
    for feature, entry in registry.catalog().items():
        lines = []
        if entry.packages:
            rows = [
                (FAMILY_NAMES[f], f"``{INSTALL_COMMAND[f].format(packages=p)}``")
                for f, p in entry.packages.items()
            ]
            lines += _table(("distribution family", "command"), rows)
        for requirement in entry.python:
            lines.append(
                f"* Python: ``python3 -m pip install '{requirement}'`` (the probe "
                "prints the exact interpreter Glance runs in)"
            )
        if not entry.packages and not entry.python:
            lines.append("Nothing to install: Python and the kernel provide it.")
        (GENERATED / f"{feature}.inc").write_text("\n".join(lines) + "\n")


def _write_requirement_table() -> None:
    """What makes each feature required, and which Glance releases use it,
    from the catalog entries ``check_startup`` and the command line read."""
    rows = []
    for feature, entry in registry.catalog().items():
        glance = entry.glance
        releases = "all" if glance is None or not glance.versions else glance.versions
        for row in entry.required_when or ():
            rows.append((f"``{feature}``", row.when, releases))
        if not entry.required_when:
            rows.append((f"``{feature}``", "only when asked for (``--require``)", releases))
    table = _table(("feature", "required when", "Glance releases using it"), rows)
    (GENERATED / "requirements.inc").write_text("\n".join(table) + "\n")


GENERATED.mkdir(exist_ok=True)
_write_install_tables()
_write_requirement_table()
