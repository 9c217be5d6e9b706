"""A detector from outside the package is one module and an entry point.

Installed beside glance-features (a distribution on the import path with an
entry point in the ``glance_features.detectors`` group), it reaches the
report, the command line, ``explain``, the census, the test doubles and the
docs' feature tables with no change to glance-features itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PLUGIN = """
from glance_features.catalog import Entry, RequiredWhen
from glance_features.detector import DetectorBase
from glance_features.model import FeatureResult, Status
from glance_features.options import Option

TOGGLE = Option("thing", "enabled", "bool", default=False)


class ThingDetector(DetectorBase):
    name = "thing"
    summary = "the thing store driver"
    catalog = Entry(
        purpose="Thing keeps images in a thing.",
        options=(TOGGLE,),
        required_when=(RequiredWhen("[thing] enabled = true", lambda s: bool(s.get(TOGGLE))),),
        python=("thinglib>=1.0",),
        packages={"debian": "python3-thinglib"},
        secrets=("thing_password",),
    )

    def probe(self, context):
        password = context.settings.raw("thing").get("thing_password")
        return FeatureResult(
            self.name, Status.UNAVAILABLE, f"thinglib is not installed (password {password})"
        )
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("outside")
    (root / "thing_detector.py").write_text(PLUGIN)
    info = root / "thing_detector-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: thing-detector\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[glance_features.detectors]\nthing = thing_detector:ThingDetector\n"
    )
    conf = root / "glance-api.conf"
    conf.write_text("[thing]\nenabled = true\nthing_password = s3cr3t-thing\n")
    return root


def run(site: Path, *args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{site}"}
    argv = [sys.executable, "-c", code] if code else [sys.executable, "-m", "glance_features"]
    return subprocess.run(
        [*argv, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=site,
        stdin=subprocess.DEVNULL,
    )


def test_the_report_and_the_command_line(site: Path) -> None:
    conf = str(site / "glance-api.conf")
    proc = run(site, "--config-file", conf, "--format", "json")
    report = json.loads(proc.stdout)
    thing = report["features"]["thing"]
    assert thing["status"] == "unavailable" and thing["required"] is True
    assert thing["details"]["required_by"] == ["[thing] enabled = true"]
    # Its catalog's secret is masked like a built-in's.
    assert "s3cr3t-thing" not in proc.stdout and "password ***" in thing["reason"]
    assert proc.returncode == report["code"] != 0
    text = run(site, "--config-file", conf, "--feature", "thing").stdout
    assert "thing" in text and "s3cr3t-thing" not in text


def test_explain_and_the_census(site: Path) -> None:
    explained = json.loads(run(site, "explain", "thing", "--format", "json").stdout)
    assert explained["purpose"] == "Thing keeps images in a thing."
    assert explained["enabled_by"] == ["[thing] enabled = true"]
    assert explained["reads"] == ["[thing] enabled"]
    assert explained["python"] == ["thinglib>=1.0"]
    conf = str(site / "glance-api.conf")
    census = json.loads(run(site, "census", "--config-file", conf, "--format", "json").stdout)
    assert census["features"]["thing"]["enabled"] is True
    assert census["features"]["thing"]["status"] == "unavailable"


def test_the_test_doubles_fake_it_in_its_catalogs_words(site: Path) -> None:
    code = (
        "import json, glance_features\n"
        "from glance_features import testing\n"
        "with testing.override(thing='degraded'):\n"
        "    r = glance_features.probe()['thing']\n"
        "print(json.dumps([r.status.value, r.reason, list(r.remediation)]))\n"
    )
    proc = run(site, code=code)
    assert proc.returncode == 0, proc.stderr
    status, reason, fixes = json.loads(proc.stdout)
    assert status == "degraded"
    assert reason.startswith("the thing store driver: degraded")
    assert "thinglib>=1.0" in fixes[0] and "python3-thinglib" in fixes[-1]


def test_the_docs_tables(site: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(ROOT / "docs" / "conf.py", docs / "conf.py")
    proc = run(site, str(docs / "conf.py"), code="import runpy, sys; runpy.run_path(sys.argv[1])")
    assert proc.returncode == 0, proc.stderr
    table = (docs / "_generated" / "requirements.inc").read_text()
    assert "``thing``" in table and "[thing] enabled = true" in table
    assert "apt-get install -y python3-thinglib" in (docs / "_generated" / "thing.inc").read_text()
