"""The docs tell the truth the code holds: one page per detector, same packages."""

from __future__ import annotations

import runpy
from pathlib import Path

from glance_features import registry
from glance_features.needs import NEEDS
from glance_features.remedy import INSTALL_COMMAND
from glance_features.required import REQUIREMENTS

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_builtin_detector_has_a_page_in_the_index() -> None:
    index = (DOCS / "detectors" / "index.rst").read_text()
    for plugin in registry.plugins():
        page = DOCS / "detectors" / f"{plugin.name}.rst"
        assert page.exists(), f"no docs page for {plugin.name}"
        assert f"\n   {plugin.name}\n" in index


def test_install_tables_are_generated_from_needs_and_included() -> None:
    runpy.run_path(str(DOCS / "conf.py"))
    for feature, need in NEEDS.items():
        page = (DOCS / "detectors" / f"{feature}.rst").read_text()
        assert f".. include:: ../_generated/{feature}.inc" in page
        table = (DOCS / "_generated" / f"{feature}.inc").read_text()
        for family, package in need.packages.items():
            assert INSTALL_COMMAND[family].format(packages=package) in table
        for requirement in need.python:
            assert requirement in table


def test_requirement_table_matches_the_code() -> None:
    page = " ".join((DOCS / "service.rst").read_text().replace("``", "").split())
    for row in REQUIREMENTS:
        assert f"{row.feature} {row.when}" in page
