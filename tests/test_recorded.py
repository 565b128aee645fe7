"""The `recorded` held-out set: samples played as a sampler would, mixed, written as a corpus."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from tagger.datasets import read_manifest
from training import recorded as rec
from training.corpus.audio import CLIP_SAMPLES, SAMPLE_RATE

SR = SAMPLE_RATE


def _tone(f: float, seconds: float, decay: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * f * t) * np.exp(-decay * t)).astype(np.float32)


def _peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * SR / len(x))


@pytest.mark.parametrize("semitones", [-5, 0, 7, 12])
def test_shift_plays_the_sample_higher_or_lower(semitones):
    y = rec.shift(_tone(440.0, 1.0), semitones)
    assert _peak_hz(y) == pytest.approx(440.0 * 2 ** (semitones / 12), rel=0.01)
    assert len(y) == pytest.approx(SR * 2 ** (-semitones / 12), rel=0.01)  # a sampler's: higher is shorter


def test_a_one_shot_becomes_a_phrase_of_several_notes():
    rng = np.random.default_rng(0)
    clip = rec.play(_tone(330.0, 2.0, decay=3.0), "note", rng)
    assert clip.shape == (CLIP_SAMPLES,) and np.max(np.abs(clip)) == pytest.approx(0.5, abs=1e-6)
    # notes 0.25-1 s apart: the energy envelope has at least three onsets (jumps of 6 dB)
    frames = clip[: len(clip) // 512 * 512].reshape(-1, 512)
    level = 20 * np.log10(np.sqrt(np.mean(frames ** 2, axis=1)) + 1e-9)
    assert int(np.sum(np.diff(level) > 6)) >= 3
    pitches = {round(_peak_hz(clip[i:i + 4096])) for i in range(0, CLIP_SAMPLES - 4096, 2048)
               if np.sqrt(np.mean(clip[i:i + 4096] ** 2)) > 0.05}
    assert len(pitches) >= 2  # resampled to more than one pitch


def test_a_phrase_is_a_window_and_a_loop_repeats():
    rng = np.random.default_rng(1)
    long = np.arange(5 * SR, dtype=np.float32) / (5 * SR)
    w = rec.window(long, rng)
    assert len(w) == CLIP_SAMPLES and np.all(np.diff(w) > 0)  # one stretch of it, in order
    loop = _tone(200.0, 0.7)
    y = rec.looped(loop, rng)
    period = len(loop)
    assert len(y) == CLIP_SAMPLES and np.allclose(y[:-period], y[period:])
    with pytest.raises(ValueError, match="unknown sample kind"):
        rec.play(loop, "riff", rng)


def _package(tmp_path):
    root = tmp_path / "samples"
    root.mkdir()
    sf.write(root / "pluck.wav", _tone(220.0, 1.5, decay=4.0), SR)
    sf.write(root / "organ.flac", _tone(262.0, 6.0), SR)
    sf.write(root / "beat.ogg", np.tile(np.r_[np.ones(200), np.zeros(SR // 2 - 200)].astype(np.float32) * 0.5, 2), SR)
    samples = (("pkg", "pluck.wav", "acoustic_guitar", "note"), ("pkg", "organ.flac", "organ", "phrase"),
               ("pkg", "beat.ogg", "drums", "loop"))
    return samples, {"pkg": (root, "some-package")}


def test_build_writes_a_corpus_the_evaluator_reads(tmp_path):
    samples, roots = _package(tmp_path)
    rows = rec.build(tmp_path / "out", samples, singles=3, mixtures=10, seed=5, roots=roots)
    assert len(rows) == 3 * 3 + 10
    ds = read_manifest(tmp_path / "out" / "manifest.csv")
    assert len(ds.items) == 19
    singles = [r for r in rows if r["kind"] == "single"]
    assert sorted({r["labels"] for r in singles}) == ["acoustic_guitar", "drums", "organ"]
    for r in rows:
        audio, sr = sf.read(tmp_path / "out" / r["path"])
        assert sr == SR and len(audio) == CLIP_SAMPLES and 0.3 < np.max(np.abs(audio)) <= 0.5 + 1e-3
        names = [p.split("=")[0] for p in r["programs"].split(";")]
        assert r["labels"].split(";") == sorted(names)  # each sample's own label, no label twice
        if r["kind"] == "mix":
            assert len(names) in (2, 3) and len(set(names)) == len(names)
    again = rec.build(tmp_path / "again", samples, singles=3, mixtures=10, seed=5, roots=roots)
    assert again == rows  # the same seed, the same set
    first = sf.read(tmp_path / "out" / rows[-1]["path"])[0]
    assert np.array_equal(first, sf.read(tmp_path / "again" / rows[-1]["path"])[0])


def test_main_stamps_the_build_and_reuses_it(tmp_path, monkeypatch, capsys):
    samples, roots = _package(tmp_path)
    monkeypatch.setattr(rec, "SAMPLES", samples)
    monkeypatch.setattr(rec, "ROOTS", roots)
    out = tmp_path / "set"
    assert rec.main(["--out", str(out), "--singles", "2", "--mixtures", "4"]) == 0
    assert json.loads((out / "build.json").read_text())["mixtures"] == 4
    assert rec.main(["--out", str(out), "--singles", "2", "--mixtures", "4", "--reuse"]) == 0
    assert "kept" in capsys.readouterr().out


def test_a_missing_package_is_named_in_one_line(tmp_path):
    samples, _ = _package(tmp_path)
    with pytest.raises(SystemExit, match=r"missing Debian packages: lmms-common .*apt-get install lmms-common"):
        rec.build(tmp_path / "out", samples, roots={"pkg": (tmp_path / "nowhere", "lmms-common")})


def test_explain_names_what_a_model_calls_each_recording(tmp_path, tiny_model, monkeypatch, capsys):
    samples, roots = _package(tmp_path)
    monkeypatch.setattr(rec, "SAMPLES", samples)
    monkeypatch.setattr(rec, "ROOTS", roots)
    out = tmp_path / "set"
    rec.main(["--out", str(out), "--singles", "3", "--mixtures", "2"])
    assert rec.main(["--out", str(out), "--explain", str(tiny_model)]) == 0
    table = capsys.readouterr().out.strip().splitlines()
    assert table[0] == "| label | recording | top-1 on its clips |" and len(table) == 2 + 3
    for line, (root, path, label, _) in zip(table[2:], sorted(samples, key=lambda s: (s[2], s[1]))):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[:2] == [label, f"{root}:{path}"]
        assert sum(int(part.rsplit(" ", 1)[1]) for part in cells[2].split(", ")) == 3  # its 3 clips, counted


def test_heldout_scores_the_recorded_set(tmp_path, tiny_model, capsys):
    from training import heldout

    samples, roots = _package(tmp_path)
    rec.build(tmp_path / "data" / "corpus_recorded", samples, singles=2, mixtures=4, seed=3, roots=roots)
    out = tmp_path / "h.json"
    assert heldout.main([str(tiny_model), "--data", str(tmp_path / "data"), "--sets", "recorded",
                         "--json", str(out)]) == 0
    header, _, row = capsys.readouterr().out.strip().splitlines()[:3]
    assert "recorded top-1" in header and "recorded mix F1 (P / R)" in header
    figures = json.loads(out.read_text())[tiny_model.stem]["recorded"]
    assert figures["items"] == 2 * 3 + 4
    assert f"{figures['top1_single']:.3f}" in row


def test_details_give_mixture_errors_each_recording_and_level(tmp_path):
    from training.mixture_errors import read_stems

    samples, roots = _package(tmp_path)
    rows = rec.build(tmp_path / "out", samples, singles=1, mixtures=12, seed=4, roots=roots)
    stems = read_stems(tmp_path / "out")
    assert set(stems) == {r["path"] for r in rows}
    for r in rows:
        assert sorted(label for label, _ in stems[r["path"]]) == r["labels"].split(";")
        levels = [db for _, db in stems[r["path"]]]
        assert levels[0] == 0.0 and set(levels) <= {0.0, -3.0, -6.0}


@pytest.mark.parametrize("bad", ["corrupt", "silent"])
def test_a_recording_that_cannot_serve_stops_the_build_in_one_line(tmp_path, bad):
    samples, roots = _package(tmp_path)
    target = roots["pkg"][0] / "organ.flac"
    if bad == "corrupt":
        target.write_bytes(b"fLaC" + bytes(range(256)) * 8)
    else:
        sf.write(target, np.zeros(SR * 4, dtype=np.float32), SR)
    with pytest.raises(SystemExit) as stop:
        rec.build(tmp_path / "out", samples, roots=roots)
    message = str(stop.value)
    assert message.startswith(f"training.recorded: {target}") and "\n" not in message
    assert not (tmp_path / "out" / "manifest.csv").exists()
