"""The ``recorded`` and ``recorded2`` held-out sets: recorded instruments, never trained or tuned on.

    python -m training.recorded --out data/corpus_recorded [--singles 16] [--mixtures 400] [--seed 21]
    python -m training.recorded --set recorded2 --out data/corpus_recorded2 [--singles 48] [--mixtures 600] [--seed 22]
    python -m training.recorded --out data/corpus_recorded --explain MODEL   # what it calls each recording

Every other held-out set is our own render (a soundfont, our physical models, our
voices). These are sound someone recorded, from Debian packages (DESIGN.md reserves every
such library for evaluation):

- ``recorded``: the instrument samples of ``lmms-common`` and ``sonic-pi-samples`` (32
  recordings, 11 labels, 1-5 a label; ``SAMPLES``).
- ``recorded2``: instrument phrases from ``gcompris-qt-data`` (inside Qt resource bundles,
  read with ``training.qt_rcc``), pipe-organ notes from ``grandorgue-demo``, acoustic
  guitar strums from ``hydrogen-drumkits-effects``, a metal band's isolated guitar tracks
  from ``fretsonfire-songs-muldjord`` and guitar and violin phrases from
  ``csoundqt-examples`` (48 recordings, 13 labels, 1-17 a label; ``SAMPLES2``).

A label's figure is the figure of its few recordings: read it as a probe of real timbres,
not as a benchmark.

How a sample becomes 3-s clips (the tables say which way each is used):

- ``note``: a one-shot note, played the way a sampler plays it: a phrase of notes 0.25-1 s
  apart, each the sample resampled by -5..+5 semitones and cut (30 ms fade) at the next.
- ``phrase``: a recording longer than a clip (a held organ chord, a strummed pattern): a
  random 3-s window of it, as recorded.
- ``active``: a random 3-s window of a recording that pauses (a band's guitar track, a
  solo phrase), among the windows where it plays (``active_window``).
- ``loop``: a drum loop, repeated end to end, from a random point.

Clips alone: ``--singles`` of each sample (``recorded``) or of each label, taken in turn
from its recordings (``recorded2``, whose labels have 1 to 17). Mixtures: 2-3 samples of
different labels, each made as above, at 0, -3 or -6 dB below the loudest (by RMS), like
``corpus_test``'s. No effect, room or codec is added. Writes DIR/clips/*.flac (22 050 Hz
mono, 3.0 s), DIR/manifest.csv (``path,labels,source,kind,programs``; ``programs`` names
the samples), DIR/details.jsonl (each clip's recordings and levels, for
``training.mixture_errors``) and a stamp, like ``training.build_corpus``.
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from tagger.decode import decode
from tagger.errors import AudioDecodeError

from .corpus.audio import CLIP_SAMPLES, SAMPLE_RATE, db_to_gain, rms
from .corpus.clips import write_details, write_manifest
from .qt_rcc import RccError
from .qt_rcc import extract as extract_resource
from .stamp import build_arguments, clear_stamp, kept, write_stamp

ROOTS = {"lmms": (Path("/usr/share/lmms/samples"), "lmms-common"),
         "sonic-pi": (Path("/usr/share/sonic-pi/samples"), "sonic-pi-samples")}
# (root, path under it, label, how it is played). Labels follow the file names; the
# distorted steel-string guitars are called electric_guitar, the sound of an overdriven
# guitar. Left out as ambiguous: synth basses (bass or synthesizer), the harpsichord (GM 6,
# no label), the latin brass section, choirs and pads named "chorus"/"string".
SAMPLES: tuple[tuple[str, str, str, str], ...] = (
    ("lmms", "instruments/steel_guitar01.ogg", "acoustic_guitar", "note"),
    ("lmms", "latin/latin_guitar01.ogg", "acoustic_guitar", "phrase"),
    ("lmms", "latin/latin_guitar02.ogg", "acoustic_guitar", "phrase"),
    ("lmms", "latin/latin_guitar03.ogg", "acoustic_guitar", "phrase"),
    ("lmms", "instruments/steel_guitar_slight_distorted01.ogg", "electric_guitar", "note"),
    ("lmms", "instruments/steel_guitar_medium_distorted01.ogg", "electric_guitar", "note"),
    ("lmms", "instruments/steel_guitar_heavy_distorted01.ogg", "electric_guitar", "note"),
    ("lmms", "instruments/bassslap01.ogg", "bass", "note"),
    ("lmms", "instruments/bassslap02.ogg", "bass", "note"),
    ("lmms", "instruments/violin_fingered01.ogg", "violin", "note"),
    ("lmms", "instruments/violin_double_stop01.ogg", "violin", "note"),
    ("lmms", "instruments/violin_pizzicato01.ogg", "violin", "note"),
    ("lmms", "instruments/cello01.ogg", "cello", "note"),
    ("lmms", "instruments/church_organ01.ogg", "organ", "phrase"),
    ("lmms", "instruments/church_organ02.ogg", "organ", "phrase"),
    ("lmms", "instruments/church_organ03.ogg", "organ", "phrase"),
    ("lmms", "instruments/church_organ04.ogg", "organ", "phrase"),
    ("lmms", "instruments/e_organ01.ogg", "organ", "phrase"),
    ("lmms", "instruments/piano01.ogg", "piano", "note"),
    ("lmms", "instruments/piano02.ogg", "piano", "note"),
    ("lmms", "instruments/e_piano_accord01.ogg", "piano", "note"),
    ("lmms", "instruments/e_piano_accord02.ogg", "piano", "note"),
    ("lmms", "instruments/flute01.ogg", "flute", "note"),
    ("lmms", "instruments/trumpet01.ogg", "trumpet", "note"),
    ("lmms", "stringsnpads/juno_pad01.ogg", "synthesizer", "phrase"),
    ("lmms", "stringsnpads/nord_ambient01.ogg", "synthesizer", "phrase"),
    ("lmms", "stringsnpads/korg_poly6_drone01.ogg", "synthesizer", "note"),
    ("lmms", "beats/break01.ogg", "drums", "loop"),
    ("lmms", "beats/break02.ogg", "drums", "loop"),
    ("lmms", "beats/jungle01.ogg", "drums", "loop"),
    ("sonic-pi", "loop_amen_full.flac", "drums", "loop"),
    ("sonic-pi", "loop_breakbeat.flac", "drums", "loop"),
)

# recorded2. A root is a folder, a Qt resource bundle (.rcc) or a zip archive (a GrandOrgue
# .orgue package); the path is a file under or inside it.
ROOTS2 = {"gcompris": (Path("/usr/share/gcompris-qt/rcc/instruments.rcc"), "gcompris-qt-data"),
          "gcompris-memory": (Path("/usr/share/gcompris-qt/rcc/memory-sound.rcc"), "gcompris-qt-data"),
          "grandorgue": (Path("/usr/share/GrandOrgue/packages/demo-4232D4C616E4B99145537F02B34D342D4E3E3808.orgue"),
                         "grandorgue-demo"),
          "hydrogen": (Path("/usr/share/hydrogen/data/drumkits/belofilms_GuitarStrums"), "hydrogen-drumkits-effects"),
          "muldjord": (Path("/usr/share/games/fretsonfire/data/songs/muldjord"), "fretsonfire-songs-muldjord"),
          "csoundqt": (Path("/usr/share/csoundqt/Examples/SourceMaterials"), "csoundqt-examples")}
_GC = "gcompris/src/activities/instruments/resource/"
# Left out: the other sounds of gcompris' instruments activity (harp, horn, tuba,
# harmonica, timpani, bongo and the like: not our labels; drum_kit.ogg: its licence is in
# doubt, CC Sampling Plus 1.0 where Debian took it, CC-BY-NC-3.0 on its page now),
# csoundqt's viola (BratscheMono.wav: training renders GM's viola as violin, but no label
# names a viola, so it is not scored as one), gcompris' fiddle tune (explore_world_music's
# ireland.ogg: notes at 54 and 73 Hz, A1 and D2, far below a violin, hold 15 % of its
# energy: an accompaniment its one label would leave unnamed), csoundqt's flute.wav and
# BassGuitarC.wav (their waveform repeats exactly: renders of a looped sampler, not
# recordings), the organ's Sounds/*.wav (drawstop noises, and Motor.wav the blower),
# and most of the guitar strums (one dynamic layer of ten plain chords: the slides and the
# other layers are the same guitar again).
SAMPLES2: tuple[tuple[str, str, str, str], ...] = (
    ("gcompris", f"{_GC}accordion.ogg", "accordion", "active"),
    ("gcompris", f"{_GC}banjo.ogg", "banjo", "active"),
    ("gcompris", f"{_GC}cello.ogg", "cello", "active"),
    ("gcompris", f"{_GC}clarinet.ogg", "clarinet", "active"),
    ("gcompris", f"{_GC}electric_guitar.ogg", "electric_guitar", "active"),
    ("gcompris", f"{_GC}flute_traversiere.ogg", "flute", "active"),
    ("gcompris", f"{_GC}guitar.ogg", "acoustic_guitar", "active"),
    ("gcompris", f"{_GC}organ.ogg", "organ", "active"),
    ("gcompris", f"{_GC}piano.ogg", "piano", "active"),
    ("gcompris", f"{_GC}saxophone.ogg", "saxophone", "active"),
    ("gcompris", f"{_GC}trombone.ogg", "trombone", "active"),
    ("gcompris", f"{_GC}trumpet.ogg", "trumpet", "active"),
    ("gcompris", f"{_GC}violin.ogg", "violin", "active"),
    *(("gcompris-memory", f"gcompris/src/activities/memory-sound/resource/guitar_son{i}.ogg", "acoustic_guitar", "note")
      for i in (1, 2, 3, 4)),
    # real pipe-organ notes (WavPack in .wav files), two of each stop
    *(("grandorgue", f"{stop}/{note}.wav", "organ", "note")
      for stop in ("Bourdon8", "FlHarm8", "Gamba8", "Hautbois8", "Montre8", "Octavin2", "Trompette8")
      for note in ("054-F#", "067-G")),
    # chord strums of an acoustic guitar, 2 s each (the second loudest of four layers)
    *(("hydrogen", f"{chord}_01.flac", "acoustic_guitar", "note")
      for chord in ("Amajor", "Aminor", "Bminor", "Cmajor", "Dmajor", "Dminor", "Emajor", "Eminor", "Fmajor",
                    "Gmajor")),
    # a metal band's isolated guitar tracks (distorted), 3-4 min each
    *(("muldjord", f"{song}/guitar.ogg", "electric_guitar", "active")
      for song in ("armygeddon", "chaos_god", "internal_degeneration", "mutilated_mime")),
    ("csoundqt", "ClassicalGuitar.wav", "acoustic_guitar", "active"),
    ("csoundqt", "ClassGuit.wav", "acoustic_guitar", "active"),
    ("csoundqt", "violins.wav", "violin", "active"),
)
KINDS = ("note", "phrase", "active", "loop")
FADE = int(0.03 * SAMPLE_RATE)


@dataclass(frozen=True)
class RecordedSet:
    """A recorded held-out set: its samples, where they live and how many clips by default."""
    name: str
    samples: tuple[tuple[str, str, str, str], ...]
    roots: dict[str, tuple[Path, str]]
    singles: int           # clips alone: of each sample, or of each label when per_label
    per_label: bool
    mixtures: int
    seed: int


def recorded_set(name: str) -> RecordedSet:
    """The set called ``name``, made from the module's tables as they are now."""
    if name == "recorded":
        return RecordedSet(name, SAMPLES, ROOTS, singles=16, per_label=False, mixtures=400, seed=21)
    if name == "recorded2":
        return RecordedSet(name, SAMPLES2, ROOTS2, singles=48, per_label=True, mixtures=600, seed=22)
    raise ValueError(f"unknown recorded set {name!r}")


def missing_packages(roots: dict[str, tuple[Path, str]] = ROOTS) -> list[str]:
    return sorted({pkg for root, pkg in roots.values() if not root.exists()})


def shift(x: np.ndarray, semitones: float) -> np.ndarray:
    """Resample ``x`` so that it sounds ``semitones`` higher (and shorter), as a sampler does."""
    ratio = Fraction(2 ** (-semitones / 12)).limit_denominator(64)
    return signal.resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)


def _faded(x: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` samples of ``x`` (zero-padded), the last FADE of them faded out."""
    out = np.zeros(n, dtype=np.float32)
    m = min(n, len(x))
    out[:m] = x[:m]
    f = min(FADE, m)
    if m >= len(x) or f == 0:
        return out
    out[m - f:m] *= np.linspace(1.0, 0.0, f, dtype=np.float32)
    return out


def sampler_phrase(note: np.ndarray, rng: np.random.Generator, n: int = CLIP_SAMPLES) -> np.ndarray:
    """One-shot ``note`` played as a monophonic phrase: -5..+5 semitones, 0.25-1 s apart."""
    out = np.zeros(n, dtype=np.float32)
    t = int(rng.uniform(0.0, 0.2) * SAMPLE_RATE)
    while t < n:
        gap = int(rng.uniform(0.25, 1.0) * SAMPLE_RATE)
        played = shift(note, float(rng.integers(-5, 6)))
        length = min(gap, n - t)
        out[t:t + length] += _faded(played, length) * rng.uniform(0.6, 1.0)
        t += gap
    return out


def window(x: np.ndarray, rng: np.random.Generator, n: int = CLIP_SAMPLES) -> np.ndarray:
    """A random ``n``-sample window of a recording at least that long (else zero-padded)."""
    if len(x) <= n:
        return np.pad(x, (0, n - len(x)))
    start = int(rng.integers(0, len(x) - n + 1))
    return x[start:start + n].copy()


def active_window(x: np.ndarray, rng: np.random.Generator, n: int = CLIP_SAMPLES,
                  within_db: float = 10.0) -> np.ndarray:
    """A random ``n``-sample window of ``x`` where it plays (else zero-padded, as ``window``).

    Windows are judged on a 0.25-s grid. One plays when its RMS is within ``within_db`` of
    the recording's loud level (the 90th percentile of the windows' RMS) and at most a
    quarter of its 0.25-s blocks are more than twice that below it (rests, not pauses).
    When no window passes the second test (sparse notes), the first one alone decides.
    The clip starts at a window that plays or anywhere between it and the next, if that
    one plays too.
    """
    block = n // 12
    blocks = len(x) // block
    if len(x) <= n or blocks < 12:
        return window(x, rng, n)
    power = np.mean(x[:blocks * block].astype(np.float64).reshape(blocks, block) ** 2, axis=1)
    each = np.lib.stride_tricks.sliding_window_view(power, 12)  # (windows, 12 blocks)
    level_db = 10 * np.log10(each.mean(axis=1) + 1e-20)
    loud = float(np.percentile(level_db, 90))
    quiet_blocks = np.sum(10 * np.log10(each + 1e-20) < loud - 2 * within_db, axis=1)
    loud_enough = level_db >= loud - within_db
    plays = loud_enough & (quiet_blocks <= 3)
    chosen = plays if plays.any() else loud_enough
    first = int(rng.choice(np.flatnonzero(chosen)))
    between = block if first + 1 < len(chosen) and chosen[first + 1] else 1  # up to the next window, if it plays
    start = min(first * block + int(rng.integers(0, between)), len(x) - n)
    return x[start:start + n].copy()


def looped(x: np.ndarray, rng: np.random.Generator, n: int = CLIP_SAMPLES) -> np.ndarray:
    """A loop repeated end to end, ``n`` samples from a random point of it."""
    reps = int(np.ceil((n + len(x)) / len(x)))
    start = int(rng.integers(0, len(x)))
    return np.tile(x, reps)[start:start + n].copy()


def play(x: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A clip of one sample, peak 0.5."""
    if kind not in KINDS:
        raise ValueError(f"unknown sample kind {kind!r}; one of {', '.join(KINDS)}")
    clip = {"note": sampler_phrase, "phrase": window, "active": active_window, "loop": looped}[kind](x, rng)
    peak = float(np.max(np.abs(clip)))
    return clip / peak * 0.5 if peak > 0 else clip


def mix(clips: list[np.ndarray], levels_db: list[float]) -> np.ndarray:
    """Clips at ``levels_db`` below the loudest by RMS, the sum at peak 0.5."""
    out = sum(c / max(rms(c), 1e-9) * db_to_gain(db) for c, db in zip(clips, levels_db))
    return (out / max(float(np.max(np.abs(out))), 1e-9) * 0.5).astype(np.float32)


def plan(n_samples: int, labels: list[str], singles: int, mixtures: int,
         rng: np.random.Generator, per_label: bool = False) -> list[tuple[int, ...]]:
    """Which samples each clip uses: ``singles`` clips per sample (per label when
    ``per_label``, its samples in turn), then ``mixtures`` of 2-3 samples with distinct labels."""
    distinct = sorted(set(labels))
    if per_label:
        members = {label: [i for i, lab in enumerate(labels) if lab == label] for label in distinct}
        out: list[tuple[int, ...]] = [(members[label][j % len(members[label])],)
                                      for label in distinct for j in range(singles)]
    else:
        out = [(i,) for i in range(n_samples) for _ in range(singles)]
    for _ in range(mixtures):
        k = int(rng.integers(2, min(3, len(distinct)) + 1))
        chosen = rng.choice(len(distinct), size=k, replace=False)
        out.append(tuple(int(rng.choice([i for i, lab in enumerate(labels) if lab == distinct[c]]))
                         for c in chosen))
    return out


def _source(root: Path, path: str, scratch: Path) -> Path:
    """The file ``path`` under the folder ``root``, or copied to ``scratch`` out of the Qt
    resource bundle or zip archive ``root``."""
    if root.is_dir():
        return root / path
    to = scratch / root.name / path
    try:
        if root.suffix == ".rcc":
            return extract_resource(root, path, to)
        with zipfile.ZipFile(root) as archive:
            to.parent.mkdir(parents=True, exist_ok=True)
            to.write_bytes(archive.read(path))
        return to
    except (RccError, zipfile.BadZipFile, KeyError, OSError) as exc:
        raise SystemExit(f"training.recorded: {root}: {path}: {exc}") from None


def _read(path: Path, name: str | None = None) -> np.ndarray:
    """A recording at the frontend's rate, mono; one line and exit when it cannot serve."""
    try:
        x = decode(path, SAMPLE_RATE)
    except AudioDecodeError as exc:
        raise SystemExit(f"training.recorded: {name or path}: {exc}") from None
    if rms(x) < 1e-4:
        raise SystemExit(f"training.recorded: {name or path} is silent or empty")
    return x


def build(out: Path, samples: tuple[tuple[str, str, str, str], ...] = SAMPLES, *, singles: int = 16,
          mixtures: int = 400, seed: int = 21, roots: dict[str, tuple[Path, str]] = ROOTS,
          per_label: bool = False, source: str = "recorded") -> list[dict]:
    """Write the set to ``out``; returns its rows (the manifest columns and ``details``).
    ``source`` is the clips' source column (and the end of their file names)."""
    missing = missing_packages({r: roots[r] for r, *_ in samples})
    if missing:
        raise SystemExit(f"training.recorded: missing Debian packages: {' '.join(missing)} "
                         f"(as root: apt-get install {' '.join(missing)}; or run scripts/setup_corpus.sh)")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".sources-", dir=out) as scratch:  # files out of bundles, archives
        audio = []
        for r, p, _, _ in samples:
            root = roots[r][0]
            audio.append(_read(_source(root, p, Path(scratch)), None if root.is_dir() else f"{root}:{p}"))
    labels = [s[2] for s in samples]
    rng = np.random.default_rng(seed)
    clear_stamp(out)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    for f in (out / "clips").glob("*.flac"):
        f.unlink()
    rows = []
    for n, used in enumerate(plan(len(samples), labels, singles, mixtures, rng, per_label)):
        clips = [play(audio[i], samples[i][3], rng) for i in used]
        kind = "single" if len(used) == 1 else "mix"
        levels = [0.0] + [float(rng.choice([0.0, -3.0, -6.0])) for _ in used[1:]]
        y = clips[0] if len(used) == 1 else mix(clips, levels)
        path = f"clips/{n:06d}_{kind}_{source}.flac"
        sf.write(out / path, y, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        names = [f"{samples[i][0]}:{samples[i][1]}" for i in used]
        rows.append({"path": path, "labels": ";".join(sorted({labels[i] for i in used})), "source": source,
                     "kind": kind, "programs": ";".join(f"{labels[i]}={name}" for i, name in zip(used, names)),
                     "details": {"stems": [{"label": labels[i], "recording": name, "gain_db": db}
                                           for i, name, db in zip(used, names, levels)]}})
    write_manifest(out / "manifest.csv", rows)
    write_details(out / "details.jsonl", rows)  # each clip's recordings and levels (training.mixture_errors)
    return rows


def explain(folder: Path, model: Path, cache: Path | None = None) -> str:
    """For each recording: the labels ``model`` ranks first on its single clips, with counts."""
    import torch

    from tagger.datasets import read_manifest
    from tagger.evaluate import evaluate
    from tagger.weights import load_checkpoint

    with open(folder / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    ev = evaluate(load_checkpoint(model), read_manifest(folder / "manifest.csv"), torch.device("cpu"), 2, cache)
    tops: dict[tuple[str, str], Counter] = {}
    for row, scores in zip(rows, ev.y_score):
        if row["kind"] == "single":
            tops.setdefault((row["labels"], row["programs"].split("=", 1)[1]), Counter())[
                ev.labels[int(np.argmax(scores))]] += 1
    lines = ["| label | recording | top-1 on its clips |", "| --- | --- | --- |"]
    for (label, recording), counts in sorted(tops.items()):
        lines.append(f"| {label} | {recording} | " + ", ".join(f"{k} {v}" for k, v in counts.most_common(3)) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.recorded", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--set", choices=("recorded", "recorded2"), default="recorded", help="which set (default recorded)")
    p.add_argument("--singles", type=int, help="clips of each sample alone (recorded, default 16) "
                   "or of each label alone (recorded2, default 48)")
    p.add_argument("--mixtures", type=int, help="mixtures of 2-3 samples (default 400; recorded2 600)")
    p.add_argument("--seed", type=int, help="default 21; recorded2 22")
    p.add_argument("--reuse", action="store_true", help="keep a finished build made with these arguments")
    p.add_argument("--overwrite", action="store_true", help="build again even when built (the default)")
    p.add_argument("--explain", type=Path, metavar="MODEL",
                   help="build nothing: print what MODEL ranks first on each recording's clips in --out")
    p.add_argument("--cache", type=Path, help="feature cache for --explain")
    args = p.parse_args(argv)
    if args.explain:
        print(explain(args.out, args.explain, args.cache))
        return 0
    chosen = recorded_set(args.set)
    for key in ("singles", "mixtures", "seed"):
        if getattr(args, key) is None:
            setattr(args, key, getattr(chosen, key))
    arguments = build_arguments(args)
    if args.set == "recorded":
        del arguments["set"]  # a stamp written before recorded2 existed still matches
    if args.reuse and kept(args.out, arguments):
        return 0
    rows = build(args.out, chosen.samples, singles=args.singles, mixtures=args.mixtures, seed=args.seed,
                 roots=chosen.roots, per_label=chosen.per_label, source=chosen.name)
    write_stamp(args.out, arguments)
    print(f"{len(rows)} clips written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
