"""Where a model's mixture errors come from, on a corpus that build_corpus rendered.

    python -m training.mixture_errors MODEL --corpus data/corpus_test [--cache data/cache]

For the mixtures of the corpus (clips of 2+ labelled stems; ``details.jsonl`` says each
stem's label and gain) it prints, with the model's own thresholds:

- recall by the stem's level below the mix's loudest stem and by the number of stems
  (a miss at 0 dB is not masking);
- recall per label, and which labels are invented next to which present ones;
- precision at n (n = the true number of labels: the F1 a perfect count would give),
  which says whether a threshold could ever fix it or the ranking itself is wrong.

Given several models (``MODEL MODEL ...``), it scores their ensemble: the mean of their
scores held to the mean of their thresholds, and prints the mean's mAP too (what a
distillation teacher made of them would start from).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tagger.labels import instrument_columns

Stems = Sequence[tuple[str, float]]  # (label, gain_db) per stem of one clip


@dataclass
class MixtureErrors:
    mixtures: int
    recall_by_level: dict[int, tuple[float, int]]  # dB bin below the loudest stem -> (recall, stems)
    recall_by_count: dict[int, tuple[float, int]]  # number of stems -> (recall, stems)
    recall_by_label: dict[str, tuple[float, int]]
    invented: Counter  # label -> times invented
    invented_next_to: Counter  # (present label, invented label) -> times
    precision_at_n: float


def _rate(hits: list[int]) -> tuple[float, int]:
    return (sum(hits) / len(hits), len(hits))


def mixture_errors(labels: Sequence[str], y_score: np.ndarray, thresholds: np.ndarray,
                   stems: Sequence[Stems], level_bin_db: float = 3.0) -> MixtureErrors:
    """The tables above from scores (items, labels), thresholds ((labels,) or (items, labels))
    and each item's stems; items of fewer than two stems are skipped. Only instrument labels
    count: a ``voice`` on top of a mixture is neither a stem nor an invented label."""
    thresholds = np.broadcast_to(thresholds, y_score.shape)
    index = {label: j for j, label in enumerate(labels)}
    instrument = instrument_columns(labels)
    by_level, by_count, by_label = defaultdict(list), defaultdict(list), defaultdict(list)
    invented, next_to = Counter(), Counter()
    at_n, mixtures = [], 0
    for scores, held_to, item in zip(y_score, thresholds, stems):
        if len(item) < 2:
            continue
        mixtures += 1
        loudest = max(gain for _, gain in item)
        present = {label for label, _ in item}
        predicted = {labels[j] for j in np.flatnonzero((scores >= held_to) & instrument)}
        for label, gain in item:
            hit = int(label in predicted)
            by_level[int(math.floor((gain - loudest) / level_bin_db) * level_bin_db)].append(hit)
            by_count[len(item)].append(hit)
            by_label[label].append(hit)
        for label in sorted(predicted - present):
            invented[label] += 1
            next_to.update((p, label) for p in sorted(present))
        truth = [index[label] for label in present if label in index]
        top = np.argsort(-np.where(instrument, scores, -np.inf), kind="stable")[: len(truth)]
        at_n.append(len(set(top.tolist()) & set(truth)) / max(1, len(truth)))
    return MixtureErrors(
        mixtures,
        {k: _rate(v) for k, v in sorted(by_level.items())},
        {k: _rate(v) for k, v in sorted(by_count.items())},
        dict(sorted(((k, _rate(v)) for k, v in by_label.items()), key=lambda kv: kv[1][0])),
        invented, next_to, float(np.mean(at_n)) if at_n else float("nan"),
    )


def markdown(e: MixtureErrors, top: int = 12) -> str:
    rows = [f"{e.mixtures} mixtures; precision at n (n = the true number of labels): **{e.precision_at_n:.3f}**", ""]
    rows += ["| stem level below the loudest (dB) | recall | stems |", "| --- | --- | --- |"]
    rows += [f"| {k:+d} | {r:.3f} | {n} |" for k, (r, n) in e.recall_by_level.items()]
    rows += ["", "| stems in the mix | recall | stems |", "| --- | --- | --- |"]
    rows += [f"| {k} | {r:.3f} | {n} |" for k, (r, n) in e.recall_by_count.items()]
    rows += ["", "| label | recall in mixtures | stems | invented |", "| --- | --- | --- | --- |"]
    rows += [f"| {k} | {r:.3f} | {n} | {e.invented[k]} |" for k, (r, n) in e.recall_by_label.items()]
    rows += ["", "| present | invented next to it | times |", "| --- | --- | --- |"]
    rows += [f"| {p} | {i} | {n} |" for (p, i), n in e.invented_next_to.most_common(top)]
    return "\n".join(rows)


def read_stems(corpus: Path) -> dict[str, list[tuple[str, float]]]:
    """Clip path (relative to the corpus) -> its labelled stems, from details.jsonl."""
    out = {}
    with open(corpus / "details.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            out[row["path"]] = [(s["label"], float(s["gain_db"])) for s in row["stems"]]
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    from tagger.datasets import read_manifest
    from tagger.evaluate import evaluate
    from tagger.metrics import mean_average_precision
    from tagger.weights import load_checkpoint

    p = argparse.ArgumentParser(prog="python -m training.mixture_errors", description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path, nargs="+",
                   help="weights file; several: their ensemble (the mean of their scores, held to the mean of their thresholds)")
    p.add_argument("--corpus", type=Path, required=True, help="a build_corpus folder (manifest.csv, details.jsonl)")
    p.add_argument("--cache", type=Path, help="feature cache (default: none)")
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    ds = read_manifest(args.corpus / "manifest.csv")
    evs = [evaluate(load_checkpoint(m), ds, torch.device("cpu"), args.jobs, args.cache) for m in args.model]
    if len({ev.labels for ev in evs}) > 1:
        raise SystemExit("mixture_errors: an ensemble needs models with the same labels")
    score = np.mean([ev.y_score for ev in evs], axis=0)
    thresholds = np.mean([np.broadcast_to(ev.thresholds, score.shape) for ev in evs], axis=0)
    stems = {(args.corpus / path).resolve(): s for path, s in read_stems(args.corpus).items()}
    per_item = [stems.get(Path(item.path), []) for item in ds.items]  # manifest paths are resolved
    if len(evs) > 1:
        print(f"the mean of {len(evs)} models' scores: mAP {mean_average_precision(evs[0].y_true, score):.4f}\n")
    print(markdown(mixture_errors(evs[0].labels, score, thresholds, per_item)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
