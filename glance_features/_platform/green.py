"""The real (unpatched) standard modules, also inside eventlet-patched processes.

Older Glance services call ``eventlet.monkey_patch()`` first. Green threads,
pipes and sleeps there cannot keep a deadline while a detector blocks in C,
and green pipes break subprocess; the probe uses the originals instead.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import Generic, TypeVar

T = TypeVar("T")

# eventlet records what it patched under its monkey_patch() keyword, which
# is not always the module's name: threading is patched as "thread".
_PATCHED_AS = {"threading": "thread", "_thread": "thread", "queue": "thread"}


def original(name: str) -> ModuleType:
    """``name`` as it was before eventlet patched it (or as it is, unpatched)."""
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None:
        try:
            if patcher.is_monkey_patched(_PATCHED_AS.get(name, name)):
                module: ModuleType = patcher.original(name)
                return module
        except Exception:  # an eventlet too old or too new to ask: use what is there
            pass
    return __import__(name)


class Background(Generic[T]):
    """``work()`` in a real daemon thread, so that it goes on while this one
    does other work; its value, or None (it raised, or is not done by the
    deadline), when :meth:`wait` is asked. Only for work whose answer is an
    extra that the caller can do without."""

    def __init__(self, work: Callable[[], T], name: str) -> None:
        self._work = work
        self._value: T | None = None
        self._done = original("threading").Event()
        thread = original("threading").Thread(target=self._run, name=name, daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: do it now, then
            self._run()

    def _run(self) -> None:
        try:
            self._value = self._work()
        except MemoryError:
            raise  # the command line's thread hook makes it a process-limit error
        except Exception:
            pass
        finally:
            self._done.set()

    def wait(self, deadline: float) -> T | None:
        """The value, waited for until ``deadline`` (``time.monotonic()``)."""
        left = deadline - original("time").monotonic()
        return self._value if self._done.wait(max(0.0, left)) else None
