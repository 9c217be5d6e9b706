"""Issue 16, point 2: ``override`` on a class works as ``mock.patch`` does."""

from __future__ import annotations

from unittest import mock

import testtools

import glance_features
from glance_features import testing
from glance_style import _ddt, base, inner, startup


@testing.override(xattr="unavailable")
class DecoratedClassTest(base.BaseTestCase):
    """Every test* method runs under the fake; setUp and helpers do not."""

    def test_runs_under_the_fake(self) -> None:
        self.assertEqual("centralized_db", startup.cache_driver())

    def test_adds_to_the_fixture(self) -> None:
        self.capabilities.set(qemu_img=False)
        report = glance_features.probe()
        self.assertFalse(report.available("xattr") or report.available("qemu-img"))


@testing.override(qemu_img="degraded")
@mock.patch.object(startup.LOG, "warning")
class StackedWithMockPatchTest(base.BaseTestCase):
    def test_both_decorators_apply(self, warning: mock.MagicMock) -> None:
        self.capabilities.set(xattr=False)
        self.assertEqual("centralized_db", startup.cache_driver())
        warning.assert_called_once()
        self.assertEqual("degraded", glance_features.probe()["qemu-img"].status)


@_ddt.ddt
@testing.override(pydev=False)
class DecoratedDdtTest(base.BaseTestCase):
    @_ddt.data("qemu-img", "xattr")
    def test_generated_tests_run_under_the_fake(self, feature: str) -> None:
        report = glance_features.probe()
        self.assertFalse(report.available("pydev"))
        self.assertTrue(report.available(feature))


class ClassDecorationTest(testtools.TestCase):
    def test_a_decorated_class_keeps_its_tests(self) -> None:
        self.assertIsInstance(DecoratedClassTest, type)
        result = inner.run(
            DecoratedClassTest("test_runs_under_the_fake"),
            DecoratedClassTest("test_adds_to_the_fixture"),
        )
        self.assertEqual((2, True), (result.testsRun, result.wasSuccessful()))
        self.assertFalse(testing.active())

    def test_a_class_without_tests_is_refused(self) -> None:
        class Helper:
            def check(self) -> None: ...

        self.assertRaises(TypeError, testing.override(xattr=False), Helper)
