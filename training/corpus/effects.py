"""Production of the training audio: per-stem effects and stereo placement, then bus
processing of the mix (EQ, simulated room, bus compression, mastering EQ, limiter, noise)
and lossy codecs.

Effects come from libraries that ship no recordings (DESIGN.md): pedalboard's built-in
effects and pyroomacoustics' simulated shoebox rooms. All functions take and return
float32 mono at SAMPLE_RATE; every random choice comes from the clip's own generator
(pedalboard plugins are fresh instances, deterministic given their parameters; the room
bank is simulated from a fixed seed), so a clip's processing is reproducible from its seed.
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
    """Probabilities of each production step (see CORPUS.md, "Rendering and augmentation")."""

    # the mix (bus), in this order
    eq_prob: float = 0.5
    reverb_prob: float = 0.6
    compress_prob: float = 0.5
    master_eq_prob: float = 0.3
    limit_prob: float = 0.35
    hard_clip_share: float = 0.3  # of limited clips, the share driven into a hard clipper
    noise_prob: float = 0.5
    lossy_prob: float = 0.25
    # each stem, before the mix
    stem_effects: bool = True
    stem_eq_prob: float = 0.4
    stem_saturation_prob: float = 0.15
    stem_chorus_prob: float = 0.12  # times MODULATION_AFFINITY[label]
    stem_phaser_prob: float = 0.06  # times MODULATION_AFFINITY[label]
    stem_delay_prob: float = 0.15  # x 0.3 for drums
    stem_stereo_prob: float = 0.5
    style: str = "production"  # or "classic": the first corpora's hand-made chain (see classic())

    @classmethod
    def none(cls) -> "AugmentConfig":
        """No effects at all (``--no-augment``)."""
        return cls(eq_prob=0.0, reverb_prob=0.0, compress_prob=0.0, master_eq_prob=0.0, limit_prob=0.0,
                   noise_prob=0.0, lossy_prob=0.0, stem_effects=False)

    @classmethod
    def classic(cls) -> "AugmentConfig":
        """The hand-made chain the first corpora were built with (``--effects classic``): on the mix
        only, EQ -> noise-convolution reverb -> RMS compression -> noise, then codecs. Clips come
        out bit-identical to those builds, so the bundled model's base corpora can be rebuilt."""
        return cls(eq_prob=0.7, reverb_prob=0.7, compress_prob=0.35, master_eq_prob=0.0, limit_prob=0.0,
                   noise_prob=0.5, lossy_prob=0.25, stem_effects=False, style="classic")


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


# ---------------------------------------------------------------------------- rooms (pyroomacoustics)

# Room classes: (name, length, width, height ranges in m, RT60 range in s). Each class's
# RT60s fit its size, so the image-source order stays moderate (<= ~100) and Sabine's
# absorption gives close to the asked-for decay. Together they span ~0.15-2 s.
ROOM_CLASSES: tuple[tuple[str, tuple[float, float], tuple[float, float], tuple[float, float],
                          tuple[float, float]], ...] = (
    ("booth", (2.0, 3.5), (1.8, 3.0), (2.2, 2.8), (0.15, 0.3)),
    ("room", (3.5, 6.0), (3.0, 5.0), (2.5, 3.2), (0.25, 0.6)),
    ("studio", (6.0, 12.0), (5.0, 9.0), (3.0, 5.0), (0.4, 0.9)),
    ("hall", (15.0, 35.0), (12.0, 25.0), (8.0, 15.0), (1.0, 2.2)),
)
ROOM_BANK_SIZE = 48  # rooms per worker process, simulated lazily on first use
ROOM_SEED = 20261122  # the bank is the same in every process and every build


@dataclass(frozen=True)
class Room:
    name: str  # room class
    dims: tuple[float, float, float]
    rt60: float  # asked for (s)
    measured_rt60: float  # Schroeder T30 of the simulated left channel (s)
    rir: np.ndarray  # (2, n) float32: a spaced stereo pair, direct sound at sample ~0


def schroeder_rt60(rir: np.ndarray, fs: int = SAMPLE_RATE, db_range: tuple[float, float] = (-5.0, -35.0)) -> float:
    """RT60 from Schroeder backward integration, line fit between ``db_range`` (T30 x 2)."""
    energy = np.asarray(rir, dtype=np.float64) ** 2
    edc = np.cumsum(energy[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0] + 1e-300)
    hi, lo = db_range
    i0 = int(np.argmax(edc_db <= hi))
    i1 = int(np.argmax(edc_db <= lo))
    if i1 <= i0 + 1:
        return 0.0
    t = np.arange(i0, i1) / fs
    slope = np.polyfit(t, edc_db[i0:i1], 1)[0]  # dB per second (negative)
    return float(-60.0 / slope) if slope < 0 else float("inf")


def simulate_room(rng: np.random.Generator, room_class: int | None = None, rt60: float | None = None) -> Room:
    """One shoebox room with a source and a spaced pair of omnis, by the image-source method.

    Absorption comes from Sabine's formula for the drawn RT60; one correction step rescales
    the asked-for RT60 by asked/measured, so the simulated decay lands close to it."""
    import pyroomacoustics as pra

    pra.constants.set("num_threads", 1)  # summation order fixed: bit-identical in every process
    ci = int(rng.integers(len(ROOM_CLASSES))) if room_class is None else room_class
    name, lx, ly, lz, rts = ROOM_CLASSES[ci]
    dims = (float(rng.uniform(*lx)), float(rng.uniform(*ly)), float(rng.uniform(*lz)))
    target = float(rng.uniform(*rts)) if rt60 is None else float(rt60)
    # source and microphone pair: >= 0.5 m from the walls, 1-8 m apart
    margin = 0.5
    lo = np.array([margin] * 3)
    hi = np.array(dims) - margin
    src = np.array([rng.uniform(lo[0], hi[0]), rng.uniform(lo[1], hi[1]), rng.uniform(1.0, min(2.0, hi[2]))])
    spacing = float(rng.uniform(0.15, 0.6))
    for _ in range(100):
        mic = np.array([rng.uniform(lo[0], hi[0] - spacing), rng.uniform(lo[1], hi[1]),
                        rng.uniform(1.2, min(2.5, hi[2]))])
        if 1.0 <= np.linalg.norm(mic - src) <= 8.0:
            break
    mics = np.stack([mic, mic + np.array([spacing, 0.0, 0.0])], axis=1)

    def run(rt: float) -> np.ndarray:
        e_abs, max_order = pra.inverse_sabine(rt, list(dims))
        room = pra.ShoeBox(list(dims), fs=SAMPLE_RATE, materials=pra.Material(float(min(e_abs, 0.99))),
                           max_order=int(min(max_order, 120)))
        room.add_source(src.tolist())
        room.add_microphone_array(mics)
        room.compute_rir()
        n = min(len(room.rir[0][0]), len(room.rir[1][0]))
        return np.stack([np.asarray(room.rir[c][0][:n], dtype=np.float64) for c in range(2)])

    rir = run(target)
    measured = schroeder_rt60(rir[0])
    if measured > 0 and np.isfinite(measured):
        try:
            rir = run(float(np.clip(target * target / measured, 0.5 * target, 2.0 * target)))
            measured = schroeder_rt60(rir[0])
        except ValueError:  # Sabine has no solution for that RT60 in this room: keep the first
            pass
    # direct sound to the front (keep 1 ms before it), tail cut at 1.2 x RT60
    start = max(0, int(np.argmax(np.abs(rir).max(axis=0))) - int(0.001 * SAMPLE_RATE))
    n = int(min(1.2 * max(target, measured), 2.5) * SAMPLE_RATE)
    rir = rir[:, start:start + n]
    rir /= np.sqrt(np.mean(np.sum(rir ** 2, axis=1)))  # unit energy per channel on average
    return Room(name, dims, target, measured, rir.astype(np.float32))


_ROOM_BANK: dict[int, Room] = {}


def room_from_bank(i: int) -> Room:
    """Room ``i`` of the bank, simulated on first use and cached for the process's lifetime.
    Rooms cycle through the classes, so every class is equally common."""
    i %= ROOM_BANK_SIZE
    if i not in _ROOM_BANK:
        _ROOM_BANK[i] = simulate_room(np.random.default_rng([ROOM_SEED, i]), room_class=i % len(ROOM_CLASSES))
    return _ROOM_BANK[i]


def _convolve(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    return signal.fftconvolve(x.astype(np.float32), ir.astype(np.float32))[: len(x)]


def random_reverb(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """The mix played into a simulated room (bank of pyroomacoustics shoeboxes) and picked
    up by a spaced pair folded to mono, after a pre-delay, blended with the dry mix."""
    room = room_from_bank(int(rng.integers(ROOM_BANK_SIZE)))
    wet = float(rng.uniform(0.05, 0.5))
    predelay = float(rng.uniform(0.0, 0.03))
    ir = 0.5 * (room.rir[0] + room.rir[1])
    ir = np.concatenate([np.zeros(int(predelay * SAMPLE_RATE), np.float32), ir])
    reverberant = _convolve(x, ir)
    r = rms(reverberant)
    if r > 0:
        reverberant *= rms(x) / r
    out = (1.0 - wet) * x + wet * reverberant
    return out.astype(np.float32), (f"reverb({room.name},rt60={room.measured_rt60:.2f},"
                                    f"wet={wet:.2f},pre={predelay * 1000:.0f}ms)")


# ---------------------------------------------------------------------------- pedalboard helpers


def _pb(plugin, x: np.ndarray) -> np.ndarray:
    """Run one pedalboard plugin (a fresh instance: no state carried over) on mono audio."""
    y = plugin(np.ascontiguousarray(x, dtype=np.float32)[None, :], SAMPLE_RATE, reset=True)
    return np.asarray(y[0], dtype=np.float32)


def _level_match(y: np.ndarray, ref: np.ndarray, window: slice | None = None) -> np.ndarray:
    w = window if window is not None else slice(None)
    r = rms(y[w])
    return (y * np.float32(rms(ref[w]) / r)).astype(np.float32) if r > 0 else y.astype(np.float32)


# ---------------------------------------------------------------------------- bus processing


def crest_factor_db(x: np.ndarray) -> float:
    r = rms(x)
    return float(20 * np.log10(np.max(np.abs(x)) / r)) if r > 0 else 0.0


def bus_compress(x: np.ndarray, gr_db: float, ratio: float, attack_ms: float, release_ms: float) -> tuple[np.ndarray, float]:
    """pedalboard ``Compressor`` with its threshold searched so that the RMS gain reduction
    is close to ``gr_db`` (bus glue). Returns the output (no make-up gain) and the threshold."""
    from pedalboard import Compressor

    scale = 1.0 / (np.max(np.abs(x)) + 1e-12)  # work at peak 0 dBFS
    xs = (x * scale).astype(np.float32)
    level = 20 * np.log10(rms(xs) + 1e-12)
    threshold = level - gr_db / (1.0 - 1.0 / ratio)
    y = xs
    for _ in range(4):
        y = _pb(Compressor(threshold_db=threshold, ratio=ratio, attack_ms=attack_ms, release_ms=release_ms), xs)
        got = level - 20 * np.log10(rms(y) + 1e-12)
        if abs(got - gr_db) < 0.25:
            break
        threshold -= (gr_db - got) / (1.0 - 1.0 / ratio)
    return (y / scale).astype(np.float32), float(threshold)


def random_bus_compression(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    gr = float(rng.uniform(2.0, 4.0))
    ratio = float(rng.uniform(2.0, 4.0))
    attack = float(np.exp(rng.uniform(np.log(0.5), np.log(30.0))))  # fast: peaks tamed; slow: punch kept
    release = float(rng.uniform(80.0, 300.0))
    y, threshold = bus_compress(x, gr, ratio, attack, release)
    return y, f"comp(gr={gr:.1f}dB,ratio={ratio:.1f},att={attack:.1f}ms,rel={release:.0f}ms)"


def limit(x: np.ndarray, drive_db: float, release_ms: float = 100.0, ceiling_db: float = 0.0,
          hard: bool = False) -> np.ndarray:
    """Mastering limiter: the mix at peak 0 dBFS is driven ``drive_db`` into pedalboard's
    ``Limiter`` (threshold -drive, output re-gained to 0 dBFS and clipped there), or, when
    ``hard``, into a ``Clipping`` stage; the result peaks at ``ceiling_db`` or below."""
    from pedalboard import Clipping, Limiter

    peak = float(np.max(np.abs(x)))
    if peak <= 0:
        return x.astype(np.float32)
    xs = (x / peak).astype(np.float32)
    if hard:
        y = _pb(Clipping(threshold_db=0.0), xs * np.float32(db_to_gain(drive_db)))
    else:
        y = _pb(Limiter(threshold_db=-drive_db, release_ms=release_ms), xs)
    ceiling = np.float32(db_to_gain(ceiling_db))
    return np.clip(y * ceiling, -ceiling, ceiling).astype(np.float32)


def random_limiter(x: np.ndarray, rng: np.random.Generator, hard_prob: float = 0.3) -> tuple[np.ndarray, str]:
    hard = bool(rng.random() < hard_prob)
    if hard:
        drive = float(rng.uniform(1.0, 6.0))
        return limit(x, drive, hard=True), f"hardclip(drive={drive:.1f}dB)"
    drive = float(rng.uniform(2.0, 12.0))
    release = float(rng.uniform(20.0, 200.0))
    return limit(x, drive, release), f"limit(drive={drive:.1f}dB,rel={release:.0f}ms)"


def random_master_eq(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Mastering shelves (pedalboard ``LowShelfFilter`` / ``HighShelfFilter``), +-4 dB."""
    from pedalboard import HighShelfFilter, LowShelfFilter

    lf, lg = float(rng.uniform(60, 250)), float(rng.uniform(-4, 4))
    hf, hg = float(rng.uniform(3000, 10000)), float(rng.uniform(-4, 4))
    y = _pb(LowShelfFilter(cutoff_frequency_hz=lf, gain_db=lg), x)
    y = _pb(HighShelfFilter(cutoff_frequency_hz=hf, gain_db=hg), y)
    return y, f"master_eq(l{lf:.0f}:{lg:+.1f},h{hf:.0f}:{hg:+.1f})"


# ---------------------------------------------------------------------------- noise


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


# ---------------------------------------------------------------------------- stem production

# How much more (or less) likely a modulation effect is on a stem of this label than the
# configured probability (1.0 when not listed). Drums are never chorused or phased.
MODULATION_AFFINITY: dict[str, float] = {
    "electric_guitar": 2.0, "synthesizer": 2.0, "organ": 1.5, "piano": 1.0, "acoustic_guitar": 1.0,
    "bass": 0.7, "mallet_percussion": 0.7, "drums": 0.0,
}
NO_HIGHPASS = ("bass", "drums")  # stems an engineer would not high-pass


def random_chorus(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    from pedalboard import Chorus

    p = dict(rate_hz=float(rng.uniform(0.2, 3.0)), depth=float(rng.uniform(0.1, 0.5)),
             centre_delay_ms=float(rng.uniform(3.0, 15.0)), feedback=float(rng.uniform(0.0, 0.3)),
             mix=float(rng.uniform(0.2, 0.6)))
    return _pb(Chorus(**p), x), "chorus(rate={rate_hz:.2f}Hz,depth={depth:.2f},mix={mix:.2f})".format(**p)


def random_phaser(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    from pedalboard import Phaser

    p = dict(rate_hz=float(rng.uniform(0.1, 2.0)), depth=float(rng.uniform(0.3, 0.9)),
             centre_frequency_hz=float(np.exp(rng.uniform(np.log(300), np.log(2500)))),
             feedback=float(rng.uniform(0.0, 0.6)), mix=float(rng.uniform(0.2, 0.6)))
    return _pb(Phaser(**p), x), "phaser(rate={rate_hz:.2f}Hz,fc={centre_frequency_hz:.0f},mix={mix:.2f})".format(**p)


DELAY_BEATS = (0.25, 0.375, 0.5, 0.75, 1.0)  # 1/16, dotted 1/16, 1/8, dotted 1/8, 1/4 (in beats)


def random_delay(x: np.ndarray, rng: np.random.Generator, bpm: float | None = None) -> tuple[np.ndarray, str]:
    """pedalboard ``Delay``: tempo-synced when the clip's tempo is known, 1-4 repeats."""
    from pedalboard import Delay

    if bpm:
        seconds = float(60.0 / bpm * DELAY_BEATS[int(rng.integers(len(DELAY_BEATS)))])
    else:
        seconds = float(rng.uniform(0.08, 0.5))
    seconds = min(seconds, 0.75)
    feedback = float(rng.uniform(0.0, 0.45))
    mix = float(rng.uniform(0.1, 0.35))
    y = _pb(Delay(delay_seconds=seconds, feedback=feedback, mix=mix), x)
    return y, f"delay({seconds * 1000:.0f}ms,fb={feedback:.2f},mix={mix:.2f})"


def random_saturation(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Light tanh saturation (pedalboard ``Distortion``), blended in parallel with the dry
    stem; the stem is first brought to a nominal -18 dBFS RMS so the drive means the same
    thing for every stem."""
    from pedalboard import Distortion

    drive = float(rng.uniform(3.0, 15.0))
    amount = float(rng.uniform(0.3, 1.0))
    r = rms(x)
    if r <= 0:
        return x, "saturation(skipped)"
    k = db_to_gain(-18.0) / r
    y = _pb(Distortion(drive_db=drive), (x * k).astype(np.float32)) / k
    y = _level_match(y, x)
    return ((1 - amount) * x + amount * y).astype(np.float32), f"saturation(drive={drive:.1f}dB,amount={amount:.2f})"


def random_stem_eq(x: np.ndarray, rng: np.random.Generator, label: str) -> tuple[np.ndarray, str]:
    """The mix EQ (three RBJ bands) plus, for stems other than bass and drums, half the
    time a high-pass at 40-150 Hz (pedalboard ``HighpassFilter``)."""
    from pedalboard import HighpassFilter

    y, desc = random_eq(x, rng)
    if label not in NO_HIGHPASS and rng.random() < 0.5:
        f = float(rng.uniform(40, 150))
        y = _pb(HighpassFilter(cutoff_frequency_hz=f), y)
        desc = desc[:-1] + f",hp{f:.0f})"
    return y, desc


def stereo_fold(x: np.ndarray, pan: float, itd_s: float, room: Room | None, early_s: float,
                room_wet: float) -> np.ndarray:
    """A stem placed in a stereo image, then summed to mono as a mono listener (and our
    model) hears it: constant-power pan, the far channel delayed by ``itd_s`` (spaced pair /
    Haas), optionally each channel through the first ``early_s`` of a different channel of
    a simulated room (its early reflections), then L+R. The sum colours the stem with the
    comb filter a real stereo mix gets when folded down."""
    theta = (pan + 1.0) * np.pi / 4
    gl, gr = np.cos(theta), np.sin(theta)
    left = x.astype(np.float32) * np.float32(gl)
    right = x.astype(np.float32) * np.float32(gr)
    d = int(round(itd_s * SAMPLE_RATE))
    if d > 0:
        if pan > 0:  # source on the right: the left channel hears it later
            left = np.concatenate([np.zeros(d, np.float32), left[:-d]])
        else:
            right = np.concatenate([np.zeros(d, np.float32), right[:-d]])
    if room is not None:
        n = max(1, int(early_s * SAMPLE_RATE))
        left = (1 - room_wet) * left + room_wet * _level_match(_convolve(left, room.rir[0][:n]), left)
        right = (1 - room_wet) * right + room_wet * _level_match(_convolve(right, room.rir[1][:n]), right)
    return (left + right).astype(np.float32)


def random_stereo(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    pan = float(rng.uniform(-1.0, 1.0))
    itd = float(abs(pan) * rng.uniform(0.0, 0.0015))
    room = None
    early = wet = 0.0
    if rng.random() < 0.5:
        room = room_from_bank(int(rng.integers(ROOM_BANK_SIZE)))
        early = float(rng.uniform(0.02, 0.08))
        wet = float(rng.uniform(0.2, 0.7))
    y = stereo_fold(x, pan, itd, room, early, wet)
    desc = f"stereo(pan={pan:+.2f},itd={itd * 1000:.2f}ms"
    desc += f",{room.name} early {early * 1000:.0f}ms wet={wet:.2f})" if room is not None else ")"
    return y, desc


def produce_stem(x: np.ndarray, label: str, rng: np.random.Generator, cfg: "AugmentConfig",
                 bpm: float | None = None, window: slice | None = None) -> tuple[np.ndarray, list[str]]:
    """Per-stem production before the mix: EQ -> saturation -> chorus -> phaser -> delay ->
    stereo placement folded to mono, each with its own probability. The result has the
    same RMS as the input over ``window`` (the clip), so the levels the label rule set
    are kept. Returns the stem and the effect descriptions (prefixed by the label)."""
    if not cfg.stem_effects:
        return x, []
    mod = MODULATION_AFFINITY.get(label, 1.0)
    chain = (
        (cfg.stem_eq_prob, lambda y: random_stem_eq(y, rng, label)),
        (cfg.stem_saturation_prob, lambda y: random_saturation(y, rng)),
        (cfg.stem_chorus_prob * mod, lambda y: random_chorus(y, rng)),
        (cfg.stem_phaser_prob * mod, lambda y: random_phaser(y, rng)),
        (cfg.stem_delay_prob * (0.3 if label == "drums" else 1.0), lambda y: random_delay(y, rng, bpm)),
        (cfg.stem_stereo_prob, lambda y: random_stereo(y, rng)),
    )
    y = x.astype(np.float32)
    steps: list[str] = []
    for prob, fn in chain:
        if rng.random() < prob:
            y, desc = fn(y)
            steps.append(f"{label}:{desc}")
    if not steps:
        return x, []
    y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
    return _level_match(y, x, window), steps



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


# ---------------------------------------------------------------------------- the classic chain


def noise_reverb(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Classic chain: convolution with an exponentially decaying, low-passed noise impulse response."""
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


def _smooth(x: np.ndarray, seconds: float) -> np.ndarray:
    a = 1.0 - np.exp(-1.0 / (seconds * SAMPLE_RATE))
    return signal.lfilter([a], [1.0, a - 1.0], x)


def rms_compression(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Classic chain: light feed-forward RMS compressor (threshold below the clip's loudest level)."""
    level_db = 10 * np.log10(_smooth(x.astype(np.float64) ** 2, 0.02) + 1e-12)
    threshold = level_db.max() - rng.uniform(6, 20)
    ratio = rng.uniform(1.5, 5.0)
    gain_db = np.minimum(0.0, (threshold - level_db) * (1.0 - 1.0 / ratio))
    gain_db = _smooth(gain_db, 0.06)
    return (x * 10 ** (gain_db / 20.0)).astype(np.float32), f"comp(thr={threshold:.0f},ratio={ratio:.1f})"


def augment(x: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> tuple[np.ndarray, list[str]]:
    """Bus processing of the mix: EQ -> room reverb -> bus compression -> mastering EQ ->
    limiter (or hard clipper) -> noise, each applied with its own probability (the classic
    style: EQ -> noise reverb -> RMS compression -> noise)."""
    steps: list[str] = []
    if cfg.style == "classic":
        for prob, fn in ((cfg.eq_prob, random_eq), (cfg.reverb_prob, noise_reverb),
                         (cfg.compress_prob, rms_compression), (cfg.noise_prob, random_noise)):
            if rng.random() < prob:
                x, desc = fn(x, rng)
                steps.append(desc)
        return x, steps
    chain = (
        (cfg.eq_prob, random_eq),
        (cfg.reverb_prob, random_reverb),
        (cfg.compress_prob, random_bus_compression),
        (cfg.master_eq_prob, random_master_eq),
        (cfg.limit_prob, lambda y, r: random_limiter(y, r, cfg.hard_clip_share)),
        (cfg.noise_prob, random_noise),
    )
    for prob, fn in chain:
        if rng.random() < prob:
            x, desc = fn(x, rng)
            steps.append(desc)
    return x, steps
