"""Our own singer (training/corpus/formant_singer.py), checked without ears.

A sung note has the asked pitch (pYIN) and a vibrato around it. Vowels put their energy
where their formants are: "a" high in F1 and low in F2 against "i". Renders are
deterministic, fit the render, and the singer is a training voice only.
"""
from __future__ import annotations

import librosa
import numpy as np
import pytest

from training.corpus import formant_singer as fs
from training.corpus import voices
from training.corpus.audio import RENDER_SAMPLES, SAMPLE_RATE
from training.corpus.material import random_context


def _f0(audio: np.ndarray) -> np.ndarray:
    f0, voiced, _ = librosa.pyin(audio, fmin=60, fmax=1000, sr=SAMPLE_RATE, frame_length=2048)
    assert voiced.mean() > 0.5
    return f0[voiced]


@pytest.mark.parametrize("kind,hz", [("man", 131.0), ("woman", 392.0)])
def test_a_held_note_has_the_asked_pitch_and_a_vibrato_around_it(kind, hz):
    singer = fs.draw_singer(np.random.default_rng(0), kind)
    audio = fs.sing_formant(np.random.default_rng(1), [(hz, 2.5, "oh")], 0.2, singer)
    f0 = _f0(audio[: int(2.6 * SAMPLE_RATE)])
    cents = 1200 * np.log2(f0 / hz)
    assert abs(np.median(cents)) < 20
    held = 1200 * np.log2(_f0(audio[int(1.2 * SAMPLE_RATE): int(2.6 * SAMPLE_RATE)]) / hz)
    assert 5 < held.std() < 80  # a vibrato of 20-80 cents peak, not a flat tone or a wobble


def _band_db(audio: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(audio * np.hanning(len(audio)))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)
    return float(10 * np.log10(spec[(freqs >= lo) & (freqs < hi)].sum() / spec.sum()))


def test_vowels_put_their_energy_where_their_formants_are():
    singer = fs.draw_singer(np.random.default_rng(2), "man")
    sung = {v: fs.sing_formant(np.random.default_rng(3), [(110.0, 2.0, v)], 0.1, singer)[int(0.5 * SAMPLE_RATE):
                                                                                          int(2.0 * SAMPLE_RATE)]
            for v in ("a", "i")}
    # F1: a ~730 Hz, i ~270 Hz; F2: a ~1090 Hz, i ~2290 Hz (times the singer's scale)
    assert _band_db(sung["a"], 550, 950) > _band_db(sung["i"], 550, 950) + 6
    assert _band_db(sung["i"], 180, 380) > _band_db(sung["a"], 180, 380) + 3
    assert _band_db(sung["i"], 1900, 2900) > _band_db(sung["a"], 1900, 2900) + 6


def test_syllables_sing_their_vowels():
    words = ("night", "free", "you", "la", "heart", "sky", "mo", "day", "true", "back", "fire")
    assert [fs.vowel_of(w) for w in words] == ["i", "i", "u", "a", "a", "a", "o", "e", "u", "ae", "i"]
    assert {fs.vowel_of(w) for w in voices.SYLLABLES_EN + voices.SYLLABLES_IT} <= set(fs.VOWELS)


@pytest.mark.parametrize("name", sorted(voices.FORMANT_SINGERS))
def test_a_formant_singer_sings_a_melody_deterministically_in_the_render(name):
    ctx = random_context(np.random.default_rng(4))
    a = voices.sing(np.random.default_rng(5), ctx, name, 1.1)
    b = voices.sing(np.random.default_rng(5), ctx, name, 1.1)
    assert a.shape == (RENDER_SAMPLES,) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert 0.99 <= np.abs(a).max() <= 1.0 and np.sqrt(np.mean(a ** 2)) > 0.02


def test_the_formant_singers_are_training_voices_only():
    assert set(voices.FORMANT_SINGERS) <= set(voices.VOICE_SPLITS["train"]["sing"])
    assert not set(voices.FORMANT_SINGERS) & set(voices.VOICE_SPLITS["heldout"]["sing"])
    assert not set(voices.FORMANT_SINGERS) & set(voices.FESTIVAL_VOICES)
