"""The contract every detector, built-in or third-party, follows."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from glance_features._record import field, record
from glance_features.host import DistroInfo
from glance_features.model import FeatureResult, Status
from glance_features.settings import Settings

# typing costs Glance's start-up a noticeable share; the checker sees a
# Protocol, the interpreter a plain class that documents the contract.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol
else:
    Protocol = object


RESERVE = 0.15


@record
class ProbeContext:
    """What a detector may read: the settings, the mode, its deadline, the host."""

    settings: Settings
    deep: bool
    deadline: float  # time.monotonic() by which the detector must have returned
    distro: DistroInfo = field(default_factory=lambda: DistroInfo("", "", ""))

    def remaining(self) -> float:
        """Seconds a detector may still wait, keeping back a slice so that a
        subprocess killed at its timeout is reported with its own reason
        before the runner gives up on the detector as a whole."""
        return max(0.0, self.deadline - time.monotonic() - RESERVE)


class Detector(Protocol):
    """A feature probe. ``probe`` must not change the host."""

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
    return FeatureResult(
        name=name,
        status=status,
        reason=reason,
        details=dict(details or {}),
        remediation=tuple(remediation),
    )
