"""Start-up integration for Glance services: probe, log, refuse to start."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from glance_features import runner
from glance_features.model import Report, Status
from glance_features.settings import Settings

LOG = logging.getLogger("glance_features")


def settings_from(conf: Any) -> Settings:
    """``Settings`` as given, or read from an oslo.config ``ConfigOpts``."""
    if conf is None:
        return Settings()
    if isinstance(conf, Settings):
        return conf
    return Settings.from_oslo_config(conf)


def check_startup(
    conf: Any = None,
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    *,
    require: Iterable[str] = (),
    features: Iterable[str] | None = None,
    deep: bool = False,
    timeout: float = runner.DEFAULT_TIMEOUT,
    raise_on_failure: bool = True,
) -> Report:
    """Probe with the service's settings and log one line per feature.

    INFO for what works or is not needed, WARNING for a degraded feature,
    ERROR for a required feature that is missing. Raises
    :class:`~glance_features.FeatureUnavailable` for the first such feature
    unless ``raise_on_failure`` is false; returns the report otherwise.
    The report is cached, so the workers a service forks afterwards reuse it.
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
        elif result.status is Status.DEGRADED:
            log.warning(line)
        else:
            log.info(line)
    if failed and raise_on_failure:
        report.require(*failed)
    return report
