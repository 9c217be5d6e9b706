"""Run by a release venv's Python: the top-level modules glance_store's rbd
driver module itself imports (recorded while it is imported, not read from its
source), whether each imported, and which of them the installed glance_store's
own requirements provide (JSON on stdout)."""

from __future__ import annotations

import builtins
import importlib
import json
import re
from importlib import metadata
from typing import Any

DRIVER = "glance_store._drivers.rbd"


def main() -> dict[str, Any]:
    seen: dict[str, bool] = {}
    original = builtins.__import__

    def recording(name: str, globals: Any = None, *args: Any, **kwargs: Any) -> Any:
        importer = (globals or {}).get("__name__")
        if importer != DRIVER or not name:
            return original(name, globals, *args, **kwargs)
        top = name.split(".")[0]
        try:
            module = original(name, globals, *args, **kwargs)
        except ImportError:
            seen[top] = False
            raise
        seen.setdefault(top, True)
        return module

    builtins.__import__ = recording
    try:
        importlib.import_module(DRIVER)
    finally:
        builtins.__import__ = original
    provided = metadata.packages_distributions()
    required = {
        re.split(r"[ ;<>=!~\[]", line, maxsplit=1)[0].lower().replace("_", "-")
        for line in metadata.requires("glance_store") or ()
        if "extra ==" not in line
    }
    own = {"glance_store"} | {
        top
        for top in seen
        if any(d.lower().replace("_", "-") in required for d in provided.get(top, ()))
    }
    return {
        "glance_store": metadata.version("glance_store"),
        "imports": seen,
        "outside_requirements": sorted(t for t in seen if t not in own and not _stdlib(t)),
    }


def _stdlib(name: str) -> bool:
    import sys

    return name in sys.stdlib_module_names


if __name__ == "__main__":
    print(json.dumps(main()))
