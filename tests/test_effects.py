"""Production effects of the training corpus (training/corpus/effects.py): simulated rooms,
bus dynamics, stem effects, determinism."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pedalboard")
pytest.importorskip("pyroomacoustics")

from training.corpus import effects as E  # noqa: E402
from training.corpus.audio import RENDER_SAMPLES, SAMPLE_RATE, rms  # noqa: E402

CLIP = slice(0, 66150)


def _music(seed: int = 0, n: int = RENDER_SAMPLES) -> np.ndarray:
    """Plucked tones plus a little noise: transients, decays and some gaps."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SAMPLE_RATE
    x = np.zeros(n)
    for start in np.arange(0.0, n / SAMPLE_RATE, 0.25):
        f = 110 * 2 ** (rng.integers(0, 24) / 12)
        env = np.where(t >= start, np.exp(-(t - start) * 8.0), 0.0)
        x += env * np.sin(2 * np.pi * f * (t - start)) * rng.uniform(0.3, 1.0)
    return (0.3 * x + 0.01 * rng.standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("room_class,rt60", [(0, 0.2), (2, 0.7), (3, 1.8)])
def test_simulated_room_has_the_rt60_asked_for(room_class, rt60):
    room = E.simulate_room(np.random.default_rng(11), room_class=room_class, rt60=rt60)
    assert room.rir.shape[0] == 2 and room.rir.dtype == np.float32
    for channel in room.rir:  # Schroeder integration of each microphone's response
        assert E.schroeder_rt60(channel) == pytest.approx(rt60, rel=0.2)
    assert room.measured_rt60 == pytest.approx(rt60, rel=0.2)


def test_schroeder_rt60_of_an_exponential_decay():
    rng = np.random.default_rng(0)
    t = np.arange(int(1.5 * SAMPLE_RATE)) / SAMPLE_RATE
    ir = rng.standard_normal(len(t)) * np.exp(-6.91 * t / 0.8)  # -60 dB at 0.8 s
    assert E.schroeder_rt60(ir) == pytest.approx(0.8, rel=0.05)


def test_room_bank_is_cached_and_reverb_keeps_length():
    a = E.room_from_bank(0)
    assert E.room_from_bank(E.ROOM_BANK_SIZE) is a  # same room, not simulated again
    x = _music()
    y, desc = E.random_reverb(x, np.random.default_rng(3))
    assert desc.startswith("reverb(") and y.shape == x.shape and y.dtype == np.float32
    assert np.all(np.isfinite(y))


def test_limiter_peak_stays_under_its_ceiling():
    x = _music() * 4.0  # far over full scale
    for hard in (False, True):
        for drive in (2.0, 12.0):
            y = E.limit(x, drive, release_ms=50, ceiling_db=-1.0, hard=hard)
            assert np.max(np.abs(y)) <= 10 ** (-1.0 / 20) + 1e-6
            assert y.shape == x.shape


def test_limiter_and_compressor_reduce_the_crest_factor():
    x = _music()
    # a fast attack tames the peaks (a slow one lets the transients through: punch)
    y, threshold = E.bus_compress(x, gr_db=3.0, ratio=4.0, attack_ms=0.5, release_ms=100.0)
    assert E.crest_factor_db(y) < E.crest_factor_db(x) - 2.0
    got_gr = 20 * np.log10(rms(x / np.max(np.abs(x))) / rms(y / np.max(np.abs(x))))
    assert 2.0 <= got_gr <= 4.0  # bus glue: the asked-for gain reduction
    assert E.crest_factor_db(E.limit(x, 10.0)) < E.crest_factor_db(x) - 3.0


@pytest.mark.parametrize("fn", [E.random_chorus, E.random_phaser, E.random_saturation,
                                E.random_stereo, E.random_master_eq,
                                lambda x, r: E.random_delay(x, r, bpm=100.0)])
def test_stem_effects_keep_length_and_finite_values(fn):
    x = _music(1)
    y, desc = fn(x, np.random.default_rng(5))
    assert y.shape == x.shape and y.dtype == np.float32 and np.all(np.isfinite(y)) and desc
    assert rms(y) > 0.1 * rms(x)


def test_stereo_fold_down_colours_like_a_comb_filter():
    x = np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32)
    y = E.stereo_fold(x, pan=0.0, itd_s=0.0, room=None, early_s=0.0, room_wet=0.0)
    np.testing.assert_allclose(y, np.sqrt(2) * x, rtol=1e-5)  # centred, no delay: no colour
    d = 11  # 0.5 ms between the channels: notches at odd multiples of 1 kHz
    y = E.stereo_fold(x, pan=0.3, itd_s=d / SAMPLE_RATE, room=None, early_s=0.0, room_wet=0.0)
    spec = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / SAMPLE_RATE)
    notch = spec[np.abs(freqs - SAMPLE_RATE / (2 * d)) < 50].mean()
    peak = spec[np.abs(freqs - SAMPLE_RATE / d) < 50].mean()
    assert peak > 10 * notch


def test_produce_stem_keeps_the_stem_level_over_the_clip():
    x = _music(2)
    cfg = E.AugmentConfig(stem_eq_prob=1, stem_saturation_prob=1, stem_chorus_prob=1,
                          stem_phaser_prob=1, stem_delay_prob=1, stem_stereo_prob=1)
    y, steps = E.produce_stem(x, "electric_guitar", np.random.default_rng(0), cfg, bpm=120, window=CLIP)
    assert len(steps) == 6 and all(s.startswith("electric_guitar:") for s in steps)
    assert rms(y[CLIP]) == pytest.approx(rms(x[CLIP]), rel=1e-4)
    # drums are never chorused or phased
    y, steps = E.produce_stem(x, "drums", np.random.default_rng(0), cfg, window=CLIP)
    assert not any("chorus" in s or "phaser" in s for s in steps)


def test_no_augment_means_no_effects():
    x = _music(3)
    rng = np.random.default_rng(0)
    y, steps = E.produce_stem(x, "piano", rng, E.AugmentConfig.none())
    assert steps == [] and y is x
    y, steps = E.augment(x, rng, E.AugmentConfig.none())
    assert steps == [] and np.array_equal(y, x)


def test_same_seed_same_production():
    x = _music(4)
    cfg = E.AugmentConfig(stem_eq_prob=1, stem_saturation_prob=1, stem_chorus_prob=1,
                          stem_phaser_prob=1, stem_delay_prob=1, stem_stereo_prob=1,
                          eq_prob=1, reverb_prob=1, compress_prob=1, master_eq_prob=1,
                          limit_prob=1, noise_prob=1)

    def run(seed):
        rng = np.random.default_rng(seed)
        y, a = E.produce_stem(x, "synthesizer", rng, cfg, bpm=90.0, window=CLIP)
        z, b = E.augment(y, rng, cfg)
        return z, a + b

    (z1, d1), (z2, d2), (z3, _) = run(7), run(7), run(8)
    assert d1 == d2 and np.array_equal(z1, z2)
    assert not np.array_equal(z1, z3)
