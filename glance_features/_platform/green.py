"""The real (unpatched) standard modules, also inside eventlet-patched processes.

Older Glance services call ``eventlet.monkey_patch()`` first. Green threads,
pipes and sleeps there cannot keep a deadline while a detector blocks in C,
and green pipes break subprocess; the probe uses the originals instead.
"""

from __future__ import annotations

import sys
from types import ModuleType

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
