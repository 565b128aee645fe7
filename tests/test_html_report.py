"""The HTML report: one self-contained file, checked as text and in headless Chromium."""
from __future__ import annotations

import json
import os
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
    players = {Path(t[0]).name: t[10] for t in data["tracks"]}  # each file by its URL relative to the report
    assert players["take one.wav"] == "lib/jazz/take%20one.wav"
    assert players["<i>odd & name.flac"] == "lib/jazz/%3Ci%3Eodd%20%26%20name.flac"


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
    inside = scanned["lib"] / "rock" / "here.html"  # the players link the files from where the page is written
    assert tagger("report", str(tmp_path / "p.csv"), "-o", str(inside)).returncode == 0
    players = {Path(t[0]).name: t[10] for t in _embedded(inside.read_text(encoding="utf-8"))["tracks"]}
    assert players["take one.wav"] == "../jazz/take%20one.wav" and players["riff.flac"] == "riff.flac"


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


def test_audio_src_is_relative_to_the_report_and_encoded_per_segment(tmp_path, monkeypatch):
    from tagger.html_report import audio_src

    name = os.fsdecode(b"100% sure? \xff #1.wav")  # a name that is not UTF-8, with %, ?, # and spaces
    folder = tmp_path / "Music" / "late set #2"
    folder.mkdir(parents=True)
    try:
        (folder / name).write_bytes(b"RIFF")
    except OSError:
        pytest.skip("this file system takes UTF-8 names only")
    out = tmp_path / "reports"
    assert audio_src(str(folder / name), out) == ("../Music/late%20set%20%232/100%25%20sure%3F%20%FF%20%231.wav", "")
    monkeypatch.chdir(tmp_path)  # a relative path is the scan's: looked for under the current folder, then the CSV's
    assert audio_src("Music/late set #2/" + name, out, (tmp_path / "elsewhere", tmp_path))[0].startswith("../Music/")
    src, why = audio_src(str(tmp_path / "gone.flac"), out, (tmp_path,))
    assert src is None and why == "missing"


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

    end = time.time() + seconds
    while time.time() < end:  # innerText made well-formed: a name that is not UTF-8 holds a lone surrogate
        shown = driver.execute_script("const e = document.getElementById(arguments[0]);"
                                      "return e && e.offsetParent !== null ? e.innerText.toWellFormed() : ''", element_id)
        if text in shown:
            return True
        time.sleep(0.05)
    return False


def _listening_library(tmp_path: Path) -> tuple[Path, Path]:
    """A report of three tracks made without a model: one real 12-s WAV under an awkward name
    (sax chosen; piano over its clip threshold in two segments but below the track threshold),
    one whose file is gone, one cached (skipped, with scores)."""
    from tagger.html_report import write_report
    from tagger.report import CsvReport
    from tagger.scan import TrackResult
    from tagger.timeline import TimelineWriter, make_timeline

    labels = ("piano", "saxophone", "voice")
    wav = tmp_path / "Music" / "late set #2" / os.fsdecode(b"100% sure? \xff.wav")
    write_audio(tmp_path / "tmp.wav", tone(12.0, 330))
    wav.parent.mkdir(parents=True)
    try:
        os.rename(tmp_path / "tmp.wav", wav)
    except OSError:
        pytest.skip("this file system takes UTF-8 names only")
    seg = np.array([[0.1, 0.9, 0.0], [0.8, 0.9, 0.0], [0.8, 0.9, 0.1], [0.1, 0.9, 0.0]])  # (segments, labels)
    tl = make_timeline(np.arange(4) * 3.0, 3.0, 12.0, np.full(4, -20.0), seg, labels)
    results = [
        TrackResult(wav, "ok", duration_s=12.0, segments=4, scores={"piano": 0.3, "saxophone": 0.9, "voice": 0.0},
                    instruments=[("saxophone", 0.9)], model="m", tags="dry-run", timeline=tl),
        TrackResult(tmp_path / "Music" / "duo.wav", "ok", duration_s=9.0, segments=3,
                    scores={"piano": 0.7, "saxophone": 0.8, "voice": 0.1}, instruments=[("saxophone", 0.8), ("piano", 0.7)],
                    model="m", tags="dry-run"),
        TrackResult(tmp_path / "Music" / "cached.wav", "skipped", duration_s=9.0, segments=3,
                    scores={"piano": 0.6, "saxophone": 0.1, "voice": 0.9}, instruments=[("voice", 0.9), ("piano", 0.6)],
                    model="m", tags="written"),
    ]
    out = tmp_path / "out"
    out.mkdir()
    with CsvReport.open(out / "r.csv", labels) as rep, TimelineWriter(out / "s.csv", labels) as tw:
        for r in results:
            rep.write(r)
            if r.timeline is not None:
                tw.write(r.path, r.timeline)
    html = write_report(out / "r.csv", out / "s.csv", out / "report.html", {l: 0.5 for l in labels}, None, 0.425)
    return html, wav


@needs_browser
def test_player_seek_threshold_and_cooccurrence_in_chromium(tmp_path):
    pytest.importorskip("selenium")
    from urllib.parse import unquote_to_bytes, urlparse

    from selenium.webdriver.common.by import By

    html, wav = _listening_library(tmp_path)
    with chromium(1280, 1000) as d:
        d.get(file_url(html))
        assert d.execute_script("return document.documentElement.dataset.ready")
        cards = d.find_element(By.ID, "cards").text.lower()
        assert "from the cache" in cards and "skipped" not in cards  # a cached row is a result
        assert "3 tracks · 1 from the cache · 0 errors" in d.find_element(By.ID, "meta").text
        # every column explained: a title on each heading and a line of the legend below the table
        heads = d.find_elements(By.CSS_SELECTOR, "table.tracks th")
        assert all(th.get_attribute("title") for th in heads)
        explained = [dt.text for dt in d.find_elements(By.CSS_SELECTOR, "#cols dt")]
        assert [th.text.strip(" ▴▾") for th in heads] == explained
        # co-occurrence: a count in every cell, off the diagonal too
        cells = d.find_elements(By.CSS_SELECTOR, "#cooc g.cell")
        assert len(cells) == 9 and all(c.find_element(By.TAG_NAME, "text").text.isdigit() for c in cells)
        off = {c.find_element(By.TAG_NAME, "title").get_attribute("textContent"): c.find_element(By.TAG_NAME, "text").text
               for c in cells if "diag" not in c.get_attribute("class")}
        assert off["1 tracks with both piano and saxophone"] == "1" and off["0 tracks with both saxophone and voice"] == "0"
        assert "tracks with both: 0" in d.find_element(By.ID, "cooclegend").text  # the colour legend

        d.execute_script("location.hash = '#t0'")
        assert _wait_text(d, "track", "Where the instruments play")
        # the player: its src is the file, by a relative, percent-encoded URL, and the browser reads it
        assert d.execute_script("return document.getElementById('player').getAttribute('src')") == \
            "../Music/late%20set%20%232/100%25%20sure%3F%20%FF.wav"
        src = d.execute_script("return document.getElementById('player').src")
        assert unquote_to_bytes(urlparse(src).path) == os.fsencode(wav.resolve())
        assert _wait_js(d, "const a = document.getElementById('player'); return a.readyState >= 1 && Math.abs(a.duration - 12) < 0.1")
        # clicking a segment seeks to its start and plays; the playhead shows
        lane = d.find_elements(By.CSS_SELECTOR, "#heat svg rect[fill^='rgb']")[:4]  # the first lane: saxophone, 4 segments
        lane[2].click()
        t = d.execute_script("return document.getElementById('player').currentTime")
        assert 6.0 <= t < 8.0, t
        assert d.find_element(By.ID, "playhead").get_attribute("visibility") == "visible"
        # "plays" marks only for the track's label; piano's activity is drawn apart
        plays = [r.get_attribute("textContent") for r in d.find_elements(By.CSS_SELECTOR, "#heat rect.plays")]
        below = [r.get_attribute("textContent") for r in d.find_elements(By.CSS_SELECTOR, "#heat rect.below")]
        assert plays and all(p.startswith("saxophone plays") for p in plays)
        assert below and all(b.startswith("piano") for b in below)
        # the thresholds' values are written: the track threshold on its line, the clip threshold in the legend
        scores = d.find_element(By.CSS_SELECTOR, "#track .scores")
        assert scores.find_element(By.CSS_SELECTOR, ".thr").text == "track threshold 0.425"
        assert "segment score ≥ 0.5" in d.find_element(By.CSS_SELECTOR, "#track .legend").text

        d.execute_script("location.hash = '#t1'")  # its file is gone: no player, a note that says so
        assert _wait_text(d, "track", "No player: the file was not found")
        assert not d.find_elements(By.ID, "player")
        assert console_problems(d) == []


def _wait_js(driver, script: str, seconds: float = 5.0) -> bool:
    import time

    end = time.time() + seconds
    while time.time() < end:
        if driver.execute_script(script):
            return True
        time.sleep(0.05)
    return False
