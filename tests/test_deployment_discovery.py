"""How the service is run, read from what starts it: units, init scripts,
uWSGI inis, command lines. Real files in a temporary directory; the real
Debian host is tests/test_debian_glance.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from glance_features import deployment
from glance_features.model import FeatureResult, Status
from glance_features.redaction import redact
from glance_features.settings import service_config_files

DEBIAN_INIT = """#!/bin/sh
DESC="OpenStack Glance Service API (glance-api)"
PROJECT_NAME=glance
NAME=${PROJECT_NAME}-api
CONFIG_FILE=/etc/${PROJECT_NAME}/glance-api.conf
#UWSGI_PORT=9292
PATH=/sbin:/usr/sbin:/bin:/usr/bin
if [ -z "${DAEMON}" ] ; then
	DAEMON=/usr/bin/${NAME}
fi
"""


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Service definitions where discovery looks, and nothing else."""
    for name in ("UNIT_DIRS", "INIT_SCRIPTS", "UWSGI_INIS", "APACHE_DIRS"):
        monkeypatch.setattr(deployment, name, ())
    monkeypatch.setattr(deployment, "_process", lambda: None)
    deployment.discover.cache_clear()
    yield tmp_path
    deployment.discover.cache_clear()


def script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_debian_init_script_names_daemon_account_path_and_config(
    host: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = script(host / "usr/bin/glance-api", "#! /usr/bin/python3\nimport sys\n")
    init = script(host / "init.d/glance-api", DEBIAN_INIT.replace("/usr/bin/${NAME}", str(daemon)))
    monkeypatch.setattr(deployment, "INIT_SCRIPTS", (str(init),))
    found = deployment.discover(None, None, True)
    assert found.served_by == "eventlet"
    assert found.served_by_from == f"init script {init}"
    # DAEMON is set inside an `if`: the script's default, /usr/bin/${NAME}, is not it.
    assert found.command == ("/usr/bin/glance-api", "--config-file=/etc/glance/glance-api.conf")
    assert found.user == "glance"
    assert found.path == "/sbin:/usr/sbin:/bin:/usr/bin"
    assert found.config_args() == (["/etc/glance/glance-api.conf"], None)
    # The standalone server reads its --config-file, never the import file.
    assert service_config_files(found)[:1] == ["/etc/glance/glance-api.conf"]


def test_a_unit_that_runs_uwsgi_keeps_its_environment_and_account(
    host: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ini = host / "glance-uwsgi.ini"
    ini.write_text(
        "[uwsgi]\nhome = /opt/glance\nprocesses = 4\n"
        "env = EVENTLET_NO_GREENDNS=yes\nenv = UNRELATED=1\n"
    )
    units = host / "systemd"
    (units / "glance-api.service").parent.mkdir(parents=True)
    (units / "glance-api.service").write_text(
        "[Service]\nUser=glance\n"
        'Environment="OS_GLANCE_CONFIG_DIR=/etc/glance" "BROKEN=\n'
        "Environment=OS_GLANCE_CONFIG_DIR=/srv/glance\n"
        f"ExecStart=/usr/bin/uwsgi --ini {ini}\n"
    )
    monkeypatch.setattr(deployment, "UNIT_DIRS", (str(units),))
    found = deployment.discover(None, None, True)
    assert found.served_by == "uwsgi"
    assert found.python == "/opt/glance/bin/python3"
    assert found.workers == 4
    assert found.user == "glance"
    # The unbalanced line is skipped as systemd skips it; the later one wins.
    assert found.environ["OS_GLANCE_CONFIG_DIR"] == "/srv/glance"
    assert found.environ["EVENTLET_NO_GREENDNS"] == "yes"
    assert "UNRELATED" not in found.environ and "BROKEN" not in found.environ


def test_debian_uwsgi_ini_with_the_python3_plugin_runs_the_distribution_python(
    host: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian's glance-api-uwsgi.ini has ``plugins = python3`` and no home:
    the plugin embeds /usr/bin/python3's libpython, never the probe's own
    interpreter (a virtualenv over it may see other packages)."""
    ini = host / "glance-api-uwsgi.ini"
    ini.write_text("[uwsgi]\nplugins = python3\nprocesses = 8\nuid = glance\n")
    monkeypatch.setattr(deployment, "UWSGI_INIS", (str(ini),))
    found = deployment.discover(None, None, True)
    assert found.served_by == "uwsgi"
    expected = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else None
    assert found.python == expected
    if expected:
        assert "python3 plugin" in found.python_from
    # A home still wins over the plugin.
    ini.write_text("[uwsgi]\nplugins = python3\nhome = /opt/glance\n")
    deployment.discover.cache_clear()
    assert deployment.discover(None, None, True).python == "/opt/glance/bin/python3"


def test_a_relative_interpreter_names_nothing(host: Path) -> None:
    found = deployment._absolute_python(
        deployment._from_command("python3 /usr/bin/glance-api", "running process 1")
        or deployment.Deployment()
    )
    assert found.served_by == "eventlet"
    assert found.python is None


def test_flags_win_over_the_host(host: Path) -> None:
    found = deployment.discover("gunicorn", "/usr/bin/python3", True)
    assert (found.served_by, found.served_by_from) == ("gunicorn", "--served-by")
    assert (found.python, found.python_from) == ("/usr/bin/python3", "--python")


def test_a_cut_message_keeps_no_prefix_of_a_secret() -> None:
    secret = "Sup3rSecretKey-4f1c"
    result = FeatureResult(
        "x",
        Status.UNAVAILABLE,
        f"the endpoint said: invalid key {secret[:7]}",  # cut at 300 characters, say
        {"port": 4242, "key": secret},
    )
    masked = redact(result, frozenset({secret, "4242"}))
    assert secret[:7] not in masked.reason and masked.reason.endswith("***")
    assert masked.details["key"] == "***" and masked.details["port"] == "***"


def test_apache_wsgi_daemon_process_names_home_and_account(
    host: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sites = host / "sites-enabled"
    sites.mkdir()
    (sites / "glance-api.conf").write_text(
        "<VirtualHost *:9292>\n"
        "  WSGIDaemonProcess glance-api processes=3 threads=1 user=glance "
        "python-home=/opt/glance display-name=%{GROUP}\n"
        "  WSGIScriptAlias / /opt/glance/bin/glance-wsgi-api\n</VirtualHost>\n"
    )
    (sites / "other.conf").write_text("WSGIDaemonProcess keystone user=keystone\n")
    monkeypatch.setattr(deployment, "APACHE_DIRS", (str(sites),))
    found = deployment.discover(None, None, True)
    assert found.served_by == "mod_wsgi"
    assert (found.python, found.user, found.workers) == ("/opt/glance/bin/python3", "glance", 3)


def test_gunicorn_and_uwsgi_command_lines(host: Path) -> None:
    gunicorn = deployment._from_command(
        "/opt/glance/bin/python3 -m gunicorn -w 4 glance.wsgi.api:application", "unit"
    )
    assert gunicorn is not None
    assert (gunicorn.served_by, gunicorn.python) == ("gunicorn", "/opt/glance/bin/python3")
    uwsgi = deployment._from_command("/usr/bin/uwsgi_python3 --http-socket :9292", "unit")
    assert uwsgi is not None and uwsgi.served_by == "uwsgi"
    # Glance's own servers only: a command line that merely names a glance
    # config file is not one.
    assert deployment._serves_glance(["/usr/bin/glance-api", "--config-file", "x"])
    assert not deployment._serves_glance(["/usr/bin/vim", "/etc/glance/glance-api.conf"])
    assert deployment._serves_glance(["uwsgi", "--module", "glance.wsgi.api:application"])
