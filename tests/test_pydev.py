"""pydev: a real debug-server stand-in on loopback, and real module layouts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import can_unshare_mounts, context, isolated_python, need, probe_in_subprocess

import glance_features
from glance_features import Settings, Status
from glance_features.detectors.pydev import PydevDetector, find_debugger

# A pydev debug server speaks first: CMD_VERSION, then CMD_RUN.
GREETING = b"501\t1\t1.1\tLINUX\tID\n101\t3\t\n"


class Listener:
    """A TCP server that records what each client sent before closing."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.bind((host, 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.sendall(GREETING)
            conn.settimeout(10)
            data = b""
            while chunk := conn.recv(1024):
                data += chunk
            self.received.append(data)

    def close(self) -> None:
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def test_pydevd_is_installed_here() -> None:
    found = find_debugger()
    need(found is not None, "pydevd is not installed (pip install pydevd)")
    assert "pydevd" not in sys.modules  # found without importing it


def test_reachable_debug_server_on_loopback(listener: Listener) -> None:
    need(find_debugger() is not None, "pydevd is not installed (pip install pydevd)")
    settings = Settings(pydev_worker_debug_host="127.0.0.1", pydev_worker_debug_port=listener.port)
    report = glance_features.probe(settings, features=["pydev"])
    result = report["pydev"]
    assert result.status is Status.AVAILABLE, result.reason
    assert result.required
    assert result.details["connected_to"] == "127.0.0.1"
    assert result.details["distribution"] == "pydevd"
    listener.close()
    assert listener.received == [b""]  # read the greeting, sent nothing: no session


def test_closed_port_is_refused() -> None:
    need(find_debugger() is not None, "pydevd is not installed (pip install pydevd)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused
        settings = Settings(pydev_worker_debug_host="127.0.0.1", pydev_worker_debug_port=port)
        result = PydevDetector().probe(context(settings))
    assert result.status is Status.UNAVAILABLE
    assert (
        result.reason
        == f"debug server 127.0.0.1:{port} (127.0.0.1) does not answer: connection refused"
    )
    assert "start the pydev debug server" in result.remediation[0]


def test_unresolvable_host() -> None:
    need(find_debugger() is not None, "pydevd is not installed (pip install pydevd)")
    settings = Settings(pydev_worker_debug_host="debugger.invalid")
    result = PydevDetector().probe(context(settings))
    assert result.status is Status.UNAVAILABLE
    assert result.reason.startswith("cannot resolve debug host 'debugger.invalid'")


def test_debugging_off_is_available_and_not_required() -> None:
    need(find_debugger() is not None, "pydevd is not installed (pip install pydevd)")
    result = glance_features.probe(features=["pydev"])["pydev"]
    assert result.status is Status.AVAILABLE and not result.required
    assert result.reason.endswith("is installed; debugging is not enabled")


def test_module_absent(tmp_path: Path) -> None:
    python, env = isolated_python(tmp_path)
    result = probe_in_subprocess(
        "pydev", {"pydev_worker_debug_host": "127.0.0.1"}, python=python, env=env
    )
    assert result["status"] == "unavailable"
    assert result["reason"] == "no pydev debugger module (pydev.pydevd or pydevd) is installed"
    assert "-m pip install pydevd" in result["remediation"][0]


def test_pydev_package_layout_is_found_without_being_imported(tmp_path: Path) -> None:
    package = tmp_path / "pydev"
    package.mkdir()
    # Importing this package would fail loudly: finding must not import it.
    (package / "__init__.py").write_text("raise SystemExit('imported!')\n")
    (package / "pydevd.py").write_text("")
    info = tmp_path / "pydevd_pycharm-241.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pydevd-pycharm\nVersion: 241.1\n\n"
    )
    python, env = isolated_python(tmp_path, str(tmp_path))
    result = probe_in_subprocess("pydev", python=python, env=env)
    assert result["status"] == "available"
    assert result["details"]["module"] == "pydev.pydevd"
    assert result["details"]["distribution"] == "pydevd-pycharm"
    assert result["details"]["version"] == "241.1"


def test_debug_server_off_loopback_is_a_security_warning() -> None:
    # A network namespace of our own: 192.0.2.1 (TEST-NET-1) is added to its
    # lo, so the "remote" server is local and no packet leaves the namespace.
    need(can_unshare_mounts(), "needs unshare (util-linux) and root or user namespaces")
    need(find_debugger() is not None, "pydevd is not installed (pip install pydevd)")
    code = (
        "import socket, json, glance_features\n"
        "import threading\n"
        "s = socket.socket(); s.bind(('192.0.2.1', 0)); s.listen()\n"
        "def greet():\n"
        "    c, _ = s.accept(); c.sendall(%r); c.recv(1)\n"
        "threading.Thread(target=greet, daemon=True).start()\n"
        "settings = glance_features.Settings(pydev_worker_debug_host='192.0.2.1',"
        " pydev_worker_debug_port=s.getsockname()[1])\n"
        "print(glance_features.probe(settings, features=['pydev']).to_json())\n"
    ).replace("%r", repr(GREETING))
    setup = "ip link set lo up && ip addr add 192.0.2.1/32 dev lo"
    base = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    proc = subprocess.run(
        [*base, "sh", "-ec", setup + '\nexec "$@"', "sh", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    need(proc.returncode == 0 or "ip:" not in proc.stderr, "needs iproute2 (ip)")
    assert proc.returncode == 0, proc.stderr
    import json

    result = json.loads(proc.stdout)["features"]["pydev"]
    assert result["status"] == "degraded"
    assert "not on this host: a pydev server can run code inside Glance" in result["reason"]
    assert result["code"] == 1


def test_loopback_as_a_destination() -> None:
    from glance_features.detectors.pydev import is_loopback

    for address in ("127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "0.0.0.0", "::"):
        assert is_loopback(address), address
    for address in ("192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1", "debugger", ""):
        assert not is_loopback(address), address


def test_the_installed_pydevd_falls_back_to_ipv6() -> None:
    from glance_features.detectors.pydev import prefers_ipv4_then_ipv6

    found = find_debugger()
    need(found is not None and found[0] == "pydevd", "pydevd is not installed")
    assert found is not None
    comm = Path(found[1]).parent / "_pydevd_bundle" / "pydevd_comm.py"
    source = comm.read_text(encoding="utf-8")
    start = source.index("def start_client(")
    expected = "AF_INET6" in source[start : source.index("\ndef ", start + 1)]
    assert prefers_ipv4_then_ipv6(found[1]) is expected
    assert prefers_ipv4_then_ipv6("/nonexistent/pydevd.py") is False
