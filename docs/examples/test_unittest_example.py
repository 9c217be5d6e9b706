import unittest

from glance_features import testing
from service import conversion_plan


class ConversionPlanTest(unittest.TestCase):
    @testing.override(qemu_img="unavailable")
    def test_without_qemu_img(self):
        self.assertEqual(conversion_plan("qcow2"), "store as uploaded")

    def test_with_qemu_img(self):
        with testing.override(qemu_img="available"):
            self.assertEqual(conversion_plan("qcow2"), "convert qcow2 to raw")


# On a class, override wraps every test method, as mock.patch does.
@testing.override(qemu_img="degraded")
class DegradedQemuImgTest(unittest.TestCase):
    def test_degraded_still_converts(self):
        self.assertEqual(conversion_plan("vmdk"), "convert vmdk to raw")


if __name__ == "__main__":
    unittest.main()
