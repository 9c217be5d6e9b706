"""summarize over census files (and reports reduced to census): the adoption table."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import jsonschema
from conftest import run_cli

from glance_features import FeatureResult, Report, Status, census, testing
from glance_features.model import object_of

RELEASES = ["29.2.1", "30.2.0", "31.1.0", "32.0.0", "33.0.0", None]
DISTROS = [
    ("debian", "debian", "12"),
    ("debian", "ubuntu", "24.04"),
    ("debian", "ubuntu", "22.04"),
    ("rhel", "rocky", "9.4"),
    ("suse", "opensuse-leap", "15.6"),
]
FEATURES = {
    "xattr": ["xattr"],
    "pydev": ["pydevd"],
    "store-swift": ["python-swiftclient"],
    "store-cinder": ["os-brick", "python-cinderclient"],
    "sendfile": [],
}
VERSIONS = ["1.0.0", "1.3.0", "2.1.post1", "4.10.0"]


def make_census(rng: random.Random, with_id: bool) -> dict[str, Any]:
    family, distro_id, version = rng.choice(DISTROS)
    release = rng.choice(RELEASES)
    features = {}
    for name, dists in FEATURES.items():
        if rng.random() < 0.2:
            continue  # probed with --feature: not in this census
        status = rng.choice([s.value for s in Status])
        features[name] = {
            "enabled": rng.random() < 0.4,
            "working": Status(status).available,
            "status": status,
            "used_by_glance": rng.choice([True, False, None]),
            "provided_by": [
                {
                    "name": dist,
                    "version": rng.choice(VERSIONS),
                    "source": rng.choice(census.SOURCES),
                }
                for dist in dists
                if rng.random() < 0.8
            ],
        }
    data: dict[str, Any] = {
        "census_version": 1,
        "glance": (
            None
            if release is None
            else {"release": release, "served_by": rng.choice([*census.SERVED_BY, None])}
        ),
        "distro": {"family": family, "id": distro_id, "version": version},
        "python": rng.choice(["3.10", "3.11", "3.12"]),
        "features": features,
    }
    if with_id:
        data["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return data


def fleet_report(rng: random.Random, host: str) -> Report:
    base = testing.make_report()
    release = rng.choice([r for r in RELEASES if r])
    _, distro_id, version = rng.choice(DISTROS)
    features = {}
    for name in FEATURES:
        status = rng.choice(list(Status))
        features[name] = FeatureResult(
            name, status, f"reason on {host}", required=rng.random() < 0.5
        )
    return Report(
        features,
        host={**base.host, "hostname": host, "distro": {"id": distro_id, "version": version}},
        generated_at=base.generated_at,
        glance_features_version=base.glance_features_version,
        glance={"version": release, "served_by": "uwsgi"},
        checked_as="glance",
    )


class Expected:
    """The adoption counts, computed here from the documents written."""

    def __init__(self) -> None:
        self.deployments = 0
        self.enabled: Counter[str] = Counter()
        self.working: Counter[str] = Counter()
        self.by_release: dict[str, Counter[str]] = defaultdict(Counter)
        self.by_distro: dict[str, Counter[str]] = defaultdict(Counter)
        self.deps: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])

    def add(
        self, release: str, distro: str, features: dict[str, tuple[bool, bool, list[Any]]]
    ) -> None:
        self.deployments += 1
        for name, (enabled, working, provided) in features.items():
            if not enabled:
                continue
            self.enabled[name] += 1
            self.working[name] += working
            self.by_release[name][release] += 1
            self.by_distro[name][distro] += 1
            for dist in provided:
                cell = self.deps[(name, dist["name"], dist["version"])]
                cell[0] += 1
                cell[1] += dist["source"] == "distribution"


def test_summary_of_a_few_hundred_census_files(tmp_path: Path) -> None:
    rng = random.Random(20261201)
    expected = Expected()
    only_census = Expected()
    written_ids: list[dict[str, Any]] = []
    broken: list[str] = []
    for i in range(300):
        data = make_census(rng, with_id=i % 3 != 0)
        jsonschema.validate(data, census.json_schema())
        (tmp_path / f"census-{i:03d}.json").write_text(json.dumps(data))
        release = "no glance" if data["glance"] is None else data["glance"]["release"]
        distro = f"{data['distro']['id']} {data['distro']['version']}"
        features = {
            n: (f["enabled"], f["working"], f["provided_by"]) for n, f in data["features"].items()
        }
        expected.add(release, distro, features)
        only_census.add(release, distro, features)
        if "id" in data:
            written_ids.append(data)
    # Repeated submissions: the same census again, under other names.
    repeats = rng.sample(written_ids, 25)
    for j, data in enumerate(repeats):
        (tmp_path / f"again-{j:02d}.json").write_text(json.dumps(data, indent=1))
    # Full reports, reduced to their census on the way.
    hosts = tmp_path / "reports"
    hosts.mkdir()
    for k in range(12):
        report = fleet_report(rng, f"api-{k:02d}.example.org")
        (hosts / f"api-{k:02d}.json").write_text(report.to_json())
        expected.add(
            str(report.glance["version"]) if report.glance else "",
            " ".join(str(object_of(report.host["distro"]).get(k)) for k in ("id", "version")),
            {n: (r.required, r.available, []) for n, r in report.items()},
        )
    # Broken files: each named once on stderr and skipped.
    good = (tmp_path / "census-001.json").read_text()
    for name, text in (
        ("truncated.json", good[: len(good) // 2]),
        ("future.json", json.dumps({**json.loads(good), "census_version": 2})),
        ("leaky.json", json.dumps({**json.loads(good), "hostname": "api-1.example.org"})),
        ("badid.json", json.dumps({**json.loads(good), "id": "api-1"})),
    ):
        (tmp_path / name).write_text(text)
        broken.append(name)

    proc = run_cli("summarize", "--format", "json", str(tmp_path), str(hosts))
    assert proc.returncode in (0, 1, 2), proc.stderr
    warnings = proc.stderr.splitlines()
    assert len(warnings) == len(broken), proc.stderr
    for name in broken:
        assert sum(name in w for w in warnings) == 1, name
    adoption = json.loads(proc.stdout)["adoption"]
    assert adoption["deployments"] == expected.deployments == 312
    assert adoption["duplicates"] == len(repeats)
    for name in FEATURES:
        counts = adoption["features"].get(name, {"enabled": 0, "working": 0})
        assert counts["enabled"] == expected.enabled[name], name
        assert counts["working"] == expected.working[name], name
        assert {k: v["enabled"] for k, v in counts["by_release"].items()} == dict(
            expected.by_release[name]
        )
        assert {k: v["enabled"] for k, v in counts["by_distro"].items()} == dict(
            expected.by_distro[name]
        )
        got = {
            (name, dist, version): [cell["deployments"], cell["from_distribution"]]
            for dist, versions in counts["dependencies"].items()
            for version, cell in versions.items()
        }
        assert got == {k: v for k, v in expected.deps.items() if k[0] == name}
    assert sum(adoption["releases"].values()) == expected.deployments

    # The text and Markdown tables say the same.
    text = run_cli("summarize", str(tmp_path)).stdout
    assert text.startswith(f"Adoption across 300 deployments; {len(repeats)} repeated")
    markdown = run_cli("summarize", "--format", "markdown", str(tmp_path), str(hosts)).stdout
    for name in FEATURES:
        row = next(line for line in text.splitlines() if line.split()[:1] == [name])
        assert row.split()[1:3] == [
            f"{only_census.enabled[name]}/300",
            f"{only_census.working[name]}/{only_census.enabled[name]}",
        ]
        md = next(line for line in markdown.splitlines() if line.startswith(f"| {name} |"))
        cells = [c.strip() for c in md.strip("|").split("|")]
        assert cells[1] == f"{expected.enabled[name]}/312"
        assert cells[2] == f"{expected.working[name]}/{expected.enabled[name]}"
    # The host table is not in the Markdown meant for sharing.
    assert "api-00" not in markdown


def test_a_census_without_id_is_one_deployment_per_file(tmp_path: Path) -> None:
    data = census.census_of(testing.make_report(xattr="available", required=["xattr"]))
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps(data))
    summary = json.loads(run_cli("summarize", "--format", "json", str(tmp_path)).stdout)
    assert summary["adoption"]["deployments"] == 2
    assert summary["adoption"]["features"]["xattr"]["enabled"] == 2
    assert summary["hosts"] == {}


def test_terminal_escapes_in_a_report_stay_escaped(tmp_path: Path) -> None:
    data = testing.make_report(required=["xattr"]).to_dict()
    data["host"]["hostname"] = "evil\x1b]0;owned\x07"
    (tmp_path / "r.json").write_text(json.dumps(data))
    for fmt in ("text", "markdown"):
        out = run_cli("summarize", "--format", fmt, str(tmp_path)).stdout
        assert "\x1b" not in out and "\x07" not in out
