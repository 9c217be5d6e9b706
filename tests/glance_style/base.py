"""The base test class, as Glance's glance.tests.utils.BaseTestCase would adopt it."""

from __future__ import annotations

from oslo_config import fixture as config_fixture
from oslotest import base

from glance_features.testing import CapabilitiesFixture
from glance_style import startup


class BaseTestCase(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.conf_fixture = self.useFixture(config_fixture.Config(startup.CONF))
        self.config = self.conf_fixture.config
        # The one line: no test probes the host unless it fakes what it uses.
        self.capabilities = self.useFixture(CapabilitiesFixture(forbid_real_probe=True))
