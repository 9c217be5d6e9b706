"""Tests written the way Glance writes them (oslotest, ``self.config``, ddt,
testtools matchers), for a Glance-style module that consults glance-features.
They run under ``stestr run --concurrency 4 --random`` and under pytest."""
