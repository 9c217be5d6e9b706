"""Plugins from real dist-info directories on sys.path, probed in a subprocess."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from conftest import install_plugin, run_cli, validate

import glance_features
from glance_features import Status, registry
from glance_features.registry import BUILTIN


def probe_json(site: Path, *args: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = run_cli("--format", "json", *args, env=env)
    data = json.loads(proc.stdout) if proc.stdout else {}
    return proc.returncode, data, proc.stderr


def test_entry_point_plugin_from_a_real_distribution(tmp_path: Path) -> None:
    install_plugin(
        tmp_path, "acme_glance_probe", {"acme": "acme_probe:Works"}, "acme_probe", "acme"
    )
    code, data, stderr = probe_json(tmp_path, "--feature", "acme", "--deep")
    assert (code, stderr) == (0, "")
    validate(data)
    assert data["features"]["acme"]["status"] == "available"
    assert data["features"]["acme"]["reason"] == "works from acme_glance_probe"
    assert data["features"]["acme"]["details"] == {"deep": True}


def test_builtins_and_plugin_listed(tmp_path: Path) -> None:
    install_plugin(
        tmp_path, "acme_glance_probe", {"acme": "acme_probe:Works"}, "acme_probe", "acme"
    )
    proc = run_cli("--list", env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert {"qemu-img", "sendfile", "pydev", "xattr", "dnspython-ipv6", "acme"} <= set(names)
    assert "a test plugin that works" in proc.stdout


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module:Works", "ModuleNotFoundError: No module named 'no_such_module'"),
        ("broken_probe:Works", "SyntaxError"),
        ("acme_probe:Missing", "AttributeError"),
        ("acme_probe:Explodes", "RuntimeError: constructor blew up"),
        ("acme_probe:Wrong", "calls itself 'something-else'"),
    ],
)
def test_plugin_that_fails_to_load_is_unknown_not_a_crash(
    tmp_path: Path, target: str, message: str
) -> None:
    install_plugin(tmp_path, "acme_glance_probe", {"acme": target}, "acme_probe", "acme")
    (tmp_path / "broken_probe.py").write_text("def oops(:\n")
    code, data, stderr = probe_json(tmp_path, "--require", "acme")
    assert code == 2 and stderr == ""
    validate(data)
    acme = data["features"]["acme"]
    assert acme["status"] == "unknown"
    assert message in acme["reason"]
    # The distribution as its metadata names it.
    assert f"{target} from acme_glance_probe" in acme["reason"]
    assert data["features"]["sendfile"]["status"] != "unknown"  # the others still ran


def test_duplicate_name_is_reported_naming_both_plugins(tmp_path: Path) -> None:
    install_plugin(
        tmp_path, "acme_glance_probe", {"acme": "acme_probe:Works"}, "acme_probe", "acme"
    )
    install_plugin(tmp_path, "zeta_glance_probe", {"acme": "acme_probe:Works"})
    code, data, _ = probe_json(tmp_path)
    assert code == 0
    validate(data)
    assert data["features"]["acme"]["status"] == "available"
    duplicate = data["features"]["acme@zeta_glance_probe"]
    assert duplicate["status"] == "unknown"
    assert (
        "name 'acme' is taken by acme_probe:Works from acme_glance_probe" in (duplicate["reason"])
    )


class Fake:
    name = "fake"
    summary = "registered at run time"

    def probe(self, context: glance_features.ProbeContext) -> glance_features.FeatureResult:
        return glance_features.FeatureResult(self.name, Status.DEGRADED, "pretend")


def test_register_adds_a_detector_and_rejects_a_taken_name() -> None:
    glance_features.register(Fake())
    report = glance_features.probe(features=["fake"])
    assert report["fake"].status is Status.DEGRADED
    with pytest.raises(ValueError, match="already registered"):
        glance_features.register(Fake())
    glance_features.unregister("fake")
    assert "fake" not in {p.name for p in registry.plugins()}


def test_register_rejects_objects_that_are_not_detectors() -> None:
    with pytest.raises(registry.PluginError, match="no string 'name'"):
        glance_features.register(textwrap)  # type: ignore[arg-type]


def test_register_refuses_a_builtin_name() -> None:
    class Clash(Fake):
        name = "sendfile"

    with pytest.raises(ValueError, match="'sendfile' is already registered"):
        glance_features.register(Clash())
    report = glance_features.probe(features=["sendfile"])
    assert list(report) == ["sendfile"]
    assert report["sendfile"].reason != "pretend"


EVIL_MODULE = """
import os
open(os.environ["EVIL_MARKER"], "w").close()  # proves the module was imported

class Sendfile:
    name = "sendfile"
    summary = "claims a built-in's name"

    def probe(self, context):
        from glance_features.detector import result
        from glance_features.model import Status
        return result(self.name, Status.AVAILABLE, "forged")
"""


def test_entry_point_named_like_a_builtin_never_replaces_it(tmp_path: Path) -> None:
    install_plugin(tmp_path, "evil_glance_probe", {"sendfile": "evil_probe:Sendfile"})
    (tmp_path / "evil_probe.py").write_text(EVIL_MODULE)
    marker = tmp_path / "imported"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "EVIL_MARKER": str(marker)}
    proc = run_cli("--format", "json", "--feature", "sendfile", env=env)
    assert proc.returncode == 0, proc.stderr
    data = validate(json.loads(proc.stdout))
    assert sorted(data["features"]) == ["sendfile", "sendfile@evil_glance_probe"]
    assert data["features"]["sendfile"]["reason"] != "forged"
    assert data["features"]["sendfile"]["status"] == "available"
    clash = data["features"]["sendfile@evil_glance_probe"]
    assert clash["status"] == "unknown" and not clash["required"]
    assert (
        "name 'sendfile' is taken by glance_features.detectors.sendfile:SendfileDetector "
        "(built in)" in clash["reason"]
    )
    assert not marker.exists()  # the claimant's code never ran
    listed = run_cli("--list", env=env)
    assert listed.returncode == 0
    assert "sendfile@evil_glance_probe" in listed.stdout
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert names.count("sendfile") == 1
    assert not marker.exists()


def test_entry_point_value_with_extras_loads(tmp_path: Path) -> None:
    install_plugin(
        tmp_path, "acme_glance_probe", {"acme": "acme_probe:Works [fast]"}, "acme_probe", "acme"
    )
    code, data, stderr = probe_json(tmp_path, "--feature", "acme", "--require", "acme")
    assert (code, stderr) == (0, "")
    validate(data)
    assert data["features"]["acme"]["status"] == "available"
    assert data["features"]["acme"]["reason"] == "works from acme_glance_probe"


def test_builtins_need_no_installed_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    # A source checkout, or a distribution whose entry points were lost.
    monkeypatch.setattr(registry, "_entry_points", lambda: ())
    assert [p.name for p in registry.plugins()] == list(BUILTIN)
    assert all(p.builtin for p in registry.plugins())
    report = glance_features.probe(features=["sendfile"])
    assert report["sendfile"].status is not Status.UNKNOWN
    # And the installed package declares none: built-ins are registered in code.
    import importlib_metadata

    ours = [
        ep
        for ep in importlib_metadata.entry_points(group=registry.ENTRY_POINT_GROUP)
        if ep.value.startswith("glance_features")
    ]
    assert ours == []


def test_only_built_ins_get_a_head_start() -> None:
    """A plugin loads in its own thread, under the deadline: the runner cannot
    hold the others back for it."""
    from glance_features import registry

    assert registry.HEAD_START.issubset(registry.BUILTIN)
    head_starts = {p.name for p in registry.plugins() if p.head_start}
    assert head_starts == set(registry.HEAD_START)
