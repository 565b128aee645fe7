"""The log-Mel frontend, shared by training and inference.

Its settings are a :class:`tagger.config.FrontendConfig` (the audio constants live there
too), which travels inside the weights file, so a checkpoint always rebuilds its own
frontend. The STFT runs with ``torch.stft`` on whatever device the audio is on; the mel
filterbank (Slaney mel scale, area-normalised, as librosa builds it) is read from
``assets/mel_filters.npz`` for the default settings, so scanning does not import librosa
(and numba, scipy) at start-up; other settings build it with librosa. The file was made
with ``librosa.filters.mel(sr=22050, n_fft=1024, n_mels=64, fmin=30, fmax=11025)``
saved as float32 under the key ``mel_22050_1024_64_30_11025``; a test checks it against
librosa. We do not use torchaudio: its published wheels are CUDA builds that fail to
import against the CPU build of torch, and its file I/O has moved elsewhere.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import FrontendConfig

MEL_FILTERS_FILE = Path(__file__).parent / "assets" / "mel_filters.npz"


@lru_cache(maxsize=8)
def mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Mel filterbank, (n_mels, n_fft // 2 + 1) float32, read or built once per setting."""
    key = f"mel_{sample_rate}_{n_fft}_{n_mels}_{fmin:g}_{fmax:g}"
    with np.load(MEL_FILTERS_FILE) as shipped:
        if key in shipped:
            return shipped[key]
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float32)


class LogMel(nn.Module):
    """Waveforms (batch, samples) -> log-Mel (batch, 1, n_mels, frames), float32."""

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__()
        self.config = config
        fb = mel_filters(config.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax)
        # Not saved with the weights: rebuilt from the config, which is saved.
        self.register_buffer("mel_fb", torch.from_numpy(fb), persistent=False)
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        c = self.config
        # The mel projection stays in float32 even under autocast (power spectra overflow fp16).
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            x = waveforms.float()  # (batch, samples)
            spec = torch.stft(
                x, c.n_fft, c.hop_length, window=self.window, center=True,
                pad_mode="reflect", return_complex=True,
            )  # (batch, n_fft/2+1, frames)
            power = spec.real.square() + spec.imag.square()
            mel = torch.matmul(self.mel_fb, power)  # (batch, n_mels, frames)
            logmel = torch.log(mel + c.log_offset)
            if c.normalisation == "segment_mean":
                logmel = logmel - logmel.mean(dim=(1, 2), keepdim=True)
            elif c.normalisation != "none":
                raise ValueError(f"unknown normalisation {c.normalisation!r}")
        return logmel.unsqueeze(1)  # (batch, 1, n_mels, frames)
