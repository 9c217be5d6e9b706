from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import validate

import glance_features
from glance_features import FeatureResult, ProbeContext, Settings, Status


class Counting:
    summary = "counts its runs"

    def __init__(self, name: str, delay: float = 0.0) -> None:
        self.name = name
        self.delay = delay
        self.runs = 0
        self.lock = threading.Lock()

    def probe(self, context: ProbeContext) -> FeatureResult:
        with self.lock:
            self.runs += 1
        time.sleep(self.delay)
        return FeatureResult(self.name, Status.AVAILABLE, f"run {self.runs}")


class Raises:
    name = "raises"
    summary = "raises"

    def probe(self, context: ProbeContext) -> FeatureResult:
        raise OSError(5, "disk on fire")


class Sleeps:
    name = "sleeps"
    summary = "sleeps far past any deadline"

    def probe(self, context: ProbeContext) -> FeatureResult:
        time.sleep(3600)
        raise AssertionError("unreachable")


class ReturnsJunk:
    name = "junk"
    summary = "returns something else"

    def probe(self, context: ProbeContext) -> FeatureResult:
        return "fine"  # type: ignore[return-value]


def test_raising_detector_is_unknown_with_the_message() -> None:
    glance_features.register(Raises())
    report = glance_features.probe(features=["raises"])
    assert report["raises"].status is Status.UNKNOWN
    assert report["raises"].reason == "probe failed: OSError: [Errno 5] disk on fire"
    validate(report)


def test_junk_result_is_unknown() -> None:
    glance_features.register(ReturnsJunk())
    report = glance_features.probe(features=["junk"])
    assert report["junk"].status is Status.UNKNOWN
    assert "returned str, not a FeatureResult" in report["junk"].reason


def test_overrunning_detector_times_out_and_probe_returns_on_time() -> None:
    glance_features.register(Sleeps())
    fast = Counting("fast")
    glance_features.register(fast)
    start = time.monotonic()
    report = glance_features.probe(features=["sleeps", "fast"], timeout=0.5)
    elapsed = time.monotonic() - start
    # A bound, not a benchmark: the probe must not wait for the sleeper.
    assert elapsed < 5
    assert report["sleeps"].status is Status.UNKNOWN
    assert report["sleeps"].reason == "timed out after 0.5 s"
    assert report["fast"].status is Status.AVAILABLE
    assert list(report) == ["fast", "sleeps"] or list(report) == ["sleeps", "fast"]
    validate(report)


def test_fifty_threads_run_each_detector_once() -> None:
    detectors = [Counting(f"count-{i}", delay=0.2) for i in range(3)]
    for d in detectors:
        glance_features.register(d)
    names = [d.name for d in detectors]
    barrier = threading.Barrier(50)
    reports: list[glance_features.Report] = []

    def call() -> None:
        barrier.wait()
        reports.append(glance_features.probe(features=names))

    threads = [threading.Thread(target=call) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reports) == 50
    assert [d.runs for d in detectors] == [1, 1, 1]
    assert all(r is reports[0] for r in reports)


def test_cache_is_keyed_by_arguments_and_refresh_probes_again() -> None:
    counter = Counting("count")
    glance_features.register(counter)
    first = glance_features.probe(features=["count"])
    assert glance_features.probe(features=["count"]) is first
    assert counter.runs == 1
    deep = glance_features.probe(features=["count"], deep=True)
    assert deep is not first and counter.runs == 2
    other = glance_features.probe(Settings(image_cache_dir="/x"), features=["count"])
    assert other is not first and counter.runs == 3
    again = glance_features.probe(features=["count"], refresh=True)
    assert again is not first and counter.runs == 4
    assert glance_features.probe(features=["count"]) is again


def test_required_comes_from_settings() -> None:
    glance_features.register(Counting("xattr-like"))
    settings = Settings(image_cache_driver="xattr", image_cache_dir="/nonexistent/cache")
    report = glance_features.probe(settings, features=["xattr"])
    assert report["xattr"].required
    assert report["xattr"].details["required_by"] == ("[DEFAULT] image_cache_driver = xattr",)
    report = glance_features.probe(Settings(), features=["xattr"])
    assert not report["xattr"].required


def test_unknown_feature_and_bad_timeout_raise() -> None:
    with pytest.raises(glance_features.UnknownFeature, match=r"unknown feature 'nope'.*qemu-img"):
        glance_features.probe(features=["nope"])
    for bad in (0, -1, float("nan"), float("inf"), "5", 3601):
        with pytest.raises(ValueError, match=r"number of seconds in \(0, 3600\]"):
            glance_features.probe(features=["sendfile"], timeout=bad)  # type: ignore[arg-type]


def test_a_single_feature_name_is_one_feature() -> None:
    report = glance_features.probe(features="sendfile")
    assert list(report) == ["sendfile"]


def test_a_required_feature_with_no_thread_to_probe_it_stays_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A detector that never ran (no thread could be started) is unknown, and
    the configuration still requires it: the probe fails, Glance is refused."""
    real = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        if thread.name == "glance-features:xattr":
            raise RuntimeError("can't start new thread")
        real(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    settings = Settings(image_cache_driver="xattr", image_cache_dir=str(tmp_path))
    report = glance_features.probe(settings, features=["xattr"], refresh=True)
    xattr = report["xattr"]
    assert xattr.status is Status.UNKNOWN and "no thread could be started" in xattr.reason
    assert xattr.required and report.code == 2
