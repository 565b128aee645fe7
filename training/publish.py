"""Publish a trained run as the bundled weights: card fields added, model card written.

    python -m training.publish RUN_DIR --corpus data/train data/val data/test [--heldout H.json]
        [--ablation training/ABLATION.md] [--out weights]

Takes the best weights of RUN_DIR, adds to their card what only the rebuild knows (the
corpus summaries, the rebuild command, the measured speed, the hand-written description
and known weaknesses from training/card.json), saves them into ``weights/`` (replacing
the previous bundled file) and writes ``weights/MODEL_CARD.md`` from the card.

Idempotent: the card records a digest of what it was published from (the weights file,
the held-out figures, training/card.json, the ablation table, the corpus summaries), and
when ``--out`` already holds the one file published from the same inputs it is kept as it
is (the speed probe, which varies from run to run, is not measured again).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from tagger.card import write_model_card
from tagger.errors import ModelLoadError
from tagger.inference import Scorer
from tagger.weights import Checkpoint, load_checkpoint, save_checkpoint

HERE = Path(__file__).resolve().parent


def corpus_summary(folder: Path) -> dict:
    """Clips per source, kind and label of a built corpus (label-free clips, such as
    negatives, counted apart)."""
    with open(folder / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    labels = Counter(label for r in rows for label in r["labels"].split(";") if label)
    out = {
        "folder": folder.name,
        "clips": len(rows),
        "sources": dict(sorted(Counter(r["source"] for r in rows).items())),
        "kinds": dict(sorted(Counter(r["kind"] for r in rows).items())),
        "clips_per_label": dict(sorted(labels.items())),
    }
    unlabelled = sum(1 for r in rows if not r["labels"].strip())
    if unlabelled:
        out["clips_without_label"] = unlabelled
    return out


def measure_speed(ckpt: Checkpoint, seconds: float = 5.0, batch: int = 256) -> dict:
    """Segments per second through frontend + network on this CPU, 2 threads."""
    torch.set_num_threads(2)
    scorer = Scorer(ckpt, "cpu", batch)
    x = np.random.default_rng(0).standard_normal((batch, ckpt.frontend.segment_samples)).astype(np.float32) * 0.1
    scorer.score(x[:32])
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        scorer.score(x)
        n += batch
    rate = n / (time.perf_counter() - t0)
    return {"segments_per_s": round(rate), "cpu": platform.processor() or platform.machine(), "threads": 2,
            "cores": os.cpu_count(), "batch": batch}


def first_table(markdown: str) -> str:
    """The first markdown table of a text (its consecutive lines starting with '|')."""
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def _relative(path: str) -> str:
    p = Path(path).resolve()
    for base in (HERE.parent, Path.cwd()):
        try:
            return str(p.relative_to(base))
        except ValueError:
            pass
    return "/".join(p.parts[-2:])


def inputs_digest(weights: Path, extra: dict, corpus: list[dict], heldout: bytes, ablation: str) -> str:
    """What a publish is made of, as one digest: the weights file's bytes, the card texts,
    the corpus summaries, the held-out figures and the ablation table."""
    h = hashlib.sha256()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    h.update(json.dumps([extra, corpus, ablation], sort_keys=True).encode())
    h.update(heldout)
    return h.hexdigest()[:16]


def already_published(out: Path, digest: str) -> Path | None:
    """The one weights file in ``out`` published from inputs with ``digest``, if there."""
    found = sorted(out.glob("*.safetensors"))
    if len(found) != 1:
        return None
    try:
        card = load_checkpoint(found[0]).card
    except ModelLoadError:  # an unreadable file is published over
        return None
    return found[0] if (card.get("published_from") or {}).get("inputs") == digest else None


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--corpus", type=Path, nargs="*", default=[])
    p.add_argument("--out", type=Path, default=HERE.parent / "weights")
    p.add_argument("--card", type=Path, default=HERE / "card.json")
    p.add_argument("--heldout", type=Path, help="training.heldout --json output for this run")
    p.add_argument("--ablation", type=Path, default=HERE / "ABLATION.md",
                   help="markdown whose first table goes into the card (default training/ABLATION.md)")
    args = p.parse_args(argv)
    found = sorted(args.run.glob("*.safetensors"))
    if len(found) != 1:
        raise SystemExit(f"expected one .safetensors in {args.run}, found {len(found)}")
    extra = json.loads(args.card.read_text()) if args.card.exists() else {}
    corpus = [corpus_summary(c) for c in args.corpus]
    table = first_table(args.ablation.read_text()) if args.ablation and args.ablation.exists() else ""
    digest = inputs_digest(found[0], extra, corpus, args.heldout.read_bytes() if args.heldout else b"", table)
    kept = already_published(args.out, digest)
    if kept is not None:
        if not (args.out / "MODEL_CARD.md").exists():
            write_model_card(kept, args.out / "MODEL_CARD.md")
        print(f"{kept}: already published from the same inputs, kept")
        return
    ckpt = load_checkpoint(found[0])
    ckpt.card.update(extra)
    for key in ("train_data", "validation_data"):  # where the data was, relative to the repo
        if isinstance(ckpt.card.get(key), list):
            ckpt.card[key] = [_relative(p) for p in ckpt.card[key]]
    ckpt.card["corpus"] = corpus
    ckpt.card["published_from"] = {"weights": ckpt.version, "inputs": digest}
    ckpt.card["speed"] = measure_speed(ckpt)
    if args.heldout:
        results = json.loads(args.heldout.read_text())
        (ours,) = results.values()  # one model
        ckpt.card["heldout"] = {k: {m: v for m, v in r.items() if m != "per_label"} for k, r in ours.items()}
        if "test" in ours and "test" not in ckpt.card:  # the labels table's test column
            ckpt.card["test"] = ours["test"]
    if table:
        ckpt.card["ablation"] = table
    old = sorted(args.out.glob("*.safetensors"))
    new = save_checkpoint(ckpt, args.out)
    for f in old:
        if f != new:
            f.unlink()
    write_model_card(new, args.out / "MODEL_CARD.md")  # the same card as tagger info --full
    print(new)


if __name__ == "__main__":
    main()
