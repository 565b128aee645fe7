"""The README's screenshot of the HTML report: the bundled model on a medley of the examples.

    python scripts/report_screenshot.py docs/report.png [--library-view library.png]

Decodes the example tracks (piano, rock band, string duet, jazz combo, brass, organ), plays
them one after another as one medley, scans it and the examples with ``--segments`` and
``--html`` (the real CLI, bundled model), opens the report in headless Chromium and saves
the medley's track view as a palette PNG (small enough for the repository).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
MEDLEY = ("piano_solo.flac", "rock_band.mp3", "string_duet.ogg", "jazz_combo.m4a", "brass.opus", "organ.aiff")


def shrink(png: Path) -> None:
    """Re-save as a 128-colour palette PNG (the page has few colours)."""
    from PIL import Image

    Image.open(png).convert("RGB").quantize(128, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)


def main() -> None:
    from browser import chromium, console_problems, file_url
    from selenium.webdriver.common.by import By
    from tagger.decode import decode

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--library-view", type=Path, help="also save the library view here")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "Music"
        (lib / "examples").mkdir(parents=True)
        for name in MEDLEY + ("folk.wav", "synth_pop.wv"):
            shutil.copy(ROOT / "examples" / name, lib / "examples" / name)
        audio = np.concatenate([decode(ROOT / "examples" / name, 22050) for name in MEDLEY])
        sf.write(lib / "medley.flac", audio, 22050)
        html, csv_path, seg = Path(tmp) / "report.html", Path(tmp) / "instruments.csv", Path(tmp) / "segments.csv"
        subprocess.run([sys.executable, "-m", "tagger", "scan", "Music", "--csv", str(csv_path), "--segments", str(seg),
                        "--html", str(html), "--quiet"], check=True, cwd=tmp)
        with chromium(1200, 900) as d:
            d.get(file_url(html))
            if opts.library_view:
                d.save_screenshot(str(opts.library_view))
                shrink(opts.library_view)
            d.find_element(By.ID, "q").send_keys("medley")
            d.implicitly_wait(3)
            d.execute_script("location.hash = '#t' + JSON.parse(document.getElementById('data').textContent)"
                             ".tracks.findIndex(t => t[0].endsWith('medley.flac'))")
            d.find_element(By.CSS_SELECTOR, "#track .heat svg")
            height = d.execute_script("return document.querySelector('#track .heat').closest('.panel').getBoundingClientRect().bottom")
            d.set_window_size(1200, int(height) + 24 + (d.execute_script("return window.outerHeight - window.innerHeight") or 0))
            opts.out.parent.mkdir(parents=True, exist_ok=True)
            d.save_screenshot(str(opts.out))
            assert not console_problems(d), console_problems(d)
        shrink(opts.out)
    print(f"{opts.out}: {opts.out.stat().st_size / 1000:.0f} KB")


if __name__ == "__main__":
    main()
