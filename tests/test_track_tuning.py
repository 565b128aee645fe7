"""Track-level decision tuning (training.tune_tracks) and its validation tracks
(training.val_tracks, made by the examples' machinery in training.make_examples).

Nothing is rendered here: the track plans are checked as data, the tuner on score tables
and on a few tones scanned with a tiny random-weights model."""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audio_helpers import make_tiny_model, tone, write_audio
from tagger.labels import BUNDLED_LABELS, GM_PROGRAMS
from tagger.weights import load_checkpoint, read_header, save_checkpoint
from training import make_examples, tune_tracks, val_tracks
from training.corpus.sources import DRUM_BANK, Coverage
from training.make_examples import SEED, SOURCE, TRACKS, part_notes
from training.tune_tracks import Decision, ScannedTracks, best, decide, grid, tuned_checkpoint

# sha256 of every example part's notes, computed with make_examples.py before the
# source/seed parameters were added (commit 9799477): the examples' plan is unchanged.
EXAMPLE_NOTES_SHA256 = "119ea0fb212c3578c0d2a7a3f752c5201f73bd549effcfe00b614f11e72d3a97"


def _notes_digest(seed: int) -> str:
    rows = [[t.file, pi, [[round(n.start, 6), round(n.end, 6), n.pitch, n.velocity]
                          for n in part_notes(t, ti, pi, seed=seed)]]
            for ti, t in enumerate(TRACKS) for pi in range(len(t.parts))]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def test_examples_keep_their_source_and_notes_with_the_new_parameters():
    assert SOURCE == "timgm6mb" and {t.source for t in TRACKS} == {"timgm6mb"}
    assert _notes_digest(SEED) == EXAMPLE_NOTES_SHA256
    assert _notes_digest(SEED + 1) != EXAMPLE_NOTES_SHA256  # the seed is really used


# ---------------------------------------------------------------------------- validation tracks


def _fake_coverage() -> dict[str, Coverage]:
    """Every validation source covering GM programs (physical: no drums), no soundfont needed."""
    out = {}
    for source in val_tracks.VAL_SOURCES:
        programs = {label: tuple((0, p) for p in GM_PROGRAMS[label]) for label in BUNDLED_LABELS if label != "drums"}
        if source != "physical":
            programs["drums"] = ((DRUM_BANK, 0), (DRUM_BANK, 25))
        out[source] = Coverage(source, programs, {})
    return out


def test_validation_track_plans_use_training_sources_and_fit_the_renderer(monkeypatch):
    monkeypatch.setattr(val_tracks, "_preset_name", lambda source, bank, program: f"{source} {bank}:{program}")
    coverage = _fake_coverage()
    chorales = val_tracks._chorales()
    plans = [val_tracks.plan_track(ti, 0, coverage, 7, chorales) for ti in range(40)]
    assert plans == [val_tracks.plan_track(ti, 0, coverage, 7, chorales) for ti in range(40)]  # deterministic
    assert plans != [val_tracks.plan_track(ti, 1, coverage, 7, chorales) for ti in range(40)]  # a re-draw differs
    assert not {t.source for t in plans} & {"timgm6mb", "physical_heldout"}
    n_labels = [len(t.labels) for t in plans]
    assert min(n_labels) == 1 and max(n_labels) >= 4
    assert any("drums" in t.labels for t in plans) and any(p.material[0] == "score" for t in plans for p in t.parts)
    for t in plans:
        assert len(t.labels) == len(t.parts)  # one part per label
        assert 9.0 <= t.seconds <= 20.0
        assert t.window_seconds <= 3.0 and t.window_beats % t.beats_per_chord == 0
        assert t.file.startswith(f"{plans.index(t):03d}_{t.source}.")
        for p in t.parts:
            bank = DRUM_BANK if p.label == "drums" else 0
            assert (bank, p.program) in coverage[t.source].programs[p.label]
            assert -3.0 <= p.gain_db <= 3.0


# ---------------------------------------------------------------------------- the tuner


def test_best_threshold_maximises_f1_and_respects_a_precision_floor():
    # positives 0.9 0.8 0.7 0.45; negatives 0.75 0.5 0.4 0.1 0.05
    y_true = np.array([[1, 0, 1], [1, 0, 0], [1, 0, 0]], bool)
    y_score = np.array([[0.9, 0.75, 0.7], [0.8, 0.5, 0.1], [0.45, 0.4, 0.05]])
    decisions = decide(y_true, y_score, 0.34)
    top = best(decisions)
    # (0.4, 0.5]: TP 4, FP 2 -> F1 0.8, the best; ties go to the lower threshold
    assert top.threshold == pytest.approx(0.425) and top.f1 == pytest.approx(0.8)
    assert (top.precision, top.recall) == (pytest.approx(4 / 6), 1.0)
    assert top.invented_per_track == pytest.approx(2 / 3)
    # only (0.75, 0.8] has precision >= 0.85: TP 2, FP 0, FN 2
    floor = best(decisions, 0.85)
    assert floor.threshold == pytest.approx(0.775) and floor.f1 == pytest.approx(2 / 3) and floor.precision == 1.0
    assert best(decisions, 1.01) is None


def test_the_chosen_decision_is_the_best_f1_above_the_precision_floor_else_the_best_f1():
    from training.tune_tracks import choose

    y_true = np.array([[1, 0, 1], [1, 0, 0], [1, 0, 0]], bool)
    y_score = np.array([[0.9, 0.75, 0.7], [0.8, 0.5, 0.1], [0.45, 0.4, 0.05]])
    results = {0.34: decide(y_true, y_score, 0.34)}
    # the best F1 (0.8 at 0.425) has precision 0.67: below a 0.85 floor, (0.75, 0.8] is chosen
    assert choose(results, 0.85).threshold == pytest.approx(0.775)
    assert choose(results, 0.0).threshold == pytest.approx(0.425)
    # no setting reaches the floor: the best F1 overall, not nothing
    assert choose(results, 1.01).threshold == pytest.approx(0.425)


def test_grid_prefers_the_whole_track_mean_when_two_segments_spike():
    # track 0: label 0 plays throughout at 0.6; label 1 is absent but spikes in two of four segments
    # track 1: label 1 plays throughout at 0.7; label 0 absent
    seg0 = np.array([[0.6, 0.95], [0.6, 0.9], [0.6, 0.05], [0.6, 0.05]], np.float32)
    seg1 = np.array([[0.1, 0.7]] * 4, np.float32)
    tracks = ScannedTracks(("a", "b"), ["t0", "t1"], [seg0, seg1], [np.ones(4, bool)] * 2,
                           np.array([[1, 0], [0, 1]], bool))
    results = grid(tracks, (0.34, 0.67, 1.0))
    assert best(results[0.34]).f1 < 1.0 and best(results[0.67]).f1 < 1.0  # the spike beats the true label
    assert best(results[1.0]).f1 == 1.0  # mean 0.49 vs 0.6
    assert 0.5 <= best(results[1.0]).threshold <= 0.6
    same = best(results[1.0])
    assert tune_tracks.f1_gain_interval(tracks, same, same, n=50) == (0.0, 0.0, 0.0)
    mean, lo, hi = tune_tracks.f1_gain_interval(tracks, same, best(results[0.34]), n=200)
    assert 0.0 <= lo <= mean <= hi and mean > 0  # never worse on any resample here, better on most


def test_tuned_weights_round_trip_through_the_weights_file(tmp_path):
    model = make_tiny_model(tmp_path / "model", threshold=0.5)
    before = load_checkpoint(model)
    choice = Decision(0.67, 0.425, 0.9, 0.8, 0.847, 0.1, 0.2)
    ckpt = tuned_checkpoint(model, choice, tmp_path / "val", 12, {"sources": {"fluidr3": 12}})
    path = save_checkpoint(ckpt, tmp_path / "tuned")
    after = load_checkpoint(path)
    assert path.name == f"tiny-{after.digest}.safetensors" and after.digest != before.digest
    assert after.thresholds == before.thresholds  # one clip's thresholds stay as tuned on clips
    assert after.aggregation == {"method": "top_mean", "top_fraction": 0.67, "track_threshold": 0.425}
    card = read_header(path).card["track_decision"]
    assert (card["threshold"], card["top_fraction"], card["tracks"]) == (0.425, 0.67, str(tmp_path / "val"))
    assert card["previous"] == {"version": before.version, "aggregation": before.aggregation, "thresholds": [0.5]}
    assert all(torch.equal(after.state_dict[k], v) for k, v in before.state_dict.items())


def test_tune_tracks_scans_a_folder_and_writes_weights(tmp_path, capsys):
    model = make_tiny_model(tmp_path / "model")
    folder = tmp_path / "val"
    rows = [("low.wav", tone(9.0, 220.0), "bass"), ("high.wav", tone(7.0, 880.0), "flute;piano")]
    for name, audio, _ in rows:
        write_audio(folder / name, audio)
    with open(folder / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("path", "labels"), *[(name, labels) for name, _, labels in rows]])
    assert tune_tracks.main([str(model), "--tracks", str(folder), "--jobs", "1", "--top-fractions", "0.34,1",
                             "--write", str(tmp_path / "tuned")]) == 0
    out = capsys.readouterr().out
    assert "2 tracks, 5 segments, 3 true labels" in out and "the model's current setting" in out
    assert "F1 gain over the current setting" in out
    (written,) = (tmp_path / "tuned").glob("*.safetensors")
    tuned = read_header(written)
    assert tuned.aggregation["top_fraction"] in (0.34, 1.0)
    assert 0 < tuned.aggregation["track_threshold"] < 1
    assert tuned.card["track_decision"]["previous"]["version"] == read_header(model).version
    assert tuned.card["track_decision"]["min_precision"] == tune_tracks.MIN_PRECISION  # the floor it chose under


def test_val_tracks_reuse_keeps_finished_tracks_and_redraws_on_other_arguments(tmp_path, monkeypatch, capsys):
    """make weights resumes: --reuse keeps tracks finished with the same arguments, renders
    again for others or when the last build did not finish (no build.json). The renderer
    is replaced by a stand-in that records what it was asked for."""
    rendered = []

    def fake_render(ti, coverage, out, seed, chorales):
        rendered.append((ti, seed))
        track = TRACKS[0]
        return track, {"file": track.file, "attempt": 0}

    monkeypatch.setattr(val_tracks, "coverage_for", lambda source: None)
    monkeypatch.setattr(val_tracks, "_chorales", lambda: [])
    monkeypatch.setattr(val_tracks, "render_val_track", fake_render)
    out = tmp_path / "tracks"
    run = lambda *args: val_tracks.main(["--out", str(out), "--tracks", "2", "--reuse", *args])  # noqa: E731
    assert run("--seed", "1") == 0 and rendered == [(0, 1), (1, 1)]
    assert run("--seed", "1") == 0 and len(rendered) == 2 and "already built" in capsys.readouterr().out
    assert run("--seed", "2") == 0 and rendered[2:] == [(0, 2), (1, 2)]
    (out / "build.json").unlink()
    assert run("--seed", "2") == 0 and len(rendered) == 6
