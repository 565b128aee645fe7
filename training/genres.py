"""A training corpus of pop, jazz, folk and orchestral arrangements (training/corpus/genres.py).

    python -m training.genres --out data/corpus_genres --clips 1600 --seed 51 [--styles pop,jazz] [--other 0.2] [--jobs 1] [--reuse]

Clip ``i`` is of style ``styles[i % len(styles)]``, so the styles share the clips evenly.
Each clip is an arrangement of its genre's roles (a reference part and the optional parts
its table draws) on the training sources (GeneralUser, FluidR3, sf_GMbank, freepats, the
avldrums kits, the project's synthesiser and physical models, the training voices), mixed
at labelled levels and produced as the genre is; labels are the parts it mixed. Writes
DIR/clips/*.flac (22 050 Hz mono, 3.0 s), DIR/manifest.csv, DIR/details.jsonl and a stamp,
like ``training.rock``.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from pathlib import Path

import soundfile as sf

from .corpus.audio import SAMPLE_RATE
from .corpus.clips import write_details, write_manifest
from .corpus.genres import STYLES, GenreError, missing_material, render_genre_clip
from .corpus.stems import RenderError
from .stamp import build_arguments, clear_stamp, kept, write_stamp

log = logging.getLogger("training.genres")


def render_one(out: Path, seed: int, index: int, style: str, other: float = 0.0) -> dict | None:
    """Render and write clip ``index`` of ``style``; its manifest/details row, or None."""
    try:
        clip, attempt = render_genre_clip(seed, index, style, other)
    except RenderError as exc:
        log.warning("%s", exc)
        return None
    path = f"clips/{index:06d}_{style}.flac"
    sf.write(out / path, clip.audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return {"path": path, "labels": ";".join(clip.labels), "source": "genres", "kind": style,
            "programs": ";".join(f"{p['label']}={p['source']}" + (f":{p['program']}" if "program" in p else "")
                                 for p in clip.parts),
            "details": {"index": index, "style": style, "attempt": attempt, "parts": clip.parts, "effects": clip.effects}}


def build(out: Path, clips: int, seed: int = 0, styles: tuple[str, ...] = STYLES, jobs: int = 1,
          other: float = 0.0) -> list[dict]:
    """Write ``clips`` clips (the styles in turn) to ``out``; returns the rows written."""
    from joblib import Parallel, delayed

    missing = missing_material(styles)
    if missing:
        raise GenreError(f"missing: {', '.join(missing)} (scripts/setup_corpus.sh installs them)")
    clear_stamp(out)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    for f in (out / "clips").glob("*.flac"):
        f.unlink()
    tasks = (delayed(render_one)(out, seed, i, styles[i % len(styles)], other) for i in range(clips))
    rows = [r for r in Parallel(n_jobs=jobs, batch_size=8)(tasks) if r is not None]
    write_manifest(out / "manifest.csv", rows)
    write_details(out / "details.jsonl", rows)
    return rows


def parse_styles(text: str) -> tuple[str, ...]:
    styles = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in styles if s not in STYLES]
    if not styles or unknown:
        raise argparse.ArgumentTypeError(f"styles are some of {','.join(STYLES)}; got {text!r}")
    return styles


def label_counts(rows: list[dict]) -> Counter:
    """How many clips carry each label."""
    return Counter(label for r in rows for label in r["labels"].split(";") if label)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.genres", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--clips", type=int, default=1600)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--styles", type=parse_styles, default=STYLES, help=f"comma-separated (default {','.join(STYLES)})")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--other", type=float, default=0.0,
                   help="share of clips whose reference part another instrument plays (default 0)")
    p.add_argument("--reuse", action="store_true", help="keep a finished build made with these arguments")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    arguments = build_arguments(args)
    if args.reuse and kept(args.out, arguments):
        return 0
    t0 = time.monotonic()
    try:
        rows = build(args.out, args.clips, args.seed, args.styles, args.jobs, args.other)
    except GenreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_stamp(args.out, arguments)
    styles = Counter(r["kind"] for r in rows)
    print(f"{len(rows)} clips written to {args.out} in {time.monotonic() - t0:.0f} s with {args.jobs} job(s); "
          + ", ".join(f"{k} {v}" for k, v in styles.items()) + "; labels: "
          + ", ".join(f"{k} {v}" for k, v in label_counts(rows).most_common()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
