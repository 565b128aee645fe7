"""Music as pop, jazz, folk and orchestral ensembles play it: arrangements of roles.

A genre is a table of roles. Each role says what may play it (labels, their GM programs,
the training sources that render them), what it plays (a pattern generator of
``MATERIAL``), how loud it sits (RMS in dB re the clip's reference part) and how often it
plays at all. One clip: a tempo, key and harmony of the genre, the first role (the
reference, always present) and each other role that its probability draws, rendered on a
training source and mixed at its level, then the genre's production:

- **pop**: a voice (festival/espeak-ng, the training split) or a synth lead on top of a
  drum-machine or kit groove, a synth or electric bass, piano / electric piano chords and
  synth pads; bright (a high shelf), bus compression and a limiter, mastered loud.
- **jazz**: a head on saxophone, trumpet, trombone, clarinet, flute, jazz guitar or
  vibraphone in swung eighths, over a swing ride or brush pattern, a walking acoustic bass
  (GM 32, label ``bass``) and rootless seventh-chord piano comping; light compression and
  a simulated room (pyroomacoustics, effects.random_reverb).
- **folk**: acoustic guitar strumming or fingerpicking, banjo rolls, accordion, a fiddle
  (violin) or flute tune, sometimes a voice, light percussion or none; a room, a little
  compression.
- **orchestral**: violin sections (several takes of GM 40/41, each a little detuned and
  late: the ensemble programs 48-51 are never used, since no label names them), cellos on
  the bass line, flute and clarinet, trumpet and trombone, mallet percussion, rarely an
  organ; a hall (pedalboard ``Reverb``), a swell of several dB across the clip, no
  compression, mastered with headroom.

Labels follow training/corpus/rock.py's rule: every part in the mix is added at a
labelled level (its role's ``level_db`` re the reference, all within 6 dB below to 2 dB
above) and sounds in at least ``ACTIVE_FRACTION`` of the clip, and it is labelled; an
optional part that comes out too sparse is left out of the mix, not mixed unlabelled. A
voice is labelled ``voice``, never an instrument.

Contrast (``other``, 0 by default): on that share of the clips the reference role is
played by another instrument (``CONTRAST_LABELS``, a training soundfont) than the genre's
own, so that a genre's sound (a swing groove, a hall, a compressed pop bus) does not by
itself mean a saxophone, a violin or a synthesizer. Every other role is optional too.

Each clip's randomness is ``default_rng([seed, index, attempt])``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from tagger.labels import BUNDLED_LABELS, GM_PROGRAMS, VOICE_LABEL

from .audio import CLIP_SAMPLES, RENDER_SAMPLES, RENDER_SECONDS, SILENCE_RMS, active_fraction, db_to_gain, rms
from .effects import _pb, bus_compress, random_bus_compression, random_chorus, random_delay, random_limiter, random_reverb
from .material import (MusicContext, Note, Phrase, _chord_keys, _keys_in_range, _vel, drum_phrase, gen_arpeggio,
                       gen_bassline, gen_chords, gen_melody, gen_repeated, gen_strum, gen_sustained, playable_range,
                       random_context)
from .rock import ACTIVE_FRACTION, second_take
from .sources import ALL_SOURCES, coverage_for, render_stems
from .stems import DRUM_BANK, Coverage, Stem, first_usable
from .voices import VoiceError, missing_tools, render_voice

log = logging.getLogger(__name__)

SOUNDFONT_SOURCES = ("generaluser", "fluidr3", "sfgmbank")  # training soundfonts only (never timgm6mb)
TONAL_SOURCES = SOUNDFONT_SOURCES + ("freepats", "physical")
STYLES = ("pop", "jazz", "folk", "orchestral")
# what plays the reference role instead of the genre's own instruments (contrast)
CONTRAST_LABELS = ("synthesizer", "organ", "piano", "saxophone", "trumpet", "trombone", "violin", "cello",
                   "clarinet", "flute", "accordion", "acoustic_guitar", "electric_guitar", "banjo",
                   "mallet_percussion")
POLYPHONIC = frozenset({"synthesizer", "organ", "piano", "accordion", "acoustic_guitar", "electric_guitar",
                        "banjo", "mallet_percussion"})


class GenreError(RuntimeError):
    """The material a genre renderer needs is missing."""


# ---------------------------------------------------------------------------- material


def swing(phrase: Phrase, ctx: MusicContext, ratio: float) -> Phrase:
    """Off-beat eighths moved late (``ratio`` of the beat, 0.5 straight .. 0.67 triplet)."""
    beat = ctx.beat
    notes = []
    for n in phrase.notes:
        pos = (n.start / beat) % 1.0
        if abs(pos - 0.5) < 0.08:
            shift = (ratio - 0.5) * beat
            notes.append(Note(n.start + shift, max(n.end, n.start + shift + 0.03), n.pitch, n.velocity))
        else:
            notes.append(n)
    return Phrase(notes, phrase.origin + f"+swing{ratio:.2f}", phrase.bends, phrase.modulation)


def gen_walking(rng, ctx, lo, hi, dyn) -> Phrase:
    """A walking bass: a quarter note a beat, chord tones, a chromatic approach into each change."""
    notes = []
    beats_per_chord = ctx.beats_per_chord
    top = min(hi, lo + 19)
    k = 0
    prev = None
    for t in np.arange(0.0, RENDER_SECONDS, ctx.beat):
        chord = ctx.chord_pcs(t, sevenths=True)
        nxt = ctx.chord_pcs(t + ctx.beat)
        roots = _keys_in_range(chord[:1], lo, top) or [lo]
        pos = k % beats_per_chord
        if pos == 0:
            p = roots[0] if prev is None else min(roots, key=lambda r: abs(r - prev))
        elif pos == beats_per_chord - 1:  # approach the next root a semitone or a fifth away
            target = _keys_in_range(nxt[:1], lo, top) or [lo]
            goal = min(target, key=lambda r: abs(r - (prev or r)))
            p = goal + int(rng.choice([-1, 1, 7, -5]))
        else:
            options = _keys_in_range(chord + [(chord[0] + 2) % 12], lo, top) or roots
            p = min(options, key=lambda r: abs(r - (prev or r)) + rng.uniform(0, 6))
        while p > hi:
            p -= 12
        while p < lo:
            p += 12
        notes.append(Note(float(t), float(t) + ctx.beat * rng.uniform(0.75, 0.95), p, _vel(rng, dyn + (6 if pos == 0 else 0))))
        prev = p
        k += 1
    return Phrase(notes, "genre:walking")


def gen_comping(rng, ctx, lo, hi, dyn) -> Phrase:
    """Piano comping: rootless seventh-chord voicings (3-7-9 or 7-3-5) on syncopated hits."""
    patterns = ((0.0, 1.5), (1.5, 3.0), (0.5, 2.5), (1.0, 2.5, 3.5), (0.0, 2.0), (1.5, 3.5))
    hits = patterns[int(rng.integers(len(patterns)))]
    centre = int(rng.integers(max(lo, 55), max(max(lo, 55) + 1, min(hi, 67))))
    notes = []
    bar = ctx.beat * 4
    for b in np.arange(0.0, RENDER_SECONDS, bar):
        for h in hits:
            t = float(b) + h * ctx.beat
            if t >= RENDER_SECONDS:
                continue
            root, third, fifth, seventh = ctx.chord_pcs(t, sevenths=True)
            pcs = [third, seventh, (root + 2) % 12] if rng.random() < 0.5 else [seventh, third, fifth, (root + 2) % 12]
            keys = []
            p = centre - 6
            for pc in pcs:
                while p % 12 != pc:
                    p += 1
                keys.append(p)
                p += 1
            dur = ctx.beat * float(rng.choice([0.4, 0.8, 1.4]))
            for key in keys:
                if lo <= key <= hi:
                    notes.append(Note(t + rng.uniform(0, 0.01), t + dur, key, _vel(rng, dyn, 6)))
    return Phrase(notes, "genre:comping")


def gen_head(rng, ctx, lo, hi, dyn) -> Phrase:
    """A jazz head: eighths and quarters on chord tones and the scale, phrases with rests."""
    scale = _keys_in_range(ctx.scale_pcs(), lo, hi)
    i = int(rng.integers(len(scale) // 3, max(len(scale) // 3 + 1, 2 * len(scale) // 3)))
    notes = []
    t = float(rng.choice([0.0, 0.5])) * ctx.beat
    while t < RENDER_SECONDS:
        if rng.random() < 0.1:  # a breath
            t += ctx.beat * float(rng.choice([0.5, 1.0]))
            continue
        d = ctx.beat * float(rng.choice([0.5, 0.5, 0.5, 1.0, 1.5]))
        chord = ctx.chord_pcs(t, sevenths=True)
        i = int(np.clip(i + int(rng.choice([-2, -1, -1, 1, 1, 2, 3])), 0, len(scale) - 1))
        p = scale[i]
        if rng.random() < 0.5:  # land on a chord tone
            tones = [q for q in range(max(lo, p - 3), min(hi, p + 3) + 1) if q % 12 in chord]
            p = min(tones, key=lambda q: abs(q - p)) if tones else p
        notes.append(Note(t, t + d * rng.uniform(0.6, 0.95), p, _vel(rng, dyn + (6 if (t / ctx.beat) % 1 < 0.1 else 0), 8)))
        t += d
    return Phrase(notes, "genre:head")


def gen_fingerpick(rng, ctx, lo, hi, dyn) -> Phrase:
    """Travis picking: the thumb alternates root and fifth on the beat, fingers fill the off-beats."""
    step = 0.5 if ctx.bpm > 80 else 0.25
    base = int(min(hi - 24, lo + rng.integers(0, 6)))
    notes = []
    for k, t in enumerate(np.arange(0.0, RENDER_SECONDS, ctx.beat * step)):
        chord = ctx.chord_pcs(float(t))
        basses = _keys_in_range([chord[0], chord[2]], base, base + 12) or [base]
        trebles = _keys_in_range(chord, base + 12, min(hi, base + 26)) or [base + 12]
        if k % 2 == 0:
            p = basses[(k // 2) % len(basses)]
            v = dyn + 4
        else:
            p = trebles[int(rng.integers(len(trebles)))]
            v = dyn - 4
        notes.append(Note(float(t), float(t) + ctx.beat * step * rng.uniform(1.5, 3.0), p, _vel(rng, v, 6)))
    return Phrase(notes, "genre:fingerpick")


def gen_fiddle(rng, ctx, lo, hi, dyn) -> Phrase:
    """A fiddle or whistle tune: running eighths in the scale, a held note at phrase ends."""
    scale = _keys_in_range(ctx.scale_pcs(), lo, min(hi, lo + 26))
    i = int(rng.integers(len(scale) // 3, max(len(scale) // 3 + 1, 2 * len(scale) // 3)))
    notes = []
    t = 0.0
    step = 0.5 if ctx.bpm < 150 else 1.0
    k = 0
    while t < RENDER_SECONDS:
        long = k % 8 == 7
        d = ctx.beat * step * (2 if long else 1)
        i = int(np.clip(i + int(rng.choice([-2, -1, -1, 1, 1, 2])), 0, len(scale) - 1))
        notes.append(Note(t, t + d * rng.uniform(0.8, 0.97), scale[i], _vel(rng, dyn + (8 if k % 2 == 0 else 0), 6)))
        t += d
        k += 1
    return Phrase(notes, "genre:fiddle")


def gen_pump(rng, ctx, lo, hi, dyn) -> Phrase:
    """A pop bass: the root in driving eighths (octave jumps now and then)."""
    notes = []
    top = min(hi, lo + 19)
    for k, t in enumerate(np.arange(0.0, RENDER_SECONDS, ctx.beat / 2)):
        root = (_keys_in_range(ctx.chord_pcs(float(t))[:1], lo, top) or [lo])[0]
        p = root + (12 if k % 4 == 3 and rng.random() < 0.4 and root + 12 <= hi else 0)
        notes.append(Note(float(t), float(t) + ctx.beat / 2 * rng.uniform(0.5, 0.9), p, _vel(rng, dyn + (8 if k % 2 == 0 else 0))))
    return Phrase(notes, "genre:pump")


def gen_pad(rng, ctx, lo, hi, dyn) -> Phrase:
    """Held chords, one a chord change: a pad or a string / brass section."""
    notes = []
    span = ctx.beat * ctx.beats_per_chord
    centre = int(rng.integers(max(lo, 52), max(max(lo, 52) + 1, min(hi, 72))))
    voices = int(rng.integers(2, 5))
    for t in np.arange(0.0, RENDER_SECONDS, span):
        keys = _chord_keys(ctx, float(t), lo, hi, centre, 12, bool(rng.random() < 0.3))[:voices]
        for p in keys:
            notes.append(Note(float(t), float(t) + span * 0.98, p, _vel(rng, dyn, 5)))
    return Phrase(notes, "genre:pad")


def gen_bass_line(rng, ctx, lo, hi, dyn) -> Phrase:
    """Roots held a chord long or in halves: an orchestral bass line (cellos)."""
    notes = []
    span = ctx.beat * ctx.beats_per_chord / int(rng.choice([1, 2]))
    for t in np.arange(0.0, RENDER_SECONDS, span):
        root = (_keys_in_range(ctx.chord_pcs(float(t))[:1], lo, min(hi, lo + 14)) or [lo])[0]
        notes.append(Note(float(t), float(t) + span * 0.95, root, _vel(rng, dyn, 5)))
    return Phrase(notes, "genre:bass_line")


def gen_legato(rng, ctx, lo, hi, dyn) -> Phrase:
    """A singing legato line in longer values (an orchestral melody), vibrato after the attack."""
    scale = _keys_in_range(ctx.scale_pcs(), lo, min(hi, lo + 24))
    i = int(rng.integers(len(scale) // 3, max(len(scale) // 3 + 1, 2 * len(scale) // 3)))
    notes = []
    t = 0.0
    while t < RENDER_SECONDS:
        d = ctx.beat * float(rng.choice([1.0, 1.0, 2.0, 1.5, 0.5, 3.0]))
        i = int(np.clip(i + int(rng.choice([-2, -1, 1, 2, 0, 3, -3])), 0, len(scale) - 1))
        notes.append(Note(t, t + d * 0.98, scale[i], _vel(rng, dyn, 5)))
        t += d
    depth = int(rng.integers(20, 70))
    return Phrase(notes, "genre:legato", modulation=[(0.0, 0), (float(rng.uniform(0.2, 0.6)), depth)])


def gen_vocal_line(rng, ctx, lo, hi, dyn) -> Phrase:
    """A placeholder the voice renderer replaces (voices.render_voice draws its own melody)."""
    return Phrase([Note(0.0, RENDER_SECONDS, 60, 100)], "voice")


Generator = Callable[..., Phrase]
MATERIAL: dict[str, Generator] = {
    "melody": gen_melody, "chords": gen_chords, "strum": gen_strum, "arpeggio": gen_arpeggio,
    "roll": gen_repeated, "sustained": lambda rng, ctx, lo, hi, dyn: gen_sustained(rng, ctx, lo, hi, dyn, voices=2),
    "bassline": gen_bassline, "walking": gen_walking, "comping": gen_comping, "head": gen_head,
    "fingerpick": gen_fingerpick, "fiddle": gen_fiddle, "pump": gen_pump, "pad": gen_pad,
    "bass_line": gen_bass_line, "legato": gen_legato, "voice": gen_vocal_line,
}
MONOPHONIC_MATERIAL = frozenset({"melody", "head", "fiddle", "legato", "walking", "bass_line", "pump", "bassline",
                                 "voice"})


# ---------------------------------------------------------------------------- the tables


@dataclass(frozen=True)
class Role:
    """One part of an arrangement: who may play it, what, how loud, how often."""

    name: str
    labels: tuple[str, ...]  # drawn uniformly; a bundled label or "voice"
    material: tuple[str, ...]  # keys of MATERIAL (drawn uniformly), or drum styles for "drums"
    level_db: tuple[float, float] = (-4.0, 0.0)  # RMS re the reference part
    prob: float = 1.0
    programs: dict[str, tuple[int, ...]] = field(default_factory=dict)  # label -> GM programs (default: GM_PROGRAMS)
    sources: tuple[str, ...] = TONAL_SOURCES
    takes: tuple[int, int] = (1, 1)  # a section: this many takes of one part, a little detuned and late
    kits: tuple[int, ...] = (0,)  # soundfont drum kits (bank 128) for "drums"
    swing: bool = False


@dataclass(frozen=True)
class Genre:
    name: str
    bpm: tuple[float, float]
    modes: tuple[str, ...]
    roles: tuple[Role, ...]  # roles[0] is the reference and always plays
    voice_styles: dict[str, float] = field(default_factory=lambda: {"sing": 0.8, "choir": 0.1, "espeak": 0.1})


KIT = "drums"
GENRES: dict[str, Genre] = {
    "pop": Genre("pop", (80.0, 132.0), ("major", "minor", "mixolydian", "dorian"), (
        Role("lead", ("voice", "voice", "voice", "synthesizer"), ("melody",), (0.0, 0.0),
             programs={"synthesizer": (80, 81, 84, 87)}, sources=SOUNDFONT_SOURCES + ("synth",)),
        Role("drums", (KIT,), ("disco", "rock", "funk", "halftime"), (-3.0, 2.0), prob=0.9,
             sources=SOUNDFONT_SOURCES + ("synth", "avldrums"), kits=(0, 8, 16, 24, 25)),
        Role("bass", ("bass",), ("pump", "bassline"), (-6.0, -1.0), prob=0.85,
             programs={"bass": (33, 34, 38, 39)}, sources=SOUNDFONT_SOURCES + ("synth", "physical")),
        Role("keys", ("piano",), ("chords", "arpeggio"), (-6.0, -1.0), prob=0.55,
             programs={"piano": (0, 1, 4, 5)}, sources=SOUNDFONT_SOURCES + ("physical", "freepats")),
        Role("pad", ("synthesizer",), ("pad",), (-6.0, -2.0), prob=0.55,
             programs={"synthesizer": (88, 89, 90, 91, 92, 94, 95)}, sources=SOUNDFONT_SOURCES + ("synth",)),
        Role("hook", ("synthesizer",), ("arpeggio", "melody"), (-6.0, -2.0), prob=0.25,
             programs={"synthesizer": (80, 81, 84, 87)}, sources=SOUNDFONT_SOURCES + ("synth",)),
    ), {"sing": 0.7, "choir": 0.1, "speak": 0.05, "espeak": 0.15}),
    "jazz": Genre("jazz", (90.0, 220.0), ("major", "dorian", "mixolydian", "minor"), (
        Role("head", ("saxophone", "saxophone", "trumpet", "trombone", "clarinet", "flute", "electric_guitar",
                      "mallet_percussion"), ("head",), (0.0, 0.0),
             programs={"electric_guitar": (26,), "mallet_percussion": (11,), "trumpet": (56, 59)}, swing=True),
        Role("drums", (KIT,), ("jazz",), (-6.0, -1.0), prob=0.85, sources=SOUNDFONT_SOURCES + ("avldrums",),
             kits=(32, 40, 0, 8)),
        Role("bass", ("bass",), ("walking",), (-6.0, -1.0), prob=0.85, programs={"bass": (32,)},
             sources=SOUNDFONT_SOURCES + ("physical", "freepats")),
        Role("comping", ("piano", "piano", "electric_guitar"), ("comping",), (-6.0, -1.0), prob=0.75,
             programs={"piano": (0, 1, 4), "electric_guitar": (26,)}, swing=True),
        Role("second horn", ("saxophone", "trumpet", "trombone"), ("sustained",), (-6.0, -2.0), prob=0.2),
    )),
    "folk": Genre("folk", (70.0, 160.0), ("major", "mixolydian", "dorian", "minor"), (
        Role("guitar", ("acoustic_guitar",), ("strum", "fingerpick", "arpeggio"), (0.0, 0.0)),
        Role("tune", ("violin", "flute", "accordion", "voice", "voice"), ("fiddle", "melody"), (-4.0, 1.0), prob=0.8,
             programs={"violin": (40,), "flute": (73, 72)}),
        Role("banjo", ("banjo",), ("roll", "arpeggio"), (-6.0, -1.0), prob=0.35, sources=SOUNDFONT_SOURCES + ("physical",)),
        Role("squeezebox", ("accordion",), ("chords", "sustained"), (-6.0, -2.0), prob=0.2),
        Role("second guitar", ("acoustic_guitar",), ("fingerpick", "strum"), (-6.0, -1.0), prob=0.25),
        Role("bass", ("bass",), ("bassline",), (-6.0, -2.0), prob=0.3, programs={"bass": (32, 33)}),
        Role("percussion", (KIT,), ("bossa", "rock", "shuffle"), (-6.0, -2.0), prob=0.25,
             sources=SOUNDFONT_SOURCES + ("avldrums",), kits=(40, 32, 0)),
    ), {"sing": 0.75, "choir": 0.15, "speak": 0.05, "espeak": 0.05}),
    "orchestral": Genre("orchestral", (56.0, 132.0), ("major", "minor", "harmonic_minor", "dorian"), (
        Role("violins", ("violin",), ("legato", "melody"), (0.0, 0.0), takes=(2, 4)),
        Role("violas", ("violin",), ("pad", "sustained"), (-6.0, -1.0), prob=0.6, programs={"violin": (41, 40)},
             takes=(2, 3)),
        Role("cellos", ("cello",), ("bass_line", "pad"), (-6.0, -1.0), prob=0.75, takes=(2, 3)),
        Role("woodwind", ("flute", "clarinet"), ("legato", "melody", "arpeggio"), (-6.0, -1.0), prob=0.5),
        Role("brass", ("trumpet", "trombone"), ("pad", "legato"), (-6.0, -1.0), prob=0.35,
             programs={"trumpet": (56,)}, takes=(1, 2)),
        Role("mallets", ("mallet_percussion",), ("arpeggio", "melody", "roll"), (-6.0, -2.0), prob=0.25,
             programs={"mallet_percussion": (8, 9, 12, 13)}, sources=TONAL_SOURCES + ("synth",)),
        Role("organ", ("organ",), ("pad",), (-6.0, -2.0), prob=0.06, programs={"organ": (19, 20)}),
    )),
}
assert all(label in BUNDLED_LABELS or label == VOICE_LABEL for g in GENRES.values() for r in g.roles for label in r.labels)


# ---------------------------------------------------------------------------- sources


@lru_cache(maxsize=None)
def _coverage(source: str) -> Coverage | None:
    try:
        return coverage_for(source)
    except (FileNotFoundError, OSError):
        return None


def _choose_source(rng: np.random.Generator, role: Role, label: str) -> tuple[str, int, int] | None:
    """(source, bank, program) for ``label`` among the role's sources that honestly cover it."""
    options: list[tuple[str, int, int]] = []
    for source in role.sources:
        cov = _coverage(source)
        if cov is None:
            continue
        have = cov.programs.get(label, ())
        if label == KIT:
            if source in SOUNDFONT_SOURCES:
                wanted = [(b, p) for b, p in have if p in role.kits]
            else:
                wanted = list(have)  # avldrums' two kits, the synth's drum machines, freepats' set
        else:
            allowed = role.programs.get(label, GM_PROGRAMS[label])
            wanted = [(b, p) for b, p in have if b == 0 and p in allowed]
        if wanted:
            b, p = wanted[int(rng.integers(len(wanted)))]
            options.append((source, b, p))
    if not options:
        return None
    return options[int(rng.integers(len(options)))]


# ---------------------------------------------------------------------------- a clip


@dataclass
class GenreClip:
    audio: np.ndarray  # (CLIP_SAMPLES,) float32
    style: str
    labels: tuple[str, ...]
    parts: list[dict]  # role, label, source, program, origin, gain_db of each part in the mix
    effects: list[str]


def _render_part(rng: np.random.Generator, genre: Genre, role: Role, label: str, ctx: MusicContext,
                 material: str) -> tuple[np.ndarray, dict] | None:
    """One role's audio (RENDER_SAMPLES) and its description, or None when nothing covers it."""
    if label == VOICE_LABEL:
        try:
            audio, desc = render_voice(rng, ctx, "train", weights=genre.voice_styles)
        except VoiceError as exc:  # festival fails on a few inputs; a missing engine is an error
            if "not installed" in str(exc):
                raise GenreError(str(exc)) from exc
            log.warning("voice render failed, part redrawn or left out: %s", str(exc).splitlines()[0])
            return None
        return audio, {"source": "voice", "origin": desc}
    chosen = _choose_source(rng, role, label)
    if chosen is None:
        return None
    source, bank, program = chosen
    if label == KIT:
        phrase = drum_phrase(rng, ctx, float(rng.uniform(70, 115)), available=_coverage(source).drum_keys,
                             styles=(material,))
        if genre.name == "folk" and phrase.notes:  # light percussion: kick, snare side, shaker, tambourine
            keep = {35, 36, 37, 39, 54, 69, 70, 75, 42, 44}
            phrase = Phrase([n for n in phrase.notes if n.pitch in keep], phrase.origin + ":light")
    else:
        lo, hi = playable_range(label, program)
        phrase = MATERIAL[material](rng, ctx, lo, hi, float(rng.uniform(60, 105)))
        if role.swing:
            phrase = swing(phrase, ctx, float(rng.uniform(0.58, 0.67)))
    if not phrase.notes:
        return None
    takes = int(rng.integers(role.takes[0], role.takes[1] + 1))
    stems = [Stem(label, bank, program, phrase)]
    for _ in range(takes - 1):  # a section: the same part again, a little late and detuned
        take = second_take(rng, phrase)
        stems.append(Stem(label, bank, program, Phrase(take.notes, take.origin, [(0.0, int(rng.integers(-300, 301)))],
                                                       phrase.modulation)))
    cov = _coverage(source)
    audio = np.zeros(RENDER_SAMPLES, dtype=np.float32)
    for a in render_stems(source, stems, cov, int(rng.integers(2**31))):
        audio += a / np.float32(max(rms(a), 1e-9))
    return audio, {"source": source, "program": program, "origin": phrase.origin + (f"x{takes}" if takes > 1 else "")}


def _usable(audio: np.ndarray, window: slice) -> bool:
    part = audio[window]
    return rms(part) >= SILENCE_RMS and active_fraction(part) >= ACTIVE_FRACTION


def render_genre(rng: np.random.Generator, style: str, other: float = 0.0) -> GenreClip | None:
    """One clip of ``style``, or None when the reference part came out unusable (the caller draws again)."""
    genre = GENRES[style]
    ctx = random_context(rng, bpm=float(rng.uniform(*genre.bpm)))
    ctx = MusicContext(ctx.bpm, ctx.key, str(rng.choice(genre.modes)), ctx.progression, ctx.beats_per_chord,
                       3 if style in ("folk", "orchestral") and rng.random() < 0.25 else 4)
    pre = int(rng.integers(0, RENDER_SAMPLES - CLIP_SAMPLES + 1))
    window = slice(pre, pre + CLIP_SAMPLES)
    mix = np.zeros(RENDER_SAMPLES, dtype=np.float32)
    parts: list[dict] = []
    effects: list[str] = []
    for i, role in enumerate(genre.roles):
        if i > 0 and rng.random() >= role.prob:
            continue
        label = str(rng.choice(role.labels))
        material = str(rng.choice(role.material))
        contrast = i == 0 and other > 0 and rng.random() < other
        if contrast:  # another instrument plays the reference part, from a training soundfont
            label = str(rng.choice([x for x in CONTRAST_LABELS if x not in role.labels]))
            role = Role(role.name, (label,), role.material, role.level_db, sources=SOUNDFONT_SOURCES, swing=role.swing)
            if label not in POLYPHONIC and material not in MONOPHONIC_MATERIAL:
                material = "melody"
            if material == "voice":
                material = "melody"
        rendered = _render_part(rng, genre, role, label, ctx, material)
        if rendered is None or not _usable(rendered[0], window):
            if i == 0:
                return None
            continue
        audio, desc = rendered
        audio, fx = _part_effects(rng, style, label, audio, ctx)
        effects += fx
        gain_db = 0.0 if i == 0 else float(rng.uniform(*role.level_db))
        mix += audio * np.float32(db_to_gain(gain_db) / rms(audio[window]))
        parts.append({"role": role.name + (":contrast" if contrast else ""), "label": label, **desc,
                      "gain_db": round(gain_db, 2)})
    mix, fx = _master(rng, style, mix)
    effects += fx
    clip = mix[window]
    peak = float(np.max(np.abs(clip)))
    if peak <= 0:
        return None
    target = {"pop": (-1.0, -0.1), "jazz": (-6.0, -1.0), "folk": (-6.0, -1.0), "orchestral": (-9.0, -2.0)}[style]
    clip = np.clip(clip * np.float32(db_to_gain(rng.uniform(*target)) / peak), -1.0, 1.0).astype(np.float32)
    labels = tuple(sorted({p["label"] for p in parts}))
    return GenreClip(clip, style, labels, parts, effects)


# ---------------------------------------------------------------------------- production


def _part_effects(rng: np.random.Generator, style: str, label: str, audio: np.ndarray,
                  ctx: MusicContext) -> tuple[np.ndarray, list[str]]:
    """What a part gets on its own: chorus or delay on pop's synths and voice."""
    if style == "pop" and label in ("synthesizer", VOICE_LABEL, "piano") and rng.random() < 0.5:
        if rng.random() < 0.5:
            y, desc = random_chorus(audio, rng)
        else:
            y, desc = random_delay(audio, rng, bpm=ctx.bpm)
        return y.astype(np.float32), [f"{label}:{desc}"]
    return audio, []


def _master(rng: np.random.Generator, style: str, mix: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The genre's bus: bright and limited (pop), a room and light glue (jazz, folk), a hall and a swell (orchestral)."""
    from pedalboard import HighShelfFilter, Reverb

    effects: list[str] = []
    if style == "pop":
        gain = float(rng.uniform(2.0, 6.0))
        freq = float(rng.uniform(5000.0, 9000.0))
        mix = _pb(HighShelfFilter(cutoff_frequency_hz=freq, gain_db=gain), mix / max(float(np.max(np.abs(mix))), 1e-9))
        effects.append(f"shelf(+{gain:.1f}dB@{freq:.0f}Hz)")
        mix, desc = random_bus_compression(mix, rng)
        effects.append(desc)
        mix, desc = random_limiter(mix, rng, hard_prob=0.3)
        effects.append(desc)
        return mix, effects
    if style in ("jazz", "folk"):
        mix, desc = random_reverb(mix, rng)
        effects.append(desc)
        if rng.random() < 0.7:
            gr = float(rng.uniform(0.5, 2.0))
            ratio = float(rng.uniform(1.5, 2.5))
            mix, _ = bus_compress(mix, gr, ratio, float(rng.uniform(5.0, 30.0)), float(rng.uniform(100.0, 300.0)))
            effects.append(f"comp(gr={gr:.1f}dB,ratio={ratio:.1f})")
        return mix, effects
    size = float(rng.uniform(0.7, 0.95))
    wet = float(rng.uniform(0.15, 0.4))
    mix = _pb(Reverb(room_size=size, damping=float(rng.uniform(0.3, 0.6)), wet_level=wet, dry_level=1.0 - wet / 2,
                     width=0.0), mix / max(float(np.max(np.abs(mix))), 1e-9))
    effects.append(f"hall(size={size:.2f},wet={wet:.2f})")
    swell = float(rng.uniform(-10.0, 10.0))  # a crescendo or diminuendo across the render
    mix = mix * (10.0 ** (np.linspace(0.0, swell, len(mix)) / 20.0)).astype(np.float32)
    effects.append(f"swell({swell:+.1f}dB)")
    return mix.astype(np.float32), effects


def render_genre_clip(seed: int, index: int, style: str, other: float = 0.0) -> tuple[GenreClip, int]:
    """Clip ``index`` of a set: (clip, attempt); raises RenderError after RENDER_ATTEMPTS."""
    if style not in GENRES:
        raise ValueError(f"unknown style {style!r}; choose from {', '.join(STYLES)}")
    return first_usable(seed, index, lambda rng: render_genre(rng, style, other), f"{style} clip {index}")


def missing_material(styles: tuple[str, ...]) -> list[str]:
    """What the styles need and this machine lacks (every source a role of theirs draws on,
    voice tools); empty when all is there. A source left out silently would make the same
    seed and arguments build another corpus under the same stamp."""
    needed = dict.fromkeys([*SOUNDFONT_SOURCES, *(src for s in styles for r in GENRES[s].roles for src in r.sources)])
    missing = [s for s in needed if _coverage(s) is None]
    if any(VOICE_LABEL in r.labels for s in styles for r in GENRES[s].roles):
        missing += missing_tools()
    return missing


assert set(SOUNDFONT_SOURCES) <= set(ALL_SOURCES) and DRUM_BANK == 128
