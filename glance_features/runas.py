"""Run a check of :mod:`glance_features.checks` with the service's eyes.

One entry point, in the manner of oslo.privsep: the caller names an ordinary
function and where it must run, and gets its typed answer back.

- :attr:`Where.ACCOUNT` (files): in this process when it already is the
  service account, else in a fork holding that account's uid, gid and groups
  (a fork, so the check never depends on that account being able to execute
  this interpreter).
- :attr:`Where.INTERPRETER` (imports): in this process when it is the service's
  interpreter and account (inside Glance), else ``python -I checks.py`` in the
  service's interpreter.
- :attr:`Where.NEW_INTERPRETER`: always that child (a check that patches the
  interpreter it runs in, such as ``eventlet.monkey_patch()``).

The children themselves, and the few a probe shares, are
:mod:`glance_features.interpreters`.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

from glance_features import checks
from glance_features._platform.proc import current_user
from glance_features.interpreters import CheckFailed as CheckFailed
from glance_features.interpreters import Interpreters as Interpreters
from glance_features.interpreters import in_interpreter as in_interpreter
from glance_features.interpreters import is_this_interpreter as is_this_interpreter
from glance_features.interpreters import this_interpreter as this_interpreter

if TYPE_CHECKING:
    from glance_features.detector import ProbeContext

T = TypeVar("T")


class Where(enum.Enum):
    """Where a check runs; each check declares its own (``checks.runs_in``)."""

    ACCOUNT = "the service account"
    INTERPRETER = "the service's interpreter"
    NEW_INTERPRETER = "a new service interpreter"
    CHILD = "a child of this interpreter"


def where(check: Callable[..., object]) -> Where:
    """Where ``check`` runs, as it declares next to its definition."""
    if checks.CALLS.get(check.__name__) is not check:
        raise ValueError(f"{check.__name__} is not a check of glance_features.checks")
    return Where[checks.WHERE[check.__name__]]


def run(
    context: ProbeContext, check: Callable[..., T], *args: object, within: float | None = None
) -> T:
    """``check(*args)`` where it declares it runs, by the probe's deadline or
    ``within`` seconds, whichever comes first; raises :class:`CheckFailed`."""
    excess = context.remaining() - within if within is not None else 0.0
    if excess > 0:
        context = dataclasses.replace(context, deadline=context.deadline - excess)
    return run_at(context, where(check), check, *args)


def run_at(context: ProbeContext, place: Where, check: Callable[..., T], *args: object) -> T:
    """``check(*args)`` at ``place``, whatever it declares: for tests that hold
    the places to one answer. Detectors call :func:`run`."""
    where(check)  # only the checks of glance_features.checks
    if place is Where.ACCOUNT:
        return _as_account(context, check, args)
    if place is Where.CHILD:
        return in_interpreter(this_interpreter(), check, args, context.remaining())
    python = service_python(context)
    if place is Where.INTERPRETER and is_this_interpreter(python) and not _other_account(context):
        return check(*args)
    return _in_interpreter(context, python, check, args, shared=place is Where.INTERPRETER)


def service_python(context: ProbeContext) -> str:
    """The interpreter Glance runs in: the context's, else this process's."""
    return context.python or this_interpreter()


def is_service_interpreter(context: ProbeContext) -> bool:
    """Whether this process runs the interpreter the service runs in."""
    return is_this_interpreter(service_python(context))


def checked_as(context: ProbeContext) -> str:
    return context.user or current_user()


def _other_account(context: ProbeContext) -> str | None:
    return context.user if context.user and context.user != current_user() else None


def _as_account(context: ProbeContext, check: Callable[..., T], args: tuple[object, ...]) -> T:
    from glance_features._platform import proc

    user = _other_account(context)
    if user is None:
        return check(*args)
    try:
        return cast(T, proc.call_as(user, check, args, context.remaining()))
    except KeyError:
        raise CheckFailed(f"no account named {user!r}") from None
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise CheckFailed(str(exc)) from None


def _in_interpreter(
    context: ProbeContext,
    python: str,
    check: Callable[..., T],
    args: tuple[object, ...],
    shared: bool,
) -> T:
    """In a child of ``python``: one of the probe's shared children, or (a
    check that patches its interpreter) a new one of its own."""
    user = _other_account(context)
    if shared and context.interpreters is not None:
        return context.interpreters.call(python, user, check, args, context.remaining())
    return in_interpreter(python, check, args, context.remaining(), user)
