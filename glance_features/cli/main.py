"""``python -m glance_features`` and ``glance-features``: the operator's view."""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, NoReturn, TextIO

from glance_features._version import __version__
from glance_features.cli.streams import ClosedOutput, keep_stdout_for_the_report, report_stream
from glance_features.errors import GlanceFeaturesError

if TYPE_CHECKING:
    # Imported on first use at run time: the command line starts fast.
    import threading
    from types import FrameType

    from _typeshed import SupportsWrite

    from glance_features.catalog import Entry
    from glance_features.cli.requirements import Row
    from glance_features.deployment import Deployment
    from glance_features.interpreters import Interpreters
    from glance_features.model import FeatureResult, Report
    from glance_features.registry import Plugin
    from glance_features.settings import Settings

EXIT_USAGE = 64  # sysexits.h EX_USAGE: bad invocation or unreadable input
EXIT_INTERNAL = 255
PROG = "glance-features"
DEFAULT_SERVICE_USER = "glance"
VERSION_TIMEOUT = 5.0  # for the service interpreter to say which Glance it runs


class UsageError(GlanceFeaturesError):
    """Bad invocation or input: one line on stderr, exit 64."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        # --help and --version belong on the kept stdout, not where stray
        # prints of plugins are sent (see cli/streams.py).
        super()._print_message(message, report_stream() if file is sys.stdout else file)


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= 3600):
        raise argparse.ArgumentTypeError(f"must be a number of seconds from 0 to 3600: {text!r}")
    return value


def _config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config-file",
        action="append",
        default=None,
        metavar="PATH",
        help="a Glance config file (repeatable, later ones win); default: the files the "
        "Glance service reads (OS_GLANCE_CONFIG_DIR, else /etc/glance)",
    )
    parser.add_argument("--config-dir", metavar="DIR", help="every *.conf in DIR, after the files")


def _probe_options(parser: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    _config_options(parser)
    parser.add_argument("--format", choices=formats, default="text", help="output format")
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=None,
        metavar="SECONDS",
        help="bound on the whole probe (default: 10)",
    )
    _user_option(parser)


def _user_option(parser: argparse.ArgumentParser) -> None:
    """How the service runs: its account, its server, its interpreter."""
    from glance_features.deployment import SERVERS

    parser.add_argument(
        "--user",
        metavar="NAME",
        help="check files and binaries as this user (default as root: the glance "
        "account when it exists)",
    )
    parser.add_argument(
        "--served-by",
        choices=SERVERS,
        help="how the Glance API service is run, when the host does not show it",
    )
    parser.add_argument(
        "--python",
        type=_interpreter,
        metavar="PATH",
        help="the interpreter Glance runs in, when the host does not show it",
    )


def _interpreter(text: str) -> str:
    if not os.path.isabs(text):
        raise argparse.ArgumentTypeError(f"not an absolute path: {text!r}")
    if not (os.path.isfile(text) and os.access(text, os.X_OK)):
        raise argparse.ArgumentTypeError(f"not an executable file: {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Report which of Glance's advanced features work on this host. "
        "Probing is the default command.",
        epilog="Exit status: 0 ok, 1 warning, 2 a required feature is missing, "
        "64 bad invocation or input, 255 internal error.",
    )
    _probe_command_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_explain(commands)
    _add_requirements(commands)
    _add_summarize(commands)

    from glance_features.cli import census, status

    census_parser = census.add_parser(commands)
    _config_options(census_parser)
    _user_option(census_parser)

    status_parser = status.add_parser(commands)
    _config_options(status_parser)
    _user_option(status_parser)
    return parser


def _probe_command_options(parser: argparse.ArgumentParser) -> None:
    """The options of the default command, probing, which has no name."""
    _probe_options(parser, ("text", "json", "prometheus"))
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
        "--verbose",
        action="store_true",
        help="text: every feature with its reason, also those nothing enables",
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


def _add_explain(commands: argparse._SubParsersAction[_Parser]) -> None:
    explain = commands.add_parser(
        "explain",
        help="what a feature is for, what it needs here, and its verdict",
        description="What a feature is for in Glance, which options enable it, what it "
        "needs, the commands for this host, how to verify it, and its current verdict.",
    )
    explain.add_argument("feature", metavar="FEATURE")
    _probe_options(explain, ("text", "json"))


def _add_requirements(commands: argparse._SubParsersAction[_Parser]) -> None:
    requirements = commands.add_parser(
        "requirements",
        help="Python distributions the features need, or bindep lines",
        description="The Python distributions the features need, what is installed, and "
        "whether it satisfies them and the constraints; or bindep lines for the system "
        "packages.",
    )
    requirements.add_argument(
        "--feature",
        action="append",
        metavar="NAME",
        help="these features (default: those the config requires, else all)",
    )
    _config_options(requirements)
    requirements.add_argument(
        "--constraints",
        action="append",
        default=[],
        metavar="FILE",
        help="an upper-constraints.txt style file (repeatable)",
    )
    requirements.add_argument(
        "--global-requirements",
        metavar="FILE",
        help="with --propose: openstack/requirements' global-requirements.txt",
    )
    requirements.add_argument(
        "--propose",
        metavar="FEATURE",
        help="the lines and commit message that move FEATURE's Python dependencies into "
        "global-requirements.txt, upper-constraints.txt and Glance's requirements.txt",
    )
    requirements.add_argument(
        "--format", choices=("text", "json", "requirements", "bindep"), default="text"
    )
    requirements.add_argument("--output", metavar="FILE", help="write to FILE atomically")


def _add_summarize(commands: argparse._SubParsersAction[_Parser]) -> None:
    summarize = commands.add_parser(
        "summarize",
        help="hosts x features from many reports, and the adoption table of census files",
        description="One table of hosts x features from many JSON reports "
        "(files, directories, or an Ansible fact cache), and the adoption of each feature "
        "across census files and reports: deployments enabling it, how many work, the "
        "dependency versions in use, by Glance release and distribution.",
    )
    summarize.add_argument(
        "paths", nargs="+", metavar="REPORT", help="report or census file, or a directory"
    )
    summarize.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    summarize.add_argument("--output", metavar="FILE", help="write to FILE atomically")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else list(argv))
    except (UsageError, ClosedOutput) as exc:
        from glance_features.cli.table import safe

        print(f"{PROG}: error: {safe(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (ProcessLimits, MemoryError) as exc:
        why = str(exc) if isinstance(exc, ProcessLimits) else _starved({}) or _OUT_OF_MEMORY
        print(f"{PROG}: error: {why}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt as exc:
        return 128 + getattr(exc, "signum", signal.SIGINT)
    except BrokenPipeError:
        # A closed pipe (| head) is the reader's choice, not our failure.
        os.dup2(os.open(os.devnull, os.O_WRONLY), report_stream().fileno())
        return 0
    except Exception as exc:
        from glance_features.cli.table import safe

        print(f"{PROG}: internal error: {type(exc).__name__}: {safe(exc)}", file=sys.stderr)
        return EXIT_INTERNAL


def run() -> NoReturn:
    """The console script: exit with the report written, whatever threads a
    plugin left running, and end every child on SIGTERM or SIGINT."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    _own_process()
    keep_stdout_for_the_report()
    code = main()
    try:
        _finish()
        report_stream().flush()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # a second signal, a closed stdout: exit all the same
        pass
    finally:
        os._exit(code)


# A thread's stack, in this process only: the default is the stack limit
# (8 MiB), reserved per thread out of an address-space limit (ulimit -v,
# systemd's LimitAS=) that a dozen detectors and their children soon exhaust.
# The probe's threads run shallow code; Glance's own are never sized here.
THREAD_STACK = 1 << 21


def _own_process() -> None:
    """What only a process of the probe's own may set: thread stacks, and
    orphans of its children's daemons reparented here to be ended."""
    import threading

    threading.excepthook = _quiet_thread_failure
    try:
        try:
            threading.stack_size(THREAD_STACK)
        except (ValueError, RuntimeError):
            pass  # a platform that cannot size stacks keeps its default
        from glance_features._platform import proc

        proc.become_subreaper()
    except (MemoryError, SystemError):  # SystemError: an allocation failed in C
        print(f"{PROG}: error: {_OUT_OF_MEMORY}", file=sys.stderr)
        os._exit(EXIT_INTERNAL)


# How long the exit waits for detectors to clean up (remove their temporary
# directories) once their children are killed; a hung one is left to _exit.
EXIT_GRACE = 2.0


def _finish() -> None:
    import threading
    import time

    from glance_features._platform import proc

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # the exit is under way
    proc.kill_all(close=True)
    proc.sweep_orphans()
    deadline = time.monotonic() + EXIT_GRACE
    for thread in threading.enumerate():
        if thread.name.startswith("glance-features:") and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
    proc.kill_all()  # anything a detector started while we waited
    proc.sweep_orphans()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    from glance_features._platform import proc

    proc.kill_all(close=True)
    raise _Interrupted(signum)


class _Interrupted(KeyboardInterrupt):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    command = args.command
    if command == "summarize":
        return _summarize(args)
    if command == "requirements":
        return _requirements(args)
    if command == "explain":
        return _explain(args)
    if command == "census":
        from glance_features.cli import census

        _emit(census.render(args, _report(args, args.feature), _deployment(args)), args.output)
        return 0
    if command == "status":
        from glance_features.cli import status

        try:
            return status.run(args, service_user(args.user))
        except status.StatusError as exc:
            raise UsageError(str(exc)) from None
    if args.list:
        return _list(report_stream())
    return _probe(args)


def _deployment(args: argparse.Namespace) -> Deployment:
    """How the service is run, from the host and --served-by/--python."""
    from glance_features import deployment

    return deployment.discover(
        getattr(args, "served_by", None), getattr(args, "python", None), True
    )


def _settings(
    args: argparse.Namespace,
    meanwhile: Callable[[], object] = lambda: None,
    children: Interpreters | None = None,
) -> Settings:
    """The configuration the service reads (or the files given); ``meanwhile``
    runs while the service's interpreter (one of ``children``) is asked which
    Glance it runs."""
    from glance_features.settings import ConfigError, Settings

    try:
        if args.config_file is None and args.config_dir is None:
            from glance_features import glance
            from glance_features._platform import green

            _warm(args, children, None)
            service = _deployment(args)
            _warm(args, children, service)
            user = service_user(getattr(args, "user", None), service.user)
            other = user if user and user != _me() else None
            version = green.Background(
                lambda: glance.version_in(service.python, VERSION_TIMEOUT, other, children),
                "glance-features:version",
            )
            meanwhile()
            deadline = green.original("time").monotonic() + VERSION_TIMEOUT
            return Settings.from_config_files(
                deployment=service, glance_version=version.wait(deadline)
            )
        meanwhile()
        return Settings.from_config_files(args.config_file or [], args.config_dir)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _warm(
    args: argparse.Namespace, children: Interpreters | None, service: Deployment | None
) -> None:
    """Start the child the checks as the service's account will ask, so that
    its start overlaps this process's work. Before ``service`` is known
    (reading the host takes long), the account is the default one and the
    interpreter a usual home's, else this one if it imports Glance; a guess
    the host belies costs one child that answers nothing. Once it is known,
    asking Glance's version starts another interpreter's child; this one's,
    however the host spells it, is started here."""
    from glance_features import deployment
    from glance_features.interpreters import is_this_interpreter, this_interpreter

    if children is None or getattr(args, "python", None) is not None:
        return
    if service is None:
        import importlib.util

        # A distribution's Glance first: a venv of this tool may see it too.
        python = deployment.usual_home()
        if python is None and importlib.util.find_spec("glance") is not None:
            python = this_interpreter()
    elif service.python is None or is_this_interpreter(service.python):
        # Glance's version is then this process's own answer: no child yet.
        python = service.python or this_interpreter()
    else:
        return
    user = service_user(getattr(args, "user", None), service.user if service else None)
    if python is not None and user is not None and user != _me():
        children.warm(python, user)


def _config_note(args: argparse.Namespace, files: tuple[str, ...]) -> str:
    from glance_features.cli.table import safe
    from glance_features.settings import search_description

    if files:
        return "config: read " + ", ".join(safe(f) for f in files)
    if args.config_file is not None or args.config_dir is not None:
        return "config: no files given"
    return f"config: none found ({safe(search_description())})"


def service_user(requested: str | None, named: str | None = None) -> str | None:
    """Whose eyes the checks use: --user, else (as root) the account the
    service definition names, else the glance account."""
    import pwd

    if not requested and named and os.geteuid() == 0:
        try:
            pwd.getpwnam(named)
            requested = named
        except KeyError:
            pass  # a uid the host has no name for (a container's): the default then
    if requested and os.geteuid() != 0 and requested != _me():
        raise UsageError(f"--user {requested!r}: checking as another account needs root")
    if requested:
        try:
            pwd.getpwnam(requested)
        except KeyError:
            raise UsageError(f"--user {requested!r}: no such account") from None
        return requested
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(DEFAULT_SERVICE_USER)
            return DEFAULT_SERVICE_USER
        except KeyError:
            return None
    return None


def _me() -> str:
    from glance_features._platform.proc import current_user

    return current_user()


def _check_known(names: list[str]) -> None:
    from glance_features import registry

    known = {p.name for p in registry.plugins()}
    for name in names:
        if name not in known:
            raise UsageError(f"unknown feature {name!r} (known: {', '.join(sorted(known))})")


def _load_builtins(features: list[str] | None) -> None:
    """Import the built-in detectors the probe will run, in time that would
    otherwise be spent waiting; plugins load under the probe's deadline."""
    from glance_features import registry

    for plugin in registry.plugins(features):
        if plugin.builtin:
            try:
                plugin.load()
            except registry.PluginError:
                pass  # the probe reports it


def _report(args: argparse.Namespace, features: list[str] | None) -> Report:
    """The probe every reporting subcommand makes: the host read for how the
    service runs, the checks as its account."""
    from glance_features.interpreters import Interpreters

    def meanwhile() -> None:
        _check_known([*(features or []), *getattr(args, "require", [])])
        _load_builtins(features)

    # The child that says which Glance the service runs stays for the checks.
    children = Interpreters()
    try:
        return _probe_with(args, features, _settings(args, meanwhile, children), children)
    finally:
        children.close()


def _probe_with(
    args: argparse.Namespace,
    features: list[str] | None,
    settings: Settings,
    children: Interpreters,
) -> Report:
    from glance_features import runner

    small = _address_space_too_small()
    if small:
        raise ProcessLimits(small)
    try:
        report = runner.probe(
            settings,
            features=features,
            deep=getattr(args, "deep", False),
            timeout=getattr(args, "timeout", None) or runner.DEFAULT_TIMEOUT,
            user=service_user(args.user, _deployment(args).user),
            served_by=args.served_by,
            python=args.python,
            from_host=True,
            remember=True,
            children=children,
        )
    except runner.UnknownFeature as exc:
        raise UsageError(str(exc)) from None
    starved = _starved(report)
    if starved:
        raise ProcessLimits(starved)
    return report


class ProcessLimits(GlanceFeaturesError):
    """The probe ran out of memory or threads: its verdicts say nothing of the host."""


# Below this address-space limit (ulimit -v, LimitAS=) the probe does not try:
# a check's interpreter importing eventlet peaks at 84 MiB on Debian 12's
# Python 3.11, and at 64 MiB that import fails in ways that look like
# eventlet's fault. Above it, verdicts starved of memory are still caught.
MIN_ADDRESS_SPACE = 128 << 20


def _address_space_too_small() -> str:
    try:
        import resource
    except ImportError:  # no such limits to read (Windows)
        return ""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft >= MIN_ADDRESS_SPACE:
        return ""
    return (
        f"the address-space limit ({soft >> 20} MiB) is below the "
        f"{MIN_ADDRESS_SPACE >> 20} MiB the probe needs: raise ulimit -v (systemd: LimitAS=)"
    )


# What CPython says when memory or a thread cannot be had, in this process or
# in a check's child: a verdict built on it describes the limit, not the host.
_STARVED = (
    "MemoryError",
    "can't start new thread",
    "no thread could be started",
    "error return without exception set",  # a failed allocation, seen in eventlet's import
    "Cannot allocate memory",
)


def _starved(report: Mapping[str, FeatureResult]) -> str:
    """Why the probe could not work within this process's limits, or ''."""
    starved = [n for n, r in report.items() if any(s in r.reason for s in _STARVED)]
    starved += _thread_failures
    if not starved:
        return ""
    return (
        f"the process limits are too small to probe ({', '.join(sorted(set(starved)))} ran "
        "out of memory or threads): raise ulimit -v / -u (systemd: LimitAS=, TasksMax=)"
    )


_OUT_OF_MEMORY = "out of memory: raise the process limits (ulimit -v; systemd: LimitAS=)"

# Threads (a plugin's included) that died of MemoryError or no thread to be had.
_thread_failures: list[str] = []


def _quiet_thread_failure(failure: threading.ExceptHookArgs) -> None:
    """A thread's exception becomes one line, never a traceback; running out
    of memory or threads makes the run's verdicts void (ProcessLimits)."""
    name = getattr(failure.thread, "name", "a thread")
    text = f"{failure.exc_type.__name__}: {failure.exc_value}"
    if any(s in text for s in _STARVED):
        _thread_failures.append(name.removeprefix("glance-features:"))
        return
    from glance_features.cli.table import safe

    print(f"{PROG}: {safe(name)} failed: {safe(text)}", file=sys.stderr)


def _probe(args: argparse.Namespace) -> int:
    report = _report(args, args.feature)
    report = report.with_required(args.require)
    if args.format == "json":
        text = report.to_json() + "\n"
    elif args.format == "prometheus":
        from glance_features.cli.prometheus import render

        text = render(report)
    else:
        from glance_features.cli.render import render_text

        stream = None if args.output is not None else report_stream()
        tty = stream is not None and stream.isatty()
        note = _config_note(args, report.config_files)
        text = render_text(
            report,
            config_note=note,
            colour=stream is not None and _colour(stream),
            verbose=args.verbose,
            asked=args.feature or (),
            width=_width() if tty else None,
        )
    _emit(text, args.output)
    return int(report.code)


def _explain(args: argparse.Namespace) -> int:
    from glance_features import host, registry
    from glance_features.catalog import UNCATALOGUED
    from glance_features.cli.explain import explain

    report = _report(args, [args.feature])
    entry = registry.catalog().get(args.feature, UNCATALOGUED)
    explanation = explain(args.feature, entry, host.distro(), report[args.feature])
    if args.format == "json":
        import json

        _emit(json.dumps(explanation.to_dict(), indent=2) + "\n", None)
    else:
        _emit(explanation.to_text(), None)
    return int(report.code)


def _requirements(args: argparse.Namespace) -> int:
    from glance_features import registry
    from glance_features.catalog import bindep_lines
    from glance_features.cli.requirements import (
        ConstraintsError,
        as_requirements_txt,
        check,
        parse_constraints,
    )

    catalog = registry.catalog()
    if args.propose is not None:
        return _propose(args)
    if args.global_requirements is not None:
        raise UsageError("--global-requirements goes with --propose FEATURE")
    features, counted = _requirements_features(args, catalog)
    if args.format == "bindep":
        lines = [f"# System packages for Glance's advanced features: {', '.join(features)}"]
        chosen = {f: catalog[f] for f in features}
        _emit("\n".join(lines + bindep_lines(chosen)) + "\n", args.output)
        return 0
    try:
        constraints = parse_constraints(args.constraints)
    except ConstraintsError as exc:
        raise UsageError(str(exc)) from None
    rows = check(features, constraints)
    code = max((r.code for r in rows if r.feature in counted), default=0)
    if args.format == "requirements":
        _emit(as_requirements_txt([r for r in rows if r.applies]), args.output)
        return 0
    if args.format == "json":
        import json

        data = {"features": features, "requirements": [r.to_dict() for r in rows], "code": code}
        _emit(json.dumps(data, indent=2) + "\n", args.output)
        return code
    _emit(_requirements_table(rows), args.output)
    return code


def _requirements_features(
    args: argparse.Namespace, catalog: Mapping[str, Entry]
) -> tuple[list[str], set[str]]:
    """The features to list, and those of them whose failure sets the exit code."""
    from glance_features import glance, runner

    if args.feature:
        _check_known(args.feature)
        features = [f for f in dict.fromkeys(args.feature) if f in catalog]
        return features, set(features)
    # With a config: what it requires; without one (or if it requires
    # nothing), every feature.
    settings = _settings(args)
    required = (
        runner.required_features(settings, glance.installed_version())
        if settings.config_files
        else {}
    )
    needed = [f for f in catalog if f in required and required[f].ignored is None]
    # Listing every feature informs; only what the config needs can fail.
    return needed or list(catalog), set(needed)


def _requirements_table(rows: Sequence[Row]) -> str:
    from glance_features.cli.table import render as table

    header = [("FEATURE", "REQUIREMENT", "INSTALLED", "OK", "CONSTRAINT")]
    body = []
    for r in rows:
        ok = "n/a" if not r.applies else ("yes" if r.satisfied else "NO")
        constraint = "-"
        if r.constraint is not None:
            verdict = {True: "ok", False: "MISMATCH", None: ""}[r.matches_constraint]
            constraint = f"{r.constraint.specifier} ({r.constraint.source}) {verdict}".strip()
        body.append((r.feature, r.requirement, r.installed or "missing", ok, constraint))
    lines = table(header + body)
    if not body:
        lines.append("(these features need no Python distribution)")
    return "\n".join(lines) + "\n"


def _propose(args: argparse.Namespace) -> int:
    from glance_features import registry
    from glance_features.cli.requirements import ConstraintsError, proposal_text, propose

    _check_known([args.propose])
    if args.feature or args.format not in ("text", "json"):
        raise UsageError("--propose takes one FEATURE and --format text or json")
    if args.propose not in registry.BUILTIN:
        raise UsageError(f"{args.propose!r} is a third-party detector: no catalog to propose from")
    try:
        rows = propose(args.propose, args.global_requirements, args.constraints)
    except ConstraintsError as exc:
        raise UsageError(str(exc)) from None
    if args.format == "json":
        import json

        data = {"feature": args.propose, "requirements": [r.to_dict() for r in rows]}
        _emit(json.dumps(data, indent=2) + "\n", args.output)
    else:
        text = proposal_text(args.propose, rows, gr=args.global_requirements, uc=args.constraints)
        _emit(text, args.output)
    return 0


def _summarize(args: argparse.Namespace) -> int:
    from glance_features.cli.summarize import collect
    from glance_features.cli.table import safe

    fleet = collect(args.paths)
    for warning in fleet.warnings:
        print(f"{PROG}: warning: {safe(warning)}", file=sys.stderr)
    if args.format == "json":
        import json

        text = json.dumps(fleet.to_dict(), indent=2) + "\n"
    elif args.format == "markdown":
        text = fleet.to_markdown()
    else:
        text = fleet.to_text()
    _emit(text, args.output)
    return fleet.code


def _emit(text: str, output: str | None) -> None:
    if output is None:
        stream = report_stream()
        stream.write(text)
        stream.flush()
        return
    from glance_features.cli.output import OutputError, write_atomically

    try:
        write_atomically(output, text)
    except OutputError as exc:
        raise UsageError(str(exc)) from None


def _list(out: TextIO) -> int:
    from glance_features import registry
    from glance_features._platform import green
    from glance_features.cli.table import render as table

    threading = green.original("threading")
    clock = green.original("time")
    plugins = registry.plugins()
    found: dict[str, str] = {}

    def load(plugin: Plugin) -> None:
        try:
            found[plugin.name] = plugin.load().summary
        except BaseException as exc:  # a plugin's SystemExit is its failure
            found[plugin.name] = f"(failed to load: {exc})"

    # Plugins load in parallel under one deadline: one that hangs on import
    # (or ten of them) cannot hang --list.
    deadline = clock.monotonic() + LIST_TIMEOUT
    workers = [threading.Thread(target=load, args=(p,), daemon=True) for p in plugins]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(0.0, deadline - clock.monotonic()))
    rows = [("FEATURE", "SUMMARY")]
    for plugin in plugins:
        summary = found.get(plugin.name, f"(did not load within {LIST_TIMEOUT:g} s)")
        rows.append((plugin.name, summary))
    out.write("\n".join(table(rows)[1:]) + "\n")
    return 0


LIST_TIMEOUT = 5.0


def _width() -> int:
    import shutil

    return max(40, shutil.get_terminal_size().columns)


def _colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
