"""Checks for ``glance-status upgrade check`` (oslo.upgradecheck).

Added to Glance's own ``Checks`` class (``glance/cmd/status.py``) with one
line at the end of the class body, plus its import:

.. code-block:: python

   from glance_features import upgradecheck as features

   class Checks(upgradecheck.UpgradeCommands):
       _upgrade_checks = (...)  # Glance's own
       _upgrade_checks += features.checks()

``glance-features status`` runs Glance's checks and these together without
touching Glance. Each check probes (once: the report is cached) with the
settings in oslo.config's ``cfg.CONF`` at the time the check runs, and
returns an oslo.upgradecheck ``Result`` whose code follows the report's. A
feature the configuration does not use never fails a check: when it does not
work here either, its details read as a note.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from glance_features import registry, runner
from glance_features.model import FeatureResult, Status, texts_of
from glance_features.service import settings_from
from glance_features.settings import Settings

if TYPE_CHECKING:
    from oslo_config.cfg import ConfigOpts
    from oslo_upgradecheck.upgradecheck import Result, UpgradeCommands

    Check = Callable[[UpgradeCommands], Result]

CHECK_PREFIX = "glance-features: "


def checks(
    conf: ConfigOpts | Settings | None = None,
    *,
    features: Iterable[str] | None = None,
    deep: bool = False,
    timeout: float = runner.DEFAULT_TIMEOUT,
    user: str | None = None,
) -> tuple[tuple[str, Check], ...]:
    """``(name, check)`` pairs in the form ``UpgradeCommands._upgrade_checks`` takes.

    ``conf`` is an oslo.config ``ConfigOpts`` or :class:`~glance_features.Settings`;
    by default ``oslo_config.cfg.CONF``, read when the check runs. ``user``
    checks files and binaries with that account's eyes (see ``runner.probe``).
    """
    names = list(features) if features is not None else [p.name for p in registry.plugins()]

    def make(name: str) -> Check:
        def check(_upgrade_commands: UpgradeCommands) -> Result:
            from oslo_upgradecheck.upgradecheck import Code, Result

            source: ConfigOpts | Settings | None = conf
            if source is None:
                from oslo_config import cfg

                source = cfg.CONF
            report = runner.probe(
                settings_from(source), features=names, deep=deep, timeout=timeout, user=user
            )
            result = report[name]
            return Result(Code(int(result.code)), describe(result))

        check.__name__ = f"check_{name.replace('-', '_')}"
        return check

    return tuple((CHECK_PREFIX + name, make(name)) for name in names)


def describe(result: FeatureResult) -> str:
    """The Details cell: the verdict for a feature in use; a note for one that is not."""
    if not result.required and result.status is not Status.AVAILABLE:
        # Code SUCCESS either way; "Success" over "unavailable" would read as a
        # contradiction, so say why it does not matter here.
        ignored = result.details.get("ignored_by_glance")
        why = f"not required ({ignored})" if ignored else "not used by this configuration"
        return f"Note: {why}; it would be {result.status.value} here: {result.reason}"
    details = f"{result.status.value}: {result.reason}"
    if result.status is not Status.AVAILABLE and result.remediation:
        details += f" To fix: {result.remediation[0]}"
    required_by = texts_of(result.details.get("required_by"))
    if required_by:
        details += f" (required by: {'; '.join(required_by)})"
    return details
