"""The contract every detector, built-in or third-party, follows."""

from __future__ import annotations

import abc
import dataclasses
import inspect
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol

from glance_features.catalog import UNCATALOGUED, Entry
from glance_features.model import Distro as Distro
from glance_features.model import FeatureResult, Status, Verdict, freeze_mapping
from glance_features.settings import Settings

if TYPE_CHECKING:
    from glance_features.deployment import Deployment
    from glance_features.interpreters import Interpreters

# Seconds kept back from a detector's deadline, so that a subprocess killed at
# its timeout is reported with its own reason before the runner gives up.
RESERVE = 0.15


def _nobody_waits() -> None:
    pass


@dataclasses.dataclass(frozen=True)
class ProbeContext:
    """What a detector may read: settings, mode, deadline, host, Glance, user."""

    settings: Settings
    deep: bool
    deadline: float  # time.monotonic() by which the detector must have returned
    distro: Distro = dataclasses.field(default_factory=Distro)
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
    # For a built-in in registry.HEAD_START: called once the children it
    # waits for are started, so that the runner starts the other detectors.
    launched: Callable[[], None] = _nobody_waits

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


class DetectorBase(abc.ABC):
    """The detector contract as a base class, for built-ins and plugins alike.

    A subclass without a string ``name`` and ``summary`` fails where it is
    defined, one without :meth:`probe` cannot be made, and every subclass can
    be faked by :mod:`glance_features.testing` in its own words
    (:meth:`fake`). A plugin need not subclass it: the registry holds any
    object to the same contract when it loads it.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    catalog: ClassVar[Entry] = UNCATALOGUED

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if inspect.isabstract(cls):
            return
        for attr in ("name", "summary"):
            value = getattr(cls, attr, None)
            if not isinstance(value, str) or not value:
                raise TypeError(f"detector {cls.__qualname__} has no string {attr!r}")

    @abc.abstractmethod
    def probe(self, context: ProbeContext) -> FeatureResult:
        """The verdict on this host, by ``context.deadline``; never changes the host."""

    def fake(self, status: Status, settings: Settings) -> Verdict:
        """What this detector says in ``status`` on the host test doubles
        describe (:mod:`glance_features.fake_host`), for ``settings``. By
        default its summary and the fixes its catalog gives; a detector
        whose details code reads words its own states."""
        from glance_features import fake_host
        from glance_features.remediation import install_python_packages, install_system_packages

        # What the built-in detectors that run checks write for every state.
        details = {"checked_as": "glance", "python": fake_host.PYTHON}
        if status is Status.AVAILABLE:
            return Verdict(status, f"{self.summary}: works", details)
        entry = self.catalog
        fixes: list[str] = []
        if entry.python:
            fixes = install_python_packages(
                entry.python, entry.packages, fake_host.PYTHON, fake_host.DISTRO
            )
        elif entry.packages:
            fixes = install_system_packages(entry.packages, fake_host.DISTRO)
        else:
            fixes = [f"glance-features explain {self.name}  # what it needs, and how to get it"]
        return Verdict(status, f"{self.summary}: {status.value}", details, fixes)


def result(
    name: str,
    status: Status,
    reason: str,
    details: Mapping[str, object] | None = None,
    remediation: Sequence[str] = (),
) -> FeatureResult:
    """Shorthand for detectors: a result with ``required`` left to the runner;
    ``details`` are checked to be JSON data, as every result's are."""
    frozen = freeze_mapping(details or {}, f"{name}.details")
    return FeatureResult(name, status, reason, frozen, tuple(remediation))
