"""Batch-norm statistics re-estimated on unlabelled real music (AdaBN), no training.

    python training/experiments/bn_adapt.py MODEL --music DIR [DIR...] --out runs/bn_adapt \\
        [--variants input:1,all:1,all:0.5] [--max-segments 24]
    python training/experiments/bn_adapt.py --examples MODEL [MODEL...]   # exact label sets on examples/

A network's batch norms hold the mean and variance of their inputs over its training
sound (our renders). On a real recording, whose colouring differs, those statistics are
off. This probe replaces them with the statistics of unlabelled real music (DESIGN.md:
the music of Debian's game packages) and writes one checkpoint per variant:

- ``input:A``: only the input norm (one batch norm per mel band: per-band standardisation);
- ``all:A``: every batch norm of the network.

``A`` blends: new = A x music's statistics + (1 - A) x the model's own. The music's are
gathered in train mode (each batch normalised by its own statistics, as AdaBN does),
accumulated over every audible 3-s segment (``--max-segments`` evenly spaced per track).
Nothing else changes: weights, thresholds, aggregation. The checkpoints go to ``--out``,
never to weights/; score them with ``python -m training.heldout``.
"""
from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(ROOT))

from tagger.datasets import Item, read_manifest  # noqa: E402
from tagger.discover import AUDIO_EXTENSIONS  # noqa: E402
from tagger.evaluate import evaluate  # noqa: E402
from tagger.features import compute_features  # noqa: E402
from tagger.segments import SILENCE_DB  # noqa: E402
from tagger.weights import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402

log = logging.getLogger("bn_adapt")


def music_items(folders: list[Path]) -> list[Item]:
    return [Item(p, ()) for folder in folders for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS]


def batch_norms(net: nn.Module, scope: str) -> list[nn.modules.batchnorm._BatchNorm]:
    """The batch norms a variant re-estimates: the input norm only, or all."""
    if scope == "input":
        return [net.input_norm.bn]
    if scope == "all":
        return [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    raise ValueError(f"unknown scope {scope!r}: input or all")


@torch.no_grad()
def music_statistics(ckpt: Checkpoint, features: np.ndarray, scope: str, batch: int = 64) -> dict[str, torch.Tensor]:
    """Running mean and variance of the chosen batch norms over ``features`` (segments, mels, frames)."""
    net = ckpt.build("cpu").classifier.eval()
    norms = batch_norms(net, scope)
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average over every batch
        bn.train()
    order = np.random.default_rng(0).permutation(len(features))  # batches mix tracks
    for i in range(0, len(order), batch):
        x = torch.from_numpy(np.asarray(features[np.sort(order[i:i + batch])], dtype=np.float32)).unsqueeze(1)
        if len(x) > 1:
            net(x)
    names = {id(m): n for n, m in net.named_modules()}
    out = {}
    for bn in norms:
        out[f"{names[id(bn)]}.running_mean"] = bn.running_mean.clone()
        out[f"{names[id(bn)]}.running_var"] = bn.running_var.clone()
    return out


def adapted(ckpt: Checkpoint, stats: dict[str, torch.Tensor], share: float, tag: str) -> Checkpoint:
    state = dict(ckpt.state_dict)
    for key, value in stats.items():
        state[key] = share * value + (1 - share) * state[key]
    card = dict(ckpt.card, bn_adapt=tag)
    return Checkpoint(ckpt.frontend, ckpt.config, state, dict(ckpt.thresholds), dict(ckpt.aggregation), card,
                      name=f"{ckpt.name}-bn-{tag.replace(':', '').replace('.', '')}")


def examples_exact(model: Path, manifest: Path) -> tuple[int, int, list[str]]:
    """How many examples get exactly their labels (instruments and voice), of how many, and
    each example's predicted labels."""
    ds = read_manifest(manifest)
    ev = evaluate(load_checkpoint(model), ds, torch.device("cpu"), 1, None)
    exact = (ev.y_pred == ev.y_true.astype(bool)).all(axis=1)
    named = [f"{item.path.name}: {';'.join(l for l, p in zip(ev.labels, row) if p)}" for item, row in zip(ds.items, ev.y_pred)]
    return int(exact.sum()), len(exact), named


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--music", nargs="*", type=Path, default=[])
    p.add_argument("--out", type=Path, default=Path("runs/bn_adapt"))
    p.add_argument("--variants", default="input:1,all:1,all:0.5")
    p.add_argument("--max-segments", type=int, default=24)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--examples", action="store_true", help="only print each model's exact examples")
    p.add_argument("--manifest", type=Path, default=ROOT / "examples" / "labels.csv")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    if args.examples:
        for model in args.models:
            n, total, named = examples_exact(model, args.manifest)
            print(f"{model.name}: {n} of {total} examples exact; " + " | ".join(named))
        return 0
    (model,) = args.models
    ckpt = load_checkpoint(model)
    items = music_items(args.music)
    fs = compute_features(items, ckpt.frontend, None, args.jobs, max_segments=args.max_segments)
    audible = fs.features[fs.loudness > SILENCE_DB]
    log.info("%d tracks, %d audible segments of %d", len(items), len(audible), len(fs.features))
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "variants.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["variant", "weights", "tracks", "segments"])
        for variant in args.variants.split(","):
            scope, share = variant.split(":")
            new = adapted(ckpt, music_statistics(ckpt, audible, scope), float(share), variant)
            path = save_checkpoint(new, args.out / variant.replace(":", "_"))
            w.writerow([variant, path, len(items), len(audible)])
            print(f"{variant}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
