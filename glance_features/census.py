"""The census: which advanced features a deployment enables, whether they
work, and what provides them -- a document safe to share.

A census is built from a report, so the same reduction serves the
``census`` command (on a fresh probe) and ``summarize`` (on reports
collected from a fleet). It is an allow-list: every value is an enum, a
bool, a version that parses as one, or a name that matches a strict
pattern. Nothing is ever copied from a reason, a path, a host name, an
account or an option value.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, TypedDict

from glance_features.errors import GlanceFeaturesError
from glance_features.model import JSON, Details, Report, Status, object_of, text_of

if TYPE_CHECKING:
    import importlib_metadata

CENSUS_VERSION = 1

SERVED_BY = ("eventlet", "uwsgi", "mod_wsgi", "gunicorn")
SOURCES = ("distribution", "pip", "unknown")
STATUSES = tuple(s.value for s in Status)

# Feature names are the detectors' identifiers (``store-rbd``, ``name@dist``
# for a clash); distribution names as PEP 508 spells them; distribution ids
# and releases as os-release does. Anything else is dropped, not escaped.
_FEATURE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}(@[A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$")
_DIST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$")
_DISTRO_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
_DISTRO_VERSION = re.compile(r"^[0-9][0-9A-Za-z.]{0,15}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_PYTHON = re.compile(r"^(\d{1,2})\.(\d{1,3})")

# (version, source) of an installed distribution, or None when absent.
Lookup = Callable[[str], "tuple[str, str] | None"]


class CensusError(GlanceFeaturesError, ValueError):
    """Not a census document."""


# The census document, as census.schema.json describes it.
class ProvidedBy(TypedDict):
    name: str
    version: str
    source: str  # one of SOURCES


class CensusFeature(TypedDict):
    enabled: bool
    working: bool
    status: str  # one of STATUSES
    used_by_glance: bool | None
    provided_by: list[ProvidedBy]


class CensusGlance(TypedDict):
    release: str | None
    served_by: str | None  # one of SERVED_BY


class CensusDistro(TypedDict):
    family: str | None
    id: str | None
    version: str | None


class _CensusId(TypedDict, total=False):
    id: str  # only when the operator asked for one


class Census(_CensusId):
    census_version: int
    glance: CensusGlance | None
    distro: CensusDistro
    python: str | None
    features: dict[str, CensusFeature]


def version_of(text: object) -> str | None:
    """``text`` as a normalised PEP 440 version, or None: a version is the
    only free-looking value a census carries, and it must parse as one."""
    if not isinstance(text, str) or not text or len(text) > 64:
        return None
    from packaging.version import InvalidVersion, Version

    try:
        return str(Version(text))
    except InvalidVersion:
        return None


def census_of(
    report: Report | Mapping[str, object],
    *,
    lookup: Lookup | None = None,
    census_id: str | None = None,
) -> Census:
    """The census of ``report`` (a :class:`Report` or its ``to_dict()``).

    ``lookup`` says which version of a distribution is installed and whether
    it came from a distribution package or pip (:func:`installed`, for a
    probe of this host); without it, versions come only from what the
    report's details name, and their source is ``unknown``.
    """
    if not isinstance(report, Report):
        report = Report.from_dict(report)
    from glance_features import registry
    from glance_features.catalog import UNCATALOGUED

    catalog = registry.catalog()
    # Only features a detector registered here provides: a name in a report
    # read from elsewhere is not copied just because it looks like one.
    known = set(catalog) | {plugin.name for plugin in registry.plugins()}
    if census_id is not None and not _UUID.match(census_id):
        raise ValueError(f"census id {census_id!r} is not a random (version 4) UUID")
    glance = _glance(report)
    features: dict[str, CensusFeature] = {}
    for name, result in report.items():
        if name not in known or not _FEATURE.match(name):
            continue
        entry = catalog.get(name, UNCATALOGUED)
        features[name] = {
            "enabled": result.required,
            "working": result.available,
            "status": result.status.value,
            "used_by_glance": result.used_by_glance,
            "provided_by": _provided_by(entry.python, result.details, lookup),
        }
    distro = _distro(report.host.get("distro"))
    python = _python(report.host.get("python"))
    features = dict(sorted(features.items()))
    if census_id is None:
        return {
            "census_version": CENSUS_VERSION,
            "glance": glance,
            "distro": distro,
            "python": python,
            "features": features,
        }
    return {
        "census_version": CENSUS_VERSION,
        "id": census_id,
        "glance": glance,
        "distro": distro,
        "python": python,
        "features": features,
    }


def _glance(report: Report) -> CensusGlance | None:
    """The release and the way of serving, of a report that names its Glance."""
    if not report.glance:
        return None
    served_by = text_of(report.glance.get("served_by"))
    return {
        "release": version_of(report.glance.get("version")),
        "served_by": served_by if served_by in SERVED_BY else None,
    }


def _distro(data: JSON) -> CensusDistro:
    from glance_features.model import Distro
    from glance_features.remediation import FAMILY_OF_ID, family

    info = object_of(data)
    distro_id = text_of(info.get("id"))
    release = text_of(info.get("version"))
    like = text_of(info.get("like")) or ""
    found = family(Distro(distro_id or "", "", like))
    if not distro_id:
        return {"family": found, "id": None, "version": None}
    if distro_id not in FAMILY_OF_ID:
        # A site's own os-release ID would single it out: only its family is kept.
        return {"family": found, "id": "other", "version": None}
    if not (release is not None and _DISTRO_VERSION.match(release)):
        release = None
    return {"family": found, "id": distro_id, "version": release}


def _python(text: object) -> str | None:
    match = _PYTHON.match(text) if isinstance(text, str) else None
    return f"{match.group(1)}.{match.group(2)}" if match else None


def _provided_by(
    requirements: Iterable[str], details: Details, lookup: Lookup | None
) -> list[ProvidedBy]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    # What the detector itself found, from the service's interpreter:
    # {"eventlet": "0.41.3"} or {"distribution": "pydevd", "version": "3.5.0"}.
    seen: dict[str, str] = {}
    for key, value in details.items():
        if isinstance(value, str) and version_of(value):
            seen[canonicalize_name(key)] = value
    named, named_version = text_of(details.get("distribution")), text_of(details.get("version"))
    if named is not None and named_version is not None and version_of(named_version):
        seen[canonicalize_name(named)] = named_version
    provided: list[ProvidedBy] = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        if not _DIST_NAME.match(name):
            continue
        found = lookup(name) if lookup is not None else None
        version, source = found if found is not None else (seen.get(name), "unknown")
        version = version_of(version)
        if version is None:
            continue  # not installed (or not known to be): "working" says the rest
        provided.append({"name": name, "version": version, "source": source})
    return provided


def installed(name: str) -> tuple[str, str] | None:
    """The installed version of distribution ``name`` and where it came from:
    ``distribution`` (a distribution's package), ``pip`` (pip or uv), or
    ``unknown``."""
    import importlib_metadata

    try:
        dist = importlib_metadata.distribution(name)
        version = dist.version
    except (importlib_metadata.PackageNotFoundError, OSError, ValueError):
        return None
    if not isinstance(version, str):
        return None
    return version, source_of(dist)


# Where distribution packages put Python modules: Debian's dist-packages, and
# the site-packages of RHEL, SUSE, Arch and Alpine (lib and lib64).
_SYSTEM_DIRS = re.compile(r"^/usr/lib(64)?/python3[0-9.]*/(dist|site)-packages/")


def source_of(dist: importlib_metadata.IDistribution) -> str:
    """``distribution``, ``pip`` or ``unknown`` for an importlib-metadata
    distribution, from its INSTALLER file and where it is installed."""
    try:
        installer = (dist.read_text("INSTALLER") or "").strip().lower()
        record = dist.read_text("RECORD")
    except (OSError, ValueError):
        return "unknown"
    return _source(str(getattr(dist, "_path", "") or ""), installer, record is not None)


def _source(where: str, installer: str, record: bool) -> str:
    if installer.lower() in ("pip", "uv"):
        return "pip"
    if _SYSTEM_DIRS.match(where):
        return "distribution"  # dpkg, rpm, or a build with no INSTALLER at all
    if not installer and not record:
        # An egg-info or a dist-info no installer recorded: what distribution
        # packages leave, wherever their Python lives.
        return "distribution"
    return "unknown"


def service_lookup(python: str | None, timeout: float = 10.0) -> Lookup:
    """``installed`` as the service's interpreter answers it (one child for
    every distribution the catalogs name), or this one's when it is that."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    from glance_features import checks, registry, runas

    if python is None or runas.is_this_interpreter(python):
        return installed
    names = sorted(
        {
            canonicalize_name(Requirement(r).name)
            for entry in registry.catalog().values()
            for r in entry.python
        }
    )
    try:
        found = runas.in_interpreter(python, checks.interpreter, (names,), timeout)
    except runas.CheckFailed:
        return lambda name: None
    answers = {
        name: (
            dist["version"],
            _source(dist["location"], (dist["installer"] or "").lower(), dist["record"]),
        )
        for name, dist in found["distributions"].items()
        if dist is not None
    }
    return answers.get


def new_id() -> str:
    return str(uuid.uuid4())


def validate(data: object) -> Census:
    """``data`` if it is a census this release reads, else :class:`CensusError`.

    Checked by hand, as :meth:`Report.from_dict` checks reports, so reading
    a census needs no jsonschema; the shipped schema says the same.
    """
    if not isinstance(data, Mapping):
        raise CensusError("not an object")
    if data.get("census_version") != CENSUS_VERSION:
        raise CensusError(f"census_version {data.get('census_version')!r} is not supported")
    extra = set(data) - {"census_version", "id", "glance", "distro", "python", "features"}
    if extra:
        raise CensusError(f"unexpected fields: {', '.join(sorted(extra))}")
    census_id = data.get("id")
    if "id" in data and not (isinstance(census_id, str) and _UUID.match(census_id)):
        raise CensusError("id is not a version 4 UUID")
    glance = data.get("glance")
    checked_glance: CensusGlance | None = None
    if glance is not None:
        if not isinstance(glance, Mapping) or set(glance) != {"release", "served_by"}:
            raise CensusError("glance: expected release and served_by")
        checked_glance = {
            "release": _text(glance["release"], version_of, "glance.release is not a version"),
            "served_by": _text(
                glance["served_by"],
                SERVED_BY.__contains__,
                "glance.served_by is not a known server",
            ),
        }
    distro = data.get("distro")
    if not isinstance(distro, Mapping) or set(distro) != {"family", "id", "version"}:
        raise CensusError("distro: expected family, id and version")
    checked_distro: CensusDistro = {
        "family": _text(distro["family"], _DISTRO_ID.match, "distro.family is not an identifier"),
        "id": _text(distro["id"], _DISTRO_ID.match, "distro.id is not an identifier"),
        "version": _text(
            distro["version"], _DISTRO_VERSION.match, "distro.version is not an identifier"
        ),
    }
    python = _text(
        data.get("python"),
        lambda text: _python(text) == text,
        "python is not a major.minor version",
    )
    features = data.get("features")
    if not isinstance(features, Mapping):
        raise CensusError("features: expected an object")
    checked: Census = {
        "census_version": CENSUS_VERSION,
        "glance": checked_glance,
        "distro": checked_distro,
        "python": python,
        "features": {name: _validate_feature(name, feature) for name, feature in features.items()},
    }
    if isinstance(census_id, str):
        checked["id"] = census_id
    return checked


def _text(value: object, valid: Callable[[str], object], message: str) -> str | None:
    """``value`` if it is None or a string ``valid`` accepts, else :class:`CensusError`."""
    if value is None:
        return None
    if not (isinstance(value, str) and valid(value)):
        raise CensusError(message)
    return value


def _validate_feature(name: object, feature: object) -> CensusFeature:
    if not isinstance(name, str) or not _FEATURE.match(name):
        raise CensusError(f"feature name {name!r} is not an identifier")
    keys = {"enabled", "working", "status", "used_by_glance", "provided_by"}
    if not isinstance(feature, Mapping) or set(feature) != keys:
        raise CensusError(f"features.{name}: expected {', '.join(sorted(keys))}")
    enabled, working = feature["enabled"], feature["working"]
    for flag, value in (("enabled", enabled), ("working", working)):
        if not isinstance(value, bool):
            raise CensusError(f"features.{name}.{flag}: expected a bool")
    used = feature["used_by_glance"]
    if not (used is None or isinstance(used, bool)):
        raise CensusError(f"features.{name}.used_by_glance: expected a bool or null")
    status = feature["status"]
    if not (isinstance(status, str) and status in STATUSES):
        raise CensusError(f"features.{name}.status is not a status")
    if working != Status(status).available:
        raise CensusError(f"features.{name}.working contradicts its status")
    provided = feature["provided_by"]
    if not isinstance(provided, list):
        raise CensusError(f"features.{name}.provided_by: expected a list")
    return {
        "enabled": bool(enabled),
        "working": bool(working),
        "status": status,
        "used_by_glance": used,
        "provided_by": [_validate_provided(name, item) for item in provided],
    }


def _validate_provided(name: str, item: object) -> ProvidedBy:
    if isinstance(item, Mapping) and set(item) == {"name", "version", "source"}:
        dist, version, source = item["name"], item["version"], item["source"]
        if (
            isinstance(dist, str)
            and _DIST_NAME.match(dist)
            and isinstance(version, str)
            and version_of(version) is not None
            and isinstance(source, str)
            and source in SOURCES
        ):
            return {"name": dist, "version": version, "source": source}
    raise CensusError(f"features.{name}.provided_by: not a name, version and source")


def json_schema() -> dict[str, JSON]:
    """The JSON Schema of a census, as shipped in the package."""
    from importlib.resources import files

    text = files("glance_features").joinpath("census.schema.json").read_text(encoding="utf-8")
    schema: dict[str, JSON] = json.loads(text)
    return schema


def to_json(census: Census) -> str:
    return json.dumps(census, indent=2) + "\n"
