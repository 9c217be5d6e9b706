"""The contract every detector, built-in or third-party, follows."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from glance_features.model import FeatureResult, Status
from glance_features.settings import Settings

if TYPE_CHECKING:
    from glance_features.deployment import Deployment
    from glance_features.interpreters import Interpreters

# Seconds kept back from a detector's deadline, so that a subprocess killed at
# its timeout is reported with its own reason before the runner gives up.
RESERVE = 0.15


@dataclasses.dataclass(frozen=True)
class Distro:
    id: str = ""
    version: str = ""
    like: str = ""

    @property
    def ids(self) -> tuple[str, ...]:
        """This distribution's id, then those it is like, most specific first."""
        return (self.id, *self.like.split()) if self.id else tuple(self.like.split())


@dataclasses.dataclass(frozen=True)
class ProbeContext:
    """What a detector may read: settings, mode, deadline, host, Glance, user."""

    settings: Settings
    deep: bool
    deadline: float  # time.monotonic() by which the detector must have returned
    distro: Distro = Distro()
    glance_version: str | None = None  # the installed Glance, None when there is none
    # The account whose eyes file-system and binary checks use; None: this process's.
    user: str | None = None
    # The interpreter Glance runs in; None: this process's.
    python: str | None = None
    # How the service is run (server, account, PATH, environment); None: this process.
    deployment: Deployment | None = None
    # The command line's probe: a slow try may be remembered on disk until the
    # files it depends on change (glance_features._platform.memo).
    remember: bool = False
    # The children of service interpreters this probe's checks share; None:
    # a child per check.
    interpreters: Interpreters | None = None

    @property
    def served_by(self) -> str | None:
        return self.deployment.served_by if self.deployment else None

    @property
    def service_environ(self) -> Mapping[str, str]:
        """The environment the service runs with, as far as verdicts need it."""
        # Nothing shows the service's own (no unit, script or process): this
        # process's environment is the best account of it.
        if self.deployment is None or self.deployment.inside or not self.deployment.environ:
            return os.environ
        return self.deployment.environ

    @property
    def service_path(self) -> str:
        """The PATH the service looks binaries up on."""
        return self.service_environ.get("PATH") or os.environ.get("PATH", os.defpath)

    def remaining(self) -> float:
        """Seconds a detector may still wait."""
        return max(0.0, self.deadline - time.monotonic() - RESERVE)


class Detector(Protocol):
    """A feature probe. ``probe`` must not change the host.

    ``catalog`` (a :class:`~glance_features.catalog.Entry`) is optional for
    third-party detectors; the built-in ones all carry one.
    """

    name: str
    summary: str

    def probe(self, context: ProbeContext) -> FeatureResult: ...


def result(
    name: str,
    status: Status,
    reason: str,
    details: Mapping[str, Any] | None = None,
    remediation: Sequence[str] = (),
) -> FeatureResult:
    """Shorthand for detectors: a result with ``required`` left to the runner."""
    return FeatureResult(name, status, reason, dict(details or {}), tuple(remediation))
