"""The Glance options detectors read, and an oslo.config-compatible reader."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator, Mapping

from glance_features._record import record

TYPE_CHECKING = False  # typing itself would cost Glance's start-up; see __init__
if TYPE_CHECKING:
    from typing import Any

# Where oslo.config looks for ``glance-api.conf`` when no --config-file is given;
# like oslo.config, the first one found is the only one read.
DEFAULT_SEARCH_DIRS = ("~/.glance", "~", "/etc/glance", "/etc")
DEFAULT_CONFIG_NAME = "glance-api.conf"

# The options Glance registers, as (group, name) -> Settings field.
GLANCE_OPTIONS: Mapping[tuple[str, str], str] = {
    ("DEFAULT", "image_cache_dir"): "image_cache_dir",
    ("DEFAULT", "image_cache_driver"): "image_cache_driver",
    ("DEFAULT", "pydev_worker_debug_host"): "pydev_worker_debug_host",
    ("DEFAULT", "pydev_worker_debug_port"): "pydev_worker_debug_port",
    ("image_import_opts", "image_import_plugins"): "image_import_plugins",
    ("image_conversion", "output_format"): "image_conversion_output_format",
    ("taskflow_executor", "conversion_format"): "conversion_format",
}


class ConfigError(ValueError):
    """A config file is missing, unreadable or not oslo.config INI."""


@record
class Settings:
    """Glance's settings for the advanced features, with Glance's defaults."""

    image_cache_dir: str | None = None
    image_cache_driver: str = "centralized_db"
    pydev_worker_debug_host: str | None = None
    pydev_worker_debug_port: int = 5678
    image_import_plugins: tuple[str, ...] = ()
    image_conversion_output_format: str = "raw"
    conversion_format: str | None = None
    config_files: tuple[str, ...] = ()

    @classmethod
    def from_config_files(
        cls,
        paths: Iterable[str | os.PathLike[str]] | None = None,
        config_dir: str | os.PathLike[str] | None = None,
    ) -> Settings:
        """Read Glance config files the way oslo.config does: later files win.

        With neither ``paths`` nor ``config_dir``, the first ``glance-api.conf``
        found in :data:`DEFAULT_SEARCH_DIRS` is read, if any.
        """
        if paths is None and config_dir is None:
            found = find_default_config_file()
            files = [found] if found else []
        else:
            files = [os.fspath(p) for p in paths or ()]
            if config_dir is not None:
                files.extend(_conf_files_in(os.fspath(config_dir)))
        values: dict[tuple[str, str], str] = {}
        for path in files:
            for section, key, value in parse_ini(_read(path), path):
                if (section, key) in GLANCE_OPTIONS:
                    values[(section, key)] = value
        return cls._from_raw(values, tuple(files))

    @classmethod
    def from_oslo_config(cls, conf: Any) -> Settings:
        """Read the options from an oslo.config ``ConfigOpts`` in which Glance
        registered them (``cfg.CONF`` inside a Glance service). An option Glance
        did not register in that process counts as unset."""
        from oslo_config import cfg

        values: dict[tuple[str, str], object] = {}
        for group, name in GLANCE_OPTIONS:
            try:
                values[(group, name)] = conf[name] if group == "DEFAULT" else conf[group][name]
            except (cfg.NoSuchOptError, cfg.NoSuchGroupError, KeyError):
                continue  # not registered in this process: unset
            except cfg.Error as exc:
                raise ConfigError(f"[{group}] {name}: {exc}") from None
        files = [str(f) for f in _oslo_value(conf, "config_file") or ()]
        config_dirs = _oslo_value(conf, "config_dir") or ()
        for config_dir in [config_dirs] if isinstance(config_dirs, str) else config_dirs:
            files.extend(_conf_files_in(str(config_dir)))
        return cls._from_raw(values, tuple(files))

    @classmethod
    def _from_raw(cls, raw: Mapping[tuple[str, str], object], files: tuple[str, ...]) -> Settings:
        """Settings from option values: INI strings, or oslo.config's typed values."""
        kwargs: dict[str, object] = {"config_files": files}
        for option, name in GLANCE_OPTIONS.items():
            value = raw.get(option)
            if value is None:
                continue
            if name == "pydev_worker_debug_port":
                kwargs[name] = _port(value, option)
            elif name == "image_import_plugins":
                kwargs[name] = _list(value, option)
            elif name in ("image_cache_driver", "image_conversion_output_format"):
                kwargs[name] = str(value) or getattr(_DEFAULTS, name)
            else:
                kwargs[name] = str(value) or None
        return cls(**kwargs)  # type: ignore[arg-type]


_DEFAULTS = Settings()


def _oslo_value(conf: Any, name: str) -> Any:
    try:
        return conf[name]
    except Exception:  # not parsed yet, or not an oslo.config object at all
        return None


def find_default_config_file() -> str | None:
    for directory in DEFAULT_SEARCH_DIRS:
        candidate = os.path.join(os.path.expanduser(directory), DEFAULT_CONFIG_NAME)
        if os.path.isfile(candidate):
            return candidate
    return None


def default_search_paths() -> list[str]:
    return [os.path.join(os.path.expanduser(d), DEFAULT_CONFIG_NAME) for d in DEFAULT_SEARCH_DIRS]


def _conf_files_in(directory: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        raise ConfigError(f"config dir {directory}: no such directory") from None
    except NotADirectoryError:
        raise ConfigError(f"config dir {directory}: not a directory") from None
    except OSError as exc:
        raise ConfigError(f"config dir {directory}: {exc.strerror}") from None
    return [os.path.join(directory, n) for n in sorted(names) if n.endswith(".conf")]


def _read(path: str) -> str:
    try:
        # A FIFO or device would block or never end: only regular files are read.
        if not stat.S_ISREG(os.stat(path).st_mode) and not os.path.isdir(path):
            raise ConfigError(f"config file {path}: not a regular file")
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path}: is a directory") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None


def parse_ini(text: str, source: str = "<string>") -> Iterator[tuple[str, str, str]]:
    """Yield ``(section, key, value)`` as oslo.config's INI parser reads them.

    Blank lines end a value; lines that start with white space continue it
    (joined with newlines); ``#`` and ``;`` start comments only at the start
    of a line; a value wrapped in matching quotes loses them.
    """
    section: str | None = None
    key: str | None = None
    parts: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if "\x00" in line:
            raise ConfigError(f"{source}:{lineno}: binary data, not INI text")
        if not line or line[0] in " \t":
            if line and key is None:
                raise ConfigError(f"{source}:{lineno}: unexpected continuation line")
            if line:
                parts.append(line.lstrip())
                continue
        if key is not None:
            assert section is not None
            yield section, key, "\n".join(parts)
            key, parts = None, []
        if not line:
            continue
        if line[0] == "[":
            if not line.endswith("]"):
                raise ConfigError(f"{source}:{lineno}: section header lacks ']'")
            section = line[1:-1].strip()
            if not section:
                raise ConfigError(f"{source}:{lineno}: empty section name")
        elif line[0] in "#;":
            continue
        else:
            if section is None:
                raise ConfigError(f"{source}:{lineno}: option before any [section]")
            key, first = _split_assignment(line, source, lineno)
            parts = [first]
    if key is not None:
        assert section is not None
        yield section, key, "\n".join(parts)


def _split_assignment(line: str, source: str, lineno: int) -> tuple[str, str]:
    positions = [i for i in (line.find("="), line.find(":")) if i != -1]
    if not positions:
        raise ConfigError(f"{source}:{lineno}: expected 'name = value', got {line[:60]!r}")
    at = min(positions)
    key = line[:at].strip().replace("-", "_")
    if not key:
        raise ConfigError(f"{source}:{lineno}: empty option name")
    value = line[at + 1 :].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return key, value


def _list(value: object, option: tuple[str, str]) -> tuple[str, ...]:
    """A list value as Glance's ListOpt reads it (``bounds=True`` and quoted
    string items): ``['image_conversion', 'inject_image_metadata']``.
    Anything Glance would reject is a ConfigError here too."""
    if isinstance(value, (list, tuple)):
        return tuple(str(item) for item in value)
    text = str(value).strip().rstrip(",")
    try:
        if not text.startswith("["):
            raise ValueError('the value should start with "["')
        if not text.endswith("]"):
            raise ValueError('the value should end with "]"')
        parts = text[1:-1].split(",") if text[1:-1] else []
        items: list[str] = []
        while parts:
            item = parts.pop(0)
            # A comma inside a quoted item splits it; glue until it parses.
            while True:
                try:
                    items.append(_quoted_string(item.strip()))
                    break
                except ValueError:
                    if not parts:
                        raise
                    item += "," + parts.pop(0)
    except ValueError as exc:
        raise ConfigError(f"[{option[0]}] {option[1]} = {text!r}: {exc}") from None
    return tuple(items)


def _quoted_string(item: str) -> str:
    if item and item[0] in "\"'":
        if len(item) == 1 or item[-1] != item[0]:
            raise ValueError(f"non-closed quote: {item}")
        return item[1:-1]
    return item


def _port(value: object, option: tuple[str, str]) -> int:
    try:
        port = int(str(value))
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(f"[{option[0]}] {option[1]} = {value!r}: not a port number")
    return port
