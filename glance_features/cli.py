"""``python -m glance_features`` and ``glance-features``: the operator's view."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence

from glance_features._version import __version__

TYPE_CHECKING = False  # typing itself would cost every run; see __init__
if TYPE_CHECKING:
    from typing import NoReturn, TextIO

    from glance_features.requirements import Row
    from glance_features.settings import Settings

EXIT_USAGE = 64  # sysexits.h EX_USAGE: bad invocation or unreadable input
EXIT_INTERNAL = 255
PROG = "glance-features"


class UsageError(Exception):
    """Bad invocation or input: one line on stderr, exit 64."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Report which of Glance's advanced features work on this host.",
        epilog="Exit status: 0 ok, 1 warning, 2 a required feature is missing, "
        "64 bad invocation or input, 255 internal error.",
    )
    _add_config_options(parser)
    parser.add_argument(
        "--format",
        choices=("text", "json", "prometheus"),
        default="text",
        help="output format (default: text)",
    )
    parser.add_argument(
        "--feature", action="append", metavar="NAME", help="probe only this feature (repeatable)"
    )
    parser.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="NAME",
        help="treat this feature as required (repeatable)",
    )
    parser.add_argument("--deep", action="store_true", help="also run the slower functional checks")
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=None,
        metavar="SECONDS",
        help="bound on the whole probe (default: 10)",
    )
    parser.add_argument(
        "--list", action="store_true", help="list the registered detectors and exit"
    )
    parser.add_argument(
        "--output",
        metavar="FILE",
        help="write to FILE atomically (temporary file, fsync, rename) instead of stdout",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else list(argv))
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # A closed pipe (| head) is the reader's choice, not our failure.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


def build_summarize_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} summarize",
        description="One table of hosts x features from many JSON reports "
        "(files, directories, or an Ansible fact cache).",
    )
    parser.add_argument("paths", nargs="+", metavar="REPORT", help="report file or directory")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--output", metavar="FILE", help="write to FILE atomically")
    return parser


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config-file",
        action="append",
        default=None,
        metavar="PATH",
        help="a Glance config file (repeatable, later ones win)",
    )
    parser.add_argument("--config-dir", metavar="DIR", help="every *.conf in DIR, after the files")


def build_explain_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} explain",
        description="What a feature is for in Glance, which options enable it, what it "
        "needs, the commands for this host, how to verify it, and its current verdict.",
    )
    parser.add_argument("feature", metavar="FEATURE")
    _add_config_options(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--timeout", type=_timeout, default=None, metavar="SECONDS")
    return parser


def build_requirements_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} requirements",
        description="The Python distributions the features need, what is installed, and "
        "whether it satisfies them and the constraints; or bindep lines for the system "
        "packages.",
    )
    parser.add_argument(
        "--feature",
        action="append",
        metavar="NAME",
        help="these features (default: those the config requires, else all)",
    )
    _add_config_options(parser)
    parser.add_argument(
        "--constraints",
        action="append",
        default=[],
        metavar="FILE",
        help="an upper-constraints.txt style file (repeatable)",
    )
    parser.add_argument(
        "--format", choices=("text", "json", "requirements", "bindep"), default="text"
    )
    parser.add_argument("--output", metavar="FILE", help="write to FILE atomically")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    from glance_features.settings import ConfigError, Settings

    try:
        if args.config_file is None and args.config_dir is None:
            return Settings.from_config_files()
        return Settings.from_config_files(args.config_file or [], args.config_dir)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _check_known(names: list[str]) -> None:
    from glance_features import registry

    known = {p.name for p in registry.plugins()}
    for name in names:
        if name not in known:
            raise UsageError(f"unknown feature {name!r} (known: {', '.join(sorted(known))})")


def _main(argv: list[str]) -> int:
    if argv[:1] == ["summarize"]:
        return _summarize(build_summarize_parser().parse_args(argv[1:]))
    if argv[:1] == ["explain"]:
        return _explain(build_explain_parser().parse_args(argv[1:]))
    if argv[:1] == ["requirements"]:
        return _requirements(build_requirements_parser().parse_args(argv[1:]))
    args = build_parser().parse_args(argv)
    from glance_features import runner

    if args.list:
        return _list(sys.stdout)
    settings = _settings(args)
    _check_known([*(args.feature or []), *args.require])
    try:
        report = runner.probe(
            settings,
            features=args.feature,
            deep=args.deep,
            timeout=args.timeout or runner.DEFAULT_TIMEOUT,
        )
    except runner.UnknownFeature as exc:
        raise UsageError(str(exc)) from None
    report = report.with_required(args.require)
    if args.format == "json":
        text = report.to_json() + "\n"
    elif args.format == "prometheus":
        from glance_features.prometheus import render

        text = render(report)
    else:
        from glance_features.render import render_text

        explicit = args.config_file is not None or args.config_dir is not None
        colour = args.output is None and _colour(sys.stdout)
        text = render_text(report, explicit_config=explicit, colour=colour)
    _emit(text, args.output)
    return int(report.code)


def _explain(args: argparse.Namespace) -> int:
    from glance_features import host, runner
    from glance_features.explain import explain

    _check_known([args.feature])
    report = runner.probe(
        _settings(args), features=[args.feature], timeout=args.timeout or runner.DEFAULT_TIMEOUT
    )
    explanation = explain(args.feature, host.distro_info(), report[args.feature])
    if args.format == "json":
        import json

        _emit(json.dumps(explanation.to_dict(), indent=2) + "\n", None)
    else:
        _emit(explanation.to_text(), None)
    return int(report.code)


def _requirements(args: argparse.Namespace) -> int:
    from glance_features import registry
    from glance_features.needs import NEEDS, bindep_lines
    from glance_features.required import required_by_settings
    from glance_features.requirements import (
        ConstraintsError,
        as_requirements_txt,
        check,
        parse_constraints,
    )

    if args.feature:
        _check_known(args.feature)
        features = [f for f in dict.fromkeys(args.feature) if f in NEEDS]
    else:
        # With a config: what it requires; without one (or if it requires
        # nothing), every feature.
        settings = _settings(args)
        names = [p.name for p in registry.plugins() if p.name in NEEDS]
        required = required_by_settings(settings) if settings.config_files else {}
        features = [f for f in names if f in required] or names
    if args.format == "bindep":
        lines = [f"# System packages for Glance's advanced features: {', '.join(features)}"]
        _emit("\n".join(lines + bindep_lines(features)) + "\n", args.output)
        return 0
    try:
        constraints = parse_constraints(args.constraints)
    except ConstraintsError as exc:
        raise UsageError(str(exc)) from None
    rows = check(features, constraints)
    if args.format == "requirements":
        _emit(as_requirements_txt([r for r in rows if r.applies]), args.output)
        return 0
    if args.format == "json":
        import json

        text = (
            json.dumps(
                {
                    "features": features,
                    "requirements": [r.to_dict() for r in rows],
                    "code": max((r.code for r in rows), default=0),
                },
                indent=2,
            )
            + "\n"
        )
    else:
        text = _requirements_table(rows)
    _emit(text, args.output)
    return max((r.code for r in rows), default=0)


def _requirements_table(rows: list[Row]) -> str:
    table = [("FEATURE", "REQUIREMENT", "INSTALLED", "OK", "CONSTRAINT")]
    for r in rows:
        ok = "n/a" if not r.applies else ("yes" if r.satisfied else "NO")
        constraint = "-"
        if r.constraint is not None:
            verdict = {True: "ok", False: "MISMATCH", None: ""}[r.matches_constraint]
            constraint = f"{r.constraint.specifier} ({r.constraint.source}) {verdict}".strip()
        table.append((r.feature, r.requirement, r.installed or "missing", ok, constraint))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)), row[4]])
        for row in table
    ]
    if len(table) == 1:
        lines.append("(these features need no Python distribution)")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _summarize(args: argparse.Namespace) -> int:
    from glance_features.summarize import collect

    fleet = collect(args.paths)
    for warning in fleet.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if args.format == "json":
        import json

        text = json.dumps(fleet.to_dict(), indent=2) + "\n"
    else:
        text = fleet.to_text()
    _emit(text, args.output)
    return fleet.code


def _emit(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from glance_features.output import OutputError, write_atomically

    try:
        write_atomically(output, text)
    except OutputError as exc:
        raise UsageError(str(exc)) from None


def _list(out: TextIO) -> int:
    from glance_features import registry

    rows = []
    for plugin in registry.plugins():
        try:
            summary = plugin.load().summary
        except Exception as exc:
            summary = f"(failed to load: {exc})"
        rows.append((plugin.name, summary))
    width = max((len(name) for name, _ in rows), default=0)
    for name, summary in rows:
        out.write(f"{name:<{width}}  {summary}\n")
    return 0


def _colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
