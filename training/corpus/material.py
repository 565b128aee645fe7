"""What the instruments play: note lists in seconds, from music21 scores or generated.

Every generator returns a :class:`Phrase` covering ``0 .. RENDER_SECONDS`` of music at a
shared :class:`MusicContext` (tempo, key, chord progression), so the stems of one clip
play together. Pitched material is moved by octaves into the instrument's playable range
(``playable_range``). Drum grooves use General MIDI percussion keys.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .audio import RENDER_SECONDS

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Note:
    start: float  # seconds from render start
    end: float  # seconds; note-off
    pitch: int  # MIDI key
    velocity: int  # 1..127


@dataclass
class Phrase:
    """One stem's performance: notes plus optional pitch bend and modulation (CC1)."""

    notes: list[Note]
    origin: str  # where the notes come from, e.g. "score:bach/bwv66.6.mxl" or "gen:arpeggio"
    bends: list[tuple[float, int]] = field(default_factory=list)  # (s, -8192..8191)
    modulation: list[tuple[float, int]] = field(default_factory=list)  # (s, CC1 0..127)


@dataclass(frozen=True)
class MusicContext:
    """What the stems of one clip share: tempo, key, metre and harmony."""

    bpm: float
    key: int  # pitch class of the tonic, 0 = C
    mode: str  # key of SCALES
    progression: tuple[int, ...]  # scale degree (0-based) of each chord
    beats_per_chord: int
    beats_per_bar: int

    @property
    def beat(self) -> float:
        return 60.0 / self.bpm

    def scale_pcs(self) -> list[int]:
        return [(self.key + s) % 12 for s in SCALES[self.mode]]

    def chord_pcs(self, t: float, sevenths: bool = False) -> list[int]:
        """Pitch classes of the chord sounding at ``t`` seconds, root first."""
        index = int(t / (self.beat * self.beats_per_chord)) % len(self.progression)
        degree = self.progression[index]
        scale = SCALES[self.mode]
        steps = (0, 2, 4, 6) if sevenths else (0, 2, 4)
        return [(self.key + scale[(degree + s) % 7]) % 12 for s in steps]


SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
}
PROGRESSIONS: tuple[tuple[int, ...], ...] = (
    (0, 3, 4, 0), (0, 5, 3, 4), (0, 4, 5, 3), (1, 4, 0, 0), (0, 0, 3, 3),
    (5, 3, 0, 4), (0, 3, 0, 4), (0, 6, 5, 4), (0, 2, 3, 4), (0,),
)


def random_context(rng: np.random.Generator, bpm: float | None = None) -> MusicContext:
    bpm = float(rng.uniform(60, 180)) if bpm is None else bpm
    return MusicContext(
        bpm=bpm,
        key=int(rng.integers(12)),
        mode=str(rng.choice(list(SCALES), p=[0.4, 0.3, 0.1, 0.12, 0.08])),
        progression=PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))],
        beats_per_chord=int(rng.choice([2, 4])) if bpm < 110 else int(rng.choice([4, 8])),
        beats_per_bar=int(rng.choice([4, 3], p=[0.8, 0.2])),
    )


# ---------------------------------------------------------------------------- ranges

# Playable (comfortable) MIDI key range per label; material is moved by octaves into it.
LABEL_RANGES: dict[str, tuple[int, int]] = {
    "piano": (28, 103),
    "mallet_percussion": (53, 96),
    "organ": (36, 96),
    "accordion": (48, 89),
    "acoustic_guitar": (40, 84),  # E2 - C6
    "electric_guitar": (40, 88),
    "bass": (28, 55),  # E1 - G3
    "violin": (55, 100),  # G3 - E7
    "cello": (36, 81),  # C2 - A5
    "trumpet": (54, 82),  # F#3 - Bb5
    "trombone": (40, 74),  # E2 - D5 (F5 = 77 is the top of the range, rarely played)
    "saxophone": (49, 81),
    "clarinet": (50, 91),  # D3 - G6
    "flute": (60, 96),  # C4 - C7
    "synthesizer": (36, 96),
    "banjo": (48, 84),  # C3 - C6
}
# Programs whose range differs from their label's.
PROGRAM_RANGES: dict[int, tuple[int, int]] = {
    8: (60, 105),  # celesta
    9: (72, 105),  # glockenspiel
    10: (60, 96),  # music box
    11: (53, 89),  # vibraphone
    12: (45, 96),  # marimba
    13: (65, 100),  # xylophone
    41: (48, 88),  # viola
    64: (56, 87),  # soprano sax
    65: (49, 81),  # alto sax
    66: (44, 76),  # tenor sax
    67: (36, 69),  # baritone sax
    72: (74, 105),  # piccolo
}


def playable_range(label: str, program: int | None) -> tuple[int, int]:
    if program is not None and program in PROGRAM_RANGES:
        return PROGRAM_RANGES[program]
    return LABEL_RANGES[label]


def fit_to_range(pitches: list[int], lo: int, hi: int) -> list[int]:
    """Move a passage by whole octaves so its median sits mid-range, then fold outliers."""
    if not pitches:
        return []
    centre = (lo + hi) / 2.0
    shift = 12 * int(round((centre - float(np.median(pitches))) / 12.0))
    out = []
    for p in pitches:
        q = p + shift
        while q < lo:
            q += 12
        while q > hi:
            q -= 12
        out.append(max(lo, q))
    return out


def _keys_in_range(pcs: list[int], lo: int, hi: int) -> list[int]:
    return [p for p in range(lo, hi + 1) if p % 12 in pcs]


def _vel(rng: np.random.Generator, base: float, jitter: float = 8.0) -> int:
    return int(np.clip(round(base + rng.normal(0, jitter)), 1, 127))


def _steps(ctx: MusicContext, step_beats: float, t0: float = 0.0) -> np.ndarray:
    """Grid times in seconds (step of ``step_beats`` beats) covering the render."""
    step = ctx.beat * step_beats
    return np.arange(t0, RENDER_SECONDS, step)


def _legal_step(ctx: MusicContext, options: list[float], max_rate: float = 11.0) -> float:
    """Subdivisions (in beats) that keep a line under ``max_rate`` notes per second."""
    ok = [s for s in options if 1.0 / (ctx.beat * s) <= max_rate]
    return ok if ok else [max(options)]


# ---------------------------------------------------------------------------- generators
# Each takes (rng, ctx, lo, hi, dynamics) and returns a Phrase.


def gen_scale(rng, ctx, lo, hi, dyn) -> Phrase:
    keys = _keys_in_range(ctx.scale_pcs(), lo, hi)
    step = float(rng.choice(_legal_step(ctx, [0.25, 1 / 3, 0.5, 1.0])))
    legato = rng.uniform(0.6, 1.0)
    i = int(rng.integers(len(keys)))
    direction = int(rng.choice([-1, 1]))
    notes = []
    for k, t in enumerate(_steps(ctx, step)):
        accent = 12 if k % int(round(1 / step) or 1) == 0 else 0
        notes.append(Note(t, t + ctx.beat * step * legato, keys[i], _vel(rng, dyn + accent, 6)))
        if not 0 <= i + direction < len(keys) or rng.random() < 0.05:
            direction = -direction
        i = int(np.clip(i + direction, 0, len(keys) - 1))
    return Phrase(notes, "gen:scale")


def _chord_keys(ctx: MusicContext, t: float, lo: int, hi: int, centre: int, span: int,
                sevenths: bool) -> list[int]:
    pcs = ctx.chord_pcs(t, sevenths)
    a = max(lo, centre - span // 2)
    b = min(hi, a + span)
    keys = _keys_in_range(pcs, a, b)
    return keys if len(keys) >= 2 else _keys_in_range(pcs, lo, hi)


def gen_arpeggio(rng, ctx, lo, hi, dyn) -> Phrase:
    step = float(rng.choice(_legal_step(ctx, [0.25, 1 / 3, 0.5])))
    centre = int(rng.integers(lo + 6, max(lo + 7, hi - 6)))
    span = int(rng.integers(12, 26))
    pattern = str(rng.choice(["up", "down", "updown", "broken", "random"]))
    ring = rng.uniform(0.8, 4.0)  # let notes ring (piano pedal, guitar, mallets)
    sevenths = bool(rng.random() < 0.3)
    notes = []
    for k, t in enumerate(_steps(ctx, step)):
        keys = _chord_keys(ctx, t, lo, hi, centre, span, sevenths)
        n = len(keys)
        if pattern == "up":
            idx = k % n
        elif pattern == "down":
            idx = n - 1 - k % n
        elif pattern == "updown":
            cyc = max(1, 2 * n - 2)
            j = k % cyc
            idx = j if j < n else cyc - j
        elif pattern == "broken":
            idx = (0, 2, 1, 3)[k % 4] % n
        else:
            idx = int(rng.integers(n))
        dur = ctx.beat * step * ring
        notes.append(Note(t, t + dur, keys[idx], _vel(rng, dyn + (8 if k % 4 == 0 else 0), 6)))
    return Phrase(notes, "gen:arpeggio")


RHYTHMS_8THS: tuple[tuple[int, ...], ...] = (
    (1, 0, 0, 0, 0, 0, 0, 0), (1, 0, 0, 0, 1, 0, 0, 0), (1, 0, 1, 0, 1, 0, 1, 0),
    (0, 1, 0, 1, 0, 1, 0, 1), (1, 0, 0, 1, 0, 0, 1, 0), (1, 0, 1, 1, 0, 1, 1, 0),
    (1, 1, 1, 1, 1, 1, 1, 1), (1, 0, 0, 1, 0, 1, 0, 0),
)


def gen_chords(rng, ctx, lo, hi, dyn) -> Phrase:
    rhythm = RHYTHMS_8THS[int(rng.integers(len(RHYTHMS_8THS)))]
    n_voices = int(rng.integers(3, 6))
    centre = int(rng.integers(max(lo, 48), max(max(lo, 48) + 1, min(hi, 76))))
    legato = rng.uniform(0.35, 1.0)
    sevenths = bool(rng.random() < 0.35)
    notes = []
    for k, t in enumerate(_steps(ctx, 0.5)):
        if not rhythm[k % 8]:
            continue
        run = 1  # hold until the next hit
        while run < 8 and not rhythm[(k + run) % 8]:
            run += 1
        keys = _chord_keys(ctx, t, lo, hi, centre, 14, sevenths)[:n_voices]
        bass = _keys_in_range(ctx.chord_pcs(t)[:1], max(lo, centre - 24), centre - 5)
        if bass and rng.random() < 0.6:
            keys = [bass[-1]] + keys
        base = dyn + (6 if k % 8 == 0 else 0)
        for p in keys:
            jitter = rng.uniform(0, 0.012)
            notes.append(Note(t + jitter, t + ctx.beat * 0.5 * run * legato, p, _vel(rng, base, 5)))
    return Phrase(notes, "gen:chords")


def _guitar_voicing(pcs: list[int], lo: int, n_strings: int) -> list[int]:
    """A guitar-like spread voicing: root low, chord tones stacked with open spacing."""
    root = _keys_in_range(pcs[:1], lo, lo + 11)[0]
    keys = [root]
    while len(keys) < n_strings:
        nxt = keys[-1] + 3
        while nxt % 12 not in pcs:
            nxt += 1
        keys.append(nxt)
    return keys


def gen_strum(rng, ctx, lo, hi, dyn) -> Phrase:
    step = 0.5 if ctx.bpm > 90 or rng.random() < 0.5 else 0.25
    pattern = [rng.random() < p for p in ([0.95, 0.4, 0.8, 0.6] * 4)]
    n_strings = int(rng.integers(4, 7))
    spread = rng.uniform(0.006, 0.03)  # seconds between strings
    muted = bool(rng.random() < 0.2)
    base_lo = int(min(hi - 24, lo + rng.integers(0, 8)))
    notes = []
    for k, t in enumerate(_steps(ctx, step)):
        if not pattern[k % len(pattern)]:
            continue
        keys = [p for p in _guitar_voicing(ctx.chord_pcs(t), base_lo, n_strings) if p <= hi]
        down = k % 2 == 0
        if not down:
            keys = keys[::-1][: max(2, len(keys) - 2)]
        length = ctx.beat * step * (0.4 if muted else rng.uniform(1.0, 2.5))
        v = dyn + (8 if down else -6)
        for j, p in enumerate(keys):
            s = t + j * spread
            notes.append(Note(s, s + length, p, _vel(rng, v - j, 5)))
    return Phrase(notes, "gen:strum")


def gen_riff(rng, ctx, lo, hi, dyn) -> Phrase:
    minor = ctx.mode in ("minor", "dorian", "harmonic_minor")
    penta = (0, 3, 5, 7, 10) if minor else (0, 2, 4, 7, 9)
    if rng.random() < 0.3:
        penta = (0, 3, 5, 6, 7, 10)  # blues
    pcs = [(ctx.key + s) % 12 for s in penta]
    a = int(rng.integers(lo, max(lo + 1, hi - 14)))
    keys = _keys_in_range(pcs, a, min(hi, a + 17))
    step = float(rng.choice(_legal_step(ctx, [0.25, 0.5])))
    length = int(rng.choice([4, 8, 16]))
    motif = []
    for s in range(length):
        if s == 0 or rng.random() < 0.65:
            motif.append((s, int(rng.integers(len(keys))), int(rng.integers(1, 3))))
    notes = []
    for k, t in enumerate(_steps(ctx, step)):
        for s, ki, d in motif:
            if k % length == s:
                dur = ctx.beat * step * d * rng.uniform(0.5, 0.95)
                notes.append(Note(t, t + dur, keys[ki], _vel(rng, dyn + (10 if s == 0 else 0), 7)))
    return Phrase(notes, "gen:riff")


def gen_melody(rng, ctx, lo, hi, dyn) -> Phrase:
    keys = _keys_in_range(ctx.scale_pcs(), lo, hi)
    i = int(rng.integers(len(keys) // 4, max(len(keys) // 4 + 1, 3 * len(keys) // 4)))
    values = [0.25, 0.5, 0.5, 1.0, 1.0, 1.5, 2.0] if ctx.bpm < 130 else [0.5, 1.0, 1.0, 1.5, 2.0]
    t = 0.0
    notes = []
    while t < RENDER_SECONDS:
        d = float(rng.choice(values)) * ctx.beat
        if rng.random() < 0.08:  # a breath
            t += d
            continue
        step = int(rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]))
        i = int(np.clip(i + step, 0, len(keys) - 1))
        notes.append(Note(t, t + d * rng.uniform(0.7, 1.0), keys[i], _vel(rng, dyn, 9)))
        t += d
    return Phrase(notes, "gen:melody")


def gen_sustained(rng, ctx, lo, hi, dyn, voices: int = 1) -> Phrase:
    pcs_at = ctx.chord_pcs
    t = 0.0
    centre = int(rng.integers(lo + 4, max(lo + 5, hi - 8)))
    notes = []
    while t < RENDER_SECONDS:
        d = rng.uniform(0.8, 3.5)
        keys = _keys_in_range(pcs_at(t), max(lo, centre - 7), min(hi, centre + 9)) or [centre]
        pick = rng.choice(keys, size=min(voices, len(keys)), replace=False)
        for p in pick:
            notes.append(Note(t, t + d * rng.uniform(0.85, 1.0), int(p), _vel(rng, dyn, 6)))
        t += d
    mod = []
    if rng.random() < 0.5:  # delayed vibrato on long notes
        depth = int(rng.integers(20, 90))
        mod = [(0.0, 0), (rng.uniform(0.3, 1.2), depth)]
    return Phrase(notes, "gen:sustained", modulation=mod)


def gen_bassline(rng, ctx, lo, hi, dyn) -> Phrase:
    style = str(rng.choice(["roots", "root_fifth", "walking", "octaves", "funk", "pedal"]))
    step = 0.25 if style == "funk" else (1.0 if style in ("walking", "root_fifth") else 0.5)
    if style == "pedal":
        step = float(rng.choice([1.0, 2.0]))
    funk = [rng.random() < p for p in (0.95, 0.3, 0.5, 0.6, 0.3, 0.5, 0.7, 0.3) * 2]
    legato = rng.uniform(0.5, 0.95)
    notes = []
    top = min(hi, lo + 19)
    for k, t in enumerate(_steps(ctx, step)):
        chord = ctx.chord_pcs(t)
        roots = _keys_in_range(chord[:1], lo, top)
        root = roots[0] if roots else lo
        if style == "roots":
            p = root
        elif style == "root_fifth":
            p = root if k % 2 == 0 else root + 7
        elif style == "octaves":
            p = root + (12 if k % 2 else 0)
        elif style == "walking":
            p = _keys_in_range([chord[k % 3]], root, root + 12)[0] if k % 4 != 3 else root + int(
                rng.choice([-1, 1, 2]))
        elif style == "funk":
            if not funk[k % 16]:
                continue
            p = root + int(rng.choice([0, 0, 0, 12, 7, 10]))
        else:
            p = root
        while p > hi:
            p -= 12
        while p < lo:
            p += 12
        notes.append(Note(t, t + ctx.beat * step * legato, p, _vel(rng, dyn + (8 if k % 4 == 0 else 0))))
    return Phrase(notes, f"gen:bass_{style}")


def gen_repeated(rng, ctx, lo, hi, dyn) -> Phrase:
    """Repeated notes or dyads (tremolo-ish ostinato), e.g. banjo rolls, mallet ostinati."""
    step = float(rng.choice(_legal_step(ctx, [0.25, 0.5])))
    keys_at = lambda t: _chord_keys(ctx, t, lo, hi, (lo + hi) // 2, 12, False)
    order = [int(x) for x in rng.permutation(3)]
    notes = []
    for k, t in enumerate(_steps(ctx, step)):
        keys = keys_at(t)
        p = keys[order[k % 3] % len(keys)]
        notes.append(Note(t, t + ctx.beat * step * rng.uniform(0.7, 2.0), p, _vel(rng, dyn, 7)))
    return Phrase(notes, "gen:roll")


def add_bend(rng: np.random.Generator, phrase: Phrase) -> Phrase:
    """A bend gesture on one longer note (guitar string bend, synth/sax scoop): the wheel
    ramps to +1 or +2 semitones (GM default range +-2) and back at the note's end."""
    long_notes = [n for n in phrase.notes if n.end - n.start >= 0.3]
    if not long_notes:
        return phrase
    n = long_notes[int(rng.integers(len(long_notes)))]
    target = int(rng.choice([4096, 8191]))
    t0 = n.start + rng.uniform(0.03, 0.15)
    ramp = rng.uniform(0.08, 0.25)
    bends = [(t0 + ramp * k / 8, int(target * k / 8)) for k in range(1, 9)]
    bends.append((n.end, 0))
    return Phrase(phrase.notes, phrase.origin + "+bend", bends=bends, modulation=phrase.modulation)


Generator = Callable[..., Phrase]
GENERATORS: dict[str, Generator] = {
    "scale": gen_scale,
    "arpeggio": gen_arpeggio,
    "chords": gen_chords,
    "strum": gen_strum,
    "riff": gen_riff,
    "melody": gen_melody,
    "sustained": gen_sustained,
    "pad": lambda rng, ctx, lo, hi, dyn: gen_sustained(rng, ctx, lo, hi, dyn, voices=3),
    "bassline": gen_bassline,
    "roll": gen_repeated,
}

# Which generated styles suit each label, with weights. "score" (a music21 excerpt) and
# "score_poly" (several parts of one score, for keyboard instruments) are added below.
LABEL_STYLES: dict[str, dict[str, float]] = {
    "piano": {"score_poly": 3, "score": 1, "chords": 2, "arpeggio": 2, "scale": 1, "melody": 1},
    "mallet_percussion": {"score": 2, "arpeggio": 2, "scale": 1, "melody": 2, "roll": 1, "chords": 1},
    "organ": {"score_poly": 3, "pad": 2, "chords": 2, "score": 1, "melody": 1},
    "accordion": {"score": 2, "melody": 2, "chords": 2, "pad": 1, "score_poly": 1},
    "acoustic_guitar": {"strum": 3, "arpeggio": 2, "score": 1, "riff": 1, "melody": 1},
    "electric_guitar": {"riff": 3, "strum": 2, "score": 1, "melody": 1, "arpeggio": 1, "sustained": 1},
    "bass": {"bassline": 4, "score": 2, "riff": 1},
    "violin": {"score": 4, "melody": 2, "sustained": 1, "scale": 1},
    "cello": {"score": 4, "melody": 1, "sustained": 2, "scale": 1},
    "trumpet": {"score": 3, "melody": 2, "riff": 1, "sustained": 1},
    "trombone": {"score": 3, "melody": 2, "sustained": 1, "riff": 1},
    "saxophone": {"score": 2, "melody": 3, "riff": 2, "sustained": 1},
    "clarinet": {"score": 3, "melody": 2, "scale": 1, "sustained": 1},
    "flute": {"score": 3, "melody": 2, "scale": 1, "sustained": 1},
    "synthesizer": {"riff": 2, "pad": 2, "arpeggio": 2, "melody": 2, "chords": 1, "score": 1},
    "banjo": {"roll": 3, "strum": 2, "arpeggio": 2, "score": 1},
}
# Role in a generated band arrangement (mixtures): what a label plays next to others.
BAND_ROLES: dict[str, tuple[str, ...]] = {
    "bass": ("bassline",),
    "piano": ("chords", "arpeggio"),
    "organ": ("pad", "chords"),
    "accordion": ("chords", "melody"),
    "acoustic_guitar": ("strum", "arpeggio"),
    "electric_guitar": ("riff", "strum"),
    "banjo": ("roll", "strum"),
    "mallet_percussion": ("arpeggio", "melody"),
    "synthesizer": ("pad", "riff", "arpeggio"),
}


# ---------------------------------------------------------------------------- scores


@dataclass
class ScoreLibrary:
    """Note lists of music21 corpus pieces: pieces -> parts -> (onset_ql, dur_ql, keys)."""

    pieces: list[dict]

    def __len__(self) -> int:
        return len(self.pieces)

    @classmethod
    def load(cls, path: Path) -> ScoreLibrary:
        return cls(json.loads(Path(path).read_text())["pieces"])


def _window(part: list, start_ql: float, bpm: float) -> list[tuple[float, float, list[int]]]:
    """Events of ``part`` inside the window starting at ``start_ql``, in seconds."""
    window_ql = RENDER_SECONDS * bpm / 60.0
    out = []
    for on, dur, keys in part:
        if on + dur <= start_ql or on >= start_ql + window_ql:
            continue
        s = max(0.0, (on - start_ql) * 60.0 / bpm)
        e = min(RENDER_SECONDS, (on + dur - start_ql) * 60.0 / bpm)
        out.append((s, e, keys))
    return out


def choose_window(rng, part: list, bpm: float) -> float | None:
    """Start (quarter lengths) of a window of RENDER_SECONDS that is mostly sounding."""
    window_ql = RENDER_SECONDS * bpm / 60.0
    last = part[-1][0] + part[-1][1]
    for _ in range(6):
        start = float(part[int(rng.integers(len(part)))][0])
        if start + window_ql > last:
            start = max(0.0, last - window_ql)
        events = _window(part, start, bpm)
        covered = sum(e - s for s, e, _ in events)
        if len(events) >= 2 and covered >= 0.5 * RENDER_SECONDS:
            return start
    return None


def score_phrase(rng, library: ScoreLibrary, ctx: MusicContext, lo: int, hi: int, dyn: float,
                 n_parts: int = 1, piece_index: int | None = None,
                 part_indices: list[int] | None = None, start_ql: float | None = None
                 ) -> Phrase | None:
    """A music21 excerpt (one part, or ``n_parts`` merged for keyboards) in [lo, hi].

    Ensemble stems pass the same ``piece_index`` and ``start_ql`` with different parts.
    """
    if len(library) == 0:
        return None
    pi = int(rng.integers(len(library))) if piece_index is None else piece_index
    piece = library.pieces[pi]
    parts = piece["parts"]
    if part_indices is None:
        k = min(n_parts, len(parts))
        part_indices = sorted(int(i) for i in rng.choice(len(parts), size=k, replace=False))
    if start_ql is None:
        start_ql = choose_window(rng, parts[part_indices[0]], ctx.bpm)
        if start_ql is None:
            return None
    events = [ev for j in part_indices for ev in _window(parts[j], start_ql, ctx.bpm)]
    flat = [(s, e, k) for s, e, keys in events for k in keys]
    if len(flat) < 2:
        return None
    keys = fit_to_range([k for _, _, k in flat], lo, hi)
    legato = rng.uniform(0.8, 1.0)
    notes = [Note(s, s + max(0.05, (e - s) * legato), k, _vel(rng, dyn, 8))
             for (s, e, _), k in zip(flat, keys)]
    mod = [(0.0, 0), (rng.uniform(0.2, 1.0), int(rng.integers(10, 70)))] if rng.random() < 0.3 else []
    return Phrase(notes, f"score:{piece['name']}#{'+'.join(map(str, part_indices))}", modulation=mod)


# Which bundled music21 corpus directories to take pieces from, and how many of each.
# ~100 pieces: chorales and madrigals give 4-voice polyphony (ensembles, keyboards),
# fiddle/folk tunes give fast melodies, quartets and piano music give idiomatic lines.
SCORE_DIRECTORIES: tuple[tuple[str, int], ...] = (
    ("bach", 42), ("ryansMammoth", 24), ("palestrina", 8), ("oneills1850", 2), ("mozart", 3),
    ("haydn", 2), ("trecento", 4), ("josquin", 2), ("joplin", 1), ("chopin", 1), ("schubert", 1),
    ("corelli", 1), ("cpebach", 1), ("handel", 1), ("weber", 1), ("schumann_clara", 1),
)  # (the large ABC collections essenFolksong/airdsAirs take 2-6 s each to parse: left out)
SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn", ".abc", ".mid")
TUNES_PER_COLLECTION = 4  # an ABC file with many tunes contributes this many pieces


def choose_score_paths(max_pieces: int) -> list[str]:
    """Deterministic list of corpus-relative paths (evenly spaced within each directory)."""
    from music21 import corpus

    by_dir: dict[str, list[str]] = {}
    for p in corpus.getPaths():
        parts = Path(p).parts
        if "corpus" not in parts or Path(p).suffix.lower() not in SCORE_SUFFIXES:
            continue
        rel = "/".join(parts[parts.index("corpus") + 1:])
        by_dir.setdefault(rel.split("/")[0], []).append(rel)
    chosen: list[str] = []
    total = sum(n for _, n in SCORE_DIRECTORIES)
    for d, n in SCORE_DIRECTORIES:
        files = sorted(by_dir.get(d, []))
        if not files:
            continue
        n = max(1, round(n * max_pieces / total)) if max_pieces < total else n
        idx = np.linspace(0, len(files) - 1, num=min(n, len(files))).round().astype(int)
        chosen += [files[i] for i in sorted(set(idx.tolist()))]
        if len(chosen) >= max_pieces:
            break
    return chosen[:max_pieces]


def _parse_piece(rel: str) -> list[dict]:
    """Parse one corpus file into [{name, parts}] (ABC collections give several)."""
    from music21 import corpus, stream

    try:
        obj = corpus.parse(rel)
    except Exception as exc:  # a corpus file music21 cannot read is skipped, and logged
        log.warning("music21 could not parse %s: %s", rel, exc)
        return []
    scores = list(obj.scores)[:TUNES_PER_COLLECTION] if isinstance(obj, stream.Opus) else [obj]
    out = []
    for si, score in enumerate(scores):
        parts = []
        for part in (score.parts if score.parts else [score]):
            events = []
            for n in part.stripTies().flatten().notes:
                keys = [int(p.midi) for p in n.pitches]
                dur = float(n.quarterLength)
                if keys and dur > 0:
                    events.append([round(float(n.offset), 4), round(dur, 4), keys])
            events.sort(key=lambda e: e[0])
            if len(events) >= 8:
                parts.append(events)
        if parts:
            name = rel if len(scores) == 1 else f"{rel}[{si}]"
            out.append({"name": name, "parts": parts})
    return out


def build_score_library(path: Path, max_pieces: int, jobs: int = 1) -> ScoreLibrary:
    """Parse ~``max_pieces`` music21 corpus pieces once and cache their note lists."""
    path = Path(path)
    if max_pieces <= 0:
        return ScoreLibrary([])
    paths = choose_score_paths(max_pieces)
    if path.exists():
        cached = json.loads(path.read_text())
        if cached.get("sources") == paths:
            return ScoreLibrary(cached["pieces"])
    t0 = time.monotonic()
    from joblib import Parallel, delayed

    results = Parallel(n_jobs=jobs)(delayed(_parse_piece)(p) for p in paths)
    pieces = [piece for r in results for piece in r]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"sources": paths, "pieces": pieces}, separators=(",", ":")))
    log.info("parsed %d music21 pieces (%d scores) in %.1f s -> %s",
             len(paths), len(pieces), time.monotonic() - t0, path)
    return ScoreLibrary(pieces)


# ---------------------------------------------------------------------------- drums

KICK, KICK2, SIDE, SNARE, CLAP, SNARE2 = 36, 35, 37, 38, 39, 40
HH_CLOSED, HH_PEDAL, HH_OPEN = 42, 44, 46
TOMS = (50, 48, 47, 45, 43, 41)  # high -> low
CRASH, CRASH2, RIDE, RIDE_BELL, TAMB, COWBELL = 49, 57, 51, 53, 54, 56
CONGA_HI_MUTE, CONGA_HI, CONGA_LO, BONGO_HI, BONGO_LO, SHAKER, CLAVES = 62, 63, 64, 60, 61, 70, 75

# Grooves on a grid: (steps per bar, steps per beat, {key: [(step, velocity), ...]})
_G = dict[int, list[tuple[int, int]]]


def _groove(style: str, rng) -> tuple[int, int, _G]:
    hv = lambda steps, v, acc=0: [(s, v + (acc if i % 2 == 0 else 0)) for i, s in enumerate(steps)]
    if style == "rock":
        kick = [0, 8] + ([10] if rng.random() < 0.5 else []) + ([6] if rng.random() < 0.3 else [])
        hat = RIDE if rng.random() < 0.25 else HH_CLOSED
        return 16, 4, {KICK: hv(kick, 110), SNARE: hv([4, 12], 110),
                       hat: hv(range(0, 16, 2), 80, 15)}
    if style == "funk":
        return 16, 4, {KICK: hv([0, 3, 6, 10], 110), SNARE: hv([4, 12], 112) + hv([7, 9, 14], 45),
                       HH_CLOSED: hv(range(16), 60, 30), HH_OPEN: hv([15], 80)}
    if style == "disco":
        return 16, 4, {KICK: hv([0, 4, 8, 12], 115), CLAP if rng.random() < 0.5 else SNARE: hv([4, 12], 105),
                       HH_OPEN: hv([2, 6, 10, 14], 85), HH_CLOSED: hv([0, 4, 8, 12], 60)}
    if style == "shuffle":
        return 12, 3, {KICK: hv([0, 6], 105), SNARE: hv([3, 9], 105),
                       HH_CLOSED: hv([0, 2, 3, 5, 6, 8, 9, 11], 75, 20)}
    if style == "jazz":
        return 12, 3, {RIDE: hv([0, 3, 5, 6, 9, 11], 75, 15), HH_PEDAL: hv([3, 9], 70),
                       KICK: hv([0, 6], 40), SNARE: [(int(s), 40) for s in rng.choice(12, 2, replace=False)]}
    if style == "halftime":
        return 16, 4, {KICK: hv([0, 3, 10], 110), SNARE: hv([8], 115), HH_CLOSED: hv(range(0, 16, 2), 75, 15)}
    if style == "bossa":
        return 16, 4, {KICK: hv([0, 3, 4, 7, 8, 11, 12, 15], 85), SIDE: hv([0, 3, 6, 10, 13], 90),
                       HH_CLOSED: hv(range(0, 16, 2), 60, 10), SHAKER: hv(range(16), 50, 20)}
    if style == "latin":
        return 16, 4, {KICK: hv([0, 6, 8, 14], 95), CONGA_HI_MUTE: hv([2, 10], 80),
                       CONGA_HI: hv([6, 7, 14, 15], 90), CONGA_LO: hv([11], 90),
                       COWBELL: hv([0, 4, 8, 12], 70), CLAVES: hv([0, 3, 6, 10, 12], 80)}
    if style == "toms":
        return 16, 4, {TOMS[5]: hv([0, 3, 6, 8, 11, 14], 105), TOMS[4]: hv([2, 10], 90),
                       KICK: hv([0, 8], 100), TAMB: hv(range(0, 16, 2), 60)}
    if style == "metal":
        return 16, 4, {KICK: hv(range(16), 100), SNARE: hv([4, 12], 120),
                       CRASH if rng.random() < 0.5 else RIDE: hv([0, 4, 8, 12], 95)}
    raise ValueError(style)


DRUM_STYLES = ("rock", "funk", "disco", "shuffle", "jazz", "halftime", "bossa", "latin", "toms", "metal")


def drum_phrase(rng, ctx: MusicContext, dyn: float, available: frozenset[int] | None = None,
                styles: tuple[str, ...] = DRUM_STYLES) -> Phrase:
    """A groove (one of ``styles``) with humanised timing/velocity, an optional fill and crash."""
    style = str(rng.choice(styles))
    steps_per_bar, steps_per_beat, grid = _groove(style, rng)
    step = ctx.beat / steps_per_beat
    if 1.0 / step > 14:  # too fast a grid at this tempo: halve it
        step *= 2
    bar = step * steps_per_bar
    fill_bar = int(rng.integers(0, 3)) if rng.random() < 0.5 else -1
    scale = dyn / 100.0
    notes = []
    t_bar = 0.0
    b = 0
    while t_bar < RENDER_SECONDS:
        in_fill = b == fill_bar
        for key, hits in grid.items():
            for s, v in hits:
                if in_fill and s >= steps_per_bar // 2:
                    continue
                t = t_bar + s * step + rng.normal(0, 0.004)
                if 0 <= t < RENDER_SECONDS:
                    notes.append(Note(max(0.0, t), t + 0.12, key, _vel(rng, v * scale, 6)))
        if in_fill:  # second half of the bar: tom/snare run
            run = [SNARE] * 2 + list(TOMS[int(rng.integers(0, 2)):])
            for j, s in enumerate(range(steps_per_bar // 2, steps_per_bar)):
                t = t_bar + s * step
                if t < RENDER_SECONDS:
                    notes.append(Note(t, t + 0.12, run[j % len(run)], _vel(rng, 100 * scale)))
            t = t_bar + bar
            if t < RENDER_SECONDS:
                notes += [Note(t, t + 0.3, CRASH, _vel(rng, 110 * scale)), Note(t, t + 0.2, KICK, _vel(rng, 110 * scale))]
        if b == 0 and rng.random() < 0.3:
            notes.append(Note(0.0, 0.3, CRASH if rng.random() < 0.7 else CRASH2, _vel(rng, 105 * scale)))
        t_bar += bar
        b += 1
    if available is not None:
        notes = [n for n in notes if n.pitch in available]
    notes.sort(key=lambda n: n.start)
    return Phrase(notes, f"gen:drums_{style}")
