"""Screenshots of the HTML report: the bundled model on a 30-file library made from the examples.

    python scripts/report_screenshot.py docs/report-track.png --library-view docs/report-library.png

Makes a library of 30 files in a temporary folder: the eight examples, a medley of six of
them played one after another, twenty mixes of two examples (so that instruments occur
together) under names with spaces, CJK, emoji, ``#`` and ``%``, and one file that is not
audio. Scans it with ``--segments`` and ``--html`` (the real CLI, bundled model), opens the
report in headless Chromium, saves the library view and the medley's track view (a segment
clicked, so the player and its playhead show) as palette PNGs, small enough for the
repository. CJK and emoji need fonts: on Debian, ``apt-get install fonts-noto-cjk
fonts-noto-color-emoji``.
"""
from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
SR = 22050
EXAMPLES = ("piano_solo.flac", "rock_band.mp3", "string_duet.ogg", "jazz_combo.m4a", "brass.opus", "organ.aiff",
            "folk.wav", "synth_pop.wv")
MEDLEY = EXAMPLES[:6]
MIX_NAMES = (  # twenty mixes of two examples: folders and names a real library has
    "Albums/Ñandú Trio/01 Night & Day.flac", "Albums/Ñandú Trio/02 Café Müller.flac", "Albums/Ñandú Trio/03 Señor Blues.ogg",
    "Albums/夜の音楽/01 ピアノと弦.flac", "Albums/夜の音楽/02 雨の日.flac", "Albums/夜の音楽/03 東京ブルース.ogg",
    "Albums/Sigur Rós/Hoppípolla (live).flac", "Albums/Sigur Rós/Glósóli.ogg",
    "Live/🎷 late set #2.flac", "Live/🎺 100% brass.flac", "Live/🎸 encore?.ogg", "Live/Jam 2019-06-01.flac",
    "Misc/Демо запись 1.flac", "Misc/Демо запись 2.flac", "Misc/테스트 녹음.ogg", "Misc/mixdown [final] (2).flac",
    "Misc/untitled.flac", "Misc/untitled copy.flac", "Sessions/take 7.flac", "Sessions/take 8 (alt).ogg",
)


def shrink(png: Path) -> None:
    """Re-save as a palette PNG (the page has few colours; emoji and anti-aliasing need a few more)."""
    from PIL import Image

    Image.open(png).convert("RGB").quantize(160, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)


def make_library(lib: Path) -> None:
    """The 30 files (and one that is not audio) under ``lib``."""
    from tagger.decode import decode

    audio = {name: decode(ROOT / "examples" / name, SR) for name in EXAMPLES}
    for name in EXAMPLES:
        (lib / "Examples").mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "examples" / name, lib / "Examples" / name)
    sf.write(lib / "medley.flac", np.concatenate([audio[name] for name in MEDLEY]), SR)
    pairs = list(itertools.combinations(EXAMPLES, 2))
    rng = np.random.default_rng(7)
    for out, k in zip(MIX_NAMES, rng.choice(len(pairs), len(MIX_NAMES), replace=False)):
        a, b = (audio[name] for name in pairs[k])
        n = min(len(a), len(b), 10 * SR)
        path = lib / out
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, 0.6 * a[:n] + 0.6 * b[:n], SR)
    (lib / "Misc" / "broken download.mp3").write_bytes(b"<html>404 not found</html>" * 40)


def main() -> None:
    from browser import chromium, console_problems, file_url
    from selenium.webdriver.common.by import By

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the track view's PNG")
    ap.add_argument("--library-view", type=Path, help="also save the library view here")
    ap.add_argument("--width", type=int, default=1280)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        make_library(Path(tmp) / "Music")
        html, csv_path, seg = Path(tmp) / "report.html", Path(tmp) / "instruments.csv", Path(tmp) / "segments.csv"
        proc = subprocess.run([sys.executable, "-m", "tagger", "scan", "Music", "--csv", str(csv_path), "--segments", str(seg),
                               "--html", str(html), "--quiet"], cwd=tmp)
        assert proc.returncode == 1, proc.returncode  # the file that is not audio
        with chromium(opts.width, 900) as d:
            d.get(file_url(html))
            chrome = d.execute_script("return window.outerHeight - window.innerHeight") or 0
            if opts.library_view:
                height = d.execute_script("return document.documentElement.scrollHeight")  # the whole page: 30 rows, the column legend
                d.set_window_size(opts.width, int(height) + chrome)
                d.execute_script("window.dispatchEvent(new Event('resize'))")
                time.sleep(0.4)
                d.save_screenshot(str(opts.library_view))
                shrink(opts.library_view)
            d.set_window_size(opts.width, 900 + chrome)
            d.execute_script("location.hash = '#t' + JSON.parse(document.getElementById('data').textContent)"
                             ".tracks.findIndex(t => t[0].endsWith('medley.flac'))")
            time.sleep(0.5)  # the view draws, and a resize from above redraws it
            cells = d.find_elements(By.CSS_SELECTOR, "#track .heat svg rect[fill^='rgb']")
            cells[len(cells) // 2 - 5].click()  # a segment near the middle of the first lane: the player seeks there
            time.sleep(0.5)
            d.execute_script("document.getElementById('player').pause()")
            height = d.execute_script("return document.querySelector('#track .scores').getBoundingClientRect().bottom")
            d.set_window_size(opts.width, int(height) + 24 + chrome)
            time.sleep(0.4)
            opts.out.parent.mkdir(parents=True, exist_ok=True)
            d.save_screenshot(str(opts.out))
            problems = console_problems(d)
            assert not problems, problems
        shrink(opts.out)
    for png in (opts.library_view, opts.out):
        if png:
            print(f"{png}: {png.stat().st_size / 1000:.0f} KB")


if __name__ == "__main__":
    main()
