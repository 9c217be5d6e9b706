"""Which Glance the service runs, so verdicts follow what that Glance does."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from glance_features.deployment import Deployment
    from glance_features.interpreters import Interpreters
    from glance_features.model import Details


@functools.lru_cache(maxsize=1)
def installed_version() -> str | None:
    """The version of the ``glance`` distribution this interpreter sees, or None."""
    from glance_features._platform import dists as _dists

    return _dists.version("glance")


@functools.lru_cache(maxsize=8)
def version_in(
    python: str | None,
    timeout: float = 5.0,
    user: str | None = None,
    children: Interpreters | None = None,
) -> str | None:
    """The Glance release ``python`` runs (None: this interpreter), or None.

    Another interpreter is asked in a child as ``user`` (``checks.interpreter``):
    its site-packages, .pth hooks and editable installs are its own. With
    ``children``, the child is theirs, and stays to answer the probe's checks."""
    return found_in(python, timeout, user, children)[0]


@functools.lru_cache(maxsize=8)
def found_in(
    python: str | None,
    timeout: float = 5.0,
    user: str | None = None,
    children: Interpreters | None = None,
) -> tuple[str | None, str | None]:
    """The Glance release ``python`` runs and where its metadata lives, or Nones."""
    from glance_features import checks, runas

    if python is None or runas.is_this_interpreter(python):
        return installed_version(), _this_location()
    try:
        if children is not None:
            found = children.call(python, user, checks.interpreter, (["glance"],), timeout)
        else:
            found = runas.in_interpreter(python, checks.interpreter, (["glance"],), timeout, user)
    except runas.CheckFailed:
        return None, None
    glance = found["distributions"]["glance"]
    return (glance["version"], glance["location"]) if glance else (None, None)


def _this_location() -> str | None:
    import importlib_metadata

    try:
        dist = importlib_metadata.distribution("glance")
    except (importlib_metadata.PackageNotFoundError, OSError, ValueError):
        return None
    path = getattr(dist, "_path", None)
    return str(path) if path else None


DPKG_QUERY = "/usr/bin/dpkg-query"
# Where dpkg installs Python modules; /usr/local and virtualenvs are pip's.
_DPKG_PREFIXES = ("/usr/lib/python3/", "/usr/lib/python3.")


@functools.lru_cache(maxsize=8)
def package_of(
    location: str | None, vendor: str = "", timeout: float = 2.0
) -> dict[str, str] | None:
    """The distribution package that installed Glance's metadata at
    ``location`` (dpkg's owner of that path and its version), or None: not a
    dpkg-installed Glance, or dpkg cannot say in ``timeout`` seconds.

    A distribution's package carries its own patches and dependencies, so the
    report names it beside the upstream release."""
    import subprocess

    if (
        not location
        or not location.startswith(_DPKG_PREFIXES)
        or not os.access(DPKG_QUERY, os.X_OK)
    ):
        return None
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}

    def query(*args: str) -> str | None:
        try:
            done = subprocess.run(
                [DPKG_QUERY, *args], capture_output=True, text=True, timeout=timeout, env=env,
                stdin=subprocess.DEVNULL, check=False,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    # Debian names the package of distribution D "python3-d": its own file
    # list confirms it (10 ms), where --search reads every package's (80 ms
    # on Debian 12 with a thousand packages).
    name = "python3-" + os.path.basename(location).partition("-")[0].lower().replace("_", "-")
    listed = query("--listfiles", name)
    if listed is None or location not in listed.splitlines():
        owner = query("--search", location)
        name = owner.partition(":")[0].strip() if owner else ""
        if not name or "," in name or " " in name:
            return None  # a diversion, or several owners: nothing certain
    shown = query("--show", "--showformat=${Status}\t${Version}\n", name)
    status, _, version = (shown or "").partition("\n")[0].partition("\t")
    if not status.endswith(" installed") or not version:
        return None
    found = {"manager": "dpkg", "name": name, "version": version.strip()}
    if vendor:
        found["vendor"] = vendor
    return found


def package_label(glance: Details) -> str:
    """`` (Debian 2:30.0.0-3+deb13u5)`` for a report's ``glance`` with a package, else ``""``."""
    package = glance.get("package")
    if not isinstance(package, Mapping) or not isinstance(package.get("version"), str):
        return ""
    vendor = package.get("vendor") or package.get("name") or "package"
    return f" ({vendor} {package['version']})"


def describe(
    version: str | None,
    deployment: Deployment | None = None,
    package: dict[str, str] | None = None,
) -> dict[str, object] | None:
    if version is None:
        return None
    if deployment is None:
        return {"version": version, **({"package": package} if package else {})}
    return {
        "version": version,
        **({"package": package} if package else {}),
        "served_by": deployment.served_by,
        "served_by_from": deployment.served_by_from,
        "python": deployment.python or _this_python(),
        "python_from": deployment.python_from,
        "workers": deployment.workers,
    }


def _this_python() -> str:
    from glance_features import runas

    return runas.this_interpreter()
