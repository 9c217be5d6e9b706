"""Run an external program with bounded time, output and resources, and leave
nothing behind: on deadline, signal or exit the whole tree it started is killed."""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from glance_features._platform import green

MAX_OUTPUT = 1 << 20
# A clean environment: the C locale keeps output parseable, and PATH is the
# system's, so nothing the caller's PATH adds is run by a child's own lookups.
CLEAN_ENV = {
    "LC_ALL": "C",
    "LANG": "C",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
}


@dataclasses.dataclass(frozen=True)
class Outcome:
    returncode: int | None
    stdout: bytes
    stderr: bytes = b""
    timed_out: bool = False
    truncated: bool = False

    @property
    def signal(self) -> int | None:
        rc = self.returncode
        return -rc if rc is not None and rc < 0 else None

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def error_text(self) -> str:
        return self.stderr.decode("utf-8", errors="replace")

    def describe_failure(self, what: str, timeout: float) -> str | None:
        """One line saying why this run did not succeed, or None if it did."""
        if self.timed_out:
            return f"{what} did not finish within {round(timeout, 1):g} s"
        if self.truncated:
            return f"{what} printed more than {MAX_OUTPUT} bytes"
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            return f"{what} was killed by {name}"
        if self.returncode != 0:
            said = self.error_text + "\n" + self.text
            first = next((line for line in said.splitlines() if line.strip()), "")
            return f"{what} exited with status {self.returncode}" + (
                f": {first[:200]}" if first else ""
            )
        return None


def run(
    argv: Sequence[str],
    timeout: float,
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    limits: Mapping[int, int] | None = None,
    stdin: bytes | None = None,
    pass_fds: Sequence[int] = (),
) -> Outcome:
    """Run ``argv`` (no shell, ``argv[0]`` an absolute path) with its own stdout
    and stderr, each at most MAX_OUTPUT bytes.

    ``stdin`` is written to the child's standard input (which is otherwise
    /dev/null): the way a request reaches a child without appearing in its
    argv or environment, which other local users can read.

    ``user`` runs it with that account's uid, gid and groups (as root).
    ``limits`` are resource limits (``resource.RLIMIT_*`` -> value) set on
    the child from outside, never by Python code between fork and exec.
    Raises OSError when it cannot be started at all.
    """
    if not os.path.isabs(argv[0]):
        raise ValueError(f"refusing to run {argv[0]!r}: not an absolute path")
    if _closed:
        raise OSError(errno.ECANCELED, "not started: the command line is exiting")
    subprocess = green.original("subprocess")
    threading = green.original("threading")
    credentials = _credentials(user) if user else {}
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**CLEAN_ENV, **(env or {})},
        cwd=cwd or "/",
        close_fds=True,
        pass_fds=tuple(pass_fds),
        # Its own session, so the whole group can be killed at once.
        start_new_session=True,
        **credentials,
    )
    _live.add(proc.pid)
    if _closed:  # a signal came while it was being started
        kill_tree(proc.pid)
    if limits:
        _limit(proc.pid, limits)
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        kill_tree(proc.pid)

    timer = threading.Timer(max(timeout, 0.0), kill)
    timer.daemon = True
    timer.start()
    outputs: dict[str, bytes] = {}
    truncated = []

    def drain(name: str, stream: object) -> None:
        chunks, size = [], 0
        while True:
            chunk = os.read(stream.fileno(), 65536)  # type: ignore[attr-defined]
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_OUTPUT:
                truncated.append(name)
                kill_tree(proc.pid)
                break
            chunks.append(chunk)
        outputs[name] = b"".join(chunks)

    def feed(data: bytes) -> None:
        # A child that exits (or is killed) without reading it all is no error.
        try:
            proc.stdin.write(data)
        except OSError:
            pass
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    readers = [
        threading.Thread(target=drain, args=(name, stream), daemon=True)
        for name, stream in (("stdout", proc.stdout), ("stderr", proc.stderr))
    ]
    if stdin is not None:
        readers.append(threading.Thread(target=feed, args=(stdin,), daemon=True))
    try:
        for reader in readers:
            reader.start()
        for reader in readers:
            # A grandchild holding the pipe open outlives the kill only until
            # the tree kill reaches it; never wait past the deadline for it.
            reader.join(max(timeout, 0.0) + 1.0)
        returncode = proc.wait(timeout=max(timeout, 0.0) + 1.0)
    except BaseException:
        kill_tree(proc.pid)
        _reap(proc)
        raise
    finally:
        timer.cancel()
        if proc.poll() is None:
            kill_tree(proc.pid)
            _reap(proc)
        if proc.returncode is not None:
            _live.discard(proc.pid)  # else kill_all() tries again at exit
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    return Outcome(
        returncode,
        outputs.get("stdout", b""),
        outputs.get("stderr", b""),
        killed.is_set(),
        bool(truncated),
    )


def _reap(proc: Any) -> None:
    """Wait for a killed child, but not forever: one stuck in the kernel
    (uninterruptible sleep on a dead NFS server) must not hold the caller."""
    try:
        proc.wait(timeout=REAP_TIMEOUT)
    except Exception:  # subprocess.TimeoutExpired: leave it to kill_all()
        pass


REAP_TIMEOUT = 2.0
# Children running now, so a signal to the command line can end them too.
_live: set[int] = set()
# Set when the command line is exiting: no child is started after that.
_closed: list[bool] = []


def kill_all(close: bool = False) -> None:
    """Kill every child tree still running (the command line's signal handler
    and exit); with ``close``, refuse to start any more."""
    if close:
        _closed.append(True)
    for pid in list(_live):
        kill_tree(pid)


def call_as(user: str, function: Any, args: Sequence[object], timeout: float) -> Any:
    """``function(*args)`` in a forked child holding ``user``'s uid, gid and
    groups, for checks that must see the file system as the service does.

    A fork, not a new interpreter: the service account may not be able to
    execute this interpreter (one under root's home, say), and the check must
    not depend on that. The child runs only ``function`` and the JSON encoding
    of its result (modules already imported), then leaves with ``os._exit``.
    Raises ``TimeoutError`` or ``RuntimeError``; the child never outlives it.
    """
    import json
    import pwd

    os_ = green.original("os")
    select = green.original("select")
    clock = green.original("time")
    entry = pwd.getpwnam(user)
    groups = _credentials(user).get("extra_groups", [])
    read_end, write_end = os_.pipe()
    pid = os_.fork()
    if pid == 0:  # the child: never returns
        status = 1
        try:
            # Its own session, so kill_tree() (a signal to the command line
            # included) reaches it as it reaches every other child.
            os_.setsid()
            os_.close(read_end)
            os_.setgroups(groups)
            os_.setgid(entry.pw_gid)
            os_.setuid(entry.pw_uid)
            os_.chdir("/")
            try:
                payload = {"value": function(*args)}
            except Exception as exc:
                payload = {"error": f"{type(exc).__name__}: {exc}"}
            data = json.dumps(payload).encode()
            while data:
                data = data[os_.write(write_end, data) :]
            status = 0
        finally:
            os_._exit(status)
    os_.close(write_end)
    _live.add(pid)
    deadline = clock.monotonic() + timeout
    chunks = []
    try:
        while True:
            left = deadline - clock.monotonic()
            if left <= 0:
                raise TimeoutError(f"the check as {user} did not finish within {timeout:g} s")
            ready, _, _ = select.select([read_end], [], [], left)
            if not ready:
                continue
            chunk = os_.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            if sum(len(c) for c in chunks) > MAX_OUTPUT:
                raise RuntimeError(f"the check as {user} returned too much")
    finally:
        os_.close(read_end)
        try:
            os_.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        # Reaped within a bound: a child stuck in the kernel (a dead NFS
        # server) must not hold the caller; kill_all() tries it again at exit.
        reap_by = clock.monotonic() + REAP_TIMEOUT
        while os_.waitpid(pid, os.WNOHANG) == (0, 0):
            if clock.monotonic() > reap_by:
                break
            clock.sleep(0.01)
        else:
            _live.discard(pid)
    try:
        payload = json.loads(b"".join(chunks))
    except ValueError:
        raise RuntimeError(f"the check as {user} ended without a result") from None
    if "error" in payload:
        raise RuntimeError(f"the check as {user} failed: {payload['error']}")
    return payload["value"]


def _credentials(user: str) -> dict[str, object]:
    import pwd

    entry = pwd.getpwnam(user)
    if os.geteuid() == entry.pw_uid:
        return {}
    groups = [g for g in os.getgrouplist(user, entry.pw_gid) if g != entry.pw_gid]
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": groups}


def _limit(pid: int, limits: Mapping[int, int]) -> None:
    import resource

    for which, value in limits.items():
        try:
            resource.prlimit(pid, which, (value, value))
        except (OSError, ValueError):
            pass  # the child may already have exited


def kill_tree(pid: int) -> None:
    """Kill ``pid``'s process group and every descendant psutil can still find,
    including those that left the group with setsid."""
    import psutil

    try:
        descendants = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for child in descendants:
        try:
            child.kill()
        except psutil.Error:
            pass


def python_argv(python: str, *args: str) -> list[str]:
    """A Python child that cannot import from its working directory or the
    environment: ``-I`` (isolated mode)."""
    return [python, "-I", *args]


def which(name: str, path: str | None = None) -> str | None:
    """The absolute path ``name`` resolves to on ``path``; relative and empty
    entries (the current directory) are never searched."""
    import shutil

    search = path if path is not None else os.environ.get("PATH", os.defpath)
    absolute = os.pathsep.join(d for d in search.split(os.pathsep) if os.path.isabs(d))
    found = shutil.which(name, path=absolute) if absolute and os.sep not in name else None
    return found


def current_user() -> str:
    """This process's effective user, by name where it has one."""
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())
