import testtools

import glance_features
from glance_features.testing import CapabilitiesFixture
from service import conversion_plan


class TestCase(testtools.TestCase):
    """A project's base class: no test probes the real host by accident."""

    def setUp(self):
        super().setUp()
        self.capabilities = self.useFixture(CapabilitiesFixture(forbid_real_probe=True))


class ConversionPlanTest(TestCase):
    def test_without_qemu_img(self):
        report = self.capabilities.set(qemu_img="unavailable")
        self.assertEqual(conversion_plan("qcow2"), "store as uploaded")
        self.assertFalse(report["qemu-img"].available)

    def test_degraded_still_converts(self):
        self.capabilities.set({"qemu-img": "degraded"})
        self.assertEqual(conversion_plan("vmdk"), "convert vmdk to raw")

    def test_the_configuration_makes_a_fake_required(self):
        # Faked features follow the same rules as real ones: this setting
        # requires xattr, so a missing one stops the service.
        self.capabilities.set(xattr="unavailable")
        settings = glance_features.Settings(
            image_cache_driver="xattr", image_cache_dir="/var/lib/glance/image-cache"
        )
        self.assertRaises(
            glance_features.FeatureUnavailable, glance_features.check_startup, settings
        )
