"""The CSV report (DESIGN.md "CSV report"), one row per file, streamed to disk.

Each row is written and flushed as its file finishes, so a killed run leaves a valid CSV
of everything done so far (at worst without the row being written at that instant).
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from .scan import TrackResult

FIXED_HEAD = ("path", "status", "error", "duration_s", "segments", "instruments")
FIXED_TAIL = ("model", "tags", "previous_instruments")


def columns(labels: Sequence[str]) -> list[str]:
    """The header: fixed columns, one per model label, then provenance."""
    return [*FIXED_HEAD, *labels, *FIXED_TAIL]


def row(result: TrackResult, labels: Sequence[str]) -> dict[str, str]:
    """A result as CSV cells (strings)."""
    has_scores = bool(result.scores)
    cells = {
        "path": str(result.path),
        "status": result.status,
        "error": result.error,
        "duration_s": f"{result.duration_s:.3f}" if result.duration_s else "",
        "segments": str(result.segments) if has_scores else "",
        "instruments": ";".join(label for label, _ in result.instruments),
        "model": result.model,
        "tags": result.tags,
        "previous_instruments": ";".join(result.previous_instruments),
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
    })  # ASCII escapes: valid JSON even for a file name that is not UTF-8


class CsvReport:
    """Writes the header at once, then one flushed row per :meth:`write`."""

    def __init__(self, stream: IO[str], labels: Sequence[str]) -> None:
        self.stream = stream
        self.labels = list(labels)
        self._buf = io.StringIO()
        self._writer = csv.DictWriter(self._buf, fieldnames=columns(self.labels), lineterminator="\n")
        self._writer.writeheader()
        self._emit()

    @classmethod
    def open(cls, path: Path, labels: Sequence[str]) -> CsvReport:
        return cls(open(path, "w", newline="", encoding="utf-8", errors="surrogateescape"), labels)

    def _emit(self) -> None:
        self.stream.write(self._buf.getvalue())  # one write per row: a row is never half there
        self.stream.flush()
        self._buf.seek(0)
        self._buf.truncate()

    def write(self, result: TrackResult) -> None:
        self._writer.writerow(row(result, self.labels))
        self._emit()

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> CsvReport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
