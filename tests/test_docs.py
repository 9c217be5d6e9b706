"""The docs tell the truth the code holds: one page per detector, same packages."""

from __future__ import annotations

import runpy
from pathlib import Path

from glance_features import registry
from glance_features.cli.main import build_parser
from glance_features.remediation import INSTALL_COMMAND

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_builtin_detector_has_a_page_in_the_index() -> None:
    index = (DOCS / "detectors" / "index.rst").read_text()
    for plugin in registry.plugins():
        page = DOCS / "detectors" / f"{plugin.name}.rst"
        assert page.exists(), f"no docs page for {plugin.name}"
        assert f"\n   {plugin.name}\n" in index


def test_install_tables_are_generated_from_the_catalog_and_included() -> None:
    runpy.run_path(str(DOCS / "conf.py"))
    catalog = registry.catalog()
    assert sorted(catalog) == sorted(p.name for p in registry.plugins())
    for feature, entry in catalog.items():
        page = (DOCS / "detectors" / f"{feature}.rst").read_text()
        assert f".. include:: ../_generated/{feature}.inc" in page
        table = (DOCS / "_generated" / f"{feature}.inc").read_text()
        for family, package in entry.packages.items():
            assert INSTALL_COMMAND[family].format(packages=package) in table
        for requirement in entry.python:
            assert requirement in table


def test_requirement_table_is_generated_from_the_catalog_and_included() -> None:
    runpy.run_path(str(DOCS / "conf.py"))
    assert ".. include:: _generated/requirements.inc" in (DOCS / "service.rst").read_text()
    table = (DOCS / "_generated" / "requirements.inc").read_text()
    lines = [" ".join(line.replace("``", "").split()) for line in table.splitlines()]
    for feature, entry in registry.catalog().items():
        releases = entry.glance.versions if entry.glance and entry.glance.versions else "all"
        for row in entry.required_when:
            assert f"{feature} {row.when} {releases}" in lines
        if not entry.required_when:
            assert any(line.startswith(f"{feature} only when asked for") for line in lines)


def test_every_command_line_option_is_documented() -> None:
    usage = (DOCS / "usage.rst").read_text()
    for action in build_parser()._actions:
        for option in action.option_strings:
            if option.startswith("--") and option != "--help":
                assert f"``{option}" in usage, f"{option} is not in docs/usage.rst"
