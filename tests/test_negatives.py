"""Label-free negatives (training/corpus/negatives.py, training/negatives.py): each kind is what
it says, at its level, reproducible, and the held-out split shares neither random streams
nor sound-effect packages with training."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from tagger.datasets import read_manifest
from training import negatives as builder
from training.corpus import negatives as neg
from training.corpus.audio import SAMPLE_RATE, rms

SR = SAMPLE_RATE
N = 4 * SR
SYNTHETIC = tuple(k for k in neg.KINDS if k != "game_sfx")


def _level_db(x: np.ndarray) -> float:
    return 20 * np.log10(rms(x))


def _octave_slope_db(x: np.ndarray) -> float:
    """Power change per octave, fitted over 200 Hz-6.4 kHz."""
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    bands = [power[(f >= lo) & (f < 2 * lo)].sum() / lo for lo in 200 * 2 ** np.arange(5)]  # power density
    return float(np.polyfit(np.arange(5), 10 * np.log10(bands), 1)[0])


@pytest.mark.parametrize("kind", SYNTHETIC)
def test_every_kind_renders_a_clip_at_its_level(kind):
    for i in range(4):
        y, what = neg.render_negative(kind, neg.clip_rng("train", 0, i), N)
        assert y.dtype == np.float32 and y.shape == (N,) and np.all(np.isfinite(y)) and what
        assert np.max(np.abs(y)) <= 0.99 + 1e-6
        if kind == "hum":
            assert -70 < _level_db(y) < -38  # near silence
        else:
            assert neg.LEVEL_DB[0] - 1 < _level_db(y) < neg.LEVEL_DB[1] + 0.1


@pytest.mark.parametrize("colour, slope_db", [("white", 0.0), ("pink", -3.0), ("brown", -6.0), ("blue", 3.0),
                                              ("violet", 6.0)])
def test_noise_has_the_slope_of_its_colour(colour, slope_db):
    y, what = neg.noise(np.random.default_rng(1), 8 * SR, colour)
    assert what == colour
    assert _octave_slope_db(y) == pytest.approx(slope_db, abs=1.0)  # power density per octave


def test_a_tone_is_one_frequency_and_a_sweep_covers_its_range():
    y, what = neg.tone(np.random.default_rng(3), N)
    f = float(what.split()[0])
    spectrum = np.abs(np.fft.rfft(y * np.hanning(N)))
    assert np.argmax(spectrum) * SR / N == pytest.approx(f, rel=0.01, abs=2)
    assert spectrum[np.abs(np.fft.rfftfreq(N, 1 / SR) - f) > 20].max() < 0.01 * spectrum.max()
    y, what = neg.sweep(np.random.default_rng(4), N)
    f0, f1 = (float(v) for v in what.split()[0].split("->"))
    lo, hi = sorted((f0, f1))
    frames = np.lib.stride_tricks.sliding_window_view(y, 4096)[::1024] * np.hanning(4096)
    peaks = np.argmax(np.abs(np.fft.rfft(frames, axis=1)), axis=1) * SR / 4096  # each frame's frequency, Hz
    assert peaks.min() == pytest.approx(lo, rel=0.2, abs=10) and peaks.max() == pytest.approx(hi, rel=0.2, abs=10)


def test_splits_draw_different_reproducible_clips():
    a, _ = neg.render_negative("tone", neg.clip_rng("train", 0, 5), N)
    b, _ = neg.render_negative("tone", neg.clip_rng("train", 0, 5), N)
    c, _ = neg.render_negative("tone", neg.clip_rng("heldout", 0, 5), N)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    train_packages = {p.package for p in neg.GAME_SFX["train"]}
    heldout_packages = {p.package for p in neg.GAME_SFX["heldout"]}
    assert train_packages and heldout_packages and not train_packages & heldout_packages


def test_game_sfx_places_effects_with_silence_between():
    effects = [np.ones(SR // 10, np.float32) * 0.5, np.ones(SR // 5, np.float32) * 0.5]
    y, what = neg.render_negative("game_sfx", np.random.default_rng(0), N, (effects, ["a.wav", "b.wav"]))
    assert set(what.split(",")) <= {"a.wav", "b.wav"} and len(what.split(",")) >= 2
    assert np.mean(np.abs(y) < 1e-6) > 0.2  # silence between the effects
    with pytest.raises(neg.NegativeError):
        neg.render_negative("game_sfx", np.random.default_rng(0), N, None)
    with pytest.raises(ValueError, match="unknown negative kind"):
        neg.render_negative("violin", np.random.default_rng(0), N)


def test_a_missing_sound_effect_package_is_named(monkeypatch, tmp_path):
    monkeypatch.setitem(neg.GAME_SFX, "heldout", (neg.SfxPackage("no-such-data", tmp_path / "nowhere", frozenset()),))
    with pytest.raises(SystemExit, match="no-such-data"):
        builder.build(tmp_path / "out", "heldout", clips=2)


def test_build_writes_label_free_clips_of_each_kind(monkeypatch, tmp_path):
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    for name in ("boom.wav", "hello.wav"):
        sf.write(sounds / name, np.sin(np.arange(SR // 4) * 0.3).astype(np.float32) * 0.5, SR)
    monkeypatch.setitem(neg.GAME_SFX, "heldout", (neg.SfxPackage("tiny-data", sounds, frozenset({"hello.wav"})),))
    out = tmp_path / "out"
    rows = builder.build(out, "heldout", clips=len(neg.KINDS), seed=3, seconds=(3.0, 4.0))
    ds = read_manifest(out / "manifest.csv")
    assert [item.labels for item in ds.items] == [()] * len(neg.KINDS)
    assert [r["programs"].split("=")[0] for r in rows] == list(neg.KINDS)
    sfx = rows[neg.KINDS.index("game_sfx")]["programs"]
    assert "boom.wav" in sfx and "hello.wav" not in sfx  # speech is left out
    for r in rows:
        y, sr = sf.read(out / r["path"])
        assert sr == SR and 3.0 <= len(y) / SR <= 4.0
    details = [json.loads(line) for line in (out / "details.jsonl").read_text().splitlines()]
    assert [d["negative"] for d in details] == list(neg.KINDS)


def test_figures_count_clean_clips_by_kind():
    labels = ("drums", "synthesizer", "voice")
    y_pred = np.array([[0, 0, 1], [0, 1, 0], [0, 0, 0], [1, 0, 0]], dtype=bool)
    f = builder.figures(labels, y_pred, ["tone", "tone", "noise", "noise"])
    assert f["no_instrument_clean"] == 0.5  # a voice label is not an instrument
    assert f["clean_by_kind"] == {"tone": 0.5, "noise": 0.5}
    assert f["labels_named"] == {"synthesizer": 1, "drums": 1}


def test_a_corpus_summary_counts_label_free_clips_apart(tmp_path):
    from training.publish import corpus_summary

    builder.build(tmp_path / "neg", "heldout", clips=3, kinds=("tone", "noise"), seconds=(3.0, 3.5))
    summary = corpus_summary(tmp_path / "neg")
    assert summary["clips_per_label"] == {} and summary["clips_without_label"] == 3
