"""Issue 16, point 8: fakes carry the details their detectors write."""

from __future__ import annotations

from testtools import matchers

import glance_features
from glance_features import testing
from glance_style import _ddt, base, startup


@_ddt.ddt
class RealisticDetailsTest(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.capabilities.set()  # every feature available, as faked

    def test_code_reading_formats_works_under_the_default_fake(self) -> None:
        self.assertThat(startup.conversion_formats(), matchers.Contains("qcow2"))

    def test_the_fake_follows_the_configured_cache_dir(self) -> None:
        self.config(image_cache_dir="/srv/glance/cache")
        settings = glance_features.Settings.from_oslo_config(startup.CONF)
        details = glance_features.probe(settings)["xattr"].details
        self.assertThat(
            dict(details),
            matchers.ContainsDict(
                {
                    "image_cache_dir": matchers.Equals("/srv/glance/cache"),
                    "probed_dir": matchers.Equals("/srv/glance/cache"),
                    "fs_type": matchers.Equals("ext4"),
                    "binding": matchers.StartsWith("xattr "),
                }
            ),
        )

    @_ddt.data(*testing.BUILTIN_FEATURES)
    def test_every_status_has_a_reason_and_a_fix(self, feature: str) -> None:
        for status in ("degraded", "unavailable"):
            result = self.capabilities.set({feature: status})[feature]
            self.assertThat(result.reason, matchers.Contains("faked by glance_features"))
            self.assertThat(result.remediation, matchers.Not(matchers.HasLength(0)))
            self.assertThat(dict(result.details), matchers.Not(matchers.HasLength(0)))
