from __future__ import annotations

import calendar
import itertools
import json
import time

import jsonschema
import pytest
from conftest import validate

import glance_features
from glance_features import Code, FeatureResult, FeatureUnavailable, ProbeContext, Report, Status
from glance_features.model import Details


def make(**statuses: tuple[Status, bool]) -> Report:
    features = {
        name: FeatureResult(
            name,
            status,
            f"{name} is {status.value}",
            {"path": "/x", "n": 1},
            (f"fix {name}", "then restart"),
            required,
            1.5,
        )
        for name, (status, required) in statuses.items()
    }
    return Report(
        features,
        host={
            "hostname": "h",
            "os": "linux",
            "kernel": "6.1",
            "distro": {"id": "debian", "version": "12", "like": ""},
            "python": "3.11.7",
        },
        config_files=["/etc/glance/glance-api.conf"],
        generated_at="2026-11-24T13:41:40Z",
        glance_features_version="0.1.0",
    )


@pytest.mark.parametrize(("status", "required"), list(itertools.product(Status, (False, True))))
def test_every_status_and_required_combination_round_trips(status: Status, required: bool) -> None:
    report = make(a=(status, required))
    data = validate(report)
    assert Report.from_dict(json.loads(report.to_json())) == report
    assert Report.from_dict(data).to_dict() == data
    feature = data["features"]["a"]
    assert feature["available"] is (status in (Status.AVAILABLE, Status.DEGRADED))
    expected = (
        0 if not required or status is Status.AVAILABLE else (1 if status is Status.DEGRADED else 2)
    )
    assert feature["code"] == expected == data["code"]


def test_report_code_is_the_worst_feature_code() -> None:
    report = make(
        a=(Status.AVAILABLE, True), b=(Status.DEGRADED, True), c=(Status.UNAVAILABLE, False)
    )
    assert report.code is Code.WARNING
    assert make(a=(Status.DEGRADED, True), b=(Status.UNKNOWN, True)).code is Code.FAILURE
    assert make().code is Code.SUCCESS
    validate(make())


def test_build_stamps_this_release_and_now_and_matches_the_constructor() -> None:
    given = make(a=(Status.DEGRADED, True))
    built = Report.build(
        dict(given),
        host=given.host,
        config_files=given.config_files,
        glance={"version": "33.0.0"},
        checked_as="glance",
    )
    assert built.glance_features_version == glance_features.__version__
    stamp = time.strptime(built.generated_at, "%Y-%m-%dT%H:%M:%SZ")
    assert abs(calendar.timegm(stamp) - time.time()) < 60
    assert built.glance == {"version": "33.0.0"} and built.checked_as == "glance"
    assert built.to_dict()["features"] == given.to_dict()["features"]
    validate(built)
    fixed = Report.build(
        dict(given),
        host=given.host,
        config_files=given.config_files,
        generated_at=given.generated_at,
    )
    assert fixed.generated_at == given.generated_at
    assert fixed.to_dict() == {
        **given.to_dict(),
        "glance_features_version": glance_features.__version__,
    }


def test_mapping_access_and_available() -> None:
    report = make(a=(Status.DEGRADED, False), b=(Status.UNKNOWN, False))
    assert report["a"].status is Status.DEGRADED
    assert list(report) == ["a", "b"] and len(report) == 2
    assert report.available("a") and not report.available("b")
    assert not report.available("not-probed")


def test_require_names_feature_reason_and_first_fix() -> None:
    report = make(a=(Status.AVAILABLE, False), b=(Status.UNAVAILABLE, False))
    report.require("a")
    with pytest.raises(FeatureUnavailable) as caught:
        report.require("a", "b")
    message = str(caught.value)
    assert "'b'" in message and "b is unavailable" in message and "fix b" in message
    assert "then restart" not in message
    assert caught.value.result is report["b"]
    with pytest.raises(FeatureUnavailable, match="'zzz' was not probed"):
        report.require("zzz")


def test_with_required_changes_codes_only_for_named_features() -> None:
    report = make(a=(Status.UNAVAILABLE, False), b=(Status.DEGRADED, False))
    assert report.code is Code.SUCCESS
    marked = report.with_required(["b"])
    assert marked.code is Code.WARNING
    assert marked["b"].required and not marked["a"].required
    assert not report["b"].required  # the original is untouched


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("features"), "features is missing"),
        (lambda d: d.update(schema_version=2), "schema_version"),
        (lambda d: d.update(code=True), "got bool"),
        (lambda d: d["features"]["a"].update(status="great"), "not a status"),
        (lambda d: d["features"]["a"].update(available=True), "contradicts"),
        (lambda d: d["features"]["a"].update(code=0), "contradicts"),
        (lambda d: d["features"]["a"].update(remediation=[1]), "string"),
        (lambda d: d.update(code=0), "report.code contradicts"),
        (lambda d: d.update(config_files="x"), "expected list"),
    ],
)
def test_from_dict_rejects_malformed_reports_with_value_error(mutate, message) -> None:  # type: ignore[no-untyped-def]
    data = make(a=(Status.UNAVAILABLE, True)).to_dict()
    mutate(data)
    with pytest.raises(ValueError, match=message):
        Report.from_dict(data)


@pytest.mark.parametrize("junk", [None, 1, "report", [], {"features": []}])
def test_from_dict_rejects_non_reports(junk: object) -> None:
    with pytest.raises(ValueError):
        Report.from_dict(junk)


def test_schema_rejects_what_the_model_would_never_write() -> None:
    data = make(a=(Status.UNAVAILABLE, False)).to_dict()
    data["features"]["a"]["code"] = 2  # not required can never fail
    with pytest.raises(jsonschema.ValidationError):
        validate(data)


def test_with_required_makes_an_unprobed_name_an_unknown_failure() -> None:
    report = make(a=(Status.AVAILABLE, False))
    marked = report.with_required(["a", "never-probed"])
    # A requirement nobody checked is a failure, never silently dropped.
    assert list(marked) == ["a", "never-probed"]
    missing = marked["never-probed"]
    assert missing.status is Status.UNKNOWN and missing.required
    assert missing.code is Code.FAILURE and marked.code is Code.FAILURE
    assert "not probed" in missing.reason
    assert "never-probed" not in report
    with pytest.raises(FeatureUnavailable, match="'never-probed' is unknown"):
        marked.require("never-probed")
    validate(marked)


def test_status_given_as_its_string_is_converted() -> None:
    result = FeatureResult("a", "degraded", "why")  # type: ignore[arg-type]
    assert result.status is Status.DEGRADED and result.available
    with pytest.raises(ValueError, match="'great' is not one of"):
        FeatureResult("a", "great", "why")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("details", "message"),
    [
        ({"when": object()}, "is not JSON data"),
        ({1: "x"}, "is not a string"),
        ({"x": float("nan")}, "not a JSON number"),
    ],
)
def test_details_must_be_json_data(details: dict[object, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeatureResult("a", Status.AVAILABLE, "why", details)  # type: ignore[arg-type]


def test_a_caller_cannot_change_a_cached_reports_details() -> None:
    import dataclasses

    import glance_features

    glance_features.register(_Nested())
    try:
        report = glance_features.probe(features=["nested"])
        result = report["nested"]
        with pytest.raises(TypeError):
            result.details["paths"] = ["/elsewhere"]  # type: ignore[index]
        with pytest.raises(TypeError):
            result.details["mount"]["fs"] = "tmpfs"  # type: ignore[index]
        with pytest.raises(AttributeError):
            result.details["paths"].append("/elsewhere")  # type: ignore[union-attr]
        with pytest.raises(dataclasses.FrozenInstanceError):
            result.status = Status.UNAVAILABLE  # type: ignore[misc]
        with pytest.raises(TypeError):
            report.host["hostname"] = "elsewhere"  # type: ignore[index]
        # The next caller gets the same, unchanged report.
        again = glance_features.probe(features=["nested"])
        assert again is report
        assert again["nested"].to_dict()["details"] == {
            "paths": ["/a", "/b"],
            "mount": {"fs": "ext4", "options": ["rw"]},
        }
        # replace() is how a caller gets a changed copy; the cached one stays.
        changed = result.replace(details={"paths": []})
        assert changed.details == {"paths": ()} and again["nested"].details["paths"] == (
            "/a",
            "/b",
        )
    finally:
        glance_features.unregister("nested")


class _Nested:
    name = "nested"
    summary = "returns nested details"

    def probe(self, context: ProbeContext) -> FeatureResult:
        paths = ["/a", "/b"]
        details: Details = {"paths": paths, "mount": {"fs": "ext4", "options": ["rw"]}}
        result = FeatureResult(self.name, Status.AVAILABLE, "fine", details)
        paths.append("/c")  # the detector's own lists are copied, not kept
        return result


def test_every_error_of_the_library_has_one_base() -> None:
    """One except clause catches whatever glance-features raises itself, and
    each error is still the built-in its callers catch today."""
    import ast
    from pathlib import Path

    import glance_features

    package = Path(glance_features.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name) and b.id.endswith(("Error", "Exception"))
                for b in node.bases
            ):
                found.append((path.relative_to(package).as_posix(), node.name, node.bases))
    names = {name for _, name, _ in found}
    assert {"ConfigError", "CheckFailed", "ReadError", "UnknownFeature", "PluginError"} <= names
    for where, name, bases in found:
        if name == "GlanceFeaturesError":
            continue
        first = bases[0]
        assert isinstance(first, ast.Name) and first.id == "GlanceFeaturesError", (where, name)
    assert issubclass(glance_features.ConfigError, ValueError)
    assert issubclass(glance_features.ConfigError, glance_features.GlanceFeaturesError)
    assert issubclass(glance_features.FeatureUnavailable, RuntimeError)


def test_the_distribution_package_of_glance_round_trips_and_is_shown() -> None:
    """Debian's package beside the upstream release: in the JSON (schema
    version 1, an added field), back through from_dict, and in the text."""
    from glance_features.cli.render import render_text as text
    from glance_features.glance import describe

    package = {"manager": "dpkg", "name": "python3-glance", "version": "2:30.0.0-3+deb13u5",
               "vendor": "Debian"}  # fmt: skip
    base = make(a=(Status.AVAILABLE, True)).to_dict()
    data = {**base, "glance": describe("30.0.0", None, package)}
    report = Report.from_dict(validate(data))
    glance = report.to_dict()["glance"]
    assert glance is not None and glance["package"] == package
    shown = text(report, config_note="", colour=False)
    assert "glance: 30.0.0 (Debian 2:30.0.0-3+deb13u5); checked as" in shown
    # A report of an older release has no package: still read, shown as before.
    older = Report.from_dict(validate({**base, "glance": {"version": "30.0.0"}}))
    assert "glance: 30.0.0; checked as" in text(older, config_note="", colour=False)
    bad = {**data, "glance": {"version": "30.0.0", "package": {"version": 2}}}
    with pytest.raises(ValueError, match=r"glance\.package"):
        Report.from_dict(bad)
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
