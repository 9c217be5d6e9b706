"""The operator's command line: ``glance-features`` and ``python -m glance_features``."""

from glance_features.cli.main import main

__all__ = ["main"]
