"""Weight-space ensembles (WiSE-FT) of a model and its fine-tune, no training.

    python -m training.wise START FINETUNED --share 0.7 --out runs/stage4_wise [--only]

Each checkpoint is ``(1 - a) x START + a x FINETUNED``, tensor by tensor (batch-norm
statistics included; integer counters taken from START), with START's thresholds,
aggregation and frontend. Both must have the same architecture and labels. The card is
START's, without the figures measured on START (validation, test, held-out sets: they are
not this model's), with ``wise`` (the two models and the share) and ``finetune`` (what
FINETUNED was trained on) added. Writing is idempotent: a file already in ``--out`` with
the very same bytes is kept as it is. ``--only`` (one share) makes the written file the
folder's only weights, as ``training.tune_tracks`` and ``training.publish`` expect.
training/ABLATION.md, "WiSE" and "GU3", has the runs; ``make weights`` uses it in stage 4.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tagger.weights import Checkpoint, load_checkpoint, save_checkpoint

MEASURED = ("validation", "test", "heldout")  # START's figures: not the interpolation's


def interpolated(start: Checkpoint, tuned: Checkpoint, share: float) -> Checkpoint:
    """``(1 - share) x start + share x tuned``; start's thresholds, aggregation and frontend."""
    if start.config != tuned.config or start.state_dict.keys() != tuned.state_dict.keys():
        raise ValueError("the two models differ in architecture or labels")
    state = {}
    for key, value in start.state_dict.items():
        other = tuned.state_dict[key]
        state[key] = (1 - share) * value + share * other if value.is_floating_point() else value.clone()
    card = {k: v for k, v in start.card.items() if k not in MEASURED}
    card["wise"] = {"start": start.version, "finetuned": tuned.version, "share": share}
    settings = tuned.card.get("settings") or {}
    card["finetune"] = {"weights": tuned.version, "train_data": tuned.card.get("train_data"),
                        "validation_data": tuned.card.get("validation_data"), "epoch": tuned.card.get("epoch"),
                        **{k: settings[k] for k in ("epochs", "lr", "eq_db") if k in settings}}
    return Checkpoint(start.frontend, start.config, state, dict(start.thresholds), dict(start.aggregation), card,
                      name=f"{start.name}-wise{round(share * 100):02d}")


def write(ckpt: Checkpoint, out: Path, only: bool = False) -> Path:
    """Save ``ckpt`` into ``out``, keeping an identical file already there untouched;
    ``only``: remove the folder's other weights files."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".wise.") as tmp:
        made = save_checkpoint(ckpt, Path(tmp))
        final = out / made.name  # the name holds the content's digest
        if final.exists():
            print(f"{final}: already written from the same models, kept", file=sys.stderr)
        else:
            made.replace(final)
    if only:
        for other in out.glob("*.safetensors"):
            if other != final:
                other.unlink()
    return final


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.wise", description=__doc__.split("\n\n")[0])
    p.add_argument("start", type=Path)
    p.add_argument("finetuned", type=Path)
    p.add_argument("--share", default="0.3,0.5,0.7", help="comma-separated shares of the fine-tuned weights")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--only", action="store_true", help="one share: leave no other weights file in --out")
    args = p.parse_args(argv)
    shares = [float(s) for s in args.share.split(",") if s]
    if args.only and len(shares) != 1:
        p.error("--only takes one --share")
    start, tuned = load_checkpoint(args.start), load_checkpoint(args.finetuned)
    for share in shares:
        print(write(interpolated(start, tuned, share), args.out, args.only))
    return 0


if __name__ == "__main__":
    sys.exit(main())
