from __future__ import annotations

import itertools
import json

import jsonschema
import pytest
from conftest import validate

from glance_features import Code, FeatureResult, FeatureUnavailable, Report, Status


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
