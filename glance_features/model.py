"""The capability report: statuses, one result per feature, the whole report."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Iterator, Mapping

from glance_features._record import field, record, replace

TYPE_CHECKING = False  # typing itself would cost Glance's start-up; see __init__
if TYPE_CHECKING:
    from typing import Any

SCHEMA_VERSION = 1


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


@record
class FeatureResult:
    """What one detector found. ``available`` and ``code`` are derived."""

    name: str
    status: Status
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)
    remediation: tuple[str, ...] = ()
    required: bool = False
    elapsed_ms: float = 0.0

    @property
    def available(self) -> bool:
        return self.status.available

    @property
    def code(self) -> Code:
        return code_for(self.status, self.required)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "available": self.available,
            "required": self.required,
            "code": int(self.code),
            "reason": self.reason,
            "details": dict(self.details),
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
        remediation = _field(obj, "remediation", list, where)
        if not all(isinstance(step, str) for step in remediation):
            raise ValueError(f"{where}.remediation: every step must be a string")
        elapsed = _field(obj, "elapsed_ms", (int, float), where)
        result = cls(
            name=name,
            status=status,
            reason=_field(obj, "reason", str, where),
            details=_field(obj, "details", dict, where),
            remediation=tuple(remediation),
            required=_field(obj, "required", bool, where),
            elapsed_ms=float(elapsed),
        )
        if _field(obj, "available", bool, where) != result.available:
            raise ValueError(f"{where}.available contradicts status {status.value!r}")
        if _field(obj, "code", int, where) != result.code:
            raise ValueError(f"{where}.code contradicts status and required")
        return result


class FeatureUnavailable(RuntimeError):
    """A feature the caller requires is not available on this host."""

    def __init__(self, name: str, result: FeatureResult | None) -> None:
        self.name = name
        self.result = result
        if result is None:
            message = f"feature {name!r} was not probed"
        else:
            message = f"feature {name!r} is {result.status.value}: {result.reason}"
            if result.remediation:
                message += f" (to fix: {result.remediation[0]})"
        super().__init__(message)


class Report(Mapping[str, FeatureResult]):
    """Results by feature name, plus where and when they were found."""

    def __init__(
        self,
        features: Mapping[str, FeatureResult],
        *,
        host: Mapping[str, Any],
        config_files: Iterable[str] = (),
        generated_at: str,
        glance_features_version: str,
    ) -> None:
        self._features = dict(features)
        self.host = dict(host)
        self.config_files = tuple(config_files)
        self.generated_at = generated_at
        self.glance_features_version = glance_features_version

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

    def with_required(self, names: Iterable[str]) -> Report:
        """A copy in which these features also count as required."""
        wanted = set(names)
        features = {
            n: replace(r, required=True) if n in wanted and not r.required else r
            for n, r in self._features.items()
        }
        return Report(
            features,
            host=self.host,
            config_files=self.config_files,
            generated_at=self.generated_at,
            glance_features_version=self.glance_features_version,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "generated_at": self.generated_at,
            "glance_features_version": self.glance_features_version,
            "host": dict(self.host),
            "config_files": list(self.config_files),
            "code": int(self.code),
            "features": {n: r.to_dict() for n, r in self._features.items()},
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: object) -> Report:
        """Rebuild a report; anything that is not one raises ``ValueError``."""
        obj = _mapping(data, "report")
        version = _field(obj, "schema_version", int, "report")
        if version != SCHEMA_VERSION:
            raise ValueError(f"report.schema_version {version!r} is not supported")
        config_files = _field(obj, "config_files", list, "report")
        if not all(isinstance(p, str) for p in config_files):
            raise ValueError("report.config_files: every entry must be a string")
        features = {
            name: FeatureResult.from_dict(name, value)
            for name, value in _field(obj, "features", dict, "report").items()
        }
        report = cls(
            features,
            host=_field(obj, "host", dict, "report"),
            config_files=config_files,
            generated_at=_field(obj, "generated_at", str, "report"),
            glance_features_version=_field(obj, "glance_features_version", str, "report"),
        )
        if _field(obj, "code", int, "report") != report.code:
            raise ValueError("report.code contradicts its features")
        return report


def _mapping(data: object, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    return data


def _field(obj: Mapping[str, Any], key: str, kind: Any, where: str) -> Any:
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


def _names(kinds: tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kinds)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of :meth:`Report.to_dict`, as shipped in the package."""
    from importlib.resources import files

    text = files("glance_features").joinpath("report.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
