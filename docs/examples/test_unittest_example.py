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


if __name__ == "__main__":
    unittest.main()
