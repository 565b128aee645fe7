"""The ``recorded`` held-out set: recorded instrument samples, never trained or tuned on.

    python -m training.recorded --out data/corpus_recorded [--singles 16] [--mixtures 400] [--seed 21]
    python -m training.recorded --out data/corpus_recorded --explain MODEL   # what it calls each recording

Every other held-out set is our own render (a soundfont, our physical models, our
voices). This one is sound someone recorded: the instrument samples that Debian's
``lmms-common`` and ``sonic-pi-samples`` ship (DESIGN.md reserves every such library for
evaluation). They are few (32 recordings, 11 labels, 1-5 a label), so a label's
figure is the figure of its one to five recordings: read it as a probe of real timbres,
not as a benchmark.

How a sample becomes 3-s clips (``SAMPLES`` says which way each is used):

- ``note``: a one-shot note, played the way a sampler plays it: a phrase of notes 0.25-1 s
  apart, each the sample resampled by -5..+5 semitones and cut (30 ms fade) at the next.
- ``phrase``: a recording longer than a clip (a held organ chord, a strummed pattern): a
  random 3-s window of it, as recorded.
- ``loop``: a drum loop, repeated end to end, from a random point.

Mixtures: 2-3 samples of different labels, each made as above, at 0, -3 or -6 dB below
the loudest (by RMS), like ``corpus_test``'s. No effect, room or codec is added. Writes
DIR/clips/*.flac (22 050 Hz mono, 3.0 s), DIR/manifest.csv (``path,labels,source,kind,
programs``; ``programs`` names the samples), DIR/details.jsonl (each clip's recordings and
levels, for ``training.mixture_errors``) and a stamp, like ``training.build_corpus``.
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from tagger.decode import decode
from tagger.errors import AudioDecodeError

from .corpus.audio import CLIP_SAMPLES, SAMPLE_RATE, db_to_gain, rms
from .corpus.clips import write_details, write_manifest
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
KINDS = ("note", "phrase", "loop")
FADE = int(0.03 * SAMPLE_RATE)


def missing_packages(roots: dict[str, tuple[Path, str]] = ROOTS) -> list[str]:
    return sorted({pkg for root, pkg in roots.values() if not root.is_dir()})


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


def looped(x: np.ndarray, rng: np.random.Generator, n: int = CLIP_SAMPLES) -> np.ndarray:
    """A loop repeated end to end, ``n`` samples from a random point of it."""
    reps = int(np.ceil((n + len(x)) / len(x)))
    start = int(rng.integers(0, len(x)))
    return np.tile(x, reps)[start:start + n].copy()


def play(x: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A clip of one sample, peak 0.5."""
    if kind not in KINDS:
        raise ValueError(f"unknown sample kind {kind!r}; one of {', '.join(KINDS)}")
    clip = {"note": sampler_phrase, "phrase": window, "loop": looped}[kind](x, rng)
    peak = float(np.max(np.abs(clip)))
    return clip / peak * 0.5 if peak > 0 else clip


def mix(clips: list[np.ndarray], levels_db: list[float]) -> np.ndarray:
    """Clips at ``levels_db`` below the loudest by RMS, the sum at peak 0.5."""
    out = sum(c / max(rms(c), 1e-9) * db_to_gain(db) for c, db in zip(clips, levels_db))
    return (out / max(float(np.max(np.abs(out))), 1e-9) * 0.5).astype(np.float32)


def plan(n_samples: int, labels: list[str], singles: int, mixtures: int,
         rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Which samples each clip uses: ``singles`` clips per sample, then ``mixtures`` of 2-3
    samples with distinct labels."""
    out: list[tuple[int, ...]] = [(i,) for i in range(n_samples) for _ in range(singles)]
    distinct = sorted(set(labels))
    for _ in range(mixtures):
        k = int(rng.integers(2, min(3, len(distinct)) + 1))
        chosen = rng.choice(len(distinct), size=k, replace=False)
        out.append(tuple(int(rng.choice([i for i, lab in enumerate(labels) if lab == distinct[c]]))
                         for c in chosen))
    return out


def _read(path: Path) -> np.ndarray:
    """A recording at the frontend's rate, mono; one line and exit when it cannot serve."""
    try:
        x = decode(path, SAMPLE_RATE)
    except AudioDecodeError as exc:
        raise SystemExit(f"training.recorded: {path}: {exc}") from None
    if rms(x) < 1e-4:
        raise SystemExit(f"training.recorded: {path} is silent or empty")
    return x


def build(out: Path, samples: tuple[tuple[str, str, str, str], ...] = SAMPLES, *, singles: int = 16,
          mixtures: int = 400, seed: int = 21, roots: dict[str, tuple[Path, str]] = ROOTS) -> list[dict]:
    """Write the set to ``out``; returns its rows (the manifest columns and ``details``)."""
    missing = missing_packages({r: roots[r] for r, *_ in samples})
    if missing:
        raise SystemExit(f"training.recorded: missing Debian packages: {' '.join(missing)} "
                         f"(as root: apt-get install {' '.join(missing)}; or run scripts/setup_corpus.sh)")
    audio = [_read(roots[r][0] / p) for r, p, _, _ in samples]
    labels = [s[2] for s in samples]
    rng = np.random.default_rng(seed)
    clear_stamp(out)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    for f in (out / "clips").glob("*.flac"):
        f.unlink()
    rows = []
    for n, used in enumerate(plan(len(samples), labels, singles, mixtures, rng)):
        clips = [play(audio[i], samples[i][3], rng) for i in used]
        kind = "single" if len(used) == 1 else "mix"
        levels = [0.0] + [float(rng.choice([0.0, -3.0, -6.0])) for _ in used[1:]]
        y = clips[0] if len(used) == 1 else mix(clips, levels)
        path = f"clips/{n:06d}_{kind}_recorded.flac"
        sf.write(out / path, y, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        names = [f"{samples[i][0]}:{samples[i][1]}" for i in used]
        rows.append({"path": path, "labels": ";".join(sorted({labels[i] for i in used})), "source": "recorded",
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
    p.add_argument("--singles", type=int, default=16, help="clips of each sample alone (default 16)")
    p.add_argument("--mixtures", type=int, default=400, help="mixtures of 2-3 samples (default 400)")
    p.add_argument("--seed", type=int, default=21)
    p.add_argument("--reuse", action="store_true", help="keep a finished build made with these arguments")
    p.add_argument("--overwrite", action="store_true", help="build again even when built (the default)")
    p.add_argument("--explain", type=Path, metavar="MODEL",
                   help="build nothing: print what MODEL ranks first on each recording's clips in --out")
    p.add_argument("--cache", type=Path, help="feature cache for --explain")
    args = p.parse_args(argv)
    if args.explain:
        print(explain(args.out, args.explain, args.cache))
        return 0
    arguments = build_arguments(args)
    if args.reuse and kept(args.out, arguments):
        return 0
    rows = build(args.out, SAMPLES, singles=args.singles, mixtures=args.mixtures, seed=args.seed, roots=ROOTS)
    write_stamp(args.out, arguments)
    print(f"{len(rows)} clips written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
