"""ddt, typed for mypy --strict (ddt ships no annotations)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import ddt as _ddt  # type: ignore[import-untyped]

_T = TypeVar("_T")


def ddt(cls: type[_T]) -> type[_T]:
    decorated: type[_T] = _ddt.ddt(cls)
    return decorated


def data(*values: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
    decorate: Callable[[Callable[..., None]], Callable[..., None]] = _ddt.data(*values)
    return decorate


def unpack(func: Callable[..., None]) -> Callable[..., None]:
    unpacked: Callable[..., None] = _ddt.unpack(func)
    return unpacked
