"""Issue 16, points 5 and 6: mistakes in a fake raise where they are written."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from testtools import matchers

from glance_features import FeatureResult, Status, testing
from glance_style import _ddt, base


@_ddt.ddt
class StrictNamesTest(base.BaseTestCase):
    @_ddt.data(
        ({"qemu_im": False}, testing.UnknownFakeFeature, "did you mean 'qemu-img'"),
        ({"required": ["qemu_img"]}, testing.UnknownFakeFeature, "did you mean 'qemu-img'"),
        ({"required": "xattr-qemu-img"}, TypeError, "must be a list of feature names"),
        ({"xattr": 3.5}, ValueError, "xattr: 3.5 is not a status"),
        ({"xattr": "broken"}, ValueError, "'broken' is not a status"),
    )
    @_ddt.unpack
    def test_a_mistake_is_an_error(
        self, kwargs: dict[str, Any], error: type[Exception], message: str
    ) -> None:
        makers: list[Callable[..., object]] = [
            testing.override,
            testing.make_report,
            testing.CapabilitiesFixture,
            self.capabilities.set,
        ]
        for make in makers:
            call: Callable[[], object] = functools.partial(make, **kwargs)
            self.assertThat(
                call,
                matchers.Raises(matchers.MatchesException(error, f".*{message}.*")),
            )

    def test_a_third_party_feature_is_declared_with_extra(self) -> None:
        self.assertRaises(testing.UnknownFakeFeature, self.capabilities.set, {"acme": False})
        report = self.capabilities.set(extra={"acme": "degraded"}, required=["acme"])
        self.assertEqual(Status.DEGRADED, report["acme"].status)
        self.assertEqual(1, report.code)
        self.capabilities.set({"acme": True})  # declared by now

    def test_a_feature_result_converts_or_rejects_a_status_string(self) -> None:
        result = FeatureResult("xattr", "unavailable", "tmpfs")  # type: ignore[arg-type]
        self.assertIs(Status.UNAVAILABLE, result.status)
        self.assertFalse(result.available)
        self.assertRaises(ValueError, FeatureResult, "xattr", "missing", "tmpfs")

    def test_result_builds_a_fake_without_repeating_the_name(self) -> None:
        report = self.capabilities.set(
            qemu_img=testing.result("degraded", details={"version": "6.2.0"}),
        )
        self.assertThat(
            report["qemu-img"],
            matchers.MatchesStructure(
                name=matchers.Equals("qemu-img"),
                status=matchers.Equals(Status.DEGRADED),
                details=matchers.ContainsDict(
                    {"version": matchers.Equals("6.2.0"), "path": matchers.StartsWith("/")}
                ),
            ),
        )
