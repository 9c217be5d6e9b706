"""Version comparison that imports packaging only when it has to.

Every version the built-in detectors compare (qemu-img's, eventlet's and
dnspython's releases) is almost always plain ``N.N.N``; comparing those as
integer tuples gives packaging's answer without its import cost (packaging
also imports typing). Anything else — pre-releases, local versions — goes to
``packaging.version``.
"""

from __future__ import annotations

import re

_PLAIN = re.compile(r"^\d+(\.\d+)*$")


class InvalidVersion(ValueError):
    pass


def _plain(version: str) -> tuple[int, ...] | None:
    return tuple(int(part) for part in version.split(".")) if _PLAIN.match(version) else None


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as PEP 440 orders ``a`` and ``b``; InvalidVersion otherwise."""
    left, right = _plain(a), _plain(b)
    if left is not None and right is not None:
        width = max(len(left), len(right))
        left += (0,) * (width - len(left))
        right += (0,) * (width - len(right))
        return (left > right) - (left < right)
    from packaging.version import InvalidVersion as PackagingInvalid
    from packaging.version import Version

    try:
        va, vb = Version(a), Version(b)
    except PackagingInvalid as exc:
        raise InvalidVersion(str(exc)) from None
    return (va > vb) - (va < vb)
