"""Test doubles: fake any capability in one line, in any test framework.

>>> import glance_features
>>> from glance_features import testing
>>> with testing.override(qemu_img="unavailable"):
...     glance_features.probe().available("qemu-img")
False

A fake is a complete :class:`~glance_features.Report` in which every known
feature is available unless named otherwise, with the reason and details its
detector would give. Fakes add up (an inner override or ``fixture.set()``
changes only what it names), go through the same requirement rules as a real
probe (``image_cache_driver = xattr`` makes a faked ``xattr`` required), and
reject names no detector provides. ``CapabilitiesFixture`` (testtools and
oslotest; needs ``fixtures``) can forbid real probes for a whole test class;
``glance_features.testing.pytest_plugin`` offers the same to pytest.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from glance_features.model import Report
from glance_features.registry import BUILTIN
from glance_features.settings import Settings
from glance_features.testing import _layers, _values
from glance_features.testing._layers import (
    FAKE_HOST,
    INSTALLED,
    GlanceVersion,
    Installed,
    Layer,
    LeakedFake,
    RealProbeForbidden,
)
from glance_features.testing._values import (
    Fake,
    Features,
    StatusLike,
    StatusName,
    UnknownFakeFeature,
    result,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    # Typed for mypy and IDEs; imported on first use at run time, so that
    # `fixtures` is needed only by those who use the fixture.
    from glance_features.testing.fixture import CapabilitiesFixture as CapabilitiesFixture

# Errors and values show under the name tests import them by.
for _public in (Fake, LeakedFake, RealProbeForbidden, UnknownFakeFeature):
    _public.__module__ = __name__
del _public

# Every built-in detector, in report order; each can be faked.
BUILTIN_FEATURES = tuple(BUILTIN)
_T = TypeVar("_T")
_P = ParamSpec("_P")
_R = TypeVar("_R")

__all__ = [
    "BUILTIN_FEATURES",
    "FAKE_HOST",
    "INSTALLED",
    "CapabilitiesFixture",
    "Fake",
    "Features",
    "Installed",
    "LeakedFake",
    "RealProbeForbidden",
    "StatusLike",
    "StatusName",
    "UnknownFakeFeature",
    "active",
    "make_report",
    "override",
    "result",
]


def _layer(
    statuses: Report | Mapping[str, StatusLike] | None,
    keywords: Mapping[str, object],
    *,
    required: Iterable[str] = (),
    extra: Mapping[str, StatusLike] | None = None,
    glance_version: GlanceVersion = INSTALLED,
) -> Layer:
    """One layer of fakes, every name and value checked now."""
    if glance_version is not INSTALLED and not (
        glance_version is None or isinstance(glance_version, str)
    ):
        raise TypeError(f"glance_version must be a version string or None, not {glance_version!r}")
    base = None
    if isinstance(statuses, Report):
        if keywords:
            raise TypeError("pass either a Report or statuses, not both")
        base, statuses = statuses, None
    known = [*_layers.known_names(), *(base or {})]
    fakes = _values.statuses_of(statuses, keywords, extra, known)
    required_names = _values.names_list(required, "required")
    for name in required_names:
        _values.check_name(name, [*known, *(extra or {})], "required")
    return Layer(
        fakes=fakes,
        base=base,
        required=required_names,
        extra=frozenset(extra or {}),
        glance_version=glance_version,
    )


def make_report(
    statuses: Mapping[str, StatusLike] | None = None,
    /,
    *,
    required: Iterable[str] = (),
    extra: Mapping[str, StatusLike] | None = None,
    glance_version: GlanceVersion = INSTALLED,
    settings: Settings | None = None,
    **features: Unpack[Features],
) -> Report:
    """A full fake report, as ``probe(settings)`` would return under
    ``override(...)`` with the same arguments (on top of the fakes in force).

    Name features in a mapping (``{"qemu-img": "unavailable"}``) or as
    keywords with ``_`` for ``-`` (``qemu_img=False``). A value is a
    :class:`~glance_features.Status`, its string, a bool (available or not),
    :func:`result` or a complete :class:`~glance_features.FeatureResult`.
    ``required`` lists features the caller requires; ``extra`` declares and
    fakes third-party features that are not installed; ``glance_version``
    is the Glance whose rules apply (default: the installed one).
    """
    made = _layer(statuses, features, required=required, extra=extra, glance_version=glance_version)
    return _layers.compose([*_layers.layers(), made], settings or Settings())


class override(contextlib.ContextDecorator):
    """Make ``glance_features.probe()`` answer with fakes, in every thread.

    ``with override(xattr="unavailable"):``, ``@override(...)`` on a function
    or on a test class (each ``test*`` method is wrapped, as ``mock.patch``
    does). Takes the arguments of :func:`make_report`, or one ready
    :class:`~glance_features.Report`. Overrides add up: an inner one changes
    only the features it names. Leaving one restores what was in force
    before, also when the block raises.
    """

    def __init__(
        self,
        statuses: Report | Mapping[str, StatusLike] | None = None,
        /,
        *,
        required: Iterable[str] = (),
        extra: Mapping[str, StatusLike] | None = None,
        glance_version: GlanceVersion = INSTALLED,
        **features: Unpack[Features],
    ) -> None:
        self._layer = _layer(
            statuses, features, required=required, extra=extra, glance_version=glance_version
        )
        self._entered: list[Layer] = []

    @property
    def report(self) -> Report:
        """What ``probe()`` answers with this override alone, default settings."""
        return _layers.compose([self._layer], Settings())

    def __enter__(self) -> Report:
        # A fresh layer per entry, so re-entering the same override (as a
        # decorator on a recursive function) unwinds the right one.
        entry = self._layer.fresh(_layers.caller())
        _layers.push(entry)
        self._entered.append(entry)
        return _layers.compose(_layers.layers(), Settings())

    def __exit__(self, *exc_info: object) -> None:
        _layers.pop(self._entered.pop())

    def __call__(self, func: _T) -> _T:
        if isinstance(func, type):
            return self._decorate_class(func)  # type: ignore[return-value]
        if not callable(func):
            raise TypeError(f"override() decorates a function or a class, not {func!r}")
        if inspect.iscoroutinefunction(func):
            return self._decorate_coroutine(func)  # type: ignore[return-value]
        wrapped: _T = super().__call__(func)
        return wrapped

    def _decorate_class(self, cls: type[_T]) -> type[_T]:
        # As mock.patch does: every test method, inherited ones included.
        prefix = "test"
        wrapped = 0
        for name in dir(cls):
            if not name.startswith(prefix):
                continue
            value = getattr(cls, name)
            if callable(value) and not isinstance(value, type):
                setattr(cls, name, self._copy()(value))
                wrapped += 1
        if not wrapped:
            raise TypeError(
                f"override() on class {cls.__name__} found no {prefix}* method to wrap; "
                "decorate the methods, or use CapabilitiesFixture in setUp"
            )
        return cls

    def _decorate_coroutine(
        self, func: Callable[_P, Awaitable[_R]]
    ) -> Callable[_P, Coroutine[object, object, _R]]:
        @functools.wraps(func)
        async def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with self._recreate_cm():
                return await func(*args, **kwargs)

        return run

    def _copy(self) -> override:
        twin = override.__new__(override)
        twin._layer = self._layer
        twin._entered = []
        return twin


def active() -> bool:
    """Whether a fake from this module answers ``glance_features.probe()`` now."""
    return _layers.active()


def __getattr__(name: str) -> type[CapabilitiesFixture]:
    if name == "CapabilitiesFixture":
        from glance_features.testing.fixture import CapabilitiesFixture

        return CapabilitiesFixture
    raise AttributeError(f"module 'glance_features.testing' has no attribute {name!r}")
