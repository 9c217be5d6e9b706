"""The one base of every error glance-features raises on its own account."""

from __future__ import annotations


class GlanceFeaturesError(Exception):
    """Raised by glance-features itself (never by a detector's failure, which
    becomes an ``unknown`` verdict). Each subclass is also the built-in
    exception its callers already catch (``ValueError``, ``OSError``, ...)."""


class ConfigError(GlanceFeaturesError, ValueError):
    """A config file is missing, unreadable or not oslo.config INI."""
