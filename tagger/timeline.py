"""Where the instruments play: a track's segment scores over time, activity ranges, the timeline file.

A :class:`Timeline` holds every scored segment of one track: start and end in seconds,
loudness in dBFS, and the model's score for each label. :func:`activity` turns it into
time ranges per label. :class:`TimelineWriter` streams timelines to the ``--segments``
file (DESIGN.md "Segment timeline"): CSV, or Parquet when the name ends in ``.parquet``.

Importable without torch (worker processes import :mod:`tagger.scan`, which imports this).
"""
from __future__ import annotations

import base64
import contextlib
import csv
import io
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import RecordFile, default_mode, remove_quietly, temp_file
from .errors import TaggerError
from .cells import path_cell, row_writer
from .segments import SILENCE_DB

MIN_ACTIVITY_SECONDS = 6.0  # shorter runs of active segments are not reported (two 3 s segments)
PARQUET_ROW_GROUP_ROWS = 65_536  # rows buffered before a Parquet row group is written (whole files only)
FIXED = ("path", "start_s", "end_s", "loudness_db")


@dataclass
class Timeline:
    """One track's scored segments. Arrays share their first axis, the segment (n)."""

    start_s: np.ndarray  # (n,) float64 seconds from the start of the file
    end_s: np.ndarray  # (n,) float64 seconds; the last one is clipped to the track's end
    loudness_db: np.ndarray  # (n,) float32 RMS dBFS
    scores: np.ndarray  # (n, labels) float32 in [0, 1]
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.start_s)

    @property
    def audible(self) -> np.ndarray:
        """(n,) bool: segments loud enough to count (above :data:`tagger.segments.SILENCE_DB`)."""
        return self.loudness_db > SILENCE_DB

    def to_json(self) -> dict:
        """A compact JSON-able form (for the resume cache): scores as per-mille uint16, base64."""
        return {
            "labels": list(self.labels),
            "start_s": _b64(self.start_s.astype(np.float64)),
            "end_s": _b64(self.end_s.astype(np.float64)),
            "loudness_db": _b64(self.loudness_db.astype(np.float32)),
            "scores_permille": _b64(np.rint(self.scores * 1000).astype(np.uint16)),
        }

    @classmethod
    def from_json(cls, d: dict) -> Timeline:
        labels = tuple(d["labels"])
        scores = _unb64(d["scores_permille"], np.uint16).reshape(-1, len(labels)).astype(np.float32) / 1000
        return cls(_unb64(d["start_s"], np.float64), _unb64(d["end_s"], np.float64),
                   _unb64(d["loudness_db"], np.float32), scores, labels)


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).decode("ascii")


def _unb64(s: str, dtype) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)


def make_timeline(starts_s: np.ndarray, seg_seconds: float, duration_s: float, loudness: np.ndarray,
                  scores: np.ndarray, labels: Sequence[str]) -> Timeline:
    """A timeline from segment starts (s); each segment lasts ``seg_seconds``, clipped to the track."""
    starts = np.asarray(starts_s, dtype=np.float64)
    ends = np.minimum(starts + seg_seconds, max(duration_s, 0.0))
    ends = np.maximum(ends, starts)
    return Timeline(starts, ends, np.asarray(loudness, np.float32), np.asarray(scores, np.float32), tuple(labels))


def activity(
    timeline: Timeline,
    thresholds: Mapping[str, float],
    threshold: float | None = None,
    min_seconds: float = MIN_ACTIVITY_SECONDS,
) -> dict[str, list[tuple[float, float]]]:
    """Time ranges (start_s, end_s) where each label plays, for labels that play at all.

    Rule: a segment is *active* for a label when it is audible and its score reaches the
    label's threshold (the same thresholds as the track's labels; ``threshold`` replaces
    them all). Active segments that touch or overlap merge into one range. Ranges shorter
    than ``min_seconds`` are dropped, unless the range is the whole track (a short file).
    """
    out: dict[str, list[tuple[float, float]]] = {}
    if len(timeline) == 0:
        return out
    audible = timeline.audible
    duration = float(timeline.end_s.max())
    for j, label in enumerate(timeline.labels):
        t = thresholds[label] if threshold is None else threshold
        active = audible & (timeline.scores[:, j] >= t)
        ranges: list[tuple[float, float]] = []
        for i in np.flatnonzero(active):
            s, e = float(timeline.start_s[i]), float(timeline.end_s[i])
            if ranges and s <= ranges[-1][1] + 1e-6:
                ranges[-1] = (ranges[-1][0], max(ranges[-1][1], e))
            else:
                ranges.append((s, e))
        kept = [(round(s, 3), round(e, 3)) for s, e in ranges if e - s >= min(min_seconds, duration) - 1e-6]
        if kept:
            out[label] = kept
    return out


def is_parquet(path: Path) -> bool:
    return Path(path).suffix.lower() == ".parquet"


class ParquetMissing(RuntimeError):
    """pyarrow is not installed but a ``.parquet`` timeline was asked for."""

    def __init__(self) -> None:
        super().__init__("a .parquet timeline needs pyarrow: pip install pyarrow (the parquet extra) (or name the file .csv)")


def require_pyarrow():
    """``(pyarrow, pyarrow.parquet)``; raises :class:`ParquetMissing` when pyarrow is not installed."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ParquetMissing() from None
    return pa, pq


class TimelineError(TaggerError):
    """The timeline file could not be written (a full disk...); the reason is one line."""


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:  # pyarrow's I/O errors are OSErrors too
        raise TimelineError(exc.strerror or str(exc), path) from exc


class TimelineWriter:
    """Streams timelines, one track's rows at a time, in the order given.

    CSV: the header at once, then all rows of a track in one write, straight to disk; a
    killed run leaves a valid CSV of the tracks finished so far, and a failed write (a full
    disk) is cut back to the last whole track. Parquet: written to a temporary
    ``.FILE.<random>.partial`` (created exclusively) in row groups of whole tracks and
    renamed to FILE on :meth:`close` (also on Ctrl-C; removed when that fails); a killed
    run leaves any earlier FILE untouched and an unreadable ``.FILE.<random>.partial``.
    """

    def __init__(self, path: Path, labels: Sequence[str]) -> None:
        self.path = Path(path)
        self.labels = tuple(labels)
        self.rows = 0
        self._stream: RecordFile | None = None
        self._parquet = None
        self._pending: list[tuple[str, Timeline]] = []
        self._pending_rows = 0
        if is_parquet(self.path):
            pa, pq = require_pyarrow()
            self._pa = pa
            self._schema = pa.schema(
                [("path", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()), ("loudness_db", pa.float32())]
                + [(label, pa.float32()) for label in self.labels]
            )
            with _writing(self.path):
                self._partial = self._new_partial()
                try:
                    self._parquet = pq.ParquetWriter(str(self._partial or self.path), self._schema)
                except BaseException:
                    if self._partial is not None:
                        remove_quietly(self._partial)
                    raise
        else:
            with _writing(self.path):
                self._stream = RecordFile(open(self.path, "wb", buffering=0), self.path)
                self._append(",".join(columns(self.labels)) + "\n")

    def write(self, path: str | os.PathLike, timeline: Timeline | None) -> None:
        """All rows of one track (nothing when it has no timeline: an error, a kept file).

        Raises :class:`TimelineError` when the file cannot be written.
        """
        if timeline is None or len(timeline) == 0:
            return
        if timeline.labels != self.labels:
            raise ValueError("timeline labels differ from the file's columns")
        path = path_cell(path)  # as in the report (their join key): no cell that starts a formula
        with _writing(self.path):
            if self._stream is not None:
                self._append(csv_rows(str(path), timeline))  # a track's rows are all there, or none
                self.rows += len(timeline)
                return
            self._pending.append((str(path), timeline))
            self._pending_rows += len(timeline)
            self.rows += len(timeline)
            if self._pending_rows >= PARQUET_ROW_GROUP_ROWS:
                self._flush_parquet()

    def _new_partial(self) -> Path | None:
        """A temporary file for a Parquet timeline, created exclusively (never a planted link);
        None when FILE is there and not a regular file (``/dev/null``: written to directly,
        never replaced by a file)."""
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISREG(os.stat(self.path).st_mode):
                return None
        fd, partial = temp_file(self.path, ".partial")
        os.fchmod(fd, default_mode())  # an ordinary file once renamed, not mkstemp's 0600
        os.close(fd)
        return partial

    def _append(self, text: str) -> None:
        """Rows, on disk whole: cut back to the last whole track when a write fails (a full disk)."""
        # Names that are not UTF-8 arrive as surrogate escapes: written back as their bytes.
        self._stream.append(text.encode("utf-8", "surrogateescape"))

    def _flush_parquet(self) -> None:
        self._flush_parquet_to(self._parquet)

    def _flush_parquet_to(self, writer) -> None:
        if not self._pending:
            return
        pa = self._pa
        cols = {
            "path": pa.array([p for p, t in self._pending for _ in range(len(t))], pa.string()),
            "start_s": pa.array(np.round(np.concatenate([t.start_s for _, t in self._pending]), 3)),
            "end_s": pa.array(np.round(np.concatenate([t.end_s for _, t in self._pending]), 3)),
            "loudness_db": pa.array(np.round(np.concatenate([t.loudness_db for _, t in self._pending]), 1)),
        }
        scores = np.round(np.concatenate([t.scores for _, t in self._pending]), 3).astype(np.float32)
        for j, label in enumerate(self.labels):
            cols[label] = pa.array(scores[:, j])
        writer.write_table(pa.table(cols, schema=self._schema))
        self._pending.clear()
        self._pending_rows = 0

    def close(self) -> None:
        """Finish the file (a Parquet one is renamed into place); a second call does nothing."""
        with _writing(self.path):
            if self._stream is not None:
                stream, self._stream = self._stream, None
                stream.close()
            if self._parquet is not None:
                writer, self._parquet = self._parquet, None
                try:
                    try:
                        self._flush_parquet_to(writer)
                    finally:
                        writer.close()
                    if self._partial is not None:
                        os.replace(self._partial, self.path)
                except BaseException:
                    if self._partial is not None:
                        remove_quietly(self._partial)  # no debris: the earlier FILE, if any, is untouched
                    raise

    def __enter__(self) -> TimelineWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def columns(labels: Sequence[str]) -> list[str]:
    """The timeline's header: path, start_s, end_s, loudness_db, then one column per label."""
    return [*FIXED, *labels]


def csv_rows(path: str, timeline: Timeline) -> str:
    """A track's timeline rows as CSV text (path quoted as needed, scores with 3 decimals)."""
    quoted = io.StringIO()
    row_writer(quoted).writerow([path])  # quoted when it holds a , " \r or \n
    head = quoted.getvalue()[:-1]
    lines = []
    for i in range(len(timeline)):
        scores = ",".join(f"{s:.3f}" for s in timeline.scores[i])
        lines.append(f"{head},{timeline.start_s[i]:.3f},{timeline.end_s[i]:.3f},{timeline.loudness_db[i]:.1f},{scores}\n")
    return "".join(lines)


def read_timelines(path: Path, labels: Sequence[str] | None = None):
    """Yield ``(path, Timeline)`` per track from a timeline file (CSV or Parquet), in file order.

    Rows of one track are contiguous (they are written together). Memory: one track at a
    time for CSV, one row group at a time for Parquet.
    """
    path = Path(path)
    if is_parquet(path):
        _, pq = require_pyarrow()
        f = pq.ParquetFile(str(path))
        names = f.schema_arrow.names
        file_labels = tuple(n for n in names if n not in FIXED)
        for g in range(f.num_row_groups):
            t = f.read_row_group(g).to_pydict()
            paths = t["path"]
            start, end, loud = (np.asarray(t[c], np.float64) for c in ("start_s", "end_s", "loudness_db"))
            scores = np.stack([np.asarray(t[l], np.float32) for l in file_labels], axis=1) if file_labels else np.zeros((len(paths), 0), np.float32)
            i = 0
            while i < len(paths):
                j = i
                while j < len(paths) and paths[j] == paths[i]:
                    j += 1
                yield paths[i], Timeline(start[i:j], end[i:j], loud[i:j].astype(np.float32), scores[i:j], file_labels)
                i = j  # a track's rows never span row groups: they are written whole
        return
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(header[:4]) != FIXED:
            raise ValueError(f"{path}: not a timeline file (header should start with {','.join(FIXED)})")
        file_labels = tuple(header[4:])
        current: str | None = None
        rows: list[list[str]] = []
        for r in reader:
            if r and r[0] != current:
                if rows:
                    yield current, _rows_to_timeline(rows, file_labels)
                current, rows = r[0], []
            if r:
                rows.append(r)
        if rows:
            yield current, _rows_to_timeline(rows, file_labels)


def _rows_to_timeline(rows: list[list[str]], labels: tuple[str, ...]) -> Timeline:
    a = np.asarray([r[1:] for r in rows], dtype=np.float64)
    return Timeline(a[:, 0], a[:, 1], a[:, 2].astype(np.float32), a[:, 3:].astype(np.float32), labels)
