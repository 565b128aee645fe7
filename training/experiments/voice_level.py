"""Probe (ABLATION.md, "Voices overlaid on the training examples", the diagnosis after it):
the voice penalty on the held-out mixtures by the level of the voice on top and by its style.
Nothing is retrained.

    python training/experiments/voice_level.py MODEL --data data

The mixtures of ``corpus_test`` and ``corpus_test2`` are scored without and with their
held-out voice (``corpus_test_vocal``, ``corpus_test2_vocal``: the same clips, same seeds).
The voice's style and its level in dB relative to the instruments are read from the
corpus's ``details.jsonl``. Each row gives the instrument micro-F1 of both versions, and
how many instrument labels the voice adds (invented) or takes away (missed).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tagger.evaluate import evaluate  # noqa: E402
from tagger.labels import instrument_columns  # noqa: E402
from tagger.weights import load_checkpoint  # noqa: E402
from training.heldout import read_set  # noqa: E402

PAIRS = (("corpus_test", "corpus_test_vocal"), ("corpus_test2", "corpus_test2_vocal"))
LEVELS = ((-6.0, -3.0), (-3.0, 0.0), (0.0, 3.01))  # the corpus's VOCALS_DB is -6 .. +3


def voice_on_top(folder: Path) -> tuple[list[str], np.ndarray]:
    """Each clip's voice style (sing, choir, speak, espeak) and level, from details.jsonl."""
    styles, gains = [], []
    for line in (folder / "details.jsonl").read_text().splitlines():
        first = json.loads(line)["effects"][0]  # e.g. "sing lp_diphone x1.10 at -2.3 dB"
        styles.append(first.split()[0])
        gains.append(float(re.search(r" at ([-+][\d.]+) dB", first).group(1)))
    return styles, np.array(gains)


def decisions(ckpt, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(instruments present, instruments predicted), one row per clip in manifest order."""
    ev = evaluate(ckpt, read_set(folder, None), torch.device("cpu"), 2, folder.parent / "cache")
    inst = instrument_columns(ev.labels)
    pred = ev.y_score >= np.broadcast_to(ev.thresholds, ev.y_score.shape)
    return ev.y_true[:, inst] > 0.5, pred[:, inst]


def counts(truth: np.ndarray, pred: np.ndarray) -> tuple[int, int, int]:
    return int((truth & pred).sum()), int((~truth & pred).sum()), int((truth & ~pred).sum())


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / max(1, 2 * tp + fp + fn)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--data", type=Path, default=Path("data"))
    args = p.parse_args()
    ckpt = load_checkpoint(args.model)
    clean_t, clean_p, voiced_t, voiced_p, styles, gains = [], [], [], [], [], []
    for clean, voiced in PAIRS:
        if not (args.data / clean / "manifest.csv").exists() or not (args.data / voiced / "manifest.csv").exists():
            raise SystemExit(f"voice_level: {args.data / clean} or {args.data / voiced} is not built (training/rebuild.sh)")
        for folder, t, pr in ((clean, clean_t, clean_p), (voiced, voiced_t, voiced_p)):
            truth, pred = decisions(ckpt, args.data / folder)
            t.append(truth)
            pr.append(pred)
        s, g = voice_on_top(args.data / voiced)
        styles += s
        gains.append(g)
    ct, cp, vt, vp = (np.concatenate(a) for a in (clean_t, clean_p, voiced_t, voiced_p))
    if not np.array_equal(ct, vt):
        raise SystemExit("voice_level: the clean and voiced sets do not hold the same instruments")
    styles_a, gain = np.array(styles), np.concatenate(gains)
    mix = ct.sum(1) >= 2

    def row(name: str, rows: np.ndarray) -> str:
        a, b = counts(ct[rows], cp[rows]), counts(vt[rows], vp[rows])
        return (f"| {name} | {rows.sum()} | {f1(*a):.3f} | {f1(*b):.3f} | {f1(*a) - f1(*b):.3f} "
                f"| {b[1] - a[1]:+d} | {b[2] - a[2]:+d} |")

    print(f"{args.model.name}: held-out mixtures without and with a held-out voice on top")
    print("| voice on top | mixtures | F1 without | F1 with | penalty | invented | missed |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(row("all", mix))
    for lo, hi in LEVELS:
        print(row(f"at {lo:+.0f} to {min(hi, 3):+.0f} dB", mix & (gain >= lo) & (gain < hi)))
    for style in sorted(set(styles_a[mix])):
        for lo, hi in ((-6.0, -1.5), (-1.5, 3.01)):
            rows = mix & (styles_a == style) & (gain >= lo) & (gain < hi)
            print(row(f"{style} at {lo:+.1f} to {min(hi, 3):+.1f} dB", rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
