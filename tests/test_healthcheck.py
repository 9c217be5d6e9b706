"""The oslo.middleware health-check backend: answers from the last report,
refreshes off the request path at most every interval, 503 only for what the
configuration requires."""

from __future__ import annotations

import threading
import time
import warnings
from typing import Any

import pytest
from conftest import need

from glance_features import testing
from glance_features.model import Report
from glance_features.settings import Settings

try:
    # WebOb (under oslo.middleware) imports the cgi module, deprecated in 3.11;
    # not ours to fix, and pytest turns warnings into errors.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'cgi' is deprecated", DeprecationWarning)
        from oslo_config import cfg

        from glance_features import healthcheck
except ImportError as exc:  # oslo.middleware: a Glance dependency, in test-requirements
    healthcheck = None  # type: ignore[assignment]
    MISSING = str(exc)
else:
    MISSING = ""

WAIT = 10.0  # a deadline for every wait, never a timing assertion


@pytest.fixture(autouse=True)
def _oslo_middleware() -> None:
    need(healthcheck is not None, f"oslo.middleware is not importable: {MISSING}")


class BlockingProbe:
    """A probe the test releases: counts calls, and blocks refreshes until told."""

    def __init__(self, reports: list[Report]) -> None:
        self.reports = reports
        self.calls = 0
        self.release = threading.Event()
        self.entered = threading.Event()

    def __call__(self, settings: Settings, timeout: float, refresh: bool) -> Report:
        self.calls += 1
        if refresh:
            self.entered.set()
            assert self.release.wait(WAIT), "test never released the probe"
        return self.reports[min(self.calls - 1, len(self.reports) - 1)]


def wait_for(condition: Any) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.01)


def test_first_probe_at_load_then_none_within_the_interval() -> None:
    report = testing.make_report({"qemu-img": "available"})
    probe = BlockingProbe([report])
    refresher = healthcheck.Refresher(Settings, interval=3600, timeout=5, probe=probe)
    assert refresher.load().report is report
    for _ in range(5):
        assert refresher.current().report is report
    assert probe.calls == 1


def test_a_stale_report_is_served_while_one_refresh_runs() -> None:
    old = testing.make_report({"qemu-img": "available"})
    new = testing.make_report({"qemu-img": "unavailable"})
    probe = BlockingProbe([old, new])
    refresher = healthcheck.Refresher(Settings, interval=0.001, timeout=5, probe=probe)
    refresher.load()
    time.sleep(0.01)  # older than the interval
    # The request that notices starts the refresh and answers at once, from the
    # old report: it returns while the refresh is still blocked in the probe.
    assert refresher.current().report is old
    assert probe.entered.wait(WAIT)
    for _ in range(5):  # more requests during the refresh: no second probe
        assert refresher.current().report is old
    assert probe.calls == 2
    probe.release.set()
    wait_for(lambda: refresher.current().report is new)


def test_a_failed_refresh_keeps_the_last_report_and_says_why() -> None:
    report = testing.make_report({"qemu-img": "available"})
    calls = []

    def probe(settings: Settings, timeout: float, refresh: bool) -> Report:
        calls.append(refresh)
        if refresh:
            raise RuntimeError("config went away")
        return report

    refresher = healthcheck.Refresher(Settings, interval=0.001, timeout=5, probe=probe)
    refresher.load()
    time.sleep(0.01)
    refresher.current()
    wait_for(lambda: refresher.current().error is not None)
    snapshot = refresher.current()
    assert snapshot.report is report
    assert "RuntimeError: config went away" in (snapshot.error or "")
    assert "last refresh failed: RuntimeError: config went away" in healthcheck.details(snapshot)


def backend(report: Report, **conf: Any) -> Any:
    with testing.override(report):
        return healthcheck.GlanceFeaturesHealthcheck(cfg.ConfigOpts(), conf)


def test_503_names_the_required_feature_and_its_status_only() -> None:
    report = testing.make_report(
        {"qemu-img": "unavailable", "xattr": "unavailable", "sendfile": "unknown"},
        required=["qemu-img", "sendfile"],
    )
    result = backend(report).healthcheck(9292)
    assert result.available is False
    # The reason every caller gets: names and statuses, nothing of the host.
    assert result.reason == "glance_features: qemu-img unavailable, sendfile unknown"
    # Why, and the fix, only in the details (oslo.middleware's detailed view).
    assert f"qemu-img is unavailable (required): {report['qemu-img'].reason}" in result.details
    assert f"to fix: {report['qemu-img'].remediation[0]}" in result.details
    lines = result.details.splitlines()
    assert "qemu-img: unavailable (required): " in result.details
    assert any(line.startswith("xattr: unavailable: ") for line in lines)


def test_200_when_only_unused_features_are_missing() -> None:
    report = testing.make_report({"qemu-img": "available", "xattr": "unavailable"})
    result = backend(report).healthcheck(9292)
    assert result.available is True
    assert result.reason == "OK"


def test_interval_from_the_paste_section() -> None:
    report = testing.make_report({"qemu-img": "available"})
    check = backend(report, glance_features_interval="7")
    assert check.refresher.interval == 7
    with pytest.raises(ValueError):
        backend(report, glance_features_interval="0")


def test_a_probe_that_cannot_run_does_not_take_glance_out() -> None:
    def probe(settings: Settings, timeout: float, refresh: bool) -> Report:
        raise RuntimeError("unreadable config")

    check = backend(testing.make_report({"qemu-img": "available"}))
    check.refresher = healthcheck.Refresher(Settings, interval=3600, timeout=5, probe=probe)
    check.refresher.load()
    result = check.healthcheck(9292)
    assert result.available is True
    assert result.reason == "glance_features: not checked"
    assert "last refresh failed: RuntimeError: unreadable config" in result.details
