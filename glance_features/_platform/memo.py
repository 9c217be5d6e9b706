"""What a slow check found, remembered on disk for the same installed files.

Importing and patching eventlet in the service's interpreter takes 1.7 s on
Debian 12, where the versions call the pair broken and only a try tells
(Debian patched it). The answer changes only when the interpreter or those
distributions change, so the command line keeps it, keyed on their paths,
versions and the inodes and change times of their metadata, and tries again
when any of them differs.

The directory is the command line's own: ``/var/cache/glance-features`` as
root, ``$XDG_CACHE_HOME/glance-features`` (``~/.cache``) otherwise. It is
used only when it is this account's, a directory not reached through a
symbolic link, with no access for others; entries are regular files of this
account, read with a bound and replaced atomically. A Glance service never
reads or writes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Mapping

MAX_ENTRY = 64 * 1024
NAME = "glance-features"
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def base() -> str | None:
    """The directory the cache lives in, for this account; None: none."""
    if os.geteuid() == 0:
        return "/var/cache"
    explicit = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(explicit):
        return explicit
    home = os.environ.get("HOME", "")
    return os.path.join(home, ".cache") if os.path.isabs(home) else None


def recall(key: Mapping[str, object]) -> tuple[object, str] | None:
    """(value, when it was remembered) for ``key``, or None."""
    directory = _open_directory(create=False)
    if directory is None:
        return None
    try:
        fd = os.open(_file_name(key), os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    except OSError:
        return None
    finally:
        os.close(directory)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_size > MAX_ENTRY:
            return None
        entry = json.loads(os.read(fd, MAX_ENTRY + 1))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    if not isinstance(entry, dict) or entry.get("key") != json.loads(json.dumps(key)):
        return None
    when = entry.get("at")
    return (entry.get("value"), when) if isinstance(when, str) else None


def remember(key: Mapping[str, object], value: object) -> None:
    """Keep ``value`` for ``key``; a cache that cannot be written is no error."""
    directory = _open_directory(create=True)
    if directory is None:
        return
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data = json.dumps({"key": key, "value": value, "at": at}).encode()
    if len(data) > MAX_ENTRY:
        os.close(directory)
        return
    temporary = f".{_file_name(key)}.{os.getpid()}.{time.monotonic_ns()}"
    try:
        fd = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=directory
        )
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(temporary, _file_name(key), src_dir_fd=directory, dst_dir_fd=directory)
    except OSError:
        try:
            os.unlink(temporary, dir_fd=directory)
        except OSError:
            pass
    finally:
        os.close(directory)


def identity(path: str) -> list[str | int | None]:
    """What changes when ``path`` is replaced: its inode and change time."""
    try:
        st = os.stat(path)
    except OSError:
        return [path, None]
    return [path, st.st_ino, st.st_ctime_ns]


def _file_name(key: Mapping[str, object]) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return f"{digest[:32]}.json"


def _open_directory(create: bool) -> int | None:
    """A descriptor of the cache directory, when it is safe to use."""
    parent = base()
    if parent is None:
        return None
    try:
        outer = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW)
    except OSError:
        return None
    try:
        if create:
            try:
                os.mkdir(NAME, 0o700, dir_fd=outer)
            except FileExistsError:
                pass
        inner = os.open(NAME, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=outer)
    except OSError:
        return None
    finally:
        os.close(outer)
    st = os.fstat(inner)
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        os.close(inner)
        return None  # another account's, or open to others: never ours to trust
    return inner
