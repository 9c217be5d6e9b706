"""What the glance_store detectors share: the base class that judges each
backend the configuration enables (:mod:`._backends` finds them) with one
check run with the service user's eyes, and folds the verdicts into one."""

from __future__ import annotations

import abc
import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import ClassVar

from glance_features import checks, runas
from glance_features.catalog import Entry
from glance_features.detector import DetectorBase, ProbeContext, result
from glance_features.detectors._backends import Backend, backends
from glance_features.errors import ConfigError
from glance_features.model import JSON, Details, FeatureResult, Status, Verdict
from glance_features.runas import checked_as
from glance_features.settings import Settings

STATUS_RANK = {Status.AVAILABLE: 0, Status.DEGRADED: 1, Status.UNKNOWN: 2, Status.UNAVAILABLE: 3}


@dataclasses.dataclass(frozen=True)
class Found:
    """What the service's interpreter imported and its account could reach."""

    python: checks.PythonFound
    modules: Mapping[str, checks.ImportFound]
    files: checks.FilesFound
    located_only: bool = False  # modules found on the path, not imported

    def missing(self, modules: Iterable[str]) -> dict[str, str]:
        """Module -> import error, for the modules that did not import."""
        failures = {m: self.modules[m]["failure"] for m in modules if m in self.modules}
        return {m: failure["error"] for m, failure in failures.items() if failure is not None}

    def read(self, path: str) -> checks.PathFound:
        return self.files["read"][path]

    @property
    def where(self) -> str:
        return f"{self.python['executable']} (Python {self.python['version']})"


NO_FILES = checks.FilesFound(uid=-1, read={}, write={}, exec={})


def find(
    context: ProbeContext,
    modules: Sequence[str] = (),
    read: Iterable[str] = (),
    write: Iterable[str] = (),
    executables: Iterable[str] = (),
    locate_only: bool = False,
) -> Found:
    """Import ``modules`` in the service's interpreter, then read ``read``,
    write into ``write`` and check that ``executables`` may be run, as the
    service's account. Raises :class:`runas.CheckFailed`.

    ``locate_only`` (nothing of the driver is configured): only find the
    modules' top-level packages on the interpreter's path, without importing
    them, so a probe of a host that uses no such store stays cheap (boto3
    alone takes over half a second to import).
    """
    if runas.is_service_interpreter(context) and (locate_only or not modules):
        # Finding packages, unlike importing them, reads nothing as the account
        # would, and with nothing to import no child is worth its 25-40 ms.
        imported = checks.imports(list(modules), locate_only)
    else:
        imported = runas.run(context, checks.imports, list(modules), locate_only)
    wanted = (sorted(set(read)), sorted(set(write)), sorted(set(executables)))
    files = NO_FILES
    if any(wanted):
        files = runas.run(context, checks.files, *wanted)
    return Found(imported["python"], imported["modules"], files, locate_only)


def fold(
    name: str,
    driver: str,
    verdicts: Mapping[str, Verdict],
    common: Details,
    when_none: Callable[[], Verdict],
) -> FeatureResult:
    """One result per driver: the worst backend decides, each backend's own
    facts and reason stay in ``details["backends"]``."""
    details: dict[str, JSON] = dict(common)
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


def unknown(name: str, reason: str, details: Details | None = None) -> FeatureResult:
    return result(name, Status.UNKNOWN, reason, details or {})


def glance_store_version(context: ProbeContext) -> str | None:
    """The glance_store the service's interpreter has, or None if unknown."""
    try:
        found = runas.run(context, checks.interpreter, ["glance_store"])
    except runas.CheckFailed:
        return None
    dist = found["distributions"].get("glance_store")
    return str(dist["version"]) if dist else None


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


# What glance_store's configure() raising BadStoreConfiguration outside
# configure_add() does (swift, vmware), or a driver module that fails to import
# (cinder without os-brick): create_(multi_)stores lets it through init_app().
FAILS_TO_START = (
    "Glance fails to start (glance_store's create_multi_stores() or create_stores() raises it)"
)


class StoreDetector(DetectorBase):
    """One glance_store driver: what it imports and reads, as class attributes,
    and one :meth:`judge` of each configured backend (threadpoolctl's
    ``LibController`` is the model). A new store is a subclass and a line in
    :data:`glance_features.registry.BUILTIN`.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    catalog: ClassVar[Entry]
    driver: ClassVar[str]
    # What the driver module imports, and what glance_store does without them.
    modules: ClassVar[tuple[str, ...]] = ()
    without_modules: ClassVar[str] = "glance_store disables adding images to these stores"
    # Options naming files the service account must be able to read.
    file_options: ClassVar[tuple[str, ...]] = ()

    def probe(self, context: ProbeContext) -> FeatureResult:
        """The bindings' verdict first, then each backend judged on its own."""
        found_backends = backends(context.settings, self.driver)
        wanted: list[str] = []
        for backend in found_backends:
            try:
                wanted += self.files_to_read(backend, context)
            except ConfigError:
                pass  # judge() says so, for this backend alone
        user = checked_as(context)
        try:
            found = find(
                context,
                self.modules,
                read=wanted,
                executables=self.executables(context),
                locate_only=not found_backends,
            )
        except runas.CheckFailed as exc:
            return unknown(self.name, str(exc), {"checked_as": user})
        common = {"checked_as": user, **python_details(found), **self.facts(found)}
        absent = self.missing(found, context)
        verdicts = {b.id: absent or self._judged(b, found, context) for b in found_backends}
        return fold(
            self.name, self.driver, verdicts, common, lambda: self.when_unconfigured(absent)
        )

    def files_to_read(self, backend: Backend, context: ProbeContext) -> list[str]:
        return [str(v) for o in self.file_options if (v := backend.get(context.settings, o))]

    def executables(self, context: ProbeContext) -> list[str]:
        return []

    def facts(self, found: Found) -> dict[str, JSON]:
        """The driver's own entries in the result's details."""
        return {}

    def missing(self, found: Found, context: ProbeContext) -> Verdict | None:
        """Unavailable when any of :attr:`modules` does not import, else None."""
        from glance_features.remediation import install_python_packages

        missing = found.missing(self.modules)
        if not missing:
            return None
        first = next(iter(missing.values()))
        names = ", ".join(dict.fromkeys(m.split(".")[0] for m in missing))
        return Verdict(
            Status.UNAVAILABLE,
            f"{names} cannot be imported by the service's interpreter {found.where} "
            f"({first}): {self.without_modules}",
            {"missing_modules": missing},
            install_python_packages(
                self.catalog.python,
                self.catalog.packages,
                found.python["executable"],
                context.distro,
            ),
        )

    def fake(self, status: Status, settings: Settings) -> Verdict:
        """In this driver's own words: unavailable is its modules missing from
        the fake host's Glance venv, available its modules installed."""
        if status is Status.AVAILABLE:
            return self.when_unconfigured(None)
        if status is not Status.UNAVAILABLE or not self.modules:
            return super().fake(status, settings)
        verdict = self.missing(*self.fake_found(settings))
        return verdict or super().fake(status, settings)

    def fake_found(self, settings: Settings) -> tuple[Found, ProbeContext]:
        """What a probe of the fake host finds: Glance's venv without this
        driver's modules; and a context on that host."""
        from glance_features import fake_host

        venv = fake_host.PYTHON.rsplit("/bin/", 1)[0]
        python = checks.PythonFound(
            executable=fake_host.PYTHON,
            version=str(fake_host.HOST["python"]),
            prefix=venv,
            base_prefix="/usr",
            venv=True,
            system_site_packages=False,
            ext_suffix=".cpython-311-x86_64-linux-gnu.so",
        )
        modules = {
            m: checks.ImportFound(
                file=None,
                version=None,
                failure=checks.Failure(
                    step=checks.IMPORT, errno=None, error=f"No module named {m!r}"
                ),
            )
            for m in self.modules
        }
        context = ProbeContext(settings, deep=False, deadline=0.0, distro=fake_host.DISTRO)
        return Found(python, modules, NO_FILES), context

    @abc.abstractmethod
    def judge(self, backend: Backend, found: Found, context: ProbeContext) -> Verdict:
        """This driver's verdict on one configured backend."""

    def when_unconfigured(self, absent: Verdict | None) -> Verdict:
        """The verdict when the configuration names no backend of this driver."""
        if absent is not None:
            return Verdict(
                Status.UNAVAILABLE,
                absent.reason + f" (no {self.driver} backend is configured)",
                absent.details,
                absent.remediation,
            )
        tops = sorted({m.split(".")[0] for m in self.modules})
        listed = " and ".join([", ".join(tops[:-1]), tops[-1]] if len(tops) > 1 else tops)
        return Verdict(
            Status.AVAILABLE,
            f"{listed} installed (not imported: no {self.driver} backend is configured)",
        )

    def _judged(self, backend: Backend, found: Found, context: ProbeContext) -> Verdict:
        try:
            return self.judge(backend, found, context)
        except ConfigError as exc:  # an option Glance cannot read refuses this backend
            return Verdict(Status.UNAVAILABLE, str(exc), {}, ["fix the option's value"])


def python_details(found: Found) -> dict[str, JSON]:
    return {
        "python": found.python["executable"],
        "python_version": found.python["version"],
        "venv": found.python["venv"],
        "system_site_packages": found.python["system_site_packages"],
    }


def unreadable_file(found: Found, path: str, user: str, label: str, effect: str) -> Verdict | None:
    """Unavailable when the service account cannot read ``path``, else None."""
    failure = found.read(path)["failure"]
    if failure is None:
        return None
    return Verdict(
        Status.UNAVAILABLE,
        f"{label} {path} is not readable by {user}: {failure['errno']} ({failure['error']}): "
        f"{effect}",
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
