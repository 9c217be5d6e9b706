"""Which distribution package a Glance is: dpkg's owner of its metadata and
that package's version, on this host's real dpkg database (the Debian
chroots show it for glance itself: tests/test_debian_glance.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from conftest import need

from glance_features import glance

DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")
DPKG_INFO = Path("/var/lib/dpkg/info")


def _status_versions() -> dict[str, str]:
    """Package -> version of every installed package, from dpkg's status file."""
    versions: dict[str, str] = {}
    for stanza in Path("/var/lib/dpkg/status").read_text(errors="replace").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            versions[fields["Package"].split(":")[0]] = fields["Version"]
    return versions


def test_the_owner_of_a_dpkg_installed_distribution_and_its_version() -> None:
    need(os.access(glance.DPKG_QUERY, os.X_OK) and DIST_PACKAGES.is_dir(), "no dpkg here")
    owners = {}
    for listing in sorted(DPKG_INFO.glob("python3-*.list")):
        for line in listing.read_text(errors="replace").splitlines():
            if line.startswith(str(DIST_PACKAGES) + "/") and line.endswith(
                (".egg-info", ".dist-info")
            ):
                owners[line] = listing.name.removesuffix(".list").split(":")[0]
    need(bool(owners), "no dpkg-installed Python distribution here")
    # One whose package is named after it (python3-<name>, read from its own
    # file list) and one that is not (found by searching every list).
    named = {loc: pkg for loc, pkg in owners.items() if pkg == _debian_name(loc)}
    other = {loc: pkg for loc, pkg in owners.items() if pkg != _debian_name(loc)}
    need(bool(named) and bool(other), "dpkg has no Python distribution of each kind here")
    versions = _status_versions()
    for location, name in (min(named.items()), min(other.items())):
        found = glance.package_of(location, "Debian")
        assert found == {
            "manager": "dpkg", "name": name, "version": versions[name], "vendor": "Debian"
        }  # fmt: skip


def test_a_package_named_after_another_distribution_is_not_taken_for_its_owner() -> None:
    need(os.access(glance.DPKG_QUERY, os.X_OK) and DIST_PACKAGES.is_dir(), "no dpkg here")
    # python3-<name> is installed, but this path is not in its file list.
    listing = next(iter(sorted(DPKG_INFO.glob("python3-*.list"))), None)
    need(listing is not None, "no python3-* package here")
    assert listing is not None
    package = listing.name.removesuffix(".list").split(":")[0]
    fake = DIST_PACKAGES / (package.removeprefix("python3-") + "-0.0.0.dist-info")
    need(not fake.exists(), f"{fake} exists")
    assert glance.package_of(str(fake)) is None


def _debian_name(location: str) -> str:
    return "python3-" + os.path.basename(location).partition("-")[0].lower().replace("_", "-")


def test_pip_installed_glance_is_no_distribution_package(tmp_path: Path) -> None:
    # This interpreter's own site-packages (a virtualenv, or a pyenv prefix) is pip's.
    site = next(p for p in sys.path if p.endswith("-packages"))
    assert glance.package_of(os.path.join(site, "glance-33.0.0.dist-info")) is None
    assert glance.package_of(None) is None
    assert glance.package_of(str(tmp_path / "glance.egg-info")) is None
