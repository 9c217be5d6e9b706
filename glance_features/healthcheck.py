"""An oslo.middleware health-check backend: ``/healthcheck`` says 503 when a
feature Glance's configuration requires does not work on this host.

Glance's shipped ``glance-api-paste.ini`` already serves ``/healthcheck``;
one word added to its backends enables this one::

    [app:healthcheck]
    paste.app_factory = oslo_middleware:Healthcheck.app_factory
    backends = disable_by_file,glance_features
    disable_by_file_path = /etc/glance/healthcheck_disable
    # optional: re-probe at most every 60 s (the default)
    glance_features_interval = 60

It probes with the service's own settings (``Settings.from_oslo_config`` of
the ``ConfigOpts`` oslo.middleware hands it, Glance's ``cfg.CONF``). The first
probe runs while the application loads; after that a request only reads the
last report and, when that is older than the interval, starts one refresh in
a background thread: no request ever waits for a probe.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable

from oslo_config import cfg
from oslo_middleware.healthcheck import pluginbase

from glance_features import runner
from glance_features.model import Report, Status, texts_of
from glance_features.settings import Settings

LOG = logging.getLogger("glance_features")

NAME = "glance_features"
OPTS = [
    cfg.IntOpt(
        "glance_features_interval",
        default=60,
        min=1,
        help="Re-probe Glance's features at most every this many seconds; requests "
        "in between answer from the last report.",
    ),
    cfg.FloatOpt(
        "glance_features_timeout",
        default=runner.DEFAULT_TIMEOUT,
        min=0.1,
        max=3600,
        help="Bound, in seconds, on one probe of all features.",
    ),
]


class Snapshot:
    """The last report, when it was made, and why the last refresh failed (if it did)."""

    def __init__(self, report: Report | None, made_at: float, error: str | None) -> None:
        self.report = report
        self.made_at = made_at
        self.error = error


class Refresher:
    """One report per process, refreshed off the request path.

    ``current()`` returns at once. When the report is older than ``interval``
    and no refresh runs in this process, it starts one in a daemon thread.
    A worker forked while the parent refreshed gets no thread of that run, so
    the "running" mark is per process id, and the lock is renewed after fork.
    """

    def __init__(
        self,
        make_settings: Callable[[], Settings],
        interval: float,
        timeout: float,
        probe: Callable[..., Report] = runner.probe,
    ) -> None:
        self._make_settings = make_settings
        self._probe = probe
        self.interval = interval
        self.timeout = timeout
        self._lock = threading.Lock()
        self._snapshot = Snapshot(None, -float("inf"), None)
        self._running_in: int | None = None
        _REFRESHERS.add(self)

    def load(self) -> Snapshot:
        """Probe now, in the caller's thread: for application load, not requests."""
        with self._lock:
            self._running_in = os.getpid()
        self._refresh(refresh=False)
        return self._snapshot

    def current(self) -> Snapshot:
        now = time.monotonic()
        with self._lock:
            snapshot = self._snapshot
            pid = os.getpid()
            if now - snapshot.made_at >= self.interval and self._running_in != pid:
                self._running_in = pid
                threading.Thread(
                    target=self._refresh, name="glance-features:healthcheck", daemon=True
                ).start()
        return snapshot

    def _refresh(self, refresh: bool = True) -> None:
        report, error = None, None
        try:
            report = self._probe(self._make_settings(), timeout=self.timeout, refresh=refresh)
        except Exception as exc:  # a config we cannot read: say so, keep the last report
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            before = self._snapshot
            kept = report if report is not None else before.report
            self._snapshot = Snapshot(kept, time.monotonic(), error)
            self._running_in = None
        _log_change(before, self._snapshot)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._running_in = None


_REFRESHERS: weakref.WeakSet[Refresher] = weakref.WeakSet()


def _renew_after_fork() -> None:
    for refresher in list(_REFRESHERS):
        refresher._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_after_fork)


def failures(snapshot: Snapshot) -> list[str]:
    """One sentence per reason the service is unhealthy; empty when it is healthy."""
    report = snapshot.report
    if report is None:
        return []  # not checked: see healthcheck(); our failure is not Glance's
    found = []
    for name, result in report.items():
        if result.required and not result.available:
            because = "; ".join(texts_of(result.details.get("required_by"))) or "required"
            line = f"{name} is {result.status.value} ({because}): {result.reason}"
            if result.remediation:
                line += f"; to fix: {result.remediation[0]}"
            found.append(line)
    return found


def details(snapshot: Snapshot, now: float | None = None) -> str:
    """Why, and every feature, one line each, for the detailed view."""
    age = (now if now is not None else time.monotonic()) - snapshot.made_at
    lines = failures(snapshot)
    report = snapshot.report
    if report is not None:
        lines.append(f"report generated at {report.generated_at}, {age:.0f} s ago")
        for name, result in report.items():
            required = " (required)" if result.required else ""
            lines.append(f"{name}: {result.status.value}{required}: {result.reason}")
    if snapshot.error:
        lines.append(f"last refresh failed: {snapshot.error}")
    return "\n".join(lines)


def _log_change(before: Snapshot, after: Snapshot) -> None:
    # Quiet by default: one line when the verdict changes, nothing per request.
    if after.error and after.error != before.error:
        LOG.error("glance-features: /healthcheck could not probe: %s", after.error)
    was, now = set(failures(before)), set(failures(after))
    if now == was:
        return
    if now:
        LOG.warning("glance-features: /healthcheck reports unavailable: %s", "; ".join(sorted(now)))
    else:
        LOG.info("glance-features: /healthcheck reports every required feature available")


class GlanceFeaturesHealthcheck(pluginbase.HealthcheckBaseExtension):
    """The ``glance_features`` backend of oslo.middleware's Healthcheck."""

    def __init__(self, oslo_conf: cfg.ConfigOpts, conf: dict[str, object]) -> None:
        super().__init__(oslo_conf, conf)
        self.oslo_conf.register_opts(OPTS, group="healthcheck")
        self.refresher = Refresher(
            lambda: Settings.from_oslo_config(self.oslo_conf),
            interval=self._conf_get("glance_features_interval"),
            timeout=self._conf_get("glance_features_timeout"),
        )
        self.refresher.load()

    def healthcheck(self, server_port: int) -> pluginbase.HealthcheckResult:
        snapshot = self.refresher.current()
        return pluginbase.HealthcheckResult(
            available=not failures(snapshot),
            reason=terse_reason(snapshot),
            details=details(snapshot),
        )


def terse_reason(snapshot: Snapshot) -> str:
    """What an unauthenticated caller may learn: which required features fail
    and their status, nothing more. oslo.middleware answers every request
    with the reasons, and keeps details for ``detailed = True``: paths,
    accounts, versions, errno texts and fixes stay in the details and the
    service log."""
    report = snapshot.report
    if report is None:
        # The probe itself failed (logged): a check that cannot run must not
        # take a working Glance out of service, as the start-up guard does not.
        return "glance_features: not checked"
    failing = [
        f"{name} {result.status.value}"
        for name, result in report.items()
        if result.required and not result.available
    ]
    if failing:
        return "glance_features: " + ", ".join(failing)
    degraded = [n for n, r in report.items() if r.required and r.status is Status.DEGRADED]
    if degraded:
        return "glance_features: OK (degraded: " + ", ".join(degraded) + ")"
    return "OK"
