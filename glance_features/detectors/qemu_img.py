"""qemu-img: the binary Glance's image_conversion import plugin runs.

Mirrors ``glance/async_/flows/plugins/image_conversion.py`` (Glance 33):
``qemu-img info -f FMT --output=json`` through ``[wsgi] python_interpreter
-m oslo_concurrency.prlimit --as=1073741824 --cpu=2``, then ``qemu-img convert
-f FMT -O OUTPUT``; any output on stderr fails the import. The probe runs the
same two commands on a 1 MiB qcow2 it creates in a private directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
import sys
from typing import TYPE_CHECKING

from glance_features.catalog import Entry, GlanceUse, RequiredWhen
from glance_features.detector import DetectorBase, ProbeContext, result
from glance_features.model import JSON, FeatureResult, Status, Verdict
from glance_features.options import (
    CONVERSION_FORMAT,
    IMPORT_PLUGINS,
    OUTPUT_FORMAT,
    PYTHON_INTERPRETER,
)
from glance_features.remediation import install_system_packages
from glance_features.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from glance_features._platform.proc import Outcome

# glance/async_/utils.py QEMU_IMG_PROC_LIMITS: 2 s of CPU, 1 GiB of address space.
PRLIMIT_ARGS = ("--as=1073741824", "--cpu=2")
# The `choices` of both options in every Glance release (28-33: the
# image_conversion plugin's output_format, the legacy convert task's
# conversion_format). Glance starts with any other value and fails when the
# task first reads it: oslo.config refuses the value then, and the import with
# it. Held to each release's own option by tests/test_release_cases.py.
OUTPUT_FORMATS = ("qcow2", "raw", "vmdk")
# Glance's format names where qemu-img calls a format differently.
QEMU_FORMAT = {"vhd": "vpc"}
INTERPRETER_FIX = (
    "set [wsgi] python_interpreter to the Python that runs Glance (it must import oslo_concurrency)"
)
_VERSION_RE = re.compile(r"qemu-img version (\d+\.\d+(?:\.\d+)?)")

CATALOG = Entry(
    purpose=(
        "Glance's image_conversion import plugin runs qemu-img to inspect uploaded "
        "images and convert them to the configured disk format."
    ),
    options=(IMPORT_PLUGINS, OUTPUT_FORMAT, CONVERSION_FORMAT, PYTHON_INTERPRETER),
    required_when=(
        RequiredWhen(
            "image_conversion in [image_import_opts] image_import_plugins",
            lambda s: "image_conversion" in s.get(IMPORT_PLUGINS),
        ),
        RequiredWhen(
            "[taskflow_executor] conversion_format is set",
            lambda s: bool(s.get(CONVERSION_FORMAT)),
        ),
    ),
    packages={
        "debian": "qemu-utils",
        "rhel": "qemu-img",
        "suse": "qemu-tools",
        "arch": "qemu-img",
        "alpine": "qemu-img",
        "macos": "qemu",
    },
    verify=("qemu-img --version", "glance-features --feature qemu-img"),
    glance=GlanceUse("glance/async_/flows/plugins/image_conversion.py: _ConvertImage"),
)


def conversion_enabled(settings: Settings) -> bool:
    return "image_conversion" in settings.get(IMPORT_PLUGINS) or bool(
        settings.get(CONVERSION_FORMAT)
    )


def wanted_format(settings: Settings) -> tuple[str, str]:
    """The output format Glance converts to, and the option that asks for it."""
    if "image_conversion" in settings.get(IMPORT_PLUGINS):
        return settings.get(OUTPUT_FORMAT), "[image_conversion] output_format"
    conversion = settings.get(CONVERSION_FORMAT)
    if conversion:
        return conversion, "[taskflow_executor] conversion_format"
    return "raw", "the default output format"


def refused_format(settings: Settings) -> tuple[str, str, str] | None:
    """The enabled conversion's format option Glance refuses, as (value, option,
    when), or None. An option no enabled path reads is never refused."""
    paths = []
    if "image_conversion" in settings.get(IMPORT_PLUGINS):
        paths.append(
            (
                settings.get(OUTPUT_FORMAT),
                OUTPUT_FORMAT.label,
                "at the first image import: the image_conversion task reads it, the "
                "task fails and the image goes back to queued",
            )
        )
    conversion = settings.get(CONVERSION_FORMAT)
    if conversion:
        paths.append(
            (
                conversion,
                CONVERSION_FORMAT.label,
                "at the first import task (POST /v2/tasks): its convert step reads it and "
                "the task fails",
            )
        )
    for value, label, when in paths:
        if value not in OUTPUT_FORMATS:
            return str(value), label, when
    return None


def service_executable(context: ProbeContext) -> tuple[str | None, str]:
    """The service's ``sys.executable``, which oslo.concurrency runs prlimit with
    when Glance passes no interpreter, and where that answer comes from; None
    when it is a server's binary (no Python: ``-m oslo_concurrency.prlimit``
    cannot run).

    Measured (tests/test_release_cases.py): the eventlet glance-api runs in the
    service's Python; pyuwsgi (pip's wheel, a Python console script) leaves it
    at the interpreter the venv's python links to (``/usr/bin/python3.11``,
    without the venv's packages); a compiled uwsgi (Debian's ``uwsgi-core``,
    pip's ``uwsgi`` sdist) and mod_wsgi set it to their own binary."""
    from glance_features import runas

    served_by = context.served_by
    if (served_by is None and context.deployment is None) or (
        context.deployment is not None and context.deployment.inside
    ):
        served_by = next((s for s in ("uwsgi", "mod_wsgi") if s in sys.modules), served_by)
    if context.deployment is not None and context.deployment.inside:
        if served_by in ("uwsgi", "mod_wsgi"):
            return sys.executable, f"sys.executable of this {served_by} server"
        return sys.executable, "sys.executable of this service"
    if served_by == "uwsgi":
        python = runas.service_python(context)
        command = context.deployment.command if context.deployment is not None else ()
        program = command[0] if command else os.path.join(os.path.dirname(python), "uwsgi")
        if _is_python_script(program):
            return (
                os.path.realpath(python),
                f"sys.executable under pyuwsgi ({program}): the interpreter {python} links to",
            )
        return None, f"sys.executable of uwsgi, the server's binary{_named(command)}"
    if served_by == "mod_wsgi":
        return None, "sys.executable of mod_wsgi, the server's binary"
    if context.glance_version is not None:
        return runas.service_python(context), "sys.executable (the interpreter Glance runs in)"
    return None, "[wsgi] python_interpreter is unset"


def _named(command: tuple[str, ...]) -> str:
    return f" ({command[0]})" if command else ""


def _is_python_script(program: str) -> bool:
    """Whether ``program`` is a console script run by a Python (pyuwsgi's uwsgi)."""
    from glance_features._platform import files

    try:
        first = files.read_head(program, 512).split(b"\n", 1)[0]
    except files.ReadError:
        return False
    words = first[2:].split() if first.startswith(b"#!") else []
    return bool(words) and b"python" in os.path.basename(words[0])


def interpreter(context: ProbeContext) -> tuple[str | None, str]:
    """The Python Glance runs prlimit with, and where that choice comes from."""
    configured = context.settings.get(PYTHON_INTERPRETER)
    if configured:
        return configured, "[wsgi] python_interpreter"
    return service_executable(context)


@dataclasses.dataclass(frozen=True)
class Conversion:
    """How Glance would run qemu-img on this host."""

    # Run by the path Glance's lookup finds, not the resolved one: the name it
    # is called by (argv[0]) is what a multi-call binary goes by.
    path: str
    python: str | None  # the interpreter prlimit runs with; None: not known
    target: str  # the format Glance converts to
    asked_by: str  # the option that asks for it
    full: bool  # the whole conversion path, not only `qemu-img --version`
    legacy: str | None = None  # the legacy import task's own interpreter, when another


def _jobs(
    planned: Conversion, python: str | None, target: str, workdir: str, user: str | None
) -> dict[str, tuple[list[str], bool]]:
    """Glance's qemu-img command lines on a tiny qcow2 in ``workdir`` (owned by
    ``user``), each with whether its stderr fails the import."""
    source = os.path.join(workdir, "source.qcow2")
    # Written here, not by `qemu-img create` (which Glance never runs): a
    # failure to write it is the check's own, never qemu-img's.
    write_tiny_qcow2(source)
    if user:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(workdir, entry.pw_uid, entry.pw_gid)
        os.chown(source, entry.pw_uid, entry.pw_gid)
    qemu_img = planned.path
    # Glance never runs --version: only its exit status counts.
    jobs = {"version": ([qemu_img, "--version"], False)}
    if not planned.full:
        return jobs
    info = [qemu_img, "info", "-f", "qcow2", "--output=json", source]
    if python is not None:
        # Exactly Glance's command line (not -I: Glance does not pass it),
        # whatever the interpreter is called: a name proves nothing, running it does.
        info = [python, "-m", "oslo_concurrency.prlimit", *PRLIMIT_ARGS, "--", *info]
    convert = [qemu_img, "convert", "-f", "qcow2", "-O", QEMU_FORMAT.get(target, target)]
    converted = os.path.join(workdir, "converted")
    return {**jobs, "info": (info, True), "convert": ([*convert, source, converted], True)}


def _works(planned: Conversion, unsafe: str | None, details: dict[str, JSON]) -> Verdict:
    """The verdict when every call Glance makes succeeded, with its caveats."""
    version = details.get("version", "?")
    at = f"qemu-img {version} at {details['resolved_path']}"
    caveats, fix = [], []
    if unsafe:
        caveats.append(f"{unsafe} can be written by users other than root")
    if planned.python is None and planned.full:
        caveats.append(
            "[wsgi] python_interpreter is unset: under uwsgi or mod_wsgi Glance then "
            "runs prlimit with the server's binary and every conversion fails"
        )
        fix.append("set [wsgi] python_interpreter = /path/to/the/venv/bin/python")
    if unsafe:
        fix.append(f"chown root: {unsafe} && chmod go-w {unsafe}")
    if caveats:
        does = "converts to " + planned.target if planned.full else "runs"
        return Verdict(Status.DEGRADED, f"{at} {does}, but " + "; ".join(caveats), remediation=fix)
    if not planned.full:
        return Verdict(
            Status.AVAILABLE,
            f"{at} runs; no option enables image conversion, "
            "so Glance's conversion path was not tried (--deep tries it)",
        )
    return Verdict(
        Status.AVAILABLE,
        f"{at} inspects and converts qcow2 to {planned.target} "
        f"as Glance runs it ({planned.asked_by})",
    )


class QemuImgDetector(DetectorBase):
    name = "qemu-img"
    summary = "qemu-img for image conversion and introspection (image_conversion plugin)"
    catalog = CATALOG

    def fake(self, status: Status, settings: Settings) -> Verdict:
        return _fake(status, settings)

    def probe(self, context: ProbeContext) -> FeatureResult:
        from glance_features._platform import proc

        install = install_system_packages(CATALOG.packages, context.distro)
        # The service's PATH (its unit's or init script's), not this shell's.
        search = context.service_path
        # The first qemu-img on PATH that the service user may execute, as
        # Glance's exec (and prlimit's shutil.which) find it: an entry that
        # user cannot run is skipped, not fatal.
        path = which_for(context.user, "qemu-img", search)
        details: dict[str, JSON] = {"path": path, "searched": search}
        if path is None:
            elsewhere = proc.which("qemu-img", search) if context.user else None
            why = (
                f"qemu-img at {elsewhere} cannot be run by {context.user}, and no other "
                "qemu-img on PATH can"
                if elsewhere
                else "qemu-img not found on PATH"
            )
            return result(self.name, Status.UNAVAILABLE, why, details, install)
        details["resolved_path"] = os.path.realpath(path)
        unsafe = replaceable_by_others(path)
        if unsafe:
            details["writable_by_others"] = unsafe
        planned = self._plan(path, context, details)
        if isinstance(planned, Verdict):
            return planned.result(self.name, details)
        failure = self._as_glance_does(planned, planned.python, planned.target, context, details)
        if failure is None and planned.legacy is not None:
            # Both paths convert, each through its own interpreter.
            conversion = str(context.settings.get(CONVERSION_FORMAT))
            failure = self._as_glance_does(planned, planned.legacy, conversion, context, {})
            if failure is not None:
                failure = dataclasses.replace(
                    failure, reason=f"the legacy import task: {failure.reason}"
                )
        if failure is not None:
            fixes = failure.remediation or install
            return dataclasses.replace(failure, remediation=fixes).result(self.name, details)
        return _works(planned, unsafe, details).result(self.name, details)

    def _plan(
        self, path: str, context: ProbeContext, details: dict[str, JSON]
    ) -> Conversion | Verdict:
        """How Glance would run qemu-img here, or why it never gets to."""
        python, python_source = interpreter(context)
        details.update(python_interpreter=python, python_interpreter_from=python_source)
        target, asked_by = wanted_format(context.settings)
        details["output_format"] = target
        refused = refused_format(context.settings)
        if refused is not None:
            value, label, when = refused
            details["refused"] = {"option": label, "value": value, "accepted": OUTPUT_FORMATS}
            return Verdict(
                Status.UNAVAILABLE,
                f"{label} = {value!r} is refused by Glance, which accepts only "
                f"{', '.join(OUTPUT_FORMATS)}: Glance starts, then fails {when}",
                remediation=[f"set {label} to one of {', '.join(OUTPUT_FORMATS)}"],
            )
        # Glance runs qemu-img only for image conversion: its whole path (about
        # 50 ms, mostly the prlimit interpreter) is run when the configuration
        # enables conversion or --deep asks; otherwise qemu-img only has to run.
        full = context.deep or conversion_enabled(context.settings)
        legacy = self._legacy_task(context, details)
        if isinstance(legacy, Verdict):
            return legacy
        if legacy is not None and "image_conversion" not in context.settings.get(IMPORT_PLUGINS):
            # Only the legacy task converts: its interpreter is the one to try.
            python, python_source = legacy, str(details["legacy_python_from"])
            details.update(python_interpreter=python, python_interpreter_from=python_source)
            legacy = None
        if python is None and full and python_source.startswith("sys.executable of "):
            # The service is known to be a WSGI server: Glance's fallback is
            # that server's binary, which cannot run prlimit. Every import
            # that converts then fails, so nothing is available.
            service = context.deployment.python if context.deployment else None
            return Verdict(
                Status.UNAVAILABLE,
                f"[wsgi] python_interpreter is unset: Glance runs prlimit with {python_source}, "
                "and every conversion fails",
                remediation=[
                    f"set [wsgi] python_interpreter = {service or '/path/to/the/venv/bin/python'}"
                ],
            )
        legacy = legacy if legacy != python else None
        return Conversion(path, python, target, asked_by, full, legacy)

    def _as_glance_does(
        self,
        planned: Conversion,
        python: str | None,
        target: str,
        context: ProbeContext,
        details: dict[str, JSON],
    ) -> Verdict | None:
        """Glance's qemu-img calls with ``python``'s prlimit, or why one fails."""
        import shutil
        import tempfile

        workdir = tempfile.mkdtemp(prefix="glance-features-qemu-")
        try:
            jobs = _jobs(planned, python, target, workdir, context.user)
            # Independent of each other: run side by side, judged in Glance's order.
            runs = self._side_by_side(jobs, context, workdir)
            return self._judge_runs(runs, planned, python, target, details)
        except (OSError, KeyError) as exc:
            cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return Verdict(Status.UNKNOWN, f"could not prepare the check in {workdir}: {cause}")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _judge_runs(
        self,
        runs: dict[str, Outcome | Verdict],
        planned: Conversion,
        python: str | None,
        target: str,
        details: dict[str, JSON],
    ) -> Verdict | None:
        """The first of Glance's calls that fails, in Glance's order; None: all worked."""
        version_run = runs["version"]
        if isinstance(version_run, Verdict):
            return version_run
        match = _VERSION_RE.search(version_run.text)
        if match is None:
            return Verdict(
                Status.UNAVAILABLE, f"{planned.path} --version did not print a qemu-img version"
            )
        details["version"] = match.group(1)
        if not planned.full:
            details["checked"] = "qemu-img --version (no option enables image conversion)"
            return None
        inspected = runs["info"]
        if isinstance(inspected, Verdict):
            return self._blame_interpreter(inspected, python)
        try:
            found = json.loads(inspected.text).get("format")
        except (ValueError, AttributeError):
            found = None
        if found != "qcow2":
            why = "qemu-img info printed no usable JSON"
            if python is not None:
                why += (
                    f" (through {python} -m oslo_concurrency.prlimit: is it the "
                    "Python that runs Glance?)"
                )
            return Verdict(Status.UNAVAILABLE, why, remediation=[INTERPRETER_FIX] if python else [])
        converted_run = runs["convert"]
        if isinstance(converted_run, Verdict):
            return converted_run
        details["checked"] = (
            f"qemu-img info{' via prlimit' if python else ''} and convert qcow2 -> {target}"
        )
        return None

    @staticmethod
    def _legacy_task(context: ProbeContext, details: dict[str, JSON]) -> str | Verdict | None:
        """The interpreter the legacy import task (tasks API, run when
        ``[taskflow_executor] conversion_format`` is set) runs prlimit with, or
        why it cannot; None when nothing sets conversion_format. Its
        ``qemu-img info`` calls pass no ``python_exec`` (base_import._ImportToFS,
        introspect._Introspect), so ``[wsgi] python_interpreter`` never applies:
        oslo.concurrency takes the service's ``sys.executable``."""
        if not context.settings.get(CONVERSION_FORMAT):
            return None
        python, source = service_executable(context)
        if python is None and context.glance_version is None and context.served_by is None:
            # Nothing shows a Glance or how it runs: its sys.executable is not
            # known, not a server's binary. Nothing to try beyond the rest.
            details.update(
                legacy_python=None,
                legacy_python_from="not known: no Glance found to name the service's interpreter",
            )
            return None
        details.update(legacy_python=python, legacy_python_from=source)
        if python is not None:
            return python
        return Verdict(
            Status.UNAVAILABLE,
            f"{CONVERSION_FORMAT.label} is set, and the legacy import task (POST /v2/tasks) "
            f"runs qemu-img info through oslo_concurrency.prlimit with {source}, not a "
            "Python: Glance starts and serves, and every such task fails at its first step "
            "([wsgi] python_interpreter does not apply to it)",
            remediation=[
                f"unset {CONVERSION_FORMAT.label} and enable image_conversion in "
                "[image_import_opts] image_import_plugins (it honours [wsgi] "
                "python_interpreter), or serve Glance with pyuwsgi or the eventlet glance-api",
            ],
        )

    @staticmethod
    def _blame_interpreter(failure: Verdict, python: str | None) -> Verdict:
        """Name the interpreter when the prlimit wrapper, not qemu-img, failed."""
        why = failure.reason
        if python is None or ("oslo_concurrency" not in why and "cannot be run" not in why):
            return failure
        return dataclasses.replace(
            failure,
            reason=f"{why} ([wsgi] python_interpreter {python} cannot run "
            "oslo_concurrency.prlimit)",
            remediation=failure.remediation or [INTERPRETER_FIX],
        )

    def _side_by_side(
        self, jobs: dict[str, tuple[list[str], bool]], context: ProbeContext, workdir: str
    ) -> dict[str, Outcome | Verdict]:
        from glance_features._platform import green

        threading = green.original("threading")
        runs: dict[str, Outcome | Verdict] = {}
        # The probe's other detectors wait until every job's child is started
        # (registry.HEAD_START), or runner.HEAD_START has passed.
        unstarted = set(jobs)
        counting = threading.Lock()

        def started(name: str) -> None:
            with counting:
                if name not in unstarted:
                    return
                unstarted.discard(name)
                if unstarted:
                    return
            context.launched()

        def run(name: str, argv: list[str], judge_stderr: bool) -> None:
            try:
                runs[name] = self._run(argv, context, workdir, judge_stderr, lambda: started(name))
            except Exception as exc:  # a thread's failure is this run's verdict
                runs[name] = Verdict(Status.UNKNOWN, f"qemu-img {name} could not be run: {exc}")
            finally:
                started(name)

        workers = []
        for name, job in jobs.items():
            worker = threading.Thread(target=run, args=(name, *job), daemon=True)
            try:
                worker.start()
            except RuntimeError:  # no thread to be had (an address-space limit): in turn
                run(name, *job)
                continue
            workers.append(worker)
        for worker in workers:
            worker.join(context.remaining() + 1.0)
        for name in jobs:
            runs.setdefault(
                name, Verdict(Status.UNKNOWN, f"qemu-img {name} did not finish in time")
            )
        return runs

    def _run(
        self,
        argv: list[str],
        context: ProbeContext,
        workdir: str,
        judge_stderr: bool = True,
        started: Callable[[], None] | None = None,
    ) -> Outcome | Verdict:
        from glance_features._platform import proc

        timeout = context.remaining()
        label = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(argv[:6]))
        try:
            outcome = proc.run(argv, timeout, cwd=workdir, user=context.user, started=started)
        except OSError as exc:
            return Verdict(Status.UNAVAILABLE, f"{argv[0]} cannot be run: {exc.strerror or exc}")
        failure = outcome.describe_failure(label, timeout)
        if failure is None and judge_stderr and outcome.stderr.strip():
            # Glance treats any stderr output as a failed import.
            first = outcome.error_text.strip().splitlines()[0][:200]
            failure = f"{label} wrote to stderr, which fails Glance's import: {first}"
        if failure is not None:
            status = Status.UNKNOWN if outcome.timed_out else Status.UNAVAILABLE
            return Verdict(status, failure)
        return outcome


def write_tiny_qcow2(path: str, size: int = 1 << 20) -> None:
    """A valid, empty qcow2 (version 2, 64 KiB clusters) of ``size`` bytes:
    header, refcount table, one refcount block, an empty L1 table. qemu-img
    check, info and convert accept it, and so does Glance's format
    inspector; 256 KiB, mostly holes."""
    import struct

    cluster = 1 << 16
    header = struct.pack(
        ">4sIQIIQIIQQIIQ",
        b"QFI\xfb",  # magic
        2,  # version
        0,  # backing file offset
        0,  # backing file name length
        16,  # cluster bits
        size,
        0,  # no encryption
        1,  # L1 entries
        3 * cluster,  # L1 table offset
        1 * cluster,  # refcount table offset
        1,  # refcount table clusters
        0,  # snapshots
        0,  # snapshots offset
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.pwrite(fd, header, 0)
        os.pwrite(fd, struct.pack(">Q", 2 * cluster), cluster)  # -> the refcount block
        os.pwrite(fd, struct.pack(">4H", 1, 1, 1, 1), 2 * cluster)  # clusters 0-3 in use
        os.pwrite(fd, bytes(8), 3 * cluster)  # L1: nothing allocated
        os.ftruncate(fd, 4 * cluster)
    finally:
        os.close(fd)


def which_for(user: str | None, name: str, search: str) -> str | None:
    """``name`` on ``search`` as ``user`` would find it (None: this process)."""
    from glance_features._platform import proc

    if user is None:
        return proc.which(name, search)
    import grp
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return proc.which(name, search)
    groups = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    for directory in search.split(os.pathsep):
        if not directory or not os.path.isabs(directory):
            continue
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and _may_execute(candidate, entry.pw_uid, groups):
            return candidate
    return None


def _may_execute(path: str, uid: int, groups: set[int]) -> bool:
    """The permission bits' answer for ``uid`` (ACLs aside), the file and
    every directory above it."""
    current, want = os.path.realpath(path), stat.S_IXUSR
    while True:
        try:
            st = os.stat(current)
        except OSError:
            return False
        if uid == 0:
            ok = not stat.S_ISREG(st.st_mode) or bool(st.st_mode & 0o111)
        elif st.st_uid == uid:
            ok = bool(st.st_mode & want)
        elif st.st_gid in groups:
            ok = bool(st.st_mode & (want >> 3))
        else:
            ok = bool(st.st_mode & (want >> 6))
        if not ok:
            return False
        parent = os.path.dirname(current)
        if parent == current:
            return True
        current = parent


def replaceable_by_others(found: str) -> str | None:
    """Where a user other than root could swap what runs as qemu-img: the
    path found on PATH, each symbolic link on the way to the binary and the
    directories above each, or None."""
    current = found
    for _ in range(40):  # the kernel's own limit on links followed
        unsafe = writable_by_others(current)
        if unsafe is not None or not os.path.islink(current):
            return unsafe
        if os.lstat(current).st_uid != 0:
            return current  # its owner can point it elsewhere
        current = os.path.join(os.path.dirname(current), os.readlink(current))
    return current  # a loop of links: nothing trustworthy runs here


def writable_by_others(path: str) -> str | None:
    """The binary or a directory above it, if a user other than root can change
    or replace it.

    The binary's own directory must be writable by root alone: in a shared one,
    sticky or not, anyone may plant a qemu-img there the moment this one is
    gone. Above it, a directory is replaceable by whoever may write its parent,
    except that in a sticky parent (``/tmp``) only the owner may: a root-owned
    0755 directory under ``/tmp`` is as safe as one under ``/usr``.
    """
    current = path
    first = True
    while True:
        try:
            st = os.lstat(current)
        except OSError:
            return None
        if st.st_uid != 0:
            return current
        writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
        if writable and not stat.S_ISLNK(st.st_mode) and not sticky_dir:
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        try:
            parent_st = os.stat(parent)
        except OSError:
            return None
        shared = parent_st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if shared and (first or not parent_st.st_mode & stat.S_ISVTX):
            return parent
        first = False
        current = parent


def _fake(status: Status, settings: Settings) -> Verdict:
    """What this detector says in ``status`` on the fake host, for test doubles."""
    from glance_features import fake_host

    target = settings.get(CONVERSION_FORMAT) or settings.get(OUTPUT_FORMAT) or "raw"
    python = settings.get(PYTHON_INTERPRETER)
    details: dict[str, JSON] = {"path": fake_host.QEMU_IMG, "searched": fake_host.SEARCHED}
    if status is Status.UNAVAILABLE:
        details["path"] = None
        return Verdict(
            status, "qemu-img not found on PATH", details, ["apt-get install -y qemu-utils"]
        )
    degraded = status is Status.DEGRADED
    details.update(
        resolved_path=fake_host.QEMU_IMG,
        # Degraded is the real detector's commonest caveat: no interpreter set.
        python_interpreter=None if degraded else python or fake_host.PYTHON,
        python_interpreter_from="[wsgi] python_interpreter" + (" is unset" if degraded else ""),
        output_format=target,
        version=fake_host.QEMU_VERSION,
        formats=list(fake_host.QEMU_FORMATS),
        checked=f"qemu-img info{'' if degraded else ' via prlimit'} and convert qcow2 -> {target}",
    )
    if status is Status.DEGRADED:
        return Verdict(
            status,
            f"qemu-img {fake_host.QEMU_VERSION} at {fake_host.QEMU_IMG} converts to {target}, "
            "but [wsgi] python_interpreter is unset: under uwsgi or mod_wsgi Glance then "
            "runs prlimit with the server's binary and every conversion fails",
            details,
            ["set [wsgi] python_interpreter = /path/to/the/venv/bin/python"],
        )
    return Verdict(
        status,
        f"qemu-img {fake_host.QEMU_VERSION} at {fake_host.QEMU_IMG} inspects and converts "
        f"qcow2 to {target} as Glance runs it",
        details,
        [],
    )
