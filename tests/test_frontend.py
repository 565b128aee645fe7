from __future__ import annotations

import librosa
import numpy as np
import torch

from tagger.frontend import FrontendConfig, LogMel

from audio_helpers import noise, tone


def test_logmel_matches_librosa():
    cfg = FrontendConfig(normalisation="none")
    audio = tone(3.0, 440) + noise(3.0, 0.05)
    ours = LogMel(cfg)(torch.from_numpy(audio[None]))[0, 0].numpy()
    mel = librosa.feature.melspectrogram(
        y=audio, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_mels=cfg.n_mels,
        fmin=cfg.fmin, fmax=cfg.fmax, power=2.0, center=True, pad_mode="reflect",
    )
    ref = np.log(mel + cfg.log_offset)
    assert ours.shape == ref.shape == (cfg.n_mels, cfg.n_frames)
    assert np.max(np.abs(ours - ref)) < 1e-3


def test_shape_dtype_and_gain_invariance():
    cfg = FrontendConfig()
    loud = noise(3.0, 0.1) + tone(3.0, 330)
    audio = torch.from_numpy(np.stack([loud, 0.1 * loud, np.zeros_like(loud)]))
    x = LogMel(cfg)(audio)
    assert x.shape == (3, 1, cfg.n_mels, 130) and x.dtype == torch.float32
    assert torch.isfinite(x).all()  # silence too: the log has a floor
    # a gain is an additive constant in the log domain, removed by the segment mean
    # (exactly so where the sound is well above the floor, as broadband noise is)
    diff = (x[0] - x[1]).abs()
    assert diff.mean() < 0.005 and diff.max() < 0.05


def test_frontend_stays_float32_under_autocast():
    cfg = FrontendConfig()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = LogMel(cfg)(torch.from_numpy(tone(3.0)[None]))
    assert x.dtype == torch.float32


def test_shipped_mel_filters_equal_librosa():
    from tagger.frontend import MEL_FILTERS_FILE, mel_filters

    cfg = FrontendConfig()
    with np.load(MEL_FILTERS_FILE) as shipped:
        assert f"mel_{cfg.sample_rate}_{cfg.n_fft}_{cfg.n_mels}_{cfg.fmin:g}_{cfg.fmax:g}" in shipped
    ours = mel_filters(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)
    ref = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)
    assert ours.dtype == np.float32 and np.allclose(ours, ref, rtol=1e-6, atol=1e-9)
    other = mel_filters(16000, 512, 40, 0.0, 8000.0)  # not shipped: built with librosa
    assert other.shape == (40, 257)


def test_scan_workers_do_not_import_torch_or_librosa():
    import subprocess
    import sys

    code = "import sys, tagger.scan; print(sorted(m for m in ('torch', 'librosa', 'numba') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
