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
    """A few children per service interpreter and account for a whole probe,
    each answering :attr:`Where.INTERPRETER` checks in turn (as oslo.privsep
    keeps its daemon): a dozen checks cost one or two interpreter starts,
    not a dozen. A check never waits for another: with every shared child
    busy (a slow import), it gets a child of its own. Checks that patch their
    interpreter never come here. A call that overruns its deadline ends its
    child; :meth:`close` ends them all (the runner, when the probe is done)."""

    SHARED = 2  # children per interpreter and account

    def __init__(self) -> None:
        self._lock = green.original("threading").Lock()
        self._children: dict[tuple[str, str | None], list[_Child]] = {}
        self._closed = False

    def call(
        self,
        python: str,
        user: str | None,
        check: Callable[..., T],
        args: tuple[object, ...],
        timeout: float,
    ) -> T:
        with self._lock:
            if self._closed:
                raise CheckFailed("the probe is over")
            shared = self._children.setdefault((python, user), [])
            child = next((c for c in shared if c.claim()), None)
            if child is None and len(shared) < self.SHARED:
                child = _Child(python, user)
                child.claim()
                shared.append(child)
        if child is None:
            return in_interpreter(python, check, args, timeout, user)
        try:
            return child.call(check, args, timeout)
        finally:
            child.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            children = [c for shared in self._children.values() for c in shared]
            self._children = {}
        for child in children:
            child.close()


class _Child:
    """One ``python -I checks.py`` answering one request per line; used by
    one caller at a time (:meth:`claim`)."""

    def __init__(self, python: str, user: str | None) -> None:
        self.python, self.user = python, user
        self._lock = green.original("threading").Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def claim(self) -> bool:
        return bool(self._lock.acquire(blocking=False))

    def release(self) -> None:
        self._lock.release()

    def call(self, check: Callable[..., T], args: tuple[object, ...], timeout: float) -> T:
        """``check(*args)`` in this child, by the deadline; the caller holds it."""
        from glance_features._platform import proc

        clock = green.original("time")
        deadline = clock.monotonic() + timeout
        what = f"the {check.__name__} check in {self.python}" + (
            f" as {self.user}" if self.user else ""
        )
        if self._proc is None:
            self._proc = self._start()
        request = {"call": check.__name__, "args": list(args)}
        try:
            line = proc.ask(self._proc, json.dumps(request).encode() + b"\n", deadline)
        except TimeoutError:
            self._end()
            raise CheckFailed(f"{what} did not finish within {round(timeout, 1):g} s") from None
        except EOFError:
            self._end()
            raise CheckFailed(f"{what} ended without an answer") from None
        except BaseException:
            self._end()  # an answer may still come: never read it as the next one's
            raise
        # The child ran ``check`` itself: its answer is what ``check`` returns.
        return cast(T, _value(line, what))

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
        from glance_features._platform import proc

        if self._proc is not None:
            proc.end(self._proc)
            self._proc = None

    def close(self) -> None:
        """End the child. One a caller is still talking to is only killed:
        that caller meets the end of its output and closes its pipes."""
        from glance_features._platform import proc

        if self.claim():
            try:
                self._end()
            finally:
                self.release()
        else:
            busy = self._proc
            if busy is not None:
                proc.kill_tree(busy.pid)


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
