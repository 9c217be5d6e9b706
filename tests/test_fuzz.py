"""Property tests: every parser either parses or fails with its own clean error."""

from __future__ import annotations

import copy
import typing
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glance_features import Report, testing
from glance_features._platform import ini
from glance_features.catalog import GlanceUse
from glance_features.cli.requirements import ConstraintsError, parse_constraints
from glance_features.cli.table import safe
from glance_features.options import Kind
from glance_features.settings import ConfigError, Option, Settings, parse_text

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
VALID = testing.make_report(qemu_img="unavailable", required=["qemu-img"]).to_dict()


@given(st.text(max_size=20), st.text(max_size=20))
def test_glance_release_specifiers(version: str, specifier: str) -> None:
    # Whatever a catalog entry or an installed Glance says, the answer is
    # yes, no or "cannot tell", never an exception on the start-up path.
    assert GlanceUse("x", versions=specifier).used_by(version) in (True, False, None)
    assert GlanceUse("x").used_by(version) is True


@given(st.text())
def test_ini_parser(text: str) -> None:
    try:
        sections = ini.parse(text)
    except ValueError as exc:
        assert str(exc).split(":", 1)[0].isdigit()  # names the line
        return
    for section, options in sections.items():
        assert section and all(key and values for key, values in options.items())


@given(st.text())
def test_settings_text_parser(text: str) -> None:
    try:
        values = parse_text(text, "fuzz.conf")
    except ConfigError as exc:
        assert "fuzz.conf" in str(exc)
        return
    assert all(isinstance(value, str) for value in values.values())


@given(st.sampled_from(typing.get_args(Kind)), st.text())
def test_option_values_convert_or_raise_config_error(kind: Kind, text: str) -> None:
    option: Option[object] = Option("DEFAULT", "x", kind)
    try:
        option.convert(text)
    except ConfigError as exc:
        assert str(exc).startswith("[DEFAULT] x = ")


@given(st.text())
def test_templates_expand_or_raise_config_error(text: str) -> None:
    settings_ = Settings(
        {("DEFAULT", "image_cache_dir"): text, ("DEFAULT", "a"): "$b", ("DEFAULT", "b"): "B"}
    )
    try:
        value = settings_.image_cache_dir
    except ConfigError:
        return
    assert isinstance(value, str)
    if "$" not in text:
        assert value == text


@given(st.text())
def test_every_printed_field_is_one_printable_line(text: str) -> None:
    shown = safe(text)
    assert shown.isprintable() and "\n" not in shown and "\x1b" not in shown
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in shown)


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
    target: Any = data  # a path into the document, as arbitrary as the fuzzed value
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
    st.lists(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40), max_size=6)
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
