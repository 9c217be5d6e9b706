"""pydev: the remote debugger Glance attaches to when pydev_worker_debug_host is set."""

from __future__ import annotations

import os
import socket

from glance_features import _metadata
from glance_features._metadata import find_spec
from glance_features.detector import ProbeContext, result
from glance_features.model import FeatureResult, Status
from glance_features.needs import NEEDS
from glance_features.remedy import pip_install

DISTRIBUTIONS = ("pydevd", "pydevd-pycharm")
CONNECT_TIMEOUT = 3.0


def find_debugger() -> tuple[str, str] | None:
    """(module, file) of the debugger Glance would import, without importing it.

    Glance tries ``from pydev import pydevd`` and then ``import pydevd``.
    ``find_spec("pydev.pydevd")`` would import the ``pydev`` package, so the
    submodule is looked for in that package's directories instead.
    """
    spec = find_spec("pydev")
    for directory in (spec.submodule_search_locations or []) if spec else []:
        for candidate in ("pydevd.py", os.path.join("pydevd", "__init__.py")):
            path = os.path.join(directory, candidate)
            if os.path.isfile(path):
                return "pydev.pydevd", path
    spec = find_spec("pydevd")
    if spec is not None:
        return "pydevd", spec.origin or "?"
    return None


def is_loopback(address: str) -> bool:
    import ipaddress  # only when debugging is enabled

    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class PydevDetector:
    name = "pydev"
    summary = "pydev remote debugger for Glance workers (pydev_worker_debug_host)"

    def probe(self, context: ProbeContext) -> FeatureResult:
        host = context.settings.pydev_worker_debug_host
        port = context.settings.pydev_worker_debug_port
        details: dict[str, object] = {"debug_host": host, "debug_port": port}
        install = [pip_install(NEEDS[self.name].python[0]) + "  # or pydevd-pycharm for your IDE"]
        found = find_debugger()
        if found is None:
            return result(
                self.name,
                Status.UNAVAILABLE,
                "no pydev debugger module (pydev.pydevd or pydevd) is installed",
                details,
                install,
            )
        module, path = found
        details.update(module=module, module_path=path)
        for dist in DISTRIBUTIONS:
            version = _metadata.version(dist)
            if version is not None:
                details.update(distribution=dist, version=version)
                break
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
        timeout = min(CONNECT_TIMEOUT, context.remaining())
        start_server = [
            f"start the pydev debug server on {host}:{port} before Glance, "
            "or unset pydev_worker_debug_host"
        ]
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            return result(
                self.name,
                Status.UNAVAILABLE,
                f"cannot resolve debug host {host!r}: {exc}",
                details,
                start_server,
            )
        details["addresses"] = sorted({str(info[4][0]) for info in infos})
        error: OSError | None = None
        for family, kind, proto, _, address in infos:
            # Connect and close: sending nothing leaves the debug server idle.
            try:
                with socket.socket(family, kind, proto) as sock:
                    sock.settimeout(timeout)
                    sock.connect(address)
                    details["connected_to"] = str(address[0])
                    break
            except OSError as exc:
                error = exc
        else:
            if isinstance(error, TimeoutError):
                why = f"connection timed out after {timeout:g} s"
            elif isinstance(error, ConnectionRefusedError):
                why = "connection refused"
            else:
                why = str(error)
            return result(
                self.name,
                Status.UNAVAILABLE,
                f"debug server {host}:{port} does not answer: {why}",
                details,
                start_server,
            )
        if not is_loopback(str(details["connected_to"])):
            return result(
                self.name,
                Status.DEGRADED,
                f"{provider} reaches the debug server at {host}:{port}, which is not on "
                "this host: a pydev server can run code inside Glance",
                details,
                [
                    "debug only on a trusted network, or tunnel the debugger over "
                    "loopback (ssh -R) and set pydev_worker_debug_host = 127.0.0.1"
                ],
            )
        return result(
            self.name,
            Status.AVAILABLE,
            f"{provider} reaches the debug server at {host}:{port}",
            details,
        )
