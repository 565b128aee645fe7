"""The resume cache: a SQLite file next to the CSV report.

A file's result is reused (status ``skipped``) when its path, size and mtime, the model
version and the settings that change results (threshold, top-k, hop, and a quick pass's
coverage) are all what they were. The path is the resolved one (absolute, symlinks followed), so ``tagger scan src``
and ``tagger scan /abs/src`` share their results. A stored result says what the file's
tags were then (its ``tags``: ``written``, ``kept`` or ``dry-run``); a dry run's result is
reused by a ``--write-tags`` run, which only writes its tags (see
:meth:`tagger.scan.Scanner`). Results are stored after tags are written, with the file's
new size and mtime, so a repeated ``--write-tags`` run skips what it finished and an
interrupted one redoes only what it had not finished. Errors
are not stored: a failed file is tried again. A result is stored with its segment
timeline (scores to 3 decimals), so a resumed run writes the ``--segments`` file whole
again; an entry from before timelines is a miss.

A damaged cache (garbage, a bad page) is found when it is opened (``PRAGMA quick_check``)
and set aside by :func:`open_cache`, which starts a new one: a cache only saves time. A
damaged entry (undecodable JSON or timeline) is a miss too: its file is scanned again.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from dataclasses import asdict, replace
from pathlib import Path

from .scan import TrackResult
from .timeline import Timeline

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    path BLOB PRIMARY KEY,   -- os.fsencode(realpath): any file name, UTF-8 or not
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    key TEXT NOT NULL,       -- model version + settings
    result TEXT NOT NULL     -- the TrackResult as JSON
)
"""
COMMIT_EVERY_S = 2.0
_DAMAGED_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB


class CacheDamagedError(sqlite3.DatabaseError):
    """The cache file is not a sound SQLite database (garbage, a bad page...)."""


def is_damaged(exc: sqlite3.Error) -> bool:
    """True when ``exc`` says the database file itself is damaged (not locked, not unwritable)."""
    if isinstance(exc, CacheDamagedError):
        return True
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in _DAMAGED_CODES
    text = str(exc)
    return "file is not a database" in text or "malformed" in text


def _key(path: Path) -> bytes:
    """The cache key of a file: its resolved path, as bytes (any file name, UTF-8 or not)."""
    return os.fsencode(os.path.realpath(path))


def file_identity(path: Path) -> tuple[int, int] | None:
    """What a stored result is tied to: the file's ``(size, mtime_ns)``; None when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def open_cache(path: Path, key: str) -> ResultCache:
    """The cache at ``path``; a damaged one is set aside, with a warning, and a new one started.

    The damaged file (with its ``-wal`` and ``-shm``, if any) is renamed
    ``<name>.corrupt-<UTC time>``, kept for a look; its files are scanned again. Other
    errors (a folder that cannot be written...) propagate.
    """
    try:
        return ResultCache(path, key)
    except sqlite3.DatabaseError as exc:
        if not is_damaged(exc):
            raise
        reason = " ".join(str(exc).split())
    aside = _set_aside(path)
    log.warning("the cache %s is damaged (%s): moved it to %s and started a new one; its files are scanned again",
                path, reason, aside.name)
    return ResultCache(path, key)


def _set_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    for suffix in ("-wal", "-shm", ""):  # the main file last: no new run finds a lone journal
        part = Path(f"{path}{suffix}")
        if part.exists():
            os.replace(part, f"{aside}{suffix}")
    return aside


def cache_path_for(csv_path: Path) -> Path:
    """``instruments.csv`` -> ``instruments.csv.cache.sqlite``."""
    return csv_path.with_name(csv_path.name + ".cache.sqlite")


class ResultCache:
    """Look up and store finished results. Use as a context manager."""

    def __init__(self, path: Path, key: str) -> None:
        """Open (or create) the cache; raises :class:`CacheDamagedError` (or another
        ``sqlite3.DatabaseError`` that :func:`is_damaged` recognises) on a damaged file."""
        self.path = path
        self.key = key
        self.db = sqlite3.connect(path)
        try:
            problems = [r[0] for r in self.db.execute("PRAGMA quick_check(1)")]  # reads every page once
            if problems != ["ok"]:
                raise CacheDamagedError(" ".join(" ".join(problems).split()))
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(SCHEMA)
        except BaseException:
            self.db.close()
            raise
        self._last_commit = time.monotonic()

    def get(self, path: Path, identity: tuple[int, int] | None = None) -> TrackResult | None:
        """The stored result of an unchanged file, as a ``skipped`` row; None to (re)scan it.

        ``identity``: the file's ``(size, mtime_ns)`` as the caller took it (None: the file
        as it is now). Its ``tags`` say what the file's tags were when it was stored:
        ``dry-run`` (nothing written), ``written`` or ``kept``; the scanner decides what this
        run's row says.
        """
        identity = identity or file_identity(path)
        if identity is None:
            return None
        row = self.db.execute(
            "SELECT result FROM results WHERE path=? AND size=? AND mtime_ns=? AND key=?",
            (_key(path), *identity, self.key),
        ).fetchone()
        if row is None:
            return None
        try:
            d = json.loads(row[0])
            if d["tags"] not in ("written", "kept", "dry-run"):
                return None  # not a result we store
            if "timeline" not in d:
                return None  # stored before results kept their segment scores: rescan once
            d["path"] = path
            d["instruments"] = [(str(label), float(score)) for label, score in d["instruments"]]
            d["status"] = "skipped"
            d["timeline"] = Timeline.from_json(d["timeline"]) if d["timeline"] else None
            d["activity"] = {str(label): [(float(s), float(e)) for s, e in ranges]
                             for label, ranges in d["activity"].items()}
            return TrackResult(**d)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # SQLite has no checksums: bytes may rot unseen
            log.warning("the cache's entry for %s is damaged (%s): scanning the file again", path, type(exc).__name__)
            return None

    def put(self, result: TrackResult, identity: tuple[int, int] | None = None) -> None:
        """Store a finished result, tied to ``identity`` (:func:`file_identity`; None: the
        file as it is now). After a tag write, the identity must be the written file's."""
        if result.status == "error":
            return
        identity = identity or file_identity(result.path)
        if identity is None:
            return
        d = asdict(replace(result, timeline=None))
        d["timeline"] = result.timeline.to_json() if result.timeline is not None else None  # segment scores too
        d["path"] = ""
        self.db.execute(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)",
            (_key(result.path), *identity, self.key, json.dumps(d)),
        )
        if time.monotonic() - self._last_commit > COMMIT_EVERY_S:
            self.db.commit()
            self._last_commit = time.monotonic()

    def close(self) -> None:
        """Commit and close; a second call does nothing."""
        if self.db is None:
            return
        db, self.db = self.db, None
        try:
            db.commit()
        finally:
            db.close()

    def __enter__(self) -> ResultCache:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # already failing (or interrupted): keep what was done, but do not hide why we stopped
            self.close()
        except sqlite3.Error as error:
            log.warning("could not save the cache %s: %s", self.path, error)
