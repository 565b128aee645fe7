"""Quick passes (``--coverage F``): windows planned evenly, decoded by seeking, scored at
their true times, never mistaken for a full scan; full coverage is the scan as it was."""
from __future__ import annotations

import csv
import json
import math
from fractions import Fraction
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tagger.scan as scan_mod
from audio_helpers import noise, tone, write_audio
from tagger.coverage import WINDOW_SEGMENTS, plan_windows, window_samples
from tagger import decode as decode_module
from tagger.decode import OpenFile, decode
from tagger.errors import AudioDecodeError
from tagger.inference import Scorer
from tagger.labels import BUNDLED_LABELS
from tagger.scan import Scanner, ScanOptions, _FileState

SR = 22050
SEG = 3 * SR  # the tiny model's segment: 3 s


def sections(seconds: float = 81.7) -> np.ndarray:
    """A track whose sections differ (tones, noise), so a misplaced window scores differently."""
    quarter = seconds / 4
    return np.concatenate([tone(quarter, 220), noise(quarter), tone(quarter, 880), noise(quarter, 0.3, seed=3)])


def scanner(model: Path, **options) -> Scanner:
    return Scanner(Scorer.from_path(model, "cpu"), ScanOptions(jobs=1, **options))


def scan_one(model: Path, path: Path, **options):
    return list(scanner(model, **options).scan([path]))[0]


@pytest.mark.parametrize("hop", [SEG, SEG // 2])
@pytest.mark.parametrize("coverage", [0.1, 0.3, 0.5, 0.9])
def test_windows_are_even_cover_at_least_f_and_reach_both_ends(coverage, hop):
    length = window_samples(SEG, hop, WINDOW_SEGMENTS)
    for seconds in (40, 95.5, 180, 181.3, 240, 600, 7200):
        n = round(seconds * SR)
        w = plan_windows(n, coverage, SEG, hop)
        wanted = max(2, math.ceil(coverage * n / length))
        if w is None:  # too short (or F too near 1) to leave a gap between its windows
            assert n < wanted * (length + 2 * hop)
            continue
        starts = np.array(w.starts)
        assert starts[0] == 0 and np.all(starts % hop == 0)  # from the start, on the full scan's grid
        assert 0 <= n - (starts[-1] + length) < hop  # the last window ends in the last hop (and is decoded to the end)
        gaps = np.diff(starts)
        assert gaps.min() > WINDOW_SEGMENTS * hop  # no segment twice, a gap between windows
        assert gaps.max() - gaps.min() <= hop  # evenly spread
        assert len(starts) == wanted
        covered = (len(starts) - 1) * length + (n - starts[-1])
        assert w.share == pytest.approx(covered / n) and w.share >= coverage
        if seconds >= 600:
            assert w.share == pytest.approx(coverage, abs=0.03)  # long tracks: about F
    assert plan_windows(round(180 * SR), 0.3, SEG, SEG).share == pytest.approx(60 / 180)  # 5 windows of 12 s
    assert plan_windows(round(20 * SR), 0.3, SEG, SEG) is None  # shorter than two windows: scanned whole
    assert plan_windows(round(600 * SR), 1.0, SEG, SEG) is None


@pytest.mark.parametrize("suffix", [".flac", ".mp3"])
def test_windows_decode_to_the_same_samples_as_a_full_decode(tmp_path, suffix, monkeypatch):
    path = write_audio(tmp_path / f"long{suffix}", sections())
    whole = decode(path, SR)
    w = plan_windows(len(whole), 0.3, SEG, SEG)
    assert len(w.starts) == 3
    opens = []
    real_open = decode_module._open
    monkeypatch.setattr(decode_module, "_open", lambda *a: opens.append(a) or real_open(*a))
    with OpenFile(path, SR) as opened:  # as a quick pass's worker decodes them
        windows = [opened.decode(path, SR, start / SR, None if k == 2 else w.length / SR) for k, start in enumerate(w.starts)]
    assert len(opens) == 1  # one open for all the windows
    for start, window in zip(w.starts, windows):
        expected = whole[start:] if start == w.starts[-1] else whole[start : start + w.length]
        assert len(window) == len(expected)
        np.testing.assert_allclose(window, expected, atol=1e-6)  # sought, sample-accurate


@pytest.mark.parametrize("suffix", [".flac", ".mp3"])
def test_quick_pass_scores_a_subset_of_the_full_scans_segments_at_their_true_times(tiny_model, tmp_path, suffix):
    path = write_audio(tmp_path / f"long{suffix}", sections())
    full = scan_one(tiny_model, path)
    quick_scanner = scanner(tiny_model, coverage=0.3)
    (group,) = quick_scanner._plan_file(_FileState(path), 0, path)  # one task: the file opened once
    assert [(t.start_s, t.span_s, t.last) for t in group.tasks] == [(0.0, 12.0, False), (33.0, 12.0, False), (69.0, None, True)]
    quick = list(quick_scanner.scan([path]))[0]
    assert quick.status == "ok" and quick.coverage == pytest.approx(0.449, abs=1e-3)
    assert quick.duration_s == full.duration_s == pytest.approx(81.7, abs=0.01)  # the file's, not the windows'
    assert quick.segments == len(quick.timeline) == 12 < full.segments == 27
    np.testing.assert_array_equal(quick.timeline.start_s, [0, 3, 6, 9, 33, 36, 39, 42, 69, 72, 75, 78])
    same = np.searchsorted(full.timeline.start_s, quick.timeline.start_s)
    np.testing.assert_array_equal(full.timeline.start_s[same], quick.timeline.start_s)
    np.testing.assert_array_equal(full.timeline.end_s[same], quick.timeline.end_s)
    np.testing.assert_allclose(quick.timeline.loudness_db, full.timeline.loudness_db[same], atol=1e-4)
    np.testing.assert_allclose(quick.timeline.scores, full.timeline.scores[same], atol=1e-5)
    windows = [(0.0, 12.0), (33.0, 45.0), (69.0, quick.duration_s)]
    for ranges in quick.activity.values():  # no range bridges a gap between windows
        assert all(any(s <= start and end <= e for s, e in windows) for start, end in ranges)


def test_windows_with_overlapping_segments(tiny_model, tmp_path):
    path = write_audio(tmp_path / "long.flac", sections())
    full, quick = scan_one(tiny_model, path, hop_seconds=1.5), scan_one(tiny_model, path, hop_seconds=1.5, coverage=0.3)
    starts = np.concatenate([s + np.arange(4) * 1.5 for s in (0, 24, 48, 73.5)])  # 4 windows of 4 segments, 7.5 s each
    np.testing.assert_array_equal(quick.timeline.start_s, starts)
    assert quick.segments == 16 and full.segments == 53 and quick.coverage == pytest.approx(30.7 / 81.7, abs=1e-3)
    same = np.searchsorted(full.timeline.start_s, starts)
    np.testing.assert_allclose(quick.timeline.scores, full.timeline.scores[same], atol=1e-5)


def test_coverage_one_is_the_full_scan(tiny_model, tmp_path, monkeypatch):
    path = write_audio(tmp_path / "long.flac", sections(27.5))
    monkeypatch.setattr(scan_mod, "PROBE_BYTES", 0)  # probed and cut into spans, as a long file is
    default, explicit = scanner(tiny_model, chunk_seconds=6.0), scanner(tiny_model, chunk_seconds=6.0, coverage=1.0)
    assert explicit._plan_file(_FileState(path), 0, path) == default._plan(0, path) and len(default._plan(0, path)) == 5
    version = default.scorer.checkpoint.version
    assert explicit.result_key == default.result_key == f"{version}|threshold=None|top_k=None|hop={SEG}"  # old caches still hit
    a, b = list(default.scan([path]))[0], list(explicit.scan([path]))[0]
    assert a.coverage == b.coverage == 1.0 and a.segments == b.segments == 9
    assert a.duration_s == b.duration_s and a.scores == b.scores and a.instruments == b.instruments
    np.testing.assert_array_equal(a.timeline.start_s, b.timeline.start_s)
    np.testing.assert_array_equal(a.timeline.scores, b.timeline.scores)


def test_short_or_unprobed_file_is_scanned_whole(tiny_model, tmp_path, monkeypatch):
    short = write_audio(tmp_path / "short.wav", sections(20.0))
    quick = scanner(tiny_model, coverage=0.3)
    assert len(quick._plan_file(_FileState(short), 0, short)) == 1
    full, q = scan_one(tiny_model, short), list(quick.scan([short]))[0]
    assert q.coverage == 1.0 and q.segments == full.segments == 7 and q.scores == full.scores

    def no_duration(path, time_limit_s=None):
        raise AudioDecodeError("cannot probe", path)

    long = write_audio(tmp_path / "long.wav", sections())
    monkeypatch.setattr(scan_mod, "probe", no_duration)  # a duration nobody knows: scanned whole
    q = list(quick.scan([long]))[0]
    assert q.status == "ok" and q.coverage == 1.0 and q.segments == 27


def test_a_file_that_cannot_be_sought_to_the_sample_is_scanned_whole(tiny_model, tmp_path):
    import av

    path = tmp_path / "long.mka"  # Matroska: millisecond timestamps, never sought
    pcm = np.round(sections(40.0) * 32767).astype(np.int16)[None, :]
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("flac", rate=SR, layout="mono")
        for at in range(0, pcm.shape[1], 4608):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, at : at + 4608]), format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = SR, at, Fraction(1, SR)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    quick = scanner(tiny_model, coverage=0.3)
    assert len(quick._plan_file(_FileState(path), 0, path)) == 1
    result = list(quick.scan([path]))[0]
    assert result.status == "ok" and result.coverage == 1.0 and result.segments == 13


def test_a_users_tag_and_a_broken_file_in_a_quick_pass(tiny_model, tmp_path):
    import mutagen

    mine = write_audio(tmp_path / "a_mine.flac", sections())
    f = mutagen.File(mine)
    f["INSTRUMENTS"] = ["kazoo"]
    f.save()
    broken = tmp_path / "b_broken.flac"
    data = write_audio(tmp_path / "whole.flac", sections()).read_bytes()
    broken.write_bytes(data[: len(data) // 2])  # its windows past the half find nothing
    (tmp_path / "whole.flac").unlink()
    results = list(scanner(tiny_model, coverage=0.3, write_tags=True).scan([tmp_path]))
    assert [(r.path.name, r.status, r.tags) for r in results] == [("a_mine.flac", "ok", "kept"), ("b_broken.flac", "ok", "written")]
    assert results[0].previous_instruments == ["kazoo"] and mutagen.File(mine)["INSTRUMENTS"] == ["kazoo"]
    decoded = len(decode(broken, SR))
    assert 45 * SR < decoded < 69 * SR  # it ends between the second window and the last
    assert results[1].segments == 8  # the first two windows; the last starts past the end of what is there
    assert results[1].duration_s == 45.0  # what was decoded: the end of the second window
    np.testing.assert_array_equal(results[1].timeline.start_s, [0, 3, 6, 9, 33, 36, 39, 42])


def test_a_quick_pass_never_stands_in_for_a_full_scan(tiny_model, tmp_path):
    from tagger.cache import ResultCache

    lib = tmp_path / "lib"
    write_audio(lib / "long.flac", sections())
    db = tmp_path / "r.csv.cache.sqlite"

    def scan(**options):
        s = scanner(tiny_model, **options)
        with ResultCache(db, s.result_key) as cache:
            s.cache = cache
            return list(s.scan([lib]))[0]

    first = scan(coverage=0.3)
    assert first.status == "ok" and first.segments == 12
    again = scan(coverage=0.3)
    assert again.status == "skipped" and again.coverage == first.coverage and again.segments == 12
    assert scan(coverage=0.5).status == "ok"  # another coverage: other results
    full = scan()
    assert full.status == "ok" and full.coverage == 1.0 and full.segments == 27  # not the quick pass's row
    assert scan().status == "skipped"
    assert scan(coverage=0.3).status == "ok"  # nor does a full scan stand in for a quick pass


@pytest.mark.parametrize("bad", [0.0, -0.3, 1.5, float("nan")])
def test_bad_coverage_is_refused_by_the_library(tiny_model, bad):
    with pytest.raises(ValueError, match=r"coverage must be in \(0, 1\]"):
        scanner(tiny_model, coverage=bad)


def tagger(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tagger", *args], capture_output=True, text=True, timeout=300)


def test_cli_coverage(tiny_model, tmp_path):
    lib = tmp_path / "lib"
    write_audio(lib / "a_long.mp3", sections())
    write_audio(lib / "b_short.wav", tone(5.0))
    out = tmp_path / "r.csv"
    for bad in ("0", "1.5"):
        proc = tagger("scan", str(lib), "--model", str(tiny_model), "--csv", str(out), "--coverage", bad)
        assert proc.returncode == 2, proc.stderr
        assert "coverage must be in (0, 1]" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert not out.exists()
    proc = tagger("scan", str(lib), "--model", str(tiny_model), "--csv", str(out), "--coverage", "0.3", "--json", "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(Path(l["path"]).name, l["segments"], l["coverage"]) for l in lines] == [("a_long.mp3", 12, 0.449), ("b_short.wav", 2, 1.0)]
    assert lines[0]["duration_s"] == pytest.approx(81.7, abs=0.01)
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "status", "error", "duration_s", "segments", "instruments", *BUNDLED_LABELS,
                             "model", "tags", "previous_instruments"]  # the CSV contract: no new column
    assert [(r["segments"], r["duration_s"]) for r in rows] == [("12", "81.700"), ("2", "5.000")]
