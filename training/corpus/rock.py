"""Band music as rock and metal bands play it: distorted guitars over drums and bass.

One clip: a tempo and a key, a riff the rhythm guitar plays (power chords, palm-muted
eighth-note chugs on the low string with accents, sustained power chords, or a single-note
riff), double-tracked (a second take of the same riff with its own timing and velocity,
often on another soundfont or program, "panned apart": the model hears mono, so the two
takes are summed), sometimes a lead line with bends and vibrato on top. Every guitar take
is a General MIDI guitar of a training soundfont (overdriven 29 or distortion 30, or a
clean 27/28 into the amplifier) through high gain (a high-pass for tightness, pedalboard's
``Distortion``) and a real cabinet or amplifier impulse response of ``guitarix-common``
(``Convolution``). Under them a drum kit (a soundfont kit or an avldrums recorded kit) on
a rock, metal or half-time groove and a bass doubling the riff's roots an octave down.
Mixed loud: the guitars the reference level, drums and bass near it, bus compression and
a limiter. Labels: ``electric_guitar``, plus ``drums`` and ``bass`` when they play (always
within ``LEVELS_DB`` of the guitars, so each is at a labelled level, training/CORPUS.md).

Contrast (``other``, ``along``; both 0 by default): on a share ``other`` of the clips
another instrument (``OTHER_LABELS``, a training soundfont, no guitar amplifier) plays the
riff instead of the guitars, over the same drums and bass; on a share ``along`` of the
guitar clips one such instrument plays along (chords, a pad or a melody) at a labelled
level. Either way it is labelled, so that a loud, dense mix with drums does not by itself
mean a guitar.

Each clip's randomness is ``default_rng([seed, index, attempt])``, so a clip renders the
same whichever worker renders it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .audio import CLIP_SAMPLES, RENDER_SAMPLES, RENDER_SECONDS, SAMPLE_RATE, SILENCE_RMS, active_fraction, db_to_gain, rms
from .effects import _pb, random_bus_compression, random_limiter
from .material import (BAND_ROLES, GENERATORS, MusicContext, Note, Phrase, add_bend, drum_phrase,
                       fit_to_range, playable_range, random_context)
from .sources import AVLDRUMS_KITS, SOUNDFONTS, render_avldrums, render_fluid, soundfont_coverage
from .stems import DRUM_BANK, Stem, first_usable

log = logging.getLogger(__name__)

GUITAR_SOUNDFONTS = ("generaluser", "fluidr3", "sfgmbank")  # training soundfonts only (never timgm6mb)
DISTORTED_PROGRAMS = (29, 30)  # GM overdriven and distortion guitar
CLEAN_PROGRAMS = (27, 28)  # clean and muted electric guitar, into the amplifier
BASS_PROGRAMS = (33, 34)  # fingered and picked bass
ROCK_KITS = (0, 8, 16)  # GM standard, room and power kits (bank 128)
DRUM_STYLES = ("rock", "metal", "halftime")
IR_DIR = Path("/usr/share/gx_head/sounds")  # guitarix-common: amps/ and bands/ (cabinet) responses
RIFFS = ("power_chords", "chug", "sustained", "single_note")
# RMS of each part re the guitars' (dB, drawn uniformly): all at a labelled level
LEVELS_DB = {"drums": (-3.0, 2.0), "bass": (-6.0, -1.0), "along": (-4.0, 0.0)}
# what plays the riff instead of the guitars, or along with them (contrast)
OTHER_LABELS = ("synthesizer", "organ", "piano", "saxophone", "trumpet", "trombone", "violin", "cello",
                "clarinet", "flute", "accordion")
POLYPHONIC = frozenset({"synthesizer", "organ", "piano", "accordion"})
PEAK_DBFS = (-3.0, -0.3)  # loud, as mastered
ACTIVE_FRACTION = 0.3  # a labelled part sounds in >= 30 % of the clip's frames


class RockError(RuntimeError):
    """The material the band renderer needs is missing."""


@lru_cache(maxsize=None)
def impulse_responses() -> tuple[Path, ...]:
    """guitarix-common's amplifier and cabinet responses (wav), sorted."""
    files = tuple(sorted(IR_DIR.glob("*/*.wav")))
    if not files:
        raise RockError(f"no impulse responses under {IR_DIR} (apt-get install guitarix-common)")
    return files


@lru_cache(maxsize=16)
def _load_ir(path: Path) -> np.ndarray:
    """An impulse response at SAMPLE_RATE, mono, unit energy."""
    import soundfile as sf
    from scipy.signal import resample_poly

    ir, sr = sf.read(str(path), dtype="float32", always_2d=True)
    ir = ir.mean(axis=1)
    if sr != SAMPLE_RATE:
        g = np.gcd(int(sr), SAMPLE_RATE)
        ir = resample_poly(ir, SAMPLE_RATE // g, int(sr) // g).astype(np.float32)
    return (ir / (np.sqrt(np.sum(ir.astype(np.float64) ** 2)) + 1e-12)).astype(np.float32)


# ---------------------------------------------------------------------------- the parts


def _power_chord(root: int, octave: bool) -> list[int]:
    return [root, root + 7] + ([root + 12] if octave else [])


def riff(rng: np.random.Generator, ctx: MusicContext, style: str, dyn: float) -> tuple[Phrase, list[tuple[float, float, int]]]:
    """The rhythm guitar's riff and its roots as (start, end, key) for the bass."""
    beat = ctx.beat
    low = int(rng.choice([40, 40, 38]))  # roots on the low strings from E2 (or drop-D, D2) up an octave
    roots = []
    t = 0.0
    while t < RENDER_SECONDS:
        pc = ctx.chord_pcs(t)[0]
        roots.append((t, low + (pc - low) % 12))
        t += beat * ctx.beats_per_chord
    notes: list[Note] = []
    bass: list[tuple[float, float, int]] = []

    def root_at(t: float) -> int:
        return [r for s, r in roots if s <= t + 1e-9][-1]

    def vel(base: float, jitter: float = 8.0) -> int:
        return int(np.clip(rng.normal(base, jitter), 20, 127))

    octave = bool(rng.random() < 0.5)
    if style == "chug":  # palm-muted eighths (or sixteenths) on the root, accents on power chords
        step = beat / (4 if ctx.bpm < 100 and rng.random() < 0.5 else 2)
        accents = {int(k) for k in rng.choice(8, size=int(rng.integers(1, 4)), replace=False)}
        k = 0
        t = 0.0
        while t < RENDER_SECONDS:
            r = root_at(t)
            if k % 8 in accents:
                keys, dur, v = _power_chord(r, octave), step * rng.uniform(0.8, 0.98), dyn + 12
            else:
                keys, dur, v = [r] if rng.random() < 0.6 else [r, r + 7], step * rng.uniform(0.25, 0.5), dyn - 6
            notes += [Note(t, t + dur, key, vel(v)) for key in keys]
            bass.append((t, t + dur, r))
            t += step
            k += 1
    elif style == "power_chords":  # a rhythm of power chords, moving with the harmony
        step = beat / 2
        pattern = [bool(rng.random() < 0.65) or i == 0 for i in range(8)]
        k = 0
        t = 0.0
        while t < RENDER_SECONDS:
            if pattern[k % 8]:
                r = root_at(t) + (int(rng.choice([0, 0, 0, 3, 5, 7])) if k % 8 == 6 else 0)
                dur = step * int(rng.integers(1, 3)) * rng.uniform(0.85, 0.98)
                notes += [Note(t, t + dur, key, vel(dyn + (8 if k % 4 == 0 else 0))) for key in _power_chord(r, octave)]
                bass.append((t, t + dur, r))
            t += step
            k += 1
    elif style == "sustained":  # ringing power chords, one per chord change, re-struck sometimes
        for s, r in roots:
            length = beat * ctx.beats_per_chord
            hits = [s] + ([s + length / 2] if rng.random() < 0.4 else [])
            for i, h in enumerate(hits):
                end = hits[i + 1] if i + 1 < len(hits) else s + length
                notes += [Note(h, end - 0.02, key, vel(dyn + 5)) for key in _power_chord(r, True)]
                bass.append((h, end - 0.02, r))
    else:  # single_note: a low riff in the minor pentatonic from the root, eighths
        step = beat / 2
        scale = (0, 3, 5, 7, 10, 12)
        motif = [int(rng.choice(scale)) if rng.random() < 0.6 else 0 for _ in range(8)]
        k = 0
        t = 0.0
        while t < RENDER_SECONDS:
            r = root_at(t)
            dur = step * rng.uniform(0.4, 0.9)
            notes.append(Note(t, t + dur, r + motif[k % 8], vel(dyn)))
            if k % 2 == 0:
                bass.append((t, t + step * 1.8, r))
            t += step
            k += 1
    return Phrase(notes, f"rock:{style}"), bass


def second_take(rng: np.random.Generator, phrase: Phrase) -> Phrase:
    """The same part played again: each note a few ms early or late, its own velocity."""
    notes = []
    for n in phrase.notes:
        dt = float(rng.normal(0.0, 0.008))
        notes.append(Note(max(0.0, n.start + dt), max(0.0, n.end + dt) + 0.01, n.pitch,
                          int(np.clip(n.velocity + rng.normal(0, 6), 20, 127))))
    return Phrase(notes, phrase.origin + "+take2")


def lead(rng: np.random.Generator, ctx: MusicContext, dyn: float) -> Phrase:
    """A lead line an octave or two above the riff: pentatonic, with a bend and vibrato."""
    scale = (0, 3, 5, 7, 10)
    base = 64 + (ctx.key - 64) % 12
    keys = [base + s + 12 * o for o in (0, 1) for s in scale]
    notes = []
    t = float(rng.uniform(0.0, 0.3))
    i = int(rng.integers(len(keys)))
    while t < RENDER_SECONDS:
        dur = ctx.beat * float(rng.choice([0.5, 1.0, 1.5, 2.0]))
        i = int(np.clip(i + rng.integers(-2, 3), 0, len(keys) - 1))
        notes.append(Note(t, t + dur * 0.95, keys[i], int(np.clip(rng.normal(dyn + 10, 8), 40, 127))))
        t += dur
    phrase = add_bend(rng, Phrase(notes, "rock:lead"))
    depth = int(rng.integers(40, 110))  # vibrato (CC1, at the soundfont's own rate) from 0.3 s on
    modulation = [(0.0, 0), (0.3, depth)]
    return Phrase(phrase.notes, phrase.origin, bends=phrase.bends, modulation=modulation)


# ---------------------------------------------------------------------------- the sound


def amp(x: np.ndarray, rng: np.random.Generator, ir: Path, clean: bool) -> tuple[np.ndarray, str]:
    """High gain: a tight high-pass, gain into ``Distortion``, a cabinet response, a top cut."""
    from pedalboard import Convolution, Distortion, HighpassFilter, LowpassFilter, Pedalboard

    peak = float(np.max(np.abs(x)))
    if peak <= 0:
        return x, "silent"
    x = (x / peak).astype(np.float32)
    drive = float(rng.uniform(25.0, 40.0) if clean else rng.uniform(12.0, 32.0))
    hp = float(rng.uniform(70.0, 160.0))
    lp = float(rng.uniform(5000.0, 9000.0))
    board = Pedalboard([HighpassFilter(hp), Distortion(drive_db=drive),
                        Convolution(_load_ir(ir)[None, :], sample_rate=SAMPLE_RATE),
                        LowpassFilter(lp)])
    y = _pb(board, x)
    return y, f"amp(hp={hp:.0f}Hz,drive={drive:.0f}dB,ir={ir.parent.name}/{ir.stem},lp={lp:.0f}Hz)"


@dataclass
class RockClip:
    audio: np.ndarray  # (CLIP_SAMPLES,) float32
    labels: tuple[str, ...]
    parts: list[dict]  # what each part is: role, source, program, material, level
    effects: list[str]


def _soundfont_ok(name: str) -> bool:
    return SOUNDFONTS[name].exists()


@lru_cache(maxsize=None)
def _programs(font: str, label: str) -> tuple[int, ...]:
    return tuple(p for b, p in soundfont_coverage(font).programs.get(label, ()) if b == 0)


def _other_part(rng: np.random.Generator, fonts: list[str], ctx: MusicContext, riff_phrase: Phrase | None,
                dyn: float) -> tuple[np.ndarray, dict] | None:
    """Another instrument: the riff itself (``riff_phrase``), or a part of its own along the guitars."""
    label = str(rng.choice(OTHER_LABELS))
    font = fonts[int(rng.integers(len(fonts)))]
    programs = _programs(font, label)
    if not programs:
        return None
    program = int(rng.choice(programs))
    lo, hi = playable_range(label, program)
    if riff_phrase is not None:
        notes = riff_phrase.notes
        if label not in POLYPHONIC:  # one line: the lowest note of each onset
            onsets: dict[float, Note] = {}
            for n in notes:
                if n.start not in onsets or n.pitch < onsets[n.start].pitch:
                    onsets[n.start] = n
            notes = sorted(onsets.values(), key=lambda n: n.start)
        keys = fit_to_range([n.pitch for n in notes], lo, hi)
        phrase = Phrase([Note(n.start, n.end, k, n.velocity) for n, k in zip(notes, keys)], riff_phrase.origin + ":" + label)
    else:
        styles = BAND_ROLES.get(label, ("melody",)) if label in POLYPHONIC else ("melody", "sustained")
        phrase = GENERATORS[str(rng.choice(styles))](rng, ctx, lo, hi, dyn)
    if not phrase.notes:
        return None
    audio = render_fluid(SOUNDFONTS[font], [Stem(label, 0, program, phrase)])[0]
    return audio, {"role": label, "source": font, "program": program, "origin": phrase.origin}


def render_rock(rng: np.random.Generator, other: float = 0.0, along: float = 0.0) -> RockClip | None:
    """One band clip, or None when a part came out silent (the caller draws again)."""
    fonts = [f for f in GUITAR_SOUNDFONTS if _soundfont_ok(f)]
    if not fonts:
        raise RockError(f"none of the soundfonts {GUITAR_SOUNDFONTS} is installed")
    irs = impulse_responses()
    ctx = random_context(rng, bpm=float(rng.uniform(80, 200)))
    ctx = MusicContext(ctx.bpm, ctx.key, str(rng.choice(["minor", "dorian", "harmonic_minor", "mixolydian"])),
                       ctx.progression, ctx.beats_per_chord, 4)
    style = str(rng.choice(RIFFS, p=[0.3, 0.35, 0.15, 0.2]))
    dyn = float(rng.uniform(80, 115))
    phrase, roots = riff(rng, ctx, style, dyn)
    takes = [phrase] + ([second_take(rng, phrase)] if rng.random() < 0.7 else [])
    parts: list[dict] = []
    effects: list[str] = []
    guitars = np.zeros(RENDER_SAMPLES, dtype=np.float32)
    pieces = [(p, "rhythm") for p in takes] + ([(lead(rng, ctx, dyn), "lead")] if rng.random() < 0.3 else [])
    instead = other > 0 and rng.random() < other
    labels = ["electric_guitar"]
    if instead:  # another instrument plays the riff; no guitar at all
        part = _other_part(rng, fonts, ctx, phrase, dyn)
        if part is None or rms(part[0]) < SILENCE_RMS:
            return None
        guitars += part[0] / np.float32(rms(part[0]))
        parts.append({**part[1], "gain_db": 0.0})
        labels = [part[1]["role"]]
        pieces = []
    for i, (p, role) in enumerate(pieces):
        font = fonts[int(rng.integers(len(fonts)))]
        clean = bool(rng.random() < 0.2)
        program = int(rng.choice(CLEAN_PROGRAMS if clean else DISTORTED_PROGRAMS))
        audio = render_fluid(SOUNDFONTS[font], [Stem("electric_guitar", 0, program, p)])[0]
        if rms(audio) < SILENCE_RMS:
            return None
        ir = irs[int(rng.integers(len(irs)))]
        y, desc = amp(audio, rng, ir, clean)
        gain_db = 0.0 if role == "rhythm" else float(rng.uniform(-4.0, 0.0))
        guitars += y * np.float32(db_to_gain(gain_db) / max(rms(y), 1e-9))
        parts.append({"role": f"guitar_{role}", "source": font, "program": program, "origin": p.origin,
                      "gain_db": round(gain_db, 2)})
        effects.append(desc)
    pre = int(rng.integers(0, RENDER_SAMPLES - CLIP_SAMPLES + 1))
    window = slice(pre, pre + CLIP_SAMPLES)
    ref = rms(guitars[window])
    if ref < SILENCE_RMS or active_fraction(guitars[window]) < ACTIVE_FRACTION:
        return None
    mix = guitars / np.float32(ref)
    if not instead and along > 0 and rng.random() < along:
        part = _other_part(rng, fonts, ctx, None, dyn)
        if part is None:
            return None
        if not _add_part(mix, part[0], window, rng, "along", parts, part[1]["source"], part[1]["origin"],
                         role=part[1]["role"]):
            return None
        labels.append(part[1]["role"])
    if rng.random() < 0.9:
        drum_style = str(rng.choice(DRUM_STYLES))
        drums = drum_phrase(rng, ctx, float(rng.uniform(90, 120)), styles=(drum_style,))
        if rng.random() < 0.4 and all(p.exists() for p in AVLDRUMS_KITS.values()):
            kit = int(rng.choice(sorted(AVLDRUMS_KITS)))
            audio, where = render_avldrums([Stem("drums", 0, kit, drums)])[0], f"avldrums:{kit}"
        else:
            kit = int(rng.choice(ROCK_KITS))
            font = fonts[int(rng.integers(len(fonts)))]
            audio, where = render_fluid(SOUNDFONTS[font], [Stem("drums", DRUM_BANK, kit, drums)])[0], f"{font}:{kit}"
        if _add_part(mix, audio, window, rng, "drums", parts, where, drum_style):
            labels.append("drums")
        else:
            return None
    if rng.random() < 0.8:
        program = int(rng.choice(BASS_PROGRAMS))
        shift = -12 if min(r for _, _, r in roots) - 12 >= 28 else 0
        bass = Phrase([Note(s, e, r + shift, int(np.clip(rng.normal(dyn, 8), 30, 127))) for s, e, r in roots], "rock:bass_roots")
        font = fonts[int(rng.integers(len(fonts)))]
        audio = render_fluid(SOUNDFONTS[font], [Stem("bass", 0, program, bass)])[0]
        if rng.random() < 0.5:  # a little drive, as a rock bass often has
            from pedalboard import Distortion

            audio = _pb(Distortion(drive_db=float(rng.uniform(4.0, 12.0))), audio / max(float(np.max(np.abs(audio))), 1e-9))
        if _add_part(mix, audio, window, rng, "bass", parts, f"{font}:{program}", bass.origin):
            labels.append("bass")
        else:
            return None
    mix, comp = random_bus_compression(mix, rng)
    mix, lim = random_limiter(mix, rng, hard_prob=0.4)
    effects += [comp, lim]
    clip = mix[window]
    peak = float(np.max(np.abs(clip)))
    if peak <= 0:
        return None
    clip = np.clip(clip * np.float32(db_to_gain(rng.uniform(*PEAK_DBFS)) / peak), -1.0, 1.0).astype(np.float32)
    return RockClip(clip, tuple(sorted(labels)), parts, effects)


def _add_part(mix: np.ndarray, audio: np.ndarray, window: slice, rng: np.random.Generator, level_of: str,
              parts: list[dict], where: str, origin: str, role: str | None = None) -> bool:
    """Add ``audio`` to ``mix`` at a labelled level (``LEVELS_DB[level_of]``) re the lead part (RMS 1 in the window)."""
    level = rms(audio[window])
    if level < SILENCE_RMS or active_fraction(audio[window]) < ACTIVE_FRACTION:
        return False
    gain_db = float(rng.uniform(*LEVELS_DB[level_of]))
    mix += audio * np.float32(db_to_gain(gain_db) / level)
    parts.append({"role": role or level_of, "source": where, "origin": origin, "gain_db": round(gain_db, 2)})
    return True


def render_rock_clip(seed: int, index: int, other: float = 0.0, along: float = 0.0) -> tuple[RockClip, int]:
    """Clip ``index`` of a set: (clip, attempt); raises RenderError after RENDER_ATTEMPTS."""
    return first_usable(seed, index, lambda rng: render_rock(rng, other, along), f"band clip {index}")
