"""Label-free negatives: sound that is not an instrument, and must get no instrument label.

Kinds (``KINDS``), each a clip of any length at the frontend's rate:

- ``tone``: a pure sine, 40 Hz-8 kHz, steady, faded in and out.
- ``sweep``: a sine gliding between two frequencies (30 Hz-10 kHz, an octave apart or
  more), on a log or a linear scale, once or repeated (a siren).
- ``sine_chord``: 2-4 steady sines together, at equal-tempered intervals over a root
  or at any frequencies.
- ``noise``: white, pink, brown, blue or violet noise (``NOISE_COLOURS``: power slopes of
  0, -3, -6, +3, +6 dB per octave).
- ``clicks``: short clicks, as a metronome (regular) or at random times.
- ``beeps``: tone pips (one or two sines, like a phone's dual tones), 40-500 ms on,
  50 ms-1 s off.
- ``hum``: near silence: mains hum (50 or 60 Hz and harmonics) at -65 to -40 dBFS and a
  faint hiss.
- ``game_sfx``: short sound effects of Debian's game packages at random times, silence
  between them (``GAME_SFX``: the packages are split between training and held-out; the
  spoken ones are left out, a voice being a label).

Every kind but ``hum`` is drawn at an RMS of -35 to -12 dBFS. Splits: ``train`` and
``heldout`` draw from disjoint random streams (a clip's generator is seeded with the split,
the seed and its index), and ``game_sfx`` takes each split's own packages.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE, db_to_gain, rms

SR = SAMPLE_RATE
KINDS = ("tone", "sweep", "sine_chord", "noise", "clicks", "beeps", "hum", "game_sfx")
NOISE_COLOURS = {"white": 0.0, "pink": -1.0, "brown": -2.0, "blue": 1.0, "violet": 2.0}  # power ~ f**slope
SPLITS = {"train": 0, "heldout": 1}  # the first word of every clip's random stream
LEVEL_DB = (-35.0, -12.0)  # RMS of a clip, dBFS (hum: its own)


@dataclass(frozen=True)
class SfxPackage:
    """A Debian game package's sound effects: the folder, and the files left out (speech)."""
    package: str
    folder: Path
    speech: frozenset[str]


# Split by package (DESIGN.md: "sound effects of the game packages ... split between
# training and held-out"). Music folders are never read here.
GAME_SFX: dict[str, tuple[SfxPackage, ...]] = {
    "train": (SfxPackage("lbreakout2-data", Path("/usr/share/games/lbreakout2/sounds"),
                         frozenset({"dammit.wav", "damn.wav", "excellent.wav", "verygood.wav", "wontgiveup.wav"})),),
    "heldout": (SfxPackage("pingus-data", Path("/usr/share/games/pingus/data/sounds"),
                           frozenset({"goodidea.wav", "letsgo.wav", "ohno.wav", "yipee.wav"})),),
}


class NegativeError(RuntimeError):
    """A negative that cannot be made (a missing package)."""


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _fade(x: np.ndarray, seconds: float) -> np.ndarray:
    k = min(int(seconds * SR), len(x) // 2)
    if k > 0:
        ramp = np.linspace(0.0, 1.0, k)
        x[:k] *= ramp
        x[-k:] *= ramp[::-1]
    return x


def _sine(freq: np.ndarray | float, n: int, rng: np.random.Generator) -> np.ndarray:
    """A sine of (per-sample) ``freq`` Hz with a random start phase."""
    phase = 2 * np.pi * np.cumsum(np.broadcast_to(np.asarray(freq, dtype=np.float64), (n,))) / SR
    return np.sin(phase + rng.uniform(0, 2 * np.pi))


def tone(rng: np.random.Generator, n: int) -> tuple[np.ndarray, str]:
    f = _loguniform(rng, 40.0, 8000.0)
    return _fade(_sine(f, n, rng), rng.uniform(0.01, 0.2)), f"{f:.0f} Hz"


def sweep(rng: np.random.Generator, n: int) -> tuple[np.ndarray, str]:
    while True:
        f0, f1 = _loguniform(rng, 30.0, 10000.0), _loguniform(rng, 30.0, 10000.0)
        if max(f0, f1) >= 2 * min(f0, f1):
            break
    repeats = int(rng.choice([1, 1, 2, 3, 4]))
    scale = str(rng.choice(["log", "linear"]))
    pos = (np.arange(n) * repeats / n) % 1.0  # 0..1 within each repeat
    freq = f0 * (f1 / f0) ** pos if scale == "log" else f0 + (f1 - f0) * pos
    return _fade(_sine(freq, n, rng), 0.02), f"{f0:.0f}->{f1:.0f} Hz {scale} x{repeats}"


def sine_chord(rng: np.random.Generator, n: int) -> tuple[np.ndarray, str]:
    k = int(rng.integers(2, 5))
    if rng.random() < 0.5:
        root = _loguniform(rng, 80.0, 1000.0)
        steps = np.sort(rng.choice(np.arange(1, 25), size=k - 1, replace=False))
        freqs = [root] + [root * 2 ** (s / 12) for s in steps]
    else:
        freqs = sorted(_loguniform(rng, 60.0, 6000.0) for _ in range(k))
    x = sum(rng.uniform(0.5, 1.0) * _sine(f, n, rng) for f in freqs)
    return _fade(np.asarray(x), rng.uniform(0.01, 0.2)), "+".join(f"{f:.0f}" for f in freqs) + " Hz"


def coloured_noise(rng: np.random.Generator, n: int, slope: float) -> np.ndarray:
    """Gaussian noise whose power goes as f**slope (0 white, -1 pink, -2 brown, 1 blue, 2 violet)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    f[0] = f[1]  # no infinite gain at DC
    spectrum *= (f / 1000.0) ** (slope / 2)
    spectrum[0] = 0.0
    return np.fft.irfft(spectrum, n)


def noise(rng: np.random.Generator, n: int, colour: str | None = None) -> tuple[np.ndarray, str]:
    colour = colour or str(rng.choice(list(NOISE_COLOURS)))
    return _fade(coloured_noise(rng, n, NOISE_COLOURS[colour]), 0.01), colour


def clicks(rng: np.random.Generator, n: int) -> tuple[np.ndarray, str]:
    rate = _loguniform(rng, 1.0, 16.0)
    regular = bool(rng.random() < 0.5)
    if regular:
        times = np.arange(rng.uniform(0, 1 / rate), n / SR, 1 / rate)
    else:
        times = np.cumsum(rng.exponential(1 / rate, size=int(rate * n / SR * 2) + 2))
        times = times[times < n / SR]
    length = int(rng.uniform(0.0005, 0.005) * SR) + 1
    click = rng.standard_normal(length) * np.exp(-np.arange(length) / max(length / 4, 1))
    x = np.zeros(n)
    for t in times:
        i = int(t * SR)
        m = min(length, n - i)
        x[i:i + m] += click[:m] * rng.uniform(0.5, 1.0)
    return x, f"{'regular' if regular else 'random'} {rate:.1f}/s"


def beeps(rng: np.random.Generator, n: int) -> tuple[np.ndarray, str]:
    dual = bool(rng.random() < 0.3)
    freqs = [_loguniform(rng, 300.0, 4000.0) for _ in range(2 if dual else 1)]
    on, off = rng.uniform(0.04, 0.5), rng.uniform(0.05, 1.0)
    pip = _fade(sum(_sine(f, int(on * SR), rng) for f in freqs), 0.005)
    x = np.zeros(n)
    t = int(rng.uniform(0, off) * SR)
    while t < n:
        m = min(len(pip), n - t)
        x[t:t + m] += pip[:m]
        t += int((on + off) * SR)
    return x, "+".join(f"{f:.0f}" for f in freqs) + f" Hz, {on * 1000:.0f} ms on, {off * 1000:.0f} ms off"


def hum(rng: np.random.Generator, n: int) -> tuple[np.ndarray, str]:
    mains = float(rng.choice([50.0, 60.0]))
    x = sum(rng.uniform(0.1, 1.0) / h * _sine(mains * h, n, rng) for h in range(1, int(rng.integers(1, 8)) + 1))
    x = np.asarray(x) / max(rms(np.asarray(x)), 1e-12) * db_to_gain(rng.uniform(-65.0, -40.0))
    hiss = coloured_noise(rng, n, 0.0)
    x = x + hiss / max(rms(hiss), 1e-12) * db_to_gain(rng.uniform(-85.0, -65.0))
    return x, f"{mains:.0f} Hz hum"


def sfx_files(split: str) -> list[Path]:
    """The sound-effect files of ``split``'s packages, speech left out; NegativeError names a
    package that is not installed."""
    files = []
    for pkg in GAME_SFX[split]:
        if not pkg.folder.is_dir():
            raise NegativeError(f"game sound effects need the Debian package {pkg.package} ({pkg.folder})")
        files += sorted(p for p in pkg.folder.glob("*.wav") if p.name not in pkg.speech)
    return files


def game_sfx(rng: np.random.Generator, n: int, effects: list[np.ndarray], names: list[str]) -> tuple[np.ndarray, str]:
    """``effects`` (decoded, at SR) at random times and gains, 0.1-1.5 s of silence between."""
    x = np.zeros(n)
    used = []
    t = int(rng.uniform(0.0, 0.5) * SR)
    while t < n:
        k = int(rng.integers(len(effects)))
        e = effects[k] / max(float(np.max(np.abs(effects[k]))), 1e-9) * db_to_gain(rng.uniform(-12.0, 0.0))
        m = min(len(e), n - t)
        x[t:t + m] += e[:m]
        used.append(names[k])
        t += len(e) + int(rng.uniform(0.1, 1.5) * SR)
    return x, ",".join(used)


def clip_rng(split: str, seed: int, index: int) -> np.random.Generator:
    """The random stream of one clip: ``train`` and ``heldout`` never share one."""
    return np.random.default_rng([SPLITS[split], seed, index])


def render_negative(kind: str, rng: np.random.Generator, n: int,
                    effects: tuple[list[np.ndarray], list[str]] | None = None) -> tuple[np.ndarray, str]:
    """(float32 clip of ``n`` samples, what it is in words). ``effects``: the split's game
    sound effects and their names (``game_sfx`` only)."""
    if kind == "game_sfx":
        if not effects or not effects[0]:
            raise NegativeError("game_sfx needs the split's sound effects")
        x, what = game_sfx(rng, n, *effects)
    elif kind in ("tone", "sweep", "sine_chord", "noise", "clicks", "beeps", "hum"):
        x, what = {"tone": tone, "sweep": sweep, "sine_chord": sine_chord, "noise": noise, "clicks": clicks,
                   "beeps": beeps, "hum": hum}[kind](rng, n)
    else:
        raise ValueError(f"unknown negative kind {kind!r}; one of {', '.join(KINDS)}")
    if kind != "hum":
        x = x / max(rms(x), 1e-12) * db_to_gain(rng.uniform(*LEVEL_DB))
    peak = float(np.max(np.abs(x)))
    if peak > 0.99:
        x = x * (0.99 / peak)
    return x.astype(np.float32), what
