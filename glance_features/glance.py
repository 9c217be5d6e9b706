"""Which Glance the service runs, so verdicts follow what that Glance does."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from glance_features.deployment import Deployment


@functools.lru_cache(maxsize=1)
def installed_version() -> str | None:
    """The version of the ``glance`` distribution this interpreter sees, or None."""
    from glance_features._platform import dists as _dists

    return _dists.version("glance")


@functools.lru_cache(maxsize=8)
def version_in(python: str | None, timeout: float = 5.0, user: str | None = None) -> str | None:
    """The Glance release ``python`` runs (None: this interpreter), or None.

    Another interpreter is asked in a child as ``user`` (``checks.interpreter``):
    its site-packages, .pth hooks and editable installs are its own."""
    from glance_features import checks, runas

    if python is None or runas.is_this_interpreter(python):
        return installed_version()
    try:
        found = runas.in_interpreter(python, checks.interpreter, (["glance"],), timeout, user)
    except runas.CheckFailed:
        return None
    glance = found["distributions"]["glance"]
    return glance["version"] if glance else None


def describe(version: str | None, deployment: Deployment | None = None) -> dict[str, object] | None:
    if version is None:
        return None
    if deployment is None:
        return {"version": version}
    return {
        "version": version,
        "served_by": deployment.served_by,
        "served_by_from": deployment.served_by_from,
        "python": deployment.python or _this_python(),
        "python_from": deployment.python_from,
        "workers": deployment.workers,
    }


def _this_python() -> str:
    from glance_features import runas

    return runas.this_interpreter()
