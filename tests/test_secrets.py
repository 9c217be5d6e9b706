"""Secrets stay in the config: never on a child's command line or in its
environment, never in a report, a log line or a metric."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import need, run_cli

import glance_features
from glance_features import registry, runner
from glance_features.detector import ProbeContext, result
from glance_features.model import FeatureResult, Status
from glance_features.service import check_startup
from glance_features.settings import Settings

SECRETS = {
    "s3": "S3-SECRET-KEY-4f1c2a9e",
    "s3_access": "AKIASECRETACCESS7731",
    "swift": "SWIFT-KEY-91ab33c0",
    "cinder": "CINDER-PASSWORD-5d2e",
    "vmware": "VMWARE-PASSWORD-0c7f",
}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def write_config(path: Path) -> Path:
    port = closed_port()
    path.write_text(
        f"""[DEFAULT]
enabled_backends = s3a:s3, sw:swift, cin:cinder, vm:vmware

[glance_store]
default_backend = s3a

[s3a]
s3_store_host = http://127.0.0.1:{port}
s3_store_access_key = {SECRETS["s3_access"]}
s3_store_secret_key = {SECRETS["s3"]}
s3_store_bucket = images

[sw]
swift_store_auth_address = http://127.0.0.1:{port}/v3
swift_store_user = glance
swift_store_key = {SECRETS["swift"]}

[cin]
cinder_store_user_name = glance
cinder_store_password = {SECRETS["cinder"]}

[vm]
vmware_server_host = 127.0.0.1
vmware_server_username = glance
vmware_server_password = {SECRETS["vmware"]}
vmware_datastores = ds1
"""
    )
    return path


class ProcessWatcher:
    """Reads every process's command line and environment until stopped."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ProcessWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _watch(self) -> None:
        me = str(os.getpid())
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid == me:
                    continue
                for name in ("cmdline", "environ"):
                    try:
                        with open(f"/proc/{pid}/{name}", "rb") as f:
                            self.seen.add(f.read().decode("utf-8", "replace"))
                    except OSError:
                        continue
                    self.reads += 1


def leaks(text: str) -> list[str]:
    return [name for name, secret in SECRETS.items() if secret in text]


def test_deep_probe_keeps_store_credentials_off_every_command_line(tmp_path: Path) -> None:
    """--deep with s3, swift, cinder and vmware credentials: boto3's S3 check
    gets its keys on stdin; no process anywhere shows any of them."""
    need(sys.platform.startswith("linux"), "reads /proc")
    config = write_config(tmp_path / "glance-api.conf")
    args = ("--config-file", str(config), "--deep", "--python", sys.executable)
    outputs = []
    with ProcessWatcher() as watcher:
        for fmt in ("json", "text", "prometheus"):
            proc = run_cli(*args, "--format", fmt, timeout=120)
            assert proc.returncode in (0, 1, 2), proc.stderr
            outputs += [proc.stdout, proc.stderr]
    assert watcher.reads > 100  # the watcher really looked while the probes ran
    assert not [leaks(seen) for seen in watcher.seen if leaks(seen)]
    assert not [leaks(out) for out in outputs if leaks(out)]
    # The S3 check really ran as far as the endpoint, with the keys.
    assert '"reached": false' in outputs[0]


class EchoesSecrets:
    """A detector that quotes what it read, as an error message from a
    library might: the report must still not show it."""

    name = "echoes-secrets"
    summary = "quotes option values"

    def probe(self, context: ProbeContext) -> FeatureResult:
        values = context.settings.raw("s3a")
        key = str(values.get("s3_store_secret_key"))
        database = str(context.settings.raw("database").get("connection"))
        return result(
            self.name,
            Status.UNAVAILABLE,
            f"the endpoint refused key {key} ({database})",
            {"tried": [key], "nested": {"url": database}},
            [f"rotate {key}"],
        )


@pytest.fixture
def echoing() -> Iterator[None]:
    registry.register(EchoesSecrets())
    try:
        yield
    finally:
        registry.unregister("echoes-secrets")
        runner.clear_cache()


def test_values_of_declared_secret_options_are_masked_everywhere(
    tmp_path: Path, echoing: None
) -> None:
    settings = Settings.from_config_files([write_config(tmp_path / "glance-api.conf")])
    report = glance_features.probe(settings, features=["echoes-secrets"], refresh=True)
    text = report.to_json()
    assert not leaks(text)
    found = report["echoes-secrets"]
    assert "***" in found.reason
    assert found.details["tried"] == ("***",)
    assert found.remediation == ("rotate ***",)


def test_redaction_follows_the_running_service_declarations(
    tmp_path: Path, echoing: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Inside Glance, every option its ConfigOpts registers secret=True is
    masked, also one no catalog names ([database] connection, as oslo.db
    declares it), in the report and in check_startup's log lines."""
    from oslo_config import cfg

    url = "postgresql://glance:DB-PASSWORD-2b9d@127.0.0.1/glance"
    config = write_config(tmp_path / "glance-api.conf")
    config.write_text(config.read_text() + f"\n[database]\nconnection = {url}\n")
    conf = cfg.ConfigOpts()
    conf.register_opt(cfg.StrOpt("connection", secret=True), group="database")
    conf(args=["--config-file", str(config)], project="glance", default_config_files=[])
    with caplog.at_level(logging.INFO, logger="glance_features"):
        report = check_startup(
            conf, features=["echoes-secrets"], raise_on_failure=False, verbose=True
        )
    assert "DB-PASSWORD-2b9d" not in report.to_json()
    assert "DB-PASSWORD-2b9d" not in caplog.text
    assert "echoes-secrets" in caplog.text  # the line was logged, masked
    # Without the declaration the same value would be shown: redaction
    # follows declarations, not guesses.
    plain = glance_features.probe(
        Settings.from_config_files([config]), features=["echoes-secrets"], refresh=True
    )
    assert "DB-PASSWORD-2b9d" in plain["echoes-secrets"].reason


def test_catalog_secrets_are_glance_stores_own_declarations() -> None:
    """Every option a store detector declares secret is secret in
    glance_store, and every secret option of the drivers it reads is declared."""
    from conftest import SOURCE_ROOT

    python = os.environ.get("GLANCE_VENV") or os.path.join(SOURCE_ROOT, ".venv-glance")
    python = os.path.join(python, "bin", "python")
    need(os.access(python, os.X_OK), "needs GLANCE_VENV (tests/run.sh builds it)")
    import json
    import subprocess

    listing = (
        "import json\n"
        "from glance_store.backend import _list_opts\n"
        "print(json.dumps(sorted({o.name for _g, opts in _list_opts() for o in opts "
        "if o.secret})))\n"
    )
    proc = subprocess.run(
        [python, "-I"], input=listing, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    declared = set(json.loads(proc.stdout))
    ours = registry.declared_secrets()
    # A password glance_store registers without secret=True (store_cinder.py says so).
    assert ours - declared == {"cinder_store_password"}
    drivers = ("s3_store_", "swift_store_", "cinder_store_", "vmware_server_", "rbd_store_")
    assert {n for n in declared if n.startswith(drivers)} <= ours
