"""pydev: the remote debugger Glance attaches to when pydev_worker_debug_host is set."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from glance_features import checks, runas
from glance_features.catalog import Entry, GlanceUse, RequiredWhen
from glance_features.detector import DetectorBase, ProbeContext, result
from glance_features.model import JSON, FeatureResult, Status, Verdict
from glance_features.options import DEBUG_HOST, DEBUG_PORT, WORKERS
from glance_features.remediation import install_python_packages
from glance_features.settings import Settings

if TYPE_CHECKING:
    from types import ModuleType

DISTRIBUTIONS = ("pydevd", "pydevd-pycharm")
# One of getaddrinfo's answers: (family, type, proto, canonname, sockaddr).
Info = tuple[int, int, int, str, tuple[object, ...]]
CONNECT_TIMEOUT = 3.0
# The first line a pydev debug server sends: "<command id>\t<sequence>\t...".
PYDEV_GREETING = re.compile(rb"\d{3}\t\d+\t")
# WORKERS: the standalone server with workers = 0 serves from its parent
# alone (start_wsgi -> _single_run), which never calls the hook (measured 29-32).

CATALOG = Entry(
    purpose=(
        "With pydev_worker_debug_host set, Glance workers attach to a remote pydev "
        "debug server at start-up, for debugging a running service from an IDE."
    ),
    options=(DEBUG_HOST, DEBUG_PORT, WORKERS),
    required_when=(
        RequiredWhen("[DEFAULT] pydev_worker_debug_host is set", lambda s: bool(s.get(DEBUG_HOST))),
    ),
    python=("pydevd",),
    packages={"debian": "python3-pydevd"},
    verify=("glance-features --feature pydev",),
    glance=GlanceUse(
        "glance/common/wsgi.py: Server.run_server() -> "
        "glance.common.utils.setup_remote_pydev_debug() (the eventlet server's workers)",
        versions="<33",
        served_by=("eventlet",),
        unused=(
            "never calls its pydev hook served this way: only the standalone eventlet "
            "glance-api of releases before 33 does (glance.common.wsgi_app.init_app never does)"
        ),
        measured="28.2.0, 29.2.1, 30.2.0, 31.1.0, 32.0.0, 33.0.0 standalone and under uWSGI, "
        "28-32 standalone with workers = 0: tests/test_releases.py",
        runs_if=lambda s: s.get(WORKERS) != 0,
        unused_if_not=(
            "runs no worker with [DEFAULT] workers = 0 (the parent serves alone), and only "
            "workers call the pydev hook"
        ),
    ),
)


def find_debugger() -> tuple[str, str] | None:
    """(module, file) of the debugger this interpreter's Glance would import."""
    found = checks.debugger(list(DISTRIBUTIONS))
    if found["module"] is None or found["path"] is None:
        return None
    return found["module"], found["path"]


def is_loopback(address: str) -> bool:
    import ipaddress  # only when debugging is enabled

    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    # 0.0.0.0 and :: as a destination reach this host.
    return ip.is_loopback or ip.is_unspecified


def prefers_ipv4_then_ipv6(module_path: str) -> bool:
    """Whether the installed pydevd falls back to IPv6 for a name without an
    IPv4 address (pydevd's ``start_client`` in ``_pydevd_bundle/pydevd_comm.py``
    does since it learned AF_INET6; older ones connect with AF_INET only)."""
    from glance_features._platform import files

    comm = os.path.join(os.path.dirname(module_path), "_pydevd_bundle", "pydevd_comm.py")
    try:
        source = files.read_text(comm, limit=1 << 20)
    except (OSError, ValueError):
        return False
    start = source.find("def start_client(")
    end = source.find("\ndef ", start + 1)
    return start >= 0 and "AF_INET6" in source[start : end if end > 0 else None]


def _resolve(
    context: ProbeContext,
    socket_: ModuleType,
    host: str,
    port: int,
    timeout: float,
    ipv6_fallback: bool,
) -> tuple[list[Info] | None, str]:
    """The family and address pydevd connects to, within ``timeout``;
    (None, why) otherwise.

    pydevd makes one socket of one family and connects to ``(host, port)``:
    IPv4 when the name has any IPv4 address, else (newer pydevd) IPv6.
    An address needs no lookup; a name is looked up in a child of this
    interpreter, killed at the deadline (a resolver that never answers would
    leave a thread blocked in C for good).
    """
    try:
        infos: list[Info] = socket_.getaddrinfo(
            host, port, 0, socket_.SOCK_STREAM, 0, socket_.AI_NUMERICHOST
        )
    except (OSError, UnicodeError):
        try:
            found = runas.run(context, checks.addresses, host, port, within=timeout)
        except runas.CheckFailed as exc:
            return None, str(exc).replace(
                f"the addresses check in {runas.this_interpreter()}", "the lookup"
            )
        if found["failure"] is not None:
            return None, found["failure"]["error"]
        infos = [
            (i["family"], i["type"], i["proto"], i["canonname"], tuple(i["sockaddr"]))
            for i in found["infos"]
        ]
    for family in (socket_.AF_INET, socket_.AF_INET6) if ipv6_fallback else (socket_.AF_INET,):
        chosen = [info for info in infos if info[0] == family]
        if chosen:
            return chosen, ""
    if ipv6_fallback:
        return None, "no address"
    return None, "no IPv4 address, and this pydevd connects over IPv4 only"


def _listen(
    socket_: ModuleType,
    info: Info,
    timeout: float,
    context: ProbeContext,
    details: dict[str, JSON],
) -> tuple[bytes, bool]:
    """Connect to ``info``'s address and read what the server says first:
    (its greeting, whether it stayed silent). A pydev debug server speaks
    first (CMD_VERSION, then CMD_RUN) and settrace waits for it forever; this
    reads the greeting, sends nothing and closes, so no debug session starts.
    Raises OSError when it cannot connect."""
    family, kind, proto, _, address = info
    with socket_.socket(family, kind, proto) as sock:
        sock.settimeout(max(0.01, min(timeout, context.remaining())))
        sock.connect(address)
        details["connected_to"] = str(address[0])
        sock.settimeout(max(0.01, min(timeout, context.remaining())))
        try:
            return sock.recv(256), False
        except TimeoutError:
            return b"", True


def _find_debugger(context: ProbeContext) -> checks.DebuggerFound:
    """The debugger module the service's interpreter would import. Finding it
    imports nothing and reads only installed files: no child when this
    process runs the service's interpreter."""
    if runas.is_service_interpreter(context):
        return checks.debugger(list(DISTRIBUTIONS))
    return runas.run(context, checks.debugger, list(DISTRIBUTIONS))


class PydevDetector(DetectorBase):
    name = "pydev"
    summary = "pydev remote debugger for Glance workers (pydev_worker_debug_host)"
    catalog = CATALOG

    def fake(self, status: Status, settings: Settings) -> Verdict:
        return _fake(status, settings)

    def probe(self, context: ProbeContext) -> FeatureResult:
        host = context.settings.get(DEBUG_HOST)
        port = context.settings.get(DEBUG_PORT)
        details: dict[str, JSON] = {"debug_host": host, "debug_port": port}
        install = install_python_packages(
            ["pydevd"], CATALOG.packages, runas.service_python(context), context.distro
        )
        install[0] += "  # or pydevd-pycharm for your IDE" if "pip install" in install[0] else ""
        try:
            found = _find_debugger(context)
        except runas.CheckFailed as exc:
            return result(self.name, Status.UNKNOWN, str(exc), details)
        if found["module"] is None:
            return result(
                self.name,
                Status.UNAVAILABLE,
                "no pydev debugger module (pydev.pydevd or pydevd) is installed",
                details,
                install,
            )
        module, path = found["module"], str(found["path"])
        details.update(module=module, module_path=path)
        if found["distribution"]:
            details.update(distribution=found["distribution"], version=found["version"])
        provider = (
            f"{module} ({details.get('distribution', 'unknown distribution')} "
            f"{details.get('version', '')})".replace(" )", ")")
        )
        if not host:
            return result(
                self.name,
                Status.AVAILABLE,
                f"{provider} is installed; debugging is not enabled",
                details,
            )
        return self._reach(context, str(host), int(port), module, path, provider, details)

    def _reach(
        self,
        context: ProbeContext,
        host: str,
        port: int,
        module: str,
        path: str,
        provider: str,
        details: dict[str, JSON],
    ) -> FeatureResult:
        """Connect as Glance's ``pydevd.settrace(host, port)`` would, and
        listen for the debug server's greeting."""
        timeout = min(CONNECT_TIMEOUT, context.remaining())
        start_server = [
            f"start the pydev debug server on {host}:{port} before Glance, "
            "or unset pydev_worker_debug_host"
        ]
        from glance_features._platform import green

        socket_ = green.original("socket")
        fallback = module == "pydevd" and prefers_ipv4_then_ipv6(path)
        details["ipv6_fallback"] = fallback
        infos, error_text = _resolve(context, socket_, host, port, timeout, fallback)
        if infos is None:
            return result(
                self.name,
                Status.UNAVAILABLE,
                f"cannot resolve debug host {host!r} to an address pydevd connects to: "
                f"{error_text}",
                details,
                start_server,
            )
        details["addresses"] = sorted({str(info[4][0]) for info in infos})
        address = infos[0][4]
        try:
            greeting, silent = _listen(socket_, infos[0], timeout, context, details)
        except OSError as error:
            return result(
                self.name,
                Status.UNAVAILABLE,
                f"debug server {host}:{port} ({address[0]}) does not answer: "
                + _connect_error(error, timeout),
                details,
                start_server,
            )
        if not PYDEV_GREETING.match(greeting):
            details["greeting"] = greeting[:64].decode("ascii", errors="replace")
            return result(
                self.name,
                Status.UNAVAILABLE,
                f"something listens on {host}:{port} ({address[0]}), but it is not a pydev "
                f"debug server ({_heard(greeting, silent)} instead of the pydev protocol "
                f"within {timeout:g} s): Glance's pydevd.settrace() would wait for it forever",
                details,
                start_server,
            )
        return _reached(provider, f"{host}:{port}", str(details["connected_to"])).result(
            self.name, details
        )


def _reached(provider: str, server: str, address: str) -> Verdict:
    """A pydev debug server answered at ``address``: degraded unless on this host."""
    if is_loopback(address):
        return Verdict(Status.AVAILABLE, f"{provider} reaches the debug server at {server}")
    return Verdict(
        Status.DEGRADED,
        f"{provider} reaches the debug server at {server}, which is not on "
        "this host: a pydev server can run code inside Glance",
        remediation=[
            "debug only on a trusted network, or tunnel the debugger over "
            "loopback (ssh -R) and set pydev_worker_debug_host = 127.0.0.1"
        ],
    )


def _connect_error(error: OSError, timeout: float) -> str:
    if isinstance(error, TimeoutError):
        return f"connection timed out after {timeout:g} s"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return str(error)


def _heard(greeting: bytes, silent: bool) -> str:
    """What a listener that is no pydev server did instead of greeting."""
    if silent:
        return "it sent nothing"
    return "it sent something else" if greeting else "it closed the connection"


def _fake(status: Status, settings: Settings) -> Verdict:
    """What this detector says in ``status`` on the fake host, for test doubles."""
    from glance_features import fake_host

    host = settings.get(DEBUG_HOST)
    port = settings.get(DEBUG_PORT)
    details: dict[str, JSON] = {"debug_host": host, "debug_port": port}
    if status is Status.UNAVAILABLE:
        return Verdict(
            status,
            "no pydev debugger module (pydev.pydevd or pydevd) is installed",
            details,
            [f"{fake_host.PYTHON} -m pip install pydevd  # or pydevd-pycharm for your IDE"],
        )
    path = "/usr/lib/glance/venv/lib/python3.11/site-packages/pydevd.py"
    details.update(module="pydevd", module_path=path, distribution="pydevd", version="3.2.3")
    provider = "pydevd (pydevd 3.2.3)"
    if status is Status.DEGRADED:
        # Only a debug server on another host degrades it: fake that one.
        host = host or "192.0.2.10"
        details.update(debug_host=host, addresses=["192.0.2.10"], connected_to="192.0.2.10")
        return Verdict(
            status,
            f"{provider} reaches the debug server at {host}:{port}, which is not on this "
            "host: a pydev server can run code inside Glance",
            details,
            [
                "debug only on a trusted network, or tunnel the debugger over loopback "
                "(ssh -R) and set pydev_worker_debug_host = 127.0.0.1"
            ],
        )
    if not host:
        return Verdict(status, f"{provider} is installed; debugging is not enabled", details, [])
    details.update(addresses=["127.0.0.1"], connected_to="127.0.0.1")
    return Verdict(status, f"{provider} reaches the debug server at {host}:{port}", details, [])
