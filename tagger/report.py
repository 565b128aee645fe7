"""The CSV report (DESIGN.md "CSV report"), one row per file, streamed to disk, and its lock.

Each row goes to the file as its file finishes, so a killed run leaves a valid CSV of
everything done so far (at worst without the row being written at that instant). A row is
never half there: when a write fails (a full disk), the file is cut back to the last whole
row. One run at a time writes a report: :func:`report_lock` holds ``<report>.lock``.
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from .atomic import RecordFile
from .errors import TaggerError
from .cells import dict_row_writer, list_cell, path_cell, text_cell
from .scan import TrackResult

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

FIXED_HEAD = ("path", "status", "error", "duration_s", "segments", "instruments")
FIXED_TAIL = ("model", "tags", "previous_instruments")


def columns(labels: Sequence[str]) -> list[str]:
    """The header: fixed columns, one per model label, then provenance."""
    return [*FIXED_HEAD, *labels, *FIXED_TAIL]


def row(result: TrackResult, labels: Sequence[str]) -> dict[str, str]:
    """A result as CSV cells (strings), safe to open in a spreadsheet (:mod:`tagger.cells`).

    Text from the files (the previous tag values, an error that quotes a decoder) cannot
    start a formula; the path is exact, with ``./`` in front where it would start one.
    """
    has_scores = bool(result.scores)
    cells = {
        "path": path_cell(result.path),
        "status": result.status,
        "error": text_cell(result.error),
        "duration_s": f"{result.duration_s:.3f}" if result.duration_s else "",
        "segments": str(result.segments) if has_scores else "",
        "instruments": ";".join(label for label, _ in result.instruments),
        "model": text_cell(result.model),
        "tags": result.tags,
        "previous_instruments": list_cell(result.previous_instruments),
    }
    for label in labels:
        cells[label] = f"{result.scores[label]:.3f}" if has_scores else ""
    return cells


def as_json(result: TrackResult) -> str:
    """A result as one JSON line (numbers as numbers)."""
    return json.dumps({
        "path": str(result.path),
        "status": result.status,
        "error": result.error,
        "duration_s": round(result.duration_s, 3),
        "segments": result.segments,
        "instruments": [label for label, _ in result.instruments],
        "scores": {k: round(v, 3) for k, v in result.scores.items()},
        "model": result.model,
        "tags": result.tags,
        "previous_instruments": result.previous_instruments,
        "activity": {label: [list(r) for r in ranges] for label, ranges in result.activity.items()},
        "coverage": result.coverage,
    })  # ASCII escapes: valid JSON even for a file name that is not UTF-8


class ReportError(TaggerError):
    """The report (or its lock file) could not be written; the reason is one line."""


class ReportLockedError(TaggerError):
    """Another run is writing the same report."""


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


class CsvReport:
    """Writes the header at once, then one row per :meth:`write`, each straight to the file.

    ``file`` is an unbuffered binary file (``open(path, "wb", buffering=0)``), so a row is
    on disk when :meth:`write` returns. When a write fails part way, the file is cut back
    to the end of the last whole row and :class:`ReportError` is raised.
    """

    def __init__(self, file: BinaryIO, labels: Sequence[str], path: Path | None = None) -> None:
        self.file = file
        self.path = path
        self.labels = list(labels)
        self.rows = 0  # whole rows on disk
        self._out = RecordFile(file, path)  # a row is on disk whole, or not at all
        self._buf = io.StringIO()
        self._writer = dict_row_writer(self._buf, columns(self.labels))  # a lone \r in a name is quoted
        self._writer.writeheader()
        self._emit()

    @classmethod
    def open(cls, path: Path, labels: Sequence[str]) -> CsvReport:
        """Create or truncate ``path``: call it only once the run is known to go ahead."""
        try:
            file = open(path, "wb", buffering=0)
        except OSError as exc:
            raise ReportError(_reason(exc), path) from exc
        return cls(file, labels, path)

    def _emit(self) -> None:
        # Names that are not UTF-8 arrive as surrogate escapes: written back as their bytes.
        data = self._buf.getvalue().encode("utf-8", "surrogateescape")
        self._buf.seek(0)
        self._buf.truncate()
        try:
            self._out.append(data)
        except OSError as exc:  # cut back to the last whole row
            raise ReportError(_reason(exc), self.path) from exc

    def write(self, result: TrackResult) -> None:
        self._writer.writerow(row(result, self.labels))
        self._emit()
        self.rows += 1

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> CsvReport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def lock_path_for(csv_path: Path) -> Path:
    """``instruments.csv`` -> ``instruments.csv.lock``."""
    return csv_path.with_name(csv_path.name + ".lock")


@contextlib.contextmanager
def report_lock(csv_path: Path) -> Iterator[Path]:
    """Hold the lock of the report ``csv_path`` (and of its cache) while the block runs.

    An exclusive ``flock`` on ``<report>.lock``, which holds the owner's process id. The
    kernel drops it when the process ends, however it ends, so a killed run leaves no
    stale lock; the (empty) file stays, since deleting it would race with the next run.
    Raises :class:`ReportLockedError` at once when another run holds it, and
    :class:`ReportError` when the lock file cannot be created.
    """
    path = lock_path_for(csv_path)
    if fcntl is None:  # pragma: no cover
        log.warning("cannot lock %s on this system: do not run two scans on one report at once", csv_path)
        yield path
        return
    try:
        # Never through a symlink planted under the lock's name (it would take our pid
        # into its target); not inherited by worker processes.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        why = "it is a symlink; remove it" if exc.errno == errno.ELOOP else _reason(exc)
        raise ReportError(f"cannot create the lock file {path.name}: {why}", csv_path) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or a device planted there
        os.close(fd)
        raise ReportError(f"cannot create the lock file {path.name}: it is not a regular file; remove it", csv_path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise ReportLockedError(f"report locked by another run{who}; wait for it to end, or use another --csv",
                                    csv_path) from None
        with contextlib.suppress(OSError):  # the pid is only for the message above
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock
