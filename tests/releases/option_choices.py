"""Run by a release venv's Python: both conversion options' ``choices`` as that
release registers them, and which of the values on argv each option's own type
accepts (JSON on stdout). Glance's code judges, not a copy of its list."""

from __future__ import annotations

import json
import sys
from typing import Any


def _opt(opts: list[Any], name: str) -> Any:
    (found,) = [o for o in opts if o.name == name]
    return found


def _accepts(opt: Any, value: str) -> bool:
    try:
        opt.type(value)
    except ValueError:
        return False
    return True


def main(values: list[str]) -> dict[str, Any]:
    from glance.async_.flows import convert
    from glance.async_.flows.plugins import image_conversion

    options = {
        "output_format": _opt(image_conversion.conversion_plugin_opts, "output_format"),
        "conversion_format": _opt(convert.convert_task_opts, "conversion_format"),
    }
    return {
        key: {
            "choices": sorted(opt.type.choices),
            "accepts": {value: _accepts(opt, value) for value in values},
        }
        for key, opt in options.items()
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
