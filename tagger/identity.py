"""Which file a path names, and whether it is still that file.

A scan takes a file's identity before decoding it; its tags are written, and its result
stored in the resume cache, only against that identity. A file replaced during the run
(``mv new.mp3 old.mp3``: a new inode) or changed in place (size, mtime) is not the file
that was scanned, and never gets the scanned file's labels.
"""
from __future__ import annotations

import os
from typing import NamedTuple


class FileIdentity(NamedTuple):
    """Device, inode, size in bytes and modification time (ns) of a file."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    @classmethod
    def of_path(cls, path: str | os.PathLike) -> FileIdentity:
        """The identity of the file ``path`` names now (symlinks followed); raises OSError."""
        return cls.of(os.stat(path))

    @property
    def portable(self) -> tuple[int, int, int]:
        """Inode, size and mtime: what another machine sees of a shared folder (its device
        numbers are its own), for a check made in a worker that may run elsewhere."""
        return self.ino, self.size, self.mtime_ns
