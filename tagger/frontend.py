"""The log-Mel frontend, shared by training and inference: one definition, two implementations.

Its settings are a :class:`tagger.config.FrontendConfig`, which travels inside the weights
file, so a checkpoint always rebuilds its own frontend. The definition: a centred STFT
(reflect padding of ``n_fft // 2``, periodic Hann window, ``hop_length``), power, a mel
filterbank (Slaney mel scale, area-normalised, as librosa builds it), ``log(mel +
log_offset)``, then each segment's mean subtracted (``normalisation="segment_mean"``).

- :func:`logmel` (this module, NumPy + ``scipy.fft``, no torch): the CPU implementation.
  The scan's decoding workers run it and send features, not waveforms (a segment's
  log-Mel is 64 x 130 values, eight times fewer than its 66 150 samples), and the
  training feature cache is made with it, so training and CPU inference share the code.
- :class:`tagger.frontend_torch.LogMel`: the same definition with ``torch.stft``, on the
  model's device; on CUDA the waveforms go to the GPU and the frontend runs there.

Tests hold the two equal (max abs difference <= 1e-4 on real audio) and to librosa.

The mel filterbank is read from ``assets/mel_filters.npz`` for the default settings, so
neither scanning nor its workers import librosa (and numba); other settings build it with
librosa. The file was made with ``librosa.filters.mel(sr=22050, n_fft=1024, n_mels=64,
fmin=30, fmax=11025)`` saved as float32 under the key ``mel_22050_1024_64_30_11025``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from .config import FrontendConfig

MEL_FILTERS_FILE = Path(__file__).parent / "assets" / "mel_filters.npz"
PIECE = 32  # segments transformed at a time by logmel: its temporaries stay near 20 MB


@lru_cache(maxsize=8)
def mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Mel filterbank, (n_mels, n_fft // 2 + 1) float32, read or built once per setting."""
    key = f"mel_{sample_rate}_{n_fft}_{n_mels}_{fmin:g}_{fmax:g}"
    with np.load(MEL_FILTERS_FILE) as shipped:
        if key in shipped:
            return shipped[key]
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float32)


@lru_cache(maxsize=8)
def hann_window(n_fft: int) -> np.ndarray:
    """Periodic Hann window of ``n_fft`` samples, float32 (``torch.hann_window``'s)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


@lru_cache(maxsize=8)
def _projection(config: FrontendConfig) -> np.ndarray:
    """The mel filterbank transposed, (bins, n_mels), contiguous: what :func:`logmel` multiplies by."""
    c = config
    return np.ascontiguousarray(mel_filters(c.sample_rate, c.n_fft, c.n_mels, c.fmin, c.fmax).T)


def check_normalisation(name: str) -> None:
    if name not in ("segment_mean", "none"):
        raise ValueError(f"unknown normalisation {name!r}")


def logmel(waveforms: np.ndarray, config: FrontendConfig) -> np.ndarray:
    """Waveforms (batch, samples) -> log-Mel (batch, n_mels, frames), float32."""
    import scipy.fft  # here, not at the top: a driver that never runs the frontend never imports it

    check_normalisation(config.normalisation)
    waveforms = np.asarray(waveforms, dtype=np.float32)
    if waveforms.ndim != 2:
        raise ValueError(f"expected (batch, samples) waveforms, got shape {waveforms.shape}")
    c = config
    fb_t = _projection(c)  # (bins, mels)
    window = hann_window(c.n_fft)
    pad = c.n_fft // 2
    n_frames = 1 + waveforms.shape[1] // c.hop_length
    out = np.empty((len(waveforms), c.n_mels, n_frames), dtype=np.float32)
    for at in range(0, len(waveforms), PIECE):
        x = np.pad(waveforms[at : at + PIECE], ((0, 0), (pad, pad)), mode="reflect")
        frames = np.lib.stride_tricks.sliding_window_view(x, c.n_fft, axis=1)[:, :: c.hop_length]
        spec = scipy.fft.rfft(frames * window, axis=-1)  # (piece, frames, bins) complex64
        power = np.square(spec.real) + np.square(spec.imag)
        mel = np.log(power @ fb_t + np.float32(c.log_offset))  # (piece, frames, mels)
        if c.normalisation == "segment_mean":
            mel -= mel.mean(axis=(1, 2), keepdims=True)
        out[at : at + PIECE] = mel.transpose(0, 2, 1)
    return out
