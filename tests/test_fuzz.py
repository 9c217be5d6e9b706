"""Property tests: every parser either parses or fails with its own clean error."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glance_features import Report, testing
from glance_features._mounts import parse_mountinfo
from glance_features.detectors.qemu_img import parse_help
from glance_features.host import parse_os_release
from glance_features.requirements import ConstraintsError, parse_constraints
from glance_features.settings import ConfigError, Settings, parse_ini
from glance_features.versions import InvalidVersion, compare

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
VALID = testing.make_report(qemu_img="unavailable", required=["qemu-img"]).to_dict()


@given(st.text())
def test_qemu_help_parser(text: str) -> None:
    facts = parse_help(text)
    if facts is not None:
        assert facts.version and all(" " not in f for f in facts.formats)


@given(
    st.from_regex(
        r"qemu-img version \d{1,3}\.\d{1,3}(\.\d{1,3})?\n(.*\n){0,3}"
        r"Supported formats:( [a-z0-9-]{1,8}){0,6}\n",
        fullmatch=True,
    )
)
def test_qemu_help_parser_finds_real_shapes(text: str) -> None:
    assert parse_help(text) is not None


@given(st.text(max_size=30), st.text(max_size=30))
def test_version_compare(a: str, b: str) -> None:
    try:
        result = compare(a, b)
    except InvalidVersion:
        return
    assert result in (-1, 0, 1)
    assert compare(b, a) == -result


@given(st.text())
def test_ini_parser(text: str) -> None:
    try:
        for section, key, value in parse_ini(text, "fuzz.conf"):
            assert section and key and isinstance(value, str)
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.conf:")


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_settings_from_any_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "glance-api.conf"
    path.write_bytes(b"[DEFAULT]\n" + content)
    try:
        settings_ = Settings.from_config_files([str(path)])
    except ConfigError:
        return
    assert settings_.config_files == (str(path),)


@given(st.text())
def test_os_release_and_mountinfo(text: str) -> None:
    info = parse_os_release(text)
    assert isinstance(info.id, str) and isinstance(info.like, str)
    for mount in parse_mountinfo(text):
        assert mount.fs_type


@given(json_values)
def test_report_from_any_json(data: Any) -> None:
    try:
        Report.from_dict(data)
    except ValueError:
        pass


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found += _paths(v, (*prefix, i))
    return found


PATHS = _paths(VALID)[1:]


@given(st.sampled_from(PATHS), json_values)
def test_report_from_mutated_report(path: tuple[Any, ...], value: Any) -> None:
    data = copy.deepcopy(VALID)
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    try:
        report = Report.from_dict(data)
    except ValueError:
        return
    assert Report.from_dict(report.to_dict()) == report


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40), max_size=6)
)
def test_constraints_lines(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "upper-constraints.txt"
    path.write_text(
        "\n".join(line.replace("\n", " ").replace("\r", " ") for line in lines), encoding="utf-8"
    )
    try:
        found = parse_constraints([str(path)])
    except ConstraintsError as exc:
        assert str(path) in str(exc)
        return
    for name, constraint in found.items():
        assert name == name.lower() and constraint.source.startswith(f"{path}:")


@given(
    st.from_regex(
        r"[A-Za-z]([A-Za-z0-9._-]{0,10}[A-Za-z0-9])?===\d{1,3}(\.\d{1,3}){0,2}", fullmatch=True
    )
)
def test_constraints_pins_parse(line: str) -> None:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(line + "\n")
    try:
        (constraint,) = parse_constraints([f.name]).values()
    finally:
        Path(f.name).unlink()
    assert constraint.pin == line.split("===")[1]
