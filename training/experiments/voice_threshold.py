"""Probe (ABLATION.md, "A voice-conditional threshold"): raise every instrument's threshold by
delta on clips whose `voice` score passes its own threshold, and print what that does on
validation and on the held-out voice sets. Nothing is retrained; the rule was not adopted.

    python training/experiments/voice_threshold.py MODEL --data data [--deltas 0,0.05,0.1,0.2,0.4]

Validation: TimGM6mb seed 1 and TimGM6mb with training voices (``corpus_val``,
``corpus_val_voice``); held out: ``corpus_test``, ``corpus_test_vocal`` (the same clips with
a held-out voice) and the voice-alone clips of ``corpus_voice_test``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tagger.evaluate import Evaluation, evaluate  # noqa: E402
from tagger.labels import VOICE_LABEL, instrument_columns  # noqa: E402
from tagger.metrics import classification_report  # noqa: E402
from tagger.weights import load_checkpoint  # noqa: E402
from training.heldout import HELDOUT_SETS, read_set  # noqa: E402


def decide(ev: Evaluation, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """(instruments present, instruments predicted) under the rule."""
    thresholds = np.broadcast_to(ev.thresholds, ev.y_score.shape)
    voice = list(ev.labels).index(VOICE_LABEL)
    voiced = ev.y_score[:, voice] >= thresholds[:, voice]
    inst = instrument_columns(ev.labels)
    pred = ev.y_score >= thresholds + delta * voiced[:, None]
    return ev.y_true[:, inst].astype(bool), pred[:, inst]


def f1(ev: Evaluation, delta: float, mixtures_only: bool) -> tuple[float, float, float]:
    truth, pred = decide(ev, delta)
    keep = truth.sum(1) >= 2 if mixtures_only else np.ones(len(truth), bool)
    r = classification_report(truth[keep], pred[keep], [str(j) for j in range(truth.shape[1])])
    return r["micro_f1"], r["micro_precision"], r["micro_recall"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--data", type=Path, default=Path("data"))
    p.add_argument("--deltas", default="0,0.05,0.1,0.15,0.2,0.3,0.4")
    args = p.parse_args()
    ckpt = load_checkpoint(args.model)
    sets = {"val": ("corpus_val", None), "val_voice": ("corpus_val_voice", None),
            "test": HELDOUT_SETS["test"], "test_vocal": HELDOUT_SETS["test_vocal"],
            "voice_only": HELDOUT_SETS["voice_only"]}
    ev = {}
    for name, (folder, keep) in sets.items():
        ds = read_set(args.data / folder, keep)
        if ds is None:
            raise SystemExit(f"voice_threshold: {args.data / folder} is not built (training/rebuild.sh)")
        ev[name] = evaluate(ckpt, ds, torch.device("cpu"), 2, args.data / "cache")
    print("| delta | validation F1 (all clips) | validation-voice mixtures F1 | test mixtures F1 (P / R) "
          "| + voice: mixtures F1 (P / R) | penalty | voice alone: clean |\n" + "| --- " * 7 + "|")
    for delta in (float(d) for d in args.deltas.split(",")):
        t, tv = f1(ev["test"], delta, True), f1(ev["test_vocal"], delta, True)
        _, alone = decide(ev["voice_only"], delta)
        print(f"| {delta:.2f} | {f1(ev['val'], delta, False)[0]:.4f} | {f1(ev['val_voice'], delta, True)[0]:.4f} "
              f"| {t[0]:.3f} ({t[1]:.3f} / {t[2]:.3f}) | {tv[0]:.3f} ({tv[1]:.3f} / {tv[2]:.3f}) "
              f"| {t[0] - tv[0]:.3f} | {(~alone.any(axis=1)).mean():.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
