"""Glance's own image cache, configured with the xattr driver, on a directory.

Executed by the interpreter of a virtualenv where Glance is installed
(GLANCE_VENV), as the user Glance runs as; never imported by the test suite.
``argv[1]`` is image_cache_dir, or ``-`` to leave it unset. Prints one JSON
object: ``driver`` is the cache driver Glance ended up with (``xattr`` when
the feature works, ``sqlite`` when Glance fell back), or ``error`` holds the
exception that stopped Glance's cache from loading at all. With ``argv[2]``
``write``, the cache then takes one image as Glance's download path and
cache API worker do (``cache_image_iter``, which logs and swallows a failed
write), and ``cached`` says whether the image is in the cache afterwards;
``check_file_left`` whether configure() left its ``checkme`` behind (it
removes it only when setting the xattr worked).
"""

import json
import os
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
    found: dict[str, object] = {"driver": type(cache.driver).__module__.rsplit(".", 1)[-1]}
    found["check_file_left"] = os.path.exists(os.path.join(cache.driver.base_dir, "checkme"))
    if sys.argv[2:] == ["write"]:
        image_id = "c0ffee00-0000-4000-8000-000000000001"
        cache.cache_image_iter(image_id, iter([b"x" * 4096]))
        found["cached"] = bool(cache.is_cached(image_id))
    print(json.dumps(found))
