"""The capability report: statuses, one result per feature, the whole report.

Results and reports are values: frozen dataclasses whose ``details`` are
read-only all the way down, so a caller of a cached ``probe()`` cannot change
what the next caller sees.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeAlias, TypedDict, TypeVar, overload

from glance_features.errors import GlanceFeaturesError

if TYPE_CHECKING:
    from typing_extensions import Unpack

SCHEMA_VERSION = 1
# Bounds on what one result may carry, so one plugin cannot flood a report,
# a terminal or a metrics file.
MAX_TEXT = 4096
MAX_STEPS = 20
MAX_DETAILS_DEPTH = 16
MAX_DETAILS_ITEMS = 2000

# What a report carries: JSON's values, as :func:`freeze` stores them (tuples
# for arrays, read-only mappings for objects). Readers narrow with isinstance.
JSON: TypeAlias = bool | int | float | str | Sequence["JSON"] | Mapping[str, "JSON"] | None
Details: TypeAlias = Mapping[str, JSON]
_T = TypeVar("_T")
_U = TypeVar("_U")


class Status(str, enum.Enum):
    AVAILABLE = "available"
    DEGRADED = "degraded"
    UNAVAILABLE = "unavailable"
    UNKNOWN = "unknown"

    @property
    def available(self) -> bool:
        return self in (Status.AVAILABLE, Status.DEGRADED)

    def __str__(self) -> str:
        return self.value


class Code(enum.IntEnum):
    """oslo.upgradecheck's codes, so Glance's tooling reads them unchanged."""

    SUCCESS = 0
    WARNING = 1
    FAILURE = 2


def code_for(status: Status, required: bool) -> Code:
    # A feature nobody asked for never makes the host look broken.
    if not required or status is Status.AVAILABLE:
        return Code.SUCCESS
    if status is Status.DEGRADED:
        return Code.WARNING
    return Code.FAILURE


def freeze(value: object, where: str = "details", depth: int = 0) -> JSON:
    """A read-only copy of JSON-like data; anything else raises ``ValueError``."""
    if depth > MAX_DETAILS_DEPTH:
        raise ValueError(f"{where}: nested deeper than {MAX_DETAILS_DEPTH}")
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} is not a JSON number")
        return value
    if isinstance(value, Mapping):
        if len(value) > MAX_DETAILS_ITEMS:
            raise ValueError(f"{where}: more than {MAX_DETAILS_ITEMS} entries")
        items: dict[str, JSON] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: key {key!r} is not a string")
            items[key] = freeze(item, f"{where}.{key}", depth + 1)
        return MappingProxyType(items)
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_DETAILS_ITEMS:
            raise ValueError(f"{where}: more than {MAX_DETAILS_ITEMS} items")
        return tuple(freeze(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value))
    raise ValueError(f"{where}: a {type(value).__name__} is not JSON data")


def freeze_mapping(value: Mapping[str, object], where: str = "details") -> Details:
    """:func:`freeze` for an object, where the caller has checked it is one."""
    frozen = freeze(value, where)
    if not isinstance(frozen, Mapping):
        raise ValueError(f"{where}: a {type(value).__name__} is not a JSON object")
    return frozen


def thaw(value: JSON) -> JSON:
    """Plain dicts and lists again, for JSON."""
    if isinstance(value, Mapping):
        return thaw_mapping(value)
    if isinstance(value, (list, tuple)):
        return [thaw(item) for item in value]
    return value


def thaw_mapping(value: Details) -> dict[str, JSON]:
    """:func:`thaw` of an object: a plain dict."""
    return {key: thaw(item) for key, item in value.items()}


def text_of(value: JSON) -> str | None:
    """A JSON value if it is a string, else None."""
    return value if isinstance(value, str) else None


def texts_of(value: JSON) -> tuple[str, ...]:
    """The strings of a JSON array; none for anything else."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def object_of(value: JSON) -> Details:
    """A JSON value if it is an object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


@dataclasses.dataclass(frozen=True)
class Distro:
    id: str = ""
    version: str = ""
    like: str = ""

    @property
    def ids(self) -> tuple[str, ...]:
        """This distribution's id, then those it is like, most specific first."""
        return (self.id, *self.like.split()) if self.id else tuple(self.like.split())


class ResultChanges(TypedDict, total=False):
    """What :meth:`FeatureResult.replace` may change."""

    name: str
    status: Status
    reason: str
    details: Details
    remediation: tuple[str, ...]
    required: bool
    elapsed_ms: float
    used_by_glance: bool | None


class FeatureDict(TypedDict):
    """One feature of :meth:`Report.to_dict`."""

    status: str
    available: bool
    required: bool
    code: int
    used_by_glance: bool | None
    reason: str
    details: dict[str, JSON]
    remediation: list[str]
    elapsed_ms: float


class ReportDict(TypedDict):
    """:meth:`Report.to_dict`, as ``report.schema.json`` describes it."""

    schema_version: int
    generated_at: str
    glance_features_version: str
    host: dict[str, JSON]
    config_files: list[str]
    glance: dict[str, JSON] | None
    checked_as: str | None
    code: int
    features: dict[str, FeatureDict]


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a check found, before it is a feature's result: one backend of a
    store, one step of qemu-img's path, one lookup. Every detector's parts
    answer with it, as oslo.upgradecheck's checks answer with one ``Result``;
    :meth:`result` makes it the feature's :class:`FeatureResult`."""

    status: Status
    reason: str
    details: Details = dataclasses.field(default_factory=dict)
    remediation: Sequence[str] = ()  # kept as a tuple

    def __post_init__(self) -> None:
        # Read-only copies: a caller that keeps filling its dict changes nothing here.
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))
        object.__setattr__(self, "remediation", tuple(self.remediation))

    def result(self, name: str, details: Mapping[str, object] | None = None) -> FeatureResult:
        """This verdict as feature ``name``'s result; ``details`` add to its own
        (checked to be JSON data, as every result's are)."""
        merged = freeze_mapping({**self.details, **(details or {})}, f"{name}.details")
        return FeatureResult(name, self.status, self.reason, merged, tuple(self.remediation))


@dataclasses.dataclass(frozen=True)
class FeatureResult:
    """What one detector found. ``available`` and ``code`` are derived.

    ``status`` may be given as its string; ``details`` must be JSON-like data
    and is stored read-only. Anything else raises ``ValueError`` here, where
    the mistake is made, not later in the code that reads the result.
    """

    name: str
    status: Status
    reason: str
    details: Details = dataclasses.field(default_factory=dict)
    remediation: tuple[str, ...] = ()
    required: bool = False
    elapsed_ms: float = 0.0
    # Whether the installed Glance uses this feature; None when unknown.
    used_by_glance: bool | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, not {self.name!r}")
        if not isinstance(self.status, Status):
            try:
                set_(self, "status", Status(self.status))
            except ValueError:
                raise ValueError(
                    f"{self.name}: status {self.status!r} is not one of "
                    + ", ".join(s.value for s in Status)
                ) from None
        if not isinstance(self.reason, str):
            raise ValueError(f"{self.name}: reason must be a string")
        set_(self, "reason", _bounded(self.reason))
        if isinstance(self.remediation, str) or not all(
            isinstance(step, str) for step in self.remediation
        ):
            raise ValueError(f"{self.name}: remediation must be a sequence of strings")
        set_(self, "remediation", tuple(_bounded(s) for s in self.remediation[:MAX_STEPS]))
        if not isinstance(self.details, Mapping):
            raise ValueError(f"{self.name}: details must be a mapping")
        set_(self, "details", freeze(self.details, f"{self.name}.details"))
        for flag in ("required",):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{self.name}: {flag} must be a bool")
        if self.used_by_glance is not None and not isinstance(self.used_by_glance, bool):
            raise ValueError(f"{self.name}: used_by_glance must be a bool or None")

    @property
    def available(self) -> bool:
        return self.status.available

    @property
    def code(self) -> Code:
        return code_for(self.status, self.required)

    def replace(self, **changes: Unpack[ResultChanges]) -> FeatureResult:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> FeatureDict:
        return {
            "status": self.status.value,
            "available": self.available,
            "required": self.required,
            "code": int(self.code),
            "used_by_glance": self.used_by_glance,
            "reason": self.reason,
            "details": thaw_mapping(self.details),
            "remediation": list(self.remediation),
            "elapsed_ms": self.elapsed_ms,
        }

    @classmethod
    def from_dict(cls, name: str, data: object) -> FeatureResult:
        where = f"features.{name}"
        obj = _mapping(data, where)
        status_text = _field(obj, "status", str, where)
        try:
            status = Status(status_text)
        except ValueError:
            raise ValueError(f"{where}.status: {status_text!r} is not a status") from None
        remediation = _strings(obj, "remediation", where)
        used = obj.get("used_by_glance")  # absent in reports of 0.1
        if used is not None and not isinstance(used, bool):
            raise ValueError(f"{where}.used_by_glance: expected bool or null")
        result = cls(
            name=name,
            status=status,
            reason=_field(obj, "reason", str, where),
            details=freeze_mapping(_object(obj, "details", where), f"{where}.details"),
            remediation=remediation,
            required=_field(obj, "required", bool, where),
            elapsed_ms=float(_field(obj, "elapsed_ms", (int, float), where)),
            used_by_glance=used,
        )
        if _field(obj, "available", bool, where) != result.available:
            raise ValueError(f"{where}.available contradicts status {status.value!r}")
        if _field(obj, "code", int, where) != result.code:
            raise ValueError(f"{where}.code contradicts status and required")
        return result


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 15] + "... (truncated)"


class FeatureUnavailable(GlanceFeaturesError, RuntimeError):
    """A feature the caller requires is not available on this host."""

    def __init__(self, name: str, result: FeatureResult | None) -> None:
        self.name = name
        self.result = result
        if result is None:
            message = f"feature {name!r} was not probed: no detector provides it"
        else:
            message = f"feature {name!r} is {result.status.value}: {result.reason}"
            if result.remediation:
                message += f" (to fix: {result.remediation[0]})"
        super().__init__(message)


class Report(Mapping[str, FeatureResult]):
    """Results by feature name, plus where, when and for which Glance."""

    def __init__(
        self,
        features: Mapping[str, FeatureResult],
        *,
        host: Mapping[str, object],
        config_files: Iterable[str] = (),
        generated_at: str,
        glance_features_version: str,
        glance: Mapping[str, object] | None = None,
        checked_as: str | None = None,
    ) -> None:
        # host and glance are checked here to be JSON data, as details are.
        self._features = dict(features)
        self.host: Details = freeze_mapping(host, "host")
        self.config_files = tuple(config_files)
        self.generated_at = generated_at
        self.glance_features_version = glance_features_version
        self.glance: Details | None = None if glance is None else freeze_mapping(glance, "glance")
        self.checked_as = checked_as

    @classmethod
    def build(
        cls,
        features: Mapping[str, FeatureResult],
        *,
        host: Mapping[str, object],
        config_files: Iterable[str] = (),
        glance: Mapping[str, object] | None = None,
        checked_as: str | None = None,
        generated_at: str | None = None,
    ) -> Report:
        """A report this release makes of ``features`` and the host facts: the
        one way a probe, a probe that timed out and the test doubles build
        theirs. ``generated_at`` is now unless given (the fakes fix it)."""
        from glance_features._version import __version__

        return cls(
            features,
            host=host,
            config_files=config_files,
            generated_at=generated_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            glance_features_version=__version__,
            glance=glance,
            checked_as=checked_as,
        )

    def __getitem__(self, name: str) -> FeatureResult:
        return self._features[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._features)

    def __len__(self) -> int:
        return len(self._features)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Report):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        statuses = ", ".join(f"{n}={r.status.value}" for n, r in self._features.items())
        return f"<Report code={int(self.code)} {statuses}>"

    @property
    def code(self) -> Code:
        return max((r.code for r in self._features.values()), default=Code.SUCCESS)

    def available(self, name: str) -> bool:
        result = self._features.get(name)
        return result is not None and result.available

    def require(self, *names: str) -> None:
        """Raise :class:`FeatureUnavailable` for the first name not available."""
        for name in names:
            result = self._features.get(name)
            if result is None or not result.available:
                raise FeatureUnavailable(name, result)

    def replace(self, features: Mapping[str, FeatureResult]) -> Report:
        """The same report with other results."""
        return Report(
            features,
            host=self.host,
            config_files=self.config_files,
            generated_at=self.generated_at,
            glance_features_version=self.glance_features_version,
            glance=self.glance,
            checked_as=self.checked_as,
        )

    def with_required(self, names: Iterable[str]) -> Report:
        """A copy in which these features also count as required.

        A required name that was not probed becomes an ``unknown`` result:
        a requirement nobody checked is a failure, never a silent pass.
        """
        features = dict(self._features)
        for name in dict.fromkeys(names):
            result = features.get(name)
            if result is None:
                features[name] = FeatureResult(
                    name,
                    Status.UNKNOWN,
                    f"{name} is required but was not probed",
                    required=True,
                )
            elif not result.required:
                features[name] = result.replace(required=True)
        return self.replace(features)

    def to_dict(self) -> ReportDict:
        return {
            "schema_version": SCHEMA_VERSION,
            "generated_at": self.generated_at,
            "glance_features_version": self.glance_features_version,
            "host": thaw_mapping(self.host),
            "config_files": list(self.config_files),
            "glance": None if self.glance is None else thaw_mapping(self.glance),
            "checked_as": self.checked_as,
            "code": int(self.code),
            "features": {n: r.to_dict() for n, r in self._features.items()},
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: object) -> Report:
        """Rebuild a report; anything that is not one raises ``ValueError``."""
        obj = _mapping(data, "report")
        version = _field(obj, "schema_version", int, "report")
        if version != SCHEMA_VERSION:
            raise ValueError(f"report.schema_version {version!r} is not supported")
        config_files = _strings(obj, "config_files", "report")
        found = obj.get("glance")
        if found is not None and not isinstance(found, Mapping):
            raise ValueError("report.glance: expected an object or null")
        glance: Mapping[str, object] | None = found
        package = None if glance is None else glance.get("package")  # absent before 0.2
        if package is not None and not (
            isinstance(package, Mapping)
            and all(isinstance(package.get(k), str) for k in ("manager", "name", "version"))
        ):
            raise ValueError("report.glance.package: expected manager, name and version strings")
        checked_as = obj.get("checked_as")
        if checked_as is not None and not isinstance(checked_as, str):
            raise ValueError("report.checked_as: expected a string or null")
        features = {
            name: FeatureResult.from_dict(name, value)
            for name, value in _object(obj, "features", "report").items()
        }
        report = cls(
            features,
            host=_object(obj, "host", "report"),
            config_files=config_files,
            generated_at=_field(obj, "generated_at", str, "report"),
            glance_features_version=_field(obj, "glance_features_version", str, "report"),
            glance=glance,
            checked_as=checked_as,
        )
        if _field(obj, "code", int, "report") != report.code:
            raise ValueError("report.code contradicts its features")
        return report


def _mapping(data: object, where: str) -> Mapping[str, object]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    return data


@overload
def _field(obj: Mapping[str, object], key: str, kind: type[_T], where: str) -> _T: ...


@overload
def _field(
    obj: Mapping[str, object], key: str, kind: tuple[type[_T], type[_U]], where: str
) -> _T | _U: ...


def _field(
    obj: Mapping[str, object],
    key: str,
    kind: type[object] | tuple[type[object], ...],
    where: str,
) -> object:
    if key not in obj:
        raise ValueError(f"{where}.{key} is missing")
    value = obj[key]
    # bool is an int subclass; a JSON true is never a valid number here.
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ValueError(f"{where}.{key}: expected {_names(kinds)}, got bool")
    if not isinstance(value, kinds):
        raise ValueError(f"{where}.{key}: expected {_names(kinds)}, got {type(value).__name__}")
    return value


def _object(obj: Mapping[str, object], key: str, where: str) -> Mapping[str, object]:
    value: Mapping[str, object] = _field(obj, key, dict, where)
    return value


def _strings(obj: Mapping[str, object], key: str, where: str) -> tuple[str, ...]:
    value: list[object] = _field(obj, key, list, where)
    strings = tuple(item for item in value if isinstance(item, str))
    if len(strings) != len(value):
        raise ValueError(f"{where}.{key}: every {_ENTRY.get(key, 'entry')} must be a string")
    return strings


_ENTRY = {"remediation": "step"}


def _names(kinds: tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kinds)


def json_schema() -> dict[str, JSON]:
    """The JSON Schema of :meth:`Report.to_dict`, as shipped in the package."""
    from importlib.resources import files

    text = files("glance_features").joinpath("report.schema.json").read_text(encoding="utf-8")
    schema: dict[str, JSON] = json.loads(text)
    return schema
