"""Tune the track-level decision (aggregation and threshold) on whole validation tracks.

    python -m training.tune_tracks MODEL --tracks data/val_tracks [--write DIR] [--min-precision 0.85]

A checkpoint's threshold is tuned on single 3-s validation clips, but tagger applies it
to *track* scores: the mean of a track's best ``top_fraction`` of segments
(:func:`tagger.aggregate.track_scores`). On a track of 3-5 segments that is the mean of
its best two, close to a maximum, so one segment's false alarm can name an instrument for
the whole track. This scans multi-segment validation tracks once (``training.val_tracks``:
training sound sources only), keeps every segment's scores and loudness, and grid-searches
``top_fraction`` and one global threshold for track micro-F1 (over every label of the
model). It prints precision, recall, F1 and invented labels per track for each
aggregation at its best threshold, the best with precision >= ``--min-precision``, and
the model's current setting, and chooses the best F1 with precision >= ``--min-precision``
(the best F1 when no setting reaches it): a user sees an invented label before a missed
one, and the project's target is precision 0.85. ``--write DIR`` saves a copy of the weights with the chosen
(top_fraction, threshold) and a ``track_decision`` entry in its card saying what it was
tuned on, as ``DIR/<name>-<sha8>.safetensors`` (:func:`tagger.weights.save_checkpoint`).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tagger.aggregate import track_scores
from tagger.datasets import read_manifest
from tagger.metrics import THRESHOLD_GRID, f1_from_counts, micro_counts
from tagger.weights import load_checkpoint, save_checkpoint

log = logging.getLogger("training.tune_tracks")

TOP_FRACTIONS = (0.34, 0.5, 0.67, 1.0)
MIN_PRECISION = 0.85


@dataclass
class ScannedTracks:
    """Every validation track's segment scores, loudness and true labels."""

    labels: tuple[str, ...]
    paths: list[str]
    segment_scores: list[np.ndarray]  # per track (segments, labels) in [0, 1]
    audible: list[np.ndarray]  # per track (segments,) bool
    y_true: np.ndarray  # (tracks, labels) bool


@dataclass(frozen=True)
class Decision:
    """One (aggregation, threshold) and what it gives on the tracks."""

    top_fraction: float
    threshold: float
    precision: float
    recall: float
    f1: float
    invented_per_track: float
    missed_per_track: float

    def row(self) -> str:
        return (f"| {self.top_fraction:g} | {self.threshold:.3f} | {self.precision:.3f} | {self.recall:.3f} "
                f"| {self.f1:.3f} | {self.invented_per_track:.2f} | {self.missed_per_track:.2f} |")


def scan_tracks(model: Path, manifest: Path, jobs: int = 2) -> ScannedTracks:
    """Scan the manifest's tracks with the model (library API, as ``tagger scan`` does)."""
    from tagger.inference import Scorer
    from tagger.scan import ScanOptions, Scanner

    dataset = read_manifest(manifest)
    scorer = Scorer.from_path(model, device="cpu")
    labels = scorer.labels
    results = list(Scanner(scorer, ScanOptions(jobs=jobs)).scan_files([item.path for item in dataset.items]))
    failed = [f"{r.path}: {r.error}" for r in results if r.status != "ok"]
    if failed:
        raise RuntimeError(f"{len(failed)} validation track(s) failed: {failed[:3]}")
    unknown = sorted({lab for item in dataset.items for lab in item.labels} - set(labels))
    if unknown:
        raise ValueError(f"the tracks have labels the model lacks: {unknown}")
    return ScannedTracks(
        labels=labels,
        paths=[str(item.path) for item in dataset.items],
        segment_scores=[r.timeline.scores for r in results],
        audible=[r.timeline.audible for r in results],
        y_true=dataset.targets(labels).astype(bool),
    )


def track_table(tracks: ScannedTracks, top_fraction: float) -> np.ndarray:
    """(tracks, labels) track scores by ``top_mean`` with ``top_fraction``."""
    return np.stack([track_scores(s, a, top_fraction) for s, a in zip(tracks.segment_scores, tracks.audible)])


def decide(y_true: np.ndarray, y_score: np.ndarray, top_fraction: float,
           thresholds: Sequence[float] = THRESHOLD_GRID) -> list[Decision]:
    """Micro precision, recall and F1 over all labels at each threshold."""
    out, n = [], len(y_true)
    for g in thresholds:
        tp, fp, fn = micro_counts(y_true, y_score >= g)
        precision = tp / (tp + fp) if tp + fp else 1.0  # nothing named: nothing invented
        recall = tp / (tp + fn) if tp + fn else 1.0
        out.append(Decision(float(top_fraction), float(g), precision, recall, f1_from_counts(tp, fp, fn), fp / n, fn / n))
    return out


def best(decisions: Sequence[Decision], min_precision: float = 0.0) -> Decision | None:
    """Highest F1 (ties: higher precision, then the lower threshold) among those with
    precision >= ``min_precision``; None when none reaches it."""
    ok = [d for d in decisions if d.precision >= min_precision and d.f1 > 0]
    return max(ok, key=lambda d: (round(d.f1, 9), round(d.precision, 9), -d.threshold), default=None)


def choose(results: dict[float, list[Decision]], min_precision: float) -> Decision:
    """The best F1 among the settings with precision >= ``min_precision``; the best F1 overall when none reaches it."""
    floor = [b for b in (best(ds, min_precision) for ds in results.values()) if b is not None]
    pool = floor or [b for b in (best(ds) for ds in results.values()) if b is not None]
    return max(pool, key=lambda d: (round(d.f1, 9), round(d.precision, 9)))


def grid(tracks: ScannedTracks, top_fractions: Sequence[float] = TOP_FRACTIONS,
         thresholds: Sequence[float] = THRESHOLD_GRID) -> dict[float, list[Decision]]:
    return {f: decide(tracks.y_true, track_table(tracks, f), f, thresholds) for f in top_fractions}


def f1_gain_interval(tracks: ScannedTracks, new: Decision, old: Decision, n: int = 1000,
                     seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95 % interval of F1(new) - F1(old) over ``n`` bootstrap resamples of the tracks."""
    y_new, y_old = track_table(tracks, new.top_fraction), track_table(tracks, old.top_fraction)
    t = tracks.y_true
    rng = np.random.default_rng(seed)

    def f1(y: np.ndarray, truth: np.ndarray, threshold: float) -> float:
        return f1_from_counts(*micro_counts(truth, y >= threshold))

    gains = []
    for _ in range(n):
        i = rng.integers(0, len(t), len(t))
        gains.append(f1(y_new[i], t[i], new.threshold) - f1(y_old[i], t[i], old.threshold))
    lo, hi = np.percentile(gains, [2.5, 97.5])
    return float(np.mean(gains)), float(lo), float(hi)


def table(results: dict[float, list[Decision]], current: Decision | None, min_precision: float) -> str:
    head = "| top_fraction | threshold | precision | recall | micro-F1 | invented / track | missed / track |"
    lines = [head, "|" + " --- |" * 7]
    for f, ds in results.items():
        lines.append(best(ds).row())
    lines += ["", f"best F1 with precision >= {min_precision:g}:", "", head, "|" + " --- |" * 7]
    for f, ds in results.items():
        b = best(ds, min_precision)
        lines.append(b.row() if b else f"| {f:g} | – | – | – | – | – | – |")
    if current is not None:
        lines += ["", "the model's current setting:", "", head, "|" + " --- |" * 7, current.row()]
    return "\n".join(lines)


def tuned_checkpoint(model: Path, choice: Decision, tracks_dir: Path, n_tracks: int, about: dict):
    """The model's checkpoint with ``choice`` as its track aggregation and track threshold, card updated.

    The clip thresholds (``thresholds``: one 3-s clip, and the segment timelines) stay as
    tuned on validation clips; the track threshold holds for files of 2+ audible segments
    (:func:`tagger.aggregate.decision_thresholds`).
    """
    ckpt = load_checkpoint(model)
    previous = {"version": ckpt.version, "aggregation": dict(ckpt.aggregation),
                "thresholds": sorted(set(round(v, 4) for v in ckpt.thresholds.values()))}
    ckpt.aggregation = {"method": "top_mean", "top_fraction": float(choice.top_fraction),
                        "track_threshold": float(choice.threshold)}
    ckpt.card["track_decision"] = {
        "about": (f"the track threshold (files of 2+ audible segments) and the track aggregation, tuned for track "
                  f"micro-F1 (the best with precision >= min_precision, when one reaches it) on {n_tracks} "
                  f"multi-segment validation tracks rendered from training sound sources only "
                  f"(training/val_tracks.py; not TimGM6mb, not examples/); clip thresholds unchanged"),
        "tracks": str(tracks_dir), **about,
        "top_fraction": choice.top_fraction, "threshold": choice.threshold,
        "precision": round(choice.precision, 4), "recall": round(choice.recall, 4), "micro_f1": round(choice.f1, 4),
        "invented_per_track": round(choice.invented_per_track, 3),
        "previous": previous,
        "command": "python -m training.tune_tracks MODEL --tracks data/val_tracks --write DIR",
    }
    ckpt.digest = ""  # a new file, a new digest
    return ckpt


def _about(tracks_dir: Path) -> dict:
    """Sources and sizes of the validation tracks, from their tracks.jsonl when there."""
    path = tracks_dir / "tracks.jsonl"
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    sources: dict[str, int] = {}
    for r in rows:
        sources[r["source"]] = sources.get(r["source"], 0) + 1
    return {"sources": dict(sorted(sources.items())), "segments": sum(r["segments"] for r in rows)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.tune_tracks", description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--tracks", type=Path, required=True, help="folder with labels.csv (training.val_tracks)")
    p.add_argument("--top-fractions", default=",".join(f"{f:g}" for f in TOP_FRACTIONS))
    p.add_argument("--min-precision", type=float, default=MIN_PRECISION,
                   help=f"choose the best F1 with at least this precision (default {MIN_PRECISION}; 0: the best F1)")
    p.add_argument("--jobs", type=int, default=2, help="decoding processes")
    p.add_argument("--write", type=Path, metavar="DIR", help="save the tuned weights here")
    p.add_argument("--json", type=Path, help="write the whole grid here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    tracks = scan_tracks(args.model, args.tracks / "labels.csv", args.jobs)
    fractions = [float(f) for f in args.top_fractions.split(",") if f]
    results = grid(tracks, fractions)
    header = load_checkpoint(args.model)
    agg = header.aggregation
    thresholds = {agg["track_threshold"]} if "track_threshold" in agg else set(header.thresholds.values())
    current = None
    if len(thresholds) == 1:  # one threshold for tracks: where the current setting stands
        (t,) = thresholds
        current = decide(tracks.y_true, track_table(tracks, agg["top_fraction"]), agg["top_fraction"], [t])[0]
    n_pos = int(tracks.y_true.sum())
    print(f"{len(tracks.paths)} tracks, {sum(len(s) for s in tracks.segment_scores)} segments, "
          f"{n_pos} true labels ({n_pos / len(tracks.paths):.2f} per track); model {header.version}\n")
    print(table(results, current, args.min_precision))
    choice = choose(results, args.min_precision)
    print(f"\nchosen: top_fraction {choice.top_fraction:g}, threshold {choice.threshold:.3f} "
          f"(F1 {choice.f1:.3f}, P {choice.precision:.3f}, R {choice.recall:.3f})")
    about = {**_about(args.tracks), "min_precision": args.min_precision}
    if current is not None:
        mean, lo, hi = f1_gain_interval(tracks, choice, current)
        print(f"F1 gain over the current setting: {mean:+.3f} (95 % bootstrap interval over tracks {lo:+.3f} .. {hi:+.3f})")
        about["previous_micro_f1"] = round(current.f1, 4)
        about["f1_gain_95"] = [round(lo, 4), round(hi, 4)]
    if args.json:
        args.json.write_text(json.dumps({f"{f:g}": [d.__dict__ for d in ds] for f, ds in results.items()}, indent=1))
    if args.write:
        ckpt = tuned_checkpoint(args.model, choice, args.tracks, len(tracks.paths), about)
        print(save_checkpoint(ckpt, args.write))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
