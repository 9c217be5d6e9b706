"""The code under test: a small module written as Glance code is, that asks
glance-features at start-up what it may enable."""

from __future__ import annotations

import logging

from oslo_config import cfg

import glance_features

LOG = logging.getLogger(__name__)

# Glance registers on cfg.CONF; a ConfigOpts of its own keeps this suite's
# options apart from anything else the test process registers.
CONF = cfg.ConfigOpts()
CONF.register_opts(
    [
        cfg.StrOpt("image_cache_dir"),
        cfg.StrOpt("image_cache_driver", default="centralized_db"),
        cfg.HostAddressOpt("pydev_worker_debug_host"),
        cfg.PortOpt("pydev_worker_debug_port", default=5678),
    ]
)
CONF.register_opts([cfg.ListOpt("image_import_plugins", default=[])], group="image_import_opts")
CONF.register_opts([cfg.StrOpt("conversion_format")], group="taskflow_executor")
CONF.register_opts([cfg.StrOpt("python_interpreter")], group="wsgi")


def start(conf: cfg.ConfigOpts = CONF) -> glance_features.Report:
    """Refuse to start when the configuration needs a feature this host lacks."""
    return glance_features.check_startup(conf, LOG)


def conversion_formats(conf: cfg.ConfigOpts = CONF) -> list[str]:
    """The disk formats the conversion plugin may offer: what qemu-img reads."""
    settings = glance_features.Settings.from_oslo_config(conf)
    result = glance_features.probe(settings, features=["qemu-img"])["qemu-img"]
    if not result.available:
        return []
    formats = result.details.get("formats")  # a JSON array: a tuple of strings
    return sorted(f for f in formats if isinstance(f, str)) if isinstance(formats, tuple) else []


def cache_driver(conf: cfg.ConfigOpts = CONF) -> str:
    """The cache driver to load: xattr where it works, else Glance's default."""
    settings = glance_features.Settings.from_oslo_config(conf)
    if glance_features.probe(settings).available("xattr"):
        return "xattr"
    LOG.warning("xattr does not work here; using the centralized_db cache driver")
    return "centralized_db"
