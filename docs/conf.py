project = "glance-features"
author = "glance-features developers"
copyright = "2026, glance-features developers"

from glance_features import __version__ as release  # noqa: E402

version = release
extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
autodoc_typehints = "none"
exclude_patterns = ["_build"]
html_theme = "alabaster"
