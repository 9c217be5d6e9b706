"""Which Glance is installed here, so verdicts follow what that Glance does."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def installed_version() -> str | None:
    """The version of the ``glance`` distribution this interpreter sees, or None."""
    from glance_features._platform import dists as _dists

    return _dists.version("glance")


def describe(version: str | None) -> dict[str, str] | None:
    return None if version is None else {"version": version}
