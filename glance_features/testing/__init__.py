"""Test doubles: fake any capability in one line, in any test framework.

>>> import glance_features
>>> from glance_features import testing
>>> with testing.override(qemu_img="unavailable"):
...     glance_features.probe().available("qemu-img")
False

``make_report`` builds a complete, schema-valid :class:`~glance_features.Report`;
``override`` makes :func:`glance_features.probe` return it, from every thread,
until the block or decorated function ends. ``CapabilitiesFixture`` (for
testtools/oslotest, needs ``fixtures``) and the pytest plugin
``glance_features.testing.pytest_plugin`` wrap the same override.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from glance_features import registry, runner
from glance_features._version import __version__
from glance_features.model import FeatureResult, Report, Status

StatusLike = Status | str | bool | FeatureResult

BUILTIN_FEATURES = ("qemu-img", "sendfile", "pydev", "xattr", "dnspython-ipv6")
FAKE_HOST = {
    "hostname": "fake-host",
    "os": "linux",
    "kernel": "0.0.0-fake",
    "distro": {"id": "debian", "version": "12", "like": ""},
    "python": "3.11.0",
}

__all__ = ["BUILTIN_FEATURES", "CapabilitiesFixture", "make_report", "override"]


def make_report(
    statuses: Mapping[str, StatusLike] | None = None,
    /,
    *,
    required: tuple[str, ...] | list[str] = (),
    **by_keyword: StatusLike,
) -> Report:
    """A full report: every known feature available unless named otherwise.

    Name features in a mapping (``{"qemu-img": "unavailable"}``) or as
    keywords with ``_`` for ``-`` (``qemu_img=False``). A value is a
    :class:`~glance_features.Status`, its string, a bool (available or not)
    or a complete :class:`~glance_features.FeatureResult`.
    """
    wanted = {**(statuses or {}), **{k.replace("_", "-"): v for k, v in by_keyword.items()}}
    names = list(dict.fromkeys([*BUILTIN_FEATURES, *_registered_names(), *wanted]))
    features = {}
    for name in names:
        result = _result(name, wanted.get(name, Status.AVAILABLE))
        if name in required and not result.required:
            result = result.replace(required=True)
        features[name] = result
    return Report(
        features,
        host=FAKE_HOST,
        config_files=(),
        generated_at="2026-01-01T00:00:00Z",
        glance_features_version=__version__,
    )


class override(contextlib.ContextDecorator):
    """Make ``glance_features.probe()`` return a fake report, in every thread.

    Use as ``with override(...):`` or as a decorator. Arguments are those of
    :func:`make_report`, or one ready :class:`~glance_features.Report`.
    Overrides nest; leaving one restores the one outside it (or the real
    probe), also when the block raises.
    """

    def __init__(
        self, report: Report | Mapping[str, StatusLike] | None = None, /, **by_keyword: Any
    ) -> None:
        if isinstance(report, Report):
            if by_keyword:
                raise TypeError("pass either a Report or statuses, not both")
            self.report = report
        else:
            self.report = make_report(report, **by_keyword)
        self._installed: list[tuple[Report, Any]] = []

    def __enter__(self) -> Report:
        # A fresh identity per entry, so re-entering the same override (as a
        # decorator on a recursive function) unwinds the right entry.
        entry = Report(
            self.report,
            host=self.report.host,
            config_files=self.report.config_files,
            generated_at=self.report.generated_at,
            glance_features_version=self.report.glance_features_version,
        )
        answer = _answer(entry)
        runner.push_override(answer)
        self._installed.append((entry, answer))
        return entry

    def __exit__(self, *exc_info: object) -> None:
        _, answer = self._installed.pop()
        runner.pop_override(answer)


def _answer(report: Report) -> Any:
    def answer(settings: Any, features: tuple[str, ...] | None) -> Report:
        if features is None:
            return report
        missing = [n for n in features if n not in report]
        if missing:
            raise runner.UnknownFeature(
                f"unknown feature {missing[0]!r} (known: {', '.join(report)})"
            )
        return report.replace({n: report[n] for n in features})

    return answer


def _registered_names() -> list[str]:
    try:
        return [p.name for p in registry.plugins()]
    except Exception:  # a broken environment must not break the fakes
        return []


def _result(name: str, value: StatusLike) -> FeatureResult:
    if isinstance(value, FeatureResult):
        return value if value.name == name else value.replace(name=name)
    if isinstance(value, bool):
        status = Status.AVAILABLE if value else Status.UNAVAILABLE
    elif isinstance(value, Status):
        status = value
    else:
        try:
            status = Status(str(value).lower())
        except ValueError:
            raise ValueError(
                f"{name}: {value!r} is not a status (use one of "
                f"{', '.join(s.value for s in Status)}, a bool or a FeatureResult)"
            ) from None
    remediation: tuple[str, ...] = ()
    if status is not Status.AVAILABLE:
        remediation = (
            f"install or configure {name} (fake remediation from glance_features.testing)",
        )
    return FeatureResult(
        name=name,
        status=status,
        reason=f"{name} is {status.value} (faked by glance_features.testing)",
        details={"fake": True},
        remediation=remediation,
    )


def __getattr__(name: str) -> Any:
    if name == "CapabilitiesFixture":
        from glance_features.testing.fixture import CapabilitiesFixture

        return CapabilitiesFixture
    raise AttributeError(f"module 'glance_features.testing' has no attribute {name!r}")
