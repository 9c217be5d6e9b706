"""The Glance options glance-features reads: where each lives, its type as
Glance registers it, its default.

Data at the bottom of the package: :mod:`~glance_features.settings` reads the
values, the detectors decide with them, the test doubles fake with them, and
none of them needs another to know what an option is. A third-party detector
declares its own :class:`Option` and reads it with ``settings.get(option)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, Literal, TypeVar

from glance_features.errors import ConfigError

# How a value is read, as oslo.config's option types read it.
Kind = Literal["str", "int", "port", "bool", "list", "bounded_list", "dict"]
V = TypeVar("V", covariant=True)  # an Option[int] is an Option[object]


@dataclasses.dataclass(frozen=True)
class Option(Generic[V]):
    """One Glance option: where it lives, its type as Glance registers it, its
    default. ``V`` is the type of its value, which its ``kind`` converts to:
    declare it (``Option[int | None]``) and ``settings.get(option)`` is one."""

    group: str
    name: str
    kind: Kind = "str"
    default: object = None
    attr: str = ""  # the keyword for Settings(...), when not the option name

    @property
    def keyword(self) -> str:
        return self.attr or self.name

    @property
    def label(self) -> str:
        return f"[{self.group}] {self.name}"

    def convert(self, value: object) -> object:
        """A file's string as Glance's option type reads it; typed values pass."""
        if not isinstance(value, str):
            return tuple(value) if isinstance(value, list) else value
        try:
            return _CONVERTERS[self.kind](value)
        except ValueError as exc:
            raise ConfigError(f"{self.label} = {value!r}: {exc}") from None


def _int(text: str) -> int:
    return int(text.strip())


def _port(text: str) -> int:
    port = int(text.strip())
    if not 0 <= port <= 65535:
        raise ValueError("not a port number")
    return port


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "yes", "true", "on"):
        return True
    if lowered in ("0", "no", "false", "off"):
        return False
    raise ValueError("not a boolean")


def _bounded_list(text: str) -> tuple[str, ...]:
    """A ListOpt with ``bounds=True`` and quoted strings, as Glance registers
    ``image_import_plugins``: a value without its brackets is one Glance
    refuses, so it is refused here."""
    text = text.strip().rstrip(",")
    if not text.startswith("["):
        raise ValueError('the value should start with "["')
    if not text.endswith("]"):
        raise ValueError('the value should end with "]"')
    return _list(text[1:-1])


def _list(text: str) -> tuple[str, ...]:
    """A plain ListOpt (``[glance_store] stores``): comma-separated items."""
    items = []
    for item in _split_commas(text):
        item = item.strip()
        if len(item) >= 2 and item[0] == item[-1] and item[0] in "\"'":
            item = item[1:-1]
        elif item[:1] in ("'", '"'):
            raise ValueError(f"non-closed quote: {item}")
        if item:
            items.append(item)
    return tuple(items)


def _split_commas(text: str) -> list[str]:
    parts, current, quote = [], "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == ",":
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return parts


def _dict(text: str) -> dict[str, str]:
    pairs = {}
    for item in _split_commas(text):
        if not item.strip():
            continue
        key, sep, value = item.partition(":")
        if not sep:
            raise ValueError(f"{item.strip()!r} is not key:value")
        pairs[key.strip()] = value.strip()
    return pairs


_CONVERTERS: dict[Kind, Callable[[str], object]] = {
    "str": str,
    "int": _int,
    "port": _port,
    "bool": _bool,
    "list": _list,
    "bounded_list": _bounded_list,
    "dict": _dict,
}


# The options of Glance and glance_store the built-in detectors read.
# [DEFAULT] image cache (the xattr driver)
IMAGE_CACHE_DIR: Option[str | None] = Option("DEFAULT", "image_cache_dir")
IMAGE_CACHE_DRIVER: Option[str] = Option("DEFAULT", "image_cache_driver", default="centralized_db")
# pydev, in the standalone server's workers
DEBUG_HOST: Option[str | None] = Option("DEFAULT", "pydev_worker_debug_host")
DEBUG_PORT: Option[int] = Option("DEFAULT", "pydev_worker_debug_port", "port", default=5678)
# The standalone server with workers = 0 serves from its parent alone.
WORKERS: Option[int | None] = Option("DEFAULT", "workers", "int")
# Interoperable image import and conversion (qemu-img, image_decompression)
IMPORT_PLUGINS: Option[Sequence[str]] = Option(
    "image_import_opts", "image_import_plugins", "bounded_list", default=()
)
OUTPUT_FORMAT: Option[str] = Option(
    "image_conversion", "output_format", default="raw", attr="image_conversion_output_format"
)
CONVERSION_FORMAT: Option[str | None] = Option("taskflow_executor", "conversion_format")
PYTHON_INTERPRETER: Option[str | None] = Option("wsgi", "python_interpreter")
# Which stores are enabled: multi-store (enabled_backends) or the legacy list.
ENABLED_BACKENDS: Option[Mapping[str, str] | None] = Option("DEFAULT", "enabled_backends", "dict")
DEFAULT_BACKEND: Option[str | None] = Option("glance_store", "default_backend")
STORES: Option[Sequence[str]] = Option("glance_store", "stores", "list", default=("file", "http"))
DEFAULT_STORE: Option[str] = Option("glance_store", "default_store", default="file")
STORE_SELECTION = (ENABLED_BACKENDS, DEFAULT_BACKEND, STORES, DEFAULT_STORE)
DEFAULT_DATADIR = "/var/lib/glance/images"
LEGACY_DATADIR: Option[str] = Option(
    "glance_store", "filesystem_store_datadir", default=DEFAULT_DATADIR
)

BUILTIN_OPTIONS = (
    IMAGE_CACHE_DIR,
    IMAGE_CACHE_DRIVER,
    DEBUG_HOST,
    DEBUG_PORT,
    WORKERS,
    IMPORT_PLUGINS,
    OUTPUT_FORMAT,
    CONVERSION_FORMAT,
    PYTHON_INTERPRETER,
    *STORE_SELECTION,
    LEGACY_DATADIR,
)
# Settings(image_cache_driver="xattr") and settings.image_cache_driver.
BY_KEYWORD = {option.keyword: option for option in BUILTIN_OPTIONS}
