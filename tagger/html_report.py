"""The HTML report: one self-contained file from a CSV report and, optionally, its segment timeline.

Everything is inline (CSS, JavaScript, SVG drawn by the script) and the data is one JSON
object embedded in the page, so the file opens from disk with no server and no network.
The library view pages its table (50 rows at a time), so 10,000 tracks stay quick; the
track view has a player (the audio file, linked by a URL relative to the page: see
:func:`audio_src`) and draws an instrument-by-time heat map of the segment scores that
seeks the player where it is clicked.

Segment scores are stored in the page quantised to 64 levels, one character each (a
heat map needs no more); the track-level scores come from the CSV, to 3 decimals. Tracks
longer than :data:`MAX_COLUMNS` segments are max-pooled in time to that many columns.
"""
from __future__ import annotations

import csv
import html
import json
import logging
import os
from urllib.parse import quote
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__
from .atomic import write_atomically
from .cells import list_values, text_value
from .labels import NON_INSTRUMENT_LABELS
from .timeline import Timeline, activity, read_timelines

log = logging.getLogger(__name__)

MAX_COLUMNS = 400  # heat-map columns per track (longer tracks are max-pooled in time)
LEVELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"  # 64 levels, score 0 -> "A"
REPORT_HEAD = ("path", "status", "error", "duration_s", "segments", "instruments")
REPORT_TAIL = ("model", "tags", "previous_instruments")


def report_model(csv_path: Path) -> str | None:
    """The model named in the first row of a report that has one (None if none)."""
    for row in _read_rows(csv_path)[1]:
        if row.get("model"):
            return row["model"]
    return None


def _read_rows(csv_path: Path) -> tuple[list[str], Iterator[dict[str, str]]]:
    f = open(csv_path, newline="", encoding="utf-8", errors="surrogateescape")
    reader = csv.DictReader(f)
    fields = list(reader.fieldnames or [])
    if fields[: len(REPORT_HEAD)] != list(REPORT_HEAD) or fields[-len(REPORT_TAIL):] != list(REPORT_TAIL):
        f.close()
        raise ValueError(f"{csv_path} is not a tagger CSV report (unexpected header)")

    def rows() -> Iterator[dict[str, str]]:
        with f:
            yield from reader

    return fields[len(REPORT_HEAD) : -len(REPORT_TAIL)], rows()


def _quantise(values: np.ndarray) -> str:
    """Scores in [0, 1] -> one character per score (64 levels)."""
    q = np.clip(np.rint(np.asarray(values) * 63), 0, 63).astype(np.int64)
    return "".join(LEVELS[i] for i in q.ravel())


def _pool(t: Timeline, columns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, loudness, scores) with at most ``columns`` segments (max over each group)."""
    n = len(t)
    if n <= columns:
        return t.start_s, t.end_s, t.loudness_db, t.scores
    edges = np.linspace(0, n, columns + 1).astype(int)
    starts = t.start_s[edges[:-1]]
    ends = np.maximum.reduceat(t.end_s, edges[:-1])
    loud = np.maximum.reduceat(t.loudness_db, edges[:-1])
    scores = np.maximum.reduceat(t.scores, edges[:-1], axis=0)
    return starts, ends, loud, scores


def timeline_json(t: Timeline, labels: list[str], thresholds: Mapping[str, float] | None,
                  threshold: float | None) -> dict:
    """A track's timeline as the page stores it: times, loudness, quantised scores, activity."""
    order = [t.labels.index(label) for label in labels]
    starts, ends, loud, scores = _pool(t, MAX_COLUMNS)
    d = {
        "s": [round(float(x), 2) for x in starts],
        "e": [round(float(x), 2) for x in ends],
        "l": _quantise((np.clip(loud, -90, 0) + 90) / 90),  # loudness -90..0 dBFS
        "q": _quantise(scores[:, order]),  # row-major: segment by segment, labels in report order
        "n": len(t),
    }
    if len(starts) > 2:  # regular segments (the usual case): store the rule, not every time
        hop, seg = float(starts[1] - starts[0]), float(ends[0] - starts[0])
        body = np.arange(len(starts) - 1) * hop
        if hop > 0 and np.allclose(starts[:-1], body, atol=0.005) and np.allclose(ends[:-1], body + seg, atol=0.005):
            d["s"] = {"hop": round(hop, 4), "len": round(seg, 4), "n": len(starts),
                      "last": [round(float(starts[-1]), 2), round(float(ends[-1]), 2)]}
            del d["e"]
    if thresholds is not None or threshold is not None:
        d["a"] = activity(t, thresholds or {}, threshold)
    return d


NO_PLAYER = {  # why a track has no player (the page stores the key, 10,000 tracks stay small)
    "missing": "the file was not found when the report was written",
    "drive": "the file is on another drive than the report, so the page cannot reach it",
}


def audio_src(path: str, report_dir: Path, search: tuple[Path, ...] = ()) -> tuple[str | None, str]:
    """(URL of the audio file relative to the report's folder, "") or (None, why not: a key of
    :data:`NO_PLAYER`).

    A relative ``path`` (as the scan was given it) is looked for under each folder of
    ``search`` in turn (the current folder first, then the CSV's). Every path segment is
    percent-encoded from its bytes, so spaces, ``#``, ``?``, ``%`` and names that are not
    UTF-8 reach the file.
    """
    given = Path(path)
    candidates = [given] if given.is_absolute() else [folder / given for folder in search]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        return None, "missing"
    try:
        rel = os.path.relpath(os.path.abspath(found), os.path.abspath(report_dir))
    except ValueError:  # Windows: another drive, no relative path
        return None, "drive"
    return "/".join(quote(os.fsencode(part), safe="") for part in rel.replace(os.sep, "/").split("/")), ""


# Characters that could end or change the <script> element the JSON sits in (</script>,
# <!--, ]]>) and line breaks that old JavaScript parsers refuse: escaped as JSON allows.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def embedded_json(data: object) -> str:
    """``data`` as JSON that can sit inside a ``<script>`` element whatever its strings hold."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True).translate(_SCRIPT_SAFE)


def build_report(csv_path: Path, segments_path: Path | None = None, thresholds: Mapping[str, float] | None = None,
                 threshold: float | None = None, track_threshold: float | None = None,
                 report_dir: Path | None = None) -> str:
    """The HTML page for a CSV report (and its timeline), as a string.

    ``thresholds``: the model's clip thresholds (where a label plays on the heat maps, and
    the tick on the track scores of a one-segment file); ``track_threshold``: the tick for a
    file of 2+ segments (:func:`tagger.aggregate.decision_thresholds`); ``threshold`` (the
    scan's ``--threshold``) replaces both. ``report_dir``: the folder the page will be
    written to (the players link the audio files relative to it; default: the CSV's folder).
    """
    labels, rows = _read_rows(csv_path)
    csv_dir = Path(csv_path).resolve().parent
    report_dir = csv_dir if report_dir is None else Path(report_dir)
    search = (Path.cwd(), csv_dir)
    tracks = []
    index: dict[str, int] = {}
    for row in rows:
        scores = [round(float(row[label]) * 1000) if row.get(label) else None for label in labels]
        index.setdefault(row["path"], len(tracks))
        tracks.append([
            row["path"], row["status"], text_value(row["error"]),  # as the files hold it, without the CSV's '
            float(row["duration_s"]) if row["duration_s"] else None,
            int(row["segments"]) if row["segments"] else None,
            [labels.index(l) for l in row["instruments"].split(";") if l in labels] if row["instruments"] else [],
            scores if any(s is not None for s in scores) else None,
            row["tags"], ";".join(list_values(row["previous_instruments"])), text_value(row["model"]),
            *audio_src(row["path"], report_dir, search),
        ])
    timelines: dict[int, dict] = {}
    if segments_path is not None:
        missing_labels = None
        for path, t in read_timelines(segments_path):
            i = index.get(path)
            if i is None:
                continue
            if not set(labels) <= set(t.labels):
                missing_labels = sorted(set(labels) - set(t.labels))
                continue
            timelines[i] = timeline_json(t, labels, thresholds, threshold)
        if missing_labels:
            raise ValueError(f"the timeline {segments_path} lacks the report's labels {', '.join(missing_labels)}")
    data = {
        "title": Path(csv_path).name,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "tagger": __version__,
        "labels": labels,
        "notInstruments": sorted(set(labels) & NON_INSTRUMENT_LABELS),  # shown apart: a voice is no instrument
        "thresholds": None if thresholds is None else {l: (threshold if threshold is not None else round(thresholds[l], 3)) for l in labels},
        "trackThreshold": (None if thresholds is None or threshold is not None or track_threshold is None
                           else round(track_threshold, 3)),
        "tracks": tracks,
        "timelines": timelines,
        "levels": LEVELS,
        "hasSegments": segments_path is not None,
        "noPlayer": NO_PLAYER,
    }
    payload = embedded_json(data)
    name = Path(csv_path).name.encode("utf-8", "backslashreplace").decode("utf-8")  # any file name, even not UTF-8
    return PAGE.replace("{{TITLE}}", html.escape(f"Instruments — {name}")).replace("{{DATA}}", payload)


def write_report(csv_path: Path, segments_path: Path | None, out: Path, thresholds: Mapping[str, float] | None = None,
                 threshold: float | None = None, track_threshold: float | None = None) -> Path:
    """Write the page to ``out``: via a temporary file created exclusively and renamed over
    it, removed on any failure (a full disk), so ``out`` is the old page or the new one."""
    page = build_report(csv_path, segments_path, thresholds, threshold, track_threshold, report_dir=Path(out).parent)
    out = Path(out)
    write_atomically(out, page.encode("utf-8"))
    return out


PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{{TITLE}}</title>
<style>
/* emoji from a colour emoji font of the system (no download); the range leaves digits and # to the text font */
@font-face { font-family:"tagger emoji"; src: local("Apple Color Emoji"), local("Segoe UI Emoji"), local("Noto Color Emoji"), local("NotoColorEmoji"); font-weight:100 900;
  unicode-range: U+1F000-1FAFF, U+2600-27BF, U+2B00-2BFF, U+2300-23FF, U+FE0F, U+200D; }
:root { --bg:#f6f7f9; --card:#fff; --ink:#1d2430; --dim:#5f6874; --line:#e3e6ea; --acc:#2f6fde; --err:#c8372d; --ok:#2e8b57; --skip:#8a8f98; --plays:#e08a1e;
  --font: "tagger emoji", system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK KR", "Hiragino Sans", "PingFang SC", "Microsoft YaHei", "Malgun Gothic", "Helvetica Neue", Arial, "DejaVu Sans", sans-serif, "Apple Color Emoji", "Segoe UI Emoji", "Noto Color Emoji"; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 var(--font); color:var(--ink); background:var(--bg); }
svg text { font-family: var(--font); }
header { background:#1d2430; color:#fff; padding:14px 24px; display:flex; align-items:baseline; gap:16px; flex-wrap:wrap; }
header h1 { font-size:18px; margin:0; font-weight:600; }
header .meta { color:#aeb6c2; font-size:12px; }
main { padding:18px 24px; max-width:1600px; margin:0 auto; }
.cards { display:flex; gap:12px; flex-wrap:wrap; margin-bottom:16px; }
.stat { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 16px; min-width:120px; }
.stat b { display:block; font-size:22px; }
.stat span { color:var(--dim); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.stat.err b { color:var(--err); } .stat.cache b { color:#6a5acd; }
.grid { display:grid; grid-template-columns: minmax(280px, 0.8fr) minmax(300px, 1.2fr); gap:16px; margin-bottom:16px; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } }
.panel { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 16px; overflow:auto; }
.panel h2 { font-size:14px; margin:0 0 10px; font-weight:600; }
.bars .row { display:grid; grid-template-columns: 140px 1fr 48px; align-items:center; gap:8px; cursor:pointer; padding:1px 0; }
.bars .row:hover .lab { color:var(--acc); }
.bars .bar { height:12px; background:var(--acc); border-radius:3px; min-width:1px; } .bars .bar.other { background:#9b59b6; }
.bars .n { text-align:right; color:var(--dim); font-variant-numeric: tabular-nums; }
.controls { display:flex; gap:10px; flex-wrap:wrap; align-items:center; margin-bottom:10px; }
.controls input, .controls select, button { font:inherit; padding:5px 8px; border:1px solid #c9ced6; border-radius:6px; background:#fff; }
.controls input[type=search] { min-width:240px; }
button { cursor:pointer; } button:disabled { opacity:.4; cursor:default; }
table.tracks { width:100%; border-collapse:collapse; table-layout:fixed; }
table.tracks td:nth-child(6) { white-space:nowrap; } table.tracks th.num { text-align:right; }
table.tracks th { text-align:left; font-weight:600; font-size:12px; color:var(--dim); border-bottom:2px solid var(--line); padding:6px 8px; cursor:pointer; user-select:none; white-space:nowrap; }
table.tracks th abbr { text-decoration:underline dotted; cursor:help; }
table.tracks th.sorted::after { content:" ▾"; } table.tracks th.sorted.asc::after { content:" ▴"; }
table.tracks td { border-bottom:1px solid var(--line); padding:5px 8px; vertical-align:top; }
table.tracks tbody tr { cursor:pointer; } table.tracks tbody tr:hover { background:#eef3fc; }
td.num { text-align:right; font-variant-numeric: tabular-nums; }
.file { font-weight:500; word-break:break-all; } .folder { color:var(--dim); font-size:12px; word-break:break-all; }
.chip { display:inline-block; background:#e6eefc; color:#1c4fa8; border-radius:10px; padding:0 8px; margin:1px 3px 1px 0; font-size:12px; white-space:nowrap; }
.chip.prev { background:#f0f0f0; color:#555; }
.chip.other { background:#f3e8fb; color:#6a2c91; }
.st-ok { color:var(--ok); } .st-error { color:var(--err); font-weight:600; } .st-skipped { color:var(--skip); } .st-cached { color:#6a5acd; }
.errtext { color:var(--err); font-size:12px; font-weight:400; }
.pager { display:flex; gap:10px; align-items:center; margin-top:10px; color:var(--dim); }
.errors li { margin-bottom:4px; word-break:break-all; }
a { color:var(--acc); text-decoration:none; } a:hover { text-decoration:underline; }
#track h2.name { font-size:18px; margin:0 0 2px; word-break:break-all; }
.panel p.sub { margin:-6px 0 10px; color:var(--dim); font-size:12px; }
.kv { display:grid; grid-template-columns: 160px 1fr; gap:4px 12px; margin:10px 0; }
.kv div:nth-child(odd) { color:var(--dim); }
.player { display:flex; align-items:center; gap:12px; flex-wrap:wrap; margin:10px 0 4px; }
.player audio { width:min(640px, 100%); }
.note { color:#8a5a00; background:#fff6e5; border:1px solid #f1d9a6; border-radius:6px; padding:4px 10px; font-size:12px; }
.heat svg { display:block; } .heat.seekable .plot { cursor:pointer; }
.legend { display:flex; align-items:center; gap:6px 14px; color:var(--dim); font-size:12px; margin-top:8px; flex-wrap:wrap; }
.legend .ramp { display:inline-block; width:140px; height:10px; border-radius:2px; vertical-align:middle; margin:0 4px; }
.legend .sw { display:inline-block; width:18px; height:4px; vertical-align:middle; margin-right:4px; }
dl.cols { display:grid; grid-template-columns: max-content 1fr; gap:2px 12px; font-size:12px; color:var(--dim); margin:12px 0 0; }
dl.cols dt { font-weight:600; color:var(--ink); } dl.cols dd { margin:0; }
.scores .rows { position:relative; }
.scores .row { display:grid; grid-template-columns: 150px 1fr 52px; gap:8px; align-items:center; }
.scores .track { position:relative; height:12px; background:#eef0f3; border-radius:3px; }
.scores .fill { position:absolute; left:0; top:0; bottom:0; background:#b9c7e2; border-radius:3px; }
.scores .row.chosen .fill { background:var(--acc); }
.scores .row.chosen .lab { font-weight:600; }
.scores .row .num { text-align:right; font-variant-numeric: tabular-nums; }
.scores .tick { position:absolute; top:-3px; bottom:-3px; width:2px; background:#1d2430; }
.scores .tick span { position:absolute; left:5px; top:-1px; font-size:10px; line-height:1; color:#1d2430; background:rgba(255,255,255,.85); padding:1px 2px; }
.scores .thr { position:absolute; z-index:2; top:18px; bottom:0; width:0; border-left:2px solid #1d2430; pointer-events:none; }
.scores .thr span { position:absolute; top:-18px; left:-40px; width:80px; text-align:center; font-size:11px; font-weight:600; white-space:nowrap; }
.scores .gap { height:18px; }
.muted { color:var(--dim); }
.hidden { display:none !important; }
</style>
</head>
<body>
<header><h1>Instruments in the library</h1><span class="meta" id="meta"></span></header>
<main>
<noscript><p>This report draws itself with JavaScript; please allow scripts for this local file.</p></noscript>
<section id="library">
  <div class="cards" id="cards"></div>
  <div class="grid">
    <div class="panel"><h2><span id="barstitle">Tracks per instrument</span> <span class="muted" style="font-weight:400">(click to filter)</span></h2><div class="bars" id="bars"></div></div>
    <div class="panel"><h2>Co-occurrence <span class="muted" style="font-weight:400">(how many tracks have both instruments)</span></h2><div id="cooc"></div><div class="legend" id="cooclegend"></div></div>
  </div>
  <div class="panel" id="errpanel" style="margin-bottom:16px"><h2>Tracks with errors</h2><ul class="errors" id="errors"></ul></div>
  <div class="panel">
    <h2>Tracks</h2>
    <div class="controls">
      <input type="search" id="q" placeholder="Search path or error…" aria-label="search">
      <select id="inst" aria-label="instrument"><option value="">any instrument</option></select>
      <label class="muted" title="only tracks whose score (see Score below) is at least this">score ≥ <input type="number" id="minscore" min="0" max="1" step="0.05" value="0" style="width:70px"></label>
      <input type="text" id="folder" list="folders" placeholder="Folder…" aria-label="folder" style="min-width:200px"><datalist id="folders"></datalist>
      <select id="status" aria-label="status"><option value="">any status</option><option value="ok">ok</option><option value="cached">cached</option><option value="skipped">skipped</option><option value="error">error</option></select>
      <span class="muted" id="count"></span>
    </div>
    <table class="tracks"><colgroup><col style="width:36%"><col style="width:14%"><col style="width:30%"><col style="width:7%"><col style="width:7%"><col style="width:6%"></colgroup><thead><tr>
      <th data-k="name" title="The file's name; its folder below it. Click a row for the track: a player and where each instrument plays.">File</th>
      <th data-k="status" title="ok: analysed in this run · cached: the result of an earlier run (file unchanged) · skipped: not analysed · error: the file could not be read (the reason below)">Status</th>
      <th data-k="inst" title="The track's labels: each label whose track score reaches the track threshold, highest score first">Instruments</th>
      <th data-k="score" class="num" title="Track score (0 to 1) of the first instrument listed, or of the instrument picked in the filter; with no instrument, the highest score of any label">Score</th>
      <th data-k="dur" class="num" title="Length of the decoded audio (minutes:seconds)">Duration</th>
      <th data-k="tags" title="written: the instruments went into the file's tags · dry-run: not written (no --write-tags) · kept: the user's own instruments tag was kept">Tags</th>
    </tr></thead><tbody id="rows"></tbody></table>
    <div class="pager"><button id="prev">‹ Previous</button><span id="page"></span><button id="next">Next ›</button></div>
    <dl class="cols" id="cols">
      <dt>File</dt><dd>the file's name, its folder below. Click a row to open the track: a player, and where each instrument plays.</dd>
      <dt>Status</dt><dd><b class="st-ok">ok</b> analysed in this run · <b class="st-cached">cached</b> the result of an earlier run, reused because the file is unchanged · <b class="st-skipped">skipped</b> not analysed · <b class="st-error">error</b> the file could not be read (the reason below it).</dd>
      <dt>Instruments</dt><dd>the track's labels: every label whose track score reaches the track threshold, highest first (purple: not an instrument).</dd>
      <dt>Score</dt><dd>the track score, 0 to 1, of the first instrument listed (or of the instrument picked in the filter; for a track with none, its highest score): how sure the model is that the instrument plays in the track, the mean of its best segment scores over the top third of the track's audible segments. Not a loudness nor a share of time.</dd>
      <dt>Duration</dt><dd>length of the decoded audio, minutes:seconds.</dd>
      <dt>Tags</dt><dd><b>written</b> the instruments went into the file's tags · <b>dry-run</b> not written (the scan ran without --write-tags) · <b>kept</b> the user's own instruments tag was left as it was.</dd>
    </dl>
  </div>
</section>
<section id="track" class="hidden"></section>
</main>
<script type="application/json" id="data">{{DATA}}</script>
<script>
"use strict";
(function () {
const D = JSON.parse(document.getElementById("data").textContent);
const L = D.labels, T = D.tracks, PAGE = 50;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
const nice = (l) => l.replace(/_/g, " ");
const plural = (n, one, many) => n + " " + (n === 1 ? one : many);
const other = new Set((D.notInstruments || []).map((l) => L.indexOf(l)));  // labels that are not instruments (voice)
const chip = (i) => `<span class="chip${other.has(i) ? " other" : ""}"${other.has(i) ? ' title="not an instrument"' : ""}>${esc(nice(L[i]))}</span>`;
const fmtDur = (s) => s == null ? "" : (s >= 3600 ? Math.floor(s / 3600) + ":" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") : Math.floor(s / 60)) + ":" + String(Math.floor(s % 60)).padStart(2, "0");
const split = (p) => { const i = Math.max(p.lastIndexOf("/"), p.lastIndexOf("\\")); return [i >= 0 ? p.slice(0, i) : "", p.slice(i + 1)]; };
const fmtThr = (v) => (+v).toFixed(3).replace(/0$/, "");
// track fields: 0 path, 1 status, 2 error, 3 duration, 4 segments, 5 instrument indices, 6 scores (per mille) or null,
// 7 tags, 8 previous, 9 model, 10 audio URL relative to this page (or null), 11 why there is none (a key of D.noPlayer)
const statusOf = (t) => t[1] === "skipped" && t[6] ? "cached" : t[1];  // a skipped row with scores: a result from the cache
const rows = T.map((t, i) => { const [folder, name] = split(t[0]); return {i, t, st: statusOf(t), folder, name, lname: (t[0] + " " + t[2]).toLowerCase()}; });
const models = [...new Set(T.map((t) => t[9]).filter(Boolean))];

// headline: every result counts, whether analysed now or taken from the cache
const count = (st) => rows.filter((r) => r.st === st).length;
const nok = count("ok"), ncached = count("cached"), nskip = count("skipped"), nerr = count("error");
const labelled = T.filter((t) => t[5].length).length;
const hours = T.reduce((a, t) => a + (t[3] || 0), 0) / 3600;
const headline = [plural(T.length, "track", "tracks")].concat(ncached ? [ncached + " from the cache"] : [],
  nskip ? [nskip + " skipped"] : [], [plural(nerr, "error", "errors")]).join(" · ");
$("meta").textContent = D.title + " · " + headline + " · " + (models.join(", ") || "no model") + " · made " + D.generated + " by tagger " + D.tagger;
$("cards").innerHTML = [[T.length === 1 ? "track" : "tracks", T.length], ["analysed in this run", nok],
  ...(ncached ? [["from the cache", ncached, "cache", "results of an earlier run, reused: the file, the model and the settings are unchanged"]] : []),
  ...(nskip ? [["skipped", nskip, "", "not analysed, no result"]] : []),
  [nerr === 1 ? "error" : "errors", nerr, nerr ? "err" : ""],
  ["with instruments", labelled], hours >= 1 ? ["hours of audio", hours.toFixed(1)] : ["minutes of audio", (hours * 60).toFixed(1)]]
  .map(([k, v, c, title]) => `<div class="stat ${c || ""}"${title ? ` title="${esc(title)}"` : ""}><b>${v}</b><span>${esc(k)}</span></div>`).join("");

// tracks per instrument
const per = L.map(() => 0);
const co = L.map(() => L.map(() => 0));
for (const t of T) { for (const a of t[5]) { per[a]++; for (const b of t[5]) co[a][b]++; } }
const maxPer = Math.max(1, ...per);
const byCount = L.map((l, i) => i).sort((a, b) => per[b] - per[a] || L[a].localeCompare(L[b]));
$("bars").innerHTML = byCount.map((i) => `<div class="row" data-l="${i}" title="${per[i]} tracks with ${esc(nice(L[i]))}"><span class="lab"${other.has(i) ? ' title="not an instrument"' : ""}>${esc(nice(L[i]))}</span><div><div class="bar${other.has(i) ? " other" : ""}" style="width:${(100 * per[i] / maxPer).toFixed(1)}%"></div></div><span class="n">${per[i]}</span></div>`).join("");
if (other.size) $("barstitle").textContent = "Tracks per label (purple: not an instrument)";
$("bars").addEventListener("click", (e) => { const r = e.target.closest(".row"); if (r) { $("inst").value = r.dataset.l; state.page = 0; render(); $("q").scrollIntoView({behavior: "smooth"}); } });

// colours: white -> blue -> dark navy (heat map and co-occurrence)
function color(v) {
  const stops = [[247, 249, 252], [158, 202, 225], [49, 130, 189], [8, 48, 107]];
  const x = Math.min(0.999, Math.max(0, v)) * (stops.length - 1), i = Math.floor(x), f = x - i;
  const c = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}
const ramp = (lo, hi) => `linear-gradient(90deg,${[0, .25, .5, .75, 1].map((f) => color(lo + (hi - lo) * f)).join(",")})`;
const measure = (() => { const ctx = document.createElement("canvas").getContext("2d");
  return (text, px) => { ctx.font = `${px}px ${getComputedStyle(document.body).fontFamily}`; return ctx.measureText(text).width; }; })();

// co-occurrence matrix (SVG), as wide as its panel; every cell says its count
function drawCooc() {
  const used = L.map((l, i) => i).filter((i) => per[i] > 0), n = used.length;
  const unused = L.filter((l, i) => !per[i]).map(nice);
  if (!n) { $("cooc").innerHTML = '<p class="muted">No track has an instrument.</p>'; $("cooclegend").innerHTML = ""; return; }
  let maxOff = 0;
  for (const a of used) for (const b of used) if (a !== b) maxOff = Math.max(maxOff, co[a][b]);
  const fs = 12, labW = Math.ceil(Math.max(...used.map((i) => measure(nice(L[i]), fs)))) + 10;
  const avail = Math.max(300, $("cooc").clientWidth - 4);
  const c = Math.max(24, Math.min(46, Math.floor((avail - labW - labW * 0.71) / n)));
  const left = labW, top = Math.ceil(labW * 0.71) + 8, width = left + n * c + Math.ceil(labW * 0.71), height = top + n * c + 2;
  const cfs = c >= 30 ? 12 : 11;
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-size="${fs}" role="img" aria-label="co-occurrence of instruments">`;
  used.forEach((i, k) => {
    const ink = other.has(i) ? "#6a2c91" : "#1d2430";  // purple: not an instrument
    s += `<text x="${left - 8}" y="${top + k * c + c / 2 + 4}" text-anchor="end" fill="${ink}">${esc(nice(L[i]))}</text>`;
    s += `<text transform="translate(${left + k * c + c / 2 - 2},${top - 6}) rotate(-45)" fill="${ink}">${esc(nice(L[i]))}</text>`;
  });
  used.forEach((a, ka) => used.forEach((b, kb) => {
    const v = co[a][b], diag = a === b, f = diag || !maxOff ? 0 : v / maxOff;
    const fill = diag ? "#e4e6eb" : v ? color(0.12 + 0.88 * f) : "#fbfcfd";
    const x = left + kb * c, y = top + ka * c;
    const title = diag ? `${v} tracks with ${nice(L[a])}` : `${v} tracks with both ${nice(L[a])} and ${nice(L[b])}`;
    s += `<g class="cell${diag ? " diag" : ""}"><title>${esc(title)}</title><rect x="${x}" y="${y}" width="${c - 1}" height="${c - 1}" fill="${fill}"/>` +
      `<text x="${x + (c - 1) / 2}" y="${y + c / 2 + 3.5}" text-anchor="middle" font-size="${cfs}" font-weight="${diag ? 700 : 400}" fill="${!diag && f > 0.45 ? "#fff" : v ? "#1d2430" : "#b4bac3"}">${v > 9999 ? Math.round(v / 1000) + "k" : v}</text></g>`;
  }));
  $("cooc").innerHTML = s + "</svg>";
  $("cooclegend").innerHTML = `<span>tracks with both: 0<span class="ramp" style="background:${ramp(0.12, 1)}"></span>${maxOff}</span>` +
    `<span><span class="sw" style="background:#e4e6eb;height:10px;width:12px"></span>diagonal (bold): tracks with that instrument</span>` +
    (unused.length ? `<span>not in any track, left out: ${esc(unused.join(", "))}</span>` : "");
}
drawCooc();

// errors
const errs = rows.filter((r) => r.t[1] === "error");
if (!errs.length) $("errpanel").innerHTML = '<h2>Tracks with errors</h2><p class="muted">None: every file was read.</p>';
else $("errors").innerHTML = errs.slice(0, 12).map((r) => `<li><a href="#t${r.i}">${esc(r.t[0])}</a> <span class="errtext">${esc(r.t[2])}</span></li>`).join("") +
  (errs.length > 12 ? `<li><a href="#" id="allerr">all ${errs.length} in the table below</a></li>` : "");
if ($("allerr")) $("allerr").addEventListener("click", (e) => { e.preventDefault(); $("status").value = "error"; state.page = 0; render(); $("q").scrollIntoView(); });

// controls
$("inst").innerHTML += L.map((l, i) => `<option value="${i}">${esc(nice(l))}</option>`).join("");
$("folders").innerHTML = [...new Set(rows.map((r) => r.folder))].sort().slice(0, 2000).map((f) => `<option value="${esc(f)}">`).join("");
const state = {sort: "name", asc: true, page: 0};
const score = (r, inst) => { const s = r.t[6]; if (!s) return -1; if (inst >= 0) return s[inst]; return r.t[5].length ? s[r.t[5][0]] : Math.max(...s); };
let view = rows;
const collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
function filter() {
  const q = $("q").value.trim().toLowerCase(), inst = $("inst").value === "" ? -1 : +$("inst").value;
  const min = Math.round(1000 * (parseFloat($("minscore").value) || 0)), folder = $("folder").value.trim(), st = $("status").value;
  view = rows.filter((r) => (!q || r.lname.includes(q)) && (!st || r.st === st) && (!folder || r.folder.startsWith(folder)) &&
    (inst < 0 || r.t[5].includes(inst) || (min > 0 && r.t[6] && r.t[6][inst] >= min)) && (min <= 0 || score(r, inst) >= min));
  const k = state.sort, dir = state.asc ? 1 : -1;
  const key = {name: (r) => r.t[0], status: (r) => r.st, inst: (r) => r.t[5].map((i) => L[i]).join(";") || "~",
    score: (r) => score(r, inst), dur: (r) => r.t[3] || 0, tags: (r) => r.t[7]}[k];
  view.sort((a, b) => { const x = key(a), y = key(b);
    const c = typeof x === "string" ? collator.compare(x, y) : x - y; return (c || a.i - b.i) * dir; });
  return inst;
}
function render() {
  const inst = filter();
  const pages = Math.max(1, Math.ceil(view.length / PAGE));
  state.page = Math.min(state.page, pages - 1);
  const part = view.slice(state.page * PAGE, state.page * PAGE + PAGE);
  $("rows").innerHTML = part.map((r) => {
    const t = r.t, sc = score(r, inst);
    return `<tr data-i="${r.i}"><td><div class="file">${esc(r.name)}</div><div class="folder">${esc(r.folder)}</div></td>` +
      `<td class="st-${esc(r.st)}"${r.st === "cached" ? ' title="the result of an earlier run, reused (the file is unchanged)"' : ""}>${esc(r.st)}${t[2] ? `<div class="errtext">${esc(t[2])}</div>` : ""}</td>` +
      `<td>${t[5].map(chip).join("")}</td>` +
      `<td class="num">${sc >= 0 ? (sc / 1000).toFixed(3) : ""}</td><td class="num">${fmtDur(t[3])}</td><td>${esc(t[7])}</td></tr>`;
  }).join("") || `<tr><td colspan="6" class="muted">No track matches.</td></tr>`;
  $("count").textContent = view.length + " of " + T.length + " tracks";
  $("page").textContent = `page ${state.page + 1} of ${pages}`;
  $("prev").disabled = state.page === 0; $("next").disabled = state.page >= pages - 1;
  document.querySelectorAll("th").forEach((th) => { th.classList.toggle("sorted", th.dataset.k === state.sort); th.classList.toggle("asc", state.asc); });
}
let timer = 0;
for (const id of ["q", "minscore", "folder"]) $(id).addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { state.page = 0; render(); }, 120); });
for (const id of ["inst", "status"]) $(id).addEventListener("change", () => { state.page = 0; render(); });
$("prev").addEventListener("click", () => { state.page--; render(); });
$("next").addEventListener("click", () => { state.page++; render(); });
document.querySelectorAll("th").forEach((th) => th.addEventListener("click", () => {
  state.asc = state.sort === th.dataset.k ? !state.asc : !["score", "dur"].includes(th.dataset.k); state.sort = th.dataset.k; render(); }));
$("rows").addEventListener("click", (e) => { const tr = e.target.closest("tr[data-i]"); if (tr) location.hash = "t" + tr.dataset.i; });

// track view
const lv = (ch) => D.levels.indexOf(ch) / 63;
function times(tl) {
  if (Array.isArray(tl.s)) return [tl.s, tl.e];
  const r = tl.s, s = [], e = [];
  for (let k = 0; k < r.n - 1; k++) { s.push(+(k * r.hop).toFixed(2)); e.push(+(k * r.hop + r.len).toFixed(2)); }
  s.push(r.last[0]); e.push(r.last[1]);
  return [s, e];
}
// the threshold a label's track score is held to: the track threshold for 2+ segments, else the label's clip threshold
const trackThr = (t, j) => !D.thresholds ? null : D.trackThreshold != null && t[4] >= 2 ? D.trackThreshold : D.thresholds[L[j]];
let current = null;  // {i, t, tl, x, left, right, end, s}: the track on show and its heat map's geometry
function heatmap(t, tl, W) {
  const [s, e] = times(tl), n = s.length, chosen = t[5], rest = L.map((l, j) => j).filter((j) => !chosen.includes(j));
  const end = Math.max(...e), rowH = 20, capH = 20, left = Math.min(220, Math.ceil(Math.max(...L.map((l) => measure("● " + nice(l), 12)))) + 16);
  const right = W - 12, plotW = right - left, x = (sec) => left + plotW * sec / end;
  const groups = [[chosen, chosen.length ? "labels of this track · orange: where it plays" : "no label of this track passed its threshold"],
    [rest, "other labels, not the track's (track score under the threshold, or past --top-k) · grey hatching: segments over the clip threshold, not counted"]];
  let y = 4, svg = "", lanes = [];
  for (const [members, caption] of groups) {
    if (!members.length && members === rest) continue;
    svg += `<text x="${left}" y="${y + 14}" fill="#5f6874" font-size="11.5" font-style="italic">${esc(caption)}</text>`;
    y += capH;
    for (const j of members) { lanes.push([j, y, members === chosen]); y += rowH; }
    y += 6;
  }
  const bottom = y, H = bottom + 26;
  let out = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-size="12" role="img" aria-label="heat map">` +
    `<defs><pattern id="quiet" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="6" fill="#bbb"/></pattern>` +
    `<pattern id="below" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="2" height="5" fill="#7d8590"/></pattern></defs>` + svg + `<g class="plot">`;
  for (const [j, y0, isChosen] of lanes) {
    const l = L[j], thr = D.thresholds ? D.thresholds[l] : null;
    out += `<text x="${left - 10}" y="${y0 + rowH * 0.68}" text-anchor="end" font-weight="${isChosen ? 700 : 400}" fill="${isChosen ? "#1d2430" : "#5f6874"}">${isChosen ? "● " : ""}${esc(nice(l))}` +
      `<title>${esc(nice(l))}: track score ${t[6] ? (t[6][j] / 1000).toFixed(3) : "–"}${trackThr(t, j) != null ? `, track threshold ${fmtThr(trackThr(t, j))}` : ""}${thr != null ? `; clip threshold ${fmtThr(thr)}` : ""}</title></text>`;
    for (let k = 0; k < n; k++) {
      const v = lv(tl.q[k * L.length + j]), x0 = x(s[k]), x1 = k + 1 < n ? Math.min(x(e[k]), x(s[k + 1])) : x(e[k]);
      out += `<rect x="${x0.toFixed(1)}" y="${y0}" width="${Math.max(0.5, x1 - x0).toFixed(1)}" height="${rowH - 2}" fill="${color(v)}"><title>${esc(nice(l))} ${fmtDur(s[k])}–${fmtDur(e[k])}: ≈${v.toFixed(2)}${t[10] ? ` (click to play from ${fmtDur(s[k])})` : ""}</title></rect>`;
    }
    if (isChosen) out += `<rect x="${left - 5}" y="${y0}" width="3" height="${rowH - 2}" fill="#e08a1e"/>`;
    for (const [a, b] of (tl.a && tl.a[l]) || []) out += isChosen
      ? `<rect class="plays" x="${x(a).toFixed(1)}" y="${y0 + rowH - 6}" width="${Math.max(1, x(b) - x(a)).toFixed(1)}" height="4" fill="#e08a1e"><title>${esc(nice(l))} plays ${fmtDur(a)}–${fmtDur(b)}</title></rect>`
      : `<rect class="below" x="${x(a).toFixed(1)}" y="${y0 + rowH - 6}" width="${Math.max(1, x(b) - x(a)).toFixed(1)}" height="4" fill="url(#below)" opacity=".8"><title>${esc(nice(l))} ${fmtDur(a)}–${fmtDur(b)}: over its clip threshold here, but not a label of this track (its track score is under the threshold)</title></rect>`;
  }
  const quietTop = lanes.length ? lanes[0][1] : 0;
  for (let k = 0; k < n; k++) if (lv(tl.l[k]) * 90 - 90 <= -60) out += `<rect x="${x(s[k]).toFixed(1)}" y="${quietTop}" width="${Math.max(0.5, x(e[k]) - x(s[k])).toFixed(1)}" height="${bottom - quietTop - 6}" fill="url(#quiet)" opacity=".5"/>`;
  const steps = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800], want = Math.max(4, Math.floor(plotW / 90));
  const step = steps[steps.findIndex((d) => end / d <= want)] || 3600;
  for (let sec = 0; sec <= end + 1e-6; sec += step) out += `<line x1="${x(sec)}" x2="${x(sec)}" y1="${bottom - 6}" y2="${bottom}" stroke="#6b7480"/><text x="${x(sec)}" y="${bottom + 13}" text-anchor="middle" fill="#5f6874">${fmtDur(sec)}</text>`;
  out += `</g><g id="playhead" transform="translate(${left},0)" visibility="hidden" pointer-events="none"><line x1="0" x2="0" y1="${quietTop - 2}" y2="${bottom - 4}" stroke="#d62728" stroke-width="2"/>` +
    `<path d="M-5,${quietTop - 8}h10l-5,6z" fill="#d62728"/></g>`;
  current = Object.assign(current || {}, {x, left, right, end, s});
  return out + "</svg>";
}
function drawHeat() {
  const box = $("heat");
  if (!box || !current) return;
  box.innerHTML = heatmap(current.t, current.tl, Math.max(640, box.clientWidth));
  playhead();
}
function playhead() {
  const a = $("player"), line = $("playhead");
  if (!a || !line || !current) return;
  const show = a.currentTime > 0 || !a.paused, px = current.x(Math.min(a.currentTime, current.end));
  line.setAttribute("transform", `translate(${px.toFixed(1)},0)`); line.setAttribute("visibility", show ? "visible" : "hidden");
}
function seekTo(sec) {
  const a = $("player");
  if (!a) return;
  a.currentTime = sec;
  const p = a.play();
  if (p && p.catch) p.catch(() => {});  // a file the browser cannot play: the note below the player says so
  playhead();
}
function trackView(i) {
  const t = T[i]; if (!t) return false;
  const [folder, name] = split(t[0]), tl = D.timelines[i], chosen = new Set(t[5]), st = statusOf(t);
  current = {i, t, tl};
  const player = t[10]
    ? `<div class="player"><audio id="player" controls preload="metadata" src="${esc(t[10])}"></audio><span class="muted">${tl ? "click the heat map to play from a segment" : ""}</span></div><div class="note hidden" id="audionote"></div>`
    : `<div class="player"><span class="note" id="audionote">No player: ${esc(D.noPlayer[t[11]] || "the file cannot be reached from this page")} (${esc(t[0])}).</span></div>`;
  let h = `<p><a href="#" id="back">‹ All tracks</a></p><div class="panel"><h2 class="name">${esc(name)}</h2><div class="folder">${esc(folder)}</div>${player}<div class="kv">` +
    `<div>status</div><div class="st-${esc(st)}">${st === "cached" ? "ok, from the cache (the file is unchanged since an earlier run)" : esc(t[1])}${t[2] ? ` — <span class="errtext">${esc(t[2])}</span>` : ""}</div>` +
    `<div>duration</div><div>${fmtDur(t[3]) || "–"}${t[4] != null ? ` (${plural(t[4], "segment", "segments")})` : ""}</div>` +
    `<div>instruments</div><div>${t[5].map(chip).join("") || '<span class="muted">none</span>'}</div>` +
    `<div>tags</div><div>${esc({written: "written into the file", "dry-run": "dry run (not written)", kept: "kept the user's own tag"}[t[7]] || t[7] || "–")}</div>` +
    `<div>previous tags</div><div>${t[8] ? t[8].split(";").map((p) => `<span class="chip prev">${esc(p)}</span>`).join("") : '<span class="muted">none</span>'}</div>` +
    `<div>model</div><div>${esc(t[9] || "–")}</div></div></div>`;
  if (tl) {
    const clip = D.thresholds ? [...new Set(Object.values(D.thresholds))] : [];
    const clipText = !clip.length ? "" : clip.length === 1 ? ` ≥ ${fmtThr(clip[0])}` : ` ≥ the label's clip threshold (${fmtThr(Math.min(...clip))}–${fmtThr(Math.max(...clip))})`;
    h += `<div class="panel" style="margin-top:16px"><h2>Where the instruments play${t[10] ? ' <span class="muted" style="font-weight:400">(click to play from there)</span>' : ""}</h2><div class="heat${t[10] ? " seekable" : ""}" id="heat"></div>` +
      `<div class="legend"><span>segment score 0<span class="ramp" style="background:${ramp(0, 1)}"></span>1</span>` +
      `<span><b>●</b> <span style="color:#e08a1e">▌</span> a label of this track</span>` +
      (D.thresholds ? `<span><span class="sw" style="background:#e08a1e"></span>plays: audible and segment score${clipText}</span>` +
        `<span><span class="sw" style="background:repeating-linear-gradient(45deg,#7d8590 0 2px,transparent 2px 4px);height:6px"></span>same, for a label that is not the track's (not counted)</span>` : "") +
      `<span>hatched: silent</span><span><span class="sw" style="background:#d62728;width:3px;height:12px"></span>playhead</span>` +
      `${tl.n > tl.q.length / L.length ? `<span>${tl.n} segments shown as ${tl.q.length / L.length} columns (maximum of each)</span>` : ""}</div></div>`;
  } else if (t[6]) h += `<div class="panel muted" style="margin-top:16px">${D.hasSegments ? "No segment timeline for this track." : "Pass --segments to see where the instruments play."}</div>`;
  if (t[6]) {
    const order = L.map((l, j) => j).sort((a, b) => t[6][b] - t[6][a] || a - b);
    const thr = order.map((j) => trackThr(t, j)), one = thr[0] != null && thr.every((v) => v === thr[0]);
    const kind = D.trackThreshold != null && t[4] >= 2 ? "track threshold" : "threshold";
    h += `<div class="panel scores" style="margin-top:16px"><h2>Track scores</h2><p class="sub">0 to 1: how sure the model is that the label plays in the track (the mean of its best segment scores over the top third of the audible segments)${thr[0] == null ? "" : one ? `; the track's labels (●) reach the ${kind}, the black line` : "; the track's labels (●) reach their label's threshold, the black tick"}.</p><div class="rows"${one ? ' style="padding-top:20px"' : ""}>` +
      (one ? `<div class="thr" style="left:calc(158px + (100% - 218px) * ${thr[0]})"><span>${kind} ${fmtThr(thr[0])}</span></div>` : "") +
      order.map((j, k) => `<div class="row ${chosen.has(j) ? "chosen" : ""}"><span class="lab">${chosen.has(j) ? "● " : ""}${esc(nice(L[j]))}</span><div class="track"><div class="fill" style="width:${t[6][j] / 10}%"></div>` +
        `${thr[k] != null && !one ? `<div class="tick" style="left:${100 * thr[k]}%" title="threshold ${fmtThr(thr[k])}"><span>${fmtThr(thr[k])}</span></div>` : ""}</div><span class="num">${(t[6][j] / 1000).toFixed(3)}</span></div>`).join("") + "</div></div>";
  }
  $("track").innerHTML = h;
  $("back").addEventListener("click", (e) => { e.preventDefault(); history.length > 1 ? history.back() : (location.hash = ""); });
  const a = $("player");
  if (a) {
    a.addEventListener("error", () => { const n = $("audionote"); n.classList.remove("hidden");
      n.textContent = "This browser cannot play the file from here: it has moved, or the browser does not play its format (" + t[0] + ")."; });
    for (const ev of ["timeupdate", "seeked", "play", "pause"]) a.addEventListener(ev, playhead);
    a.addEventListener("play", function tick() { playhead(); if (!a.paused && $("player") === a) requestAnimationFrame(tick); });
  }
  if (tl) {  // drawn by route() once the view shows (the heat map takes its panel's width)
    $("heat").addEventListener("click", (e) => {
      const svg = $("heat").querySelector("svg"); if (!svg || !current || !current.s) return;
      const px = e.clientX - svg.getBoundingClientRect().left;
      if (px < current.left || px > current.right) return;
      const sec = (px - current.left) / (current.right - current.left) * current.end;
      let k = 0; while (k + 1 < current.s.length && current.s[k + 1] <= sec) k++;
      seekTo(current.s[k]);
    });
  }
  return true;
}
function route() {
  const m = /^#t(\d+)$/.exec(location.hash);
  const old = $("player"); if (old) old.pause();
  const show = m && trackView(+m[1]);
  if (!show) { current = null; $("track").innerHTML = ""; }
  $("track").classList.toggle("hidden", !show); $("library").classList.toggle("hidden", !!show);
  if (show) { window.scrollTo(0, 0); drawHeat(); } else drawCooc();
}
let resizeTimer = 0;
window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => current ? drawHeat() : drawCooc(), 150); });
window.addEventListener("hashchange", route);
render(); route();
document.documentElement.dataset.ready = String(Math.round(performance.now()));
})();
</script>
</body>
</html>
"""
