"""The census: built from a report, allow-listed, safe to share."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import importlib_metadata
import jsonschema
import pytest
from conftest import need, run_cli

from glance_features import FeatureResult, Report, Status, census, testing
from glance_features.cli import census as cli_census

# Everything below identifies a host or a site; none of it may be shared.
HOSTNAME = "glance-api-7.prod.acme-corp.example"
ACCOUNT = "acme-svc-glance"
ADDRESSES = ("10.20.30.40", "2001:db8:4006:812::200e", "ceph-mon-3.acme-corp.example")
PATHS = ("/srv/acme-corp/image-cache", "/etc/glance/acme-site/glance-api.conf")
SECRETS = ("Sw1ftPa55w0rd-acme", "AKIAACMECORPSECRET")
IDENTIFYING = (HOSTNAME, ACCOUNT, *ADDRESSES, *PATHS, *SECRETS, "acme")


def identifying_report() -> Report:
    """A report whose every free-text field carries identifying material."""
    base = testing.make_report(xattr="unavailable", pydev="degraded", required=["xattr"])
    where = f"{PATHS[0]} on {HOSTNAME} ({ADDRESSES[0]}, [{ADDRESSES[1]}])"
    features = {}
    for name, result in base.items():
        features[name] = FeatureResult(
            name,
            result.status,
            f"checked {where} as {ACCOUNT}; swift password {SECRETS[0]}",
            {
                "path": PATHS[0],
                "checked_as": ACCOUNT,
                "monitors": [ADDRESSES[2], ADDRESSES[0]],
                "s3_store_access_key": SECRETS[1],
                "options": {"swift_store_key": SECRETS[0]},
                # Looks like a version, under a distribution's name: a host
                # name in it must still not pass.
                "eventlet": HOSTNAME,
                "version": "3.5.0",
                "distribution": "pydevd",
            },
            (f"chown {ACCOUNT} {PATHS[0]}", f"ping {ADDRESSES[0]}"),
            required=result.required,
            elapsed_ms=1.0,
            used_by_glance=True,
        )
    return Report(
        features,
        host={
            "hostname": HOSTNAME,
            "os": "linux",
            "kernel": f"6.1.0-acme-{HOSTNAME}",
            "distro": {"id": "ubuntu", "version": "24.04", "like": "debian"},
            "python": "3.12.3",
        },
        config_files=PATHS[1:],
        generated_at="2026-11-24T13:41:40Z",
        glance_features_version="0.1.0",
        glance={
            "version": "33.0.0",
            "served_by": "uwsgi",
            "served_by_from": f"/etc/uwsgi/apps-enabled/{HOSTNAME}.ini",
            "python": "/opt/acme-corp/venv/bin/python3",
        },
        checked_as=ACCOUNT,
    )


def assert_anonymous(text: str) -> None:
    lowered = text.lower()
    for value in IDENTIFYING:
        assert value.lower() not in lowered, value


def test_census_of_an_identifying_report_shares_none_of_it() -> None:
    report = identifying_report()
    # The report itself carries every identifying value (else the test proves nothing).
    raw = report.to_json()
    assert all(value in raw for value in IDENTIFYING if value != "acme") and "acme" in raw
    for document in (census.census_of(report), census.census_of(report.to_dict())):
        for text in (census.to_json(document), cli_census.to_text(document)):
            assert_anonymous(text)
        jsonschema.validate(document, census.json_schema())
        census.validate(document)
    document = census.census_of(report)
    assert document["glance"] == {"release": "33.0.0", "served_by": "uwsgi"}
    assert document["distro"] == {"family": "debian", "id": "ubuntu", "version": "24.04"}
    assert document["python"] == "3.12"
    assert document["features"]["xattr"]["enabled"] is True
    assert document["features"]["xattr"]["working"] is False
    assert document["features"]["pydev"]["status"] == "degraded"
    # The detector's own {"distribution": ..., "version": ...} is a version it found.
    assert document["features"]["pydev"]["provided_by"] == [
        {"name": "pydevd", "version": "3.5.0", "source": "unknown"}
    ]
    # "eventlet": <a host name> is no version: nothing is said about eventlet.
    names = [p["name"] for p in document["features"]["dnspython-ipv6"]["provided_by"]]
    assert "eventlet" not in names
    assert "id" not in document


def test_served_by_and_distro_are_allow_listed() -> None:
    data = identifying_report().to_dict()
    assert data["glance"] is not None
    data["glance"]["served_by"] = f"uwsgi on {HOSTNAME}"
    data["glance"]["version"] = f"33.0.0-{HOSTNAME}"
    data["host"]["distro"] = {"id": "acme-linux", "version": "7", "like": "rhel fedora"}
    data["host"]["python"] = HOSTNAME
    document = census.census_of(data)
    assert document["glance"] == {"release": None, "served_by": None}
    assert document["distro"] == {"family": "rhel", "id": "other", "version": None}
    assert document["python"] is None
    assert_anonymous(census.to_json(document))
    jsonschema.validate(document, census.json_schema())


def test_features_no_detector_here_provides_are_dropped() -> None:
    base = testing.make_report()
    extra = FeatureResult(HOSTNAME.split(".")[0], Status.AVAILABLE, "x")
    report = base.replace({**dict(base.items()), extra.name: extra})
    document = census.census_of(report)
    assert extra.name not in document["features"]
    assert set(document["features"]) == set(base)


def test_id_only_when_asked_and_random() -> None:
    report = testing.make_report()
    first, second = census.new_id(), census.new_id()
    assert first != second and uuid.UUID(first).version == 4
    document = census.census_of(report, census_id=first)
    assert document["id"] == first
    jsonschema.validate(document, census.json_schema())
    with pytest.raises(ValueError):
        census.census_of(report, census_id=HOSTNAME)


def test_lookup_gives_versions_and_sources() -> None:
    report = testing.make_report(xattr="available")
    seen: list[str] = []

    def lookup(name: str) -> tuple[str, str] | None:
        seen.append(name)
        return ("1.3.0", "distribution") if name == "xattr" else None

    document = census.census_of(report, lookup=lookup)
    assert document["features"]["xattr"]["provided_by"] == [
        {"name": "xattr", "version": "1.3.0", "source": "distribution"}
    ]
    assert "xattr" in seen and "pydevd" in seen


def dist_info(root: Path, name: str, installer: str | None, record: bool = True) -> Any:
    path = root / f"{name}-1.0.dist-info"
    path.mkdir(parents=True)
    (path / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    if installer is not None:
        (path / "INSTALLER").write_text(installer + "\n")
    if record:
        (path / "RECORD").write_text("")
    return importlib_metadata.PathDistribution(path)


def test_source_of_installers_and_places(tmp_path: Path) -> None:
    assert census.source_of(dist_info(tmp_path, "a", "pip")) == "pip"
    assert census.source_of(dist_info(tmp_path, "b", "uv")) == "pip"
    assert census.source_of(dist_info(tmp_path, "c", "conda")) == "unknown"
    assert census.source_of(dist_info(tmp_path, "d", None, record=False)) == "distribution"
    # A Debian or RPM package's metadata, where those put it (need not exist:
    # a file importlib-metadata cannot read counts as absent).
    for where in (
        "/usr/lib/python3/dist-packages/Foo-1.0.egg-info",
        "/usr/lib64/python3.9/site-packages/foo-1.0.dist-info",
        "/usr/lib/python3.12/site-packages/foo-1.0.dist-info",
    ):
        assert census.source_of(importlib_metadata.PathDistribution(Path(where))) == "distribution"
    assert census.source_of(importlib_metadata.PathDistribution(tmp_path / "x")) == "distribution"


def test_source_of_this_hosts_debian_packages() -> None:
    root = Path("/usr/lib/python3/dist-packages")
    dists = list(importlib_metadata.distributions(path=[str(root)])) if root.is_dir() else []
    need(bool(dists), "no Debian python3-* packages here (bindep installs python3-rbd)")
    assert {census.source_of(d) for d in dists} == {"distribution"}


def test_validate_refuses_what_is_not_a_census() -> None:
    good = census.census_of(testing.make_report())
    census.validate(good)
    broken: list[dict[str, Any]] = []
    for change in (
        {"census_version": 2},
        {"hostname": HOSTNAME},
        {"id": "not-a-uuid"},
        {"python": "3.11.7"},
        {"glance": {"release": HOSTNAME, "served_by": None}},
    ):
        broken.append({**good, **change})
    feature = dict(good["features"]["xattr"], working=not good["features"]["xattr"]["working"])
    broken.append({**good, "features": {**good["features"], "xattr": feature}})
    extra = dict(good["features"]["xattr"], reason=PATHS[0])
    broken.append({**good, "features": {**good["features"], "xattr": extra}})
    for data in broken:
        with pytest.raises(census.CensusError):
            census.validate(data)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(data, census.json_schema())


def test_census_command_on_a_config_full_of_secrets(tmp_path: Path) -> None:
    site = tmp_path / "acme-corp-site"
    site.mkdir()
    conf = site / "glance-api.conf"
    conf.write_text(
        "[DEFAULT]\n"
        "image_cache_driver = xattr\n"
        f"image_cache_dir = {site}/image-cache\n"
        f"bind_host = {ADDRESSES[0]}\n"
        "enabled_backends = acme-swift:swift\n"
        "[acme-swift]\n"
        f"swift_store_auth_address = http://{ADDRESSES[2]}:5000/v3\n"
        f"swift_store_key = {SECRETS[0]}\n"
        "[database]\n"
        f"connection = mysql+pymysql://glance:{SECRETS[1]}@{ADDRESSES[0]}/glance\n"
    )
    forbidden = [*IDENTIFYING, str(tmp_path)]
    hostname = socket.gethostname()
    if len(hostname) >= 6:
        forbidden.append(hostname)
    outputs = []
    for fmt in ("json", "text"):
        proc = run_cli("census", "--config-file", str(conf), "--format", fmt)
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
    output_file = tmp_path / "census.json"
    proc = run_cli("census", "--config-file", str(conf), "--id", "--output", str(output_file))
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    outputs.append(output_file.read_text())
    for text in outputs:
        for value in forbidden:
            assert value.lower() not in text.lower(), value
    document = json.loads(outputs[0])
    jsonschema.validate(document, census.json_schema())
    # The configuration's requirements are there, anonymously.
    assert document["features"]["xattr"]["enabled"] is True
    assert document["features"]["store-swift"]["enabled"] is True
    assert document["features"]["store-rbd"]["enabled"] is False
    assert "id" not in document
    with_id = json.loads(outputs[2])
    assert uuid.UUID(with_id["id"]).version == 4
    # Text shows every value the JSON carries.
    for name, feature in document["features"].items():
        row = next(line for line in outputs[1].splitlines() if line.split()[:1] == [name])
        assert row.split()[1:4] == [
            "yes" if feature["enabled"] else "no",
            "yes" if feature["working"] else "no",
            feature["status"],
        ]
        for dist in feature["provided_by"]:
            assert f"{dist['name']} {dist['version']} ({dist['source']})" in row


def test_census_command_refuses_an_unknown_feature() -> None:
    proc = run_cli("census", "--feature", "no-such-feature")
    assert proc.returncode == 64 and proc.stderr.count("\n") == 1


def test_summarize_of_identifying_reports_shares_none_of_it(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text(identifying_report().to_json())
    markdown = run_cli("summarize", "--format", "markdown", str(tmp_path))
    assert markdown.returncode == 2, markdown.stderr  # xattr is required and missing
    assert_anonymous(markdown.stdout)
    assert "| xattr | 1/1 | 0/1 |" in markdown.stdout
    as_json = json.loads(run_cli("summarize", "--format", "json", str(tmp_path)).stdout)
    assert_anonymous(json.dumps(as_json["adoption"]))
    # The host table (text and JSON) names the host: it is the operator's own view.
    assert HOSTNAME in as_json["hosts"]
