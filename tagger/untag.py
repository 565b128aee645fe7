"""Undo: remove what tagger wrote into files and put back the user's own instruments tag.

A file tagger wrote holds ``INSTRUMENTS_SOURCE``; a write that went over a user's own
instruments tag (``--force``) kept that value in ``INSTRUMENTS_PREVIOUS`` (see
:mod:`tagger.tags`). Undoing removes the instruments, confidence, source and previous
fields, and puts the previous value back as the instruments tag where there is one.
A file without ``INSTRUMENTS_SOURCE`` (never tagged by tagger, or tagged by its user) is
left alone. Writes use the same atomic writer as the scan.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .discover import discover, file_problem
from .errors import TagWriteError
from .tags import read_instruments, remove_instruments

log = logging.getLogger(__name__)


@dataclass
class UntagResult:
    """What undoing did to one file (or, in a dry run, would do)."""

    path: Path
    status: str  # restored | removed | untouched | error
    restored: list[str] = field(default_factory=list)  # the user's instruments tag put back
    removed: list[str] = field(default_factory=list)  # the instruments tagger had written
    error: str = ""
    dry_run: bool = False


def untag_file(path: Path, dry_run: bool = False) -> UntagResult:
    """Undo tagger's write in one file; in a dry run, only say what would be done."""
    path = Path(path)
    try:
        problem = file_problem(path)  # never open a FIFO or a device
        if problem:
            raise TagWriteError(problem, path)
        existing = read_instruments(path)
        if not existing.is_ours:
            return UntagResult(path, "untouched", dry_run=dry_run)
        restored = existing.previous if dry_run else remove_instruments(path)
    except TagWriteError as exc:
        return UntagResult(path, "error", error=str(exc), dry_run=dry_run)
    except Exception as exc:  # a bug in a tag reader must cost one file, not the run
        log.debug("unexpected error on %s", path, exc_info=True)
        return UntagResult(path, "error", error=f"unexpected {type(exc).__name__}: {exc}", dry_run=dry_run)
    status = "restored" if restored else "removed"
    return UntagResult(path, status, restored=restored, removed=existing.instruments, dry_run=dry_run)


def untag(paths: Iterable[str | Path], dry_run: bool = False) -> Iterator[UntagResult]:
    """:func:`untag_file` on every audio file under ``paths``, in discovery order."""
    for path in discover(paths):
        yield untag_file(path, dry_run)
