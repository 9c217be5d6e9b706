"""Run an external program with bounded time, output and resources, and leave
nothing behind: on deadline, signal or exit the whole tree it started is killed."""

from __future__ import annotations

import dataclasses
import errno
import math
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from glance_features._platform import green

if TYPE_CHECKING:
    from subprocess import Popen

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
    started: Callable[[], None] | None = None,
) -> Outcome:
    """Run ``argv`` (no shell, ``argv[0]`` an absolute path) with its own stdout
    and stderr, each at most MAX_OUTPUT bytes.

    ``stdin`` is written to the child's standard input (which is otherwise
    /dev/null): the way a request reaches a child without appearing in its
    argv or environment, which other local users can read.

    ``user`` runs it with that account's uid, gid and groups (as root).
    ``limits`` are resource limits (``resource.RLIMIT_*`` -> value) set on
    the child from outside, never by Python code between fork and exec.
    ``started`` is called once the child runs, before its output is awaited.
    Raises OSError when it cannot be started at all.
    """
    subprocess = green.original("subprocess")
    clock = green.original("time")
    ends_at = clock.monotonic() + max(timeout, 0.0)
    proc = spawn(argv, cwd=cwd, env=env, user=user, stdin=stdin is not None, pass_fds=pass_fds)
    if limits:
        _limit(proc.pid, limits)
    try:
        if started is not None:
            started()
        outputs, timed_out, truncated = _exchange(proc, stdin, ends_at)
        try:
            # Output closed, the process may still run: not past the deadline.
            returncode = proc.wait(timeout=max(0.0, ends_at - clock.monotonic()) + 1.0)
        except subprocess.TimeoutExpired:
            kill_tree(proc.pid)
            _reap(proc)
            returncode, timed_out = proc.returncode, True
    finally:
        end(proc)
    return Outcome(returncode, outputs["stdout"], outputs["stderr"], timed_out, truncated)


def spawn(
    argv: Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    stdin: bool = False,
    pass_fds: Sequence[int] = (),
) -> Popen[bytes]:
    """Start ``argv`` as :func:`run` does, its output on pipes, for a caller
    that talks to it (:func:`send`, :func:`read_some`) and must :func:`end` it.
    Raises OSError when it cannot be started at all."""
    if not os.path.isabs(argv[0]):
        raise ValueError(f"refusing to run {argv[0]!r}: not an absolute path")
    if _closed:
        raise OSError(errno.ECANCELED, "not started: the command line is exiting")
    subprocess = green.original("subprocess")
    credentials = _credentials(user) if user else {}
    with _spawning:  # a sweep never takes it for an orphan
        proc: Popen[bytes] = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
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
    return proc


def end(proc: Popen[bytes]) -> None:
    """Kill what is left of a child of :func:`spawn`, reap it and close its pipes."""
    if proc.poll() is None:
        kill_tree(proc.pid)
        _reap(proc)
    if proc.returncode is not None:
        _live.discard(proc.pid)  # else kill_all() tries again at exit
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass


def send(proc: Popen[bytes], data: bytes, deadline: float) -> None:
    """Write ``data`` to the stdin of a child of :func:`spawn` by ``deadline``
    (``time.monotonic()``). Raises ``TimeoutError``, or ``EOFError`` when it
    stopped reading (it exited)."""
    select = green.original("select")
    clock = green.original("time")
    if proc.stdin is None:
        raise EOFError("it was started without a pipe to its stdin")
    writer = proc.stdin.fileno()
    green.original("os").set_blocking(writer, False)
    poller = select.poll()
    poller.register(writer, select.POLLOUT)
    pending = memoryview(data)
    while pending:
        left = deadline - clock.monotonic()
        if left <= 0:
            raise TimeoutError("it took nothing by the deadline")
        if poller.poll(max(1, math.ceil(left * 1000))):
            left_over = _feed(writer, pending)
            if left_over is None:
                raise EOFError("it stopped reading")
            pending = left_over


def read_some(proc: Popen[bytes], deadline: float) -> bytes:
    """What a child of :func:`spawn` says on stdout next, by ``deadline``;
    what it says on stderr meanwhile is read and dropped. ``b""``: it closed
    its output (it exited). Raises ``TimeoutError``."""
    select = green.original("select")
    clock = green.original("time")
    if proc.stdout is None or proc.stderr is None:
        raise EOFError("it was started without pipes to its outputs")
    out, err = proc.stdout.fileno(), proc.stderr.fileno()
    poller = select.poll()
    poller.register(out, select.POLLIN)
    poller.register(err, select.POLLIN)
    while True:
        left = deadline - clock.monotonic()
        if left <= 0:
            raise TimeoutError("no answer by the deadline")
        for fd, _ in poller.poll(max(1, math.ceil(left * 1000))):
            chunk = _read(fd)
            if fd == out:
                return chunk
            if not chunk:
                poller.unregister(fd)


def _read(fd: int) -> bytes:
    # The unpatched read: eventlet's waits for the pipe with no deadline.
    data: bytes = green.original("os").read(fd, 65536)
    return data


def _feed(fd: int, pending: memoryview) -> memoryview | None:
    """Write what the pipe ``fd`` takes of ``pending`` now; what is left, or
    None when its reader is gone. The unpatched write: eventlet's waits for
    the pipe with no deadline and retries EAGAIN and EPIPE forever."""
    try:
        return pending[green.original("os").write(fd, pending[:65536]) :]
    except BlockingIOError:
        return pending
    except OSError:
        return None


def _exchange(
    proc: Popen[bytes], stdin: bytes | None, deadline: float
) -> tuple[dict[str, bytes], bool, bool]:
    """Feed ``stdin`` and read both outputs in this thread, with one poll loop:
    no thread per stream (each costs a stack, which an address-space limit
    such as systemd's ``LimitAS=`` soon exhausts, and a thread left blocked
    on a pipe outlives the call). Past the deadline the tree is killed; a
    grandchild holding a pipe open is waited for one second more, no longer.
    Returns (outputs, timed out, truncated)."""
    select = green.original("select")
    clock = green.original("time")
    poller = select.poll()
    assert proc.stdout and proc.stderr, "spawn() gives both"
    names = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr"}
    chunks: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    sizes = {"stdout": 0, "stderr": 0}
    for fd in names:
        poller.register(fd, select.POLLIN)
    pending = memoryview(stdin or b"")
    pipe_in = proc.stdin
    writer = pipe_in.fileno() if pipe_in is not None else None
    if writer is not None:
        green.original("os").set_blocking(writer, False)
        poller.register(writer, select.POLLOUT)
    timed_out = truncated = False
    while names or writer is not None:
        left = deadline - clock.monotonic()
        if left <= 0 and not timed_out:
            timed_out = True
            kill_tree(proc.pid)
            deadline += 1.0
            continue
        if left <= 0:
            break
        for fd, _ in poller.poll(max(1, math.ceil(left * 1000))):
            if fd == writer:
                # A child that exits without reading it all is no error.
                pending = _feed(fd, pending) or pending[:0]
                if not pending:
                    poller.unregister(fd)
                    if pipe_in is not None:
                        pipe_in.close()
                    writer = None
                continue
            chunk = _read(fd)
            name = names[fd]
            sizes[name] += len(chunk)
            if sizes[name] > MAX_OUTPUT:
                truncated = True
                kill_tree(proc.pid)
                chunk = b""
            if not chunk:
                poller.unregister(fd)
                del names[fd]
                continue
            chunks[name].append(chunk)
    return {name: b"".join(parts) for name, parts in chunks.items()}, timed_out, truncated


def _reap(proc: Popen[bytes]) -> None:
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
# Held while a child is started and entered in _live, and while orphans are swept.
_spawning = green.original("threading").Lock()
# Set when this process is a subreaper (become_subreaper()).
_subreaper: list[bool] = []


def _after_fork_in_child() -> None:
    # A fork taken while another thread started a child must not leave this
    # process's lock held; the parent's children are not this one's to kill.
    global _spawning
    _spawning = green.original("threading").Lock()
    _live.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def become_subreaper() -> bool:
    """Make this process the subreaper of its descendants (Linux's
    ``PR_SET_CHILD_SUBREAPER``): a child's daemon that leaves its session
    with ``setsid`` and is orphaned becomes this process's child instead of
    init's, where :func:`sweep_orphans` ends it. Only for a process that is
    the probe's own (the command line): inside a service it would make the
    service the parent of its children's orphans."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            return False
    except (ImportError, OSError, AttributeError):  # no ctypes, or no memory to map it
        return False
    _subreaper.append(True)
    return True


PR_SET_CHILD_SUBREAPER = 36


def sweep_orphans() -> None:
    """In a subreaper, kill and reap every child that this process did not
    start: what a child left behind in a session of its own (a daemon).
    Called as the command line exits, when nothing else of it still runs: a
    plugin's own child in a session of its own would be taken for one too."""
    if not _subreaper:
        return
    import psutil

    session = os.getsid(0)
    # Bounded: a start stuck in exec (a dead NFS mount) must not hold the exit.
    if not _spawning.acquire(timeout=REAP_TIMEOUT):
        return
    try:
        try:
            children = psutil.Process().children()
        except psutil.Error:
            return
        orphans = []
        for child in children:
            try:
                if child.pid in _live or os.getsid(child.pid) == session:
                    continue  # a run under way, or a child of this session's own
            except OSError:
                continue
            kill_tree(child.pid)
            orphans.append(child)
    finally:
        _spawning.release()
    for orphan in orphans:
        try:
            orphan.wait(REAP_TIMEOUT)
        except psutil.Error:
            pass


def kill_all(close: bool = False) -> None:
    """Kill every child tree still running (the command line's signal handler
    and exit); with ``close``, refuse to start any more."""
    if close:
        _closed.append(True)
    for pid in list(_live):
        kill_tree(pid)


def call_as(
    user: str, function: Callable[..., object], args: Sequence[object], timeout: float
) -> object:
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
    entry = pwd.getpwnam(user)
    groups = _credentials(user).get("extra_groups", [])
    read_end, write_end = os_.pipe()
    with _spawning:  # a sweep never takes it for an orphan
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
        _live.add(pid)
    os_.close(write_end)
    try:
        output = _read_within(read_end, timeout, user)
    finally:
        os_.close(read_end)
        _kill_and_reap(pid)
    try:
        payload = json.loads(output)
    except ValueError:
        raise RuntimeError(f"the check as {user} ended without a result") from None
    if "error" in payload:
        raise RuntimeError(f"the check as {user} failed: {payload['error']}")
    value: object = payload["value"]  # JSON: the caller knows what its check returns
    return value


def _read_within(fd: int, timeout: float, user: str) -> bytes:
    """What the child of ``call_as`` writes, until it closes its end; raises
    ``TimeoutError`` after ``timeout`` seconds, ``RuntimeError`` past MAX_OUTPUT."""
    os_ = green.original("os")
    select = green.original("select")
    clock = green.original("time")
    deadline = clock.monotonic() + timeout
    chunks = []
    while True:
        left = deadline - clock.monotonic()
        if left <= 0:
            raise TimeoutError(f"the check as {user} did not finish within {timeout:g} s")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os_.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        if sum(len(c) for c in chunks) > MAX_OUTPUT:
            raise RuntimeError(f"the check as {user} returned too much")
    return b"".join(chunks)


def _kill_and_reap(pid: int) -> None:
    """Kill the child of ``call_as``, and reap it unless that takes too long."""
    os_ = green.original("os")
    clock = green.original("time")
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
