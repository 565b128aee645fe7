"""Weight-space ensembles (WiSE-FT) of a model and its fine-tune, no training.

    python training/experiments/wise.py START FINETUNED --share 0.3,0.5,0.7 --out runs/wise

Each checkpoint is ``(1 - a) x START + a x FINETUNED``, tensor by tensor (batch-norm
statistics included; integer counters taken from START), with START's thresholds,
aggregation and frontend. Both must have the same architecture and labels. The
checkpoints go to ``--out``, never to weights/; score them with ``python -m
training.heldout``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(ROOT))

from tagger.weights import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402


def interpolated(start: Checkpoint, tuned: Checkpoint, share: float) -> Checkpoint:
    """``(1 - share) x start + share x tuned``; start's thresholds, aggregation and frontend."""
    if start.config != tuned.config or start.state_dict.keys() != tuned.state_dict.keys():
        raise ValueError("the two models differ in architecture or labels")
    state = {}
    for key, value in start.state_dict.items():
        other = tuned.state_dict[key]
        state[key] = (1 - share) * value + share * other if value.is_floating_point() else value.clone()
    card = dict(start.card, wise={"start": start.version, "finetuned": tuned.version, "share": share})
    return Checkpoint(start.frontend, start.config, state, dict(start.thresholds), dict(start.aggregation), card,
                      name=f"{start.name}-wise{round(share * 100):02d}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="wise.py", description=__doc__.split("\n\n")[0])
    p.add_argument("start", type=Path)
    p.add_argument("finetuned", type=Path)
    p.add_argument("--share", default="0.3,0.5,0.7", help="comma-separated shares of the fine-tuned weights")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    start, tuned = load_checkpoint(args.start), load_checkpoint(args.finetuned)
    for share in (float(s) for s in args.share.split(",")):
        print(save_checkpoint(interpolated(start, tuned, share), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
