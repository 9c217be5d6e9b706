"""``CapabilitiesFixture`` for testtools and oslotest test cases (needs ``fixtures``).

The one line a base test class adopts::

    self.capabilities = self.useFixture(CapabilitiesFixture(forbid_real_probe=True))

and then, in a test, ``self.capabilities.set(xattr="unavailable")``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

try:
    import fixtures
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "CapabilitiesFixture needs the 'fixtures' library: pip install fixtures"
    ) from exc

from glance_features.model import Report
from glance_features.settings import Settings
from glance_features.testing import _layer, _layers
from glance_features.testing._layers import INSTALLED, GlanceVersion, Layer
from glance_features.testing._values import StatusLike

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from glance_features.testing._values import Features


class CapabilitiesFixture(fixtures.Fixture):
    """Fake capabilities for one test: ``self.useFixture(CapabilitiesFixture(...))``.

    Takes the arguments of :func:`~glance_features.testing.make_report` or a
    ready :class:`~glance_features.Report`. With ``forbid_real_probe=True``
    (for a base test class) a ``probe()`` while nothing is faked raises
    :class:`~glance_features.testing.RealProbeForbidden` saying how to fake
    it, and a fake left in force by a test fails that test
    (:class:`~glance_features.testing.LeakedFake`) instead of reaching the next.
    Without it, and without statuses, every feature is faked available.
    """

    def __init__(
        self,
        statuses: Report | Mapping[str, StatusLike] | None = None,
        /,
        *,
        forbid_real_probe: bool = False,
        required: Iterable[str] = (),
        extra: Mapping[str, StatusLike] | None = None,
        glance_version: GlanceVersion = INSTALLED,
        **features: Unpack[Features],
    ) -> None:
        super().__init__()
        if not isinstance(forbid_real_probe, bool):
            raise TypeError("forbid_real_probe must be a bool")
        self.forbid_real_probe = forbid_real_probe
        fakes_something = bool(statuses is not None or features or required or extra)
        # A guard alone fakes nothing; its glance_version applies to set() calls.
        self._glance_version = glance_version
        self._first: Layer | None = None
        if fakes_something or not forbid_real_probe:
            self._first = _layer(
                statuses, features, required=required, extra=extra, glance_version=glance_version
            )
        self._ready = False

    def _setUp(self) -> None:
        if self.forbid_real_probe:
            guard = Layer(guard=True, where=_layers.caller())
            # The guard's clean-up runs last: it sees what the test left behind.
            self.addCleanup(_layers.exit_guard, guard)
            _layers.enter_guard(guard)
        if self._first is not None:
            self._push(self._first)
        self._ready = True
        self.addCleanup(setattr, self, "_ready", False)

    def set(
        self,
        statuses: Report | Mapping[str, StatusLike] | None = None,
        /,
        *,
        required: Iterable[str] = (),
        extra: Mapping[str, StatusLike] | None = None,
        glance_version: GlanceVersion = INSTALLED,
        **features: Unpack[Features],
    ) -> Report:
        """Add to what is faked, until the fixture is cleaned up; later calls
        win for the features they name, as ``self.config()`` calls do.
        ``glance_version`` defaults to the fixture's."""
        if not self._ready:
            raise RuntimeError("set() needs the fixture set up: use self.useFixture() first")
        if glance_version is INSTALLED:
            glance_version = self._glance_version
        made = _layer(
            statuses, features, required=required, extra=extra, glance_version=glance_version
        )
        self._push(made)
        return self.report

    @property
    def report(self) -> Report:
        """What ``glance_features.probe()`` answers now with default settings
        (raises :class:`RealProbeForbidden` when that would be a real probe)."""
        return _layers.answer(Settings(), None, record=False)

    def _push(self, made: Layer) -> None:
        entry = made.fresh(_layers.caller())
        _layers.push(entry)
        self.addCleanup(_layers.pop, entry)
