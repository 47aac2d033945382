"""Opening files that must be plain files, without hanging on ones that are not.

A FIFO put where a file belongs makes `open()` wait for a writer forever; a link to
`/dev/zero` feeds a reader endless bytes. So files the engine reads from a home or a store
are opened without blocking, checked with fstat (no race between check and use), and
refused with NotARegularFile, an OSError naming the path and what is there instead.
"""

from __future__ import annotations

import errno
import os
import stat


from ledgerflow.errors import NotARegularFile

__all__ = ["NotARegularFile", "check_regular", "describe", "open_regular"]


def describe(mode: int) -> str:
    """What a file of this st_mode is, in words.

    >>> describe(stat.S_IFIFO)
    'a FIFO'
    """
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return what
    return "not a regular file"


def open_regular(path, *, follow_symlinks: bool = True, buffering: int = -1):
    """`path` opened for reading in binary, if it is a regular file; NotARegularFile if not.

    >>> import tempfile
    >>> with open_regular(tempfile.NamedTemporaryFile(delete=False).name) as f:
    ...     f.read()
    b''
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP and not follow_symlinks:
            raise NotARegularFile(path, "a symbolic link") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(path, describe(mode))
        os.set_blocking(fd, True)
        return open(fd, "rb", buffering=buffering, closefd=True)
    except BaseException:
        os.close(fd)
        raise


def check_regular(path) -> None:
    """NotARegularFile unless `path` (followed if a link) is a regular file; FileNotFoundError if absent."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotARegularFile(path, describe(mode))
