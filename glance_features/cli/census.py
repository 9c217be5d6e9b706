"""``glance-features census``: the anonymous document of what this deployment
enables and what provides it, printed exactly as it would be shared."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Protocol

from glance_features.cli import table

if TYPE_CHECKING:
    from glance_features.census import Census
    from glance_features.deployment import Deployment
    from glance_features.model import Report


class Subcommands(Protocol):
    """What ``ArgumentParser.add_subparsers()`` returns, as far as a
    subcommand's ``add_parser`` uses it."""

    def add_parser(self, name: str, *, help: str, description: str) -> argparse.ArgumentParser: ...


def add_parser(commands: Subcommands) -> argparse.ArgumentParser:
    """The subcommand's parser; the caller adds the config and user options
    every command shares."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "census",
        help="an anonymous record of the features this deployment enables, safe to share",
        description="Probe, then print only what is safe to share: the Glance release and "
        "how it is served, the distribution and Python version, and per feature whether it "
        "is enabled, whether it works, and which distributions provide it (version, and "
        "whether from a distribution package or pip). No host names, addresses, paths, "
        "accounts, option values or reasons. Exit status 0 whatever the verdicts.",
    )
    parser.add_argument(
        "--feature", action="append", metavar="NAME", help="only these features (repeatable)"
    )
    parser.add_argument(
        "--format",
        choices=("json", "text"),
        default="json",
        help="json: the census itself; text: the same values, to read before sharing",
    )
    parser.add_argument(
        "--id",
        action="store_true",
        help="add a random census id, so repeated submissions are counted once",
    )
    parser.add_argument("--output", metavar="FILE", help="write to FILE atomically")
    return parser


def render(args: argparse.Namespace, report: Report, deployment: Deployment) -> str:
    """The census of ``report``, with the versions the service's interpreter has."""
    from glance_features import census

    document = census.census_of(
        report,
        lookup=census.service_lookup(deployment.python),
        census_id=census.new_id() if args.id else None,
    )
    return census.to_json(document) if args.format == "json" else to_text(document)


def to_text(census: Census) -> str:
    """Every value the JSON carries, one per line, for the operator to read
    before sharing it. Values are escaped, as every text field is."""
    glance = census.get("glance")
    distro = census["distro"]
    lines = ["This census is all that would be shared (--format json gives it as data):", ""]
    if "id" in census:
        lines.append(f"census id: {table.safe(census['id'])}")
    if glance is None:
        lines.append("glance: not installed")
    else:
        lines.append(
            f"glance: {table.safe(glance['release'] or 'unknown release')}, served by "
            f"{table.safe(glance['served_by'] or 'unknown')}"
        )
    release = f"{distro['id'] or 'unknown'} {distro['version'] or ''}".rstrip()
    family = distro["family"] or "unknown"
    lines.append(f"distribution: {table.safe(release)} (family {table.safe(family)})")
    lines.append(f"python: {table.safe(census['python'] or 'unknown')}")
    lines.append("")
    rows = [("FEATURE", "ENABLED", "WORKING", "STATUS", "PROVIDED BY")]
    for name, feature in census["features"].items():
        provided = ", ".join(
            f"{p['name']} {p['version']} ({p['source']})" for p in feature["provided_by"]
        )
        rows.append(
            (
                name,
                "yes" if feature["enabled"] else "no",
                "yes" if feature["working"] else "no",
                feature["status"],
                provided or "-",
            )
        )
    lines += table.render(rows)
    return "\n".join(lines) + "\n"
