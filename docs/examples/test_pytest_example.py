import pytest

import glance_features
from service import conversion_plan

# Enable the plugin explicitly (in conftest.py for a whole suite).
pytest_plugins = ["glance_features.testing.pytest_plugin"]


@pytest.fixture(autouse=True)
def no_real_probe(glance_features_no_real_probe):
    """Every test in this module must fake what it uses."""


def test_without_qemu_img(glance_features_override):
    glance_features_override(qemu_img=False)
    assert conversion_plan("qcow2") == "store as uploaded"


def test_fakes_add_up(glance_features_override):
    glance_features_override(qemu_img="degraded")
    report = glance_features_override(xattr="unavailable")
    assert report["qemu-img"].available and not report["xattr"].available


def test_require_raises_for_a_faked_feature(glance_features_override):
    glance_features_override(xattr="unavailable", required=["xattr"])
    with pytest.raises(glance_features.FeatureUnavailable, match="xattr"):
        glance_features.probe().require("xattr")
