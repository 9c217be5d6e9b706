"""The checks that must look with the service's eyes, as plain functions.

Each function here reads the host as the account and interpreter Glance runs
with would, and returns a ``TypedDict`` naming every field it found, its
failure included. :mod:`glance_features.runas` calls them in this process,
in a fork holding the service account's credentials, or runs this file as
``python -I checks.py`` in the service's interpreter with the request as JSON
on stdin. That last way is why the module imports only the standard library,
keeps to the Python 3.8 Glance 29 still supports, and never imports the rest
of the package: the service's interpreter may not have it installed.
"""

from __future__ import annotations

import errno
import importlib
import importlib.util
import json
import os
import stat
import sys
import sysconfig
from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict, TypeVar

if TYPE_CHECKING:  # typing has it from 3.11; this file runs on 3.8
    from types import ModuleType
    from typing import NotRequired

MAX_REQUEST = 1 << 20
# The unpatched write: eventlet.monkey_patch() (eventlet_resolution) makes
# os.write green, which cannot write the answer to a regular file.
_write = os.write
PROBE_PREFIX = ".glance-features-probe-"
# Where the interpreter child finds the workaround's environment variable:
# passed in the request, never inherited (the child runs with a clean one).
NO_GREENDNS = "EVENTLET_NO_GREENDNS"


# Where each check must run, declared with the check (as oslo.privsep's
# @entrypoint binds a function to its context), so no caller chooses:
# glance_features.runas.Where has one member of each name.
ACCOUNT = "ACCOUNT"  # a file check: with the service account's credentials
INTERPRETER = "INTERPRETER"  # an import: in the service's interpreter
NEW_INTERPRETER = "NEW_INTERPRETER"  # patches the interpreter it runs in
CHILD = "CHILD"  # may block in C (a lookup): a child of this interpreter, killable
CALLS: dict[str, Callable[..., object]] = {}
WHERE: dict[str, str] = {}
# A string: collections.abc.Callable cannot be subscripted at run time on 3.8.
_Check = TypeVar("_Check", bound="Callable[..., object]")


def runs_in(where: str) -> Callable[[_Check], _Check]:
    """Declare where the check below runs, and make it callable by name in a child."""

    def declare(check: _Check) -> _Check:
        CALLS[check.__name__] = check
        WHERE[check.__name__] = where
        return check

    return declare


def _errno_name(number: int | None) -> str | None:
    """The symbolic name of ``number`` ("EACCES"), its digits when it has
    none, or None for no number at all."""
    if not number:
        return None
    return errno.errorcode.get(number, str(number))


class Failure(TypedDict):
    """How a check failed: the one shape every check below reports it in,
    as ``failure`` (None when nothing failed)."""

    step: str | None  # the operation that failed, where a check has several
    errno: str | None  # its symbolic errno ("EACCES"), where the OS gave one
    error: str  # what went wrong, in words


def _failed(step: str | None, number: int | None, error: str) -> Failure:
    return Failure(step=step, errno=_errno_name(number), error=error)


def _os_failure(step: str | None, exc: OSError) -> Failure:
    return _failed(step, exc.errno, exc.strerror or str(exc))


def _exception_failure(step: str | None, exc: BaseException) -> Failure:
    """A failure that is an exception of any kind (an import's), named with its type."""
    return _failed(step, None, f"{type(exc).__name__}: {exc}"[:300])


# --- imports, in the service's interpreter ---------------------------------


class ImportFound(TypedDict):
    file: str | None
    version: str | None
    failure: Failure | None  # step FIND (locate_only) or IMPORT


class PythonFound(TypedDict):
    executable: str
    version: str
    prefix: str
    base_prefix: str
    venv: bool
    system_site_packages: bool | None
    ext_suffix: str | None


def python() -> PythonFound:
    """This interpreter: a virtualenv or not, and whether it sees the system's
    site-packages (where distribution packages such as python3-rbd go)."""
    system_site = None
    try:
        with open(os.path.join(sys.prefix, "pyvenv.cfg"), encoding="utf-8") as f:
            for line in f.read(65536).splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "include-system-site-packages":
                    system_site = value.strip().lower() == "true"
    except OSError:
        pass
    return PythonFound(
        executable=sys.executable,
        version=sys.version.split()[0],
        prefix=sys.prefix,
        base_prefix=sys.base_prefix,
        venv=sys.prefix != sys.base_prefix,
        system_site_packages=system_site,
        ext_suffix=sysconfig.get_config_var("EXT_SUFFIX"),
    )


class ImportsFound(TypedDict):
    python: PythonFound
    modules: dict[str, ImportFound]


FIND = "find"
IMPORT = "import"


@runs_in(INTERPRETER)
def imports(modules: list[str], locate_only: bool) -> ImportsFound:
    """Import each of ``modules`` as Glance's own ``import`` would; with
    ``locate_only``, only find each one's top-level package on the path."""
    found: dict[str, ImportFound] = {}
    for name in modules:
        try:
            if locate_only:
                spec = importlib.util.find_spec(name.split(".")[0])
                if spec is None:
                    raise ModuleNotFoundError(f"No module named {name.split('.')[0]!r}")
                found[name] = ImportFound(file=spec.origin, version=None, failure=None)
                continue
            module = importlib.import_module(name)
        except MemoryError:
            raise  # this process's limit, not the binding's fault: no verdict
        except BaseException as exc:  # a binding's import may raise anything
            step = FIND if locate_only else IMPORT
            found[name] = ImportFound(
                file=None, version=None, failure=_exception_failure(step, exc)
            )
            continue
        version = str(getattr(module, "__version__", "") or "") or None
        found[name] = ImportFound(
            file=getattr(module, "__file__", None), version=version, failure=None
        )
    return ImportsFound(python=python(), modules=found)


class DistributionFound(TypedDict):
    version: str
    location: str
    installer: str | None
    record: bool  # pip and its kin write a RECORD; distribution packages often do not


class InterpreterFound(TypedDict):
    python: PythonFound
    distributions: dict[str, DistributionFound | None]


@runs_in(INTERPRETER)
def interpreter(distributions: list[str]) -> InterpreterFound:
    """This interpreter and the installed versions of ``distributions``
    (``glance`` among them: which Glance this interpreter runs)."""
    from importlib import metadata

    found: dict[str, DistributionFound | None] = {}
    for name in distributions:
        try:
            dist = metadata.distribution(name)
            version = dist.version
            installer = (dist.read_text("INSTALLER") or "").strip() or None
            record = dist.read_text("RECORD") is not None
        except Exception:  # not installed, or metadata that cannot be read
            found[name] = None
            continue
        found[name] = DistributionFound(
            version=version,
            location=str(getattr(dist, "_path", "") or dist.locate_file("")),
            installer=installer,
            record=record,
        )
    return InterpreterFound(python=python(), distributions=found)


class DebuggerFound(TypedDict):
    module: str | None  # "pydev.pydevd" or "pydevd", as Glance tries them
    path: str | None
    distribution: str | None
    version: str | None


@runs_in(INTERPRETER)
def debugger(distributions: list[str]) -> DebuggerFound:
    """The pydev debugger Glance would import, found without importing it.

    Glance tries ``from pydev import pydevd`` and then ``import pydevd``.
    ``find_spec("pydev.pydevd")`` would import the ``pydev`` package, so the
    submodule is looked for in that package's directories instead.
    """
    from importlib import metadata

    found = DebuggerFound(module=None, path=None, distribution=None, version=None)
    try:
        spec = importlib.util.find_spec("pydev")
    except (ImportError, ValueError):
        spec = None
    for directory in (spec.submodule_search_locations or []) if spec else []:
        for candidate in ("pydevd.py", os.path.join("pydevd", "__init__.py")):
            if os.path.isfile(os.path.join(directory, candidate)):
                found["module"] = "pydev.pydevd"
                found["path"] = os.path.join(directory, candidate)
                break
        if found["module"]:
            break
    if found["module"] is None:
        try:
            spec = importlib.util.find_spec("pydevd")
        except (ImportError, ValueError):
            spec = None
        if spec is not None:
            found["module"], found["path"] = "pydevd", spec.origin or "?"
    for dist in distributions:
        version = _version_of(metadata, dist)
        if version is not None:
            found["distribution"], found["version"] = dist, version
            break
    return found


# --- files, as the service account -------------------------------------------


class PathFound(TypedDict):
    failure: Failure | None  # step "open" or "read"


def readable(path: str) -> PathFound:
    """Whether ``path`` is a regular file this account can read a byte of.

    Never opens for reading anything but a regular file: a device or FIFO
    named in the config is refused, not read (O_PATH first, then fstat).
    """
    flags = getattr(os, "O_PATH", os.O_RDONLY) | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        return PathFound(failure=_os_failure("open", exc))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            return PathFound(failure=_failed("open", errno.EISDIR, "is a directory"))
        if not stat.S_ISREG(mode):
            return PathFound(failure=_failed("open", errno.EINVAL, "not a regular file"))
        try:
            data_fd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            data_fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            os.read(data_fd, 1)
        finally:
            os.close(data_fd)
    except OSError as exc:
        return PathFound(failure=_os_failure("read", exc))
    finally:
        os.close(fd)
    return PathFound(failure=None)


class DirFound(TypedDict):
    failure: Failure | None  # step "access", "create a file" or "write a file"
    exists: bool
    probed_dir: str
    free_bytes: int | None
    free_inodes: int | None
    read_only_mount: bool | None


def writable_dir(path: str) -> DirFound:
    """glance_store's file store check: ``os.access(W_OK)`` on the directory,
    ``os.makedirs`` when it is missing; then one real file, to see a full or
    read-only file system that the access check alone cannot."""
    found = DirFound(
        failure=None,
        exists=os.path.isdir(path),
        probed_dir=path,
        free_bytes=None,
        free_inodes=None,
        read_only_mount=None,
    )
    probe = path
    if not found["exists"]:
        if os.path.lexists(path):
            found["failure"] = _failed(None, errno.ENOTDIR, "exists and is not a directory")
            return found
        while not os.path.isdir(probe):
            parent = os.path.dirname(probe)
            if parent == probe:
                break
            probe = parent
        found["probed_dir"] = probe
    try:
        vfs = os.statvfs(probe)
        found["free_bytes"] = vfs.f_bavail * vfs.f_frsize
        found["free_inodes"] = vfs.f_favail
        found["read_only_mount"] = bool(vfs.f_flag & os.ST_RDONLY)
    except OSError:
        pass
    if not os.access(probe, os.W_OK | os.X_OK):
        number = errno.EROFS if found["read_only_mount"] else errno.EACCES
        found["failure"] = _failed("access", number, os.strerror(number))
        return found
    found["failure"] = _write_a_file(probe)
    return found


def _write_a_file(directory: str) -> Failure | None:
    """Create, write and fsync a new file in ``directory``, then remove it;
    how that failed, or None."""
    name = os.path.join(directory, PROBE_PREFIX + os.urandom(8).hex())
    step = "create a file"
    try:
        fd = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            step = "write a file"
            os.write(fd, b"x")
            os.fsync(fd)
        finally:
            os.close(fd)
            try:
                os.unlink(name)
            except OSError:
                pass
    except OSError as exc:
        return _os_failure(step, exc)
    return None


class FilesFound(TypedDict):
    uid: int
    read: dict[str, PathFound]
    write: dict[str, DirFound]
    exec: dict[str, bool]


@runs_in(ACCOUNT)
def files(read: list[str], write: list[str], executables: list[str]) -> FilesFound:
    """Read, write into and run what a store's configuration names."""
    return FilesFound(
        uid=os.geteuid(),
        read={p: readable(p) for p in read},
        write={p: writable_dir(p) for p in write},
        exec={p: os.access(p, os.X_OK) for p in executables},
    )


class CacheFound(TypedDict):
    """What Glance's xattr cache driver would meet in ``image_cache_dir``."""

    failure: Failure | None
    cache_dir_exists: bool
    probed_dir: str | None
    links: list[str]
    stale_check_file: bool
    check_file_link: str | None
    check_file_uid: int | None
    # Glance's subdirectories this account cannot write in (each write of
    # the cache goes to incomplete/ first), with their owners' uids.
    unwritable_subdirs: dict[str, int]


CACHE_SUBDIRS = ("incomplete", "invalid", "queue")
# The step where Glance's configure() catches the error (only EOPNOTSUPP
# makes it refuse the driver); every step before it raises out of configure().
SET_XATTR_STEP = "set a user xattr"


@runs_in(ACCOUNT)
def xattr_cache(cache_dir: str, check_file: str) -> CacheFound:
    """``glance.image_cache.drivers.xattr.Driver.configure()``, relative to
    directory descriptors opened without following planted links: the cache
    directory (made when missing), a file written with three bytes, a user
    xattr set and read back on it; and the subdirectories every cached image
    is written through."""
    found = CacheFound(
        failure=None,
        cache_dir_exists=False,
        probed_dir=None,
        links=[],
        stale_check_file=False,
        check_file_link=None,
        check_file_uid=None,
        unwritable_subdirs={},
    )

    def fail(failure: Failure) -> CacheFound:
        found["failure"] = failure
        return found

    parts = [p for p in cache_dir.split("/") if p]
    # O_PATH: walking needs search permission only, as Glance's path lookups
    # do; a directory the user may traverse but not list must not stop us.
    flags = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open("/", flags)
    except OSError as exc:
        return fail(_os_failure("open /", exc))
    missing: list[str] = []
    try:
        for i, part in enumerate(parts):
            nfd = _open_component(fd, part, "/" + "/".join(parts[: i + 1]), flags, found)
            if nfd is None:
                missing = parts[i:]
                break
            if not isinstance(nfd, int):
                return fail(nfd)
            os.close(fd)
            fd = nfd
        existing = "/" + "/".join(parts[: len(parts) - len(missing)])
        found["cache_dir_exists"] = not missing
        found["probed_dir"] = existing
        found["failure"] = _cache_layout(
            fd, existing, cache_dir, check_file, missing, found
        ) or _set_xattr(fd, existing)
        return found
    finally:
        os.close(fd)


def _open_component(
    fd: int, part: str, here: str, flags: int, found: CacheFound
) -> int | Failure | None:
    """The directory ``part`` of ``fd`` (``here`` in full) opened with ``flags``,
    or why it cannot be, or None when it does not exist."""
    try:
        st = os.stat(part, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _os_failure("stat " + here, exc)
    target = here
    if stat.S_ISLNK(st.st_mode):
        # Follow a link only where Glance's makedirs and open would:
        # to an existing directory; say where it led.
        target = os.path.realpath(here)
        if not os.path.isdir(target):
            gone = not os.path.exists(target)
            return _failed(
                "resolve " + here,
                errno.ENOENT if gone else errno.ENOTDIR,
                "a symbolic link to "
                + target
                + (" which does not exist" if gone else " which is not a directory"),
            )
        found["links"].append(here + " -> " + target)
    elif not stat.S_ISDIR(st.st_mode):
        return _failed("open " + here, errno.ENOTDIR, "not a directory")
    try:
        return (
            os.open(target, flags) if stat.S_ISLNK(st.st_mode) else os.open(part, flags, dir_fd=fd)
        )
    except OSError as exc:
        return _os_failure("open " + here, exc)


def _cache_layout(
    fd: int,
    existing: str,
    cache_dir: str,
    check_file: str,
    missing: list[str],
    found: CacheFound,
) -> Failure | None:
    """What stops Glance's set_paths() and configure() before the xattr call."""
    needed = _inodes_needed(fd, check_file, missing, found)
    vfs = os.fstatvfs(fd)
    if vfs.f_files and vfs.f_favail < needed:
        return _failed(
            "create Glance's cache layout in " + existing,
            errno.ENOSPC,
            f"{vfs.f_favail} free inodes, {needed} needed",
        )
    if missing:
        # Glance creates the directory; it can when it may write the parent.
        if not _writable(fd):
            return _failed(
                "create " + cache_dir, errno.EACCES, "cannot create it under " + existing
            )
        return None
    return _stale_check_file(fd, cache_dir, check_file, found)


def _inodes_needed(fd: int, check_file: str, missing: list[str], found: CacheFound) -> int:
    """The inodes Glance takes to lay out its cache, noting on the way the
    subdirectories already there that this account cannot write in."""
    # set_paths() makes incomplete/, invalid/ and queue/ (and the cache dir
    # itself when missing), then configure() creates checkme: each takes an
    # inode. A file system with inodes to count must have them free.
    needed = len(missing) + len(CACHE_SUBDIRS) + 1 if missing else 0
    if not missing:
        for sub in (*CACHE_SUBDIRS, check_file):
            try:
                st = os.stat(sub, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                needed += 1
                continue
            except OSError:
                continue
            if sub in CACHE_SUBDIRS and not _writable_at(fd, sub):
                found["unwritable_subdirs"][sub] = st.st_uid
    return needed


def _stale_check_file(
    fd: int, cache_dir: str, check_file: str, found: CacheFound
) -> Failure | None:
    """What stops configure() writing the check file a former run left behind."""
    here = os.path.join(cache_dir, check_file)
    try:
        st = os.stat(check_file, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as exc:  # a directory this account may not search
        return _os_failure("stat " + here, exc)
    found["stale_check_file"] = True
    if stat.S_ISLNK(st.st_mode):
        # Glance's open() follows it and writes through it; never here.
        target = os.path.realpath(here)
        found["check_file_link"] = target
        parent = os.path.dirname(target)
        if not (
            os.access(target, os.W_OK)
            if os.path.lexists(target)
            else os.path.isdir(parent) and os.access(parent, os.W_OK | os.X_OK)
        ):
            found["check_file_uid"] = st.st_uid
            return _failed(
                "open " + here,
                errno.EACCES,
                "a symbolic link to " + target + " that this user cannot write",
            )
        return None
    if not stat.S_ISREG(st.st_mode):
        # A FIFO there would hold Glance's open() (and this one) for good.
        found["check_file_uid"] = st.st_uid
        return _failed("open " + here, errno.EINVAL, "not a regular file")
    try:
        flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        os.close(os.open(check_file, flags, dir_fd=fd))
    except OSError as exc:
        found["check_file_uid"] = st.st_uid
        return _os_failure("open " + here, exc)
    return None


def _set_xattr(fd: int, existing: str) -> Failure | None:
    # A nameless file (O_TMPFILE): nothing to remove, nothing left if the
    # probe is cut off, the directory itself unchanged. Where the file
    # system lacks O_TMPFILE, a named file is unlinked right after its
    # exclusive create, before anything else is done with it.
    pfd = None
    tmpfile = getattr(os, "O_TMPFILE", 0)
    if tmpfile:
        try:
            pfd = os.open(".", tmpfile | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=fd)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                return _os_failure("create a file in " + existing, exc)
    if pfd is None:
        name = PROBE_PREFIX + os.urandom(8).hex()
        try:
            pfd = os.open(
                name,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=fd,
            )
        except OSError as exc:
            return _os_failure("create a file in " + existing, exc)
        try:
            os.unlink(name, dir_fd=fd)
        except OSError:
            pass
    step = "write to a file in " + existing
    try:
        os.write(pfd, b"XXX")
        os.fsync(pfd)
        step = SET_XATTR_STEP
        value = os.urandom(8)
        os.setxattr(pfd, "user.glance-features.probe", value)
        if os.getxattr(pfd, "user.glance-features.probe") != value:
            return _failed(step, errno.EIO, "the attribute read back differs")
    except OSError as exc:
        return _os_failure(step, exc)
    finally:
        os.close(pfd)
    return None


def _writable(fd: int) -> bool:
    return os.access(f"/proc/self/fd/{fd}", os.W_OK | os.X_OK)


def _writable_at(fd: int, name: str) -> bool:
    try:
        return os.access(name, os.W_OK | os.X_OK, dir_fd=fd)
    except (OSError, NotImplementedError):
        return False


# --- eventlet and IPv6 resolution, in a fresh service interpreter -----------


class Lookup(TypedDict):
    addresses: list[str]  # sorted; empty when it failed
    failure: Failure | None


# The steps of eventlet_resolution whose failure stops Glance's start.
IMPORT_EVENTLET = "`import eventlet`"
MONKEY_PATCH = "eventlet.monkey_patch()"


class ResolutionFound(TypedDict):
    system: dict[str, Lookup]
    eventlet: dict[str, Lookup] | None
    failure: Failure | None  # step IMPORT_EVENTLET or MONKEY_PATCH
    eventlet_version: str | None
    dnspython_version: str | None
    greendns: bool | None
    tried: bool  # False: only the versions were read (nothing known against them)
    tried_at: NotRequired[str]  # remembered by the command line from a try at that time


def _resolve(name: str) -> Lookup:
    """The addresses ``name`` resolves to for IPv6, or why it did not."""
    import socket

    try:
        infos = socket.getaddrinfo(name, 80, socket.AF_INET6, socket.SOCK_STREAM)
    except Exception as exc:
        return Lookup(addresses=[], failure=_exception_failure(None, exc))
    return Lookup(addresses=sorted({str(info[4][0]) for info in infos}), failure=None)


def _version_of(metadata: ModuleType, dist: str) -> str | None:
    try:
        return str(metadata.version(dist))
    except Exception:  # not installed, or metadata that cannot be read
        return None


@runs_in(NEW_INTERPRETER)
def eventlet_resolution(names: list[str], no_greendns: str | None) -> ResolutionFound:
    """Resolve ``names`` for IPv6, then ``import eventlet``,
    ``eventlet.monkey_patch()`` and resolve them again, as a monkey-patched
    Glance does: what the installed pair really does, whatever its versions
    say. Only ever run in a fresh interpreter: it patches this one."""
    from importlib import metadata

    found = ResolutionFound(
        system={n: _resolve(n) for n in names},
        eventlet=None,
        failure=None,
        eventlet_version=None,
        dnspython_version=None,
        greendns=None,
        tried=True,
    )
    found["eventlet_version"] = _version_of(metadata, "eventlet")
    found["dnspython_version"] = _version_of(metadata, "dnspython")
    if no_greendns is not None:
        os.environ[NO_GREENDNS] = no_greendns
    try:
        import eventlet
    except MemoryError:
        raise  # this process's limit, not eventlet's fault: no verdict
    except BaseException as exc:
        found["failure"] = _exception_failure(IMPORT_EVENTLET, exc)
        return found
    try:
        eventlet.monkey_patch()
    except MemoryError:
        raise
    except BaseException as exc:
        found["failure"] = _exception_failure(MONKEY_PATCH, exc)
        return found
    found["greendns"] = "eventlet.support.greendns" in sys.modules
    found["eventlet"] = {n: _resolve(n) for n in names}
    return found


# --- a name's addresses, in a child that can be killed -----------------------


class AddressInfo(TypedDict):
    """One of getaddrinfo's (family, type, proto, canonname, sockaddr)."""

    family: int
    type: int
    proto: int
    canonname: str
    sockaddr: list[str | int]  # (host, port) or (host, port, flowinfo, scope_id)


class AddressesFound(TypedDict):
    infos: list[AddressInfo]
    failure: Failure | None


@runs_in(CHILD)
def addresses(host: str, port: int) -> AddressesFound:
    """``getaddrinfo(host, port)`` for a stream socket. Run in a child: a
    resolver that never answers blocks in C, where no thread can be ended,
    and only a process can be killed at the deadline."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        # A gaierror's number is an EAI_* code, no errno.
        number = None if isinstance(exc, (socket.gaierror, UnicodeError)) else exc.errno
        return AddressesFound(infos=[], failure=_failed("getaddrinfo", number, str(exc)[:300]))
    return AddressesFound(
        infos=[
            AddressInfo(
                family=int(family),
                type=int(kind),
                proto=proto,
                canonname=canonname,
                # str and int for an IP address; anything else said in words
                sockaddr=[p if isinstance(p, (str, int)) else repr(p) for p in sockaddr],
            )
            for family, kind, proto, canonname, sockaddr in infos
        ],
        failure=None,
    )


# --- S3, with the client glance_store builds ---------------------------------


class S3Request(TypedDict):
    endpoint: str
    https: bool
    access_key: str
    secret_key: str
    bucket: str
    region: str
    url_format: str
    cacert: str
    timeout: float


class S3Found(TypedDict):
    reached: bool
    bucket_exists: bool | None
    code: str | None  # the endpoint's error code ("404", "AccessDenied")
    failure: Failure | None  # step "create the client" or "head_bucket"


@runs_in(INTERPRETER)
def s3_bucket(request: S3Request) -> S3Found:
    """glance_store's ``_create_s3_client``, then ``head_bucket`` as its
    ``_bucket_exists`` asks. The keys arrive in the request (stdin), never
    on a command line."""
    from boto3 import session as boto_session
    from botocore import client as boto_client
    from botocore import exceptions as boto_exceptions

    step = "create the client"
    try:
        session = boto_session.Session(
            aws_access_key_id=request["access_key"],
            aws_secret_access_key=request["secret_key"],
        )
        config = boto_client.Config(
            s3={"addressing_style": request["url_format"]},
            connect_timeout=request["timeout"],
            read_timeout=request["timeout"],
            retries={"total_max_attempts": 1},
        )
        client = session.client(
            service_name="s3",
            endpoint_url=request["endpoint"],
            region_name=request["region"] or None,
            use_ssl=request["https"],
            verify=request["cacert"] or None,
            config=config,
        )
        step = "head_bucket"
        client.head_bucket(Bucket=request["bucket"])
    except boto_exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        return S3Found(
            reached=True,
            bucket_exists=False if code == "404" else None,
            code=code,
            failure=_failed(step, None, str(exc)[:300]),
        )
    except Exception as exc:
        return S3Found(
            reached=False, bucket_exists=None, code=None, failure=_exception_failure(step, exc)
        )
    return S3Found(reached=True, bucket_exists=True, code=None, failure=None)


# --- the interpreter child's entry point -------------------------------------


def main() -> int:
    """Read ``{"call", "args", "path"}`` from stdin, answer ``{"value"}`` or
    ``{"error"}`` as JSON on the stdout this process started with.

    A first request ``{"serve": true, "path"}`` instead makes it answer
    requests ``{"id", "call", "args"}``, one per line, until stdin ends, each
    with a line ``{"id", ...}`` as soon as it is done: one interpreter for
    every check of a probe (runas.Interpreters), not one each.

    What the checks' imports print goes to stderr, so nothing they say can
    be taken for an answer."""
    answer = os.dup(1)
    os.dup2(2, 1)
    request = _request(sys.stdin.buffer.readline(MAX_REQUEST))
    if not request.get("serve"):
        _reply(answer, _answer(request), b"")
        return 0
    # Each request in a thread of its own, so a slow import holds up no other
    # check; an answer carries its request's id and is written whole.
    import threading

    # Nearly every probe asks which distributions this interpreter has:
    # importlib.metadata's import (25 ms, the email package) is done while
    # the first requests are still on their way.
    threading.Thread(target=_import_metadata, daemon=True).start()
    writing = threading.Lock()

    def serve(request: dict[str, object]) -> None:
        reply = _answer(request)
        reply["id"] = request.get("id")
        with writing:
            _reply(answer, reply, b"\n")

    serving: list[threading.Thread] = []
    while True:
        line = sys.stdin.buffer.readline(MAX_REQUEST)
        if not line:
            break
        request = _request(line)
        thread = threading.Thread(target=serve, args=(request,), daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no thread to be had (a process limit): answer it now
            serve(request)
            continue
        serving.append(thread)
    for thread in serving:  # what was asked is answered; the asker's deadline bounds it
        thread.join()
    return 0


def _import_metadata() -> None:
    try:
        import importlib.metadata  # noqa: F401
    except Exception:
        pass  # the check that needs it says why


def _request(line: bytes) -> dict[str, object]:
    try:
        request = json.loads(line)
    except ValueError:
        return {}
    if not isinstance(request, dict):
        return {}
    path = request.get("path")
    if path is not None:
        entries = path if isinstance(path, list) else []
        sys.path[:] = [p for p in entries if isinstance(p, str) and os.path.isabs(p)]
    return request


def _answer(request: dict[str, object]) -> dict[str, object]:
    try:
        call, args = request["call"], request["args"]
        if not isinstance(call, str) or not isinstance(args, list):
            raise TypeError("a request names its call and lists its args")
        return {"value": CALLS[call](*args)}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}


def _reply(fd: int, reply: dict[str, object], end: bytes) -> None:
    data = json.dumps(reply).encode() + end
    while data:
        data = data[_write(fd, data) :]


if __name__ == "__main__":
    main()
    # Answered: a thread an imported module left running must not hold the
    # child past its deadline and turn the answer into "did not finish".
    for stream in (sys.stdout, sys.stderr):  # both go to stderr now
        stream.flush()
    os._exit(0)
