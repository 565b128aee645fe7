from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from tagger.frontend import PIECE, FrontendConfig, logmel
from tagger.frontend_torch import LogMel

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


EXAMPLES = Path(__file__).parent.parent / "examples"


def _example_segments(cfg: FrontendConfig) -> list[np.ndarray]:
    from tagger.decode import decode
    from tagger.discover import discover
    from tagger.segments import cut_segments, segment_starts

    out = []
    for path in discover([EXAMPLES]):
        audio = decode(path, cfg.sample_rate)
        n = cfg.segment_samples
        out.append(cut_segments(audio, segment_starts(len(audio), n, n, n // 3), n))
    return out


def test_numpy_frontend_matches_librosa():
    cfg = FrontendConfig(normalisation="none")
    audio = tone(3.0, 440) + noise(3.0, 0.05)
    ours = logmel(audio[None], cfg)[0]
    mel = librosa.feature.melspectrogram(
        y=audio, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_mels=cfg.n_mels,
        fmin=cfg.fmin, fmax=cfg.fmax, power=2.0, center=True, pad_mode="reflect",
    )
    assert ours.shape == (cfg.n_mels, cfg.n_frames) and ours.dtype == np.float32
    assert np.max(np.abs(ours - np.log(mel + cfg.log_offset))) < 1e-3


def test_the_numpy_and_torch_frontends_agree_on_real_audio():
    """The workers' frontend (CPU) and the model's (CUDA) are one definition: every segment of examples/."""
    cfg = FrontendConfig()
    segments = _example_segments(cfg)
    assert len(segments) == 8 and sum(len(s) for s in segments) > 25
    for segs in segments:
        with torch.inference_mode():
            ref = LogMel(cfg)(torch.from_numpy(segs))[:, 0].numpy()
        ours = logmel(segs, cfg)
        assert ours.shape == ref.shape
        assert np.max(np.abs(ours - ref)) <= 1e-4


def test_numpy_frontend_in_pieces_equals_one_call_and_handles_odd_batches():
    cfg = FrontendConfig()
    batch = np.stack([tone(3.0, 110 * (i + 1), 0.1 * (i + 1)) + noise(3.0, 0.01, seed=i) for i in range(PIECE + 3)])
    whole = logmel(batch, cfg)
    assert whole.shape == (PIECE + 3, cfg.n_mels, cfg.n_frames)
    one_by_one = np.concatenate([logmel(batch[i : i + 1], cfg) for i in range(len(batch))])
    assert np.array_equal(whole, one_by_one)
    assert logmel(batch[:0], cfg).shape == (0, cfg.n_mels, cfg.n_frames)
    assert np.isfinite(logmel(np.zeros((1, cfg.segment_samples), np.float32), cfg)).all()  # silence has a floor
    with pytest.raises(ValueError, match="normalisation"):
        logmel(batch[:1], FrontendConfig(normalisation="loudest"))


def test_cpu_is_known_without_torch(monkeypatch):
    from tagger import weights

    assert weights.cpu_without_torch("cpu") and not weights.cpu_without_torch("cuda:0")
    monkeypatch.setattr(weights.sys, "platform", "linux")
    monkeypatch.setattr(weights.os.path, "exists", lambda p: False)
    assert weights.cpu_without_torch("auto")  # no GPU device node: torch cannot find one
    monkeypatch.setattr(weights.os.path, "exists", lambda p: p == "/dev/nvidiactl")
    assert not weights.cpu_without_torch("auto")  # maybe a GPU: ask torch
