"""Checks for ``glance-status upgrade check`` (oslo.upgradecheck).

.. code-block:: python

   from glance_features import upgradecheck

   class Checks(upgradecheck_base.UpgradeCommands):
       _upgrade_checks = (
           ...,  # Glance's own
       ) + upgradecheck.checks()

Each check probes (once: the report is cached) with the settings in
oslo.config's ``cfg.CONF`` at the time the check runs, and returns an
oslo.upgradecheck ``Result`` whose code follows the report's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from glance_features import registry, runner
from glance_features.service import settings_from

CHECK_PREFIX = "glance-features: "


def checks(
    conf: Any = None,
    *,
    features: Iterable[str] | None = None,
    deep: bool = False,
    timeout: float = runner.DEFAULT_TIMEOUT,
) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """``(name, check)`` pairs in the form ``UpgradeCommands._upgrade_checks`` takes.

    ``conf`` is an oslo.config ``ConfigOpts`` or :class:`~glance_features.Settings`;
    by default ``oslo_config.cfg.CONF``, read when the check runs.
    """
    names = list(features) if features is not None else [p.name for p in registry.plugins()]

    def make(name: str) -> Callable[[Any], Any]:
        def check(_upgrade_commands: Any) -> Any:
            from oslo_upgradecheck.upgradecheck import Code, Result

            source = conf
            if source is None:
                from oslo_config import cfg

                source = cfg.CONF
            report = runner.probe(settings_from(source), features=names, deep=deep, timeout=timeout)
            result = report[name]
            details = f"{result.status.value}: {result.reason}"
            if not result.available and result.remediation:
                details += f" To fix: {result.remediation[0]}"
            return Result(Code(int(result.code)), details)

        check.__name__ = f"check_{name.replace('-', '_')}"
        return check

    return tuple((CHECK_PREFIX + name, make(name)) for name in names)
