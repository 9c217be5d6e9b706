"""``python -m glance_features`` and ``glance-features``: the operator's view."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from glance_features._version import __version__

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
    parser.add_argument(
        "--config-file",
        action="append",
        default=None,
        metavar="PATH",
        help="a Glance config file (repeatable, later ones win)",
    )
    parser.add_argument(
        "--config-dir", metavar="DIR", help="read every *.conf in DIR, sorted, after the files"
    )
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


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from glance_features import registry, runner
    from glance_features.settings import ConfigError, Settings

    if args.list:
        return _list(sys.stdout)
    if args.format == "prometheus":
        raise UsageError("--format prometheus is not available in this version")
    try:
        if args.config_file is None and args.config_dir is None:
            settings = Settings.from_config_files()
        else:
            settings = Settings.from_config_files(args.config_file or [], args.config_dir)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    known = {p.name for p in registry.plugins()}
    for name in [*(args.feature or []), *args.require]:
        if name not in known:
            raise UsageError(f"unknown feature {name!r} (known: {', '.join(sorted(known))})")
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
        sys.stdout.write(report.to_json() + "\n")
    else:
        from glance_features.render import render_text

        explicit = args.config_file is not None or args.config_dir is not None
        sys.stdout.write(render_text(report, explicit_config=explicit, colour=_colour(sys.stdout)))
    sys.stdout.flush()
    return int(report.code)


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
