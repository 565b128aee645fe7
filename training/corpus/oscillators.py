"""Band-limited oscillators (polyBLEP) shared by the synthesiser and the physical models.

A phase is in cycles (any real number; its fractional part is the position in the cycle),
``dt`` the phase step per sample (frequency / sample rate, at most 0.5).
"""
from __future__ import annotations

import numpy as np


def poly_blep(t: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """Band-limiting correction for a discontinuity at phase 0 (t in [0, 1))."""
    out = np.zeros_like(t)
    m = t < dt
    x = t[m] / dt[m]
    out[m] = x + x - x * x - 1.0
    m = t > 1.0 - dt
    x = (t[m] - 1.0) / dt[m]
    out[m] = x * x + x + x + 1.0
    return out


def saw(phase: np.ndarray, dt: np.ndarray) -> np.ndarray:
    t = phase % 1.0
    return 2.0 * t - 1.0 - poly_blep(t, dt)


def pulse(phase: np.ndarray, dt: np.ndarray, width: float | np.ndarray) -> np.ndarray:
    return saw(phase, dt) - saw(phase + width, dt)
