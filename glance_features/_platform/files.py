"""Reading files the operator names, safely: regular files only, bounded.

A path given on the command line or in a config file may name a FIFO (an
open for reading blocks until a writer comes), a device (opening
``/dev/watchdog`` or a tape has effects of its own, ``/dev/zero`` never ends)
or a file that grows while we read it. Nothing but a regular file is ever
opened for reading, and never more than the caller's bound is read.
"""

from __future__ import annotations

import errno
import os
import stat

from glance_features.errors import GlanceFeaturesError

_O_PATH = getattr(os, "O_PATH", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class ReadError(GlanceFeaturesError, OSError):
    """A file that could not be read; the message starts with its path."""

    def __str__(self) -> str:
        return str(self.strerror)


def _refuse(path: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise ReadError(errno.EISDIR, f"{path}: is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise ReadError(errno.EINVAL, f"{path}: not a regular file")


def _open_regular(path: str) -> int:
    """A read descriptor of ``path``, opened only once it is known to be a
    regular file (checked on the descriptor, so a swap cannot slip between)."""
    if _O_PATH:
        # O_PATH opens nothing: no FIFO wait, no device driver open. The
        # reopen through /proc reaches the same inode that was checked.
        handle = os.open(path, _O_PATH | _CLOEXEC)
        try:
            _refuse(path, os.fstat(handle))
            try:
                return os.open(f"/proc/self/fd/{handle}", os.O_RDONLY | _CLOEXEC | _NONBLOCK)
            except FileNotFoundError:
                pass  # no /proc: fall through to the portable way
        finally:
            os.close(handle)
    _refuse(path, os.stat(path))
    # Non-blocking, so a FIFO swapped in after the check cannot hang the open.
    fd = os.open(path, os.O_RDONLY | _CLOEXEC | _NONBLOCK)
    try:
        _refuse(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(path: str, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes."""
    try:
        fd = _open_regular(path)
    except ReadError:
        raise
    except FileNotFoundError:
        raise ReadError(errno.ENOENT, f"{path}: no such file") from None
    except OSError as exc:
        raise ReadError(exc.errno, f"{path}: {exc.strerror}") from None
    try:
        if os.fstat(fd).st_size > limit:
            raise ReadError(errno.EFBIG, f"{path}: larger than {limit} bytes")
        chunks = []
        size = 0
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:  # grew while we read it, or /proc-like with no size
                raise ReadError(errno.EFBIG, f"{path}: larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    except ReadError:
        raise
    except OSError as exc:
        raise ReadError(exc.errno, f"{path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def read_head(path: str, size: int) -> bytes:
    """The first ``size`` bytes of a regular file, however large it is."""
    try:
        fd = _open_regular(path)
    except ReadError:
        raise
    except OSError as exc:
        raise ReadError(exc.errno, f"{path}: {exc.strerror}") from None
    try:
        return os.read(fd, size)
    except OSError as exc:
        raise ReadError(exc.errno, f"{path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def read_text(path: str, limit: int) -> str:
    try:
        return read_bytes(path, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise ReadError(errno.EILSEQ, f"{path}: not UTF-8 text") from None
