"""Per-clip augmentation of a mix: EQ, room reverb, compression, noise, gain, lossy codecs.

All functions take and return float32 mono at SAMPLE_RATE; the random choices come from
the clip's own generator, so a clip's processing is reproducible from its seed.
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import numpy as np
from scipy import signal

from .audio import SAMPLE_RATE, db_to_gain, rms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AugmentConfig:
    eq_prob: float = 0.7
    reverb_prob: float = 0.7
    compress_prob: float = 0.35
    noise_prob: float = 0.5
    lossy_prob: float = 0.25


# ---------------------------------------------------------------------------- EQ (RBJ biquads)


def _biquad(kind: str, f0: float, gain_db: float, q: float = 0.707) -> np.ndarray:
    """One second-order section (RBJ audio EQ cookbook) as a (1, 6) sos array."""
    a = 10 ** (gain_db / 40.0)
    w0 = 2 * np.pi * f0 / SAMPLE_RATE
    cw, sw = np.cos(w0), np.sin(w0)
    alpha = sw / (2 * q)
    if kind == "peak":
        b = [1 + alpha * a, -2 * cw, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cw, 1 - alpha / a]
    elif kind == "lowshelf":
        s = 2 * np.sqrt(a) * alpha
        b = [a * ((a + 1) - (a - 1) * cw + s), 2 * a * ((a - 1) - (a + 1) * cw), a * ((a + 1) - (a - 1) * cw - s)]
        den = [(a + 1) + (a - 1) * cw + s, -2 * ((a - 1) + (a + 1) * cw), (a + 1) + (a - 1) * cw - s]
    elif kind == "highshelf":
        s = 2 * np.sqrt(a) * alpha
        b = [a * ((a + 1) + (a - 1) * cw + s), -2 * a * ((a - 1) + (a + 1) * cw), a * ((a + 1) + (a - 1) * cw - s)]
        den = [(a + 1) - (a - 1) * cw + s, 2 * ((a - 1) - (a + 1) * cw), (a + 1) - (a - 1) * cw - s]
    else:
        raise ValueError(kind)
    return np.array([b + den]) / den[0]


def random_eq(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    bands = [
        ("lowshelf", rng.uniform(60, 300), rng.uniform(-6, 6), 0.707),
        ("highshelf", rng.uniform(2500, 8000), rng.uniform(-6, 6), 0.707),
        ("peak", float(np.exp(rng.uniform(np.log(150), np.log(6000)))), rng.uniform(-6, 6), rng.uniform(0.5, 2.0)),
    ]
    sos = np.concatenate([_biquad(*b) for b in bands])
    desc = "eq(" + ",".join(f"{k[0]}{f:.0f}:{g:+.1f}" for k, f, g, _ in bands) + ")"
    return signal.sosfilt(sos, x).astype(np.float32), desc


# ---------------------------------------------------------------------------- reverb


def random_reverb(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Convolution with an exponentially decaying, low-passed noise impulse response."""
    rt60 = rng.uniform(0.2, 1.5)  # seconds to decay by 60 dB
    wet = rng.uniform(0.0, 0.4)
    n = int(min(rt60 * 1.1, 1.6) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    ir = rng.standard_normal(n) * np.exp(-6.91 * t / rt60)  # 6.91 = ln(1000): -60 dB at rt60
    damp = signal.butter(1, rng.uniform(2500, 9000), fs=SAMPLE_RATE, output="sos")
    ir = signal.sosfilt(damp, ir)
    ir = np.concatenate([np.zeros(int(rng.uniform(0.002, 0.03) * SAMPLE_RATE)), ir])
    reverberant = signal.fftconvolve(x, ir)[: len(x)]
    r = rms(reverberant)
    if r > 0:
        reverberant *= rms(x) / r
    out = (1.0 - wet) * x + wet * reverberant
    return out.astype(np.float32), f"reverb(rt60={rt60:.2f},wet={wet:.2f})"


# ---------------------------------------------------------------------------- dynamics, noise


def _smooth(x: np.ndarray, seconds: float) -> np.ndarray:
    a = 1.0 - np.exp(-1.0 / (seconds * SAMPLE_RATE))
    return signal.lfilter([a], [1.0, a - 1.0], x)


def random_compression(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Light feed-forward RMS compressor (threshold below the clip's loudest level)."""
    level_db = 10 * np.log10(_smooth(x.astype(np.float64) ** 2, 0.02) + 1e-12)
    threshold = level_db.max() - rng.uniform(6, 20)
    ratio = rng.uniform(1.5, 5.0)
    gain_db = np.minimum(0.0, (threshold - level_db) * (1.0 - 1.0 / ratio))
    gain_db = _smooth(gain_db, 0.06)
    return (x * 10 ** (gain_db / 20.0)).astype(np.float32), f"comp(thr={threshold:.0f},ratio={ratio:.1f})"


def random_noise(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """White or pink noise at -70 to -40 dB relative to the signal's RMS."""
    level = rng.uniform(-70, -40)
    white = rng.standard_normal(len(x))
    colour = "white"
    if rng.random() < 0.5:
        spectrum = np.fft.rfft(white)
        f = np.arange(len(spectrum), dtype=np.float64)
        f[0] = 1.0
        white = np.fft.irfft(spectrum / np.sqrt(f), n=len(x))
        colour = "pink"
    noise = white / (rms(white) + 1e-12) * rms(x) * db_to_gain(level)
    return (x + noise).astype(np.float32), f"noise({colour},{level:.0f}dB)"


# ---------------------------------------------------------------------------- lossy codecs

# (codec, container, rate, layout, bit rates kb/s). Encoded at 44.1 kHz as real files are.
CODECS: tuple[tuple[str, str, int, str, tuple[int, ...]], ...] = (
    ("libmp3lame", "mp3", 44100, "mono", (64, 96, 128, 160, 192)),
    ("aac", "adts", 44100, "mono", (64, 96, 128, 160)),
    ("vorbis", "ogg", 44100, "stereo", (64, 96, 128, 160, 192)),  # FFmpeg's native vorbis: stereo only
)


def _encode_decode(x: np.ndarray, codec: str, container: str, rate: int, layout: str,
                   kbps: int) -> np.ndarray:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        options = {"strict": "-2"} if codec == "vorbis" else {}
        stream = out.add_stream(codec, rate=rate, options=options)
        stream.layout = layout
        stream.bit_rate = kbps * 1000
        fmt = stream.codec_context.codec.audio_formats[0].name
        frame = av.AudioFrame.from_ndarray(x[None, :].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate,
                                      frame_size=stream.codec_context.frame_size or None)
        for f in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    decoded = []
    with av.open(io.BytesIO(buf.getvalue())) as inp:
        back = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        for frame in inp.decode(audio=0):
            decoded += [f.to_ndarray().reshape(-1) for f in back.resample(frame)]
        decoded += [f.to_ndarray().reshape(-1) for f in back.resample(None)]
    return np.concatenate(decoded).astype(np.float32) if decoded else np.zeros(0, np.float32)


def _align(reference: np.ndarray, decoded: np.ndarray, max_lag: int = 4096) -> np.ndarray:
    """Undo the codec's delay (priming samples) by cross-correlation; same length as ref."""
    n = len(reference)
    seg = reference[: min(n, 16384)]
    probe = decoded[: len(seg) + max_lag]
    corr = signal.correlate(probe, seg, mode="valid", method="fft")
    lag = int(np.argmax(corr)) if len(corr) else 0
    out = decoded[lag:lag + n]
    return np.pad(out, (0, n - len(out))).astype(np.float32)


def random_lossy(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    codec, container, rate, layout, rates = CODECS[int(rng.integers(len(CODECS)))]
    kbps = int(rng.choice(rates))
    decoded = _encode_decode(x, codec, container, rate, layout, kbps)
    return _align(x, decoded), f"{codec}@{kbps}k"


def augment(x: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> tuple[np.ndarray, list[str]]:
    """EQ -> reverb -> compression -> noise, each applied with its own probability."""
    steps: list[str] = []
    for prob, fn in ((cfg.eq_prob, random_eq), (cfg.reverb_prob, random_reverb),
                     (cfg.compress_prob, random_compression), (cfg.noise_prob, random_noise)):
        if rng.random() < prob:
            x, desc = fn(x, rng)
            steps.append(desc)
    return x, steps
