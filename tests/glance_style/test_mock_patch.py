"""Issue 16, point 9: what ``mock.patch('glance_features.probe')`` does not do."""

from __future__ import annotations

from unittest import mock

import testtools
from testtools import matchers

import glance_features
from glance_style import base, inner, startup


class MockPatchTest(testtools.TestCase):
    def test_patching_the_package_attribute_misses_check_startup(self) -> None:
        class Patches(base.BaseTestCase):
            @mock.patch("glance_features.probe")
            def test_start(self, probe: mock.MagicMock) -> None:
                startup.start()

        # check_startup calls the runner, not the package attribute: the patch
        # changes nothing, and the guard says how to fake instead.
        result = inner.run(Patches("test_start"))
        self.assertThat(
            inner.problems(result)["test_start"],
            matchers.Contains("RealProbeForbidden"),
        )

    def test_the_fixture_is_the_way(self) -> None:
        class Fakes(base.BaseTestCase):
            def test_start(self) -> None:
                self.capabilities.set(xattr=False)
                self.assertFalse(startup.start().available("xattr"))
                self.assertFalse(glance_features.probe().available("xattr"))

        result = inner.run(Fakes("test_start"))
        self.assertEqual((1, True), (result.testsRun, result.wasSuccessful()))
