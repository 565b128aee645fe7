"""Memory of a scan with and without the segment timeline, on one long file (prints figures).

    python scripts/timeline_memory.py [--hours 2] [--files 10000] [--keep DIR]

Makes a long Opus file with ffmpeg (a tone that changes every 20 s over noise), then runs
``tagger scan`` on it three times in a child process each: without ``--segments``, with a
CSV timeline, with a Parquet timeline (when pyarrow is installed), and prints each run's
peak resident memory (ru_maxrss of the children: the driver and its decoding workers'
largest), wall time and the timeline's size. A 10-minute file gives the baseline: flat
memory means the 2-hour figures are about the same. ``--files N`` does the same for a
library of N four-second files (hard links to one file) next to one of N/10.
"""
from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_file(path: Path, seconds: int) -> None:
    tone = "0.2*sin(2*PI*(110+110*mod(floor(t/20),6))*t)+0.02*(random(0)-0.5)"  # a new pitch every 20 s, over noise
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"aevalsrc='{tone}':s=24000:d={seconds}",
                    "-ac", "1", "-c:a", "libopus", "-b:a", "24k", str(path)], check=True)


def run(args: list[str]) -> tuple[float, float]:
    """(peak RSS of the largest child in MB, seconds) of one tagger run."""
    start = time.monotonic()
    code = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(p.returncode)"
    )
    proc = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "tagger", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return int(proc.stderr.strip().splitlines()[-1]) / 1024, time.monotonic() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--keep", type=Path, help="folder for the audio and outputs (default: a temporary one)")
    ap.add_argument("--model", type=Path, help="weights file (default: the bundled model)")
    ap.add_argument("--files", type=int, default=0, help="also a library of this many short files")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = opts.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        long_file, short_file = folder / f"long_{opts.hours:g}h.opus", folder / "short_10min.opus"
        for path, seconds in ((short_file, 600), (long_file, int(opts.hours * 3600))):
            if not path.exists():
                make_file(path, seconds)
        has_pyarrow = subprocess.run([sys.executable, "-c", "import pyarrow"], capture_output=True).returncode == 0
        model = ["--model", str(opts.model)] if opts.model else []
        print(f"{'file':<22}{'timeline':<12}{'peak RSS MB':>12}{'seconds':>10}{'rows':>8}{'timeline MB':>13}")
        targets = [short_file, long_file]
        if opts.files:
            import numpy as np
            import soundfile as sf

            one = folder / "one.wav"
            t = np.arange(4 * 22050) / 22050
            sf.write(one, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 22050)
            for n in (opts.files // 10, opts.files):
                lib = folder / f"library_{n}"
                lib.mkdir(exist_ok=True)
                for i in range(n):
                    if not (lib / f"{i:06d}.wav").exists():
                        os.link(one, lib / f"{i:06d}.wav")
                targets.append(lib)
        for path in targets:
            for kind in ("none", "csv", *(["parquet"] if has_pyarrow else [])):
                out = folder / f"{path.stem}.{kind}"
                extra = [] if kind == "none" else ["--segments", str(out)]
                rss, secs = run(["scan", str(path), "--csv", str(folder / "r.csv"), "--no-resume", "--quiet", "--jobs", "1", *model, *extra])
                rows = size = ""
                if kind == "csv":
                    with open(out, newline="") as f:
                        rows = str(sum(1 for _ in csv.reader(f)) - 1)
                if kind != "none":
                    size = f"{os.path.getsize(out) / 1e6:.2f}"
                print(f"{path.name:<22}{kind:<12}{rss:>12.0f}{secs:>10.1f}{rows:>8}{size:>13}", flush=True)


if __name__ == "__main__":
    main()
