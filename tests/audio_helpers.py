"""Tiny real audio and a tiny random-weights model, made on the spot by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from tagger.frontend import FrontendConfig
from tagger.labels import BUNDLED_LABELS
from tagger.models import ModelConfig, Tagger
from tagger.weights import Checkpoint, save_checkpoint

SR = 22050


def tone(seconds: float, freq: float = 440.0, amp: float = 0.3, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float, amp: float = 0.1, seed: int = 0, sr: int = SR) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


def write_audio(path: Path, audio: np.ndarray, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, sr)
    return path


def make_tiny_model(folder: Path, labels=BUNDLED_LABELS, seed: int = 0, threshold: float = 0.5) -> Path:
    """A random-weights resnet of width 8: for end-to-end tests, not for predictions."""
    torch.manual_seed(seed)
    frontend, config = FrontendConfig(), ModelConfig("resnet", tuple(labels), width=8)
    model = Tagger(frontend, config).eval()
    ckpt = Checkpoint(frontend, config, model.classifier.state_dict(), {label: threshold for label in labels}, name="tiny")
    return save_checkpoint(ckpt, folder)


def crash_on_three(item: int) -> int:
    """A task that kills its worker process for item 3, as a decoder crash would."""
    import os

    if item == 3:
        os._exit(1)
    return item * 10

