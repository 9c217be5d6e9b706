"""pytest fixtures for faking capabilities. Enable the plugin explicitly:

.. code-block:: python

   # conftest.py
   pytest_plugins = ["glance_features.testing.pytest_plugin"]

``glance_features_override(qemu_img="unavailable")`` in a test adds a fake and
returns the report ``probe()`` now gives; calls add up and are undone when the
test ends. ``glance_features_no_real_probe`` forbids real probes for the test
(use it with ``autouse`` in a conftest to cover a suite) and fails a test that
leaves a fake in force.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ParamSpec

import pytest

from glance_features.model import Report
from glance_features.testing import _layers, override

_P = ParamSpec("_P")


def _entering(make: Callable[_P, override], active: list[override]) -> Callable[_P, Report]:
    """``make``'s arguments, entered now and left with the test."""

    def install(*args: _P.args, **kwargs: _P.kwargs) -> Report:
        fake = make(*args, **kwargs)
        report = fake.__enter__()
        active.append(fake)
        return report

    return install


@pytest.fixture
def glance_features_override() -> Iterator[Callable[..., Report]]:
    active: list[override] = []
    yield _entering(override, active)
    while active:
        active.pop().__exit__(None, None, None)


@pytest.fixture
def glance_features_no_real_probe() -> Iterator[None]:
    guard = _layers.Layer(guard=True, where="the glance_features_no_real_probe fixture")
    _layers.enter_guard(guard)
    yield
    _layers.exit_guard(guard)
