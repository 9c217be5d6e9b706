from pathlib import Path

from glance_features import __version__ as release
from glance_features.needs import NEEDS
from glance_features.remedy import FAMILY_NAMES, INSTALL_COMMAND

project = "glance-features"
author = "glance-features developers"
copyright = "2026, glance-features developers"
version = release
extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
autodoc_typehints = "none"
exclude_patterns = ["_build", "_generated"]
html_theme = "alabaster"


def _write_install_tables() -> None:
    """One table per feature from glance_features.needs, the same source the
    detectors' remediation reads, so the docs cannot drift from the code."""
    out = Path(__file__).with_name("_generated")
    out.mkdir(exist_ok=True)
    for feature, need in NEEDS.items():
        lines = []
        if need.packages:
            rows = [(FAMILY_NAMES[f], INSTALL_COMMAND[f].format(packages=p))
                    for f, p in need.packages.items()]
            width = max(len(r[0]) for r in rows)
            command_width = max(len(r[1]) for r in rows) + 4
            rule = f"{'=' * width}  {'=' * command_width}"
            lines += [rule, f"{'distribution family'.ljust(width)}  command", rule]
            lines += [f"{name.ljust(width)}  ``{command}``" for name, command in rows]
            lines += [rule, ""]
        for requirement in need.python:
            lines.append(f"* Python: ``python3 -m pip install '{requirement}'`` (the probe "
                         "prints the exact interpreter Glance runs in)")
        if not need.packages and not need.python:
            lines.append("Nothing to install: Python and the kernel provide it.")
        (out / f"{feature}.inc").write_text("\n".join(lines) + "\n")


_write_install_tables()
