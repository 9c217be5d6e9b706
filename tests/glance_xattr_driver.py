"""Glance's own image cache, configured with the xattr driver, on a directory.

Executed by the interpreter of a virtualenv where Glance is installed
(GLANCE_VENV), as the user Glance runs as; never imported by the test suite.
``argv[1]`` is image_cache_dir, or ``-`` to leave it unset. Prints one JSON
object: ``driver`` is the cache driver Glance ended up with (``xattr`` when
the feature works, ``sqlite`` when Glance fell back), or ``error`` holds the
exception that stopped Glance's cache from loading at all.
"""

import json
import sys
import warnings

warnings.simplefilter("ignore")

import glance.common.config  # noqa: E402,F401  (registers Glance's options)
from glance import image_cache  # noqa: E402
from oslo_config import cfg  # noqa: E402

cfg.CONF([], project="glance", default_config_files=[])
cfg.CONF.set_override("image_cache_driver", "xattr")
if sys.argv[1] != "-":
    cfg.CONF.set_override("image_cache_dir", sys.argv[1])
try:
    # ImageCache() is what the cache middleware and the cache API build: it
    # imports the driver, configures it, and falls back to sqlite when the
    # driver cannot be imported or refuses its configuration.
    cache = image_cache.ImageCache()
except Exception as exc:
    print(
        json.dumps(
            {
                "driver": None,
                "error": f"{type(exc).__name__}: {exc}",
                "errno": getattr(exc, "errno", None),
            }
        )
    )
else:
    print(json.dumps({"driver": type(cache.driver).__module__.rsplit(".", 1)[-1]}))
