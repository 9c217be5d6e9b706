"""The shipped Prometheus alerting rules, under ``promtool test rules``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path
from typing import Any

from conftest import need

from glance_features import testing
from glance_features.cli.prometheus import render

RULES = Path(str(files("glance_features").joinpath("data/prometheus/glance_features.rules.yml")))


def promtool() -> str:
    found = shutil.which("promtool")
    need(found is not None, "promtool is not installed (Debian: apt-get install prometheus)")
    assert found is not None
    return found


def series_of(text: str, instance: str, values: str) -> list[dict[str, str]]:
    """The samples of real ``--format prometheus`` output as promtool input series."""
    found = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name_and_labels = line.rsplit(" ", 1)[0]
        if "{" in name_and_labels:
            name, labels = name_and_labels.split("{", 1)
            series = f'{name}{{instance="{instance}",{labels}'
        else:
            series = f'{name_and_labels}{{instance="{instance}"}}'
        value = line.rsplit(" ", 1)[1]
        found.append({"series": series, "values": values.format(v=value)})
    return found


def run_tests(tmp_path: Path, tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    spec = tmp_path / "rules_test.yml"
    # JSON is YAML: no YAML library needed to write the test file.
    spec.write_text(
        json.dumps({"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests})
    )
    return subprocess.run(
        [promtool(), "test", "rules", str(spec)], capture_output=True, text=True, timeout=120
    )


def test_rules_pass_promtool_check() -> None:
    proc = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 rules found" in proc.stdout


def test_rules_use_only_metrics_the_command_writes() -> None:
    written = {
        line.split("{")[0].split(" ")[0]
        for line in render(testing.make_report()).splitlines()
        if not line.startswith("#")
    }
    used = set(re.findall(r"\bglance_features_[a-z_]+\b", RULES.read_text()))
    assert used and used <= written, used - written


def test_a_missing_required_feature_fires_on_real_output(tmp_path: Path) -> None:
    broken = render(testing.make_report(xattr="unavailable", required=["xattr"]))
    degraded = render(testing.make_report(xattr="degraded", required=["xattr"]))
    healthy = render(testing.make_report(xattr="unavailable"))
    inputs = [
        *series_of(broken, "api-1", "{v}x30"),
        *series_of(degraded, "api-2", "{v}x90"),
        *series_of(healthy, "api-3", "{v}x90"),
    ]
    summary = "{}: Glance needs xattr, which does not work"
    missing = {
        "exp_labels": {"severity": "critical", "instance": "api-1", "feature": "xattr"},
        "exp_annotations": {
            "summary": summary.format("api-1"),
            "description": "The Glance configuration on api-1 requires xattr, and "
            "glance-features finds it unavailable. Run `glance-features explain xattr` "
            "there for the reason and the fix.",
        },
    }
    proc = run_tests(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": inputs,
                "alert_rule_test": [
                    # Not yet: the rule waits ten minutes.
                    {"eval_time": "5m", "alertname": "GlanceFeatureRequiredMissing"},
                    {
                        "eval_time": "15m",
                        "alertname": "GlanceFeatureRequiredMissing",
                        "exp_alerts": [missing],
                    },
                    {"eval_time": "30m", "alertname": "GlanceFeatureRequiredDegraded"},
                    {
                        "eval_time": "80m",
                        "alertname": "GlanceFeatureRequiredDegraded",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "instance": "api-2",
                                    "feature": "xattr",
                                },
                                "exp_annotations": {
                                    "summary": "api-2: required Glance feature xattr is degraded",
                                    "description": "xattr works on api-2 with a caveat; "
                                    "`glance-features explain xattr` says which.",
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_probe_that_stopped_or_vanished(tmp_path: Path) -> None:
    # time() starts at 0: a fresh probe's timestamp follows it, minute by minute.
    fresh = "0+60x120"
    stopped = "0+60x10 600x110"  # the last probe at 10 minutes
    vanished = "0+60x20"  # the file disappears after 20 minutes
    inputs = [
        {"series": f'glance_features_probe_timestamp_seconds{{instance="{i}"}}', "values": v}
        for i, v in (("fresh", fresh), ("stopped", stopped), ("gone", vanished))
    ]
    proc = run_tests(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": inputs,
                "alert_rule_test": [
                    # 30 minutes after the last run, plus 5 minutes of "for".
                    {"eval_time": "40m", "alertname": "GlanceFeaturesProbeStale"},
                    {
                        "eval_time": "50m",
                        "alertname": "GlanceFeaturesProbeStale",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "instance": "stopped"},
                                "exp_annotations": {
                                    "summary": "stopped: glance-features has not probed for "
                                    "over 30 minutes",
                                    # 50 minutes in, the last probe ran at 10.
                                    "description": "The glance-features metrics of stopped were "
                                    "written 40m 0s ago: check the glance-features-metrics "
                                    "timer and its journal.",
                                },
                            }
                        ],
                    },
                    {"eval_time": "30m", "alertname": "GlanceFeaturesProbeVanished"},
                    {
                        "eval_time": "60m",
                        "alertname": "GlanceFeaturesProbeVanished",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "instance": "gone"},
                                "exp_annotations": {
                                    "summary": "gone: the glance-features metrics disappeared",
                                    "description": "node_exporter on gone no longer exposes the "
                                    "glance-features metrics (the textfile was removed or does "
                                    "not parse: see node_textfile_scrape_error).",
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    # The harness can fail: a healthy host expected to alert does not.
    healthy = render(testing.make_report(xattr="available", required=["xattr"]))
    proc = run_tests(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": series_of(healthy, "api-1", "{v}x30"),
                "alert_rule_test": [
                    {
                        "eval_time": "20m",
                        "alertname": "GlanceFeatureRequiredMissing",
                        "exp_alerts": [{"exp_labels": {"instance": "api-1"}}],
                    }
                ],
            }
        ],
    )
    assert proc.returncode != 0
