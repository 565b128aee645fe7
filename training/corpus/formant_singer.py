"""A singer of our own: a glottal source through a vocal tract of moving formants.

The corpus's other singers are festival's diphone voices (three men), so whatever makes
a voice a voice to the network may be a trait of that one engine. This engine shares
none of festival's machinery. It builds singing from what a voice is made of:

- **Glottal source.** A Rosenberg pulse per period, differentiated (lip radiation), at
  twice the output rate and then decimated, so its harmonics do not alias. Its open
  quotient is drawn per singer: a pressed voice is bright, a breathy one dull. There is
  cycle-to-cycle jitter and shimmer, and aspiration noise gated by the open phase.
- **Pitch.** The clip's melody, with a glide between notes and a delayed vibrato
  (4.5-6.5 Hz, 20-80 cents) on held notes. Drawn per singer: a man's range (MIDI 43-67)
  or a woman's (55-79).
- **Vocal tract.** A cascade of five two-pole resonators (Klatt's cascade branch) that
  move between vowel targets within 40-80 ms. The formants are scaled for a man or a
  woman, with each one perturbed by up to ±8 % per singer. When the pitch rises above the
  first formant, the first formant follows it, as a soprano tunes it. Some singers get a
  singer's formant (a cluster near 3 kHz).
- **Syllables.** Each note sings one syllable of the corpus's word lists. Its first
  letter gives a short consonant (a noise burst, a stop gap or a nasal murmur), and its
  vowel letters give the vowel's formants.

Everything is drawn from the ``rng`` the caller passes, so a clip renders the same bytes
every time. The output is 22 050 Hz, ``RENDER_SAMPLES`` long, peak 1.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.signal import lfilter, resample_poly

from .audio import RENDER_SAMPLES, SAMPLE_RATE

OVERSAMPLE = 2
RATE = SAMPLE_RATE * OVERSAMPLE
BLOCK = 128  # samples at RATE between formant updates (2.9 ms)

# adult male formants F1-F4 (Hz; Peterson & Barney's averages, rounded) and F5
VOWELS: dict[str, tuple[float, float, float, float, float]] = {
    "a": (730, 1090, 2440, 3400, 4500),
    "e": (530, 1840, 2480, 3500, 4500),
    "i": (270, 2290, 3010, 3700, 4600),
    "o": (570, 840, 2410, 3300, 4400),
    "u": (300, 870, 2240, 3300, 4400),
    "ae": (660, 1720, 2410, 3400, 4500),
    "er": (490, 1350, 1690, 3300, 4400),
}
BANDWIDTHS = (80.0, 90.0, 130.0, 180.0, 250.0)  # Hz, before the per-singer factor
NASAL = (250.0, 1200.0, 2400.0, 3300.0, 4400.0)  # the murmur of m, n, ng
FRICATIVES = {"s": (4000, 8000), "z": (4000, 8000), "f": (1500, 7000), "v": (1500, 7000), "h": (500, 4000),
              "c": (2500, 6000), "j": (2000, 5000), "t": (3000, 7000)}  # band of the noise (Hz)
STOPS = frozenset("pbtdkgc")
SONORANTS = frozenset("mnlrwy")


@dataclass(frozen=True)
class Singer:
    """The traits a singer keeps for a whole clip."""

    low: int  # MIDI range
    high: int
    formant_scale: tuple[float, ...]  # per formant, on top of VOWELS
    bandwidth: float  # factor on BANDWIDTHS
    open_quotient: float  # share of a period the glottis is open (0.4 pressed .. 0.75 breathy)
    breath_db: float  # aspiration noise re the voiced source
    jitter: float  # relative period-to-period pitch deviation
    shimmer: float  # relative period-to-period amplitude deviation
    ring_db: float  # a singer's formant near 3 kHz (0: none)
    tilt: float  # first-order emphasis after the tract, 0 (none) .. 0.9 (bright)


def draw_singer(rng: np.random.Generator, kind: str | None = None) -> Singer:
    """A singer of ``kind`` ("man" or "woman"; drawn when None) with traits drawn from ``rng``."""
    kind = kind or str(rng.choice(["man", "woman"]))
    if kind == "man":
        low, high, scale = 43, 67, rng.uniform(0.95, 1.06)
    elif kind == "woman":
        low, high, scale = 55, 79, rng.uniform(1.12, 1.24)
    else:
        raise ValueError(f"unknown singer kind {kind!r}")
    return Singer(
        low=low, high=high,
        formant_scale=tuple(float(scale * rng.uniform(0.92, 1.08)) for _ in range(5)),
        bandwidth=float(rng.uniform(0.8, 1.5)),
        open_quotient=float(rng.uniform(0.4, 0.75)),
        breath_db=float(rng.uniform(-34, -14)),
        jitter=float(rng.uniform(0.002, 0.012)),
        shimmer=float(rng.uniform(0.02, 0.08)),
        ring_db=float(rng.uniform(6, 12)) if rng.random() < 0.4 else 0.0,
        tilt=float(rng.uniform(0.0, 0.9)),
    )


def vowel_of(syllable: str) -> str:
    """The vowel a syllable sings, roughly: "night" -> i, "heart" -> a, "you" -> u, "day" -> e."""
    s = syllable.lower()
    for letters, vowel in (("ear", "a"), ("ee", "i"), ("ea", "i"), ("oo", "u"), ("ue", "u"), ("ai", "e"),
                           ("ay", "e"), ("er", "er")):
        if letters in s and not (letters == "ear" and s.endswith("ear")):
            return vowel
    if s.endswith(("ou", "ough")):
        return "u"
    for ch in s:
        if ch in "aeiou":
            return "ae" if ch == "a" and s.endswith(("ck", "ad", "at", "an", "and")) else ch
    return "a"  # my, sky, cry: the diphthong starts at a


def _pitch_track(notes: list[tuple[float, float, str]], start: float, rng: np.random.Generator,
                 n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample f0 (Hz) and voicing (0..1) at RATE for (Hz, seconds, syllable) notes."""
    f0 = np.zeros(n)
    amp = np.zeros(n)
    t = int(start * RATE)
    last = 0.0
    for hz, dur, syllable in notes:
        m = int(dur * RATE)
        seg = slice(t, min(n, t + m))
        k = seg.stop - seg.start
        if k <= 0:
            break
        if not syllable or hz <= 0:
            t += m
            continue
        tt = np.arange(k) / RATE
        track = np.full(k, hz)
        if last > 0:  # a glide from the note before
            glide = rng.uniform(0.03, 0.12)
            w = np.clip(tt / glide, 0, 1)
            track = last * (hz / last) ** (0.5 - 0.5 * np.cos(np.pi * w))
        if dur > 0.35:  # vibrato on held notes, after an onset delay
            rate, cents, delay = rng.uniform(4.5, 6.5), rng.uniform(20, 80), rng.uniform(0.15, 0.5)
            fade = np.clip((tt - delay) / 0.3, 0, 1)
            track = track * 2 ** (cents / 1200 * fade * np.sin(2 * np.pi * rate * tt + rng.uniform(0, 2 * np.pi)))
        f0[seg] = track
        attack, release = rng.uniform(0.02, 0.08), rng.uniform(0.05, 0.15)
        env = np.minimum(np.clip(tt / attack, 0, 1), np.clip((dur - tt) / release, 0, 1))
        amp[seg] = env * rng.uniform(0.7, 1.0)
        last = hz
        t += m
    # hold the pitch through rests (the source never sees 0 Hz): the last one sung, else the first
    sung = np.flatnonzero(f0 > 0)
    if not len(sung):
        return np.full(n, 200.0), amp
    last_sung = np.maximum.accumulate(np.where(f0 > 0, np.arange(n), sung[0]))
    return f0[last_sung], amp


def glottal_source(f0: np.ndarray, singer: Singer, rng: np.random.Generator) -> np.ndarray:
    """Differentiated Rosenberg pulses at RATE for an f0 track, with jitter, shimmer and aspiration."""
    n = len(f0)
    knots = np.arange(0, n + RATE // 100, RATE // 100)  # jitter: a new random period deviation every 10 ms
    wobble = np.interp(np.arange(n), knots, rng.standard_normal(len(knots)))
    phase = np.cumsum(f0 * (1 + singer.jitter * wobble) / RATE)
    period = np.floor(phase).astype(np.int64)
    p = phase - period
    oq = singer.open_quotient
    tp, tn = 0.6 * oq, 0.4 * oq
    g = np.where(p < tp, 0.5 * (1 - np.cos(np.pi * p / tp)),
                 np.where(p < tp + tn, np.cos(0.5 * np.pi * (p - tp) / tn), 0.0))
    gains = 1 + singer.shimmer * rng.standard_normal(int(period[-1]) + 2)
    g = g * gains[period - period[0]]
    source = np.diff(g, prepend=0.0)
    source /= max(1e-9, float(np.std(source)))
    breath = rng.standard_normal(n) * (10 ** (singer.breath_db / 20)) * (0.3 + (p < oq))
    return source + breath


def _resonator(freq: float, bw: float) -> tuple[np.ndarray, np.ndarray]:
    """A two-pole resonator with unity gain at 0 Hz (Klatt 1980)."""
    r = np.exp(-np.pi * bw / RATE)
    c = 2 * r * np.cos(2 * np.pi * min(freq, 0.45 * RATE) / RATE)
    a = np.array([1.0, -c, r * r])
    return np.array([a.sum()]), a


def vocal_tract(source: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    """``source`` through resonators in cascade; ``formants``, ``bandwidths``: (blocks, 5) Hz."""
    out = np.empty_like(source)
    states = [np.zeros(2) for _ in range(formants.shape[1])]
    for b in range(formants.shape[0]):
        x = source[b * BLOCK:(b + 1) * BLOCK]
        if not len(x):
            break
        for j in range(formants.shape[1]):
            num, den = _resonator(formants[b, j], bandwidths[b, j])
            x, states[j] = lfilter(num, den, x, zi=states[j])
        out[b * BLOCK:b * BLOCK + len(x)] = x
    return out


def _targets(notes: list[tuple[float, float, str]], start: float, singer: Singer, f0: np.ndarray,
             rng: np.random.Generator, blocks: int) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """Formant targets per block, smoothed into trajectories; the consonants' (sample, length, letter)."""
    target = np.tile(np.array(VOWELS["a"]), (blocks, 1)).astype(float)
    consonants = []
    t = start
    for hz, dur, syllable in notes:
        b0, b1 = int(t * RATE) // BLOCK, int((t + dur) * RATE) // BLOCK
        if syllable and hz > 0:
            target[b0:b1] = VOWELS[vowel_of(syllable)]
            first = syllable[0].lower()
            if first not in "aeiou":
                length = int(rng.uniform(0.03, 0.09) * RATE)
                consonants.append((int(t * RATE), min(length, int(0.4 * dur * RATE)), first))
                if first in "mn":
                    target[b0:b0 + max(1, length // BLOCK)] = NASAL
        t += dur
    target *= np.array(singer.formant_scale)
    # a soprano's first formant follows her pitch when the pitch rises above it
    f0_blocks = f0[::BLOCK][:blocks]
    target[:, 0] = np.maximum(target[:, 0], 1.05 * f0_blocks)
    glide = rng.uniform(0.04, 0.08) * RATE / BLOCK  # blocks to move most of the way
    smooth = lfilter([1 / glide], [1, -(1 - 1 / glide)], target, axis=0, zi=target[:1] * (1 - 1 / glide))[0]
    return smooth, consonants


def sing_formant(rng: np.random.Generator, notes: list[tuple[float, float, str]], start: float,
                 singer: Singer, tract: float = 1.0) -> np.ndarray:
    """Sing (Hz, seconds, syllable) notes from ``start`` s; RENDER_SAMPLES at SAMPLE_RATE, peak 1.

    ``tract``: a vocal-tract length factor, as festival's singers get (formants times it).
    """
    n = RENDER_SAMPLES * OVERSAMPLE
    if tract != 1.0:
        singer = replace(singer, formant_scale=tuple(f * tract for f in singer.formant_scale))
    f0, amp = _pitch_track(notes, start, rng, n)
    blocks = -(-n // BLOCK)
    formants, consonants = _targets(notes, start, singer, f0, rng, blocks)
    bandwidths = np.tile(np.array(BANDWIDTHS) * singer.bandwidth, (blocks, 1))
    voiced = glottal_source(f0, singer, rng) * amp
    noise = np.zeros(n)
    for at, length, letter in consonants:
        if length <= 0 or at >= n:
            continue
        seg = slice(at, min(n, at + length))
        k = seg.stop - seg.start
        if letter in STOPS:  # a gap, then a burst at its end
            voiced[seg] *= 0.05
            burst = min(k, int(0.012 * RATE))
            noise[seg.stop - burst:seg.stop] += rng.standard_normal(burst) * 0.6
        elif letter in SONORANTS:
            voiced[seg] *= 0.35
        else:  # a fricative: band noise, the voice softened under it
            lo, hi = FRICATIVES.get(letter, (2000, 6000))
            spec = np.fft.rfft(rng.standard_normal(k))
            freqs = np.fft.rfftfreq(k, 1 / RATE)
            spec[(freqs < lo) | (freqs > hi)] = 0
            band = np.fft.irfft(spec, k)
            noise[seg] += band / max(1e-9, float(np.std(band))) * 0.25 * np.hanning(k)
            voiced[seg] *= 0.3 if letter in "szfvh" else 0.6
    out = vocal_tract(voiced, formants, bandwidths) + noise
    if singer.ring_db:
        num, den = _resonator(2900.0 * float(np.mean(singer.formant_scale)), 400.0)
        ring = lfilter(num, den, out)
        out = out + (10 ** (singer.ring_db / 20) - 1) * ring * 0.15
    out = lfilter([1.0, -singer.tilt], [1.0], out)  # the cascade's fall above F5 is steeper than a voice's
    out = resample_poly(out, 1, OVERSAMPLE)[:RENDER_SAMPLES].astype(np.float32)
    peak = float(np.max(np.abs(out)))
    return out / peak if peak > 0 else out
