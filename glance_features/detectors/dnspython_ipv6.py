"""dnspython-ipv6: eventlet's green DNS resolver and IPv6 name resolution."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys

from glance_features.catalog import Entry, GlanceUse, RequiredWhen
from glance_features.detector import ProbeContext, result
from glance_features.model import FeatureResult, Status
from glance_features.remediation import pip_install

ENV_VAR = "EVENTLET_NO_GREENDNS"
WORKAROUND = f"export {ENV_VAR}=yes  # in the environment of every Glance service"
IF_INET6 = "/proc/net/if_inet6"
# Up to 32.x the glance-api console script (glance/cmd/api.py) monkey-patches;
# 33.0.0 made it a stub and serves only through WSGI, which never patched.
NO_MONKEY_PATCH_FROM = "33.0.0"
EVENTLET_FIX = "eventlet>=0.33.3"
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


def known_problems(eventlet: str, dnspython: str) -> list[KnownProblem]:
    from packaging.version import InvalidVersion

    try:
        return [
            p
            for p in KNOWN_PROBLEMS
            if _matches(eventlet, p.eventlet) and _matches(dnspython, p.dnspython)
        ]
    except InvalidVersion:
        return []


def monkey_patches(glance_version: str | None) -> bool:
    """Whether the installed Glance's API service patches (None: no Glance: assume so)."""
    if glance_version is None:
        return True
    from packaging.version import InvalidVersion, Version

    try:
        return Version(glance_version) < Version(NO_MONKEY_PATCH_FROM)
    except InvalidVersion:
        return True


def workaround_active(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
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


# Runs in a child interpreter so eventlet's monkey-patching never touches ours.
RESOLVE_SCRIPT = """
import json, socket

def resolve(name):
    try:
        infos = socket.getaddrinfo(name, 80, socket.AF_INET6, socket.SOCK_STREAM)
        return sorted({i[4][0] for i in infos})
    except Exception as exc:
        return "%s: %s" % (type(exc).__name__, exc)

names = ("::1", "localhost")
system = {n: resolve(n) for n in names}
import eventlet
eventlet.monkey_patch()
print(json.dumps({"system": system, "eventlet": {n: resolve(n) for n in names}}))
"""


class DnspythonIpv6Detector:
    name = "dnspython-ipv6"
    summary = "IPv6 name resolution with eventlet's green DNS and dnspython"
    catalog = CATALOG

    def probe(self, context: ProbeContext) -> FeatureResult:
        from glance_features._platform import dists

        eventlet = dists.version("eventlet")
        dnspython = dists.version("dnspython")
        details: dict[str, object] = {
            "eventlet": eventlet,
            "dnspython": dnspython,
            "has_ipv6": socket.has_ipv6,
            "ipv6_interfaces": ipv6_interfaces(),
            ENV_VAR: os.environ.get(ENV_VAR),
            "workaround_active": workaround_active(),
            "eventlet_imported": "eventlet" in sys.modules,
        }
        if eventlet is None or dnspython is None:
            missing = "eventlet" if eventlet is None else "dnspython"
            return result(
                self.name,
                Status.AVAILABLE,
                f"nothing to work around: {missing} is not installed",
                details,
            )
        if context.deep:
            details["resolution"] = self._resolve(context)
        problems = known_problems(eventlet, dnspython)
        details["known_problems"] = [p.why for p in problems]
        pair = f"eventlet {eventlet} with dnspython {dnspython}"
        failed = _failed_lookups(details.get("resolution"))
        patched = monkey_patches(context.glance_version)
        details["glance_monkey_patches"] = patched
        if not patched:
            # Glance without monkey-patching never resolves through green DNS;
            # only a pair that breaks `import eventlet` still matters to it.
            broken = [p for p in problems if p.breaks_import]
            if broken and workaround_active():
                # EVENTLET_NO_GREENDNS=yes keeps eventlet off dnspython at
                # import, so Glance loads (in an environment that sets it).
                return result(
                    self.name,
                    Status.AVAILABLE,
                    f"{pair}: {broken[0].why}; worked around by {ENV_VAR}=yes, which must "
                    "stay in the environment of every Glance service",
                    details,
                    [pip_install(broken[0].upgrade)],
                )
            if not broken:
                return result(
                    self.name,
                    Status.AVAILABLE,
                    f"{pair}: Glance {context.glance_version} does not monkey-patch, so "
                    "eventlet's green DNS is not used",
                    details,
                )
            return result(
                self.name,
                Status.UNAVAILABLE,
                f"{pair}: {broken[0].why}; Glance {context.glance_version} imports eventlet "
                "through futurist and fails to load",
                details,
                [pip_install(broken[0].upgrade), WORKAROUND],
            )
        if any(p.breaks_import for p in problems) and not workaround_active():
            broken = [p for p in problems if p.breaks_import]
            return result(
                self.name,
                Status.UNAVAILABLE,
                f"{pair}: {broken[0].why}",
                details,
                [pip_install(broken[0].upgrade), WORKAROUND],
            )
        if not problems and not failed:
            return result(
                self.name,
                Status.AVAILABLE,
                f"{pair}: no known IPv6 resolution problem",
                details,
            )
        why = "; ".join([p.why for p in problems] + failed)
        upgrade = [pip_install(p.upgrade) for p in problems]
        if workaround_active():
            if failed:
                return result(
                    self.name,
                    Status.UNAVAILABLE,
                    f"{pair}: {why}, even with {ENV_VAR}=yes",
                    details,
                    upgrade,
                )
            return result(
                self.name,
                Status.AVAILABLE,
                f"{pair}: {why}; worked around by {ENV_VAR}=yes",
                details,
                upgrade,
            )
        if details["eventlet_imported"]:
            return result(
                self.name,
                Status.UNAVAILABLE,
                f"{pair}: {why}; eventlet is already imported in this process without "
                f"{ENV_VAR}=yes, so the workaround can no longer apply",
                details,
                [WORKAROUND + " before the service starts", *upgrade],
            )
        return result(self.name, Status.DEGRADED, f"{pair}: {why}", details, [WORKAROUND, *upgrade])

    def _resolve(self, context: ProbeContext) -> object:
        from glance_features._platform import proc

        timeout = context.remaining()
        # Isolated (-I), yet seeing the distributions we see: the paths are
        # passed as an argument, never taken from the environment or the cwd.
        env = {ENV_VAR: os.environ[ENV_VAR]} if ENV_VAR in os.environ else {}
        paths = json.dumps([p for p in sys.path if os.path.isabs(p)])
        script = "import json, sys\nsys.path[:] = json.loads(sys.argv[1])\n" + RESOLVE_SCRIPT
        argv = proc.python_argv(sys.executable, "-W", "ignore", "-c", script, paths)
        outcome = proc.run(argv, timeout, env=env)
        failure = outcome.describe_failure("the eventlet resolution check", timeout)
        if failure is not None:
            return failure
        try:
            return json.loads(outcome.text.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return f"the eventlet resolution check printed no result: {outcome.text[:200]}"


def _failed_lookups(resolution: object) -> list[str]:
    """Names the host resolves for IPv6 but eventlet does not.

    A name the host itself cannot resolve (no ``::1 localhost`` line in
    /etc/hosts, say) is the host's business, not eventlet's.
    """
    if resolution is None:
        return []
    if not isinstance(resolution, dict):
        return [f"resolution check: {resolution}"]
    system, green = resolution.get("system", {}), resolution.get("eventlet", {})
    return [
        f"resolving {name!r} for IPv6 under eventlet failed: {value}"
        for name, value in green.items()
        if not isinstance(value, list) and isinstance(system.get(name), list)
    ]
