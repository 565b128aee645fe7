"""A set of label-free negatives: tones, sweeps, sine chords, noise, clicks, beeps, hum, game sound effects.

    python -m training.negatives --out data/corpus_negatives_test --split heldout [--clips 208] [--seed 0]
    python -m training.negatives --out data/corpus_negatives --split train --clips 2000 --seed 0
    python -m training.negatives --out data/corpus_negatives_test --explain MODEL   # what it names, by kind

Every clip is one kind of ``training.corpus.negatives``, taken in turn (``--kinds``), 3-10 s
long (``--seconds``), with no label: an instrument label on it is a false one. The
``heldout`` split is never trained or tuned on: its clips come from random streams the
``train`` split never draws, and its game sound effects from packages the training split
never reads (``GAME_SFX``). Writes DIR/clips/*.flac (22 050 Hz mono), DIR/manifest.csv
(``path,labels,source,kind,programs``; labels empty, ``programs`` the kind and what was
drawn), DIR/details.jsonl and a stamp, like ``training.build_corpus``.
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

from tagger.decode import decode
from tagger.errors import AudioDecodeError

from .corpus.audio import SAMPLE_RATE
from .corpus.clips import write_details, write_manifest
from .corpus.negatives import GAME_SFX, KINDS, SPLITS, NegativeError, clip_rng, render_negative, sfx_files
from .stamp import add_heldout_options, clear_stamp, heldout_arguments, kept, write_stamp

DEFAULT_CLIPS = 208  # 26 of each of the eight kinds


def load_effects(split: str) -> tuple[list[np.ndarray], list[str]]:
    """The split's game sound effects, decoded at the frontend's rate, and their names."""
    effects, names = [], []
    for path in sfx_files(split):
        try:
            x = decode(path, SAMPLE_RATE)
        except AudioDecodeError:
            continue  # a file the decoder refuses is simply not used
        if len(x) and np.max(np.abs(x)) > 1e-4:
            effects.append(x)
            names.append(path.name)
    return effects, names


def build(out: Path, split: str, clips: int = DEFAULT_CLIPS, seed: int = 0, kinds: tuple[str, ...] = KINDS,
          seconds: tuple[float, float] = (3.0, 10.0)) -> list[dict]:
    """Write the set to ``out``; returns its rows (the manifest columns and ``details``)."""
    effects = None
    if "game_sfx" in kinds:
        try:
            effects = load_effects(split)
        except NegativeError as exc:
            packages = " ".join(p.package for p in GAME_SFX[split])
            raise SystemExit(f"training.negatives: {exc} (as root: apt-get install --no-install-recommends {packages}; "
                             "or leave game_sfx out of --kinds)") from None
    clear_stamp(out)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    for f in (out / "clips").glob("*.flac"):
        f.unlink()
    rows = []
    source = f"negatives_{split}"
    for i in range(clips):
        kind = kinds[i % len(kinds)]
        rng = clip_rng(split, seed, i)
        n = int(rng.uniform(*seconds) * SAMPLE_RATE)
        y, what = render_negative(kind, rng, n, effects)
        path = f"clips/{i:05d}_{kind}_{split}.flac"
        sf.write(out / path, y, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        rows.append({"path": path, "labels": "", "source": source, "kind": "negative", "programs": f"{kind}={what}",
                     "details": {"negative": kind, "what": what, "seconds": round(n / SAMPLE_RATE, 3)}})
    write_manifest(out / "manifest.csv", rows)
    write_details(out / "details.jsonl", rows)
    return rows


def figures(labels: tuple[str, ...], y_pred: np.ndarray, kinds: list[str]) -> dict:
    """Share of clips with no instrument label, overall and by kind, and the labels named."""
    from tagger.labels import instrument_columns

    instrument = instrument_columns(labels)
    named = np.asarray(y_pred, dtype=bool)[:, instrument]
    clean = ~named.any(axis=1)
    names = [l for l, i in zip(labels, instrument) if i]
    by_kind = defaultdict(list)
    for k, c in zip(kinds, clean):
        by_kind[k].append(bool(c))
    counts = Counter(names[j] for row in named for j in np.flatnonzero(row))
    return {"items": int(len(clean)), "no_instrument_clean": float(clean.mean()) if len(clean) else 0.0,
            "clean_by_kind": {k: float(np.mean(v)) for k, v in by_kind.items()},
            "labels_named": dict(counts.most_common())}


def explain(folder: Path, model: Path, cache: Path | None = None, jobs: int = 1) -> str:
    """``model``'s figures on the set in ``folder``, as lines of text."""
    import torch

    from tagger.datasets import read_manifest
    from tagger.evaluate import evaluate
    from tagger.weights import load_checkpoint

    with open(folder / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    kinds = [r["programs"].split("=", 1)[0] for r in rows]
    ev = evaluate(load_checkpoint(model), read_manifest(folder / "manifest.csv"), torch.device("cpu"), jobs, cache)
    f = figures(ev.labels, ev.y_pred, kinds)
    lines = [f"{model.name} on {folder} ({f['items']} clips): no instrument label on {f['no_instrument_clean']:.3f}",
             "by kind: " + ", ".join(f"{k} {v:.3f}" for k, v in f["clean_by_kind"].items()),
             "instrument labels named (clips): " + (", ".join(f"{k} {v}" for k, v in f["labels_named"].items()) or "none")]
    failing = [(r, ev.labels[int(np.argmax(s))], float(np.max(s))) for r, s, p in zip(rows, ev.y_score, ev.y_pred)
               if p[[j for j, l in enumerate(ev.labels) if l != "voice"]].any()]
    for r, top, score in failing[:40]:
        lines.append(f"  {r['path']}: {r['programs']} -> {top} {score:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.negatives", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--split", choices=tuple(SPLITS), default="heldout")
    p.add_argument("--clips", type=int, default=DEFAULT_CLIPS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, taken in turn (default {','.join(KINDS)})")
    p.add_argument("--seconds", default="3,10", help="shortest,longest clip in seconds (default 3,10)")
    add_heldout_options(p)
    args = p.parse_args(argv)
    if args.explain:
        print(explain(args.out, args.explain, args.cache, args.jobs))
        return 0
    kinds = tuple(k for k in args.kinds.split(",") if k)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        p.error(f"unknown kinds {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    lo, hi = (float(s) for s in args.seconds.split(","))
    arguments = heldout_arguments(args)
    if args.reuse and kept(args.out, arguments):
        return 0
    rows = build(args.out, args.split, args.clips, args.seed, kinds, (lo, hi))
    write_stamp(args.out, arguments)
    print(f"{len(rows)} clips written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
