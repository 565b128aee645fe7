"""Clip constants and small signal helpers shared by every corpus stage."""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 22050  # Hz, the frontend's rate (DESIGN.md pipeline)
CLIP_SECONDS = 3.0  # one training segment
CLIP_SAMPLES = int(SAMPLE_RATE * CLIP_SECONDS)  # 66150 samples per clip
assert CLIP_SAMPLES == 66150

PREROLL_MAX_SECONDS = 0.5  # a clip starts 0-0.5 s into its render, mid-music
RENDER_SECONDS = CLIP_SECONDS + PREROLL_MAX_SECONDS  # 3.5 s of notes are rendered per stem
FLUID_BLOCK = 64  # fluidsynth renders in 64-sample blocks; events are aligned to them
RENDER_SAMPLES = int(np.ceil(SAMPLE_RATE * RENDER_SECONDS / FLUID_BLOCK)) * FLUID_BLOCK

SILENCE_RMS = 1e-4  # a stem quieter than this (RMS, full scale 1.0) counts as silent


def rms(x: np.ndarray) -> float:
    """Root mean square of a float signal."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def active_fraction(x: np.ndarray, floor_db: float = -35.0, frame: int = 1024) -> float:
    """Fraction of 46 ms frames whose RMS is within ``floor_db`` of the loudest frame."""
    n = len(x) // frame
    if n == 0:
        return 0.0
    frames = x[: n * frame].reshape(n, frame)
    energy = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    peak = energy.max()
    if peak <= 0:
        return 0.0
    return float(np.mean(energy >= peak * db_to_gain(floor_db)))
