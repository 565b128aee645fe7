"""What a weights file says about its model: the frontend and architecture configs.

Importable without torch, so the scanner can read a model's header and start decoding
while torch and the weights load (see :class:`tagger.scan.ScorerInBackground`). The audio
constants are the defaults; the values a model actually uses travel in its weights file.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

SAMPLE_RATE = 22050  # Hz, what every file is decoded to
SEGMENT_SECONDS = 3.0  # one model input
N_FFT = 1024  # 46 ms window at 22 050 Hz
HOP_LENGTH = 512  # 23 ms between frames
N_MELS = 64
FMIN = 30.0  # Hz, below the lowest bass note worth hearing
FMAX = 11025.0  # Hz, Nyquist at 22 050 Hz
LOG_OFFSET = 1e-6  # floor added to mel power before the log, so silence stays finite


@dataclass(frozen=True)
class FrontendConfig:
    """Everything needed to turn a waveform into the model's input."""

    sample_rate: int = SAMPLE_RATE
    segment_seconds: float = SEGMENT_SECONDS
    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    n_mels: int = N_MELS
    fmin: float = FMIN
    fmax: float = FMAX
    log_offset: float = LOG_OFFSET
    # "segment_mean": subtract each segment's mean log-Mel, so a track's loudness does
    # not change its scores (a gain is an additive constant in the log domain).
    normalisation: str = "segment_mean"

    @property
    def segment_samples(self) -> int:
        """66 150 samples in a 3 s segment at 22 050 Hz."""
        return round(self.segment_seconds * self.sample_rate)

    @property
    def n_frames(self) -> int:
        """130 frames in a segment's log-Mel (centred STFT)."""
        return 1 + self.segment_samples // self.hop_length

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FrontendConfig:
        return cls(**d)


@dataclass(frozen=True)
class ModelConfig:
    """The architecture and its label set; enough to rebuild the network."""

    arch: str
    labels: tuple[str, ...]
    width: int = 32  # channels of the first stage (resnet); ignored by fixed baselines
    dropout: float = 0.2
    extra: dict = field(default_factory=dict)

    @property
    def n_labels(self) -> int:
        return len(self.labels)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["labels"] = list(self.labels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        d["labels"] = tuple(d["labels"])
        return cls(**d)


# the settings of ModelConfig.extra each architecture reads; any other is a newer tagger's
EXTRA_SETTINGS = {"resnet": frozenset({"blocks", "stem_pool"})}


def extra_problem(config: ModelConfig) -> str | None:
    """Why this tagger cannot build ``config`` as it was trained, or None.

    A setting it does not know would be dropped, and the network would score with another
    input than it was trained on: refused instead of ignored.
    """
    unknown = sorted(set(config.extra) - EXTRA_SETTINGS.get(config.arch, frozenset()))
    if unknown:
        return f"model settings this tagger does not know: {', '.join(unknown)} (made by a newer tagger?)"
    return None
