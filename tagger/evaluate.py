"""Evaluating a checkpoint on a labelled dataset, with the inference aggregation rule.

Two protocols:
- ``track`` (default): segments every 3 s, per-file score by the checkpoint's own
  aggregation (mean of the top third), the checkpoint's thresholds (its track threshold
  for files of two or more audible segments, see :func:`tagger.aggregate.decision_thresholds`);
- ``irmas``: IRMAS's excerpt protocol, windows every 1.5 s, scores averaged over the
  excerpt, one global threshold (``--threshold``, default 0.5).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .aggregate import decision_thresholds, track_scores
from .datasets import Dataset
from .features import FeatureSet, compute_features
from .labels import instrument_columns
from .metrics import classification_report, confusion_matrix, mean_average_precision, top1_accuracy
from .models import Tagger
from .segments import SILENCE_DB
from .weights import Checkpoint

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]


@torch.inference_mode()
def predict_features(model: Tagger, features: np.ndarray, device: torch.device, batch_size: int = 256) -> np.ndarray:
    """Sigmoid scores (segments, labels) for cached features (segments, mels, frames)."""
    model.eval()
    out = []
    for i in range(0, len(features), batch_size):
        x = torch.from_numpy(np.asarray(features[i : i + batch_size], dtype=np.float32)).to(device).unsqueeze(1)
        out.append(torch.sigmoid(model.classifier(x)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(model.labels)), np.float32)


def item_scores(segment_scores: np.ndarray, fs: FeatureSet, n_items: int, top_fraction: float) -> np.ndarray:
    """Per-item scores by the inference rule; ``top_fraction`` 1.0 is the plain mean."""
    out = np.zeros((n_items, segment_scores.shape[1]), dtype=np.float32)
    order = np.argsort(fs.item_index, kind="stable")
    bounds = np.flatnonzero(np.diff(fs.item_index[order])) + 1
    for seg in np.split(order, bounds):
        if len(seg):
            audible = fs.loudness[seg] > SILENCE_DB
            out[fs.item_index[seg[0]]] = track_scores(segment_scores[seg], audible, top_fraction)
    return out


def audible_segments(fs: FeatureSet, n_items: int) -> np.ndarray:
    """(items,) how many audible segments each item has."""
    return np.bincount(fs.item_index[fs.loudness > SILENCE_DB], minlength=n_items)


def summarise(y_true: np.ndarray, y_score: np.ndarray, labels: Sequence[str], thresholds: np.ndarray) -> dict:
    """The figures a model card and ``tagger eval`` report; ``thresholds`` (labels,) or (items, labels).

    Besides the usual ones: precision and recall of the mixtures (2+ instruments), and
    for items with no instrument in them (a voice alone, silence) the share where no
    instrument label was predicted (``no_instrument_clean``).
    """
    y_true = np.asarray(y_true)
    y_pred = y_score >= (thresholds if thresholds.ndim == 2 else thresholds[None, :])
    report = classification_report(y_true, y_pred, list(labels))
    instrument = instrument_columns(labels)
    n_instruments = y_true[:, instrument].sum(axis=1)
    single = n_instruments == 1
    multi = n_instruments >= 2
    out = {
        "items": int(len(y_true)),
        "single_items": int(single.sum()),
        "mAP": mean_average_precision(y_true, y_score),
        "micro_f1": report["micro_f1"],
        "micro_precision": report["micro_precision"],
        "micro_recall": report["micro_recall"],
        "macro_f1": report["macro_f1"],
        "top1_single": top1_accuracy(y_true[single][:, instrument], y_score[single][:, instrument]),
        "per_label": report["per_label"],
    }
    if multi.any():
        mixtures = classification_report(y_true[multi][:, instrument], y_pred[multi][:, instrument],
                                          [l for l, i in zip(labels, instrument) if i])
        out["mixtures_items"] = int(multi.sum())
        out["mixtures_micro_f1"] = mixtures["micro_f1"]
        out["mixtures_precision"] = mixtures["micro_precision"]
        out["mixtures_recall"] = mixtures["micro_recall"]
        extra = (y_pred[multi] & ~y_true[multi].astype(bool))[:, instrument].sum(axis=1)
        out["mixtures_invented_per_item"] = float(extra.mean())
    none = n_instruments == 0
    if none.any():
        out["no_instrument_items"] = int(none.sum())
        out["no_instrument_clean"] = float((~y_pred[none][:, instrument].any(axis=1)).mean())
    return out


@dataclass
class Evaluation:
    labels: tuple[str, ...]
    y_true: np.ndarray  # (items, labels)
    y_score: np.ndarray  # (items, labels)
    thresholds: np.ndarray  # (labels,) or (items, labels): what each score was held to
    metrics: dict
    failed: dict[int, str]

    @property
    def y_pred(self) -> np.ndarray:
        """(items, labels) bool: each score held to its threshold."""
        return self.y_score >= np.broadcast_to(self.thresholds, self.y_score.shape)


def evaluate(
    ckpt: Checkpoint, ds: Dataset, device: torch.device, jobs: int = -1, cache: Path | None = None,
    protocol: str = "track", threshold: float | None = None, progress: Progress | None = None,
) -> Evaluation:
    """Score every file of ``ds`` with ``ckpt`` and compare with its labels."""
    if protocol not in ("track", "irmas"):
        raise ValueError(f"unknown protocol {protocol!r}")
    report = progress or (lambda stage, done, total: None)
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        report("features", done[0], len(ds.items))

    hop = ckpt.frontend.segment_seconds / 2 if protocol == "irmas" else None
    fs = compute_features(ds.items, ckpt.frontend, cache, jobs, hop_seconds=hop, progress=tick)
    model = ckpt.build(device)
    top_fraction = 1.0 if protocol == "irmas" else ckpt.aggregation["top_fraction"]
    y_score = item_scores(predict_features(model, fs.features, device), fs, len(ds.items), top_fraction)
    y_true = ds.targets(ckpt.labels)
    if threshold is not None or protocol == "irmas":
        thresholds = np.full(len(ckpt.labels), 0.5 if threshold is None else threshold, dtype=np.float32)
    else:
        held_to = [decision_thresholds(ckpt.thresholds, ckpt.aggregation, int(n))
                   for n in audible_segments(fs, len(ds.items))]
        thresholds = np.array([[t[label] for label in ckpt.labels] for t in held_to], dtype=np.float32)
        thresholds = thresholds.reshape(len(ds.items), len(ckpt.labels))
    metrics = summarise(y_true, y_score, ckpt.labels, thresholds)
    unknown = sorted({label for item in ds.items for label in item.labels} - set(ckpt.labels))
    metrics.update(protocol=protocol, failed_files=len(fs.failed), labels_not_in_model=unknown)
    return Evaluation(ckpt.labels, y_true, y_score, thresholds, metrics, fs.failed)


def plot_confusion(evaluation: Evaluation, path: Path) -> None:
    """Confusion matrix of single-label items (true vs top-scored label) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = confusion_matrix(evaluation.y_true, evaluation.y_score)
    labels = evaluation.labels
    fig, ax = plt.subplots(figsize=(1 + 0.5 * len(labels), 0.5 * len(labels) + 1))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted (top score)", ylabel="true", title="single-label items")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7, color="white" if cm[i, j] > cm.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
