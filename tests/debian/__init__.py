"""Debian 12's own Glance (``apt-get install glance-api``), as its init script runs it."""
