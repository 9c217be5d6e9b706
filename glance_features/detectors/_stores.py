"""What the glance_store detectors share: which backends the configuration
enables, and one check run with the service user's eyes.

Glance 33 (``glance.common.wsgi_app.init_app``) chooses between two modes:
``[DEFAULT] enabled_backends`` (a DictOpt ``id:driver,...``; each backend's
options live in the group named by its id, and Glance adds two reserved file
stores for staging and tasks), or, when that is empty, the legacy
``[glance_store] stores`` list whose options all live in ``[glance_store]``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from glance_features._platform.proc import current_user
from glance_features.catalog import RequiredWhen as RequiredWhen
from glance_features.detector import ProbeContext, result
from glance_features.model import FeatureResult, Status
from glance_features.settings import ConfigError as ConfigError
from glance_features.settings import Option
from glance_features.settings import Settings as Settings

ENABLED_BACKENDS = Option("DEFAULT", "enabled_backends", "dict")
DEFAULT_BACKEND = Option("glance_store", "default_backend")
STORES = Option("glance_store", "stores", "list", default=("file", "http"))
DEFAULT_STORE = Option("glance_store", "default_store", default="file")
SELECTION = (ENABLED_BACKENDS, DEFAULT_BACKEND, STORES, DEFAULT_STORE)

# glance.common.wsgi_app.RESERVED_STORES: added whenever enabled_backends is set.
RESERVED = {"os_glance_staging_store": "file", "os_glance_tasks_store": "file"}
LEGACY_GROUP = "glance_store"

# glance_store 5.7's entry points (group glance_store.drivers) -> driver.
DRIVER_OF_ENTRY = {
    "file": "file",
    "http": "http",
    "rbd": "rbd",
    "s3": "s3",
    "swift": "swift",
    "cinder": "cinder",
    "vmware": "vmware",
    "glance.store.filesystem.Store": "file",
    "glance.store.http.Store": "http",
    "glance.store.rbd.Store": "rbd",
    "glance.store.s3.Store": "s3",
    "glance.store.swift.Store": "swift",
    "glance.store.cinder.Store": "cinder",
    "glance.store.vmware_datastore.Store": "vmware",
}

STATUS_RANK = {Status.AVAILABLE: 0, Status.DEGRADED: 1, Status.UNKNOWN: 2, Status.UNAVAILABLE: 3}


@dataclasses.dataclass(frozen=True)
class Backend:
    """One configured store: its id, driver, and the group holding its options."""

    id: str
    driver: str
    group: str
    reserved: bool = False

    def get(self, settings: Settings, name: str, kind: str = "str", default: Any = None) -> Any:
        return settings.get(Option(self.group, name, kind, default))

    def is_set(self, settings: Settings, name: str) -> bool:
        return settings.is_set(Option(self.group, name))

    def label(self, name: str) -> str:
        return f"[{self.group}] {name}"


def multi_store(settings: Settings) -> bool:
    return bool(settings.get(ENABLED_BACKENDS))


def backends(settings: Settings, driver: str) -> list[Backend]:
    """The backends of ``driver`` Glance would configure with these settings;
    none when no Glance configuration was read or given at all."""
    if not settings.config_files and not any(settings.is_set(o) for o in SELECTION):
        return []
    enabled = settings.get(ENABLED_BACKENDS)
    if enabled:
        found = [
            Backend(name, driver, name)
            for name, entry in dict(enabled).items()
            if DRIVER_OF_ENTRY.get(str(entry).strip()) == driver and name not in RESERVED
        ]
        # Glance adds its reserved stores itself (they are file stores).
        found += [Backend(n, d, n, True) for n, d in RESERVED.items() if d == driver]
        return found
    # Legacy mode: one store per driver, options in [glance_store].
    entries = {DRIVER_OF_ENTRY.get(str(e).strip()) for e in settings.get(STORES) or ()}
    return [Backend(driver, driver, LEGACY_GROUP)] if driver in entries else []


def user_backends(settings: Settings) -> dict[str, str]:
    """``enabled_backends`` as the operator wrote it (Glance's reserved stores aside)."""
    enabled = settings.get(ENABLED_BACKENDS) or {}
    return {k: str(v) for k, v in dict(enabled).items() if k not in RESERVED}


def enabled(settings: Settings, driver: str) -> bool:
    """True when the configuration enables a backend of ``driver``.

    Without any Glance configuration nothing is enabled: the probe cannot tell
    a Glance API host from any other, and the legacy defaults would otherwise
    make every host need a file store.
    """
    return bool(backends(settings, driver))


def required_when(driver: str) -> tuple[RequiredWhen, ...]:
    rows = [
        RequiredWhen(
            f"[DEFAULT] enabled_backends names a backend of type {driver}",
            lambda s: multi_store(s) and any(not b.reserved for b in backends(s, driver)),
        ),
        RequiredWhen(
            f"[glance_store] stores includes {driver} (legacy single-store mode)",
            lambda s: not multi_store(s) and enabled(s, driver),
        ),
    ]
    return tuple(rows)


# Runs as the service user, in `python -I -c`, with the probing process's own
# sys.path: the modules the service can import are the ones its interpreter
# finds there. Site still runs (not -S), so the import hooks that .pth files
# of the same environment install (editable installs, as devstack makes them)
# are there too. Standard library only.
CHECK = r"""
import errno, importlib, json, os, sys

def try_import(name):
    try:
        module = importlib.import_module(name)
    except BaseException as exc:
        return {"ok": False, "error": type(exc).__name__ + ": " + str(exc)[:300]}
    return {"ok": True, "file": getattr(module, "__file__", None),
            "version": str(getattr(module, "__version__", "") or "") or None}

def readable(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return {"ok": False, "errno": errno.errorcode.get(exc.errno, str(exc.errno)),
                "error": exc.strerror}
    try:
        os.read(fd, 1)
    except IsADirectoryError:
        return {"ok": False, "errno": "EISDIR", "error": "is a directory"}
    except OSError as exc:
        return {"ok": False, "errno": errno.errorcode.get(exc.errno, str(exc.errno)),
                "error": exc.strerror}
    finally:
        os.close(fd)
    return {"ok": True}

def writable_dir(path):
    # glance_store's file store: os.access(W_OK) on an existing directory,
    # os.makedirs when it is missing. Then one real file, to see a full or
    # read-only file system the access check alone cannot.
    out = {"exists": os.path.isdir(path)}
    probe = path
    if not out["exists"]:
        if os.path.lexists(path):
            return dict(out, ok=False, errno="ENOTDIR", error="exists and is not a directory")
        while not os.path.isdir(probe):
            parent = os.path.dirname(probe)
            if parent == probe:
                break
            probe = parent
        out["probed_dir"] = probe
    try:
        st = os.statvfs(probe)
        out["free_bytes"] = st.f_bavail * st.f_frsize
        out["free_inodes"] = st.f_favail
        out["read_only_mount"] = bool(st.f_flag & os.ST_RDONLY)
    except OSError:
        pass
    if not os.access(probe, os.W_OK | os.X_OK):
        number = errno.EROFS if out.get("read_only_mount") else errno.EACCES
        return dict(out, ok=False, errno=errno.errorcode[number], error=os.strerror(number),
                    glance_access=False)
    out["glance_access"] = True
    name = os.path.join(probe, ".glance-features-probe-" + os.urandom(8).hex())
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
    except OSError as exc:
        return dict(out, ok=False, errno=errno.errorcode.get(exc.errno, str(exc.errno)),
                    error=exc.strerror, step="create a file")
    try:
        os.write(fd, b"x")
        os.fsync(fd)
    except OSError as exc:
        return dict(out, ok=False, errno=errno.errorcode.get(exc.errno, str(exc.errno)),
                    error=exc.strerror, step="write a file")
    finally:
        os.close(fd)
        try:
            os.unlink(name)
        except OSError:
            pass
    return dict(out, ok=True)

def executable(path):
    return {"ok": os.access(path, os.X_OK)}

def main():
    wanted = json.loads(sys.argv[1])
    sys.path[:] = wanted["path"]
    out = {"uid": os.geteuid()}
    out["modules"] = {m: try_import(m) for m in wanted.get("modules", [])}
    out["read"] = {p: readable(p) for p in wanted.get("read", [])}
    out["write"] = {p: writable_dir(p) for p in wanted.get("write", [])}
    out["exec"] = {p: executable(p) for p in wanted.get("exec", [])}
    print(json.dumps(out))

main()
"""


class CheckFailed(Exception):
    """The check child could not run or printed no result."""


def service_path() -> list[str]:
    """This interpreter's import path, absolute entries only (never a cwd)."""
    return [p for p in sys.path if p and os.path.isabs(p)]


def run_check(
    context: ProbeContext,
    modules: Sequence[str] = (),
    read: Iterable[str] = (),
    write: Iterable[str] = (),
    executables: Iterable[str] = (),
    locate_only: bool = False,
) -> dict[str, Any]:
    """Import ``modules``, read ``read``, write into ``write`` and check that
    ``executables`` may be run, as the service user, with this interpreter.

    ``locate_only`` (nothing of the driver is configured): only find the
    modules' top-level packages on this interpreter's path, in this process,
    without importing them; a probe of a host that uses no such store stays
    cheap (boto3 alone takes over half a second to import).
    """
    if locate_only:
        return {
            "modules": {m: _locate(m) for m in modules},
            "read": {},
            "write": {},
            "exec": {},
            "python": python_facts(),
        }
    # Imports read nothing the operator configured: a child of this process's
    # own account answers them, with this interpreter's import path. With none
    # to try (the file store) no child is started: it cost a CLI run 25-40 ms.
    if modules:
        found = run_python(
            dataclasses.replace(context, user=None),
            CHECK,
            {"modules": list(modules), "read": [], "write": [], "exec": []},
        )
    else:
        found = {"modules": {}, "python": python_facts()}
    # Files are looked at with the service user's eyes, in a fork: that user
    # need not be able to execute this interpreter (one under root's home).
    found.update(
        run_files(context, sorted(set(read)), sorted(set(write)), sorted(set(executables)))
    )
    return found


def run_files(
    context: ProbeContext, read: list[str], write: list[str], executables: list[str]
) -> dict[str, Any]:
    from glance_features._platform import proc

    namespace: dict[str, Any] = {"__name__": "glance_features_store_check"}
    exec(compile(CHECK.replace("\nmain()\n", "\n"), "<store check>", "exec"), namespace)

    def look() -> dict[str, Any]:
        return {
            "read": {p: namespace["readable"](p) for p in read},
            "write": {p: namespace["writable_dir"](p) for p in write},
            "exec": {p: namespace["executable"](p) for p in executables},
        }

    if not (read or write or executables):
        return {"read": {}, "write": {}, "exec": {}}
    user = context.user if context.user and context.user != current_user() else None
    if user is None:
        return look()
    try:
        found: dict[str, Any] = proc.call_as(user, look, (), context.remaining())
    except (TimeoutError, RuntimeError, KeyError, OSError) as exc:
        raise CheckFailed(str(exc)) from None
    return found


def _locate(module: str) -> dict[str, Any]:
    from glance_features._platform import dists

    top = module.split(".")[0]
    spec = dists.find_spec(top)
    if spec is None:
        return {"ok": False, "error": f"ModuleNotFoundError: No module named {top!r}"}
    return {"ok": True, "file": getattr(spec, "origin", None), "located_only": True}


def run_python(context: ProbeContext, code: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Run ``code`` in ``python -I`` as the service user, with this
    interpreter's import path in ``payload["path"]``; its stdout is JSON."""
    from glance_features._platform import proc

    timeout = context.remaining()
    user = context.user if context.user and context.user != current_user() else None
    who = user or current_user()
    try:
        outcome = proc.run(
            proc.python_argv(
                interpreter(), "-c", code, json.dumps({**payload, "path": service_path()})
            ),
            timeout,
            user=user,
        )
    except (OSError, KeyError) as exc:
        # As the service user: an interpreter it cannot run, it could not run Glance with.
        raise CheckFailed(f"cannot run {interpreter()} as {who}: {exc}") from None
    failure = outcome.describe_failure(f"the check as {who}", timeout)
    if failure is not None:
        raise CheckFailed(failure)
    try:
        found: dict[str, Any] = json.loads(outcome.text)
    except ValueError:
        raise CheckFailed("the check printed no result") from None
    found["python"] = python_facts()
    return found


def python_facts() -> dict[str, Any]:
    """The service's interpreter: a virtualenv or not, and whether it sees the
    system's site-packages (where distribution packages such as python3-rbd go)."""
    import sysconfig

    system_site = None
    cfg = os.path.join(sys.prefix, "pyvenv.cfg")
    try:
        with open(cfg, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition("=")
                if key.strip() == "include-system-site-packages":
                    system_site = value.strip().lower() == "true"
    except OSError:
        pass
    return {
        "executable": sys.executable,
        "version": sys.version.split()[0],
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        "venv": sys.prefix != sys.base_prefix,
        "system_site_packages": system_site,
        "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
    }


def interpreter() -> str:
    """A Python binary for the check child. Inside uWSGI or mod_wsgi
    ``sys.executable`` is the server's binary, so take the interpreter of the
    same prefix and version; the child gets this process's import path anyway."""
    if os.path.basename(sys.executable).startswith("python"):
        return sys.executable
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for prefix in (sys.prefix, sys.base_prefix):
        for name in (version, "python3"):
            candidate = os.path.join(prefix, "bin", name)
            if os.access(candidate, os.X_OK):
                return candidate
    return sys.executable


def checked_as(context: ProbeContext) -> str:
    return context.user or current_user()


def missing_modules(found: Mapping[str, Any], modules: Iterable[str]) -> dict[str, str]:
    """Module -> import error, for the modules that did not import."""
    return {
        m: str(found["modules"][m].get("error"))
        for m in modules
        if not found["modules"].get(m, {}).get("ok")
    }


def interpreter_note(found: Mapping[str, Any]) -> str:
    python = found.get("python", {})
    where = f"{python.get('executable')} (Python {python.get('version')})"
    return where


@dataclasses.dataclass
class Verdict:
    """One backend's finding, folded with the others into the driver's result."""

    status: Status
    reason: str
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    remediation: list[str] = dataclasses.field(default_factory=list)


def fold(
    name: str,
    driver: str,
    verdicts: Mapping[str, Verdict],
    common: Mapping[str, Any],
    when_none: Callable[[], Verdict],
) -> FeatureResult:
    """One result per driver: the worst backend decides, each backend's own
    facts and reason stay in ``details["backends"]``."""
    details: dict[str, Any] = dict(common)
    if not verdicts:
        verdict = when_none()
        details.update(verdict.details)
        details["backends"] = {}
        return result(name, verdict.status, verdict.reason, details, verdict.remediation)
    details["backends"] = {
        backend_id: {**v.details, "status": v.status.value, "reason": v.reason}
        for backend_id, v in verdicts.items()
    }
    worst = max(verdicts.values(), key=lambda v: STATUS_RANK[v.status]).status
    fine = [b for b, v in verdicts.items() if v.status is Status.AVAILABLE]
    told = {b: v for b, v in verdicts.items() if v.status is not Status.AVAILABLE}
    if not told and len(verdicts) > 1:
        reason = f"all {len(verdicts)} {driver} backends work: " + ", ".join(fine)
    else:
        # The backends that need attention first; the others only by name.
        told = told or dict(verdicts)
        # Backends with the same finding (a missing module) are named together.
        by_reason: dict[str, list[str]] = {}
        for backend_id, verdict in told.items():
            by_reason.setdefault(verdict.reason, []).append(repr(backend_id))
        reason = "; ".join(
            f"{driver} backend{'s' if len(ids) > 1 else ''} {', '.join(ids)}: {text}"
            for text, ids in by_reason.items()
        )
        rest = [b for b in fine if b not in told]
        if rest:
            reason += "; working: " + ", ".join(rest)
    fixes: list[str] = []
    for verdict in verdicts.values():
        fixes += [f for f in verdict.remediation if f not in fixes]
    return result(name, worst, reason, details, fixes)


def option_value(
    backend: Backend, settings: Settings, name: str, kind: str = "str", default: Any = None
) -> tuple[Any, str | None]:
    """An option's value, or the config error that stops Glance from reading it."""
    try:
        return backend.get(settings, name, kind, default), None
    except ConfigError as exc:
        return None, str(exc)


def unknown(name: str, reason: str, details: Mapping[str, Any] | None = None) -> FeatureResult:
    return result(name, Status.UNKNOWN, reason, details or {})


def system_copies(module: str) -> list[str]:
    """Where the distribution's packages put ``module`` (python3-rbd and the
    like), whether or not this interpreter can see those directories."""
    import glob

    patterns = [
        "/usr/lib/python3/dist-packages",  # Debian, Ubuntu
        "/usr/lib/python3*/site-packages",  # Arch, Alpine
        "/usr/lib64/python3*/site-packages",  # RHEL, SUSE (compiled modules)
    ]
    found: list[str] = []
    for pattern in patterns:
        for directory in sorted(glob.glob(pattern)):
            found += sorted(glob.glob(os.path.join(directory, f"{module}.*.so")))
            found += sorted(glob.glob(os.path.join(directory, f"{module}.so")))
            if os.path.isdir(os.path.join(directory, module)):
                found.append(os.path.join(directory, module))
    return found


def python_details(found: Mapping[str, Any]) -> dict[str, Any]:
    python = dict(found.get("python", {}))
    return {
        "python": python.get("executable"),
        "python_version": python.get("version"),
        "venv": python.get("venv"),
        "system_site_packages": python.get("system_site_packages"),
    }


def modules_verdict(
    found: Mapping[str, Any],
    modules: Sequence[str],
    requirement: str,
    consequence: str,
) -> Verdict | None:
    """Unavailable when any of ``modules`` does not import, else None."""
    from glance_features.remediation import pip_install

    missing = missing_modules(found, modules)
    if not missing:
        return None
    python = interpreter_note(found)
    first = next(iter(missing.items()))
    names = ", ".join(dict.fromkeys(m.split(".")[0] for m in missing))
    return Verdict(
        Status.UNAVAILABLE,
        f"{names} cannot be imported by the service's interpreter {python} "
        f"({first[1]}): {consequence}",
        {"missing_modules": missing},
        [pip_install(requirement, found.get("python", {}).get("executable"))],
    )


def unimportable(
    modules: Sequence[str], requirement: str, consequence: str
) -> Callable[[dict[str, Any]], Verdict | None]:
    """The usual ``missing`` for :func:`probe_driver`: :func:`modules_verdict`."""
    return lambda found: modules_verdict(found, modules, requirement, consequence)


def option_files(settings: Settings, *options: str) -> Callable[[Backend], list[str]]:
    """The usual ``read`` for :func:`probe_driver`: the files a backend's
    ``options`` name, those that are set."""
    return lambda backend: [str(v) for o in options if (v := backend.get(settings, o))]


def probe_driver(
    name: str,
    driver: str,
    context: ProbeContext,
    modules: Sequence[str],
    missing: Callable[[dict[str, Any]], Verdict | None],
    judge: Callable[[Backend, dict[str, Any]], Verdict],
    read: Callable[[Backend], list[str]] = lambda backend: [],
    executables: Sequence[str] = (),
    facts: Callable[[dict[str, Any]], dict[str, Any]] = lambda found: {},
) -> FeatureResult:
    """The common shape: one check child for every backend of ``driver``, the
    bindings' verdict first, then each backend judged on its own. ``facts``
    adds the driver's own entries to the result's details."""
    found_backends = backends(context.settings, driver)
    wanted: list[str] = []
    for backend in found_backends:
        try:
            wanted += read(backend)
        except ConfigError:
            pass  # judge() reports it
    user = checked_as(context)
    try:
        found = run_check(
            context,
            modules=modules,
            read=wanted,
            executables=executables,
            locate_only=not found_backends,
        )
    except CheckFailed as exc:
        return unknown(name, str(exc), {"checked_as": user})
    common: dict[str, Any] = {"checked_as": user, **python_details(found), **facts(found)}
    absent = missing(found)
    verdicts = {b.id: absent or judge(b, found) for b in found_backends}

    def none() -> Verdict:
        if absent is not None:
            return Verdict(
                Status.UNAVAILABLE,
                absent.reason + f" (no {driver} backend is configured)",
                absent.details,
                absent.remediation,
            )
        tops = sorted({m.split(".")[0] for m in modules})
        listed = " and ".join([", ".join(tops[:-1]), tops[-1]] if len(tops) > 1 else tops)
        return Verdict(
            Status.AVAILABLE,
            f"{listed} installed (not imported: no {driver} backend is configured)",
        )

    return fold(name, driver, verdicts, common, none)


# What glance_store's configure() raising BadStoreConfiguration outside
# configure_add() does (swift, vmware), or a driver module that fails to import
# (cinder without os-brick): create_(multi_)stores lets it through init_app().
FAILS_TO_START = (
    "Glance fails to start (glance_store's create_multi_stores() or create_stores() raises it)"
)


def readable_verdict(
    found: Mapping[str, Any], path: str, user: str, label: str, effect: str
) -> Verdict | None:
    seen = found["read"].get(path, {})
    if seen.get("ok"):
        return None
    return Verdict(
        Status.UNAVAILABLE,
        f"{label} {path} is not readable by {user}: {seen.get('errno')} ({seen.get('error')})"
        f": {effect}",
        {label: path},
        [f"chgrp {user} {path} && chmod g+r {path}"],
    )


def tcp_reach(host: str, port: int, context: ProbeContext) -> str | None:
    """None when ``host:port`` accepts a TCP connection within the deadline, else why not."""

    from glance_features._platform import green

    real_socket = green.original("socket")
    timeout = min(5.0, context.remaining())
    if timeout <= 0:
        return "no time left"
    try:
        with real_socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"no answer within {timeout:.1f} s"
    except OSError as exc:
        return str(exc.strerror or exc)
