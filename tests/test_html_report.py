"""The HTML report: one self-contained file, checked as text and in headless Chromium."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from audio_helpers import noise, tone, write_audio
from browser import chromium, console_problems, file_url, find_browser
from tagger.html_report import build_report
from tagger.labels import BUNDLED_LABELS
from test_cli import tagger

import numpy as np


def _library(root: Path) -> Path:
    lib = root / "lib"
    write_audio(lib / "jazz" / "take one.wav", np.concatenate([tone(9.0, 220), noise(6.0, 0.2), tone(9.0, 660)]))
    write_audio(lib / "jazz" / "<i>odd & name.flac", tone(5.0, 440))
    write_audio(lib / "rock" / "riff.flac", noise(12.0, 0.3, seed=3))
    (lib / "rock" / "broken.mp3").write_bytes(b"not audio at all" * 64)
    return lib


def _embedded(page: str) -> dict:
    raw = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S).group(1)
    return json.loads(raw)


@pytest.fixture
def scanned(tiny_model, tmp_path):
    lib = _library(tmp_path)
    out = {"csv": tmp_path / "r.csv", "seg": tmp_path / "seg.csv", "html": tmp_path / "report.html", "lib": lib}
    proc = tagger("scan", str(lib), "--model", str(tiny_model), "--csv", str(out["csv"]), "--segments", str(out["seg"]),
                  "--html", str(out["html"]), "--threshold", "0.5", "--jobs", "1", "--quiet")
    assert proc.returncode == 1, proc.stderr  # broken.mp3
    return out


def test_report_is_one_file_with_no_outside_reference(scanned):
    page = scanned["html"].read_text(encoding="utf-8")
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:|//)', page, re.I)  # no CDN, no network
    assert not re.search(r"@import|url\(\s*['\"]?https?:", page)
    assert "</" not in page.split('id="data">')[1].split("</script>")[0]  # a name cannot close the data block
    data = _embedded(page)
    assert data["labels"] == list(BUNDLED_LABELS) and len(data["tracks"]) == 4
    ok = [i for i, t in enumerate(data["tracks"]) if t[1] == "ok"]
    assert sorted(int(i) for i in data["timelines"]) == ok
    take = next(i for i in ok if data["tracks"][i][0].endswith("take one.wav"))
    tl = data["timelines"][str(take)]
    assert tl["n"] == 8 and len(tl["q"]) == 8 * len(BUNDLED_LABELS) and isinstance(tl["a"], dict)


def test_report_command_with_parquet_segments_and_bad_input(scanned, tiny_model, tmp_path):
    pytest.importorskip("pyarrow")
    seg = tmp_path / "seg.parquet"
    assert tagger("scan", str(scanned["lib"]), "--model", str(tiny_model), "--csv", str(tmp_path / "p.csv"),
                  "--segments", str(seg), "--jobs", "1", "--quiet").returncode == 1
    out = tmp_path / "from_parquet.html"
    proc = tagger("report", str(tmp_path / "p.csv"), "--segments", str(seg), "--model", str(tiny_model), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    data = _embedded(out.read_text(encoding="utf-8"))
    assert len(data["timelines"]) == 3 and data["thresholds"]["piano"] == 0.5
    assert tagger("report", str(tmp_path / "missing.csv"), "-o", str(out)).returncode == 2
    proc = tagger("report", str(scanned["seg"]), "-o", str(out))
    assert proc.returncode == 2 and "not a tagger CSV report" in proc.stderr  # a timeline is not a report
    proc = tagger("report", str(tmp_path / "p.csv"), "-o", str(tmp_path / "plain.html"))  # no segments: library view only
    assert proc.returncode == 0 and _embedded((tmp_path / "plain.html").read_text(encoding="utf-8"))["timelines"] == {}


def test_library_without_segments_file_still_gets_heat_maps(tiny_model, tmp_path):
    write_audio(tmp_path / "lib" / "a.wav", tone(7.0))
    html = tmp_path / "r.html"
    proc = tagger("scan", str(tmp_path / "lib"), "--model", str(tiny_model), "--csv", str(tmp_path / "r.csv"),
                  "--html", str(html), "--jobs", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert list(_embedded(html.read_text(encoding="utf-8"))["timelines"]) == ["0"]


def test_build_report_pools_long_tracks_and_marks_voice(tmp_path):
    from tagger.html_report import MAX_COLUMNS
    from tagger.report import CsvReport
    from tagger.scan import TrackResult
    from tagger.timeline import TimelineWriter, make_timeline

    labels = ("sax", "voice")
    n = 2400  # two hours of 3 s segments
    t = make_timeline(np.arange(n) * 3.0, 3.0, n * 3.0, np.full(n, -20.0), np.random.default_rng(0).random((n, 2)), labels)
    r = TrackResult(Path("long.flac"), "ok", duration_s=n * 3.0, segments=n, scores={"sax": 0.9, "voice": 0.1},
                    instruments=[("sax", 0.9)], model="m", tags="dry-run", timeline=t)
    with CsvReport.open(tmp_path / "r.csv", labels) as rep, TimelineWriter(tmp_path / "s.csv", labels) as tw:
        rep.write(r)
        tw.write(r.path, r.timeline)
    data = _embedded(build_report(tmp_path / "r.csv", tmp_path / "s.csv", {"sax": 0.5, "voice": 0.5}))
    assert data["notInstruments"] == ["voice"]  # drawn apart: a voice is never an instrument
    tl = data["timelines"]["0"]
    assert tl["n"] == n and len(tl["q"]) == MAX_COLUMNS * 2 and tl["s"]["n"] == MAX_COLUMNS
    assert data["trackThreshold"] is None  # the model has none: ticks at the clip thresholds
    clip = {"sax": 0.5, "voice": 0.5}
    assert _embedded(build_report(tmp_path / "r.csv", None, clip, None, 0.425))["trackThreshold"] == 0.425
    assert _embedded(build_report(tmp_path / "r.csv", None, clip, 0.3, 0.425))["trackThreshold"] is None  # --threshold


needs_browser = pytest.mark.skipif(find_browser() is None or shutil.which("chromium") is None,
                                   reason="chromium and chromium-driver are not installed")


@needs_browser
def test_report_in_headless_chromium(scanned, tmp_path):
    pytest.importorskip("selenium")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with chromium(1280, 1000) as d:
        d.get(file_url(scanned["html"]))
        assert d.execute_script("return document.documentElement.dataset.ready")  # the script ran to the end
        body = d.find_element(By.TAG_NAME, "body").text
        for text in ("Instruments in the library", "Tracks per instrument", "Co-occurrence", "Tracks with errors",
                     "broken.mp3", "4 of 4 tracks", "take one.wav", "<i>odd & name.flac", "riff.flac"):
            assert text in body, text
        d.find_element(By.ID, "q").send_keys("riff")
        d.execute_script("document.getElementById('q').dispatchEvent(new Event('input'))")
        assert _wait_text(d, "count", "1 of 4 tracks")
        d.find_element(By.ID, "q").clear()
        d.execute_script("document.getElementById('q').dispatchEvent(new Event('input'))")
        assert _wait_text(d, "count", "4 of 4 tracks")
        Select(d.find_element(By.ID, "status")).select_by_visible_text("error")
        assert _wait_text(d, "count", "1 of 4 tracks") and "not an audio file" in d.find_element(By.ID, "rows").text
        Select(d.find_element(By.ID, "status")).select_by_visible_text("any status")
        assert _wait_text(d, "count", "4 of 4 tracks")
        d.find_element(By.CSS_SELECTOR, "th[data-k=dur]").click()  # sort by duration, longest first
        first = d.find_element(By.CSS_SELECTOR, "#rows tr .file").text
        assert first == "take one.wav"
        d.find_element(By.CSS_SELECTOR, "#rows tr").click()  # the track view
        track = d.find_element(By.ID, "track")
        assert _wait_text(d, "track", "Where the instruments play")
        assert "0:24 (8 segments)" in track.text and "dry run (not written)" in track.text and "previous tags" in track.text
        cells = d.find_elements(By.CSS_SELECTOR, "#track .heat svg rect[fill^='rgb']")
        assert len(cells) == 8 * len(BUNDLED_LABELS)
        d.save_screenshot(str(tmp_path / "track.png"))
        d.find_element(By.ID, "back").click()
        assert _wait_text(d, "count", "4 of 4 tracks")
        assert console_problems(d) == []


def _wait_text(driver, element_id: str, text: str, seconds: float = 5.0) -> bool:
    import time

    from selenium.webdriver.common.by import By

    end = time.time() + seconds
    while time.time() < end:
        el = driver.find_element(By.ID, element_id)
        if text in el.text and el.is_displayed():
            return True
        time.sleep(0.05)
    return False
