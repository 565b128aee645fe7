"""Weight-space ensembles (WiSE-FT) of a model and its fine-tune, no training.

    python training/experiments/wise.py START FINETUNED --share 0.3,0.5,0.7 --out runs/wise

A thin wrapper of ``python -m training.wise`` (where the code now lives, since ``make
weights`` uses it), kept so the commands of training/ABLATION.md, "WiSE" and "GU3", still
run. The checkpoints go to ``--out``, never to weights/; score them with ``python -m
training.heldout``.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(ROOT))

from training.wise import interpolated, main  # noqa: E402

__all__ = ["interpolated", "main"]  # the old import path of interpolated()

if __name__ == "__main__":
    sys.exit(main())
