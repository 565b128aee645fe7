"""The HTML report: one self-contained file from a CSV report and, optionally, its segment timeline.

Everything is inline (CSS, JavaScript, SVG drawn by the script) and the data is one JSON
object embedded in the page, so the file opens from disk with no server and no network.
The library view pages its table (50 rows at a time), so 10,000 tracks stay quick; the
track view draws an instrument-by-time heat map of the segment scores.

Segment scores are stored in the page quantised to 64 levels, one character each (a
heat map needs no more); the track-level scores come from the CSV, to 3 decimals. Tracks
longer than :data:`MAX_COLUMNS` segments are max-pooled in time to that many columns.
"""
from __future__ import annotations

import csv
import html
import json
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__
from .atomic import write_atomically
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


def build_report(csv_path: Path, segments_path: Path | None = None, thresholds: Mapping[str, float] | None = None,
                 threshold: float | None = None, track_threshold: float | None = None) -> str:
    """The HTML page for a CSV report (and its timeline), as a string.

    ``thresholds``: the model's clip thresholds (where a label plays on the heat maps, and
    the tick on the track scores of a one-segment file); ``track_threshold``: the tick for a
    file of 2+ segments (:func:`tagger.aggregate.decision_thresholds`); ``threshold`` (the
    scan's ``--threshold``) replaces both.
    """
    labels, rows = _read_rows(csv_path)
    tracks = []
    index: dict[str, int] = {}
    for row in rows:
        scores = [round(float(row[label]) * 1000) if row.get(label) else None for label in labels]
        index.setdefault(row["path"], len(tracks))
        tracks.append([
            row["path"], row["status"], row["error"],
            float(row["duration_s"]) if row["duration_s"] else None,
            int(row["segments"]) if row["segments"] else None,
            [labels.index(l) for l in row["instruments"].split(";") if l in labels] if row["instruments"] else [],
            scores if any(s is not None for s in scores) else None,
            row["tags"], row["previous_instruments"], row["model"],
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
    }
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=True).replace("</", "<\\/")
    name = Path(csv_path).name.encode("utf-8", "backslashreplace").decode("utf-8")  # any file name, even not UTF-8
    return PAGE.replace("{{TITLE}}", html.escape(f"Instruments — {name}")).replace("{{DATA}}", payload)


def write_report(csv_path: Path, segments_path: Path | None, out: Path, thresholds: Mapping[str, float] | None = None,
                 threshold: float | None = None, track_threshold: float | None = None) -> Path:
    """Write the page to ``out``: via a temporary file created exclusively and renamed over
    it, removed on any failure (a full disk), so ``out`` is the old page or the new one."""
    page = build_report(csv_path, segments_path, thresholds, threshold, track_threshold)
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
:root { --bg:#f6f7f9; --card:#fff; --ink:#1d2430; --dim:#6b7480; --line:#e3e6ea; --acc:#2f6fde; --err:#c8372d; --ok:#2e8b57; --skip:#8a8f98; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif; color:var(--ink); background:var(--bg); }
header { background:#1d2430; color:#fff; padding:14px 24px; display:flex; align-items:baseline; gap:16px; flex-wrap:wrap; }
header h1 { font-size:18px; margin:0; font-weight:600; }
header .meta { color:#aeb6c2; font-size:12px; }
main { padding:18px 24px; max-width:1400px; margin:0 auto; }
.cards { display:flex; gap:12px; flex-wrap:wrap; margin-bottom:16px; }
.stat { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 16px; min-width:120px; }
.stat b { display:block; font-size:22px; }
.stat span { color:var(--dim); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.stat.err b { color:var(--err); }
.grid { display:grid; grid-template-columns: minmax(300px, 1fr) minmax(300px, 1.2fr); gap:16px; margin-bottom:16px; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } }
.panel { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 16px; overflow:auto; }
.panel h2 { font-size:14px; margin:0 0 10px; font-weight:600; }
.bars .row { display:grid; grid-template-columns: 130px 1fr 48px; align-items:center; gap:8px; cursor:pointer; padding:1px 0; }
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
table.tracks th.sorted::after { content:" ▾"; } table.tracks th.sorted.asc::after { content:" ▴"; }
table.tracks td { border-bottom:1px solid var(--line); padding:5px 8px; vertical-align:top; }
table.tracks tbody tr { cursor:pointer; } table.tracks tbody tr:hover { background:#eef3fc; }
td.num { text-align:right; font-variant-numeric: tabular-nums; }
.file { font-weight:500; word-break:break-all; } .folder { color:var(--dim); font-size:12px; word-break:break-all; }
.chip { display:inline-block; background:#e6eefc; color:#1c4fa8; border-radius:10px; padding:0 8px; margin:1px 3px 1px 0; font-size:12px; white-space:nowrap; }
.chip.prev { background:#f0f0f0; color:#555; }
.chip.other { background:#f3e8fb; color:#6a2c91; }
.st-ok { color:var(--ok); } .st-error { color:var(--err); font-weight:600; } .st-skipped { color:var(--skip); }
.errtext { color:var(--err); font-size:12px; }
.pager { display:flex; gap:10px; align-items:center; margin-top:10px; color:var(--dim); }
.errors li { margin-bottom:4px; word-break:break-all; }
a { color:var(--acc); text-decoration:none; } a:hover { text-decoration:underline; }
#track h2 { font-size:18px; margin:0 0 2px; word-break:break-all; }
.kv { display:grid; grid-template-columns: 160px 1fr; gap:4px 12px; margin:10px 0; }
.kv div:nth-child(odd) { color:var(--dim); }
.heat { overflow-x:auto; }
.legend { display:flex; align-items:center; gap:8px; color:var(--dim); font-size:12px; margin-top:6px; flex-wrap:wrap; }
.legend .ramp { width:160px; height:10px; border-radius:2px; }
.scores .row { display:grid; grid-template-columns: 140px 1fr 52px; gap:8px; align-items:center; }
.scores .track { position:relative; height:12px; background:#eef0f3; border-radius:3px; }
.scores .fill { position:absolute; left:0; top:0; bottom:0; background:#9fb7e6; border-radius:3px; }
.scores .row.chosen .fill { background:var(--acc); }
.scores .row.chosen .lab { font-weight:600; }
.scores .tick { position:absolute; top:-3px; bottom:-3px; width:2px; background:#1d2430; }
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
    <div class="panel"><h2>Co-occurrence <span class="muted" style="font-weight:400">(tracks with both instruments)</span></h2><div id="cooc"></div></div>
  </div>
  <div class="panel" id="errpanel" style="margin-bottom:16px"><h2>Tracks with errors</h2><ul class="errors" id="errors"></ul></div>
  <div class="panel">
    <h2>Tracks</h2>
    <div class="controls">
      <input type="search" id="q" placeholder="Search path or error…" aria-label="search">
      <select id="inst" aria-label="instrument"><option value="">any instrument</option></select>
      <label class="muted">score ≥ <input type="number" id="minscore" min="0" max="1" step="0.05" value="0" style="width:70px"></label>
      <input type="text" id="folder" list="folders" placeholder="Folder…" aria-label="folder" style="min-width:200px"><datalist id="folders"></datalist>
      <select id="status" aria-label="status"><option value="">any status</option><option>ok</option><option>skipped</option><option>error</option></select>
      <span class="muted" id="count"></span>
    </div>
    <table class="tracks"><colgroup><col style="width:36%"><col style="width:14%"><col style="width:30%"><col style="width:7%"><col style="width:7%"><col style="width:6%"></colgroup><thead><tr>
      <th data-k="name">File</th><th data-k="status">Status</th><th data-k="inst">Instruments</th>
      <th data-k="score" class="num">Score</th><th data-k="dur" class="num">Duration</th><th data-k="tags">Tags</th>
    </tr></thead><tbody id="rows"></tbody></table>
    <div class="pager"><button id="prev">‹ Previous</button><span id="page"></span><button id="next">Next ›</button></div>
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
const other = new Set((D.notInstruments || []).map((l) => L.indexOf(l)));  // labels that are not instruments (voice)
const chip = (i) => `<span class="chip${other.has(i) ? " other" : ""}"${other.has(i) ? ' title="not an instrument"' : ""}>${esc(nice(L[i]))}</span>`;
const fmtDur = (s) => s == null ? "" : (s >= 3600 ? Math.floor(s / 3600) + ":" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") : Math.floor(s / 60)) + ":" + String(Math.floor(s % 60)).padStart(2, "0");
const split = (p) => { const i = Math.max(p.lastIndexOf("/"), p.lastIndexOf("\\")); return [i >= 0 ? p.slice(0, i) : "", p.slice(i + 1)]; };
// track fields: 0 path, 1 status, 2 error, 3 duration, 4 segments, 5 instrument indices, 6 scores (per mille) or null, 7 tags, 8 previous, 9 model
const rows = T.map((t, i) => { const [folder, name] = split(t[0]); return {i, t, folder, name, lname: (t[0] + " " + t[2]).toLowerCase()}; });
const models = [...new Set(T.map((t) => t[9]).filter(Boolean))];
$("meta").textContent = D.title + " · " + T.length + " tracks · " + (models.join(", ") || "no model") + " · made " + D.generated + " by tagger " + D.tagger;

// summary cards
const count = (st) => T.filter((t) => t[1] === st).length;
const labelled = T.filter((t) => t[5].length).length;
const hours = T.reduce((a, t) => a + (t[3] || 0), 0) / 3600;
const nerr = count("error");
$("cards").innerHTML = [["tracks", T.length], ["ok", count("ok")], ["skipped", count("skipped")], ["errors", nerr, nerr ? "err" : ""],
  ["with instruments", labelled], hours >= 1 ? ["hours of audio", hours.toFixed(1)] : ["minutes of audio", (hours * 60).toFixed(1)]]
  .map(([k, v, c]) => `<div class="stat ${c || ""}"><b>${v}</b><span>${k}</span></div>`).join("");

// tracks per instrument
const per = L.map(() => 0);
const co = L.map(() => L.map(() => 0));
for (const t of T) { for (const a of t[5]) { per[a]++; for (const b of t[5]) co[a][b]++; } }
const maxPer = Math.max(1, ...per);
const byCount = L.map((l, i) => i).sort((a, b) => per[b] - per[a] || L[a].localeCompare(L[b]));
$("bars").innerHTML = byCount.map((i) => `<div class="row" data-l="${i}"><span class="lab"${other.has(i) ? ' title="not an instrument"' : ""}>${esc(nice(L[i]))}</span><div><div class="bar${other.has(i) ? " other" : ""}" style="width:${(100 * per[i] / maxPer).toFixed(1)}%"></div></div><span class="n">${per[i]}</span></div>`).join("");
if (other.size) $("barstitle").textContent = "Tracks per label (purple: not an instrument)";
$("bars").addEventListener("click", (e) => { const r = e.target.closest(".row"); if (r) { $("inst").value = r.dataset.l; state.page = 0; render(); $("q").scrollIntoView({behavior: "smooth"}); } });

// co-occurrence matrix (SVG)
(function () {
  const n = L.length, c = 18, left = 120, top = 110;
  let maxOff = 1;
  for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) if (a !== b) maxOff = Math.max(maxOff, co[a][b]);
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${left + n * c + 70}" height="${top + n * c + 4}" font-size="11" font-family="inherit">`;
  L.forEach((l, i) => {
    s += `<text x="${left - 6}" y="${top + i * c + c * 0.7}" text-anchor="end" fill="#1d2430">${esc(nice(l))}</text>`;
    s += `<text transform="translate(${left + i * c + c * 0.65},${top - 6}) rotate(-55)" fill="#1d2430">${esc(nice(l))}</text>`;
  });
  for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) {
    const v = co[a][b], diag = a === b;
    const f = diag ? 0 : v / maxOff;
    const fill = diag ? "#f0f1f4" : v ? `rgba(47,111,222,${(0.12 + 0.88 * f).toFixed(3)})` : "#fafbfc";
    s += `<rect x="${left + b * c}" y="${top + a * c}" width="${c - 1}" height="${c - 1}" fill="${fill}"><title>${esc(nice(L[a]))} + ${esc(nice(L[b]))}: ${v} tracks</title></rect>`;
    if (diag && v) s += `<text x="${left + b * c + c / 2 - 0.5}" y="${top + a * c + c * 0.68}" text-anchor="middle" font-size="8" fill="#6b7480">${v > 999 ? "1k+" : v}</text>`;
  }
  $("cooc").innerHTML = s + "</svg>";
})();

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
  view = rows.filter((r) => (!q || r.lname.includes(q)) && (!st || r.t[1] === st) && (!folder || r.folder.startsWith(folder)) &&
    (inst < 0 || r.t[5].includes(inst) || (min > 0 && r.t[6] && r.t[6][inst] >= min)) && (min <= 0 || score(r, inst) >= min));
  const k = state.sort, dir = state.asc ? 1 : -1;
  const key = {name: (r) => r.t[0], status: (r) => r.t[1], inst: (r) => r.t[5].map((i) => L[i]).join(";") || "~",
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
      `<td class="st-${esc(t[1])}">${esc(t[1])}${t[2] ? `<div class="errtext">${esc(t[2])}</div>` : ""}</td>` +
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
function color(v) {  // white -> blue -> dark navy
  const stops = [[247, 249, 252], [158, 202, 225], [49, 130, 189], [8, 48, 107]];
  const x = Math.min(0.999, Math.max(0, v)) * (stops.length - 1), i = Math.floor(x), f = x - i;
  const c = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}
function times(tl) {
  if (Array.isArray(tl.s)) return [tl.s, tl.e];
  const r = tl.s, s = [], e = [];
  for (let k = 0; k < r.n - 1; k++) { s.push(+(k * r.hop).toFixed(2)); e.push(+(k * r.hop + r.len).toFixed(2)); }
  s.push(r.last[0]); e.push(r.last[1]);
  return [s, e];
}
function heatmap(t, tl) {
  const [s, e] = times(tl), n = s.length, chosen = new Set(t[5]);
  const end = Math.max(...e), rowH = 18, left = 150, top = 8, W = 1150, plotW = W - left - 16;
  const x = (sec) => left + plotW * sec / end;
  const H = top + L.length * rowH + 34;
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" style="width:100%;min-width:700px;max-width:${W}px" font-size="11" font-family="inherit" role="img" aria-label="heat map">` +
    `<defs><pattern id="quiet" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="6" fill="#bbb"/></pattern></defs><g>`;
  L.forEach((l, j) => {
    const y = top + j * rowH;
    svg += `<text x="${left - 10}" y="${y + rowH * 0.68}" text-anchor="end" font-weight="${chosen.has(j) ? 700 : 400}" fill="${chosen.has(j) ? "#1d2430" : "#6b7480"}">${chosen.has(j) ? "● " : ""}${esc(nice(l))}</text>`;
    for (let k = 0; k < n; k++) {
      const v = lv(tl.q[k * L.length + j]), x0 = x(s[k]), x1 = k + 1 < n ? Math.min(x(e[k]), x(s[k + 1])) : x(e[k]);
      svg += `<rect x="${x0.toFixed(1)}" y="${y}" width="${Math.max(0.5, x1 - x0).toFixed(1)}" height="${rowH - 2}" fill="${color(v)}"><title>${esc(nice(l))} ${fmtDur(s[k])}–${fmtDur(e[k])}: ≈${v.toFixed(2)}</title></rect>`;
    }
    if (chosen.has(j)) svg += `<rect x="${left - 5}" y="${y}" width="3" height="${rowH - 2}" fill="#e08a1e"/>`;
    for (const [a, b] of (tl.a && tl.a[l]) || []) svg += `<rect x="${x(a).toFixed(1)}" y="${y + rowH - 5}" width="${Math.max(1, x(b) - x(a)).toFixed(1)}" height="3" fill="#e08a1e"><title>${esc(nice(l))} plays ${fmtDur(a)}–${fmtDur(b)}</title></rect>`;
  });
  for (let k = 0; k < n; k++) if (lv(tl.l[k]) * 90 - 90 <= -60) svg += `<rect x="${x(s[k]).toFixed(1)}" y="${top}" width="${Math.max(0.5, x(e[k]) - x(s[k])).toFixed(1)}" height="${L.length * rowH - 2}" fill="url(#quiet)" opacity=".5"/>`;
  const step = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800][[5, 10, 15, 30, 60, 120, 300, 600, 900, 1800].findIndex((d) => end / d <= 10)] || 3600;
  const y0 = top + L.length * rowH;
  for (let sec = 0; sec <= end + 1e-6; sec += step) svg += `<line x1="${x(sec)}" x2="${x(sec)}" y1="${y0}" y2="${y0 + 5}" stroke="#6b7480"/><text x="${x(sec)}" y="${y0 + 17}" text-anchor="middle" fill="#6b7480">${fmtDur(sec)}</text>`;
  return svg + "</g></svg>";
}
function trackView(i) {
  const t = T[i]; if (!t) return false;
  const [folder, name] = split(t[0]), tl = D.timelines[i], chosen = new Set(t[5]);
  let h = `<p><a href="#" id="back">‹ All tracks</a></p><div class="panel"><h2>${esc(name)}</h2><div class="folder">${esc(folder)}</div><div class="kv">` +
    `<div>status</div><div class="st-${esc(t[1])}">${esc(t[1])}${t[2] ? ` — <span class="errtext">${esc(t[2])}</span>` : ""}</div>` +
    `<div>duration</div><div>${fmtDur(t[3]) || "–"}${t[4] != null ? ` (${t[4]} segments)` : ""}</div>` +
    `<div>instruments</div><div>${t[5].map(chip).join("") || '<span class="muted">none</span>'}</div>` +
    `<div>tags</div><div>${esc({written: "written into the file", "dry-run": "dry run (not written)", kept: "kept the user's own tag"}[t[7]] || t[7] || "–")}</div>` +
    `<div>previous tags</div><div>${t[8] ? t[8].split(";").map((p) => `<span class="chip prev">${esc(p)}</span>`).join("") : '<span class="muted">none</span>'}</div>` +
    `<div>model</div><div>${esc(t[9] || "–")}</div></div></div>`;
  if (tl) h += `<div class="panel" style="margin-top:16px"><h2>Where the instruments play</h2><div class="heat">${heatmap(t, tl)}</div>` +
    `<div class="legend">score <span>0</span><span class="ramp" style="background:linear-gradient(90deg,${[0, .33, .66, 1].map(color).join(",")})"></span><span>1</span>` +
    `<span>· <b>●</b> <span style="color:#e08a1e">▌</span> labels chosen for the track</span>${D.thresholds ? '<span>· <span style="color:#e08a1e">▬</span> where a label plays (score over its threshold)</span>' : ""}<span>· hatched: silent</span>` +
    `${tl.n > tl.q.length / L.length ? `<span>· ${tl.n} segments shown as ${tl.q.length / L.length} columns (maximum of each)</span>` : ""}</div></div>`;
  else if (t[6]) h += `<div class="panel muted" style="margin-top:16px">${D.hasSegments ? "No segment timeline for this track." : "Pass --segments to see where the instruments play."}</div>`;
  if (t[6]) h += `<div class="panel scores" style="margin-top:16px"><h2>Track scores${D.thresholds ? " (line: threshold)" : ""}</h2>` + L.map((l, j) => `<div class="row ${chosen.has(j) ? "chosen" : ""}"><span class="lab">${esc(nice(l))}</span><div class="track"><div class="fill" style="width:${t[6][j] / 10}%"></div>${D.thresholds ? `<div class="tick" style="left:${100 * (D.trackThreshold != null && t[4] >= 2 ? D.trackThreshold : D.thresholds[l])}%"></div>` : ""}</div><span class="num">${(t[6][j] / 1000).toFixed(3)}</span></div>`).join("") + "</div>";
  $("track").innerHTML = h;
  $("back").addEventListener("click", (e) => { e.preventDefault(); history.length > 1 ? history.back() : (location.hash = ""); });
  return true;
}
function route() {
  const m = /^#t(\d+)$/.exec(location.hash);
  const show = m && trackView(+m[1]);
  $("track").classList.toggle("hidden", !show); $("library").classList.toggle("hidden", !!show);
  if (show) window.scrollTo(0, 0);
}
window.addEventListener("hashchange", route);
render(); route();
document.documentElement.dataset.ready = String(Math.round(performance.now()));
})();
</script>
</body>
</html>
"""
