"""The physical/spectral models render in tune, with the right envelopes and spectra."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from tagger.labels import GM_PROGRAMS
from training.corpus import physical as ph
from training.corpus.audio import RENDER_SAMPLES, SAMPLE_RATE
from training.corpus.material import GENERATORS, LABEL_STYLES, Note, Phrase, playable_range, random_context
from training.corpus.sources import Stem, coverage_for

SR = SAMPLE_RATE
PLUCKED = {"electric_guitar": 27, "acoustic_guitar": 25, "banjo": 105, "bass": 33, "mallet_percussion": 8}
SUSTAINED = {"violin": 40, "cello": 42, "clarinet": 71, "saxophone": 65, "flute": 73, "trumpet": 56,
             "trombone": 57, "accordion": 21, "organ": 19}
PITCH_CASES = [("electric_guitar", 27, 52), ("electric_guitar", 30, 57), ("electric_guitar", 31, 76), ("acoustic_guitar", 24, 55),
               ("acoustic_guitar", 25, 64), ("banjo", 105, 62), ("bass", 33, 40), ("bass", 32, 45),
               ("bass", 35, 38), ("bass", 36, 40), ("violin", 40, 69), ("violin", 41, 62), ("cello", 42, 50),
               ("clarinet", 71, 55), ("saxophone", 65, 61), ("saxophone", 67, 45), ("flute", 73, 74),
               ("trumpet", 56, 65), ("trumpet", 59, 67), ("trombone", 57, 50), ("piano", 0, 60),
               ("piano", 3, 67), ("piano", 4, 60), ("piano", 5, 57), ("accordion", 21, 64),
               ("accordion", 23, 60), ("organ", 19, 60), ("organ", 20, 55), ("mallet_percussion", 8, 72),
               ("mallet_percussion", 10, 76)]


def _note_stem(label, program, pitch, velocity=100, start=0.1, end=1.6) -> Stem:
    return Stem(label, 0, program, Phrase([Note(start, end, pitch, velocity)], "test"))


def _render(stem, seed, heldout=False) -> np.ndarray:
    return ph.render_physical(stem, seed, heldout=heldout)


def _rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) + 1e-12


def _window(y, a, b):
    return y[int(a * SR):int(b * SR)]


def _f0(seg, expected) -> float:
    import librosa

    f = librosa.yin(seg.astype(np.float64), fmin=expected / 1.45, fmax=expected * 1.45, sr=SR,
                    frame_length=4096 if expected < 150 else 2048)
    return float(np.median(f))


def _spectrum(seg):
    s = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    return np.fft.rfftfreq(len(seg), 1 / SR), s


def _harmonic_amp(freqs, spec, f, width=0.03):
    m = (freqs > f * (1 - width)) & (freqs < f * (1 + width))
    return float(spec[m].max()) if m.any() else 0.0


# ---------------------------------------------------------------------------- coverage and split


def test_coverage_names_gm_programs_of_the_label():
    for source in ("physical", "physical_heldout"):
        cov = coverage_for(source)
        assert set(cov.labels) == set(ph.MODELS)
        for label, progs in cov.programs.items():
            assert progs, label
            for bank, program in progs:
                assert bank == 0 and program in GM_PROGRAMS[label], (label, program)


def test_heldout_variants_are_disjoint_and_never_used_for_training():
    for label, (train, held) in ph.VARIANTS.items():
        assert train and held and not set(train) & set(held), label
        for program in [p for _, p in ph.PHYSICAL_PROGRAMS[label]]:
            for seed in range(12):
                assert ph.choose_variant(np.random.default_rng(seed), label, program, False) in train
                assert ph.choose_variant(np.random.default_rng(seed), label, program, True) in held


# ---------------------------------------------------------------------------- pitch


@pytest.mark.parametrize("label,program,pitch", PITCH_CASES, ids=[f"{a}-{b}-{c}" for a, b, c in PITCH_CASES])
def test_held_note_is_in_tune(label, program, pitch):
    expected = ph.hz(pitch)
    for seed, heldout in ((1, False), (2, True), (3, False)):
        y = _render(_note_stem(label, program, pitch), seed, heldout)
        a, b = (0.15, 0.7) if label in PLUCKED or label == "piano" else (0.35, 1.3)
        if label == "piano":  # inharmonic: the pitch is the lowest partial's frequency
            freqs, spec = _spectrum(_window(y, a, b))
            m = (freqs > expected * 2 ** (-0.5 / 12)) & (freqs < expected * 2 ** (0.5 / 12))
            f = float(freqs[m][np.argmax(spec[m])])
        else:
            f = _f0(_window(y, a, b), expected)
        cents = 1200 * np.log2(f / expected)
        assert abs(cents) < 30, (label, program, pitch, seed, heldout, round(cents, 1))


# ---------------------------------------------------------------------------- envelopes


@pytest.mark.parametrize("label", sorted(PLUCKED))
def test_plucked_notes_decay_and_stop(label):
    program = PLUCKED[label]
    pitch = {"bass": 45, "mallet_percussion": 72}.get(label, 60)
    for seed in (4, 5):
        y = _render(_note_stem(label, program, pitch, end=1.8), seed)
        early, late = _rms(_window(y, 0.15, 0.35)), _rms(_window(y, 1.4, 1.7))
        assert late < early * 0.9, (label, seed, early, late)
        tail = _rms(_window(y, 2.9, 3.5))
        assert tail < early * 10 ** (-45 / 20), (label, seed, early, tail)


@pytest.mark.parametrize("label", sorted(SUSTAINED))
def test_bowed_and_blown_notes_sustain_while_held_then_stop(label):
    program = SUSTAINED[label]
    pitch = {"cello": 48, "trombone": 50, "flute": 74, "violin": 67}.get(label, 62)
    for seed in (6, 7):
        stem = _note_stem(label, program, pitch, end=1.6)
        y = _render(stem, seed)
        if label in ("violin", "cello") and _rms(_window(y, 1.3, 1.5)) < 0.2 * _rms(_window(y, 0.3, 0.5)):
            continue  # a pizzicato draw (checked by the plucked-decay test of the same engine)
        held = [_rms(_window(y, a, a + 0.2)) for a in (0.3, 0.7, 1.1, 1.35)]
        assert min(held) > 0.25 * max(held), (label, seed, held)  # swells, no decay to silence
        tail = _rms(_window(y, 2.5, 3.5))
        assert tail < max(held) * 10 ** (-50 / 20), (label, seed, tail)


def test_piano_sustain_pedal_or_damper_ends_the_note():
    for seed in range(4):
        y = _render(_note_stem("piano", 0, 60, end=0.8), seed)
        assert _rms(_window(y, 3.2, 3.5)) < _rms(_window(y, 0.15, 0.4)) * 10 ** (-40 / 20)


# ---------------------------------------------------------------------------- spectra


def test_clarinet_low_register_odd_harmonics_dominate():
    f0 = ph.hz(50)  # D3, chalumeau register
    for seed in range(4):
        for heldout in (False, True):
            y = _render(_note_stem("clarinet", 71, 50), seed, heldout)
            freqs, spec = _spectrum(_window(y, 0.4, 1.4))
            odd = sum(_harmonic_amp(freqs, spec, k * f0) ** 2 for k in (1, 3, 5))
            even = sum(_harmonic_amp(freqs, spec, k * f0) ** 2 for k in (2, 4, 6))
            assert 10 * np.log10(odd / even) > 10, (seed, heldout)


def _centroid_over_f0(y, f0):
    freqs, spec = _spectrum(_window(y, 0.4, 1.2))
    return float(np.sum(freqs * spec ** 2) / np.sum(spec ** 2)) / f0


@pytest.mark.parametrize("label,program", [("trumpet", 56), ("trombone", 57)])
def test_brass_gets_brighter_when_louder(label, program):
    pitch = 62 if label == "trumpet" else 50
    for seed in range(3):
        for heldout in (False, True):
            soft = _render(_note_stem(label, program, pitch, velocity=40), seed, heldout)
            loud = _render(_note_stem(label, program, pitch, velocity=120), seed, heldout)
            assert _centroid_over_f0(loud, ph.hz(pitch)) > 1.2 * _centroid_over_f0(soft, ph.hz(pitch))


def test_amp_distortion_adds_harmonics():
    t = np.arange(SR) / SR
    x = np.sin(2 * np.pi * 220 * t) * np.exp(-t)

    def harmonic_share(y):  # energy share above the fundamental's band
        freqs, spec = _spectrum(y[2000:20000])
        return float(np.sum(spec[freqs > 300] ** 2) / np.sum(spec ** 2))

    for seed in range(3):
        clean = ph.amp_chain(np.random.default_rng(seed), x, "clean", fuzz=False)
        for kind, fuzz in (("crunch", False), ("crunch", True), ("high", False), ("high", True)):
            dirty = ph.amp_chain(np.random.default_rng(seed), x, kind, fuzz=fuzz)
            assert harmonic_share(dirty) > harmonic_share(clean) + 0.03, (seed, kind, fuzz)


def test_piano_partials_are_stretched():
    kind = ph.PIANO_KINDS["grand"]
    p = dict(B=4e-4, detune=0.0, hard=0.9, t60=12.0, strike=1 / 8.3, after=0.2, stretch=0.0, noise=0.0)
    pitch = 45
    y = ph._piano_note(np.random.default_rng(0), pitch, 0.9, SR * 2, kind, p)
    freqs, spec = _spectrum(y[: SR * 2])
    f0 = ph.hz(pitch)
    B = p["B"] * 2 ** ((pitch - 60) / 18)

    def peak_near(f):
        m = (freqs > f * 0.99) & (freqs < f * 1.01)
        return float(freqs[m][np.argmax(spec[m])])

    f1 = peak_near(f0)
    for n in (8, 12):
        fn = peak_near(n * f0 * np.sqrt(1 + B * n * n))
        assert fn / (n * f1) > 1 + 0.6 * (np.sqrt(1 + B * n * n) - 1), n  # sharp of harmonic
        assert fn / (n * f1) > 1.002


# ---------------------------------------------------------------------------- sanity


def _material(label, program, seed):
    rng = np.random.default_rng(seed)
    ctx = random_context(rng)
    lo, hi = playable_range(label, program)
    styles = [s for s in LABEL_STYLES[label] if s in GENERATORS]
    return GENERATORS[styles[seed % len(styles)]](rng, ctx, lo, hi, float(rng.uniform(40, 118)))


ALL_PROGRAMS = [(label, p) for label, progs in ph.PHYSICAL_PROGRAMS.items() for _, p in progs]


@pytest.mark.parametrize("label,program", ALL_PROGRAMS, ids=[f"{a}-{b}" for a, b in ALL_PROGRAMS])
def test_renders_are_finite_full_length_unclipped_and_deterministic(label, program):
    for seed, heldout in ((10, False), (11, True)):
        stem = Stem(label, 0, program, _material(label, program, seed))
        y = _render(stem, seed, heldout)
        assert y.dtype == np.float32 and y.shape == (RENDER_SAMPLES,)
        assert np.isfinite(y).all()
        assert np.max(np.abs(y)) <= 0.5 + 1e-6
        assert _rms(y) > 1e-3, (label, program, seed)
        assert np.array_equal(y, _render(stem, seed, heldout))
        assert not np.array_equal(y, _render(stem, seed + 1, heldout))


def test_bends_move_the_pitch():
    """A +2 semitone wheel from 0.6 s bends the ringing note: through the whole acoustic
    guitar model, and through the plucked-string engine the electric guitar uses (its amp
    may add echoes of the unbent note)."""
    stem = Stem("acoustic_guitar", 0, 25, Phrase([Note(0.1, 1.6, 57, 100)], "t", bends=[(0.6, 8191), (1.6, 0)]))
    dry = dict(t60=3.0, bright=0.5, pick=(0.1, 0.15), hardness=0.8, pickup=0.1, release=0.05)
    for seed in (3, 4):
        for y in (_render(stem, seed), ph.pluck_stem(stem, np.random.default_rng(seed), dry)):
            before = _f0(_window(y, 0.2, 0.5), ph.hz(57))
            after = _f0(_window(y, 0.75, 1.25), ph.hz(59))
            assert abs(1200 * np.log2(after / before) - 200) < 30, seed


def test_build_corpus_with_physical_source_makes_clips(tmp_path):
    from training.build_corpus import main

    out = tmp_path / "corpus"
    rc = main(["--out", str(out), "--sources", "physical,physical_heldout", "--labels", "electric_guitar,violin,trumpet",
               "--clips-per-label", "1", "--mixtures", "2", "--kinds", "single,mix", "--seed", "1",
               "--score-pieces", "0", "--jobs", "1"])
    assert rc == 0
    with open(out / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 4
    assert {r["source"] for r in rows} == {"physical", "physical_heldout"}
    assert {"electric_guitar", "violin", "trumpet"} <= {lab for r in rows for lab in r["labels"].split(";")}


def test_wah_sweeps_its_resonance():
    t = np.arange(RENDER_SAMPLES) / SR
    x = np.random.default_rng(0).standard_normal(RENDER_SAMPLES) * np.exp(-(t % 0.7) / 0.1)  # plucks
    for seed in range(4):
        y = ph.wah(x, np.random.default_rng(seed))
        assert y.shape == x.shape and np.isfinite(y).all()
        frames = y[: len(y) // 2048 * 2048].reshape(-1, 2048)
        spec = np.abs(np.fft.rfft(frames * np.hanning(2048), axis=1)) ** 2
        freqs = np.fft.rfftfreq(2048, 1 / SR)
        smooth = np.apply_along_axis(lambda r: np.convolve(r, np.ones(15) / 15, "same"), 1, spec)
        peak = freqs[np.argmax(smooth, axis=1)]  # the resonance
        assert 300 < peak.min() and peak.max() < 3000, seed
        assert peak.max() > 1.8 * peak.min(), seed
