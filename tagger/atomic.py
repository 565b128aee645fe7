"""Writing files safely: a new version replaces the old at once, and whole records only.

:func:`replacing` writes a file's new content to a temporary file created exclusively
(``mkstemp``: a fresh name in the same folder, never an existing file or a link planted
there), flushes it to disk and renames it over the file; on any failure (a full disk,
Ctrl-C) the temporary file is removed and the old file is left as it was.
:class:`RecordFile` appends records (CSV rows) to a file that stays readable while it
grows: a record is on disk whole or not at all, even when the disk fills up.
"""
from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .discover import show_path

log = logging.getLogger(__name__)


def default_mode() -> int:
    """Permission bits of a new ordinary file: 0666 less the umask (``mkstemp`` makes 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_file(path: Path, suffix: str = ".tmp") -> tuple[int, Path]:
    """A new, empty temporary file next to ``path``, created exclusively: ``(fd, its path)``.

    Named ``.<name>.<random><suffix>``, so two runs never share one, and a symlink or file
    planted under a predictable name is never followed or overwritten.
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    return fd, Path(name)


def remove_quietly(path: Path) -> None:
    """Delete ``path`` if it is there; a failure is logged, never raised (clean-up must not fail)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove temporary file %s: %s", show_path(path), exc.strerror or exc)


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """Write a new version of ``path``: yields a binary file open on a fresh temporary file.

    When the block ends normally the temp is flushed, synced and renamed over ``path``
    (which keeps its permission bits; a new file gets 0666 less the umask). When it
    raises (``OSError`` from a full disk, ``KeyboardInterrupt``...), the temp is removed
    and ``path`` is untouched. A symlink at ``path`` is replaced, never written through. A
    ``path`` that is there and not a regular file (``/dev/null``, a pipe) is written to
    directly: a device is never replaced by a file.
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError:
        mode = default_mode()
    else:
        if not stat.S_ISREG(st.st_mode):
            with open(path, "wb") as device:
                yield device
            return
        mode = stat.S_IMODE(st.st_mode)
    fd, temp = temp_file(path)
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fchmod(file.fileno(), mode)
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        remove_quietly(temp)
        raise
    with contextlib.suppress(OSError):  # the file is in place; only durability is at stake
        fsync_folder(path.parent)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (see :func:`replacing`)."""
    with replacing(path) as file:
        file.write(data)


class RecordFile:
    """Appends whole records to an unbuffered binary file: each is on disk when
    :meth:`append` returns, or, when a write fails part way (a full disk), the file is cut
    back to the end of the last whole record and the ``OSError`` is raised.
    """

    def __init__(self, file: BinaryIO, path: Path | None = None) -> None:
        self.file = file
        self.path = path
        self.whole = file.tell()  # bytes up to the end of the last whole record

    def append(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            done = 0
            while done < len(view):  # the OS may take part of a write (then fail on the rest)
                done += self.file.write(view[done:])
        except OSError:
            self.cut_back()
            raise
        self.whole += len(view)

    def cut_back(self) -> None:
        """Drop the part of a record that a failed write left (truncating frees, so it works on a full disk)."""
        try:
            self.file.truncate(self.whole)
            self.file.seek(self.whole)
        except OSError as exc:
            log.warning("could not cut %s back to its last whole record: %s", self.path, exc.strerror or exc)

    def close(self) -> None:
        self.file.close()
