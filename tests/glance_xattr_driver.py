"""Run Glance's own xattr cache driver configure() on a directory.

Executed by the interpreter of a virtualenv where Glance is installed (see
tests/run.sh), never imported by the test suite. Prints one JSON object.
"""

import json
import sys
import warnings

warnings.simplefilter("ignore")

import glance.common.config  # noqa: E402,F401  (registers image_cache_dir)
from glance.common import exception  # noqa: E402
from glance.image_cache.drivers import xattr as driver  # noqa: E402
from oslo_config import cfg  # noqa: E402

cfg.CONF([], project="glance", default_config_files=[])
cfg.CONF.set_override("image_cache_dir", sys.argv[1])
try:
    driver.Driver().configure()
    print(json.dumps({"configured": True}))
except exception.BadDriverConfiguration as exc:
    print(json.dumps({"configured": False, "refused": True, "error": str(exc)}))
except OSError as exc:
    # Glance does not catch these: the service would fail to start.
    print(json.dumps({"configured": False, "refused": False, "error": str(exc)}))
