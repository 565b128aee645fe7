"""The scan pipeline as a library: ordering, batching, spans, tags and bad input."""
from __future__ import annotations

import hashlib
import shutil
import stat
from pathlib import Path

import mutagen
import numpy as np
import pytest

import tagger.scan as scan_mod
from audio_helpers import noise, tone, write_audio
from tagger.discover import discover
from tagger.inference import Scorer
from tagger.scan import Scanner, ScanOptions


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(model: Path, paths, batch_size: int = 256, **options) -> list:
    scorer = Scorer.from_path(model, "cpu", batch_size)
    return list(Scanner(scorer, ScanOptions(jobs=1, **options)).scan(paths))


def test_one_row_per_file_in_discovery_order_with_clear_errors(tiny_model, library):
    results = run(tiny_model, [library])
    assert [r.path for r in results] == list(discover([library]))
    by_name = {r.path.name: r for r in results}
    assert by_name["garbage.mp3"].status == "error" and "not an audio file" in by_name["garbage.mp3"].error
    assert by_name["empty.ogg"].error == "empty file (0 bytes)"
    assert by_name["short.wav"].error.startswith("too short to tag (0.40 s")
    ok = by_name["tone.wav"]
    assert ok.status == "ok" and ok.tags == "dry-run" and ok.duration_s == pytest.approx(7.0, abs=0.01)
    assert ok.segments == 2 and set(ok.scores) == set(Scorer.from_path(tiny_model).labels)
    assert all(0.0 <= s <= 1.0 for s in ok.scores.values())
    assert by_name["ünïcode – name.wav"].status == "ok"


def test_scores_do_not_depend_on_batch_size(tiny_model, library):
    a = run(tiny_model, [library], batch_size=1)
    b = run(tiny_model, [library], batch_size=64)
    for x, y in zip(a, b):
        assert x.path == y.path and x.status == y.status
        for label in x.scores:
            assert x.scores[label] == pytest.approx(y.scores[label], abs=1e-5)


def test_long_file_in_spans_equals_whole(tiny_model, tmp_path, monkeypatch):
    path = write_audio(tmp_path / "long.flac", np.concatenate([tone(10.0, 220), noise(10.0), tone(7.5, 880)]))
    whole = run(tiny_model, [path])[0]
    monkeypatch.setattr(scan_mod, "PROBE_BYTES", 0)  # probe every file, so it is split
    spans = run(tiny_model, [path], chunk_seconds=6.0)[0]
    assert len(Scanner(Scorer.from_path(tiny_model), ScanOptions(chunk_seconds=6.0))._plan(0, path)) == 5  # 4 × 6 s + 3.5 s
    assert spans.segments == whole.segments == 9  # 9 whole segments; the 0.5 s tail is dropped
    assert spans.duration_s == pytest.approx(whole.duration_s, abs=0.01)
    for label in whole.scores:
        assert spans.scores[label] == pytest.approx(whole.scores[label], abs=2e-3)


def test_overlapping_hop_gives_more_segments(tiny_model, tmp_path):
    path = write_audio(tmp_path / "a.wav", tone(9.0))
    assert run(tiny_model, [path], hop_seconds=1.5)[0].segments == 5
    assert run(tiny_model, [path])[0].segments == 3


def test_dry_run_touches_nothing_and_write_tags_writes(tiny_model, library):
    before = {p: digest(p) for p in library.rglob("*") if p.is_file()}
    run(tiny_model, [library], threshold=0.0)
    assert before == {p: digest(p) for p in library.rglob("*") if p.is_file()}
    results = run(tiny_model, [library], threshold=0.0, top_k=3, write_tags=True)
    flac = next(r for r in results if r.path.suffix == ".flac")
    assert flac.tags == "written" and len(flac.instruments) == 3
    tags = mutagen.File(flac.path)
    assert tags["INSTRUMENTS"] == [label for label, _ in flac.instruments]
    assert tags["INSTRUMENTS_SOURCE"][0].endswith(flac.model)
    assert tags["INSTRUMENTS_CONFIDENCE"][0].startswith(f"{flac.instruments[0][0]}:")


def test_users_own_tag_is_kept_unless_forced(tiny_model, tmp_path):
    path = write_audio(tmp_path / "mine.flac", tone(4.0))
    f = mutagen.File(path)
    f["INSTRUMENTS"] = ["kazoo"]
    f.save()
    kept = run(tiny_model, [path], write_tags=True, threshold=0.0)[0]
    assert (kept.status, kept.tags, kept.previous_instruments) == ("ok", "kept", ["kazoo"])
    assert kept.segments == 1 and kept.instruments and set(kept.scores) == set(Scorer.from_path(tiny_model).labels)
    assert kept.timeline is not None  # the analysis is in the row and the report, only not written
    assert mutagen.File(path)["INSTRUMENTS"] == ["kazoo"]
    forced = run(tiny_model, [path], write_tags=True, force=True, threshold=0.0, top_k=1)[0]
    assert forced.tags == "written" and forced.previous_instruments == ["kazoo"]
    assert mutagen.File(path)["INSTRUMENTS"] == [forced.instruments[0][0]]
    again = run(tiny_model, [path], write_tags=True)[0]  # now it is our tag: rewritten freely
    assert again.tags == "written"


def test_read_only_file_fails_alone_and_is_untouched(tiny_model, tmp_path):
    ro = write_audio(tmp_path / "ro.flac", tone(4.0))
    write_audio(tmp_path / "rw.flac", tone(4.0, 330))
    ro.chmod(stat.S_IRUSR | stat.S_IRGRP)
    before = digest(ro)
    results = run(tiny_model, [tmp_path], write_tags=True)
    by_name = {r.path.name: r for r in results}
    assert by_name["ro.flac"].status == "error" and "read-only" in by_name["ro.flac"].error
    assert by_name["rw.flac"].tags == "written"
    assert digest(ro) == before


def test_folder_vanishing_mid_scan(tiny_model, tmp_path):
    for i in range(3):
        write_audio(tmp_path / "gone" / f"{i}.wav", tone(3.0))
    write_audio(tmp_path / "stays.wav", tone(3.0))
    files = list(discover([tmp_path]))
    shutil.rmtree(tmp_path / "gone")
    results = list(Scanner(Scorer.from_path(tiny_model), ScanOptions(jobs=1)).scan_files(files))
    assert [(r.path.name, r.status) for r in results] == [("stays.wav", "ok")] + [(f"{i}.wav", "error") for i in range(3)]
    assert all(r.error == "file not found" for r in results[1:])


def test_leftover_temp_files_are_cleaned_by_the_next_write(tiny_model, tmp_path):
    write_audio(tmp_path / "a.wav", tone(3.0))
    leftover = tmp_path / ".a.wav.tagger-tmp-0123abcd"
    leftover.write_bytes(b"half a copy")
    run(tiny_model, [tmp_path])  # a dry run writes nothing, not even a cleanup
    assert leftover.exists()
    run(tiny_model, [tmp_path], write_tags=True)
    assert not leftover.exists() and not any(".tagger-tmp" in p.name for p in tmp_path.iterdir())


def test_resume_skips_unchanged_files_and_rescans_changed_ones(tiny_model, tmp_path):
    from tagger.cache import ResultCache

    lib = tmp_path / "lib"
    for i in range(3):
        write_audio(lib / f"{i}.flac", tone(3.0, 200 + 100 * i))
    scorer = Scorer.from_path(tiny_model)

    def scan(cache_file, **options):
        scanner = Scanner(scorer, ScanOptions(jobs=1, **options))
        with ResultCache(cache_file, scanner.result_key) as cache:
            scanner.cache = cache
            return list(scanner.scan([lib]))

    db = tmp_path / "r.csv.cache.sqlite"
    first = scan(db)
    assert [r.status for r in first] == ["ok"] * 3
    second = scan(db)
    assert [r.status for r in second] == ["skipped"] * 3
    assert [r.scores for r in second] == [r.scores for r in first]  # the row keeps its results
    write_audio(lib / "1.flac", tone(3.5, 500))  # changed file
    assert [r.status for r in scan(db)] == ["skipped", "ok", "skipped"]
    assert [r.status for r in scan(db, threshold=0.1)] == ["ok"] * 3  # other settings: other results
    assert [r.status for r in scan(db)] == ["ok"] * 3  # (one entry per file: the last settings')
    written = scan(db, write_tags=True)  # a dry run's results are reused: only the tags are written
    assert [(r.status, r.tags) for r in written] == [("skipped", "written")] * 3
    assert [(r.status, r.tags) for r in scan(db, write_tags=True)] == [("skipped", "written")] * 3
    assert [(r.status, r.tags) for r in scan(db)] == [("skipped", "dry-run")] * 3  # a dry run writes nothing
    assert [r.status for r in scan(db, write_tags=True, force=True)] == ["ok"] * 3


def test_scorer_in_background_gives_the_same_results(tiny_model, library):
    from tagger.scan import ScorerInBackground

    pending = ScorerInBackground(tiny_model, "cpu", 256)
    assert pending.labels == Scorer.from_path(tiny_model).labels and pending.checkpoint.state_dict == {}
    background = list(Scanner(pending, ScanOptions(jobs=1)).scan([library]))
    direct = run(tiny_model, [library])
    assert [(r.path, r.status, r.error, r.model) for r in background] == [(r.path, r.status, r.error, r.model) for r in direct]
    for x, y in zip(background, direct):
        assert x.scores == pytest.approx(y.scores, abs=1e-6)


def test_reading_the_weights_header_does_not_import_torch(tiny_model):
    import subprocess
    import sys

    code = ("import sys; from tagger.scan import ScorerInBackground; from tagger.weights import read_header; "
            f"h = read_header({str(tiny_model)!r}); assert h.labels and h.frontend.sample_rate == 22050; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class _FrontendOnTheModel(Scorer):
    """The scorer as on a GPU: workers send waveforms, the model runs the (torch) frontend."""

    frontend_in_workers = False


def test_on_the_cpu_workers_send_features_and_the_labels_equal_the_waveform_path():
    """Bundled model on examples/: features from the workers (CPU) vs waveforms to the model (GPU path)."""
    examples = Path(__file__).parent.parent / "examples"
    features = Scorer.from_path(None, "cpu")
    assert features.frontend_in_workers
    waveforms = _FrontendOnTheModel(features.checkpoint, "cpu")
    calls = {"score": 0, "score_features": 0}

    def counting(scorer, name):
        method = getattr(scorer, name)

        def call(x):
            calls[name] += 1
            assert x.ndim == (3 if name == "score_features" else 2)
            return method(x)
        setattr(scorer, name, call)

    counting(features, "score_features")
    counting(waveforms, "score")
    a = list(Scanner(features, ScanOptions(jobs=2)).scan([examples]))
    b = list(Scanner(waveforms, ScanOptions(jobs=2)).scan([examples]))
    assert calls["score"] >= 1 and calls["score_features"] >= 1
    assert len(a) == len(b) == 8 and all(r.status == "ok" for r in a + b)
    for x, y in zip(a, b):
        assert [label for label, _ in x.instruments] == [label for label, _ in y.instruments]
        assert x.scores == pytest.approx(y.scores, abs=1e-4)
        assert np.abs(x.segment_scores - y.segment_scores).max() < 1e-4


def test_a_worker_returns_features_when_given_the_frontend(tmp_path):
    from tagger.config import FrontendConfig
    from tagger.frontend import logmel

    cfg = FrontendConfig()
    path = write_audio(tmp_path / "t.wav", tone(7.5, 440.0, 0.3))
    task = scan_mod._Task(0, str(path), 0, 0.0, None, True)
    args = dict(sample_rate=cfg.sample_rate, seg_len=cfg.segment_samples, hop=cfg.segment_samples)
    waves = scan_mod.load_span(task, **args)
    feats = scan_mod.load_span(task, **args, frontend=cfg)
    assert waves.inputs.shape == (3, cfg.segment_samples) and feats.inputs.shape == (3, cfg.n_mels, cfg.n_frames)
    assert np.array_equal(feats.inputs, logmel(waves.inputs, cfg))
    assert np.array_equal(feats.loudness, waves.loudness) and np.array_equal(feats.starts_s, waves.starts_s)


def test_files_of_several_segments_are_held_to_the_track_threshold(tmp_path):
    """Clip thresholds 0 (every label passes) and a track threshold of 1 (none can): the count of audible segments decides."""
    from audio_helpers import make_tiny_model
    from tagger.datasets import read_manifest
    from tagger.evaluate import evaluate
    from tagger.weights import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(make_tiny_model(tmp_path / "m", threshold=0.0))
    ckpt.aggregation = {**ckpt.aggregation, "track_threshold": 1.0}
    ckpt.digest = ""
    model = save_checkpoint(ckpt, tmp_path / "tracks")
    lib = tmp_path / "lib"
    write_audio(lib / "clip.wav", tone(2.5, 440.0, 0.3))
    write_audio(lib / "track.wav", tone(9.0, 440.0, 0.3))
    clip, track = run(model, [lib])
    assert (clip.segments, track.segments) == (1, 3)
    assert len(clip.instruments) == len(ckpt.labels) and track.instruments == []
    assert len(run(model, [lib], threshold=0.0)[1].instruments) == len(ckpt.labels)  # --threshold replaces both
    (lib / "labels.csv").write_text("path,labels\nclip.wav,piano\ntrack.wav,piano\n")
    ev = evaluate(load_checkpoint(model), read_manifest(lib / "labels.csv"), torch_cpu(), jobs=1)
    assert ev.metrics["micro_recall"] == 0.5  # the clip finds piano, the track nothing


def torch_cpu():
    import torch

    return torch.device("cpu")
