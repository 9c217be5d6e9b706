"""The built-in detectors, one module each."""
