"""Segment timelines: the library API, the activity rule, the --segments file (CSV, Parquet), resume and kill."""
from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tagger.scan as scan_mod
from audio_helpers import noise, tone, write_audio
from tagger.aggregate import track_scores
from tagger.inference import Scorer
from tagger.labels import BUNDLED_LABELS
from tagger.scan import Scanner, ScanOptions
from tagger.timeline import Timeline, TimelineWriter, ParquetMissing, activity, columns, read_timelines
from test_cli import read_csv, slow_writes_cli, tagger


def run(model: Path, paths, **options) -> list:
    return list(Scanner(Scorer.from_path(model, "cpu"), ScanOptions(jobs=1, **options)).scan(paths))


def test_track_result_carries_its_segments(tiny_model, library):
    for r in run(tiny_model, [library]):
        if r.status != "ok":
            assert r.timeline is None and r.segment_scores is None and r.activity == {}
            continue
        t = r.timeline
        assert len(t) == r.segments and r.segment_scores.shape == (r.segments, len(BUNDLED_LABELS))
        assert t.start_s[0] == 0.0 and np.all(np.diff(t.start_s) > 0)
        assert r.duration_s - 1.0 <= t.end_s[-1] <= r.duration_s + 1e-6  # a tail of up to 1 s is not scored
        assert np.all(t.end_s - t.start_s <= 3.0 + 1e-9)
        scores = track_scores(t.scores, t.audible)  # the track's scores come from exactly these segments
        assert [round(float(s), 5) for s in scores] == [round(r.scores[l], 5) for l in BUNDLED_LABELS]
    tone7 = next(r for r in run(tiny_model, [library / "tone.wav"]))
    assert list(tone7.timeline.start_s) == [0.0, 3.0] and list(tone7.timeline.end_s) == [3.0, 6.0]  # 1 s tail dropped


def test_spans_give_the_same_times_as_a_whole_file(tiny_model, tmp_path, monkeypatch):
    path = write_audio(tmp_path / "long.flac", np.concatenate([tone(10.0, 220), noise(10.0), tone(7.5, 880)]))
    whole = run(tiny_model, [path], hop_seconds=1.5)[0].timeline
    monkeypatch.setattr(scan_mod, "PROBE_BYTES", 0)
    spans = run(tiny_model, [path], hop_seconds=1.5, chunk_seconds=6.0)[0].timeline
    assert len(spans) >= len(whole) - 1
    common = np.intersect1d(whole.start_s, spans.start_s)
    assert len(common) >= len(whole) - 1  # same grid of segment starts across span boundaries
    for s in common:
        a, b = whole.scores[whole.start_s == s][0], spans.scores[spans.start_s == s][0]
        assert np.allclose(a, b, atol=2e-3)


def _timeline(scores: list[list[float]], loud=None, seg: float = 3.0) -> Timeline:
    n = len(scores)
    starts = np.arange(n) * seg
    return Timeline(starts, starts + seg, np.asarray(loud if loud is not None else [-20.0] * n, np.float32),
                    np.asarray(scores, np.float32), ("sax", "piano"))


def test_activity_merges_segments_and_drops_short_runs():
    # sax: on 0-9 s, a lone 3 s blip at 15 s, on again 21-27 s (quiet at 24-27 s); piano never
    sax = [0.9, 0.8, 0.7, 0.1, 0.2, 0.9, 0.1, 0.9, 0.9, 0.9]
    t = _timeline([[s, 0.1] for s in sax], loud=[-20] * 9 + [-70])
    got = activity(t, {"sax": 0.5, "piano": 0.5})
    assert got == {"sax": [(0.0, 9.0), (21.0, 27.0)]}  # the blip is shorter than 6 s; the silent segment does not count
    assert activity(t, {"sax": 0.5, "piano": 0.5}, min_seconds=3.0)["sax"] == [(0.0, 9.0), (15.0, 18.0), (21.0, 27.0)]
    assert activity(t, {"sax": 0.5, "piano": 0.5}, threshold=0.05)["piano"] == [(0.0, 27.0)]  # one threshold for all
    short = Timeline(np.zeros(1), np.array([2.0]), np.array([-20.0], np.float32), np.array([[0.9, 0.1]], np.float32), ("sax", "piano"))
    assert activity(short, {"sax": 0.5, "piano": 0.5}) == {"sax": [(0.0, 2.0)]}  # a whole short track counts


def test_overlapping_segments_merge():
    starts = np.arange(6) * 1.5
    t = Timeline(starts, starts + 3.0, np.full(6, -20, np.float32), np.array([[0.9, 0]] * 3 + [[0, 0]] * 3, np.float32), ("sax", "piano"))
    assert activity(t, {"sax": 0.5, "piano": 0.5}) == {"sax": [(0.0, 6.0)]}


def test_timeline_json_round_trip_keeps_three_decimals():
    t = _timeline([[0.1234, 0.9876], [0.5, 0.0005]])
    back = Timeline.from_json(json.loads(json.dumps(t.to_json())))
    assert back.labels == t.labels and np.array_equal(back.start_s, t.start_s) and np.array_equal(back.end_s, t.end_s)
    assert np.allclose(back.scores, np.round(t.scores, 3), atol=1e-6) and np.array_equal(back.loudness_db, t.loudness_db)


def _rows_by_path(path: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in read_csv(path):
        out.setdefault(r["path"], []).append(r)
    return out


def test_scan_segments_csv_in_scan_order_and_resume_keeps_rows(tiny_model, library, tmp_path):
    seg, report = tmp_path / "seg.csv", tmp_path / "r.csv"
    args = ["scan", str(library), "--model", str(tiny_model), "--csv", str(report), "--segments", str(seg), "--jobs", "1", "--json", "--quiet"]
    proc = tagger(*args)
    assert proc.returncode == 1, proc.stderr  # the library has bad files
    with open(seg, newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == columns(BUNDLED_LABELS)
    rows = read_csv(seg)
    order = [r["path"] for r in rows]
    assert order == sorted(order, key=[r["path"] for r in read_csv(report)].index)  # scan order, each file's rows together
    by_path = _rows_by_path(seg)
    for r in read_csv(report):
        if r["status"] == "ok":
            segs = by_path[r["path"]]
            assert len(segs) == int(r["segments"])
            assert all(len(s[label].split(".")[1]) == 3 for s in segs for label in BUNDLED_LABELS)
            assert float(r["duration_s"]) - 1.0 <= float(segs[-1]["end_s"]) <= float(r["duration_s"])
        else:
            assert r["path"] not in by_path
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all(isinstance(line["activity"], dict) for line in lines)
    assert tagger(*args).returncode == 1  # resumed: unchanged files are skipped...
    assert {r["status"] for r in read_csv(report)} == {"skipped", "error"}
    assert read_csv(seg) == rows  # ...and their segment rows are still there, from the cache


def test_scan_segments_parquet(tiny_model, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    write_audio(tmp_path / "lib" / "a.wav", tone(10.0))
    write_audio(tmp_path / "lib" / "b.flac", noise(5.0))
    seg = tmp_path / "seg.parquet"
    proc = tagger("scan", str(tmp_path / "lib"), "--model", str(tiny_model), "--csv", str(tmp_path / "r.csv"), "--segments", str(seg), "--jobs", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert not seg.with_name("seg.parquet.partial").exists()
    table = pq.read_table(seg)
    assert table.column_names == columns(BUNDLED_LABELS)
    assert [Path(p).name for p in table.column("path").to_pylist()] == ["a.wav"] * 3 + ["b.flac"] * 2
    assert [(Path(p).name, len(t)) for p, t in read_timelines(seg)] == [("a.wav", 3), ("b.flac", 2)]


def test_parquet_without_pyarrow_is_one_clear_error(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ParquetMissing, match=r"pip install pyarrow"):
        TimelineWriter(tmp_path / "x.parquet", BUNDLED_LABELS)
    write_audio(tmp_path / "lib" / "a.wav", tone(4.0))
    code = "import sys; sys.modules['pyarrow'] = None\nfrom tagger.cli import app\napp(prog_name='tagger', args=sys.argv[1:])"
    proc = subprocess.run([sys.executable, "-c", code, "scan", str(tmp_path / "lib"), "--model", str(tiny_model),
                           "--csv", str(tmp_path / "r.csv"), "--segments", str(tmp_path / "s.parquet")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "needs pyarrow" in proc.stderr and "Traceback" not in proc.stderr


def test_killed_run_leaves_whole_tracks_in_the_timeline(tiny_model, tmp_path):
    lib = tmp_path / "lib"
    for i in range(10):
        write_audio(lib / f"{i:02d}.flac", tone(8.0, 110 * (i + 1)))
    report, seg = tmp_path / "r.csv", tmp_path / "seg.csv"
    args = ["scan", str(lib), "--model", str(tiny_model), "--csv", str(report), "--segments", str(seg),
            "--write-tags", "--jobs", "1", "--quiet", "--no-resume"]
    proc = subprocess.Popen([*slow_writes_cli(0.2), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and (not report.exists() or len(read_csv(report)) < 3):
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {r["path"]: r for r in read_csv(report)}
    by_path = _rows_by_path(seg)
    assert 2 <= len(by_path) < 10
    for path, rows in by_path.items():
        assert len(rows) == 3 and path in done  # 8 s: two segments and the tail, never part of a track


def test_ctrl_c_finishes_the_parquet_file(tiny_model, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    lib = tmp_path / "lib"
    for i in range(12):
        write_audio(lib / f"{i:02d}.flac", tone(5.0, 100 + 50 * i))
    report, seg = tmp_path / "r.csv", tmp_path / "seg.parquet"
    args = ["scan", str(lib), "--model", str(tiny_model), "--csv", str(report), "--segments", str(seg),
            "--write-tags", "--jobs", "1", "--quiet"]
    proc = subprocess.Popen([*slow_writes_cli(0.25), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and (not report.exists() or len(read_csv(report)) < 3):
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    done = [r["path"] for r in read_csv(report)]
    paths = pq.read_table(seg).column("path").to_pylist()  # a whole Parquet file: footer written, renamed
    assert 3 <= len(done) < 12 and sorted(set(paths), key=paths.index) == done and len(paths) == 2 * len(done)
    assert not seg.with_name("seg.parquet.partial").exists()
