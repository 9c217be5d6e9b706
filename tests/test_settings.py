from __future__ import annotations

import os
from pathlib import Path

import pytest

from glance_features.settings import ConfigError, Settings, parse_ini

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
pydev-worker-debug-port = 5679

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
    assert Settings.from_config_files().config_files in (
        (),
        ("/etc/glance/glance-api.conf",),
        ("/etc/glance-api.conf",),
    )
    (tmp_path / ".glance").mkdir()
    write(tmp_path, "glance-api.conf", "[DEFAULT]\nimage_cache_dir = /home\n")
    write(tmp_path / ".glance", "glance-api.conf", "[DEFAULT]\nimage_cache_dir = /dot\n")
    s = Settings.from_config_files()
    assert s.image_cache_dir == "/dot"
    assert s.config_files == (str(tmp_path / ".glance" / "glance-api.conf"),)


def test_continuation_lines_and_quotes() -> None:
    parsed = list(parse_ini("[s]\nk = 'one'\n  two\n\tthree\n\nj: v\n"))
    assert parsed == [("s", "k", "one\ntwo\nthree"), ("s", "j", "v")]
    assert list(parse_ini('[s]\nk = "quoted"\n')) == [("s", "k", "quoted")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image_cache_dir = /x\n", "1: option before any"),
        ("[DEFAULT\n", "1: section header lacks"),
        ("[]\n", "empty section"),
        ("[DEFAULT]\njust words\n", "2: expected 'name = value'"),
        ("[DEFAULT]\n= value\n", "empty option name"),
        ("[DEFAULT]\n\n  continued\n", "3: unexpected continuation"),
        ("[DEFAULT]\npydev_worker_debug_port = http\n", "not a port"),
        ("[image_import_opts]\nimage_import_plugins = image_conversion\n", "start with"),
        ("[image_import_opts]\nimage_import_plugins = ['a', 'b'\n", "end with"),
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
    message_text = str(caught.value)
    assert (
        "bad.conf" in message_text
        or "pydev_worker_debug_port" in message_text
        or ("image_import_plugins" in message_text)
    )


def test_missing_unreadable_and_directory_inputs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        Settings.from_config_files([str(tmp_path / "absent.conf")])
    with pytest.raises(ConfigError, match="is a directory"):
        Settings.from_config_files([str(tmp_path)])
    with pytest.raises(ConfigError, match="no such directory"):
        Settings.from_config_files([], config_dir=tmp_path / "nodir")
    if os.geteuid() != 0:  # root reads anything; the CLI test drops privileges instead
        path = write(tmp_path, "secret.conf", "[DEFAULT]\n")
        os.chmod(path, 0)
        with pytest.raises(ConfigError, match="Permission denied"):
            Settings.from_config_files([path])


def test_settings_are_hashable_cache_keys() -> None:
    assert hash(Settings(image_import_plugins=("a",))) == hash(
        Settings(image_import_plugins=("a",))
    )
