"""A throwaway PostgreSQL server for the Glance deployments of the functional tests.

Glance on SQLite fails imports now and then: its import flow reads, then writes
in one deferred transaction, and SQLite answers a concurrent writer with
"database is locked" at once (Glance 33 retries some of those writes, not the
task's progress update). Operators run Glance on MySQL or PostgreSQL; so do
these tests, each deployment in a database of its own on one server.

The server listens only on a Unix socket in a directory of its own, trusts
local connections, and is killed with its whole process group on stop.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# initdb and postgres refuse to run as root; as root they run as this account,
# which PostgreSQL's packages create.
SERVER_USER = "postgres"
SUPERUSER = "postgres"
# The running server's socket directory, for GlanceDeployment (set by conftest).
POSTGRES_ENV = "GLANCE_DEPLOY_POSTGRES"


class PostgreSQLUnavailable(RuntimeError):
    """No PostgreSQL server binaries, or the server would not start."""


@dataclass(frozen=True)
class PostgreSQL:
    socket_dir: Path
    bindir: Path

    @classmethod
    def at(cls, socket_dir: Path) -> PostgreSQL:
        bindir = server_bindir()
        if bindir is None:
            raise PostgreSQLUnavailable("no PostgreSQL client programs")
        return cls(socket_dir, bindir)

    def create_database(self) -> str:
        """A new empty database; its SQLAlchemy URL, as Glance's [database] connection."""
        name = f"glance_{uuid.uuid4().hex[:12]}"
        createdb = [str(self.bindir / "createdb"), "-h", str(self.socket_dir), "-U", SUPERUSER]
        proc = subprocess.run([*createdb, name], capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise PostgreSQLUnavailable(f"createdb {name} failed: {proc.stderr.strip()}")
        return f"postgresql+psycopg2://{SUPERUSER}@/{name}?host={self.socket_dir}"


def server_bindir() -> Path | None:
    """The newest installed server's bin directory: Debian keeps it off PATH
    (under /usr/lib/postgresql/N/bin), RPM-based distributions put it on it."""
    debian = sorted(
        (p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")),
        key=lambda bindir: int(bindir.parent.name) if bindir.parent.name.isdigit() else 0,
    )
    candidates = [*reversed(debian)]
    found = shutil.which("postgres")
    if found is not None:
        candidates.append(Path(found).parent)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in _TOOLS):
            return bindir
    return None


_TOOLS = ("postgres", "initdb", "pg_isready", "createdb")


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgreSQLUnavailable(
            f"running as root, but there is no {SERVER_USER!r} user"
        ) from None
    return ["setpriv", f"--reuid={SERVER_USER}", f"--regid={SERVER_USER}", "--init-groups"]


@contextmanager
def postgresql_server(timeout: float = 60) -> Iterator[PostgreSQL]:
    bindir = server_bindir()
    if bindir is None:
        raise PostgreSQLUnavailable("no PostgreSQL server (apt-get install postgresql)")
    prefix = _as_server_user()
    # Not under pytest's 0700 tmp: the server account and Glance's user must reach it.
    root = Path(tempfile.mkdtemp(prefix="glance-functional-pg-"))
    root.chmod(0o755)
    data, sockets = root / "data", root / "sockets"
    data.mkdir(mode=0o700)
    sockets.mkdir(mode=0o755)
    if prefix:
        for path in (data, sockets):
            shutil.chown(path, SERVER_USER, SERVER_USER)
    process: subprocess.Popen[bytes] | None = None
    try:
        _run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", SUPERUSER],
            "initdb",
            timeout,
        )
        server_argv = [
            *prefix,
            str(bindir / "postgres"),
            *("-D", str(data), "-k", str(sockets), "-c", "listen_addresses="),
            # Throwaway data: durability only costs time here.
            *("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
        ]
        with (root / "server.log").open("wb") as log_file:
            process = subprocess.Popen(
                server_argv, stdout=subprocess.DEVNULL, stderr=log_file, start_new_session=True
            )
        server = PostgreSQL(sockets, bindir)
        _wait_ready(server, process, root / "server.log", timeout)
        yield server
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(root, ignore_errors=True)


def _run(argv: Sequence[str], what: str, timeout: float) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd="/")
    if proc.returncode != 0:
        raise PostgreSQLUnavailable(f"{what} failed ({proc.returncode}): {proc.stderr.strip()}")


def _wait_ready(
    server: PostgreSQL, process: subprocess.Popen[bytes], log: Path, timeout: float
) -> None:
    isready = [str(server.bindir / "pg_isready"), "-h", str(server.socket_dir), "-q"]
    deadline = time.monotonic() + timeout
    while subprocess.run(isready, timeout=timeout).returncode != 0:
        if process.poll() is not None or time.monotonic() > deadline:
            raise PostgreSQLUnavailable(
                f"PostgreSQL did not start: {log.read_text(errors='replace')[-2000:]}"
            )
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    # SIGQUIT: immediate shutdown, nothing to keep; then SIGKILL for whatever
    # of the group is left.
    for sig in (signal.SIGQUIT, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
