"""Write an output file so that a reader never sees half of it, and nothing
that is not ours is ever replaced."""

from __future__ import annotations

import os
import stat

from glance_features.errors import GlanceFeaturesError


class OutputError(GlanceFeaturesError, OSError):
    """The output file could not be written; the previous one is untouched."""


def write_atomically(path: str, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to an unpredictably named temporary file beside ``path``,
    fsync it, rename it over ``path``.

    A collector reading ``path`` sees the old file or the new one, never a
    mix; on any failure or signal the old file stays as it was and the
    temporary file is gone. ``path`` must be a regular file or absent: a
    device, FIFO, directory or symbolic link there is refused, never replaced.
    """
    data = text.encode("utf-8", errors="backslashreplace")
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    if name in ("", ".", ".."):
        raise OutputError(f"refusing to write {path!r}: it names a directory, not a file")
    try:
        dir_fd = _open_directory(directory)
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"output directory {directory}: {exc.strerror}") from None
    try:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
            raise OutputError(f"refusing to replace {path}: it is {kind}")
        if st is not None and st.st_uid != os.geteuid() and _shared(os.fstat(dir_fd)):
            # Another user could have planted it there (fs.protected_regular
            # refuses to open such a file for the same reason).
            raise OutputError(
                f"refusing to replace {path}: it belongs to another user, in a "
                "directory other users can write"
            )
        created: list[str] = []
        try:
            _write_temporary(dir_fd, name, mode, directory, data, created)
            os.rename(created[-1], name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            created.clear()
        except BaseException as exc:
            for temporary in created:
                try:
                    os.unlink(temporary, dir_fd=dir_fd)
                except OSError:
                    pass
            if isinstance(exc, OutputError):
                raise
            if isinstance(exc, OSError):
                raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
            raise
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        except OSError:
            pass
    finally:
        os.close(dir_fd)


def _open_directory(directory: str) -> int:
    """A descriptor of ``directory``, opened component by component.

    A symbolic link on the way is followed only when it could not have been
    planted: not in a sticky directory others can write (``/tmp``), unless
    we or that directory's owner made it -- the rule of the kernel's
    ``fs.protected_symlinks``, which a host may have turned off.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    fd = os.open("/", flags)
    try:
        for part in [p for p in directory.split("/") if p]:
            st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                here = os.fstat(fd)
                planted = (
                    here.st_mode & stat.S_ISVTX
                    and here.st_mode & stat.S_IWOTH
                    and st.st_uid not in (os.geteuid(), here.st_uid)
                )
                if planted:
                    raise OutputError(
                        f"output directory {directory}: refusing to follow a symbolic link "
                        "another user made in a shared directory"
                    )
                nfd = os.open(part, flags, dir_fd=fd)
            else:
                nfd = os.open(part, flags | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _shared(st: os.stat_result) -> bool:
    return bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _write_temporary(
    dir_fd: int, name: str, mode: int, directory: str, data: bytes, created: list[str]
) -> None:
    """Write ``data`` and give it a random name beside the target.

    With O_TMPFILE the file has no name while it is written and synced, so a
    SIGKILL then leaves nothing behind; it is linked under a random name only
    for the instant before the rename. Elsewhere, a named file created
    exclusively, removed on any failure or signal.
    """
    fd = _unnamed(dir_fd, mode)
    if fd is not None:
        try:
            _write_all(fd, data)
            for _ in range(10):
                temporary = f".{name}.{os.urandom(8).hex()}.tmp"
                try:
                    os.link(f"/proc/self/fd/{fd}", temporary, dst_dir_fd=dir_fd)
                    created.append(temporary)
                    return
                except FileExistsError:
                    continue
                except OSError:
                    break  # no /proc: write a named file instead
        finally:
            os.close(fd)
    temporary, fd = _create_temporary(dir_fd, name, mode, directory)
    created.append(temporary)  # removed by the caller on any failure or signal
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _unnamed(dir_fd: int, mode: int) -> int | None:
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return None
    try:
        return os.open(".", flag | os.O_WRONLY | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except OSError:
        return None  # a file system without O_TMPFILE


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def _create_temporary(dir_fd: int, name: str, mode: int, directory: str) -> tuple[str, int]:
    for _ in range(10):
        temporary = f".{name}.{os.urandom(8).hex()}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            return temporary, os.open(temporary, flags, mode, dir_fd=dir_fd)
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot write in {directory}: {exc.strerror}") from None
    raise OutputError(f"cannot create a temporary file in {directory}")
