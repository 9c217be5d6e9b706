"""The Glance options detectors read, found and parsed the way Glance does.

Values are kept as the files give them (strings) or as a running service holds
them (typed), and converted by the :class:`Option` that declares them, so one
reader serves the command line and a live Glance process alike. The options
themselves are data in :mod:`glance_features.options`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, TypeVar, cast

from glance_features import options as _options
from glance_features._platform import files as _files
from glance_features.errors import ConfigError as ConfigError
from glance_features.options import Option as Option

V = TypeVar("V")

if TYPE_CHECKING:
    from oslo_config.cfg import ConfigOpts

    from glance_features.deployment import Deployment

# Glance 33's WSGI application (glance.common.wsgi_app._get_config_files):
# OS_GLANCE_CONFIG_DIR, else /etc/glance; the import file first, so that
# glance-api.conf wins; the import file only when it exists.
CONFIG_DIR_ENV = "OS_GLANCE_CONFIG_DIR"
SERVICE_FILES = ("glance-image-import.conf", "glance-api.conf")
PASTE_FILE = "glance-api-paste.ini"
# Where oslo.config looks for project "glance" when no directory is named.
DEFAULT_SEARCH_DIRS = ("~/.glance", "~", "/etc/glance", "/etc")
MAX_CONFIG_BYTES = 4 << 20

_TEMPLATE = re.compile(r"\$(?:\{([_a-z][._a-z0-9]*)\}|([_a-z][._a-z0-9]*)|(\$))", re.IGNORECASE)


def known_options() -> dict[str, Option[object]]:
    """Every option the built-in detectors read, by keyword."""
    return dict(_options.BY_KEYWORD)


class Settings:
    """Glance option values and the files they came from. Immutable and hashable.

    ``Settings(image_cache_driver="xattr")`` sets options by keyword;
    ``settings.image_cache_driver`` or ``settings.get(option)`` reads one,
    with Glance's default when it is not set.
    """

    __slots__ = ("_hash", "_values", "config_files", "secret_names")
    _hash: int | None
    _values: dict[tuple[str, str], object]
    config_files: tuple[str, ...]
    secret_names: frozenset[str]

    def __init__(
        self,
        values: Mapping[tuple[str, str], object] | None = None,
        *,
        config_files: Iterable[str] = (),
        secret_names: Iterable[str] = (),
        **by_keyword: object,
    ) -> None:
        merged = {(_group(g), n): v for (g, n), v in (values or {}).items()}
        if by_keyword:
            for keyword, value in by_keyword.items():
                option = _options.BY_KEYWORD.get(keyword)
                if option is None:
                    raise TypeError(f"Settings() got an unknown option {keyword!r}")
                merged[(option.group, option.name)] = (
                    tuple(value) if isinstance(value, list) else value
                )
        object.__setattr__(self, "_values", merged)
        object.__setattr__(self, "config_files", tuple(config_files))
        # Options a running Glance registers secret=True, beyond the catalogs' own.
        object.__setattr__(self, "secret_names", frozenset(secret_names))
        object.__setattr__(self, "_hash", None)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Settings are immutable")

    def __getattr__(self, name: str) -> object:
        """``settings.image_cache_driver``: a built-in option by its keyword;
        :meth:`get` gives a value of the option's declared type."""
        option = _options.BY_KEYWORD.get(name)
        if option is None:
            raise AttributeError(f"Settings has no option {name!r}")
        return self.get(option)

    def get(self, option: Option[V]) -> V:
        """The option's value, converted and expanded, or its default."""
        raw = self._values.get((option.group, option.name))
        if raw is None:
            return cast(V, option.default)
        if isinstance(raw, str):
            raw = self._expand(raw, option.group)
        # Its kind's converter makes the type its declaration names.
        return cast(V, option.convert(raw))

    def secret_values(self, declared: Iterable[str] = ()) -> frozenset[str]:
        """The values never to be shown: of the options named ``declared`` (the
        detectors' catalogs) and of those the running Glance registers secret."""
        from glance_features.redaction import secret_values

        return secret_values(self._values, self.secret_names.union(declared))

    def is_set(self, option: Option[object]) -> bool:
        return self._values.get((option.group, option.name)) is not None

    def raw(self, group: str) -> dict[str, object]:
        """Every value of one group as read, for detectors whose groups are
        named by the operator (a store backend's ``[ceph]``)."""
        wanted = _group(group)
        return {n: v for (g, n), v in self._values.items() if g == wanted}

    def _expand(self, value: str, group: str, depth: int = 0) -> str:
        # oslo.config's $name and ${group.name} templates, '$$' for a dollar.
        def substitute(match: re.Match[str]) -> str:
            if match.group(3):
                return "$"
            key = match.group(1) or match.group(2)
            where, _, name = key.partition(".") if "." in key else ("", "", key)
            if where and (where == "DEFAULT" or where != where.lower()):
                # oslo.config looks the group up by its registered name: Glance's
                # are lower case, and DEFAULT is no group there.
                raise ConfigError(f"cannot expand ${key}: no group {where!r}")
            for candidate in (
                [(_group(where), name)] if where else [(group, name), ("DEFAULT", name)]
            ):
                found = self._values.get(candidate)
                if found is not None:
                    if depth > 10:
                        raise ConfigError(f"${key}: template refers to itself")
                    return self._expand(str(found), candidate[0], depth + 1)
            raise ConfigError(f"cannot expand ${key}: no option {key!r} is set")

        return _TEMPLATE.sub(substitute, value.replace("\\$", "$$")) if "$" in value else value

    def _key(self) -> tuple[object, ...]:
        return (
            tuple(sorted((k, repr(v)) for k, v in self._values.items())),
            self.config_files,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Settings):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        cached: int | None = self._hash
        if cached is None:
            cached = hash(self._key())
            object.__setattr__(self, "_hash", cached)
        return cached

    def __repr__(self) -> str:
        values = ", ".join(f"[{g}] {n}={v!r}" for (g, n), v in sorted(self._values.items()))
        return f"Settings({values}; files={list(self.config_files)})"

    @classmethod
    def from_config_files(
        cls,
        paths: Iterable[str | os.PathLike[str]] | None = None,
        config_dir: str | os.PathLike[str] | None = None,
        *,
        deployment: Deployment | None = None,
        glance_version: str | None = None,
    ) -> Settings:
        """Read Glance config files the way oslo.config does: later files win,
        then every ``*.conf`` of ``config_dir`` in sorted order.

        With neither, find them as the Glance service does, served the way
        ``deployment`` says (:func:`service_config_files`).
        """
        if paths is None and config_dir is None:
            files = service_config_files(deployment, glance_version)
        else:
            files = [os.fspath(p) for p in paths or ()]
            if config_dir is not None:
                files.extend(conf_files_in(os.fspath(config_dir)))
        values: dict[tuple[str, str], object] = {}
        origin: dict[tuple[str, str], str] = {}
        for path in files:
            parsed = parse_file(path)
            values.update(parsed)
            origin.update(dict.fromkeys(parsed, path))
        settings = cls(values, config_files=files)
        # A value Glance would refuse is refused now, naming its file, rather
        # than when a detector or a requirement rule first reads it.
        for option in _options.BUILTIN_OPTIONS:
            if settings.is_set(option):
                try:
                    settings.get(option)
                except ConfigError as exc:
                    where = origin.get((option.group, option.name), "<settings>")
                    raise ConfigError(f"{where}: {exc}") from None
        return settings

    @classmethod
    def from_oslo_config(cls, conf: ConfigOpts) -> Settings:
        """Settings inside a Glance service, from its oslo.config ``ConfigOpts``.

        The service's own config files are read with oslo.config's parser, so
        an option Glance registers late (or never, in this process) is seen as
        the file sets it. Registered options then add what files cannot show:
        ``set_override`` and command-line values.
        """
        files = [str(f) for f in _strings(_oslo_value(conf, "config_file"))]
        for config_dir in _strings(_oslo_value(conf, "config_dir")):
            files.extend(conf_files_in(str(config_dir)))
        values: dict[tuple[str, str], object] = {}
        for path in files:
            values.update(parse_file(path))
        for option in _options.BUILTIN_OPTIONS:
            registered = _registered_value(conf, option)
            if registered is not _UNREGISTERED and _adds(option, values, registered):
                values[(option.group, option.name)] = registered
        names = {name for _group, name in values}
        return cls(values, config_files=files, secret_names=_declared_secret(conf, names))


def _adds(
    option: Option[object], values: Mapping[tuple[str, str], object], registered: object
) -> bool:
    """Whether the registered value says more than the files: an override or a
    command-line value. What the files say, or the default, adds nothing, so
    the settings equal those read from the same files before Glance loaded
    (and a probe started then is the same probe, shared or cached)."""
    written = values.get((option.group, option.name))
    said = option.default if written is None else written
    try:
        # Converted both sides: glance_store registers a list where our
        # default is a tuple ([glance_store] stores).
        return bool(option.convert(said) != option.convert(registered))
    except ConfigError:
        return True


def _declared_secret(conf: ConfigOpts, names: set[str]) -> set[str]:
    """Which of ``names`` ``conf`` registers with ``secret=True`` in any group
    (a value is masked by its option's name, wherever it is set). Only the
    names that have a value are looked up: Glance registers thousands."""
    found: set[str] = set()
    try:
        tables = [conf._opts, *(group._opts for group in conf._groups.values())]
    except Exception:  # not an oslo.config ConfigOpts
        return found
    for table in tables:
        for name in names - found:
            info = table.get(name)
            if info is not None and getattr(info.get("opt"), "secret", False):
                found.add(name)
    return found


_UNREGISTERED = object()


def _registered_value(conf: ConfigOpts, option: Option[object]) -> object:
    try:
        group = conf if option.group == "DEFAULT" else conf[option.group]
        return group[option.name]
    except Exception:  # unregistered (NoSuchOpt/NoSuchGroup), or not a ConfigOpts
        return _UNREGISTERED


def _oslo_value(conf: ConfigOpts, name: str) -> object:
    try:
        value: object = conf[name]
    except Exception:  # not parsed yet, or not an oslo.config object at all
        return None
    return value


def _strings(value: object) -> list[object]:
    """An option that is one string or a list of them, as a list."""
    if isinstance(value, str):
        return [value]
    return list(value) if isinstance(value, (list, tuple)) else []


def _group(name: str) -> str:
    # oslo.config matches group names case-insensitively, except DEFAULT:
    # a [default] section is a group of that name, not DEFAULT.
    return name if name == "DEFAULT" else name.lower()


def service_config_dir(environ: Mapping[str, str] | None = None) -> str | None:
    """The directory the Glance WSGI application reads: ``OS_GLANCE_CONFIG_DIR``,
    else the first of oslo.config's search directories holding ``glance-api.conf``."""
    env = (os.environ if environ is None else environ).get(CONFIG_DIR_ENV, "").strip()
    if env:
        return env
    for directory in DEFAULT_SEARCH_DIRS:
        path = os.path.expanduser(directory)
        if os.path.isfile(os.path.join(path, "glance-api.conf")):
            return path
    return None


def service_config_files(
    deployment: Deployment | None = None, glance_version: str | None = None
) -> list[str]:
    """The files the Glance API service reads, served as ``deployment`` says.

    The standalone eventlet ``glance-api`` parses its command line with
    oslo.config: its ``--config-file`` arguments, else ``glance.conf`` and
    ``glance-api.conf`` where oslo.config looks; never the import file. The
    WSGI application (and an unknown way of serving, as Glance 33 serves
    only so) reads the import file when present and ``glance-api.conf`` of
    one directory (28's also its paste file, first). Both then read
    oslo.config's ``.conf.d`` directories.
    """
    if deployment is not None and deployment.served_by == "eventlet":
        files, directory = deployment.config_args()
        if not files:
            files = _oslo_default_files(("glance.conf", "glance-api.conf"))
        if directory is not None:
            return [*files, *conf_files_in(directory)]
        return files + _conf_d_files("glance-api")
    environ = deployment.environ if deployment is not None and deployment.environ else None
    found = service_config_dir(environ)
    if found is None:
        return []
    names: tuple[str, ...] = SERVICE_FILES
    if glance_version is not None and _release(glance_version) < (29,):
        # 28's init_app parses its paste file as a config file too, first
        # (wsgi_app.CONFIG_FILES; measured: tests/test_releases.py).
        names = (PASTE_FILE, *names)
    files = [
        os.path.join(found, name)
        for name in names
        if os.path.exists(os.path.join(found, name)) or name == "glance-api.conf"
    ]
    return files + _conf_d_files(_wsgi_prog(deployment, glance_version))


def _wsgi_prog(deployment: Deployment | None, glance_version: str | None) -> str:
    """The program name oslo.config gives the WSGI application's config: 33
    says glance-api; 29-32 call CONF([], project="glance"), so it is the
    server's own argv[0] (uwsgi.conf.d under uWSGI, measured on 29-32)."""
    if glance_version is None or _release(glance_version) >= (33,):
        return "glance-api"
    if deployment is not None and deployment.command:
        return os.path.basename(deployment.command[0])
    served_by = deployment.served_by if deployment is not None else None
    return {"uwsgi": "uwsgi", "gunicorn": "gunicorn"}.get(served_by or "", "glance-api")


def _oslo_default_files(names: Iterable[str]) -> list[str]:
    """oslo.config's find_config_files: each name where it is first found."""
    found = []
    for name in names:
        for search in DEFAULT_SEARCH_DIRS:
            path = os.path.join(os.path.expanduser(search), name)
            if os.path.isfile(path):
                found.append(path)
                break
    return found


def _release(version: str) -> tuple[int, ...]:
    """The release numbers of a version (31.1.1.dev3 -> (31, 1, 1))."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version).release
    except InvalidVersion:
        return (0,)


def _conf_d_files(prog: str) -> list[str]:
    # oslo.config's default config dirs (find_config_dirs("glance", prog)):
    # each name where it is first found in its search path, whatever directory
    # the files came from; Glance does not look for them beside the files.
    files: list[str] = []
    for name in ("glance.conf.d", f"{prog}.conf.d"):
        for search in DEFAULT_SEARCH_DIRS:
            conf_d = os.path.join(os.path.expanduser(search), name)
            if os.path.exists(conf_d):
                files.extend(conf_files_in(conf_d))
                break
    return files


def search_description() -> str:
    env = os.environ.get(CONFIG_DIR_ENV, "").strip()
    if env:
        return f"{CONFIG_DIR_ENV}={env}"
    return "glance-api.conf in " + ", ".join(DEFAULT_SEARCH_DIRS)


def conf_files_in(directory: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        raise ConfigError(f"config dir {directory}: no such directory") from None
    except NotADirectoryError:
        raise ConfigError(f"config dir {directory}: not a directory") from None
    except OSError as exc:
        raise ConfigError(f"config dir {directory}: {exc.strerror}") from None
    return [os.path.join(directory, n) for n in sorted(names) if n.endswith(".conf")]


def parse_file(path: str) -> dict[tuple[str, str], str]:
    """One config file's values as oslo.config's parser reads them."""
    try:
        text = _files.read_text(path, MAX_CONFIG_BYTES)
    except _files.ReadError as exc:
        raise ConfigError(f"config file {exc.strerror}") from None
    return parse_text(text, path)


def parse_text(text: str, source: str = "<string>") -> dict[tuple[str, str], str]:
    """(group, option) -> value; oslo.config's grammar when it is installed."""
    if "\x00" in text:
        raise ConfigError(f"{source}: binary data, not INI text")
    try:
        from glance_features._platform import oslo_ini as parser
    except ImportError:
        from glance_features._platform import ini as parser  # type: ignore[no-redef]
    try:
        sections = parser.parse(text)
    except ValueError as exc:
        raise ConfigError(f"at {source}:{exc}") from None
    values: dict[tuple[str, str], str] = {}
    for section, options in sections.items():
        for name, found in options.items():
            values[(_group(section), name)] = found[-1]  # the last one in a file wins
    return values
