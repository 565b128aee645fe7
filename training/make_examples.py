"""Render the example tracks in examples/ (what `make demo` / `tagger scan examples` tags).

    python -m training.make_examples --out examples

Eight 10-13.5 s tracks, each a different container/codec and a different instrument mix,
rendered with the TimGM6mb soundfont only: the bundled model never trains on it (it is
the corpus's held-out soundfont), so what `tagger scan` says about these files is an
honest demo. The music is made with the corpus code (training/corpus): music21 chorale
excerpts and the corpus's phrase generators and drum grooves sharing one tempo, key and
chord progression; every instrument is rendered as its own stem by fluidsynth
(``render_stems``), levelled by RMS within +-3 dB of the others (the corpus's "mix" label
rule, so every instrument in a file is one of its true labels), panned, given a little
room reverb (``random_reverb``), resampled to 44.1 kHz (48 kHz for Opus) and encoded
with PyAV. Deterministic: fixed seeds, and the same audio for the same soundfont,
fluidsynth and FFmpeg.

The corpus renders 3.5 s per stem (``RENDER_SECONDS``); a longer track is rendered as
consecutive windows of whole beats (<= 3 s), each window's notes rendered from its start
with the tails of its last notes overlap-added into the next window. Generated material
follows the track's chord progression across windows (each window's context starts at
the chord sounding there); chorale excerpts are one continuous passage cut at the window
boundaries. Writes OUT/<track files>, OUT/labels.csv (``path,labels``, the manifest
`tagger eval` reads) and OUT/README.md.

The same machinery renders other track sets: a Track names its ``source`` (TimGM6mb for
every example) and the render functions take the set's ``seed`` (SEED for the examples);
training/val_tracks.py uses them for validation tracks from the training sources.
"""
from __future__ import annotations

import argparse
import csv
import logging
import math
import sys
from fractions import Fraction
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy import signal

from tagger.labels import BUNDLED_LABELS

from .corpus.audio import (RENDER_SAMPLES, RENDER_SECONDS, SAMPLE_RATE, SILENCE_RMS, active_fraction,
                           db_to_gain, rms)
from .corpus.effects import random_reverb
from .corpus.material import (CRASH, CRASH2, GENERATORS, TOMS, MusicContext, Note, _parse_piece, _vel,
                              drum_phrase, fit_to_range, playable_range)
from .corpus.sources import DRUM_BANK, SOUNDFONTS, Phrase, Stem, coverage_for, render_stems

log = logging.getLogger("training.make_examples")

SOURCE = "timgm6mb"  # the only soundfont used: held out from the bundled model's training
SEED = 2024
TAIL_SECONDS = 0.4  # a note may ring this far past its window before it is released
FADE_SECONDS = 0.08  # each window render fades out over its last 80 ms (no clicks)
END_FADE_SECONDS = 0.5  # the track's own fade-out
PEAK = db_to_gain(-1.0)  # final peak level, dBFS
SEGMENT_SECONDS = 3.0  # tagger's segment length (level check per segment)
COMMAND = "python -m training.make_examples --out examples"  # what `make examples` runs


@dataclass(frozen=True)
class Part:
    """One instrument of a track: its label, GM program and what it plays.

    ``material``: ``("score", piece, part indices, start quarter length)``, a music21
    corpus chorale; ``("gen", generator)``, a corpus phrase generator; ``("drums", style)``,
    a corpus drum groove of that style.
    """

    label: str
    program: int  # bank-0 program, or the drum kit (bank 128) for "drums"
    name: str  # the soundfont preset, for the README
    material: tuple
    gain_db: float = 0.0  # re the common level; within +-3 dB (the corpus's mix rule)
    pan: float = 0.0  # -1 left .. +1 right
    dyn: float = 90.0  # base MIDI velocity
    vary: bool = False  # generated: new material every window (lead) or a loop (accompaniment)


@dataclass(frozen=True)
class Track:
    file: str
    codec: str  # PyAV encoder
    format: str  # for the README
    rate: int  # Hz of the encoded file
    channels: int
    bit_rate: int | None  # bits/s for lossy codecs
    seconds: float
    bpm: float
    window_beats: int  # beats per rendered window (<= 3 s)
    parts: tuple[Part, ...]
    key: int = 0
    mode: str = "major"
    progression: tuple[int, ...] = (0,)
    beats_per_chord: int = 4
    beats_per_bar: int = 4
    style: str = ""  # for the README
    source: str = SOURCE  # the sound source every part is rendered with (training.corpus.sources)

    @property
    def labels(self) -> tuple[str, ...]:
        """The true labels, in BUNDLED_LABELS order."""
        present = {p.label for p in self.parts}
        return tuple(lab for lab in BUNDLED_LABELS if lab in present)

    @property
    def window_seconds(self) -> float:
        return self.window_beats * 60.0 / self.bpm


CHORALE_A, CHORALE_B, CHORALE_C = "bach/bwv66.6.mxl", "bach/bwv269.mxl", "bach/bwv227.7.mxl"

TRACKS: tuple[Track, ...] = (
    Track("piano_solo.flac", "flac", "FLAC, 16-bit, mono, 44.1 kHz", 44100, 1, None, 12.0, 80, 4,
          (Part("piano", 0, "Acoustic Grand Piano", ("score", CHORALE_A, (0, 1, 2, 3), 0.0), dyn=80),),
          style="Bach chorale BWV 66.6, all four voices on the piano, 80 bpm"),
    Track("rock_band.mp3", "libmp3lame", "MP3 128 kb/s, stereo, 44.1 kHz", 44100, 2, 128_000, 12.0, 120, 4,
          (Part("drums", 0, "Standard kit", ("drums", "rock"), gain_db=0.0, dyn=100),
           Part("bass", 34, "Picked Bass", ("gen", "bassline"), gain_db=-1.0, pan=-0.1, dyn=100),
           Part("electric_guitar", 29, "Overdrive Guitar", ("gen", "riff"), gain_db=1.0, pan=0.4, dyn=100)),
          key=4, mode="minor", progression=(0, 5, 3, 4), style="rock groove, bass line and guitar riff over i-VI-iv-v in E minor, 120 bpm"),
    Track("string_duet.ogg", "vorbis", "Ogg Vorbis (FFmpeg's native encoder), ~120 kb/s, stereo, 44.1 kHz", 44100, 2, 112_000, 12.5, 72, 3,
          (Part("violin", 40, "Violin", ("score", CHORALE_B, (0,), 0.0), pan=-0.35, dyn=90),
           Part("cello", 42, "Cello", ("score", CHORALE_B, (3,), 0.0), pan=0.35, dyn=95)),
          style="Bach chorale BWV 269: soprano on the violin, bass on the cello, 72 bpm"),
    Track("jazz_combo.m4a", "aac", "AAC-LC 128 kb/s in MP4 (.m4a), stereo, 44.1 kHz", 44100, 2, 128_000, 12.0, 160, 8,
          (Part("saxophone", 66, "Tenor Sax", ("gen", "melody"), gain_db=1.5, pan=0.3, dyn=95, vary=True),
           Part("piano", 0, "Acoustic Grand Piano", ("gen", "chords"), gain_db=0.0, pan=-0.35, dyn=75),
           Part("bass", 32, "Acoustic Bass", ("gen", "bassline"), gain_db=-0.5, pan=0.05, dyn=100),
           Part("drums", 32, "Jazz kit", ("drums", "jazz"), gain_db=-2.0, dyn=95)),
          key=5, progression=(1, 4, 0, 0), style="ii-V-I in F, swing ride pattern, 160 bpm"),
    Track("brass.opus", "libopus", "Opus 64 kb/s in Ogg, stereo, 48 kHz (Opus has no 44.1 kHz)", 48000, 2, 64_000, 12.5, 96, 4,
          (Part("trumpet", 56, "Solo Trumpet", ("gen", "melody"), gain_db=1.0, pan=-0.3, dyn=95, vary=True),
           Part("trombone", 57, "Trombone", ("gen", "sustained"), gain_db=0.0, pan=0.3, dyn=90)),
          key=10, progression=(0, 3, 4, 0), style="trumpet melody over trombone chord tones, I-IV-V-I in B-flat, 96 bpm"),
    Track("folk.wav", "pcm_s16le", "WAV, 16-bit PCM, mono, 44.1 kHz", 44100, 1, None, 10.5, 120, 6,
          (Part("acoustic_guitar", 25, "Steel Guitar", ("gen", "strum"), gain_db=0.0, dyn=85),
           Part("banjo", 105, "Banjo", ("gen", "roll"), gain_db=-1.0, dyn=90),
           Part("accordion", 21, "Accordion", ("gen", "melody"), gain_db=1.0, dyn=90, vary=True)),
          key=7, progression=(0, 3, 0, 4), beats_per_chord=3, beats_per_bar=3,
          style="waltz: strummed guitar, banjo roll and accordion tune, I-IV-I-V in G, 120 bpm"),
    Track("organ.aiff", "pcm_s16be", "AIFF, 16-bit PCM, mono, 44.1 kHz", 44100, 1, None, 10.0, 66, 3,
          (Part("organ", 19, "Church Organ", ("score", CHORALE_C, (0, 1, 2, 3), 0.0), dyn=90),),
          style="Bach chorale BWV 227.7, all four voices on the organ, 66 bpm"),
    Track("synth_pop.wv", "wavpack", "WavPack (lossless), 16-bit, mono, 44.1 kHz", 44100, 1, None, 13.125, 128, 4,
          (Part("synthesizer", 81, "Saw Wave lead", ("gen", "arpeggio"), gain_db=0.0, dyn=90),
           Part("synthesizer", 89, "Warm Pad", ("gen", "pad"), gain_db=-2.0, dyn=85),
           Part("drums", 25, "TR-808 kit", ("drums", "disco"), gain_db=-1.0, dyn=105)),
          key=9, mode="minor", progression=(5, 3, 0, 4), style="808 disco beat, saw arpeggio and pad, VI-iv-i-v in A minor, 128 bpm"),
)


# ---------------------------------------------------------------------------- material


def _context(track: Track, window: int) -> MusicContext:
    """The track's context for one window: the progression starts at the chord sounding
    at the window's start, so generated parts follow the harmony across windows."""
    if track.window_beats % track.beats_per_chord:
        raise ValueError(f"{track.file}: a window must hold whole chords")
    chords = window * track.window_beats // track.beats_per_chord
    prog = track.progression
    k = chords % len(prog)
    return MusicContext(track.bpm, track.key, track.mode, prog[k:] + prog[:k],
                        track.beats_per_chord, track.beats_per_bar)


def _score_notes(track: Track, part: Part, rng: np.random.Generator) -> list[Note]:
    """One continuous chorale passage over the whole track (seconds from its start)."""
    _, rel, part_indices, start_ql = part.material
    pieces = _parse_piece(rel)
    if not pieces:
        raise RuntimeError(f"music21 could not parse {rel}")
    parts = pieces[0]["parts"]
    spb = 60.0 / track.bpm
    end_ql = start_ql + track.seconds / spb
    events = [(on, dur, k) for j in part_indices for on, dur, keys in parts[j] for k in keys
              if start_ql <= on < end_ql]
    lo, hi = playable_range(part.label, part.program)
    keys = fit_to_range([k for _, _, k in events], lo, hi)
    return sorted((Note((on - start_ql) * spb, (on - start_ql + dur * 0.95) * spb, k, _vel(rng, part.dyn, 6))
                   for (on, dur, _), k in zip(events, keys)), key=lambda n: (n.start, n.pitch))


def _drum_window(track: Track, part: Part, ctx: MusicContext, ti: int, pi: int, w: int,
                 seed: int = SEED) -> list[Note]:
    """A groove of the part's style without fills or crashes (the first seed that gives one)."""
    style = part.material[1]
    for s in range(500):
        rng = np.random.default_rng([seed, ti, pi, w, s])
        phrase = drum_phrase(rng, ctx, part.dyn)
        notes = [n for n in phrase.notes if n.start < track.window_seconds]
        if phrase.origin == f"gen:drums_{style}" and not any(
                n.pitch in (CRASH, CRASH2, *TOMS) for n in notes):
            return notes
    raise RuntimeError(f"no {style} groove without a fill found")


def part_notes(track: Track, ti: int, pi: int, seed: int = SEED) -> list[Note]:
    """The part's notes over the whole track, in seconds (track ``ti`` of a set rendered with ``seed``)."""
    part = track.parts[pi]
    kind = part.material[0]
    if kind == "score":
        return _score_notes(track, part, np.random.default_rng([seed, ti, pi]))
    L = track.window_seconds
    lo, hi = playable_range(part.label, part.program) if kind == "gen" else (0, 127)
    notes: list[Note] = []
    for w in range(math.ceil(track.seconds / L)):
        ctx = _context(track, w)
        if kind == "drums":
            window = _drum_window(track, part, ctx, ti, pi, w, seed)
        else:
            rng = np.random.default_rng([seed, ti, pi, w] if part.vary else [seed, ti, pi])
            window = [n for n in GENERATORS[part.material[1]](rng, ctx, lo, hi, part.dyn).notes if n.start < L]
        t0 = w * L
        notes += [replace(n, start=n.start + t0, end=n.end + t0) for n in window]
    return notes


# ---------------------------------------------------------------------------- rendering


def _window_phrases(notes: list[Note], t0: float, length: float, origin: str) -> Phrase:
    """Notes starting in [t0, t0 + length), relative to t0, released by the render's end."""
    last = min(length + TAIL_SECONDS, RENDER_SECONDS - FADE_SECONDS - 0.05)
    out = []
    for n in notes:
        if t0 <= n.start < t0 + length:
            start = n.start - t0
            out.append(Note(start, max(start + 0.05, min(n.end - t0, last)), n.pitch, n.velocity))
    return Phrase(out, origin)


def render_track(track: Track, ti: int, coverage, seed: int = SEED) -> list[np.ndarray]:
    """Each part's stem over the whole track: float32 mono at SAMPLE_RATE (22.05 kHz).

    ``coverage``: :func:`training.corpus.sources.coverage_for` of ``track.source``. The
    soundfonts and freepats render the same notes the same way whatever the seed; the
    project's own synthesiser and physical models draw their patch or model variant
    from it, so it is one per track (the same instrument in every window).
    """
    if coverage.source != track.source:
        raise ValueError(f"{track.file}: coverage of {coverage.source}, track rendered with {track.source}")
    for p in track.parts:
        bank = DRUM_BANK if p.label == "drums" else 0
        if (bank, p.program) not in coverage.programs[p.label]:
            raise RuntimeError(f"{track.file}: {track.source} has no {p.label} preset {bank}:{p.program}")
    notes = [part_notes(track, ti, pi, seed) for pi in range(len(track.parts))]
    notes = [[n for n in ns if n.start < track.seconds - 0.3] for ns in notes]
    if coverage.drum_keys is not None:  # a source with some drum keys only (freepats, synth)
        notes = [[n for n in ns if p.label != "drums" or n.pitch in coverage.drum_keys]
                 for p, ns in zip(track.parts, notes)]
    L = track.window_seconds
    n_windows = math.ceil(track.seconds / L)
    total = int(round(track.seconds * SAMPLE_RATE))
    stems = np.zeros((len(track.parts), int(round(n_windows * L * SAMPLE_RATE)) + RENDER_SAMPLES), np.float32)
    fade = np.ones(RENDER_SAMPLES, np.float32)
    nf = int(FADE_SECONDS * SAMPLE_RATE)
    fade[-nf:] = np.linspace(1.0, 0.0, nf, dtype=np.float32)
    render_seed = int(np.random.default_rng([seed, ti, 98]).integers(2**31))  # one per track
    for w in range(n_windows):
        window = [Stem(p.label, DRUM_BANK if p.label == "drums" else 0, p.program,
                       _window_phrases(ns, w * L, L, str(p.material)))
                  for p, ns in zip(track.parts, notes)]
        audio = render_stems(track.source, window, coverage, render_seed)
        a = int(round(w * L * SAMPLE_RATE))
        for i, x in enumerate(audio):
            stems[i, a:a + RENDER_SAMPLES] += x * fade
    return list(stems[:, :total])


def _pan(pan: float) -> tuple[float, float]:
    angle = (pan + 1.0) * math.pi / 4.0  # constant power
    return math.cos(angle), math.sin(angle)


def mix_track(track: Track, ti: int, stems: list[np.ndarray], seed: int = SEED
              ) -> tuple[np.ndarray, list[list[float]]]:
    """(channels, samples) at SAMPLE_RATE, and each part's level (dBFS) per 3-s segment."""
    levels = [rms(s) for s in stems]
    for p, r in zip(track.parts, levels):
        if r < SILENCE_RMS:
            raise RuntimeError(f"{track.file}: the {p.label} stem is silent")
    scaled = [s * np.float32(db_to_gain(p.gain_db) / r) for s, p, r in zip(stems, track.parts, levels)]
    if track.channels == 1:
        mix = np.sum(scaled, axis=0)[None, :]
        gains = [(1.0,)] * len(scaled)
    else:
        gains = [_pan(p.pan) for p in track.parts]
        mix = np.stack([sum(g[c] * s for g, s in zip(gains, scaled)) for c in range(2)])
    reverb_seed = np.random.default_rng([seed, ti, 99]).integers(2**31)
    mix = np.stack([random_reverb(ch.astype(np.float32), np.random.default_rng(reverb_seed))[0] for ch in mix])
    n_end = int(END_FADE_SECONDS * SAMPLE_RATE)
    mix[:, -n_end:] *= np.linspace(1.0, 0.0, n_end, dtype=np.float32)
    k = PEAK / float(np.max(np.abs(mix)))
    mix = (mix * k).astype(np.float32)
    seg = int(SEGMENT_SECONDS * SAMPLE_RATE)
    table = []
    for s, g in zip(scaled, gains):
        s = s * k * max(g)
        table.append([20 * math.log10(max(rms(s[a:a + seg]), 1e-9)) for a in range(0, len(s), seg)])
    return mix, table


def check_levels(track: Track, stems: list[np.ndarray], table: list[list[float]]) -> None:
    """Every part sounds in every whole 3-s segment and in >= 30 % of the track's frames."""
    seg = int(SEGMENT_SECONDS * SAMPLE_RATE)
    for p, s, row in zip(track.parts, stems, table):
        whole = [db for a, db in zip(range(0, len(s), seg), row) if a + seg <= len(s)]
        if min(whole) < 20 * math.log10(SILENCE_RMS):
            raise RuntimeError(f"{track.file}: {p.label} silent in a segment ({row})")
        if active_fraction(s) < 0.3:
            raise RuntimeError(f"{track.file}: {p.label} sounds in too few frames")


# ---------------------------------------------------------------------------- encoding

_PREFERRED_FORMATS = ("s16", "s16p", "fltp", "flt")


def encode(path: Path, audio: np.ndarray, track: Track) -> None:
    """Resample (channels, n) float32 at SAMPLE_RATE to the track's rate and encode with PyAV."""
    import av

    g = math.gcd(track.rate, SAMPLE_RATE)
    x = signal.resample_poly(audio, track.rate // g, SAMPLE_RATE // g, axis=1)
    x = np.clip(x, -1.0, 1.0).astype(np.float32)
    layout = "mono" if track.channels == 1 else "stereo"
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    # bitexact: no random Ogg serial numbers, no encoder version strings (same bytes each run)
    with av.open(str(tmp), "w", options={"fflags": "+bitexact"}) as out:
        options = {"flags": "+bitexact"}
        if track.codec == "vorbis":
            options["strict"] = "-2"  # FFmpeg's native Vorbis encoder is "experimental"
        stream = out.add_stream(track.codec, rate=track.rate, options=options)
        stream.layout = layout
        if track.bit_rate:
            stream.bit_rate = track.bit_rate
        available = [f.name for f in stream.codec_context.codec.audio_formats]
        fmt = next((f for f in _PREFERRED_FORMATS if f in available), available[0])
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x), format="fltp", layout=layout)
        frame.sample_rate = track.rate
        frame.pts = 0
        frame.time_base = Fraction(1, track.rate)
        resampler = av.AudioResampler(format=fmt, layout=layout, rate=track.rate,
                                      frame_size=stream.codec_context.frame_size or 4096)
        for f in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    tmp.replace(path)


# ---------------------------------------------------------------------------- README, manifest


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KB"


def write_readme(out: Path, rows: list[dict]) -> None:
    lines = [
        "# Example tracks",
        "",
        "Short tracks for trying tagger out: `make demo`, or",
        "",
        "```",
        "tagger scan examples --csv instruments.csv",
        "tagger eval examples/labels.csv",
        "```",
        "",
        "Each file is a different container/codec and a different mix of instruments. The",
        "**instruments** column is the truth: exactly the instruments rendered into the file,",
        "no more and no fewer, so you can compare it with the `instruments` column (and the",
        "per-label scores) that `tagger scan` writes to its report. The same labels are in",
        "[labels.csv](labels.csv) (`path,labels`, labels joined by `;`), the manifest",
        "`tagger eval examples/labels.csv` scores the model against.",
        "",
        "| file | format | length | instruments (true labels) | size |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        t: Track = r["track"]
        lines.append(f"| `{t.file}` | {t.format} | {t.seconds:g} s | {', '.join(t.labels)} | {_size(r['size'])} |")
    lines += [
        "",
        "## How they were made",
        "",
        "Rendered by [training/make_examples.py](../training/make_examples.py) with the **TimGM6mb**",
        f"General MIDI soundfont only (`{SOUNDFONTS[SOURCE]}`, Debian package `timgm6mb-soundfont`,",
        "GPL-2). The bundled model never trains on TimGM6mb (the corpus's held-out soundfont,",
        "used only for the test set; see training/CORPUS.md), so these are sounds it has not",
        "learned from: the demo is honest, though it is still General MIDI sound, not a recording.",
        "",
        "The notes come from the corpus builder's own code (training/corpus): music21 corpus",
        "chorale excerpts and the corpus's phrase generators (melody, chords, bass line, strum,",
        "roll, riff, arpeggio, pad) and drum grooves, all parts of a track sharing one tempo,",
        "key and chord progression. Each instrument is rendered as its own stem by fluidsynth,",
        "levelled by RMS within +-3 dB of the others (the corpus's rule for a multi-label",
        "mix, so every listed instrument is clearly audible), panned, given a little room",
        "reverb, resampled from 22.05 kHz to the file's rate and encoded with PyAV (FFmpeg).",
        "Seeds are fixed: the same soundfont, fluidsynth and FFmpeg give the same files.",
        "",
        "| file | music | parts (TimGM6mb preset, GM program; level re the others) |",
        "| --- | --- | --- |",
    ]
    for r in rows:
        t = r["track"]
        parts = "; ".join(
            f"{p.label}: {p.name} ({'kit ' if p.label == 'drums' else 'program '}{p.program}; {p.gain_db:+g} dB)"
            for p in t.parts)
        lines.append(f"| `{t.file}` | {t.style} | {parts} |")
    lines += [
        "",
        "Level check at render time: each part's RMS (dBFS) in the final mix, per 3-s segment (the",
        "louder channel for stereo files; the script fails if a part is silent in any segment):",
        "",
        "```",
    ]
    for r in rows:
        lines.append(r["track"].file)
        for p, row in zip(r["track"].parts, r["levels"]):
            lines.append(f"  {p.label:<16} " + " ".join(f"{db:6.1f}" for db in row))
    lines += [
        "```",
        "",
        "## Regenerating",
        "",
        "```",
        "make examples",
        f"# which runs, from the repository root in the project's venv: {COMMAND}",
        "```",
        "",
        "It needs the TimGM6mb soundfont, libfluidsynth and music21's corpus, and rewrites",
        "every file here, this README and labels.csv (a few seconds on one core).",
        "`tests/test_examples.py` checks the committed files (they decode, to these lengths,",
        "and labels.csv lists each with valid labels) without rendering anything.",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines))


def write_manifest(out: Path, tracks: tuple[Track, ...] = TRACKS) -> None:
    """OUT/labels.csv: ``path,labels``, the manifest `tagger eval` reads."""
    with open(out / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["path", "labels"])
        for t in tracks:
            w.writerow([t.file, ";".join(t.labels)])


def render_one(track: Track, ti: int, coverage, out: Path, seed: int = SEED) -> dict:
    """Render, mix, check and encode track ``ti`` of a set to OUT/<file>; its README row."""
    stems = render_track(track, ti, coverage, seed)
    mix, table = mix_track(track, ti, stems, seed)
    check_levels(track, stems, table)
    path = out / track.file
    path.parent.mkdir(parents=True, exist_ok=True)
    encode(path, mix, track)
    return {"track": track, "size": path.stat().st_size, "levels": table}


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.make_examples", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output folder (examples)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not SOUNDFONTS[SOURCE].exists():
        print(f"error: the TimGM6mb soundfont is missing ({SOUNDFONTS[SOURCE]}); "
              "install the Debian package timgm6mb-soundfont", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    coverage = coverage_for(SOURCE)
    rows = []
    for ti, track in enumerate(TRACKS):
        rows.append(render_one(track, ti, coverage, args.out))
        log.info("%s: %s, %.1f s, %s, %s", track.file, track.codec, track.seconds, ",".join(track.labels),
                 _size(rows[-1]["size"]))
        for p, row in zip(track.parts, rows[-1]["levels"]):
            log.info("  %-16s %s dBFS per 3 s", p.label, " ".join(f"{db:6.1f}" for db in row))
    write_manifest(args.out)
    write_readme(args.out, rows)
    total = sum(r["size"] for r in rows)
    print(f"{len(rows)} example tracks ({_size(total)}) written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
