"""Fixtures for tests that stand up a real Glance (see glance_deploy.py).

They are slow (seconds each) and need a prepared virtualenv, so they run only
when asked for: ``pytest -m functional`` or ``GLANCE_FUNCTIONAL=1``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import need

from .glance_deploy import GlanceUnavailable, glance_venv
from .postgres import POSTGRES_ENV, PostgreSQLUnavailable, postgresql_server

SERVICE_USER = "glance"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "functional: stands up a real Glance under uWSGI (run with -m functional)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Opt-in on a laptop; CI (CI=true) always runs them: a skip there would hide
    # exactly the end-to-end proof they are for.
    wanted = "functional" in (config.option.markexpr or "")
    in_ci = os.environ.get("CI", "").lower() == "true"
    if wanted or in_ci or os.environ.get("GLANCE_FUNCTIONAL") == "1":
        return
    skip = pytest.mark.skip(reason="functional: run with -m functional or GLANCE_FUNCTIONAL=1")
    for item in items:
        if item.get_closest_marker("functional"):
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def glance_database() -> Iterator[None]:
    """Glance's databases on a PostgreSQL server of the session's own (see
    postgres.py for why not SQLite). Where there is none, outside CI, the
    deployments fall back to SQLite, whose imports now and then fail with
    "database is locked"."""
    with contextlib.ExitStack() as stack:
        try:
            _need_psycopg2()
            server = stack.enter_context(postgresql_server())
        except PostgreSQLUnavailable as err:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"CI must provide PostgreSQL for Glance: {err}")
            yield
            return
        os.environ[POSTGRES_ENV] = str(server.socket_dir)
        try:
            yield
        finally:
            del os.environ[POSTGRES_ENV]


def _need_psycopg2() -> None:
    try:
        python = glance_venv() / "bin" / "python"
    except GlanceUnavailable as err:
        raise PostgreSQLUnavailable(str(err)) from None
    check = subprocess.run([python, "-c", "import psycopg2"], capture_output=True, timeout=60)
    if check.returncode != 0:
        raise PostgreSQLUnavailable(f"{python} has no psycopg2 (pip install psycopg2-binary)")


@pytest.fixture(scope="session")
def venv() -> Path:
    try:
        return glance_venv()
    except GlanceUnavailable as err:
        need(False, str(err))
        raise  # need() skipped or failed; this only satisfies the type checker


@pytest.fixture
def qemu_img() -> str:
    found = shutil.which("qemu-img")
    need(found is not None, "qemu-img is not installed (apt-get install qemu-utils)")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def service_user() -> str:
    """The unprivileged user Glance runs as, created when running as root
    (`useradd --system --no-create-home glance`, as .ci/run must do too)."""
    try:
        pwd.getpwnam(SERVICE_USER)
        return SERVICE_USER
    except KeyError:
        pass
    need(os.geteuid() == 0, f"no {SERVICE_USER!r} user, and only root can create one")
    subprocess.run(
        ["useradd", "--system", "--no-create-home", SERVICE_USER],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return SERVICE_USER


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A work dir another user can reach: pytest's tmp_path sits under a 0700 directory."""
    path = Path(tempfile.mkdtemp(prefix="glance-functional-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
