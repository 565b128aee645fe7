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
from tagger.weights import load_checkpoint  # noqa: E402
from training.corpus.voices import VOICE_STYLES  # noqa: E402
from training.heldout import HELDOUT_SETS, VOCAL_PAIRS, _micro_f1, _paired_mixtures, read_set, voice_styles  # noqa: E402

LEVELS = ((-6.0, -3.0), (-3.0, 0.0), (0.0, 3.01))  # the corpus's VOCALS_DB is -6 .. +3


def voice_levels(corpus: Path) -> dict[str, float]:
    """Clip file name -> the level of the voice on top of it, dB re the instruments (from the
    voice's description among the clip's effects, as ``voice_styles`` reads its style)."""
    out = {}
    for line in (corpus / "details.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        voice = next(e for e in row["effects"] if e.split(" ", 1)[0] in VOICE_STYLES)  # "sing lp_diphone x1.10 at -2.3 dB"
        out[Path(row["path"]).name] = float(re.search(r" at ([-+][\d.]+) dB", voice).group(1))
    return out


def errors(rows: list[tuple[np.ndarray, np.ndarray]]) -> tuple[int, int]:
    """(labels invented, labels missed) over (instruments present, predicted) rows."""
    return (sum(int((~truth & pred).sum()) for truth, pred in rows),
            sum(int((truth & ~pred).sum()) for truth, pred in rows))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--data", type=Path, default=Path("data"))
    args = p.parse_args()
    ckpt = load_checkpoint(args.model)
    paired, styles, levels = {}, {}, {}
    for pair in VOCAL_PAIRS:
        scored = []
        for name in pair:
            folder = args.data / HELDOUT_SETS[name][0]
            ds = read_set(folder, None)
            if ds is None:
                raise SystemExit(f"voice_level: {folder} is not built (training/rebuild.sh)")
            scored.append((ds, evaluate(ckpt, ds, torch.device("cpu"), 2, args.data / "cache")))
        vocal = args.data / HELDOUT_SETS[pair[1]][0]
        # clip names repeat from one pair to the next: key everything by (pair, name)
        styles.update({(pair, n): v for n, v in voice_styles(vocal).items()})
        levels.update({(pair, n): v for n, v in voice_levels(vocal).items()})
        paired.update({(pair, n): rows for n, rows in _paired_mixtures(*scored).items()})

    def row(name: str, keep) -> str:
        group = [rows for key, rows in paired.items() if keep(key)]
        without, with_voice = [r[0] for r in group], [r[1] for r in group]
        (invented0, missed0), (invented1, missed1) = errors(without), errors(with_voice)
        f_without, f_with = _micro_f1(without), _micro_f1(with_voice)
        return (f"| {name} | {len(group)} | {f_without:.3f} | {f_with:.3f} | {f_without - f_with:.3f} "
                f"| {invented1 - invented0:+d} | {missed1 - missed0:+d} |")

    print(f"{args.model.name}: held-out mixtures without and with a held-out voice on top")
    print("| voice on top | mixtures | F1 without | F1 with | penalty | invented | missed |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(row("all", lambda n: True))
    for lo, hi in LEVELS:
        print(row(f"at {lo:+.0f} to {min(hi, 3):+.0f} dB", lambda n: lo <= levels[n] < hi))
    for style in sorted(set(styles.values())):
        for lo, hi in ((-6.0, -1.5), (-1.5, 3.01)):
            print(row(f"{style} at {lo:+.1f} to {min(hi, 3):+.1f} dB",
                      lambda n: styles.get(n) == style and lo <= levels[n] < hi))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
