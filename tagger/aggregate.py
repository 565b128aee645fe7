"""From segment scores to a track's scores and labels.

Track score of a label (``top_mean``): the mean of its highest scores over the top
``top_fraction`` of the track's audible segments (at least one segment). An instrument
that plays through a third of a track scores as if it played throughout; one loud false
alarm in a single segment of a long track is averaged away. Silent segments (below
:data:`tagger.segments.SILENCE_DB`) are left out; a track with no audible segment gets
all-zero scores and no labels.

Labels: every label whose track score reaches its threshold, ranked by score, highest
first, cut to ``--top-k`` when given. The weights store the thresholds of one 3-s clip
(``thresholds``, tuned on validation clips; the segment timelines use them too) and may
store a track threshold (``aggregation["track_threshold"]``, tuned on whole validation
tracks by ``training/tune_tracks.py``) for files of two or more audible segments: the
top-third mean of several segments sits higher than one clip's score, so it is held to
the threshold tuned on that same score (:func:`decision_thresholds`). ``--threshold``
replaces them all.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

TOP_FRACTION = 0.34  # a third of the audible segments
DEFAULT_AGGREGATION = {"method": "top_mean", "top_fraction": TOP_FRACTION}  # what a new checkpoint stores


def track_scores(
    segment_scores: np.ndarray, audible: np.ndarray | None = None, top_fraction: float = TOP_FRACTION
) -> np.ndarray:
    """(segments, labels) scores in [0, 1] -> (labels,) track scores."""
    scores = np.asarray(segment_scores, dtype=np.float32)
    if audible is not None:
        scores = scores[np.asarray(audible, dtype=bool)]
    if scores.shape[0] == 0:
        return np.zeros(np.asarray(segment_scores).shape[1], dtype=np.float32)
    k = max(1, math.ceil(top_fraction * scores.shape[0]))
    top = -np.partition(-scores, k - 1, axis=0)[:k]  # (k, labels): the k best of each label
    return top.mean(axis=0)


def decision_thresholds(
    thresholds: Mapping[str, float], aggregation: Mapping, audible_segments: int
) -> Mapping[str, float]:
    """The thresholds a file's track scores are held to: its clip thresholds when it has one
    audible segment (or the weights have no track threshold), else the track threshold."""
    track = aggregation.get("track_threshold")
    if track is None or audible_segments < 2:
        return thresholds
    return {label: float(track) for label in thresholds}


def pick_labels(
    scores: np.ndarray,
    labels: Sequence[str],
    thresholds: Mapping[str, float],
    threshold: float | None = None,
    top_k: int | None = None,
) -> list[tuple[str, float]]:
    """Labels that pass their threshold, as (label, score), highest score first."""
    picked = [
        (label, float(s))
        for label, s in zip(labels, scores)
        if s >= (thresholds[label] if threshold is None else threshold)
    ]
    picked.sort(key=lambda pair: (-pair[1], pair[0]))
    return picked if top_k is None else picked[:top_k]
