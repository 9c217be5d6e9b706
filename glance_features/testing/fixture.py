"""``CapabilitiesFixture`` for testtools and oslotest test cases (needs ``fixtures``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

try:
    import fixtures
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "CapabilitiesFixture needs the 'fixtures' library: pip install fixtures"
    ) from exc

from glance_features.model import Report
from glance_features.testing import StatusLike, override


class CapabilitiesFixture(fixtures.Fixture):
    """``self.useFixture(CapabilitiesFixture(qemu_img="unavailable"))``.

    Takes the arguments of :func:`~glance_features.testing.make_report` or a
    ready :class:`~glance_features.Report`; the fake report is ``.report``.
    """

    def __init__(
        self, report: Report | Mapping[str, StatusLike] | None = None, /, **by_keyword: Any
    ) -> None:
        super().__init__()
        self._override = override(report, **by_keyword)
        self.report: Report = self._override.report

    def _setUp(self) -> None:
        self.report = self._override.__enter__()
        self.addCleanup(self._override.__exit__, None, None, None)
