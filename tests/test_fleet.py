"""Fleet integrations with the real tools: promtool, prometheus_client, ansible-core."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    as_root_in_mount_namespace,
    can_unshare_mounts,
    need,
    run_cli,
    validate,
    without_dac_override,
)

from glance_features import FeatureResult, Report, Status, cli, testing
from glance_features.cli.prometheus import escape_label, render
from glance_features.model import ReportDict

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples" / "ansible"
ODD = 'a "quoted" reason\\ with a backslash,\nA newline, ünïcode and {braces}="x"'


def odd_report() -> Report:
    statuses = {
        s.value: FeatureResult(
            s.value,
            s,
            f"{s.value}: {ODD}",
            {"x": 1},
            ("apt-get install -y x",),
            required=True,
            elapsed_ms=1.5,
        )
        for s in Status
    }
    report = testing.make_report(extra=statuses)
    return report.replace({n: r for n, r in report.items() if n in statuses})


def test_prometheus_output_parses_with_prometheus_client() -> None:
    try:
        from prometheus_client import parser
    except ImportError:
        need(False, "prometheus_client is not installed (pip install prometheus-client)")
    report = odd_report()
    families = {f.name: f for f in parser.text_string_to_metric_families(render(report))}
    assert {
        "glance_features_build_info",
        "glance_features_feature_status",
        "glance_features_feature_available",
        "glance_features_feature_required",
        "glance_features_feature_code",
        "glance_features_feature_probe_seconds",
        "glance_features_probe_timestamp_seconds",
        "glance_features_code",
        "glance_features_feature_info",
    } <= set(families)
    status = {
        (s.labels["feature"], s.labels["status"]): s.value
        for s in families["glance_features_feature_status"].samples
    }
    for name, result in report.items():
        for s in Status:
            assert status[(name, s.value)] == (1.0 if result.status is s else 0.0)
    info = {
        s.labels["feature"]: s.labels["reason"]
        for s in families["glance_features_feature_info"].samples
    }
    assert info["unknown"] == f"unknown: {ODD}"  # escaped and parsed back exactly
    codes = {s.labels["feature"]: s.value for s in families["glance_features_feature_code"].samples}
    assert codes == {
        "available": 0,
        "degraded": 1,
        "unavailable": 2,
        "unknown": 2,
    }
    seconds = {
        s.labels["feature"]: s.value
        for s in families["glance_features_feature_probe_seconds"].samples
    }
    assert seconds["degraded"] == 0.0015
    timestamp = families["glance_features_probe_timestamp_seconds"].samples[0].value
    assert timestamp == 1767225600  # 2026-01-01T00:00:00Z


def test_prometheus_output_passes_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    need(promtool is not None, "promtool is not installed (Debian: apt-get install prometheus)")
    assert promtool is not None
    for report in (odd_report(), testing.make_report()):
        text = render(report)
        assert all(
            line.startswith(("# HELP", "# TYPE", "glance_features_")) for line in text.splitlines()
        )
        proc = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    # And the real thing, from the command line.
    real = run_cli("--format", "prometheus")
    proc = subprocess.run(
        [promtool, "check", "metrics"],
        input=real.stdout,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_label_escaping() -> None:
    assert escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


def test_output_file_is_written_and_replaced(tmp_path: Path) -> None:
    target = tmp_path / "glance_features.prom"
    proc = run_cli("--format", "prometheus", "--feature", "sendfile", "--output", str(target))
    assert (proc.returncode, proc.stdout) == (0, "")
    assert "glance_features_feature_available" in target.read_text()
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["glance_features.prom"]


@pytest.mark.parametrize("where", ["missing", "unwritable"])
def test_bad_output_directory_is_exit_64_and_leaves_the_old_file(
    tmp_path: Path, where: str
) -> None:
    directory = tmp_path / "metrics"
    if where == "missing":
        target = directory / "out.prom"
        prefix: list[str] = []
    else:
        directory.mkdir()
        target = directory / "out.prom"
        target.write_text("old contents\n")
        directory.chmod(0o555)
        prefix = without_dac_override()
    proc = subprocess.run(
        [
            *prefix,
            sys.executable,
            "-m",
            "glance_features",
            "--feature",
            "sendfile",
            "--output",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 64, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
    if where == "unwritable":
        assert target.read_text() == "old contents\n"
        assert sorted(p.name for p in directory.iterdir()) == ["out.prom"]
    else:
        assert not directory.exists()


def test_write_failing_midway_leaves_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "report.json"
    target.write_bytes(b'{"old": true}\n')

    def disk_fails(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", disk_fails)
    with testing.override():
        code = cli.main(["--format", "json", "--output", str(target)])
    assert code == 64
    assert "Input/output error" in capsys.readouterr().err
    assert target.read_bytes() == b'{"old": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_full_file_system_leaves_the_old_file_intact(tmp_path: Path) -> None:
    need(can_unshare_mounts(), "needs unshare (util-linux) and root or user namespaces")
    mount = tmp_path / "small"
    mount.mkdir()
    script = (
        f"mount -t tmpfs -o size=8k tmpfs {mount}\n"
        f"printf 'old metrics\\n' > {mount}/out.prom\n"
        f"head -c 4096 /dev/zero > {mount}/filler || true"
    )
    check = f'"$@"; status=$?; cat {mount}/out.prom; ls -A {mount}; exit $status'
    proc = subprocess.run(
        [
            *as_root_in_mount_namespace(script),
            "sh",
            "-c",
            check,
            "sh",
            sys.executable,
            "-m",
            "glance_features",
            "--format",
            "json",
            "--deep",
            "--output",
            str(mount / "out.prom"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 64, proc.stderr
    assert proc.stdout.splitlines() == ["old metrics", "filler", "out.prom"]
    assert "No space left on device" in proc.stderr


FIRST_FIVE = ("qemu-img", "sendfile", "pydev", "xattr", "dnspython-ipv6")


def fleet_report(host: str, **statuses: Any) -> ReportDict:
    report = testing.make_report(**statuses)
    data = report.replace({n: r for n, r in report.items() if n in FIRST_FIVE}).to_dict()
    data["host"]["hostname"] = host
    return data


def test_summarize_a_hundred_hosts_failing_first(tmp_path: Path) -> None:
    for i in range(100):
        if i % 10 == 3:
            data = fleet_report(f"api-{i:03d}", qemu_img="unavailable", required=["qemu-img"])
        elif i % 10 == 5:
            data = fleet_report(f"api-{i:03d}", xattr="degraded", required=["xattr"])
        else:
            data = fleet_report(f"api-{i:03d}", pydev="unavailable")
        validate(data)
        (tmp_path / f"api-{i:03d}.json").write_text(json.dumps(data))
    proc = run_cli("summarize", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr == ""
    rows = proc.stdout.splitlines()
    assert rows[0].split() == ["HOST", "dnspython-ipv6", "pydev", "qemu-img", "sendfile", "xattr"]
    assert [r.split()[0] for r in rows[1:11]] == [f"api-{i:03d}" for i in range(3, 100, 10)]
    assert rows[1].split()[3] == "MISSING*"
    assert rows[11].split()[0] == "api-005" and rows[11].split()[5] == "DEGR*"
    assert "qemu-img: required but not fully working on 10 hosts: api-003, api-013" in proc.stdout
    as_json = json.loads(run_cli("summarize", "--format", "json", str(tmp_path)).stdout)
    assert len(as_json["hosts"]) == 100 and as_json["code"] == 2
    assert as_json["failing"]["xattr"] == [f"api-{i:03d}" for i in range(5, 100, 10)]
    assert next(iter(as_json["hosts"])) == "api-003"


def test_summarize_warns_about_broken_and_foreign_files(tmp_path: Path) -> None:
    good = json.dumps(fleet_report("api-1"))
    (tmp_path / "good.json").write_text(good)
    (tmp_path / "truncated.json").write_text(good[: len(good) // 2])
    (tmp_path / "foreign.json").write_text('{"hello": "world"}')
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00\x01")
    bad_status = fleet_report("api-2")
    bad_status["features"]["xattr"]["status"] = "great"
    (tmp_path / "invalid.json").write_text(json.dumps(bad_status))
    proc = run_cli("summarize", str(tmp_path), str(tmp_path / "absent.json"))
    assert proc.returncode == 0
    warnings = proc.stderr.splitlines()
    assert len(warnings) == 5 and "Traceback" not in proc.stderr
    for name in ("truncated.json", "foreign.json", "binary.json", "invalid.json", "absent.json"):
        assert sum(name in w for w in warnings) == 1, name
    assert all(w.startswith("glance-features: warning: ") for w in warnings)
    assert "api-1" in proc.stdout and "1 hosts" in proc.stdout


def ansible(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).with_name(args[0])
    need(binary.exists(), "ansible-core is not installed (pip install ansible-core)")
    return subprocess.run(
        [str(binary), *args[1:]], capture_output=True, text=True, timeout=300, env=env
    )


def fact_env(tmp_path: Path, options: str = "") -> tuple[Path, dict[str, str]]:
    facts = tmp_path / "facts.d"
    facts.mkdir()
    shutil.copy(EXAMPLES / "glance_features.fact", facts)
    env = {
        **os.environ,
        "GLANCE_FEATURES": str(Path(sys.executable).with_name("glance-features")),
        "GLANCE_FEATURES_OPTIONS": options,
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_CACHE_PLUGIN": "jsonfile",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "cache"),
    }
    return facts, env


def test_ansible_local_fact_carries_the_report(tmp_path: Path) -> None:
    facts, env = fact_env(tmp_path, "--feature sendfile --feature qemu-img")
    proc = ansible(
        "ansible",
        "localhost",
        "-c",
        "local",
        "-m",
        "setup",
        "-a",
        f"fact_path={facts} filter=ansible_local",
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    payload = json.loads(proc.stdout.split("=>", 1)[1])
    report = payload["ansible_facts"]["ansible_local"]["glance_features"]
    validate(report)
    assert set(report["features"]) == {"sendfile", "qemu-img"}
    # The fact cache it left behind summarises like any report.
    summary = run_cli("summarize", "--format", "json", str(tmp_path / "cache"))
    assert summary.returncode == 0, summary.stderr
    assert list(json.loads(summary.stdout)["hosts"]) == ["localhost"]


def test_ansible_playbook_lists_hosts_missing_a_required_feature(tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    # /proc cannot hold a cache: xattr is required and unavailable.
    conf.write_text("[DEFAULT]\nimage_cache_driver = xattr\nimage_cache_dir = /proc/sys\n")
    facts, env = fact_env(tmp_path, f"--config-file {conf} --feature xattr")
    proc = ansible(
        "ansible-playbook",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        "glance_hosts=localhost",
        "-e",
        f"glance_features_fact_path={facts}",
        "-e",
        "glance_features_enforce=true",
        str(EXAMPLES / "playbook.yml"),
        env=env,
    )
    assert "MISSING localhost xattr: unavailable:" in proc.stdout, proc.stdout + proc.stderr
    assert "localhost lacks a required Glance feature" in proc.stdout
    assert proc.returncode != 0  # enforce=true fails the play


def test_ansible_playbooks_pass_syntax_check(tmp_path: Path) -> None:
    _, env = fact_env(tmp_path)
    for playbook in sorted(EXAMPLES.glob("*.yml")):
        proc = ansible(
            "ansible-playbook", "-i", "localhost,", "--syntax-check", str(playbook), env=env
        )
        assert proc.returncode == 0, playbook.name + proc.stdout + proc.stderr


def test_ansible_census_playbook_collects_and_summarizes(tmp_path: Path) -> None:
    from glance_features import census

    _, env = fact_env(tmp_path)
    # The code under test, also where the console script is an editable
    # install of another checkout.
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    out = tmp_path / "census"
    proc = ansible(
        "ansible-playbook",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        "glance_hosts=localhost",
        "-e",
        f"census_dir={out}",
        "-e",
        f"glance_features_command={Path(sys.executable).with_name('glance-features')}",
        "-e",
        "glance_features_options='--feature xattr --feature sendfile'",
        str(EXAMPLES / "census.yml"),
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    document = json.loads((out / "localhost.json").read_text())
    census.validate(document)
    assert sorted(document["features"]) == ["sendfile", "xattr"]
    table = (out / "adoption.md").read_text()
    assert table.startswith("### Adoption across 1 deployments")
    assert "| xattr |" in table and "| sendfile |" in table
    assert "Adoption across 1 deployments" in proc.stdout
