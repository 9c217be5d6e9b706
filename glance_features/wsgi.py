"""WSGI entry point: Glance's API, refused when a feature its configuration
requires does not work on this host.

Serve ``glance_features.wsgi:application`` instead of
``glance.wsgi.api:application`` (Glance 30 and later)::

    uwsgi --module glance_features.wsgi:application --need-app ...
    gunicorn --preload glance_features.wsgi:application

The application is loaded exactly as ``glance.wsgi.api`` loads it
(``glance.common.wsgi_app.init_app()``, which reads ``OS_GLANCE_CONFIG_DIR``);
then :func:`~glance_features.service.check_startup` probes with Glance's own
``CONF`` as Glance has read it. A required feature that does not work ends the
load with one CRITICAL line naming the feature and the fix, and
:class:`StartupRefused`, which makes uWSGI ``--need-app`` and gunicorn exit
non-zero. Where the server loads the application before forking workers
(uWSGI without ``--lazy-apps``, gunicorn ``--preload``) the probe runs once in
the master and the workers inherit its report.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from glance_features.model import FeatureUnavailable, Report

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication
    from oslo_config.cfg import ConfigOpts

    from glance_features.settings import Settings

LOG = logging.getLogger("glance_features")

# The status that makes each server stop instead of respawning a worker that
# refused: uWSGI's UWSGI_FAILED_APP_CODE (a --need-app master then destroys
# the instance), gunicorn's Arbiter.APP_LOAD_ERROR ("App failed to load").
EXIT_UWSGI = 22
EXIT_GUNICORN = 4
EXIT_OTHER = 1


def exit_status() -> int:
    """The exit status that stops the WSGI server this process runs under."""
    if "uwsgi" in sys.modules:  # uWSGI's embedded module, present only inside uWSGI
        return EXIT_UWSGI
    if "gunicorn.arbiter" in sys.modules:
        return EXIT_GUNICORN
    return EXIT_OTHER


class StartupRefused(SystemExit):
    """Glance may not start here. A ``SystemExit`` with :func:`exit_status`, so the
    server stops, and no traceback repeats the CRITICAL line."""

    def __init__(self, cause: FeatureUnavailable) -> None:
        super().__init__(exit_status())
        self.cause = cause


def guard(conf: ConfigOpts | Settings, logger: logging.Logger | None = None) -> Report | None:
    """Probe with ``conf`` (Glance's ``CONF``); log; raise :class:`StartupRefused`
    when a required feature is unavailable. ``None`` when the check itself failed
    (logged as an ERROR): Glance then starts unchecked."""
    from glance_features.service import check_startup

    log = logger or LOG
    refused: FeatureUnavailable | None = None
    try:
        return check_startup(conf, log)
    except FeatureUnavailable as exc:
        refused = exc
    except Exception as exc:
        # A failure of the check itself (not a missing feature) must never be
        # why Glance is down when Glance itself would work: say so and go on.
        failure = f"{type(exc).__name__}: {exc}"
    if refused is None:
        log.error("glance-features: start-up check failed, starting unchecked: %s", failure)
        return None
    # Logged outside the except block: oslo.log appends the exception in force
    # to WARNING and above, which would say everything twice on one line.
    result = refused.result
    line = f"glance-features: refusing to start Glance: {refused.name} is "
    if result is None:
        line += "required but no detector provides it"
    else:
        line += f"{result.status.value}: {result.reason}"
        if result.remediation:
            line += f"; to fix: {result.remediation[0]}"
    log.critical("%s", line)
    raise StartupRefused(refused)


def load_application() -> WSGIApplication:
    """Glance's application as ``glance.wsgi.api`` builds it, then the guard."""
    from glance.common import wsgi_app
    from oslo_config import cfg

    app: WSGIApplication = wsgi_app.init_app()  # Glance is untyped: typed here
    guard(cfg.CONF)
    return app


# Python's import lock already makes concurrent imports load it once.
application: WSGIApplication = load_application()
