"""A pytest fixture for faking capabilities. Enable it explicitly:

.. code-block:: python

   # conftest.py
   pytest_plugins = ["glance_features.testing.pytest_plugin"]

then ``glance_features_override(qemu_img="unavailable")`` in a test returns
the fake report, undone when the test ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from glance_features.model import Report
from glance_features.testing import override


@pytest.fixture
def glance_features_override() -> Iterator[Callable[..., Report]]:
    active: list[override] = []

    def install(*args: Any, **kwargs: Any) -> Report:
        fake = override(*args, **kwargs)
        report = fake.__enter__()
        active.append(fake)
        return report

    yield install
    while active:
        active.pop().__exit__(None, None, None)
