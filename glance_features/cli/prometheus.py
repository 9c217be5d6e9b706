"""The report as node_exporter textfile-collector metrics."""

from __future__ import annotations

import calendar
import time

from glance_features.model import Report, Status

PREFIX = "glance_features"

# A metric family: name after the prefix, help text, and (labels, value) samples.
_Family = tuple[str, str, list[tuple[str, float]]]


def escape_label(value: str) -> str:
    """Escape a label value as the text exposition format requires."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def render(report: Report) -> str:
    """Every metric has # HELP and # TYPE; one series per feature (and status)."""
    lines = []
    for name, help_text, samples in _probe_families(report) + _feature_families(report):
        metric = f"{PREFIX}_{name}"
        lines.append(f"# HELP {metric} {help_text}")
        lines.append(f"# TYPE {metric} gauge")
        lines.extend(f"{metric}{labels} {_number(value)}" for labels, value in samples)
    return "\n".join(lines) + "\n"


def _probe_families(report: Report) -> list[_Family]:
    """The metrics of the probe as a whole."""
    return [
        (
            "build_info",
            "glance-features version that produced these metrics.",
            [(_labels(version=report.glance_features_version), 1)],
        ),
        (
            "probe_timestamp_seconds",
            "When the probe ran, in seconds since the epoch.",
            [("", calendar.timegm(time.strptime(report.generated_at, "%Y-%m-%dT%H:%M:%SZ")))],
        ),
        (
            "code",
            "Worst feature code: 0 success, 1 warning, 2 failure (oslo.upgradecheck).",
            [("", int(report.code))],
        ),
    ]


def _feature_families(report: Report) -> list[_Family]:
    """The metrics with one series per feature."""
    return [
        (
            "feature_status",
            "1 for the feature's current status, 0 for the others.",
            [
                (_labels(feature=name, status=status.value), int(result.status is status))
                for name, result in report.items()
                for status in Status
            ],
        ),
        (
            "feature_available",
            "1 when the feature works here (available or degraded).",
            [(_labels(feature=n), int(r.available)) for n, r in report.items()],
        ),
        (
            "feature_required",
            "1 when the settings or the caller require the feature.",
            [(_labels(feature=n), int(r.required)) for n, r in report.items()],
        ),
        (
            "feature_code",
            "Feature code: 0 success, 1 warning, 2 failure.",
            [(_labels(feature=n), int(r.code)) for n, r in report.items()],
        ),
        (
            "feature_probe_seconds",
            "Time the feature's detector took.",
            [(_labels(feature=n), r.elapsed_ms / 1000.0) for n, r in report.items()],
        ),
        (
            "feature_info",
            "The feature's status and reason, as labels.",
            [
                (_labels(feature=n, status=r.status.value, reason=r.reason), 1)
                for n, r in report.items()
            ],
        ),
    ]
