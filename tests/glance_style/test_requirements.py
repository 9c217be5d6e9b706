"""Issue 16, point 1: a fake follows the configuration's requirement rules."""

from __future__ import annotations

from typing import Any

import fixtures
from testtools import matchers

import glance_features
from glance_features import Code, Status, testing
from glance_style import _ddt, base, startup

# (option keywords for self.config, the group, the feature they require)
REQUIRING = [
    ({"image_cache_driver": "xattr", "image_cache_dir": "/var/lib/glance/cache"}, None, "xattr"),
    ({"image_import_plugins": ["image_conversion"]}, "image_import_opts", "qemu-img"),
    ({"conversion_format": "raw"}, "taskflow_executor", "qemu-img"),
]


@_ddt.ddt
class StartupRequirementsTest(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.log = self.useFixture(fixtures.FakeLogger(name=startup.__name__))

    def _configure(self, options: dict[str, Any], group: str | None) -> None:
        if group is None:
            self.config(**options)
        else:
            self.config(group=group, **options)

    @_ddt.data(*REQUIRING)
    @_ddt.unpack
    def test_refuses_to_start_when_the_configuration_needs_a_missing_feature(
        self, options: dict[str, Any], group: str | None, feature: str
    ) -> None:
        self._configure(options, group)
        self.capabilities.set({feature: "unavailable"})
        error = self.assertRaises(glance_features.FeatureUnavailable, startup.start)
        self.assertEqual(feature, error.name)
        self.assertThat(
            self.log.output,
            matchers.Contains(f"glance-features: {feature} is unavailable (required)"),
        )

    @_ddt.data(*REQUIRING)
    @_ddt.unpack
    def test_starts_when_nothing_needs_the_missing_feature(
        self, options: dict[str, Any], group: str | None, feature: str
    ) -> None:
        self.capabilities.set({feature: "unavailable"})
        report = startup.start()
        self.assertThat(report[feature], matchers.MatchesStructure.byEquality(required=False))
        self.assertEqual(Code.SUCCESS, report.code)
        self.assertThat(self.log.output, matchers.Not(matchers.Contains("(required)")))

    @_ddt.data(*REQUIRING)
    @_ddt.unpack
    def test_a_degraded_required_feature_is_a_warning(
        self, options: dict[str, Any], group: str | None, feature: str
    ) -> None:
        self._configure(options, group)
        self.capabilities.set({feature: Status.DEGRADED})
        report = startup.start()
        self.assertEqual(Code.WARNING, report.code)
        self.assertThat(report[feature].details, matchers.Contains("required_by"))

    def test_a_setting_glance_no_longer_reads_requires_nothing(self) -> None:
        self.config(pydev_worker_debug_host="127.0.0.1")
        self.capabilities.set(pydev=False, glance_version="33.0.0")
        report = startup.start()
        self.assertFalse(report["pydev"].required)
        self.capabilities.set(glance_version="32.0.0")
        self.assertRaises(glance_features.FeatureUnavailable, startup.start)


class PinnedGlanceTest(base.BaseTestCase):
    """A base class can pin the Glance release its fakes follow."""

    def setUp(self) -> None:
        super().setUp()
        self.capabilities = self.useFixture(
            testing.CapabilitiesFixture(forbid_real_probe=True, glance_version="32.0.0")
        )

    def test_the_guard_alone_fakes_nothing(self) -> None:
        self.assertFalse(testing.active())

    def test_set_follows_the_pinned_release(self) -> None:
        self.config(pydev_worker_debug_host="127.0.0.1")
        report = self.capabilities.set(pydev=False)
        self.assertEqual({"version": "32.0.0"}, report.glance)
        self.assertRaises(glance_features.FeatureUnavailable, startup.start)
