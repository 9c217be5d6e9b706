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


class HeadStart:
    """Starts children that outlast the rest (registry.HEAD_START); ``calls``
    says whether it then tells the runner so."""

    name = "starts-first"
    summary = "starts first"

    def __init__(self, other_started: threading.Event, calls: bool) -> None:
        self.other_started = other_started
        self.calls = calls
        self.runs = 0
        self.seen_before_launch: bool | None = None
        self.seen_after: bool | None = None

    def probe(self, context: ProbeContext) -> FeatureResult:
        self.runs += 1
        self.seen_before_launch = self.other_started.wait(0.5)
        if self.calls:
            context.launched()
        self.seen_after = self.other_started.wait(10)
        return FeatureResult(self.name, Status.AVAILABLE, "started its children")


class NotesItsStart:
    name = "starts-after"
    summary = "notes when it starts"

    def __init__(self, started: threading.Event) -> None:
        self.started = started

    def probe(self, context: ProbeContext) -> FeatureResult:
        self.started.set()
        return FeatureResult(self.name, Status.AVAILABLE, "ran")


def _as_builtin(monkeypatch: pytest.MonkeyPatch, detector: object, name: str) -> None:
    from glance_features import registry

    monkeypatch.setitem(registry.BUILTIN, name, f"tests:{name}")
    monkeypatch.setitem(registry._builtin_instances, name, detector)
    monkeypatch.setattr(registry, "HEAD_START", registry.HEAD_START | {"starts-first"})


@pytest.mark.parametrize("calls", [True, False])
def test_a_built_in_with_a_head_start_runs_alone_until_its_children_started(
    monkeypatch: pytest.MonkeyPatch, calls: bool
) -> None:
    """The others start once it calls launched(), or after HEAD_START when it
    never does; the report lists every feature in the registry's order."""
    from glance_features import runner

    started = threading.Event()
    first = HeadStart(started, calls)
    _as_builtin(monkeypatch, NotesItsStart(started), "starts-after")
    _as_builtin(monkeypatch, first, "starts-first")
    monkeypatch.setattr(runner, "HEAD_START", 30.0 if calls else 1.0)
    report = glance_features.probe(features=["starts-after", "starts-first"], timeout=20)
    assert first.seen_before_launch is False
    assert first.seen_after is True
    assert list(report) == ["starts-after", "starts-first"]
    assert all(r.status is Status.AVAILABLE for r in report.values())


def test_a_plugin_gets_no_head_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin loads in its own thread, under the deadline: the others never
    wait for it, whatever it says."""
    from glance_features import runner

    started = threading.Event()
    first = HeadStart(started, calls=False)
    _as_builtin(monkeypatch, NotesItsStart(started), "starts-after")
    glance_features.register(first)
    monkeypatch.setattr(runner, "HEAD_START", 30.0)
    try:
        report = glance_features.probe(features=["starts-after", "starts-first"], timeout=20)
    finally:
        glance_features.unregister("starts-first")
    assert first.seen_before_launch is True
    assert report["starts-first"].status is Status.AVAILABLE


def test_without_a_list_the_head_start_runs_once_and_the_report_keeps_the_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every detector, the entry points read after the head start: the
    detector that had it is probed once, and listed where the registry
    lists it."""
    from glance_features import registry, runner

    started = threading.Event()
    first = HeadStart(started, calls=True)
    _as_builtin(monkeypatch, first, "starts-first")
    _as_builtin(monkeypatch, NotesItsStart(started), "starts-after")
    monkeypatch.setattr(runner, "HEAD_START", 30.0)
    report = glance_features.probe(timeout=20)
    assert first.runs == 1
    assert first.seen_before_launch is False and first.seen_after is True
    assert list(report) == [p.name for p in registry.plugins()]
