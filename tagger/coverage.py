"""Quick passes (``--coverage F``): which windows of a long track to decode and score.

A window is ``window_segments`` consecutive segments (4 × 3 s = 12 s by default), a
whole number of hops from the start of the file, so its segments are segments a full
scan would score too, at the same times. The windows are spread evenly from the start to
the end of the track: the first starts at 0, the last is decoded to the end of the file
(with the full scan's tail rule), and there are just enough of them to cover at least
the fraction F of the track: ``n = max(2, ceil(F × duration / window))``. A file too
short to leave a gap between its windows (under about two windows and a gap, or F near
1) is scanned whole, as is a file whose duration is unknown or whose container cannot be
sought to the sample (Matroska/WebM, ASF/WMA: see :mod:`tagger.decode`).

The scan decodes a file's windows from one open of it (:class:`tagger.decode.OpenFile`),
each sought: opened anew for each window, an MP3 is read from its start up to every
window (FFmpeg builds its seek index that way): 40 ms more for a window near the end of
a 40-minute MP3, and for its 60 windows at F = 0.3 about two thirds of what decoding
the whole file costs, on top of decoding the windows. From one open a window costs
1.2-1.5 ms of CPU more than decoding its seconds straight (``--window-cost``): about
13 % of a 12-s window's decoding, 30 % of a 6-s one's, half of a 3-s one's. Window size
against spread, measured by ``scripts/coverage_agreement.py --windows 1 2 3 4 6 8``
(32 multi-section songs, F = 0.3, labels against the full scan's): 1 to 4 segments
agree alike (mean Jaccard 0.88-0.92, a track or two apart); 6 and 8 segments miss
sections (0.80, 0.75); 4 is the cheapest of the good ones and leaves room for the
timeline's 6-s activity ranges, which 1-segment windows cannot hold.

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
