"""Quick passes (``--coverage F``): which windows of a long track to decode and score.

A window is ``window_segments`` consecutive segments (4 × 3 s = 12 s by default), a
whole number of hops from the start of the file, so its segments are segments a full
scan would score too, at the same times. The windows are spread evenly from the start to
the end of the track: the first starts at 0, the last is decoded to the end of the file
(with the full scan's tail rule), and there are just enough of them to cover at least
the fraction F of the track: ``n = max(2, ceil(F × duration / window))``. A file with
fewer than that many windows' worth of gaps to leave (shorter than about two windows, or
F near 1) is scanned whole, as is a file whose duration is unknown.

Each window is its own task: the decoder opens the file, seeks 0.5 s before the window
(see :mod:`tagger.decode`) and decodes only the window. Measured on 3-minute MP3s
(``scripts/coverage_agreement.py --window-cost``): a window costs about 2 ms of CPU more
than decoding its seconds in a run, about what 3 s of audio costs to decode; with 12-s
windows that overhead is a fifth of the windows' decoding, and far less of the scan's
(the model's share does not change). Shorter windows spread better but pay it more often.

Importable without torch (worker processes import :mod:`tagger.scan`, which imports this).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

WINDOW_SEGMENTS = 4  # segments per window: 12 s with the default 3-s segments and hop


@dataclass(frozen=True)
class Windows:
    """The windows of one file, in samples at the pipeline's rate."""

    starts: tuple[int, ...]  # first sample of each window, a multiple of the hop, ascending
    length: int  # samples decoded per window; the last window is decoded to the end of the file
    share: float  # fraction of the file's samples inside a window (>= the coverage asked for)


def window_samples(seg_len: int, hop: int, window_segments: int) -> int:
    """Samples in a window of ``window_segments`` segments ``hop`` apart."""
    return (window_segments - 1) * hop + seg_len


def plan_windows(n_samples: int, coverage: float, seg_len: int, hop: int,
                 window_segments: int = WINDOW_SEGMENTS) -> Windows | None:
    """Evenly spread windows covering at least ``coverage`` of ``n_samples``; None: scan it whole.

    Windows share no segment and leave at least one hop between each other, else the file
    is scanned whole (it is too short for windows to save anything).
    """
    if not 0 < coverage < 1 or n_samples <= 0:
        return None
    length = window_samples(seg_len, hop, window_segments)
    n = max(2, math.ceil(coverage * n_samples / length))
    last = (n_samples - length) // hop  # the last window's start, in hops: it ends less than a hop before the end
    if last <= 0 or last // (n - 1) <= window_segments:
        return None
    starts = tuple((i * last) // (n - 1) * hop for i in range(n))
    share = ((n - 1) * length + (n_samples - starts[-1])) / n_samples
    return Windows(starts, length, share)
