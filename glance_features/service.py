"""Start-up integration for Glance services: probe, log, refuse to start."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from glance_features import runner
from glance_features.model import Report, Status
from glance_features.settings import Settings

if TYPE_CHECKING:
    from oslo_config.cfg import ConfigOpts

LOG = logging.getLogger("glance_features")


def settings_from(conf: ConfigOpts | Settings | None) -> Settings:
    """``Settings`` as given, or read from an oslo.config ``ConfigOpts``."""
    if conf is None:
        return Settings()
    if isinstance(conf, Settings):
        return conf
    return Settings.from_oslo_config(conf)


def check_startup(
    conf: ConfigOpts | Settings | None = None,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    *,
    require: Iterable[str] = (),
    features: Iterable[str] | None = None,
    deep: bool = False,
    timeout: float = runner.DEFAULT_TIMEOUT,
    raise_on_failure: bool = True,
    verbose: bool = False,
) -> Report:
    """Probe with the service's settings; log one INFO summary line, and a
    WARNING or ERROR line per problem that matters to this configuration.

    ERROR for a required feature that is missing, WARNING for a degraded
    required one; features the configuration does not use say nothing unless
    ``verbose``. Raises :class:`~glance_features.FeatureUnavailable` for the
    first missing required feature unless ``raise_on_failure`` is false. The
    report is cached, so workers forked afterwards reuse it.
    """
    log = logger or LOG
    report = runner.probe(settings_from(conf), features=features, deep=deep, timeout=timeout)
    report = report.with_required(require)
    failed = []
    for name, result in report.items():
        line = f"glance-features: {name} is {result.status.value}"
        line += " (required)" if result.required else ""
        line += f": {result.reason}"
        if result.status is not Status.AVAILABLE and result.remediation:
            line += f"; to fix: {result.remediation[0]}"
        if result.required and not result.available:
            log.error(line)
            failed.append(name)
        elif result.required and result.status is Status.DEGRADED:
            log.warning(line)
        elif verbose:
            log.info(line)
    required = [n for n, r in report.items() if r.required]
    glance = report.glance["version"] if report.glance else "not installed"
    log.info(
        "glance-features: Glance %s; %d features probed; required: %s; %s",
        glance,
        len(report),
        ", ".join(required) or "none",
        f"missing: {', '.join(failed)}" if failed else "all required features work",
    )
    if failed and raise_on_failure:
        report.require(*failed)
    return report
