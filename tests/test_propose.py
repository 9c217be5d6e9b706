"""requirements --propose against copies of OpenStack's real requirements files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import importlib_metadata
from conftest import need, run_cli
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from glance_features import registry

DATA = Path(__file__).resolve().parent / "data"
GR = DATA / "global-requirements.txt"
UC = DATA / "upper-constraints.txt"


def installed(name: str) -> str | None:
    try:
        return str(importlib_metadata.version(name))
    except importlib_metadata.PackageNotFoundError:
        return None


def metadata_licence(name: str) -> str:
    metadata = importlib_metadata.distribution(name).metadata
    return str(metadata.get("License-Expression") or metadata.get("License")).strip()


def line_of(path: Path, name: str) -> int | None:
    """Where ``path`` names distribution ``name``, read independently of the code."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if text and canonicalize_name(Requirement(text).name) == canonicalize_name(name):
            return number
    return None


def parsed(line: str) -> tuple[Requirement, str]:
    requirement, _, comment = line.partition("#")
    return Requirement(requirement.strip()), comment.strip()


def propose(feature: str, *files: str) -> tuple[str, dict[str, Any]]:
    text = run_cli("requirements", "--propose", feature, *files)
    assert text.returncode == 0, text.stderr
    data = run_cli("requirements", "--propose", feature, "--format", "json", *files)
    assert data.returncode == 0, data.stderr
    return text.stdout, json.loads(data.stdout)


def files(gr: Path, uc: Path) -> tuple[str, ...]:
    return ("--global-requirements", str(gr), "--constraints", str(uc))


def test_present_in_both_files_says_where() -> None:
    gr_line, uc_line = line_of(GR, "xattr"), line_of(UC, "xattr")
    assert gr_line is not None and uc_line is not None  # the copies have it
    text, data = propose("xattr", *files(GR, UC))
    assert f"already there, {GR}:{gr_line}: xattr;sys_platform!='win32'  # MIT" in text
    assert f"already there, {UC}:{uc_line}: xattr===" in text
    (row,) = data["requirements"]
    assert row["global_requirements"]["present"]["source"] == f"{GR}:{gr_line}"
    assert row["upper_constraints"]["present"]["source"] == f"{UC}:{uc_line}"
    # Nothing to change in openstack/requirements: no Depends-On.
    assert "Depends-On:" not in text and "no change is needed there" in text
    # Glance's line: no minimum above the gate's pin.
    (pinned,) = parsed(UC.read_text().splitlines()[uc_line - 1])[0].specifier
    pin = Version(pinned.version)
    glance_line = next(
        line.strip() for line in text.splitlines() if line.strip().startswith("xattr>=")
    )
    requirement, licence = parsed(glance_line)
    (minimum,) = requirement.specifier
    assert Version(minimum.version) <= pin and licence == "MIT"


def without(path: Path, name: str, tmp_path: Path) -> Path:
    lines = path.read_text().splitlines(keepends=True)
    number = line_of(path, name)
    assert number is not None
    copy = tmp_path / path.name
    copy.write_text("".join(lines[: number - 1] + lines[number:]))
    assert line_of(copy, name) is None
    return copy


def test_absent_from_both_files_gives_the_lines_in_their_form(tmp_path: Path) -> None:
    version = installed("xattr")
    need(version is not None, "xattr is not installed")
    assert version is not None
    gr, uc = without(GR, "xattr", tmp_path), without(UC, "xattr", tmp_path)
    text, data = propose("xattr", *files(gr, uc))
    lines = [line.strip() for line in text.splitlines()]
    (catalogued,) = registry.catalog()["xattr"].python
    expected_marker = Requirement(catalogued).marker
    # global-requirements.txt: its own form, two spaces before the licence.
    gr_line = next(line for line in lines if line.startswith("xattr;"))
    requirement, licence = parsed(gr_line)
    assert "  # " in gr_line and licence == metadata_licence("xattr")
    assert requirement.name == "xattr" and str(requirement.specifier) == ""
    assert str(requirement.marker) == str(expected_marker)
    # upper-constraints.txt: name===version, as installed.
    uc_line = next(line for line in lines if line.startswith("xattr==="))
    assert str(Requirement(uc_line).specifier) == f"==={version}"
    # Glance's requirements.txt: a minimum and the licence after one space.
    glance_line = next(line for line in lines if line.startswith("xattr>="))
    requirement, licence = parsed(glance_line)
    assert " # " in glance_line and licence == metadata_licence("xattr")
    assert requirement.specifier.contains(version)
    assert text.rstrip().endswith(
        "Depends-On: https://review.opendev.org/c/openstack/requirements/+/<change>"
    )
    (row,) = data["requirements"]
    assert row["global_requirements"]["present"] is None
    assert row["global_requirements"]["line"] == gr_line
    assert row["upper_constraints"]["line"] == uc_line


def test_a_distribution_openstack_does_not_carry(tmp_path: Path) -> None:
    version = installed("pydevd")
    need(version is not None, "pydevd is not installed")
    assert line_of(GR, "pydevd") is None and line_of(UC, "pydevd") is None
    text, _ = propose("pydev", *files(GR, UC))
    lines = [line.strip() for line in text.splitlines()]
    assert "# pydevd: add to '## section:general'" in lines
    gr_line = lines[lines.index("# pydevd: add to '## section:general'") + 1]
    requirement, licence = parsed(gr_line)
    assert requirement.name == "pydevd" and licence == metadata_licence("pydevd")
    assert f"pydevd==={version}" in lines
    assert "Add pydevd for Glance's pydev" in text and "Depends-On: " in text


def test_several_distributions_some_present(tmp_path: Path) -> None:
    need(installed("os-brick") is None, "os-brick is installed: the licence would be its own")
    gr = without(GR, "python-cinderclient", tmp_path)
    uc = without(UC, "os-brick", tmp_path)
    text, data = propose("store-cinder", *files(gr, uc))
    rows = {r["name"]: r for r in data["requirements"]}
    assert set(rows) == {Requirement(t).name for t in registry.catalog()["store-cinder"].python}
    assert rows["python-cinderclient"]["global_requirements"]["present"] is None
    assert rows["os-brick"]["global_requirements"]["present"]["source"] == (
        f"{gr}:{line_of(gr, 'os-brick')}"
    )
    assert rows["os-brick"]["upper_constraints"]["present"] is None
    assert rows["python-cinderclient"]["upper_constraints"]["present"]["source"] == (
        f"{uc}:{line_of(uc, 'python-cinderclient')}"
    )
    lines = [line.strip() for line in text.splitlines()]
    assert "# python-cinderclient: add to '## section:openstack-clients'" in lines
    added = lines[lines.index("# python-cinderclient: add to '## section:openstack-clients'") + 1]
    requirement, licence = parsed(added)
    # No minimum in global-requirements: the catalog's >= goes to Glance's line only.
    assert requirement.name == "python-cinderclient" and str(requirement.specifier) == ""
    assert licence == "<License>" and "# python-cinderclient is not installed here" in text
    # os-brick is not installed either: its licence is the one its line in the file has.
    glance_line = next(line for line in lines if line.startswith("os-brick>="))
    requirement, licence = parsed(glance_line)
    assert licence == "Apache-2.0" and str(requirement.specifier) == ">=6.3.0"
    assert "# os-brick===<version>" in lines
    assert "Add os-brick, python-cinderclient for Glance's store-cinder" in text


def test_without_files_and_bad_invocations(tmp_path: Path) -> None:
    text, _ = propose("pydev")
    assert "give --global-requirements FILE" in text and "give --constraints FILE" in text
    none = run_cli("requirements", "--propose", "qemu-img")
    assert none.returncode == 0 and "nothing to propose" in none.stdout
    for args in (
        ("--propose", "no-such-feature"),
        ("--propose", "xattr", "--global-requirements", str(tmp_path / "absent.txt")),
        ("--global-requirements", str(GR)),
        ("--propose", "xattr", "--format", "bindep"),
    ):
        proc = run_cli("requirements", *args)
        assert proc.returncode == 64 and proc.stderr.count("\n") == 1, (args, proc.stderr)
