"""What a test may say about a feature, checked where the test says it.

A mistake in a fake (a misspelt name, a status that does not exist, a string
where a list of names belongs) raises here, at the line that made it, instead
of passing silently and testing nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Literal, TypedDict

from glance_features.errors import GlanceFeaturesError
from glance_features.model import Details, FeatureResult, ResultChanges, Status, freeze_mapping

if TYPE_CHECKING:
    from glance_features.settings import Settings

StatusName = Literal["available", "degraded", "unavailable", "unknown"]


@dataclasses.dataclass(frozen=True)
class Fake:
    """A faked result that takes its name from where it is used.

    Built by :func:`glance_features.testing.result`; fields left ``None`` are
    filled in as the feature's detector words them.
    """

    status: Status
    reason: str | None = None
    details: Details | None = None
    remediation: tuple[str, ...] | None = None

    def build(self, name: str, settings: Settings) -> FeatureResult:
        from glance_features.testing import _details

        made = _details.fake(name, self.status, settings)
        changes: ResultChanges = {}
        if self.reason is not None:
            changes["reason"] = self.reason
        if self.details is not None:
            changes["details"] = {**made.details, **self.details}
        if self.remediation is not None:
            changes["remediation"] = self.remediation
        return made.replace(**changes) if changes else made


StatusLike = Status | StatusName | bool | FeatureResult | Fake


class Features(TypedDict, total=False):
    """The built-in features as keywords (``_`` for ``-``), so a type checker
    catches ``qemu_im=`` and ``xattr=3.5``. Name third-party features in the
    mapping argument instead."""

    qemu_img: StatusLike
    sendfile: StatusLike
    pydev: StatusLike
    xattr: StatusLike
    dnspython_ipv6: StatusLike


def to_status(value: object, where: str) -> Status:
    if isinstance(value, Status):
        return value
    if isinstance(value, bool):
        return Status.AVAILABLE if value else Status.UNAVAILABLE
    if isinstance(value, str):
        try:
            return Status(value.lower())
        except ValueError:
            pass
    raise ValueError(
        f"{where}: {value!r} is not a status (use one of "
        f"{', '.join(s.value for s in Status)}, a bool, testing.result(...) or a FeatureResult)"
    )


def result(
    status: Status | StatusName | bool,
    *,
    reason: str | None = None,
    details: Mapping[str, object] | None = None,
    remediation: Iterable[str] | None = None,
) -> Fake:
    """A faked result without repeating the feature's name:
    ``override(qemu_img=result("degraded", details={"version": "6.2.0"}))``.

    ``details`` are added to the ones the feature's detector gives in that
    status; ``reason`` and ``remediation`` replace its wording.
    """
    where = "testing.result()"
    if reason is not None and not isinstance(reason, str):
        raise TypeError(f"{where}: reason must be a string, not {type(reason).__name__}")
    steps: tuple[str, ...] | None = None
    if remediation is not None:
        if isinstance(remediation, str) or not all(isinstance(s, str) for s in remediation):
            raise TypeError(f"{where}: remediation must be a list of strings")
        steps = tuple(remediation)
    frozen = None if details is None else freeze_mapping(details, f"{where} details")
    return Fake(to_status(status, where), reason, frozen, steps)


def as_fake(name: str, value: object) -> Fake | FeatureResult:
    """One faked value, checked; a FeatureResult is renamed to its feature."""
    if isinstance(value, Fake):
        return value
    if isinstance(value, FeatureResult):
        return value if value.name == name else value.replace(name=name)
    return Fake(to_status(value, name))


def check_name(name: str, known: Iterable[str], how: str) -> str:
    known = sorted(set(known))
    if name in known:
        return name
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownFakeFeature(
        f"{how}: no feature is named {name!r}{hint} (known: {', '.join(known)}; "
        "declare a third-party feature with extra={...})"
    )


def keyword_name(keyword: str, known: Iterable[str]) -> str:
    """``qemu_img`` -> ``qemu-img``; a name that has underscores itself stays."""
    known = set(known)
    dashed = keyword.replace("_", "-")
    if dashed in known:
        return dashed
    return check_name(keyword, known, f"keyword {keyword}=")


def names_list(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{where} must be a list of feature names, not {value!r}")
    names = tuple(value)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{where}: {name!r} is not a feature name")
    return names


class UnknownFakeFeature(GlanceFeaturesError, ValueError):
    """A fake names a feature no detector provides and no ``extra=`` declares."""


def statuses_of(
    statuses: Mapping[str, object] | None,
    keywords: Mapping[str, object],
    extra: Mapping[str, object] | None,
    known: Iterable[str],
) -> dict[str, Fake | FeatureResult]:
    """Every faked value by feature name, names checked against ``known``."""
    if statuses is not None and not isinstance(statuses, Mapping):
        raise TypeError(f"statuses must be a mapping of feature name to status, not {statuses!r}")
    if extra is not None and not isinstance(extra, Mapping):
        raise TypeError(f"extra must be a mapping of feature name to status, not {extra!r}")
    known = set(known) | set(extra or {})
    wanted: dict[str, Fake | FeatureResult] = {}
    for name, value in (extra or {}).items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"extra: {name!r} is not a feature name")
        wanted[name] = as_fake(name, value)
    for name, value in (statuses or {}).items():
        wanted[check_name(name, known, "statuses")] = as_fake(name, value)
    for keyword, value in keywords.items():
        name = keyword_name(keyword, known)
        wanted[name] = as_fake(name, value)
    return wanted
