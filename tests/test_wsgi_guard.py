"""The start-up guard's decisions, with a stand-in for Glance's wsgi_app module
(Glance is not installed in the development venv; tests/functional runs the
real one under uWSGI and gunicorn)."""

from __future__ import annotations

import importlib
import logging
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from glance_features import testing
from glance_features.settings import Settings

APP = object()


@pytest.fixture
def wsgi(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """glance_features.wsgi imported over a fake glance.common.wsgi_app whose
    init_app() returns APP, with every feature available (so the import succeeds)."""
    fake = types.ModuleType("glance.common.wsgi_app")
    fake.init_app = lambda: APP  # type: ignore[attr-defined]
    for name in ("glance", "glance.common"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "glance.common.wsgi_app", fake)
    monkeypatch.delitem(sys.modules, "glance_features.wsgi", raising=False)
    with testing.override():  # every feature available
        module = importlib.import_module("glance_features.wsgi")
    yield module
    sys.modules.pop("glance_features.wsgi", None)


def test_application_is_glances(wsgi: Any) -> None:
    assert wsgi.application is APP


def test_refuses_with_one_critical_line(wsgi: Any, caplog: pytest.LogCaptureFixture) -> None:
    missing = testing.override(qemu_img="unavailable", required=["qemu-img"])
    with missing, pytest.raises(wsgi.StartupRefused) as info:
        wsgi.guard(Settings(image_import_plugins=("image_conversion",)))
    assert info.value.code == wsgi.EXIT_OTHER  # neither uWSGI nor gunicorn here
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1
    message = critical[0].getMessage()
    assert message.startswith("glance-features: refusing to start Glance: qemu-img is unavailable")
    assert critical[0].exc_info is None


def test_starts_when_nothing_required_is_missing(wsgi: Any) -> None:
    with testing.override(qemu_img="unavailable"):  # and not required
        report = wsgi.guard(Settings())
    assert report is not None and not report.available("qemu-img")


def test_a_failing_check_does_not_keep_glance_down(
    wsgi: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from glance_features import service

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("cannot read the config")

    monkeypatch.setattr(service, "check_startup", broken)
    assert wsgi.guard(Settings()) is None
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        "glance-features: start-up check failed, starting unchecked: "
        "RuntimeError: cannot read the config"
    ]


def test_exit_status_follows_the_server(wsgi: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gunicorn.arbiter", types.ModuleType("gunicorn.arbiter"))
    assert wsgi.exit_status() == wsgi.EXIT_GUNICORN
    monkeypatch.setitem(sys.modules, "uwsgi", types.ModuleType("uwsgi"))
    assert wsgi.exit_status() == wsgi.EXIT_UWSGI
