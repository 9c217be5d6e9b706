"""The built-in detectors, one module each; :mod:`glance_features.registry` lists them."""
