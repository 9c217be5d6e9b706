"""dnspython-ipv6: eventlet's green DNS resolver and IPv6 name resolution."""

from __future__ import annotations

import json
import os
import socket
import sys

from glance_features import _metadata
from glance_features._record import record
from glance_features.detector import ProbeContext, result
from glance_features.model import FeatureResult, Status
from glance_features.needs import NEEDS
from glance_features.remedy import pip_install
from glance_features.versions import InvalidVersion, compare

ENV_VAR = "EVENTLET_NO_GREENDNS"
WORKAROUND = f"export {ENV_VAR}=yes  # in the environment of every Glance service"
IF_INET6 = "/proc/net/if_inet6"


@record
class KnownProblem:
    eventlet_below: str | None  # eventlet versions below this one are affected
    dnspython_from: str | None  # with dnspython from this version on (None: any)
    dnspython_exact: tuple[str, ...]  # or with exactly these dnspython versions
    why: str
    upgrade: str


# Upgrading to what NEEDS lists is the fix for every known problem.
EVENTLET_FIX, DNSPYTHON_FIX = NEEDS["dnspython-ipv6"].python

KNOWN_PROBLEMS = (
    KnownProblem(
        "0.17",
        None,
        (),
        "eventlet before 0.17 breaks IPv6 name resolution in its green DNS resolver",
        EVENTLET_FIX,
    ),
    KnownProblem(
        "0.33.3",
        "2.3.0",
        (),
        "eventlet before 0.33.3 fails to patch dnspython 2.3.0 and newer (eventlet issue #781)",
        "eventlet>=0.33.3",
    ),
    KnownProblem(
        None,
        None,
        ("2.0.0", "2.2.0"),
        "OpenStack's global requirements exclude this dnspython release "
        "(dnspython!=2.0.0,!=2.2.0) for breaking eventlet",
        DNSPYTHON_FIX,
    ),
)


def known_problems(eventlet: str, dnspython: str) -> list[KnownProblem]:
    found = []
    try:
        for problem in KNOWN_PROBLEMS:
            if (
                problem.eventlet_below is not None
                and compare(eventlet, problem.eventlet_below) >= 0
            ):
                continue
            if (
                problem.dnspython_from is not None
                and compare(dnspython, problem.dnspython_from) < 0
            ):
                continue
            if problem.dnspython_exact and not any(
                compare(dnspython, v) == 0 for v in problem.dnspython_exact
            ):
                continue
            found.append(problem)
    except InvalidVersion:
        return []
    return found


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

    def probe(self, context: ProbeContext) -> FeatureResult:
        eventlet = _metadata.version("eventlet")
        dnspython = _metadata.version("dnspython")
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
        from glance_features import _proc

        timeout = context.remaining()
        # The child sees the workaround and the distributions exactly as we do.
        env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        if ENV_VAR in os.environ:
            env[ENV_VAR] = os.environ[ENV_VAR]
        argv = [sys.executable, "-W", "ignore", "-c", RESOLVE_SCRIPT]
        outcome = _proc.run(argv, timeout, env=env)
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
