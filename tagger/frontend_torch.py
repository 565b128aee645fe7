"""The log-Mel frontend of :mod:`tagger.frontend` with ``torch.stft``, on the model's device.

Used inside :class:`tagger.models.Tagger` when waveforms reach the model (CUDA, where the
frontend is cheapest on the GPU, and training on waveforms); on the CPU the scan's workers
run :func:`tagger.frontend.logmel` instead. Same definition, same filterbank and window,
tested equal. We do not use torchaudio: its published wheels are CUDA builds that fail to
import against the CPU build of torch, and its file I/O has moved elsewhere.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import FrontendConfig
from .frontend import check_normalisation, hann_window, mel_filters


class LogMel(nn.Module):
    """Waveforms (batch, samples) -> log-Mel (batch, 1, n_mels, frames), float32."""

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__()
        check_normalisation(config.normalisation)
        self.config = config
        fb = mel_filters(config.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax)
        # Not saved with the weights: rebuilt from the config, which is saved.
        self.register_buffer("mel_fb", torch.from_numpy(fb), persistent=False)
        self.register_buffer("window", torch.from_numpy(hann_window(config.n_fft).copy()), persistent=False)

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
        return logmel.unsqueeze(1)  # (batch, 1, n_mels, frames)
