"""The fakes in force, as a stack of layers that add up.

Each override, fixture and ``fixture.set()`` is one layer; ``probe()`` answers
with all of them merged, the newest winning per feature, as ``self.config()``
calls add up in an oslo.config fixture. A guard layer (``forbid_real_probe``)
fakes nothing: while it is the only thing in force, ``probe()`` raises instead
of probing the host. Every answer goes through the runner's own requirement
rules, so the configuration makes a faked feature required exactly as it
would a real one.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import sys
import threading
from collections.abc import Callable
from types import FrameType

from glance_features import fake_host, registry, runner
from glance_features.catalog import requirement_of
from glance_features.errors import GlanceFeaturesError
from glance_features.model import FeatureResult, Report, Status
from glance_features.registry import BUILTIN
from glance_features.settings import Settings
from glance_features.testing._values import Fake

FAKE_HOST = fake_host.HOST
GENERATED_AT = "2026-01-01T00:00:00Z"


class Installed(enum.Enum):
    """The installed Glance, whichever it is (the default for fakes)."""

    GLANCE = "installed"

    def __repr__(self) -> str:
        return "testing.INSTALLED"


INSTALLED = Installed.GLANCE
GlanceVersion = str | None | Installed


class RealProbeForbidden(GlanceFeaturesError, AssertionError):
    """``probe()`` was called with no fake in force where real probes are forbidden.

    An ``AssertionError`` so test runners report a failure; the guard also
    fails the test at clean-up if the code under test swallowed it.
    """


class LeakedFake(GlanceFeaturesError, AssertionError):
    """A fake outlived the test that made it; it has been removed."""


@dataclasses.dataclass(eq=False)
class Layer:
    fakes: dict[str, Fake | FeatureResult] = dataclasses.field(default_factory=dict)
    # A ready report replaces everything below it; layers above still add.
    base: Report | None = None
    required: tuple[str, ...] = ()
    extra: frozenset[str] = frozenset()
    glance_version: GlanceVersion = INSTALLED
    guard: bool = False
    where: str = "?"
    forbidden_calls: list[str] = dataclasses.field(default_factory=list)
    make: Callable[[Settings, tuple[str, ...] | None], Report] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        # One hook per layer: the runner removes hooks by identity.
        def make(settings: Settings, features: tuple[str, ...] | None) -> Report:
            return answer(settings, features)

        self.make = make

    def fresh(self, where: str) -> Layer:
        return dataclasses.replace(self, where=where, forbidden_calls=[])


_stack: list[Layer] = []
_lock = threading.Lock()


def _after_fork_in_child() -> None:
    # A fork taken while another thread held the lock must not leave the
    # child's tests unable to fake anything.
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def push(layer: Layer) -> None:
    with _lock:
        _stack.append(layer)
        runner.push_override(layer.make)


def pop(layer: Layer) -> bool:
    """Remove ``layer``; False when it was already gone."""
    with _lock:
        for i in range(len(_stack) - 1, -1, -1):
            if _stack[i] is layer:
                del _stack[i]
                runner.pop_override(layer.make)
                return True
    return False


def layers() -> list[Layer]:
    with _lock:
        return list(_stack)


def active() -> bool:
    return any(not layer.guard for layer in layers())


def declared_extra() -> frozenset[str]:
    found: set[str] = set()
    for layer in layers():
        found |= layer.extra
        if layer.base is not None:
            found |= set(layer.base)
    return frozenset(found)


def known_names() -> list[str]:
    """Every feature a fake may name: detectors, registered and installed
    plugins, and third-party names declared by the fakes in force."""
    try:
        plugins = [p.name for p in registry.plugins() if "@" not in p.name]
    except Exception:  # a broken plugin must not break every test
        plugins = []
    return list(dict.fromkeys([*BUILTIN, *plugins, *sorted(declared_extra())]))


def enter_guard(guard: Layer) -> None:
    """Install a guard. With no guard in force, fakes already in force leaked
    from an earlier test; under another guard they belong to this test."""
    current = layers()
    leaked = [] if any(layer.guard for layer in current) else current
    for layer in leaked:
        pop(layer)
    push(guard)
    if leaked:
        raise LeakedFake(
            "a fake was still in force when this test started, so an earlier test leaked "
            f"it (removed now): made at {', '.join(layer.where for layer in leaked)}. "
            "Use self.useFixture(CapabilitiesFixture(...)), `with override(...)` or "
            "@override, which undo themselves."
        )


def exit_guard(guard: Layer) -> None:
    """Remove the guard and anything pushed after it that is still in force."""
    current = layers()
    leaked = current[current.index(guard) + 1 :] if guard in current else []
    for layer in leaked:
        pop(layer)
    pop(guard)
    if leaked:
        raise LeakedFake(
            "this test left a fake in force (removed now), made at "
            f"{', '.join(layer.where for layer in leaked)}: use `with override(...)`, "
            "@override or self.useFixture(CapabilitiesFixture(...)), which undo themselves"
        )
    if guard.forbidden_calls:
        raise RealProbeForbidden(
            "this test ran glance_features.probe() with no fake in force "
            f"({'; '.join(guard.forbidden_calls)}); it fails even if the code under test "
            "caught the RealProbeForbidden that raised: " + HOW_TO_FAKE
        )


HOW_TO_FAKE = (
    "fake what the test needs: self.useFixture(CapabilitiesFixture(xattr='unavailable')) or "
    "fixture.set(qemu_img=False) in testtools/oslotest, `with glance_features.testing."
    "override(xattr='unavailable'):` or @override(...) elsewhere"
)


def answer(settings: Settings, features: tuple[str, ...] | None, record: bool = True) -> Report:
    """What ``probe(settings, features)`` returns with the fakes now in force."""
    current = layers()
    if not any(not layer.guard for layer in current):
        guards = [layer for layer in current if layer.guard]
        asked = "all features" if features is None else ", ".join(features)
        call = f"probe({asked})"
        if record and guards:
            # The innermost guard belongs to the test that made the call.
            guards[-1].forbidden_calls.append(call)
        raise RealProbeForbidden(
            f"glance_features.probe() would probe this host ({asked}), and real probes are "
            f"forbidden here (CapabilitiesFixture(forbid_real_probe=True) set up at "
            f"{guards[-1].where if guards else '?'}); " + HOW_TO_FAKE
        )
    return compose(current, settings, features)


def compose(
    stack: list[Layer], settings: Settings, features: tuple[str, ...] | None = None
) -> Report:
    fakes = [layer for layer in stack if not layer.guard]
    start = max((i for i, layer in enumerate(fakes) if layer.base is not None), default=None)
    version: GlanceVersion = INSTALLED
    chosen: dict[str, Fake | FeatureResult] = {}
    if start is None:
        extra = {name for layer in fakes for name in layer.extra}
        for name in dict.fromkeys([*known_names(), *sorted(extra)]):
            chosen[name] = Fake(Status.AVAILABLE)
    else:
        base = fakes[start].base
        assert base is not None
        chosen.update(base)
        if base.glance is not None:
            version = str(base.glance.get("version"))
        elif fakes[start].glance_version is INSTALLED:
            version = None
    required: set[str] = set()
    for layer in fakes[start or 0 :]:
        chosen.update(layer.fakes)
        required.update(layer.required)
        if layer.glance_version is not INSTALLED:
            version = layer.glance_version
    if isinstance(version, Installed):
        from glance_features import glance

        version = glance.installed_version()
    results = {
        name: _requirements_applied(
            value.build(name, settings) if isinstance(value, Fake) else value,
            name in required,
        )
        for name, value in chosen.items()
    }
    results = _apply_rules(results, settings, version)
    if features is not None:
        missing = [name for name in features if name not in results]
        if missing:
            raise runner.UnknownFeature(
                f"unknown feature {missing[0]!r} (known: {', '.join(results)})"
            )
        results = {name: results[name] for name in features}
    from glance_features import glance

    return Report.build(
        results,
        host=FAKE_HOST,
        config_files=settings.config_files,
        glance=glance.describe(version),
        generated_at=GENERATED_AT,
    )


def faked_server(version: str | None) -> str | None:
    """How the faked Glance is served: a fake stands for a service process,
    where the way is always known. Releases before 33 as their own
    ``glance-api`` console script runs them (the eventlet server), 33 and
    later under a WSGI server, the only way they run."""
    if version is None:
        return None
    from packaging.version import InvalidVersion, Version

    try:
        return "eventlet" if Version(version).release < (33,) else "uwsgi"
    except InvalidVersion:
        return None


def _requirements_applied(result: FeatureResult, asked: bool) -> FeatureResult:
    return result.replace(required=True) if asked and not result.required else result


def _apply_rules(
    results: dict[str, FeatureResult], settings: Settings, version: str | None
) -> dict[str, FeatureResult]:
    """The runner's rule, as for a real probe: the settings make a feature
    required unless this Glance does not use it."""
    catalog = registry.catalog()
    served_by = faked_server(version)
    applied = {}
    for name, result in results.items():
        entry = catalog.get(name)
        if entry is None:
            applied[name] = result
            continue
        requirement = requirement_of(entry, settings, version, served_by)
        if requirement.used_by_glance is None:
            # A fake that says whether Glance uses it keeps its word.
            requirement = dataclasses.replace(requirement, used_by_glance=result.used_by_glance)
        applied[name] = requirement.apply(result)
    return applied


_SKIP = ("glance_features/testing/", "contextlib", "fixtures/", "testtools/", "unittest/")


def caller() -> str:
    """Where the test made a fake: the first frame outside this machinery."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename.replace("\\", "/")
        if not any(part in filename for part in _SKIP):
            return f"{filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return "?"
