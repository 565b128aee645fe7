"""The resume cache: a SQLite file next to the CSV report.

A file's result is reused (status ``skipped``) when its path, size and mtime, the model
version and the settings that change results (threshold, top-k, hop) are all what they
were. Results are stored after tags are written, with the file's new size and mtime, so
a repeated ``--write-tags`` run skips what it finished and an interrupted one redoes
only what it had not finished. Errors are not stored: a failed file is tried again.
A result is stored with its segment timeline (scores to 3 decimals), so a resumed run
writes the ``--segments`` file whole again; an entry from before timelines is a miss.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import asdict, replace
from pathlib import Path

from .scan import TrackResult
from .timeline import Timeline

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    path BLOB PRIMARY KEY,   -- os.fsencode(path): any file name, UTF-8 or not
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    key TEXT NOT NULL,       -- model version + settings
    result TEXT NOT NULL     -- the TrackResult as JSON
)
"""
COMMIT_EVERY_S = 2.0


def cache_path_for(csv_path: Path) -> Path:
    """``instruments.csv`` -> ``instruments.csv.cache.sqlite``."""
    return csv_path.with_name(csv_path.name + ".cache.sqlite")


class ResultCache:
    """Look up and store finished results. Use as a context manager."""

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.key = key
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(SCHEMA)
        self._last_commit = time.monotonic()

    def get(self, path: Path, write_tags: bool) -> TrackResult | None:
        """The stored result of an unchanged file, as a ``skipped`` row; None to (re)scan it."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        row = self.db.execute(
            "SELECT result FROM results WHERE path=? AND size=? AND mtime_ns=? AND key=?",
            (os.fsencode(path), st.st_size, st.st_mtime_ns, self.key),
        ).fetchone()
        if row is None:
            return None
        d = json.loads(row[0])
        if write_tags and d["tags"] not in ("written", "kept"):
            return None  # scanned in a dry run: tags still to write
        d["path"] = path
        d["instruments"] = [tuple(pair) for pair in d["instruments"]]
        d["status"] = "skipped"
        if "timeline" not in d:
            return None  # stored before results kept their segment scores: rescan once
        d["timeline"] = Timeline.from_json(d["timeline"]) if d["timeline"] else None
        d["activity"] = {label: [tuple(r) for r in ranges] for label, ranges in d["activity"].items()}
        return TrackResult(**d)

    def put(self, result: TrackResult) -> None:
        if result.status == "error":
            return
        try:
            st = os.stat(result.path)
        except OSError:
            return
        d = asdict(replace(result, timeline=None))
        d["timeline"] = result.timeline.to_json() if result.timeline is not None else None  # segment scores too
        d["path"] = ""
        self.db.execute(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)",
            (os.fsencode(result.path), st.st_size, st.st_mtime_ns, self.key, json.dumps(d)),
        )
        if time.monotonic() - self._last_commit > COMMIT_EVERY_S:
            self.db.commit()
            self._last_commit = time.monotonic()

    def close(self) -> None:
        self.db.commit()
        self.db.close()

    def __enter__(self) -> ResultCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
