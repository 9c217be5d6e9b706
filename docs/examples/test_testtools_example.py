import testtools

from glance_features.testing import CapabilitiesFixture
from service import conversion_plan


class ConversionPlanTest(testtools.TestCase):
    def test_without_qemu_img(self):
        fake = self.useFixture(CapabilitiesFixture(qemu_img="unavailable"))
        self.assertEqual(conversion_plan("qcow2"), "store as uploaded")
        self.assertFalse(fake.report["qemu-img"].available)

    def test_degraded_still_converts(self):
        self.useFixture(CapabilitiesFixture({"qemu-img": "degraded"}))
        self.assertEqual(conversion_plan("vmdk"), "convert vmdk to raw")
