"""Size and load time of the HTML report for a large synthetic library (prints figures).

    python scripts/report_benchmark.py [--tracks 10000] [--keep DIR]

Writes a synthetic CSV report of N tracks (2-8 minutes each, 3 % errors, 1-4 instruments
each, in artist/album folders) and its segment timeline (one row per 3 s segment) with
tagger's own writers, builds the HTML report with and without the timeline, and opens
each in headless Chromium (selenium + Debian's chromium-driver) to time: the page's
script ready (ms after navigation start), a search over all tracks, and opening a track
view. Also prints the page's JavaScript heap.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from tagger.html_report import write_report  # noqa: E402
from tagger.labels import BUNDLED_LABELS  # noqa: E402
from tagger.report import CsvReport  # noqa: E402
from tagger.scan import TrackResult  # noqa: E402
from tagger.timeline import TimelineWriter, make_timeline  # noqa: E402


def synthetic(csv_path: Path, seg_path: Path, n: int, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    labels = list(BUNDLED_LABELS)
    thresholds = {label: 0.3 for label in labels}
    rows = 0
    with CsvReport.open(csv_path, labels) as report, TimelineWriter(seg_path, labels) as timeline:
        for i in range(n):
            path = Path(f"/music/Artist {i // 120:03d}/Album {i // 12:04d}/{i % 12 + 1:02d} Track {i}.flac")
            if rng.random() < 0.03:
                report.write(TrackResult(path, "error", error="not an audio file (Invalid data found when processing input)", model="resnet-65fb28ae"))
                continue
            duration = float(rng.uniform(120, 480))
            segs = int(duration // 3)
            playing = rng.choice(len(labels), size=rng.integers(1, 5), replace=False)
            scores = rng.beta(1, 12, size=(segs, len(labels)))
            for j in playing:  # an instrument plays in stretches
                start = int(rng.integers(0, max(1, segs // 2)))
                stretch = scores[start : start + int(rng.integers(max(1, segs // 3), segs + 1)), j]
                stretch[:] = rng.uniform(0.5, 1.0, size=len(stretch))
            t = make_timeline(np.arange(segs) * 3.0, 3.0, duration, rng.uniform(-30, -10, segs), scores.astype(np.float32), labels)
            k = max(1, int(np.ceil(0.34 * segs)))
            track = -np.sort(-scores, axis=0)[:k].mean(axis=0)
            picked = sorted(((labels[j], float(track[j])) for j in range(len(labels)) if track[j] >= thresholds[labels[j]]), key=lambda p: -p[1])
            r = TrackResult(path, "ok" if rng.random() > 0.1 else "skipped", duration_s=duration, segments=segs,
                            scores={l: float(s) for l, s in zip(labels, track)}, instruments=picked, model="resnet-65fb28ae",
                            tags=rng.choice(["written", "dry-run", "kept"], p=[0.6, 0.35, 0.05]),
                            previous_instruments=["piano"] if rng.random() < 0.1 else [], timeline=t)
            report.write(r)
            timeline.write(r.path, r.timeline)
            rows += segs
    return rows


def browse(page: Path) -> dict:
    from browser import chromium, console_problems, file_url
    from selenium.webdriver.common.by import By

    with chromium(1280, 900) as d:
        t0 = time.monotonic()
        d.get(file_url(page))
        wall = time.monotonic() - t0
        ready = float(d.execute_script("return document.documentElement.dataset.ready"))
        heap = d.execute_script("return performance.memory ? performance.memory.usedJSHeapSize : 0") / 1e6
        # a search over every track, timed inside the page (a select's change renders at once; typing waits 120 ms)
        search = d.execute_script("const q = document.getElementById('q'); q.value = 'track 99'; const t = performance.now(); "
                                  "document.getElementById('status').dispatchEvent(new Event('change')); return performance.now() - t") / 1000
        count = d.find_element(By.ID, "count").text
        t0 = time.monotonic()
        d.execute_script("location.hash = '#t5000'")
        d.find_element(By.CSS_SELECTOR, "#track .panel")
        track = time.monotonic() - t0
        problems = console_problems(d)
    return {"ready_ms": ready, "wall_s": wall, "heap_mb": heap, "search_s": search, "search": count, "track_s": track, "console": problems}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=10_000)
    ap.add_argument("--keep", type=Path)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = opts.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        csv_path, seg_path = folder / "instruments.csv", folder / "segments.csv"
        t0 = time.monotonic()
        rows = synthetic(csv_path, seg_path, opts.tracks)
        print(f"synthetic library: {opts.tracks} tracks, {rows} segment rows; CSV {csv_path.stat().st_size / 1e6:.1f} MB, "
              f"timeline {seg_path.stat().st_size / 1e6:.1f} MB ({time.monotonic() - t0:.0f} s to write)")
        for name, seg in (("report only", None), ("with timeline", seg_path)):
            out = folder / f"report_{'segments' if seg else 'plain'}.html"
            t0 = time.monotonic()
            write_report(csv_path, seg, out, {label: 0.3 for label in BUNDLED_LABELS})
            build = time.monotonic() - t0
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            b = browse(out)
            print(f"{name:<14} HTML {out.stat().st_size / 1e6:6.1f} MB, built in {build:5.1f} s (peak RSS so far {rss:.0f} MB); Chromium: ready {b['ready_ms']:.0f} ms "
                  f"after navigation start (get() {b['wall_s']:.2f} s), JS heap {b['heap_mb']:.0f} MB, search {b['search_s'] * 1000:.0f} ms "
                  f"({b['search']}), track view {b['track_s'] * 1000:.0f} ms; console problems: {len(b['console'])}")


if __name__ == "__main__":
    main()
