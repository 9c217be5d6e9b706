"""How the Glance API service on this host is run, found from the host.

Which server runs it (the standalone eventlet ``glance-api``, uWSGI, mod_wsgi
or gunicorn), in which interpreter, as which account, with which PATH and
environment. Inside a Glance process all of it is this process; from the
command line it is read from what starts the service: a systemd unit, an init
script, a uWSGI ini, Apache's config, or the running processes. Each answer
says where it was learnt.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shlex
import sys
from collections.abc import Iterable, Iterator, Mapping

SERVERS = ("eventlet", "uwsgi", "mod_wsgi", "gunicorn")
# The environment variables of the service that change what a verdict is;
# nothing else of a unit's or a process's environment is kept.
KEPT_ENV = ("PATH", "EVENTLET_NO_GREENDNS", "OS_GLANCE_CONFIG_DIR")
# systemd's own PATH for services (Debian 12's systemd is built with split /usr).
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system",
             "/usr/lib/systemd/system")  # fmt: skip
UNIT_NAMES = ("glance-api.service", "openstack-glance-api.service", "devstack@g-api.service")
INIT_SCRIPTS = ("/etc/init.d/glance-api", "/etc/init.d/openstack-glance-api")
UWSGI_INIS = (
    "/etc/glance/glance-uwsgi.ini",
    "/etc/glance/glance-api-uwsgi.ini",
    "/etc/uwsgi/apps-enabled/glance-api.ini",
    "/etc/uwsgi.d/glance-api.ini",
)
APACHE_DIRS = ("/etc/apache2/sites-enabled", "/etc/httpd/conf.d")
# Where deployment tools put Glance's interpreter, when nothing names it.
KNOWN_PYTHONS = ("/var/lib/kolla/venv/bin/python3", "/openstack/venvs/glance/bin/python3")
MAX_FILE = 1 << 20
# The interpreter a distribution's uWSGI python3 plugin embeds.
DISTRIBUTION_PYTHON = "/usr/bin/python3"


@dataclasses.dataclass(frozen=True)
class Deployment:
    """The Glance API service as this host runs it."""

    served_by: str | None = None  # one of SERVERS; None: not known
    served_by_from: str = "nothing on this host shows it"
    python: str | None = None  # the service's interpreter; None: this process's
    python_from: str = "this interpreter"
    user: str | None = None  # the account the service definition names
    environ: Mapping[str, str] = dataclasses.field(default_factory=dict)  # KEPT_ENV only
    workers: int | None = None
    command: tuple[str, ...] = ()  # the command line that starts it, when known
    inside: bool = False  # this process is the service

    @property
    def path(self) -> str:
        """The PATH the service looks binaries up on."""
        return self.environ.get("PATH") or os.environ.get("PATH", os.defpath)

    def config_args(self) -> tuple[list[str], str | None]:
        """``--config-file`` and ``--config-dir`` from the service's command line."""
        files: list[str] = []
        directory = None
        args = list(self.command[1:])
        for i, arg in enumerate(args):
            name, eq, value = arg.partition("=")
            if not eq and i + 1 < len(args):
                value = args[i + 1]
            if name == "--config-file" and value:
                files.append(value)
            elif name == "--config-dir" and value:
                directory = value
        return files, directory


def inside_service() -> Deployment | None:
    """This process, when it is a Glance API service (the server's modules are
    loaded, or Glance's own console script runs)."""
    if "glance" not in sys.modules and "glance.common" not in sys.modules:
        return None
    environ = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
    for module, server in (("uwsgi", "uwsgi"), ("mod_wsgi", "mod_wsgi"), ("gunicorn", "gunicorn")):
        if module in sys.modules:
            return Deployment(server, f"this process ({module} is loaded)", environ=environ,
                              inside=True)  # fmt: skip
    if "glance.cmd.api" in sys.modules or os.path.basename(sys.argv[0]) == "glance-api":
        return Deployment("eventlet", "this process (glance-api)", environ=environ, inside=True)
    return None


@functools.lru_cache(maxsize=8)
def discover(
    served_by: str | None = None, python: str | None = None, from_host: bool = True
) -> Deployment:
    """The service: this process inside Glance, else what this host shows
    (``from_host``, as the command line reads it), else this interpreter;
    ``served_by`` and ``python`` (``--served-by``, ``--python``) win."""
    found = inside_service() or (_from_host() if from_host else Deployment())
    if served_by is not None:
        found = dataclasses.replace(found, served_by=served_by, served_by_from="--served-by")
    if python is not None:
        found = dataclasses.replace(found, python=python, python_from="--python")
    elif found.python is None and not found.inside and from_host:
        found = _with_known_python(found)
    return found


def _from_host() -> Deployment:
    import psutil

    for source in (_systemd_unit, _init_script, _uwsgi_ini, _apache, _process):
        try:
            found = source()
        except (ValueError, OSError, psutil.Error):
            continue  # a definition this reading cannot follow says nothing
        if found is not None:
            return _absolute_python(found)
    return Deployment()


def _absolute_python(found: Deployment) -> Deployment:
    """A relative interpreter (``python3 glance-api``, uWSGI's ``home = venv``)
    names nothing this process can run for certain: not known, then."""
    if found.python is None or os.path.isabs(found.python):
        return found
    return dataclasses.replace(found, python=None, python_from="this interpreter")


def _read(path: str) -> str | None:
    from glance_features._platform import files

    try:
        return files.read_text(path, MAX_FILE)
    except files.ReadError:
        return None


def _systemd_unit() -> Deployment | None:
    # Without systemd running (a container, an init-script host), the unit is
    # not what starts the service.
    if not os.path.isdir("/run/systemd/system") and any(map(os.path.exists, INIT_SCRIPTS)):
        return None
    for name in UNIT_NAMES:
        for directory in UNIT_DIRS:
            path = os.path.join(directory, name)
            text = _read(path)
            if text is None:
                continue
            service = _unit_service(text)
            for drop_in in _drop_ins(name):
                service = _merge(service, _unit_service(_read(drop_in) or ""))
            users = service.get("User") or [""]
            user = users[-1] or None
            command = (service.get("ExecStart") or [""])[-1]
            environ = _unit_environment(service)
            if command.lstrip("-@:+!").split(" ")[0] in INIT_SCRIPTS:
                # Debian's unit runs its init script (systemd-start), which
                # sets the daemon, its arguments and its own PATH; the unit's
                # other variables reach the daemon through it.
                found = _init_script()
                if found is not None:
                    how = f"systemd unit {path}, {found.served_by_from}"
                    merged = {**environ, **found.environ}
                    return dataclasses.replace(
                        found, served_by_from=how, user=user or found.user, environ=merged
                    )
            found = _from_command(command, f"systemd unit {path}", user=user, environ=environ)
            if found is not None and found.served_by == "uwsgi":
                # The ini's own env lines and uid come after the unit's.
                merged = {**environ, **found.environ}
                found = dataclasses.replace(found, user=found.user or user, environ=merged)
            return found
    return None


def _drop_ins(name: str) -> list[str]:
    found: list[str] = []
    for directory in UNIT_DIRS:
        try:
            found += sorted(
                os.path.join(directory, name + ".d", f)
                for f in os.listdir(os.path.join(directory, name + ".d"))
                if f.endswith(".conf")
            )
        except OSError:
            pass
    return found


def _unit_service(text: str) -> dict[str, list[str]]:
    """The [Service] section's assignments, each key's values in order."""
    values: dict[str, list[str]] = {}
    section = ""
    for raw in _joined_lines(text):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, eq, value = line.partition("=")
        if eq and section == "Service":
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def _joined_lines(text: str) -> Iterator[str]:
    pending = ""
    for line in text.splitlines():
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


def _merge(base: dict[str, list[str]], extra: dict[str, list[str]]) -> dict[str, list[str]]:
    merged = dict(base)
    for key, values in extra.items():
        # An empty assignment resets the list (ExecStart= before a new one).
        kept = merged.get(key, [])
        for value in values:
            kept = [] if value == "" else [*kept, value]
        merged[key] = kept
    return merged


def _unit_environment(service: Mapping[str, list[str]]) -> dict[str, str]:
    environ: dict[str, str] = {}
    for path in service.get("EnvironmentFile", []):
        text = _read(path.lstrip("-"))
        if text is not None:
            environ.update(_assignments(text))
    for line in service.get("Environment", []):
        try:
            items = shlex.split(line)
        except ValueError:  # systemd ignores an assignment it cannot parse
            continue
        for item in items:
            key, eq, value = item.partition("=")
            if eq:
                environ[key] = value
    environ.setdefault("PATH", SYSTEMD_PATH)
    return {k: v for k, v in environ.items() if k in KEPT_ENV}


def _assignments(text: str) -> dict[str, str]:
    """``KEY=value`` lines of a shell fragment or an environment file."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("export "):
            line = line[len("export ") :]
        key, eq, value = line.partition("=")
        if eq and key.isidentifier():
            try:
                words = shlex.split(value, comments=True)
            except ValueError:
                continue
            found[key] = words[0] if words else ""
    return found


def _init_script() -> Deployment | None:
    for path in INIT_SCRIPTS:
        text = _read(path)
        if text is None:
            continue
        # Debian's openstack-pkg-tools scripts set these at the top, then
        # start DAEMON with start-stop-daemon --chuid SYSTEM_USER, under their
        # own PATH, uWSGI instead when UWSGI_PORT and UWSGI_INI_PATH are set.
        values = _shell_values(text)
        name = values.get("NAME") or os.path.basename(path)
        environ = {"PATH": values.get("PATH", "/sbin:/usr/sbin:/bin:/usr/bin")}
        for defaults in ("/etc/default/openstack", f"/etc/default/{name}"):
            environ.update(_exported(_read(defaults) or ""))
        user = values.get("SYSTEM_USER") or values.get("PROJECT_NAME") or None
        if values.get("UWSGI_PORT") and values.get("UWSGI_INI_PATH"):
            found = _uwsgi_ini([values["UWSGI_INI_PATH"]])
            if found is not None:
                return dataclasses.replace(
                    found,
                    served_by_from=f"init script {path}, {found.served_by_from}",
                    environ={k: v for k, v in environ.items() if k in KEPT_ENV},
                )
        daemon = values.get("DAEMON") or f"/usr/bin/{name}"
        config = values.get("CONFIG_FILE")
        command = f"{daemon} --config-file={config}" if config else daemon
        return _from_command(
            command,
            f"init script {path}",
            user=user,
            environ={k: v for k, v in environ.items() if k in KEPT_ENV},
        )
    return None


def _shell_values(text: str) -> dict[str, str]:
    """The top-level ``KEY=value`` assignments of a shell script, ``${KEY}``
    and ``$KEY`` expanded from earlier ones; indented (conditional) ones are
    not taken."""
    import re

    values: dict[str, str] = {}

    def expand(value: str) -> str:
        return re.sub(
            r"\$\{(\w+)\}|\$(\w+)",
            lambda m: values.get(m.group(1) or m.group(2), ""),
            value,
        )

    for line in text.splitlines():
        if line[:1].isspace():
            continue
        for key, value in _assignments(line).items():
            values[key] = expand(value)
    return values


def _exported(text: str) -> dict[str, str]:
    """What a sourced defaults file exports to the daemon."""
    exported = [line for line in text.splitlines() if line.strip().startswith("export ")]
    return _assignments("\n".join(exported))


def _uwsgi_ini(paths: Iterable[str] | None = None) -> Deployment | None:
    import configparser

    for path in UWSGI_INIS if paths is None else paths:
        text = _read(path)
        if text is None:
            continue
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(text, path)
        except configparser.Error:
            continue
        if not parser.has_section("uwsgi"):
            continue
        section = parser["uwsgi"]
        home = section.get("virtualenv") or section.get("home") or section.get("venv")
        # configparser keeps the last of repeated keys: read env lines as written.
        environ = {}
        for line in text.splitlines():
            key, eq, value = line.partition("=")
            if eq and key.strip() == "env":
                name, eq2, setting = value.strip().partition("=")
                if eq2 and name in KEPT_ENV:
                    environ[name] = setting
        python, python_from = None, "this interpreter"
        if home:
            python, python_from = os.path.join(home, "bin", "python3"), f"virtualenv in {path}"
        elif _python_plugin(section.get("plugins") or section.get("plugin") or ""):
            # A distribution's uWSGI loads its python3 plugin, linked to the
            # distribution's libpython: with no home, that Python's prefix.
            python, python_from = DISTRIBUTION_PYTHON, f"python3 plugin of {path}, no home"
        return Deployment(
            "uwsgi",
            f"uWSGI ini {path}",
            python=python,
            python_from=python_from,
            user=section.get("uid"),
            environ=environ,
            workers=_int(section.get("processes") or section.get("workers")),
        )
    return None


def _python_plugin(plugins: str) -> bool:
    """Whether a uWSGI ``plugins`` line loads a Python 3 plugin (``python3``,
    ``python313``, Debian's names) and /usr/bin/python3 is there to be it."""
    names = [p.strip() for p in plugins.replace(" ", ",").split(",")]
    return any(n.startswith("python3") for n in names) and os.access(DISTRIBUTION_PYTHON, os.X_OK)


def _apache() -> Deployment | None:
    for directory in APACHE_DIRS:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if "glance" not in name:
                continue
            text = _read(os.path.join(directory, name)) or ""
            for line in text.splitlines():
                words = line.split()
                if words[:1] == ["WSGIDaemonProcess"]:
                    options = dict(w.split("=", 1) for w in words[2:] if "=" in w)
                    home = options.get("python-home")
                    return Deployment(
                        "mod_wsgi",
                        f"Apache config {os.path.join(directory, name)}",
                        python=os.path.join(home, "bin", "python3") if home else None,
                        python_from="python-home of WSGIDaemonProcess"
                        if home
                        else "this interpreter",
                        user=options.get("user"),
                        workers=_int(options.get("processes")),
                    )
    return None


def _process() -> Deployment | None:
    import psutil

    # Only the command line of every process: its owner and environment are
    # read for the one that serves Glance (each costs a read per process).
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if not _serves_glance(cmdline):
            continue
        found = _from_command(shlex.join(cmdline), f"running process {proc.pid}")
        if found is None or found.served_by is None:
            continue
        try:
            user: str | None = proc.username()
        except (psutil.Error, KeyError):
            user = None
        try:
            environ = {k: v for k, v in proc.environ().items() if k in KEPT_ENV}
        except psutil.Error:
            environ = {}
        return dataclasses.replace(found, user=user, environ=environ)
    return None


def _serves_glance(cmdline: list[str]) -> bool:
    """A Glance API server's command line: the glance-api script (run or as
    an interpreter's argument), or a WSGI server loading Glance's application."""
    names = [os.path.basename(word) for word in cmdline[:2]]
    if "glance-api" in names:
        return True
    if not names or not (
        names[0].startswith(("uwsgi", "pyuwsgi", "gunicorn")) or "gunicorn" in names
    ):
        return False
    return any("glance.wsgi" in word or "glance-wsgi-api" in word for word in cmdline)


def _from_command(
    command: str, source: str, user: str | None = None, environ: Mapping[str, str] | None = None
) -> Deployment | None:
    try:
        argv = shlex.split(command.lstrip("-@:+!"))
    except ValueError:
        return None
    if not argv:
        return None
    binary = os.path.basename(argv[0])
    served_by = None
    python = None
    python_from = "this interpreter"
    if binary == "glance-api":
        served_by = "eventlet"
        python, python_from = _shebang(argv[0])
    elif binary in ("uwsgi", "pyuwsgi") or binary.startswith("uwsgi"):
        ini = [a.split("=", 1)[-1] for a in argv if a.startswith("--ini")]
        ini += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--ini"]
        from_ini = _uwsgi_ini(ini) if ini else None
        if from_ini is not None:
            return dataclasses.replace(
                from_ini, served_by_from=f"{source}, {from_ini.served_by_from}", command=tuple(argv)
            )
        served_by = "uwsgi"
    elif binary == "gunicorn" or "gunicorn" in argv[1:3]:
        served_by = "gunicorn"
        python, python_from = _shebang(argv[0]) if binary == "gunicorn" else (argv[0], source)
    elif binary.startswith("python") and len(argv) > 1 and argv[1].endswith("glance-api"):
        served_by, python, python_from = "eventlet", argv[0], source
    return Deployment(
        served_by,
        source,
        python=python,
        python_from=python_from,
        user=user,
        environ=dict(environ or {}),
        command=tuple(argv),
    )


def _shebang(script: str) -> tuple[str | None, str]:
    """The interpreter a console script names in its first line."""
    from glance_features._platform import files

    try:
        first = files.read_bytes(script, 4096).split(b"\n", 1)[0]
    except files.ReadError:
        return None, "this interpreter"
    if not first.startswith(b"#!"):
        return None, "this interpreter"
    words = first[2:].decode("utf-8", "replace").split()
    if words and os.path.basename(words[0]) == "env" and len(words) > 1:
        return None, "this interpreter"  # `#!/usr/bin/env python3`: PATH decides
    return (words[0], f"the shebang of {script}") if words else (None, "this interpreter")


def _with_known_python(found: Deployment) -> Deployment:
    """Where nothing names the interpreter: this one when it has Glance, else
    the homes deployment tools and distributions use."""
    from glance_features._platform import dists

    if dists.version("glance") is not None:
        return found
    candidate = usual_home()
    if candidate is not None:
        where = "a usual home of Glance's interpreter"
        return dataclasses.replace(found, python=candidate, python_from=where)
    return found


def usual_home() -> str | None:
    """The interpreter of a usual home of Glance on this host, or None."""
    for candidate in (*KNOWN_PYTHONS, DISTRIBUTION_PYTHON):
        if candidate == DISTRIBUTION_PYTHON and not _system_glance():
            continue
        if os.access(candidate, os.X_OK):
            return candidate
    return None


@functools.lru_cache(maxsize=1)
def _system_glance() -> bool:
    import glob

    return bool(glob.glob("/usr/lib/python3*/*-packages/glance/__init__.py"))


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None
