"""Reading files the operator names, safely: regular files only, bounded."""

from __future__ import annotations

import errno
import os
import stat


class ReadError(OSError):
    """A file that could not be read; the message starts with its path."""


def read_bytes(path: str, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    Opened non-blocking so a FIFO cannot hang the open, then checked on the
    open descriptor, so a file swapped after a check is never read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ReadError(errno.ENOENT, f"{path}: no such file") from None
    except OSError as exc:
        raise ReadError(exc.errno, f"{path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ReadError(errno.EISDIR, f"{path}: is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise ReadError(errno.EINVAL, f"{path}: not a regular file")
        if st.st_size > limit:
            raise ReadError(errno.EFBIG, f"{path}: larger than {limit} bytes")
        chunks = []
        size = 0
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:  # grew while we read it
                raise ReadError(errno.EFBIG, f"{path}: larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        if isinstance(exc, ReadError):
            raise
        raise ReadError(exc.errno, f"{path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def read_text(path: str, limit: int) -> str:
    try:
        return read_bytes(path, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise ReadError(errno.EILSEQ, f"{path}: not UTF-8 text") from None
