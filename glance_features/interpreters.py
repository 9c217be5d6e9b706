"""Children of the service's interpreter that run :mod:`glance_features.checks`.

A child gets the function's name and arguments as JSON on stdin, never on its
command line or in its environment (other local users read both in /proc),
and has a deadline and a bounded answer. It gets checks.py as a descriptor
opened here, so the account need not reach this package's files. Only this
process's own interpreter, which this account already runs, is started as
this account.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar, cast

from glance_features import checks
from glance_features._platform import green
from glance_features.errors import GlanceFeaturesError

if TYPE_CHECKING:
    import subprocess

T = TypeVar("T")


class CheckFailed(GlanceFeaturesError):
    """The check could not be run, or gave no answer."""


def this_interpreter() -> str:
    """This process's Python binary. Inside uWSGI or mod_wsgi ``sys.executable``
    is the server's binary, so take the interpreter of the same prefix and
    version instead."""
    if os.path.basename(sys.executable).startswith("python"):
        return sys.executable
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for prefix in (sys.prefix, sys.base_prefix):
        for name in (version, "python3"):
            candidate = os.path.join(prefix, "bin", name)
            if os.access(candidate, os.X_OK):
                return candidate
    return sys.executable


def is_this_interpreter(python: str) -> bool:
    """The same binary *and* the same environment: a virtualenv's python is a
    link to its base interpreter, whose site-packages are another's."""
    try:
        same = os.path.samefile(python, this_interpreter())
    except OSError:
        return False
    return same and _environment_of(python) == _this_environment()


def _this_environment() -> str | None:
    """This process's virtualenv: its interpreter's, where sys.executable is a
    Python (whether or not site ran: ``python -S`` leaves sys.prefix at the
    base); inside uWSGI or mod_wsgi, where sys.executable is the server's
    binary, the one its sys.prefix names."""
    if os.path.basename(sys.executable).startswith("python"):
        return _environment_of(sys.executable)
    return os.path.realpath(sys.prefix) if sys.prefix != sys.base_prefix else None


def _environment_of(python: str) -> str | None:
    """The virtualenv ``python`` belongs to (its pyvenv.cfg, links in the
    path to ``python`` itself unresolved); None: none."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(python)))
    if not os.path.isfile(os.path.join(root, "pyvenv.cfg")):
        return None
    return os.path.realpath(root)


class Interpreters:
    """One child per service interpreter and account for a whole probe,
    answering every :attr:`Where.INTERPRETER` check (as oslo.privsep keeps
    its daemon): a dozen checks cost one interpreter start, not a dozen.
    The child runs each request in a thread of its own, so a check never
    waits for another (a slow import). Checks that patch their interpreter
    never come here. A call that overruns its deadline retires its child: it
    takes no more calls and ends once no call is waiting on it; a check whose
    child died under it (another check crashed it) is asked again in a child
    of its own. :meth:`close` ends them all (the runner, when the probe is done)."""

    def __init__(self) -> None:
        self._lock = green.original("threading").Lock()
        self._children: dict[tuple[str, str | None], _Child] = {}
        self._retired: list[_Child] = []
        self._closed = False

    def warm(self, python: str, user: str | None) -> None:
        """Start the child for ``python`` and ``user`` now, while the caller
        does other work: its interpreter's start is then off the probe's path.
        A child that cannot start says so to the first check that calls it."""
        try:
            self._child(python, user).start()
        except CheckFailed:
            pass

    def call(
        self,
        python: str,
        user: str | None,
        check: Callable[..., T],
        args: tuple[object, ...],
        timeout: float,
    ) -> T:
        clock = green.original("time")
        deadline = clock.monotonic() + timeout
        child = self._child(python, user)
        try:
            return child.call(check, args, deadline)
        except _ChildLost as lost:
            left = deadline - clock.monotonic()
            if self._closed or left <= 0:
                raise CheckFailed(str(lost)) from None
        return in_interpreter(python, check, args, left, user)

    def _child(self, python: str, user: str | None) -> _Child:
        with self._lock:
            if self._closed:
                raise CheckFailed("the probe is over")
            child = self._children.get((python, user))
            if child is None or child.retired:
                if child is not None:
                    self._retired.append(child)  # callers may still wait on it
                child = self._children[(python, user)] = _Child(python, user)
            return child

    def close(self) -> None:
        with self._lock:
            self._closed = True
            children = [*self._children.values(), *self._retired]
            self._children, self._retired = {}, []
        for child in children:
            child.close()


class _ChildLost(CheckFailed):
    """The child ended before it answered this call."""


class _Child:
    """One ``python -I checks.py`` answering requests that carry an id, each
    in its own thread there; any number of callers at once. Whichever caller
    is waiting reads the child's output for all, and hands each answer to
    the caller whose id it carries."""

    def __init__(self, python: str, user: str | None) -> None:
        self.python, self.user = python, user
        threading_ = green.original("threading")
        self._lock = threading_.Lock()  # guards all below
        self._answered = threading_.Condition(self._lock)
        self._sending = threading_.Lock()  # one request on the pipe at a time
        self._proc: subprocess.Popen[bytes] | None = None
        self._ids = 0
        self._waiting: set[int] = set()
        self._answers: dict[int, bytes] = {}
        self._unread = bytearray()
        self._reading = False  # a caller is reading for all
        self._ended: str | None = None  # why no more answers will come
        self.retired = False  # takes no new calls

    def call(self, check: Callable[..., T], args: tuple[object, ...], deadline: float) -> T:
        """``check(*args)`` in this child, by ``deadline`` (``time.monotonic()``)."""

        clock = green.original("time")
        timeout = deadline - clock.monotonic()
        what = f"the {check.__name__} check in {self.python}" + (
            f" as {self.user}" if self.user else ""
        )
        with self._lock:
            if self._ended is not None:  # ended since the pool handed it out
                raise _ChildLost(f"{what} found its child ended")
            child = self._started()  # stays while this call waits on it (_end)
            self._ids += 1
            ident = self._ids
            self._waiting.add(ident)
        request = {"id": ident, "call": check.__name__, "args": list(args)}
        try:
            self._send(child, json.dumps(request).encode() + b"\n", deadline)
            # The child ran ``check`` itself: its answer is what ``check`` returns.
            return cast(T, _value(self._answer(child, ident, deadline), what))
        except TimeoutError:
            self.retired = True
            raise CheckFailed(f"{what} did not finish within {round(timeout, 1):g} s") from None
        except EOFError:
            self.retired = True  # it died with nobody reading: the pool replaces it
            raise _ChildLost(f"{what} ended without an answer") from None
        finally:
            with self._lock:
                self._waiting.discard(ident)
                self._answers.pop(ident, None)
                if (self.retired or self._ended) and not self._waiting:
                    self._end()

    def start(self) -> None:
        """Start the interpreter before any call."""
        with self._lock:
            if self._ended is None:
                try:
                    self._started()
                except (OSError, CheckFailed):
                    pass  # started again by the first call, which says why not

    def _started(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            self._proc = self._start()
        return self._proc

    def _send(self, child: subprocess.Popen[bytes], request: bytes, deadline: float) -> None:
        """Put one request on the child's stdin, whole, by ``deadline``."""
        from glance_features._platform import proc

        left = deadline - green.original("time").monotonic()
        if not self._sending.acquire(timeout=max(0.0, left)):
            raise TimeoutError
        try:
            proc.send(child, request, deadline)
        except TimeoutError:
            with self._lock:  # part of it may be on the pipe: the next would join it
                self._ended = self._ended or "a request to it was cut short"
                self.retired = True
            raise
        finally:
            self._sending.release()

    def _answer(self, child: subprocess.Popen[bytes], ident: int, deadline: float) -> bytes:
        """The answer to request ``ident``; this caller reads for all while no
        other does. Raises ``TimeoutError``, or ``EOFError`` when the child
        has ended."""
        from glance_features._platform import proc

        clock = green.original("time")
        while True:
            with self._lock:
                while ident not in self._answers and self._ended is None and self._reading:
                    left = deadline - clock.monotonic()
                    if left <= 0:
                        raise TimeoutError
                    self._answered.wait(left)
                if ident in self._answers:
                    return self._answers.pop(ident)
                if self._ended is not None:
                    raise EOFError(self._ended)
                self._reading = True
            chunk = None  # none read: the deadline came first
            try:
                chunk = proc.read_some(child, deadline)
            finally:
                with self._lock:
                    self._reading = False
                    try:
                        if chunk is not None:
                            self._take(chunk)
                    finally:
                        self._answered.notify_all()

    def _take(self, chunk: bytes) -> None:
        """Hand out the whole answers in ``chunk``; the caller holds the lock."""
        from glance_features._platform import proc

        if not chunk:
            self._ended = "it closed its output"
            self.retired = True
            return
        self._unread += chunk
        *lines, rest = self._unread.split(b"\n")
        if len(rest) > proc.MAX_OUTPUT:
            self._ended = f"it said more than {proc.MAX_OUTPUT} bytes"
            self.retired = True
        self._unread = bytearray(rest)
        for line in lines:
            try:
                ident = json.loads(line)["id"]
            except Exception:  # not JSON, too deep, not an object: no answer of ours
                ident = None
            if not isinstance(ident, int):
                self._ended = "it said something that is no answer"
                self.retired = True
            elif ident in self._waiting:
                self._answers[ident] = bytes(line)

    def _start(self) -> subprocess.Popen[bytes]:
        from glance_features._platform import proc

        path, user = _import_path(self.python, self.user)
        request = {"serve": True, "path": path}
        with _checks_argv(self.python, user) as (argv, fds):
            child: subprocess.Popen[bytes] = proc.spawn(argv, user=user, stdin=True, pass_fds=fds)
        if child.stdin is None:  # never: spawned with stdin=True, a pipe
            proc.end(child)
            raise CheckFailed(f"{self.python} was started without a pipe to its stdin")
        # Unpatched: eventlet's write waits for the pipe with no deadline.
        os_ = green.original("os")
        os_.set_blocking(child.stdin.fileno(), False)
        try:
            os_.write(child.stdin.fileno(), json.dumps(request).encode() + b"\n")
        except OSError:
            pass  # it has exited: the first call says so
        return child

    def _end(self) -> None:
        """End the child; the caller holds the lock and no call waits on it."""
        from glance_features._platform import proc

        self._ended = self._ended or "it was ended"
        self.retired = True
        if self._proc is not None:
            proc.end(self._proc)
            self._proc = None

    def close(self) -> None:
        """End the child. One that callers still wait on is only killed: they
        meet the end of its output, and the last of them closes its pipes."""
        from glance_features._platform import proc

        with self._lock:
            self.retired = True
            if not self._waiting:
                self._end()
            elif self._proc is not None:
                proc.kill_tree(self._proc.pid)


def _value(reply_text: bytes, what: str) -> object:
    try:
        reply = json.loads(reply_text)
    except ValueError:
        raise CheckFailed(f"{what} gave no answer") from None
    if not isinstance(reply, dict) or not ("value" in reply or "error" in reply):
        raise CheckFailed(f"{what} gave no answer")
    if "error" in reply:
        raise CheckFailed(f"{what} failed: {reply['error']}")
    return reply["value"]


def in_interpreter(
    python: str,
    check: Callable[..., T],
    args: tuple[object, ...],
    timeout: float,
    user: str | None = None,
) -> T:
    """``check(*args)`` in ``python -I checks.py``, the request on stdin; as
    ``user`` unless ``python`` is this process's own interpreter."""
    from glance_features._platform import proc

    path, user = _import_path(python, user)
    request = {"call": check.__name__, "args": list(args), "path": path}
    what = f"the {check.__name__} check in {python}" + (f" as {user}" if user else "")
    with _checks_argv(python, user) as (argv, fds):
        outcome = proc.run(
            argv, timeout, stdin=json.dumps(request).encode(), user=user, pass_fds=fds
        )
    failure = outcome.describe_failure(what, timeout)
    if failure is not None:
        raise CheckFailed(failure)
    return cast(T, _value(outcome.stdout, what))


def _import_path(python: str, user: str | None) -> tuple[list[str] | None, str | None]:
    """The import path a child of ``python`` gets, and as whom it runs: this
    process's own interpreter stands for the service's, so it gets the import
    path this process runs with (a WSGI server's virtualenv and pythonpath
    settings live only here), absolute entries only, and this account."""
    if not is_this_interpreter(python):
        return None, user
    return [p for p in sys.path if p and os.path.isabs(p)], None


@contextlib.contextmanager
def _checks_argv(python: str, user: str | None) -> Iterator[tuple[list[str], tuple[int, ...]]]:
    """``python -I /dev/fd/N`` with checks.py opened here (the account need
    not reach this package's files), for the body to start; what keeps it
    from starting becomes :class:`CheckFailed`."""
    from glance_features._platform import proc

    try:
        script = os.open(checks.__file__, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise CheckFailed(f"cannot open {checks.__file__}: {exc.strerror}") from None
    try:
        yield proc.python_argv(python, f"/dev/fd/{script}"), (script,)
    except (OSError, ValueError, KeyError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        who = f" as {user}" if user else ""
        raise CheckFailed(f"cannot run {python}{who}: {why}") from None
    finally:
        os.close(script)
