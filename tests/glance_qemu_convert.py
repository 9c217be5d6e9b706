"""Glance's own image_conversion task on a qcow2 file.

Executed by the interpreter of a virtualenv where Glance is installed
(GLANCE_VENV), as the user Glance runs as, with the PATH the service would
have; never imported by the test suite. ``argv``: the qcow2 file, the output
format, and [wsgi] python_interpreter (``-`` to leave it unset). Runs
``_ConvertImage._execute`` itself: the format inspector, ``qemu-img info``
through ``python -m oslo_concurrency.prlimit`` with Glance's limits, and
``qemu-img convert``, each judged as Glance judges it. Prints one JSON object.
"""

import json
import sys
import warnings

warnings.simplefilter("ignore")

import glance.common.config  # noqa: E402,F401  (registers [wsgi] and [image_format])
from glance.async_.flows.plugins import image_conversion  # noqa: E402
from oslo_config import cfg  # noqa: E402

source, output_format, python = sys.argv[1], sys.argv[2], sys.argv[3]
cfg.CONF([], project="glance", default_config_files=[])
cfg.CONF.set_override("output_format", output_format, group="image_conversion")
if python != "-":
    cfg.CONF.set_override("python_interpreter", python, group="wsgi")


class Action:
    """The two things _execute asks of Glance's image action wrapper."""

    image_disk_format = "qcow2"
    image_id = "00000000-0000-0000-0000-000000000000"

    def __init__(self) -> None:
        self.attributes: dict[str, object] = {}

    def set_image_attribute(self, **kwargs: object) -> None:
        self.attributes.update(kwargs)


action = Action()
task = image_conversion._ConvertImage(None, "task", "api_image_import", action, None)
try:
    path = task._execute(action, "file://" + source)
except Exception as exc:
    print(json.dumps({"converted": False, "error": f"{type(exc).__name__}: {exc}"[:500]}))
else:
    print(json.dumps({"converted": True, "path": path, "attributes": action.attributes}))
