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
    location, name = next(iter(sorted(owners.items())))
    found = glance.package_of(location, "Debian")
    assert found == {
        "manager": "dpkg", "name": name, "version": _status_versions()[name], "vendor": "Debian"
    }  # fmt: skip


def test_pip_installed_glance_is_no_distribution_package(tmp_path: Path) -> None:
    # This interpreter's own site-packages (a virtualenv, or a pyenv prefix) is pip's.
    site = next(p for p in sys.path if p.endswith("-packages"))
    assert glance.package_of(os.path.join(site, "glance-33.0.0.dist-info")) is None
    assert glance.package_of(None) is None
    assert glance.package_of(str(tmp_path / "glance.egg-info")) is None
