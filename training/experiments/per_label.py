"""Per-label figures of models on one corpus, for diagnosis (no new model).

    python training/experiments/per_label.py ap data/corpus_val_small MODEL [MODEL...]
    python training/experiments/per_label.py top1 data/corpus_recorded2 MODEL [MODEL...]

``ap``: each label's average precision over the corpus's clips (use it on validation sets).
``top1``: on the corpus's single clips, per true label, the share whose highest score is
that label, and the label most often highest instead (``recorded2`` rests on about one
recording a label, so this shows which recording flipped).
"""
from __future__ import annotations

import argparse
import collections
import csv
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score

from tagger.datasets import read_manifest
from tagger.evaluate import evaluate
from tagger.weights import load_checkpoint


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=("ap", "top1"))
    p.add_argument("corpus", type=Path)
    p.add_argument("models", type=Path, nargs="+")
    p.add_argument("--cache", type=Path, default=Path("data/cache"))
    args = p.parse_args()
    manifest = args.corpus / "manifest.csv"
    rows = list(csv.DictReader(open(manifest, newline="")))
    ds = read_manifest(manifest)
    table: dict[str, dict[str, str]] = {}
    for m in args.models:
        ev = evaluate(load_checkpoint(m), ds, torch.device("cpu"), 1, args.cache)
        if args.what == "ap":
            y = ds.targets(ev.labels)
            table[m.name] = {lab: f"{average_precision_score(y[:, j], ev.y_score[:, j]):.3f}"
                             for j, lab in enumerate(ev.labels) if y[:, j].any()}
            table[m.name]["mean"] = f"{np.mean([float(v) for v in table[m.name].values()]):.3f}"
        else:
            tops: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
            for r, s in zip(rows, ev.y_score):
                if r.get("kind") == "single" and r["labels"] and ";" not in r["labels"]:
                    tops[r["labels"]][ev.labels[int(np.argmax(s))]] += 1
            table[m.name] = {lab: f"{c[lab] / sum(c.values()):.2f} ({c.most_common(1)[0][0]})"
                             for lab, c in sorted(tops.items())}
    labels = list(dict.fromkeys(k for v in table.values() for k in v))
    print("| label | " + " | ".join(table) + " |")
    print("|" + " --- |" * (len(table) + 1))
    for lab in labels:
        print(f"| {lab} | " + " | ".join(table[m].get(lab, "") for m in table) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
