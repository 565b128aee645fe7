"""Resume: what a cached result is reused for, what its row says, and that it costs no model."""
from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import mutagen
import numpy as np
import pytest

from audio_helpers import tone, write_audio
from tagger.cache import ResultCache
from tagger.inference import Scorer
from tagger.scan import Scanner, ScanOptions, ScorerInBackground


class _NoScoring(Scorer):
    """A scorer that fails the test if anything is decoded and scored."""

    def score(self, segments: np.ndarray) -> np.ndarray:
        raise AssertionError("scored a file whose result was in the cache")

    def score_features(self, features: np.ndarray) -> np.ndarray:
        raise AssertionError("scored a file whose result was in the cache")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def lib(tmp_path) -> Path:
    for i in range(3):
        write_audio(tmp_path / "lib" / f"{i}.flac", tone(3.0, 200 + 100 * i))
    return tmp_path / "lib"


def scan(scorer, db: Path, paths, **options) -> list:
    scanner = Scanner(scorer, ScanOptions(jobs=1, threshold=0.0, top_k=2, **options))
    with ResultCache(db, scanner.result_key) as cache:
        scanner.cache = cache
        return list(scanner.scan(paths))


def test_a_dry_runs_analysis_is_reused_to_write_the_tags(tiny_model, lib, tmp_path):
    db = tmp_path / "r.csv.cache.sqlite"
    dry = scan(Scorer.from_path(tiny_model), db, [lib])
    assert [(r.status, r.tags) for r in dry] == [("ok", "dry-run")] * 3
    no_scoring = _NoScoring(Scorer.from_path(tiny_model).checkpoint, "cpu")
    written = scan(no_scoring, db, [lib], write_tags=True)  # nothing decoded, nothing scored
    assert [(r.status, r.tags) for r in written] == [("skipped", "written")] * 3
    for before, after in zip(dry, written):
        assert after.scores == before.scores and after.instruments == before.instruments
        assert mutagen.File(after.path)["INSTRUMENTS"] == [label for label, _ in before.instruments]
    files = {p: digest(p) for p in lib.iterdir()}
    again = scan(no_scoring, db, [lib], write_tags=True)  # the entries were refreshed with the written files
    assert [(r.status, r.tags) for r in again] == [("skipped", "written")] * 3
    assert files == {p: digest(p) for p in lib.iterdir()}  # and nothing was written again


def test_a_dry_run_after_a_write_says_dry_run_and_touches_nothing(tiny_model, lib, tmp_path):
    db = tmp_path / "r.csv.cache.sqlite"
    scorer = Scorer.from_path(tiny_model)
    assert [r.tags for r in scan(scorer, db, [lib], write_tags=True)] == ["written"] * 3
    files = {p: digest(p) for p in lib.iterdir()}
    dry = scan(scorer, db, [lib])
    assert [(r.status, r.tags) for r in dry] == [("skipped", "dry-run")] * 3  # what this run did, as the summary says
    assert files == {p: digest(p) for p in lib.iterdir()}
    # and the dry run did not spoil the stored entries: a write run still finds its tags in place
    assert [(r.status, r.tags) for r in scan(scorer, db, [lib], write_tags=True)] == [("skipped", "written")] * 3
    assert files == {p: digest(p) for p in lib.iterdir()}


def test_a_kept_users_tag_keeps_the_analysis_fresh_and_cached(tiny_model, tmp_path):
    path = write_audio(tmp_path / "mine.flac", tone(4.0))
    f = mutagen.File(path)
    f["INSTRUMENTS"] = ["kazoo"]
    f.save()
    db = tmp_path / "r.csv.cache.sqlite"
    scorer = Scorer.from_path(tiny_model)
    dry = scan(scorer, db, [path])[0]
    kept = scan(scorer, db, [path], write_tags=True)[0]  # reused from the dry run: the user's tag is found then
    assert (kept.status, kept.tags, kept.previous_instruments) == ("skipped", "kept", ["kazoo"])
    assert kept.instruments == dry.instruments and kept.instruments and kept.scores == dry.scores
    again = scan(_NoScoring(scorer.checkpoint, "cpu"), db, [path], write_tags=True)[0]
    assert (again.status, again.tags, again.instruments) == ("skipped", "kept", dry.instruments)
    assert mutagen.File(path)["INSTRUMENTS"] == ["kazoo"]


def test_a_write_that_finds_the_file_unwritable_is_an_error_row(tiny_model, lib, tmp_path):
    db = tmp_path / "r.csv.cache.sqlite"
    scorer = Scorer.from_path(tiny_model)
    scan(scorer, db, [lib])
    (lib / "1.flac").chmod(0o444)
    results = scan(scorer, db, [lib], write_tags=True)
    assert [(r.status, r.tags) for r in results] == [("skipped", "written"), ("error", ""), ("skipped", "written")]
    assert "read-only" in results[1].error


def test_a_run_where_every_file_is_cached_never_loads_the_model(tiny_model, lib, tmp_path):
    db = tmp_path / "r.csv.cache.sqlite"
    scan(Scorer.from_path(tiny_model), db, [lib])
    background = ScorerInBackground(tiny_model, "cpu")
    assert [r.status for r in scan(background, db, [lib], write_tags=True)] == ["skipped"] * 3
    assert not background.started
    write_audio(lib / "1.flac", tone(3.5, 500))  # one file changed: now the model is needed
    assert [r.status for r in scan(background, db, [lib])] == ["skipped", "ok", "skipped"]
    assert background.started


# torch cannot be imported: a run that loads the model fails, one that does not succeeds.
NO_TORCH = "raise ImportError('this run must not load the model')\n"


def test_cli_rerun_from_the_cache_does_not_import_torch(tiny_model, lib, tmp_path):
    report = tmp_path / "r.csv"
    args = [sys.executable, "-m", "tagger", "scan", str(lib), "--model", str(tiny_model), "--csv", str(report),
            "--jobs", "1"]
    first = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    (tmp_path / "fake" / "torch").mkdir(parents=True)
    (tmp_path / "fake" / "torch" / "__init__.py").write_text(NO_TORCH)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "fake"), os.environ.get("PYTHONPATH", "")])}
    html = tmp_path / "r.html"
    rerun = subprocess.run([*args, "--write-tags", "--html", str(html)], capture_output=True, text=True, timeout=300, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert html.stat().st_size > 0  # the HTML report (and its segments) from the cache too
    with open(report, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["status"], r["tags"]) for r in rows] == [("skipped", "written")] * 3
    assert all(r["instruments"] or float(r["piano"]) >= 0 for r in rows) and all(r["segments"] == "1" for r in rows)
    assert "3 (3 from the cache)" in rerun.stderr  # cached results count as results
    write_audio(lib / "1.flac", tone(3.5, 500))  # one file to score: the model is loaded, and fails here
    failing = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert failing.returncode != 0
