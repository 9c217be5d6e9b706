"""Config files read as Glance reads them: oslo.config's grammar, groups,
templates and file discovery, each held side by side with oslo.config (and,
for discovery, with Glance 33's own WSGI application)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import need
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oslo_config import cfg, types

from glance_features._platform import ini, oslo_ini
from glance_features.settings import (
    ConfigError,
    Option,
    Settings,
    parse_text,
    service_config_files,
)

GLANCE_PYTHON = os.path.join(os.environ.get("GLANCE_VENV", ".venv-glance"), "bin", "python")

# Written the way Glance's generated sample glance-api.conf is: long comment
# blocks, commented-out defaults, list values, several groups.
SAMPLE = """\
[DEFAULT]

#
# From glance.api
#

# Base directory for the image cache. (string value)
#image_cache_dir = <None>
image_cache_dir = /srv/glance/cache

# The driver to use for image cache management. (string value)
# Possible values:
# sqlite - SQLite
# xattr - Extended attributes
# centralized_db - Centralized database
#image_cache_driver = centralized_db
image_cache_driver = xattr

; a semicolon comment
pydev_worker_debug_host = 127.0.0.1
pydev_worker_debug_port = 5679

[image_import_opts]
# List of enabled Image Import Plugins (list value)
image_import_plugins = ['no_op', "image_conversion",
    inject_image_metadata]

[image_conversion]
output_format = "qcow2"

[taskflow_executor]
#conversion_format = <None>
"""


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def test_reads_glance_sample_style_file(tmp_path: Path) -> None:
    path = write(tmp_path, "glance-api.conf", SAMPLE)
    s = Settings.from_config_files([path])
    assert s.image_cache_dir == "/srv/glance/cache"
    assert s.image_cache_driver == "xattr"
    assert s.pydev_worker_debug_host == "127.0.0.1"
    assert s.pydev_worker_debug_port == 5679
    assert s.image_import_plugins == ("no_op", "image_conversion", "inject_image_metadata")
    assert s.image_conversion_output_format == "qcow2"
    assert s.conversion_format is None
    assert s.config_files == (path,)


def test_defaults_are_glances() -> None:
    s = Settings.from_config_files([])
    assert s == Settings()
    assert (s.image_cache_driver, s.pydev_worker_debug_port) == ("centralized_db", 5678)
    assert s.image_conversion_output_format == "raw" and s.config_files == ()


def test_keywords_map_to_declared_options_and_unknown_ones_are_refused() -> None:
    s = Settings(image_cache_driver="xattr", image_import_plugins=["a"])
    assert s.image_cache_driver == "xattr" and s.image_import_plugins == ("a",)
    assert s.raw("DEFAULT") == {"image_cache_driver": "xattr"}
    with pytest.raises(TypeError, match="unknown option 'image_cache_drvier'"):
        Settings(image_cache_drvier="xattr")
    with pytest.raises(AttributeError, match="immutable"):
        s.config_files = ()


def test_later_files_and_config_dir_win(tmp_path: Path) -> None:
    first = write(
        tmp_path, "a.conf", "[DEFAULT]\nimage_cache_driver = xattr\nimage_cache_dir = /a\n"
    )
    second = write(tmp_path, "b.conf", "[DEFAULT]\nimage_cache_dir = /b\n")
    conf_dir = tmp_path / "glance-api.conf.d"
    conf_dir.mkdir()
    write(conf_dir, "20-last.conf", "[taskflow_executor]\nconversion_format = raw\n")
    write(conf_dir, "10-first.conf", "[DEFAULT]\nimage_cache_dir = /dir\n")
    write(conf_dir, "ignored.txt", "[DEFAULT]\nimage_cache_dir = /nope\n")
    s = Settings.from_config_files([first, second], config_dir=conf_dir)
    assert s.image_cache_driver == "xattr"
    assert s.image_cache_dir == "/dir"
    assert s.conversion_format == "raw"
    assert s.config_files == (
        first,
        second,
        str(conf_dir / "10-first.conf"),
        str(conf_dir / "20-last.conf"),
    )


def test_default_search_reads_first_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("OS_GLANCE_CONFIG_DIR", raising=False)
    if not os.path.exists("/etc/glance/glance-api.conf") and not os.path.exists(
        "/etc/glance-api.conf"
    ):
        assert Settings.from_config_files().config_files == ()
    (tmp_path / ".glance").mkdir()
    write(tmp_path, "glance-api.conf", "[DEFAULT]\nimage_cache_dir = /home\n")
    write(tmp_path / ".glance", "glance-api.conf", "[DEFAULT]\nimage_cache_dir = /dot\n")
    s = Settings.from_config_files()
    assert s.image_cache_dir == "/dot"
    assert s.config_files[0] == str(tmp_path / ".glance" / "glance-api.conf")


def test_continuation_lines_and_quotes() -> None:
    text = "[s]\nk = 'one'\n  two\n\tthree\n\nj: v\n"
    assert ini.parse(text) == {"s": {"k": ["one\ntwo\nthree"], "j": ["v"]}}
    assert parse_text(text) == {("s", "k"): "one\ntwo\nthree", ("s", "j"): "v"}
    # Quotes around a whole one-line value are taken off, as oslo.config does.
    assert ini.parse("[s]\nk = \"quoted\"\nk = 'again'\n") == {"s": {"k": ["quoted", "again"]}}
    assert parse_text("[s]\nk = \"quoted\"\nk = 'again'\n") == {("s", "k"): "again"}


def test_an_empty_value_stays_empty_not_the_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "glance-api.conf",
        "[DEFAULT]\npydev_worker_debug_host =\n[image_conversion]\noutput_format =\n",
    )
    s = Settings.from_config_files([path])
    assert s.image_conversion_output_format == ""  # not "raw"
    assert s.pydev_worker_debug_host == ""
    conf = _oslo_conf(path)
    assert conf.image_conversion.output_format == ""
    assert conf.pydev_worker_debug_host == ""


def test_a_hyphenated_key_is_not_the_option(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "glance-api.conf",
        "[DEFAULT]\npydev-worker-debug-port = 5679\nimage-cache-driver = xattr\n",
    )
    s = Settings.from_config_files([path])
    conf = _oslo_conf(path)
    assert s.pydev_worker_debug_port == conf.pydev_worker_debug_port == 5678
    assert s.image_cache_driver == conf.image_cache_driver == "centralized_db"
    assert s.raw("DEFAULT") == {"pydev-worker-debug-port": "5679", "image-cache-driver": "xattr"}


def test_group_names_are_case_insensitive_but_default_is_exact(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "glance-api.conf",
        "[Image_Import_Opts]\nimage_import_plugins = ['image_conversion']\n"
        "[TASKFLOW_EXECUTOR]\nconversion_format = qcow2\n"
        "[Image_Conversion]\noutput_format = vmdk\n"
        # oslo.config normalizes every group but DEFAULT: this is another group.
        "[default]\nimage_cache_driver = xattr\n",
    )
    s = Settings.from_config_files([path])
    conf = _oslo_conf(path)
    assert s.image_import_plugins == tuple(conf.image_import_opts.image_import_plugins)
    assert s.image_import_plugins == ("image_conversion",)
    assert s.conversion_format == conf.taskflow_executor.conversion_format == "qcow2"
    assert s.image_conversion_output_format == conf.image_conversion.output_format == "vmdk"
    assert s.image_cache_driver == conf.image_cache_driver == "centralized_db"
    assert s.raw("Image_Import_Opts") == s.raw("image_import_opts") != {}


def test_templates_expand_as_oslo_config_expands_them(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "glance-api.conf",
        textwrap.dedent(
            r"""
            [DEFAULT]
            state_path = /srv/glance
            image_cache_dir = ${state_path}/cache/$state_path
            pydev_worker_debug_host = \$HOME and $$ stay dollars
            [taskflow_executor]
            conversion_format = ${image_conversion.output_format}
            [image_conversion]
            output_format = $image_cache_driver
            """
        ),
    )
    # image_cache_driver is not in [image_conversion]: oslo.config falls back to DEFAULT.
    path2 = write(tmp_path, "driver.conf", "[DEFAULT]\nimage_cache_driver = qcow2\n")
    s = Settings.from_config_files([path, path2])
    conf = _oslo_conf(path, path2, extra=[cfg.StrOpt("state_path")])
    assert s.image_cache_dir == conf.image_cache_dir == "/srv/glance/cache//srv/glance"
    assert s.pydev_worker_debug_host == conf.pydev_worker_debug_host
    assert s.pydev_worker_debug_host == "$HOME and $ stay dollars"
    assert s.image_conversion_output_format == conf.image_conversion.output_format == "qcow2"
    assert s.conversion_format == conf.taskflow_executor.conversion_format == "qcow2"


def test_a_template_naming_an_unset_option_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "glance-api.conf", "[DEFAULT]\nimage_cache_dir = $nowhere/cache\n")
    with pytest.raises(ConfigError, match=r"glance-api.conf: cannot expand \$nowhere"):
        Settings.from_config_files([path])
    with pytest.raises(cfg.Error):  # oslo.config refuses it too
        _ = _oslo_conf(path).image_cache_dir
    loops = write(tmp_path, "loop.conf", "[DEFAULT]\nimage_cache_dir = $image_cache_dir/x\n")
    with pytest.raises(ConfigError, match="refers to itself"):
        Settings.from_config_files([loops])


def _oslo_conf(*paths: str, extra: list[cfg.Opt] | None = None) -> Any:
    """A ConfigOpts with the options registered as Glance registers them."""
    conf = cfg.ConfigOpts()
    conf.register_opts(
        [
            cfg.StrOpt("image_cache_dir"),
            cfg.StrOpt("image_cache_driver", default="centralized_db"),
            cfg.StrOpt("pydev_worker_debug_host"),
            cfg.PortOpt("pydev_worker_debug_port", default=5678),
            *(extra or []),
        ]
    )
    conf.register_opt(
        cfg.ListOpt("image_import_plugins", item_type=types.String(quotes=True), bounds=True),
        group="image_import_opts",
    )
    conf.register_opt(cfg.StrOpt("output_format", default="raw"), group="image_conversion")
    conf.register_opt(cfg.StrOpt("conversion_format"), group="taskflow_executor")
    args = [arg for path in paths for arg in ("--config-file", path)]
    conf(args, project="glance-features-test", default_config_files=[], default_config_dirs=[])
    return conf


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image_cache_dir = /x\n", "bad.conf:1, Section must be started"),
        ("[DEFAULT\n", "bad.conf:1, Invalid section"),
        ("[]\n", "bad.conf:1, Empty section name"),
        ("[DEFAULT]\njust words\n", "bad.conf:2, No ':' or '=' found"),
        ("[DEFAULT]\n= value\n", "bad.conf:2, Key cannot be empty"),
        ("[DEFAULT]\n\n  continued\n", "bad.conf:3, Unexpected continuation"),
        ("[DEFAULT]\npydev_worker_debug_port = http\n", "pydev_worker_debug_port = 'http'"),
        (
            "[image_import_opts]\nimage_import_plugins = image_conversion\n",
            "should start with",
        ),
        ("[image_import_opts]\nimage_import_plugins = ['a', 'b'\n", "should end with"),
        ("[image_import_opts]\nimage_import_plugins = ['a, b]\n", "non-closed quote"),
        ("[DEFAULT]\npydev_worker_debug_port = 70000\n", "not a port"),
        (b"[DEFAULT]\n\xff\xfe\x00binary", "not UTF-8"),
        (b"[DEFAULT]\nk = a\x00b\n", "binary data"),
    ],
)
def test_malformed_files_raise_config_error_naming_file_and_line(
    tmp_path: Path, text: str | bytes, message: str
) -> None:
    path = write(tmp_path, "bad.conf", text)
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_config_files([path])
    assert path in str(caught.value)


def test_values_glance_refuses_are_refused_as_oslo_config_refuses_them(tmp_path: Path) -> None:
    for text in (
        "[DEFAULT]\npydev_worker_debug_port = 70000\n",
        "[image_import_opts]\nimage_import_plugins = image_conversion\n",
    ):
        path = write(tmp_path, "bad.conf", text)
        conf = _oslo_conf(path)
        with pytest.raises(cfg.ConfigFileValueError):
            _ = conf.pydev_worker_debug_port, conf.image_import_opts.image_import_plugins
        with pytest.raises(ConfigError):
            Settings.from_config_files([path])


def test_missing_unreadable_and_directory_inputs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        Settings.from_config_files([str(tmp_path / "absent.conf")])
    with pytest.raises(ConfigError, match="is a directory"):
        Settings.from_config_files([str(tmp_path)])
    with pytest.raises(ConfigError, match="no such directory"):
        Settings.from_config_files([], config_dir=tmp_path / "nodir")
    huge = write(tmp_path, "huge.conf", "[DEFAULT]\n" + "#" * (5 << 20) + "\n")
    with pytest.raises(ConfigError) as caught:
        Settings.from_config_files([huge])
    # One clear line: the path and the reason, no errno decoration.
    assert str(caught.value) == f"config file {huge}: larger than {4 << 20} bytes"
    if os.geteuid() != 0:  # root reads anything; the CLI test drops privileges instead
        path = write(tmp_path, "secret.conf", "[DEFAULT]\n")
        os.chmod(path, 0)
        with pytest.raises(ConfigError, match="Permission denied"):
            Settings.from_config_files([path])


def test_settings_are_hashable_cache_keys() -> None:
    assert hash(Settings(image_import_plugins=("a",))) == hash(
        Settings(image_import_plugins=("a",))
    )
    assert Settings(image_cache_dir="/a") != Settings(image_cache_dir="/b")


# --- where the service finds its files --------------------------------------


def _layout(tmp_path: Path, with_import: bool = True) -> tuple[Path, Path]:
    conf_dir, home = tmp_path / "etc", tmp_path / "home"
    (conf_dir / "glance-api.conf.d").mkdir(parents=True)
    (home / ".glance" / "glance-api.conf.d").mkdir(parents=True)
    (home / "glance.conf.d").mkdir()
    write(conf_dir, "glance-api.conf", "[DEFAULT]\nimage_cache_dir = /api\n")
    if with_import:
        write(
            conf_dir,
            "glance-image-import.conf",
            "[DEFAULT]\nimage_cache_dir = /import\nimage_cache_driver = xattr\n",
        )
    # Beside the files: Glance 33 does not read this directory.
    write(conf_dir / "glance-api.conf.d", "10.conf", "[DEFAULT]\nimage_cache_dir = /beside\n")
    # oslo.config's default config dirs, found on its search path.
    write(
        home / ".glance" / "glance-api.conf.d",
        "10.conf",
        "[DEFAULT]\npydev_worker_debug_host = h\n",
    )
    write(home / "glance.conf.d", "20.conf", "[DEFAULT]\npydev_worker_debug_port = 1234\n")
    write(home / "glance.conf.d", "10.conf", "[DEFAULT]\npydev_worker_debug_port = 99\n")
    return conf_dir, home


def test_service_config_files_follow_os_glance_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir, home = _layout(tmp_path)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("OS_GLANCE_CONFIG_DIR", f" {conf_dir} ")  # Glance strips it
    assert service_config_files() == [
        str(conf_dir / "glance-image-import.conf"),
        str(conf_dir / "glance-api.conf"),  # after the import file: it wins
        str(home / "glance.conf.d" / "10.conf"),
        str(home / "glance.conf.d" / "20.conf"),
        str(home / ".glance" / "glance-api.conf.d" / "10.conf"),
    ]
    s = Settings.from_config_files()
    assert (s.image_cache_dir, s.image_cache_driver) == ("/api", "xattr")
    assert (s.pydev_worker_debug_host, s.pydev_worker_debug_port) == ("h", 1234)
    os.unlink(conf_dir / "glance-image-import.conf")
    assert str(conf_dir / "glance-image-import.conf") not in service_config_files()
    assert Settings.from_config_files().image_cache_driver == "centralized_db"


GLANCE_READS = """
import json, os, sys
from oslo_config import cfg, types
from glance.common import wsgi_app
files = wsgi_app._get_config_files()
conf = cfg.ConfigOpts()
conf.register_opts([cfg.StrOpt("image_cache_dir"), cfg.StrOpt("image_cache_driver"),
                    cfg.StrOpt("pydev_worker_debug_host"), cfg.PortOpt("pydev_worker_debug_port")])
# As glance.common.wsgi_app.init_app() calls it.
conf([], project="glance", prog="glance-api", default_config_files=files)
print(json.dumps({"dirs": conf.config_dir, "files": conf.config_file, "values": [
    conf.image_cache_dir, conf.image_cache_driver,
    conf.pydev_worker_debug_host, conf.pydev_worker_debug_port]}))
"""


@pytest.mark.parametrize("with_import", [True, False])
def test_service_config_files_match_glance_33s_wsgi_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_import: bool
) -> None:
    need(
        os.path.exists(GLANCE_PYTHON),
        "no Glance virtualenv (set GLANCE_VENV; tests/run.sh "
        "makes .venv-glance with 'pip install glance xattr')",
    )
    conf_dir, home = _layout(tmp_path, with_import)
    env = {**os.environ, "HOME": str(home), "OS_GLANCE_CONFIG_DIR": str(conf_dir)}
    proc = subprocess.run(
        [GLANCE_PYTHON, "-I", "-W", "ignore", "-c", GLANCE_READS],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    glance = json.loads(proc.stdout)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("OS_GLANCE_CONFIG_DIR", str(conf_dir))
    ours = Settings.from_config_files()
    expected_files = list(glance["files"])
    for directory in glance["dirs"]:
        expected_files += sorted(str(p) for p in Path(directory).glob("*.conf"))
    assert list(ours.config_files) == expected_files
    assert [
        ours.image_cache_dir,
        ours.image_cache_driver if with_import else None,
        ours.pydev_worker_debug_host,
        ours.pydev_worker_debug_port,
    ] == glance["values"]


# --- the fallback parser against oslo.config's own ---------------------------

_NAME = st.text("abcXYZ_-0", min_size=1, max_size=6)
# Anything on one line but NUL: quotes, separators, comment marks, dollars,
# and characters that str.splitlines() (unlike a file's lines) would split at.
_TEXT = st.text(
    st.characters(exclude_characters="\n\r\x00", codec="utf-8"), max_size=12
) | st.sampled_from(["", "'", '"x"', "'x'", "'x\"", "a = b", "a: b", "#", "\x0c", "\u2028"])
_SPACE = st.sampled_from(["", " ", "  ", "\t"])
_LINE = st.one_of(
    st.builds(lambda n: f"[{n}]", _NAME | st.sampled_from(["DEFAULT", "default", "Default"])),
    st.builds(
        lambda k, a, sep, b, v: f"{k}{a}{sep}{b}{v}",
        _NAME | st.sampled_from(["image-cache-dir", "image_cache_dir", "a b"]),
        _SPACE,
        st.sampled_from(["=", ":", " = ", "=="]),
        _SPACE,
        _TEXT,
    ),
    st.builds(lambda w, t: w + t, st.sampled_from([" ", "\t", "  "]), _TEXT),  # continuation
    st.builds(lambda c, t: c + t, st.sampled_from(["#", ";", "# ", " #"]), _TEXT),  # comment
    st.just(""),
    _SPACE,
    _TEXT,  # anything at all: the error paths
)
_INI = st.builds(
    lambda first, lines, end: first + end + end.join(lines) + end,
    st.sampled_from(["[DEFAULT]", "[Image_Import_Opts]", ""]),
    st.lists(_LINE, max_size=12),
    st.sampled_from(["\n", "\r\n", "\r"]),
)


def _oslo_parse(text: str) -> tuple[dict[str, dict[str, list[str]]] | None, int | None]:
    """What oslo.config's ConfigParser makes of ``text`` read from a file."""
    sections: dict[str, dict[str, list[str]]] = {}
    with tempfile.NamedTemporaryFile("w", suffix=".conf", newline="", delete=False) as f:
        f.write(text)
    try:
        parser = cfg.ConfigParser(f.name, sections)
        try:
            parser.parse()
        except cfg.ParseError as exc:
            return None, exc.lineno
    finally:
        os.unlink(f.name)
    return sections, None


ParseFn = Callable[[str], dict[str, dict[str, list[str]]]]


def _ours(
    text: str, parse: ParseFn = ini.parse
) -> tuple[dict[str, dict[str, list[str]]] | None, int | None]:
    try:
        return parse(text), None
    except ValueError as exc:
        return None, int(re.split("[:,]", str(exc), maxsplit=1)[0])


# The fallback grammar, and the one used where oslo.config is installed (its
# iniparser without importing cfg): both must fill sections as cfg.ConfigParser does.
@pytest.mark.parametrize("parse", [ini.parse, oslo_ini.parse], ids=["fallback", "iniparser"])
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_INI)
def test_parsers_give_exactly_what_oslo_config_gives(parse: ParseFn, text: str) -> None:
    oslo_sections, oslo_error_line = _oslo_parse(text)
    ours_sections, ours_error_line = _ours(text, parse)
    assert ours_sections == oslo_sections
    assert ours_error_line == oslo_error_line  # the same line is blamed


def test_fallback_parser_on_a_glance_sample_file() -> None:
    assert _ours(SAMPLE) == _oslo_parse(SAMPLE)
    sections = ini.parse(SAMPLE)
    assert sections["image_import_opts"]["image_import_plugins"] == [
        "['no_op', \"image_conversion\",\ninject_image_metadata]"
    ]
    # The grammar is the same with or without oslo.config installed.
    assert parse_text(SAMPLE) == {
        (section if section == "DEFAULT" else section.lower(), key): values[-1]
        for section, options in sections.items()
        for key, values in options.items()
    }


_CHUNK = st.sampled_from(["/srv", "x", "-", " ", "$$", "\\$", "$", "$ ", "{", "}", ".", "a"])


def _template(refs: list[str]) -> st.SearchStrategy[str]:
    pieces = _CHUNK | st.sampled_from([f"${r}" for r in refs] + [f"${{{r}}}" for r in refs])
    return st.lists(pieces if refs else _CHUNK, max_size=5).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.data(),
    st.sampled_from(["[Flow]", "[FLOW]", "[flow]"]),  # every referenced option is set
)
def test_templates_expand_exactly_as_oslo_config_expands_them(
    data: st.DataObject, flow_header: str
) -> None:
    # Each option may name those before it, so there is no loop: the same
    # text must give the same value, or an error on both sides.
    one = data.draw(_template([]), "one")
    two = data.draw(_template(["one"]), "two")
    three = data.draw(_template(["one", "two", "DEFAULT.one", "flow.x", "FLOW.x"]), "three")
    x = data.draw(_template(["one", "two"]), "x")
    text = f"[DEFAULT]\none = {one}\ntwo = {two}\nthree = {three}\n{flow_header}\nx = {x}\n"
    with tempfile.TemporaryDirectory() as directory:
        path = write(Path(directory), "glance-api.conf", text)
        conf = cfg.ConfigOpts()
        conf.register_opts([cfg.StrOpt("one"), cfg.StrOpt("two"), cfg.StrOpt("three")])
        conf.register_opt(cfg.StrOpt("x"), group="flow")
        conf(["--config-file", path], project="t", default_config_files=[], default_config_dirs=[])
        settings_ = Settings({(g, n): v for (g, n), v in parse_text(text).items()})
        options: tuple[Option[str | None], ...] = (
            Option("DEFAULT", "one"),
            Option("DEFAULT", "two"),
            Option("DEFAULT", "three"),
            Option("flow", "x"),
        )
        for option in options:
            group = conf if option.group == "DEFAULT" else conf[option.group]
            expected: object
            try:
                expected = group[option.name]
            except (cfg.Error, RecursionError):  # oslo.config recurses on "x = $x"
                expected = ConfigError
            ours: object
            try:
                ours = settings_.get(option)
            except ConfigError:
                ours = ConfigError
            assert ours == expected, (option.label, text)
