"""dnspython-ipv6: eventlet's green DNS resolver and IPv6 name resolution."""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TypeGuard

from glance_features import checks, runas
from glance_features._platform import memo
from glance_features._platform.proc import current_user
from glance_features.catalog import Entry, GlanceUse, RequiredWhen
from glance_features.detector import DetectorBase, ProbeContext, result
from glance_features.model import JSON, FeatureResult, Status, Verdict
from glance_features.remediation import install_python_packages, pip_install
from glance_features.settings import Settings

ENV_VAR = "EVENTLET_NO_GREENDNS"
# One of getaddrinfo's answers: (family, type, proto, canonname, sockaddr).
_Info = tuple[object, object, object, object, tuple[object, ...]]
WORKAROUND = f"export {ENV_VAR}=yes  # in the environment of every Glance service"
IF_INET6 = "/proc/net/if_inet6"
# Up to 32.x the glance-api console script (glance/cmd/api.py) monkey-patches;
# 33.0.0 made it a stub and serves only through WSGI, which never patched.
EVENTLET_FIX = "eventlet>=0.33.3"
PACKAGES = {"debian": "python3-eventlet", "rhel": "python3-eventlet", "suse": "python3-eventlet"}
DNSPYTHON_FIX = "dnspython!=2.0.0,!=2.2.0"

CATALOG = Entry(
    purpose=(
        "Glance services that run under eventlet use its green DNS resolver, built on "
        "dnspython; some eventlet/dnspython pairs break IPv6 name resolution unless "
        "EVENTLET_NO_GREENDNS=yes keeps the system resolver, and some break eventlet's "
        "import altogether (which every Glance reaches through futurist)."
    ),
    required_when=(
        RequiredWhen(
            "eventlet and dnspython are both installed",
            lambda s: _installed("eventlet") and _installed("dnspython"),
        ),
    ),
    python=(EVENTLET_FIX, DNSPYTHON_FIX),
    verify=("glance-features --feature dnspython-ipv6 --deep",),
    glance=GlanceUse("eventlet.monkey_patch() in glance/cmd/*.py, futurist's eventlet import"),
)

# Who resolves names through eventlet's green DNS: the monkey-patched
# standalone API server (glance/cmd/api.py); 33.0.0 made glance-api a stub.
CATALOG_PATCHING = GlanceUse(
    "glance/cmd/api.py: eventlet.monkey_patch() before the eventlet server starts",
    versions="<33",
    served_by=("eventlet",),
    unused="does not monkey-patch",
    measured="28.2.0-32.0.0 (a pydev traceback through eventlet's green socket) and "
    "Debian's 25.1.0 standalone, and under uWSGI: tests/test_releases.py",
)


@dataclasses.dataclass(frozen=True)
class KnownProblem:
    eventlet: str  # PEP 440 specifier of the affected eventlet releases
    dnspython: str  # and of the dnspython releases they are affected with
    why: str
    upgrade: str
    breaks_import: bool = False  # `import eventlet` itself fails, patched or not


KNOWN_PROBLEMS = (
    KnownProblem(
        "<0.17",
        "",
        "eventlet before 0.17 breaks IPv6 name resolution in its green DNS resolver",
        EVENTLET_FIX,
    ),
    KnownProblem(
        "<0.33.3",
        ">=2.3.0",
        "eventlet before 0.33.3 fails to import with dnspython 2.3.0 and newer "
        "(eventlet issue #781)",
        EVENTLET_FIX,
        breaks_import=True,
    ),
    KnownProblem(
        "",
        "==2.0.0,==2.2.0",
        "OpenStack's global requirements exclude this dnspython release "
        "(dnspython!=2.0.0,!=2.2.0) for breaking eventlet",
        DNSPYTHON_FIX,
    ),
)


def _installed(name: str) -> bool:
    from glance_features._platform import dists

    return dists.version(name) is not None


def _matches(version: str, specifier: str) -> bool:
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    if not specifier:
        return True
    if specifier.startswith("==") and "," in specifier:  # any of several pins
        return any(Version(version) == Version(pin.lstrip("=")) for pin in specifier.split(","))
    return Version(version) in SpecifierSet(specifier)


def known_problems(eventlet: str | None, dnspython: str | None) -> list[KnownProblem]:
    """What the version numbers alone say of this pair (used to explain and
    to fix, never to judge: distributions backport fixes)."""
    from packaging.version import InvalidVersion

    if eventlet is None or dnspython is None:
        return []
    try:
        return [
            p
            for p in KNOWN_PROBLEMS
            if _matches(eventlet, p.eventlet) and _matches(dnspython, p.dnspython)
        ]
    except InvalidVersion:
        return []


def monkey_patches(glance_version: str | None, served_by: str | None = None) -> bool | None:
    """Whether the Glance API service patches: its standalone eventlet server
    does (glance/cmd/api.py), a WSGI server's application never does. None
    when the way it is served is not known; True with no Glance (assume so)."""
    if glance_version is None:
        return True
    return CATALOG_PATCHING.used_by(glance_version, served_by)


def workaround_active(environ: Mapping[str, str] = os.environ) -> bool:
    # eventlet.green.socket compares the value, lower-cased, with "yes" only.
    return environ.get(ENV_VAR, "").lower() == "yes"


def ipv6_interfaces() -> list[str]:
    try:
        with open(IF_INET6, encoding="ascii", errors="replace") as f:
            return sorted({line.split()[-1] for line in f if line.strip()})
    except OSError:
        if sys.platform.startswith("linux"):
            return []
    import psutil

    return sorted(
        name
        for name, addrs in psutil.net_if_addrs().items()
        if any(a.family == socket.AF_INET6 for a in addrs)
    )


# ::1 needs no resolver; localhost goes to /etc/hosts, then DNS when the hosts
# file has no IPv6 line (Debian's has none), which on a host without a
# reachable DNS server waits its timeout: only --deep asks for it.
NAMES = ("::1",)
DEEP_NAMES = ("::1", "localhost")


class DnspythonIpv6Detector(DetectorBase):
    name = "dnspython-ipv6"
    summary = "IPv6 name resolution with eventlet's green DNS and dnspython"
    catalog = CATALOG

    def fake(self, status: Status, settings: Settings) -> Verdict:
        return _fake(status, settings)

    def probe(self, context: ProbeContext) -> FeatureResult:
        environ = context.service_environ
        patched = monkey_patches(context.glance_version, context.served_by)
        inside = context.deployment is not None and context.deployment.inside
        details: dict[str, JSON] = {
            "has_ipv6": socket.has_ipv6,
            "ipv6_interfaces": ipv6_interfaces(),
            ENV_VAR: environ.get(ENV_VAR),
            "workaround_active": workaround_active(environ),
            "eventlet_imported": "eventlet" in sys.modules,
            "glance_monkey_patches": patched,
        }
        try:
            found = self._try(context, environ.get(ENV_VAR), inside, patched)
        except runas.CheckFailed as exc:
            return result(self.name, Status.UNKNOWN, f"the eventlet check failed: {exc}", details)
        details.update(
            eventlet=found["eventlet_version"],
            dnspython=found["dnspython_version"],
            resolution={"system": _shown(found["system"]), "eventlet": _shown(found["eventlet"])},
            import_error=_import_error(found),
        )
        retry = None
        if _import_error(found) and found["eventlet_version"] and not workaround_active(environ):
            # Would the workaround make eventlet import? Try it, as the fix says.
            try:
                retry = self._try(context, "yes", False, True)
            except runas.CheckFailed:
                retry = None
            details["imports_with_workaround"] = retry is not None and not _import_error(retry)
        verdict = judge(
            found,
            patched=patched,
            workaround=workaround_active(environ),
            inside=inside,
            eventlet_imported="eventlet" in sys.modules,
            retry=retry,
            glance=context.glance_version,
            served_by=context.served_by,
            install=lambda requirement: install_python_packages(
                [requirement], PACKAGES, runas.service_python(context), context.distro
            ),
        )
        details["known_problems"] = [
            p.why for p in known_problems(found["eventlet_version"], found["dnspython_version"])
        ]
        if "tried_at" in found:
            details["tried_at"] = found["tried_at"]
            verdict = dataclasses.replace(
                verdict,
                reason=f"{verdict.reason} (as tried at {found['tried_at']}; the same "
                "interpreter and files since)",
            )
        return verdict.result(self.name, details)

    def _try(
        self, context: ProbeContext, no_greendns: str | None, inside: bool, patched: bool | None
    ) -> checks.ResolutionFound:
        """What ``import eventlet; eventlet.monkey_patch()`` and IPv6 lookups do
        in the service's interpreter, with its environment: in this process
        when it is the service (already patched, or not patching at all, when
        only the import matters), else in a new interpreter (patching this one
        would change the host's process)."""
        if inside and _patched_here():
            return _here()
        if patched is False and no_greendns == os.environ.get(ENV_VAR) and _is_service(context):
            return _imported_here()
        if context.deep:
            return self._new_interpreter(context, DEEP_NAMES, no_greendns)
        # Importing eventlet with dnspython takes 1-2.5 s on Debian 12: it is
        # tried where the versions say it may fail (distributions backport
        # fixes, so the versions never decide), and with --deep.
        installed = _pair(context)
        versions = tuple(d["version"] if d else None for d in installed.values())
        if not known_problems(*versions):
            return _untried(*versions)
        if not context.remember:
            return self._new_interpreter(context, NAMES, no_greendns)
        # The command line keeps what the try found until these files change.
        key = {
            "check": checks.eventlet_resolution.__name__,
            "python": memo.identity(os.path.realpath(runas.service_python(context))),
            "account": runas.checked_as(context),
            "names": list(NAMES),
            "no_greendns": no_greendns,
            "distributions": [
                [n, d["version"], *memo.identity(d["location"])] if d else [n, None]
                for n, d in installed.items()
            ],
        }
        remembered = memo.recall(key)
        if remembered is not None and _is_resolution(remembered[0]):
            found = remembered[0]
            found["tried_at"] = remembered[1]
            return found
        found = self._new_interpreter(context, NAMES, no_greendns)
        if found["failure"] is None:
            # Only what worked: a failure may be passing (a package half
            # upgraded, a limit) and is tried again each time.
            memo.remember(key, found)
        return found

    def _new_interpreter(
        self, context: ProbeContext, names: tuple[str, ...], no_greendns: str | None
    ) -> checks.ResolutionFound:
        return runas.run(context, checks.eventlet_resolution, list(names),
            no_greendns,
        )  # fmt: skip


def _import_error(found: checks.ResolutionFound) -> str | None:
    """Why ``import eventlet`` failed, or None."""
    failure = found["failure"]
    return failure["error"] if failure and failure["step"] == checks.IMPORT_EVENTLET else None


def _patch_error(found: checks.ResolutionFound) -> str | None:
    """Why ``eventlet.monkey_patch()`` failed, or None."""
    failure = found["failure"]
    return failure["error"] if failure and failure["step"] == checks.MONKEY_PATCH else None


def _shown(lookups: Mapping[str, checks.Lookup] | None) -> dict[str, JSON] | None:
    """Lookups as the report shows them: each name's addresses, or why it
    did not resolve."""
    if lookups is None:
        return None
    return {
        name: lookup["failure"]["error"] if lookup["failure"] else list(lookup["addresses"])
        for name, lookup in lookups.items()
    }


def _is_resolution(value: object) -> TypeGuard[checks.ResolutionFound]:
    """A remembered answer of the shape eventlet_resolution gives."""
    fields = checks.ResolutionFound.__annotations__
    return isinstance(value, dict) and set(fields) - {"tried_at"} <= set(value)


def _pair(context: ProbeContext) -> dict[str, checks.DistributionFound | None]:
    """The installed eventlet and dnspython of the service's interpreter."""
    names = ["eventlet", "dnspython"]
    if runas.is_service_interpreter(context):
        return checks.interpreter(names)["distributions"]
    return runas.run(context, checks.interpreter, names)["distributions"]


def _untried(eventlet: str | None, dnspython: str | None) -> checks.ResolutionFound:
    return checks.ResolutionFound(
        system={},
        eventlet=None,
        failure=None,
        eventlet_version=eventlet,
        dnspython_version=dnspython,
        greendns=None,
        tried=False,
    )


def _is_service(context: ProbeContext) -> bool:
    """This process is the service, or has its interpreter, account and
    environment and has imported eventlet already (a Glance application
    loaded by a WSGI server this process cannot name). Importing eventlet
    here otherwise would leave its fork warnings in a caller that never
    asked for eventlet."""
    if context.deployment is not None and context.deployment.inside:
        return True
    unknown = context.deployment is None or not context.deployment.environ
    same_account = context.user is None or context.user == current_user()
    loaded = "eventlet" in sys.modules
    return loaded and unknown and same_account and runas.is_service_interpreter(context)


def _imported_here() -> checks.ResolutionFound:
    """``import eventlet`` here, as a Glance that never patches imports it."""
    from glance_features._platform import dists

    module = checks.imports(["eventlet"], False)["modules"]["eventlet"]
    found = _untried(dists.version("eventlet"), dists.version("dnspython"))
    failure = module["failure"]
    if failure is not None:
        found["failure"] = checks.Failure(
            step=checks.IMPORT_EVENTLET, errno=failure["errno"], error=failure["error"]
        )
    found["tried"] = True
    return found


def _patched_here() -> bool:
    patcher = sys.modules.get("eventlet.patcher")
    try:
        return bool(patcher is not None and patcher.is_monkey_patched("socket"))
    except Exception:
        return False


def _here() -> checks.ResolutionFound:
    """The lookups of this already patched service, beside the unpatched socket's."""
    from glance_features._platform import green

    real = green.original("socket")

    def lookup(
        resolve: Callable[[str, int, int, int], Sequence[_Info]], name: str
    ) -> checks.Lookup:
        try:
            infos = resolve(name, 80, socket.AF_INET6, socket.SOCK_STREAM)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
            return checks.Lookup(
                addresses=[], failure=checks.Failure(step=None, errno=None, error=error)
            )
        return checks.Lookup(addresses=sorted({str(i[4][0]) for i in infos}), failure=None)

    from glance_features._platform import dists

    return checks.ResolutionFound(
        system={n: lookup(real.getaddrinfo, n) for n in NAMES},
        eventlet={n: lookup(socket.getaddrinfo, n) for n in NAMES},
        failure=None,
        eventlet_version=dists.version("eventlet"),
        dnspython_version=dists.version("dnspython"),
        greendns="eventlet.support.greendns" in sys.modules,
        tried=True,
    )


def judge(
    found: checks.ResolutionFound,
    *,
    patched: bool | None,
    workaround: bool,
    inside: bool,
    eventlet_imported: bool,
    retry: checks.ResolutionFound | None,
    glance: str | None,
    served_by: str | None,
    install: Callable[[str], list[str]] | None = None,
) -> Verdict:
    """The verdict on what the service's interpreter really did; ``install``
    words the fix for a requirement in that interpreter's terms."""
    eventlet, dnspython = found["eventlet_version"], found["dnspython_version"]
    if eventlet is None or (dnspython is None and not _import_error(found)):
        missing = "eventlet" if eventlet is None else "dnspython"
        return Verdict(Status.AVAILABLE, f"nothing to work around: {missing} is not installed")
    pair = f"eventlet {eventlet} with dnspython {dnspython or '(not installed)'}"
    if not found["tried"]:
        return Verdict(
            Status.AVAILABLE,
            f"{pair}: no known problem with this pair (--deep imports and patches eventlet "
            "and resolves under it)",
        )
    problems = known_problems(eventlet, dnspython)
    fix = install or (lambda requirement: [pip_install(requirement)])
    upgrade = [step for p in problems for step in fix(p.upgrade)] or fix(EVENTLET_FIX)
    import_error, patch_error = _import_error(found), _patch_error(found)
    if import_error:
        return _fails_to_import(import_error, pair, problems, upgrade, workaround, retry)
    if patch_error and patched is not False:
        return Verdict(
            Status.UNAVAILABLE,
            f"{pair}: eventlet.monkey_patch() fails ({patch_error}): the standalone "
            "glance-api patches first and fails to start",
            remediation=upgrade,
        )
    worked_around = f"; worked around by {ENV_VAR}=yes" if workaround else ""
    if patched is False:
        how = f" served by {served_by}" if served_by else ""
        return Verdict(
            Status.AVAILABLE,
            f"{pair}: eventlet imports{worked_around}; Glance {glance}{how} does not "
            "monkey-patch, so eventlet's green DNS is not used",
        )
    failed = _failed_lookups(found)
    mode = "" if patched else " (if Glance is served by the standalone eventlet glance-api)"
    if not failed:
        return Verdict(Status.AVAILABLE, _resolves(pair, worked_around, problems))
    return _green_dns_fails(
        pair, "; ".join(failed) + mode, upgrade, workaround, inside and eventlet_imported
    )


def _resolves(pair: str, worked_around: str, problems: list[KnownProblem]) -> str:
    """IPv6 names resolve under the patch; a known problem by version was backported."""
    backported = (
        f" (by its version this pair has a known problem, {problems[0].why}, but this "
        "build works: distributions backport fixes)"
        if problems
        else ""
    )
    return (
        f"{pair}: IPv6 names resolve under eventlet.monkey_patch() as without it"
        f"{worked_around}{backported}"
    )


def _fails_to_import(
    import_error: str,
    pair: str,
    problems: list[KnownProblem],
    upgrade: list[str],
    workaround: bool,
    retry: checks.ResolutionFound | None,
) -> Verdict:
    """``import eventlet`` fails in the service's interpreter: Glance fails to load."""
    why = f"`import eventlet` fails in the service's interpreter ({import_error})"
    if problems:
        why += f": {problems[0].why}"
    effect = "Glance imports eventlet (futurist, its task executor) and fails to load"
    if workaround:
        return Verdict(
            Status.UNAVAILABLE,
            f"{pair}: {why}, even with {ENV_VAR}=yes; {effect}",
            remediation=upgrade,
        )
    fixes = list(upgrade)
    if retry is not None and not _import_error(retry):
        fixes.append(WORKAROUND + "  # makes it import here")
    return Verdict(Status.UNAVAILABLE, f"{pair}: {why}; {effect}", remediation=fixes)


def _green_dns_fails(
    pair: str, why: str, upgrade: list[str], workaround: bool, too_late: bool
) -> Verdict:
    """IPv6 lookups fail under eventlet's green DNS; ``too_late``: eventlet is
    already imported in this very process, so the workaround cannot apply."""
    if workaround:
        return Verdict(
            Status.UNAVAILABLE, f"{pair}: {why}, even with {ENV_VAR}=yes", remediation=upgrade
        )
    if too_late:
        return Verdict(
            Status.UNAVAILABLE,
            f"{pair}: {why}; eventlet is already imported in this process without "
            f"{ENV_VAR}=yes, so the workaround can no longer apply",
            remediation=[WORKAROUND + " before the service starts", *upgrade],
        )
    return Verdict(Status.DEGRADED, f"{pair}: {why}", remediation=[WORKAROUND, *upgrade])


def _failed_lookups(found: checks.ResolutionFound) -> list[str]:
    """Names the host resolves for IPv6 but eventlet does not.

    A name the host itself cannot resolve (no ``::1 localhost`` line in
    /etc/hosts, say) is the host's business, not eventlet's.
    """
    green = found["eventlet"] or {}
    failed = []
    for name, lookup in green.items():
        failure, system = lookup["failure"], found["system"].get(name)
        if failure is not None and system is not None and system["failure"] is None:
            failed.append(f"resolving {name!r} for IPv6 under eventlet failed: {failure['error']}")
    return failed


def _fake(status: Status, settings: Settings) -> Verdict:
    """What this detector says in ``status`` on the fake host, for test doubles."""

    green_lookups: dict[str, JSON] = {"::1": ["::1"], "localhost": ["::1"]}
    details: dict[str, JSON] = {
        "eventlet": "0.36.1",
        "dnspython": "2.6.1",
        "has_ipv6": True,
        "ipv6_interfaces": ["eth0", "lo"],
        "EVENTLET_NO_GREENDNS": None,
        "workaround_active": False,
        "eventlet_imported": False,
        "known_problems": [],
        "glance_monkey_patches": True,
        "import_error": None,
        "resolution": {
            "system": {"::1": ["::1"], "localhost": ["::1"]},
            "eventlet": green_lookups,
        },
    }
    pair = "eventlet 0.36.1 with dnspython 2.6.1"
    workaround = "export EVENTLET_NO_GREENDNS=yes  # in the environment of every Glance service"
    if status is Status.AVAILABLE:
        return Verdict(
            status,
            f"{pair}: IPv6 names resolve under eventlet.monkey_patch() as without it",
            details,
            [],
        )
    failure = "gaierror: [Errno -2] Name or service not known"
    why = f"resolving '::1' for IPv6 under eventlet failed: {failure}"
    green_lookups["::1"] = failure
    details["known_problems"] = []
    if status is Status.DEGRADED:
        return Verdict(status, f"{pair}: {why}", details, [workaround])
    details["eventlet_imported"] = True
    return Verdict(
        status,
        f"{pair}: {why}; eventlet is already imported in this process without "
        "EVENTLET_NO_GREENDNS=yes, so the workaround can no longer apply",
        details,
        [workaround + " before the service starts"],
    )
