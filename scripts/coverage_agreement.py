"""What a quick pass (``tagger scan --coverage F``) costs in labels and gains in speed.

    python scripts/coverage_agreement.py [--coverage 0.3 0.5] [--repeats 3] [--jobs 2]
        [--variants 4] [--work DIR] [--bench-files 20 60] [--no-bench] [--window-cost]
        [--windows 1 2 4 8]

On this machine, side by side in one run (scans interleaved, ``--repeats`` rounds,
medians reported, every value kept in ``--work/coverage.json``):

- songs: 8 songs in sections (an intro with one instrument, verses with others, a solo
  section, an outro; 3-5 minutes), each in ``--variants`` renditions (another key, other
  generated material), rendered once and cached in ``--work`` with the corpus's own
  fluidsynth renderer (training/make_examples: its phrase generators and drum grooves,
  one tempo, key and chord progression per song) and the TimGM6mb soundfont (held out
  from the bundled model's training), encoded as 44.1 kHz stereo MP3 at 160 kb/s. They
  are scanned by the real CLI in a subprocess with the bundled model, fully and with
  each ``--coverage``, and the quick passes' labels are set against the full scan's:
  share of tracks with exactly the same label set, mean Jaccard index of the two sets,
  labels lost and gained per track (and, for reference, each scan's recall and
  precision against the labels the songs really play);
- times: for the songs and for scripts/benchmark.py's libraries of 3-minute MP3s
  (``--bench-files`` files each, built once in ``--work`` by its own builder), wall and
  CPU time of the process tree (measured as scripts/benchmark.py measures them) of the
  full scan, each quick pass, and a scan of one 5-s file (the start-up every scan pays:
  torch, the model, the workers); speed ratios against the full scan, end to end and
  past that start-up (what a library large enough tends to);
- ``--window-cost``: the CPU cost of decoding windows of 1 to 8 segments covering 30 %
  of a 3-minute MP3 as a quick pass does (one open, each window sought), next to
  decoding the same seconds straight;
- ``--windows K...``: label agreement and scan time on the songs at the first
  ``--coverage`` with K segments per window (the library's ``ScanOptions.window_segments``).
  With ``--window-cost``, what tagger.coverage.WINDOW_SEGMENTS was chosen by.

Run it from anywhere: it scans with this checkout's tagger.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's tagger and training/ (the scans get it as PYTHONPATH)

from benchmark import audio_seconds, build_library, run_scan  # noqa: E402  (scripts/benchmark.py)

SONGS_VERSION = 1  # bump when the songs change, so cached renders are remade
MP3_RATE, MP3_BITRATE = 44100, 160_000
LEVEL_FLOOR_DB = -35.0  # a stem's level is its RMS over frames within this of its loudest


# --- the songs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Song:
    """A make_examples Track (its parts play throughout) and which parts play in each section."""

    track: object  # training.make_examples.Track; seconds = the sum of the sections
    sections: tuple[tuple[str, float, tuple[int, ...]], ...]  # (name, seconds, indices of the parts playing)

    @property
    def labels(self) -> set[str]:
        return {self.track.parts[i].label for _, _, parts in self.sections for i in parts}


def songs(variants: int = 4) -> list[Song]:
    """The songs, each in ``variants`` renditions (other key, other generated material)."""
    base = _songs()
    return [replace(song, track=replace(song.track, file=f"{Path(song.track.file).stem}_{v + 1}.mp3", key=(song.track.key + 5 * v) % 12))
            for v in range(variants) for song in base]


def _songs() -> list[Song]:
    from training.make_examples import Part, Track

    def song(file, bpm, window_beats, parts, sections, **kw) -> Song:
        seconds = sum(s for _, s, _ in sections)
        track = Track(file, "libmp3lame", "MP3", MP3_RATE, 2, MP3_BITRATE, seconds, bpm, window_beats, tuple(parts), **kw)
        return Song(track, tuple(sections))

    return [
        song("rock_song.mp3", 120, 4, [
            Part("drums", 0, "Standard kit", ("drums", "rock"), dyn=100),
            Part("bass", 34, "Picked Bass", ("gen", "bassline"), gain_db=-1.0, pan=-0.1, dyn=100),
            Part("electric_guitar", 29, "Overdrive Guitar", ("gen", "riff"), gain_db=1.0, pan=0.4, dyn=100),
            Part("organ", 17, "Percussive Organ", ("gen", "chords"), gain_db=-1.0, pan=-0.4, dyn=85),
            Part("saxophone", 65, "Alto Sax", ("gen", "melody"), gain_db=1.5, pan=0.1, dyn=100, vary=True),
        ], [("intro", 16, (2,)), ("verse", 48, (0, 1, 2)), ("chorus", 32, (0, 1, 2, 3)),
            ("sax solo", 32, (0, 1, 4)), ("verse", 48, (0, 1, 2)), ("chorus", 32, (0, 1, 2, 3)), ("outro", 16, (2, 3))],
            key=4, mode="minor", progression=(0, 5, 3, 4)),
        song("jazz_standard.mp3", 160, 8, [
            Part("drums", 32, "Jazz kit", ("drums", "jazz"), gain_db=-2.0, dyn=95),
            Part("bass", 32, "Acoustic Bass", ("gen", "bassline"), gain_db=-0.5, pan=0.05, dyn=100),
            Part("piano", 0, "Acoustic Grand Piano", ("gen", "chords"), pan=-0.35, dyn=75),
            Part("saxophone", 66, "Tenor Sax", ("gen", "melody"), gain_db=1.5, pan=0.3, dyn=95, vary=True),
            Part("trumpet", 56, "Trumpet", ("gen", "melody"), gain_db=1.0, pan=-0.2, dyn=95, vary=True),
        ], [("piano intro", 24, (2,)), ("head", 48, (0, 1, 2, 3)), ("trumpet solo", 60, (0, 1, 2, 4)),
            ("piano solo", 48, (0, 1, 2)), ("head", 48, (0, 1, 2, 3)), ("outro", 24, (1, 2))],
            key=5, progression=(1, 4, 0, 0)),
        song("folk_waltz.mp3", 120, 6, [
            Part("acoustic_guitar", 25, "Steel Guitar", ("gen", "strum"), dyn=85),
            Part("banjo", 105, "Banjo", ("gen", "roll"), gain_db=-1.0, pan=0.3, dyn=90),
            Part("accordion", 21, "Accordion", ("gen", "melody"), gain_db=1.0, pan=-0.3, dyn=90, vary=True),
            Part("violin", 40, "Violin", ("gen", "melody"), gain_db=1.0, pan=0.2, dyn=90, vary=True),
            Part("bass", 32, "Acoustic Bass", ("gen", "bassline"), gain_db=-1.0, dyn=95),
        ], [("guitar intro", 18, (0,)), ("verse", 54, (0, 1, 2, 4)), ("fiddle break", 36, (0, 3, 4)),
            ("verse", 54, (0, 1, 2, 4)), ("outro", 21, (0, 1))],
            key=7, progression=(0, 3, 0, 4), beats_per_chord=3, beats_per_bar=3),
        song("synth_pop.mp3", 128, 4, [
            Part("drums", 25, "TR-808 kit", ("drums", "disco"), gain_db=-1.0, dyn=105),
            Part("synthesizer", 81, "Saw Wave lead", ("gen", "arpeggio"), dyn=90),
            Part("synthesizer", 89, "Warm Pad", ("gen", "pad"), gain_db=-2.0, dyn=85),
            Part("bass", 38, "Synth Bass 1", ("gen", "bassline"), gain_db=-1.0, dyn=100),
            Part("piano", 1, "Bright Piano", ("gen", "chords"), pan=-0.2, dyn=80),
            Part("electric_guitar", 27, "Clean Guitar", ("gen", "riff"), gain_db=0.5, pan=0.3, dyn=95),
        ], [("pad intro", 15, (2,)), ("verse", 45, (0, 1, 3)), ("bridge", 30, (2, 3, 4)),
            ("chorus", 45, (0, 1, 2, 3, 5)), ("breakdown", 22.5, (0, 3)), ("chorus", 45, (0, 1, 2, 3, 5)),
            ("outro", 15, (1, 2))],
            key=9, mode="minor", progression=(5, 3, 0, 4)),
        song("chamber.mp3", 72, 3, [
            Part("piano", 0, "Acoustic Grand Piano", ("gen", "arpeggio"), pan=-0.3, dyn=75),
            Part("violin", 40, "Violin", ("gen", "melody"), gain_db=1.0, pan=0.3, dyn=90, vary=True),
            Part("cello", 42, "Cello", ("gen", "sustained"), pan=0.1, dyn=95),
            Part("flute", 73, "Flute", ("gen", "melody"), gain_db=1.0, pan=-0.1, dyn=95, vary=True),
            Part("clarinet", 71, "Clarinet", ("gen", "melody"), gain_db=1.0, pan=0.2, dyn=95, vary=True),
        ], [("piano intro", 30, (0,)), ("violin theme", 75, (0, 1, 2)), ("flute episode", 50, (0, 2, 3)),
            ("clarinet cadenza", 25, (4,)), ("violin theme", 75, (0, 1, 2)), ("coda", 45, (0, 1, 2, 3))],
            key=2, progression=(0, 5, 3, 4), beats_per_chord=3, beats_per_bar=3),
        song("brass_march.mp3", 96, 4, [
            Part("drums", 0, "Standard kit", ("drums", "rock"), gain_db=-1.0, dyn=95),
            Part("trumpet", 56, "Trumpet", ("gen", "melody"), gain_db=1.0, pan=-0.3, dyn=95, vary=True),
            Part("trombone", 57, "Trombone", ("gen", "sustained"), pan=0.3, dyn=90),
            Part("mallet_percussion", 9, "Glockenspiel", ("gen", "arpeggio"), gain_db=-1.0, pan=0.2, dyn=90),
            Part("bass", 33, "Fingered Bass", ("gen", "bassline"), gain_db=-1.0, dyn=95),
        ], [("glockenspiel intro", 20, (3,)), ("march", 60, (0, 1, 2, 4)), ("trio", 40, (1, 2, 3)),
            ("march", 60, (0, 1, 2, 4)), ("outro", 10, (0, 2))],
            key=10, progression=(0, 3, 4, 0)),
        song("organ_voluntary.mp3", 66, 3, [
            Part("organ", 19, "Church Organ", ("gen", "chords"), dyn=90),
            Part("trumpet", 56, "Trumpet", ("gen", "melody"), gain_db=1.0, pan=0.2, dyn=95, vary=True),
            Part("flute", 73, "Flute", ("gen", "melody"), gain_db=1.0, pan=-0.2, dyn=90, vary=True),
        ], [("organ", 60, (0,)), ("trumpet voluntary", 60, (0, 1)), ("flute interlude", 30, (0, 2)),
            ("trumpet voluntary", 60, (0, 1)), ("organ", 30, (0,))],
            key=0, progression=(0, 3, 4, 0), beats_per_chord=3, beats_per_bar=3),
        song("ballad.mp3", 80, 4, [
            Part("piano", 0, "Acoustic Grand Piano", ("gen", "chords"), dyn=75),
            Part("acoustic_guitar", 24, "Nylon Guitar", ("gen", "strum"), pan=0.3, dyn=85),
            Part("cello", 42, "Cello", ("gen", "melody"), gain_db=0.5, pan=-0.2, dyn=95, vary=True),
            Part("drums", 0, "Standard kit", ("drums", "halftime"), gain_db=-2.0, dyn=85),
            Part("bass", 32, "Acoustic Bass", ("gen", "bassline"), gain_db=-1.0, dyn=95),
            Part("electric_guitar", 26, "Jazz Guitar", ("gen", "melody"), gain_db=1.0, pan=0.1, dyn=95, vary=True),
        ], [("piano intro", 24, (0,)), ("verse", 48, (0, 1, 4)), ("chorus", 36, (0, 1, 3, 4)),
            ("cello verse", 48, (0, 2, 4)), ("guitar solo", 24, (1, 3, 4, 5)), ("chorus", 36, (0, 1, 3, 4)),
            ("outro", 24, (0,))],
            key=3, progression=(0, 4, 5, 3)),
    ]


def _active(song: Song, pi: int) -> list[tuple[float, float]]:
    """Time ranges (s) where part ``pi`` plays."""
    out, t = [], 0.0
    for _, seconds, parts in song.sections:
        if pi in parts:
            if out and abs(out[-1][1] - t) < 1e-9:
                out[-1] = (out[-1][0], t + seconds)
            else:
                out.append((t, t + seconds))
        t += seconds
    return out


def render_song(song: Song, si: int) -> np.ndarray:
    """(2, samples) float32 at 22 050 Hz: each part rendered where it plays, levelled, mixed."""
    from training.corpus.audio import RENDER_SAMPLES, SAMPLE_RATE, db_to_gain
    from training.corpus.effects import random_reverb
    from training.corpus.sources import DRUM_BANK, Stem, coverage_for, render_stems
    from training.make_examples import END_FADE_SECONDS, FADE_SECONDS, PEAK, SEED, SOURCE, _pan, _window_phrases, part_notes

    track = song.track
    coverage = coverage_for(SOURCE)
    notes = []
    for pi, part in enumerate(track.parts):
        ranges = _active(song, pi)
        notes.append([replace(n, end=min(n.end, e)) for n in part_notes(track, si, pi)
                      for s, e in ranges if s <= n.start < e - 0.3])
    L = track.window_seconds
    n_windows = math.ceil(track.seconds / L)
    total = round(track.seconds * SAMPLE_RATE)
    stems = np.zeros((len(track.parts), round(n_windows * L * SAMPLE_RATE) + RENDER_SAMPLES), np.float32)
    fade = np.ones(RENDER_SAMPLES, np.float32)
    nf = int(FADE_SECONDS * SAMPLE_RATE)
    fade[-nf:] = np.linspace(1.0, 0.0, nf, dtype=np.float32)
    for w in range(n_windows):
        playing = [(pi, _window_phrases(ns, w * L, L, str(p.material))) for pi, (p, ns) in enumerate(zip(track.parts, notes))]
        playing = [(pi, ph) for pi, ph in playing if ph.notes]
        if not playing:
            continue
        window = [Stem(track.parts[pi].label, DRUM_BANK if track.parts[pi].label == "drums" else 0, track.parts[pi].program, ph)
                  for pi, ph in playing]
        audio = render_stems(SOURCE, window, coverage, SEED + w)
        a = round(w * L * SAMPLE_RATE)
        for (pi, _), x in zip(playing, audio):
            stems[pi, a : a + RENDER_SAMPLES] += x * fade
    stems = stems[:, :total]
    mix = np.zeros((2, total), np.float32)
    for part, stem in zip(track.parts, stems):
        frames = stem[: len(stem) // 1024 * 1024].reshape(-1, 1024).astype(np.float64)
        energy = np.sqrt(np.mean(frames**2, axis=1))
        level = float(np.sqrt(np.mean(energy[energy >= energy.max() * db_to_gain(LEVEL_FLOOR_DB)] ** 2)))
        gains = _pan(part.pan)
        for c in range(2):
            mix[c] += stem * np.float32(db_to_gain(part.gain_db) / level * gains[c])
    seed = np.random.default_rng([SEED, si, 99]).integers(2**31)
    mix = np.stack([random_reverb(ch, np.random.default_rng(seed))[0] for ch in mix])
    n_end = int(END_FADE_SECONDS * SAMPLE_RATE)
    mix[:, -n_end:] *= np.linspace(1.0, 0.0, n_end, dtype=np.float32)
    return (mix * (PEAK / float(np.abs(mix).max()))).astype(np.float32)


def build_songs(work: Path, variants: int) -> tuple[Path, list[Song]]:
    """The rendered songs' folder (made once) and the songs."""
    from training.make_examples import encode

    folder = work / f"songs-v{SONGS_VERSION}-{variants}"
    folder.mkdir(parents=True, exist_ok=True)
    made = songs(variants)
    for si, song in enumerate(made):
        path = folder / song.track.file
        if not path.is_file():
            t0 = time.perf_counter()
            encode(path, render_song(song, si), song.track)
            print(f"rendered {path.name}: {song.track.seconds:.0f} s in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return folder, made


# --- scanning ----------------------------------------------------------------------------


def labels_of(csv_path: Path) -> tuple[dict[str, set[str]], int]:
    """A report's label set per file (by name), and the segments it scored."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {Path(r["path"]).name: set(filter(None, r["instruments"].split(";"))) for r in rows}, sum(int(r["segments"]) for r in rows)


def startup_library(work: Path) -> Path:
    """One 5-s MP3: scanning it costs what every scan costs before its files (torch, model, workers)."""
    from benchmark import LIB_BITRATE, SRC_RATE, encode_mp3, synth_track

    folder = work / "startup"
    path = folder / "five_seconds.mp3"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        encode_mp3(path, synth_track(1, 5.0), SRC_RATE, LIB_BITRATE)
    return folder


def timed_scans(lib: Path, model: Path, jobs: int, coverages: list[float], repeats: int, work: Path, tag: str) -> dict:
    """Full and quick scans of ``lib`` and a start-up scan (one 5-s file), interleaved (order
    rotated each round): per coverage, medians, speed ratios (also past the start-up), labels."""
    audio_s = audio_seconds(sorted(p for p in lib.iterdir() if p.suffix == ".mp3"))
    env = {"PYTHONPATH": str(ROOT)}
    startup = startup_library(work)
    runs: dict[object, list[dict]] = {c: [] for c in [1.0, *coverages, "startup"]}
    labels: dict[float, dict[str, set[str]]] = {}
    segments: dict[float, int] = {}
    order = list(runs)
    for r in range(repeats):
        for c in order[r % len(order):] + order[: r % len(order)]:
            if c == "startup":
                run = run_scan(startup, model, jobs, 5.0, work, [], env, tag=f"{tag}-startup")
            else:
                run = run_scan(lib, model, jobs, audio_s, work, ["--coverage", str(c)], env, tag=f"{tag}-{c:g}")
                labels[c], segments[c] = labels_of(work / f"{tag}-{c:g}.csv")
            runs[c].append({k: run[k] for k in ("wall_s", "cpu_s", "command")})
            print(f"  {tag} {c if c == 'startup' else f'coverage {c:g}'}: {run['wall_s']:.2f} s wall, {run['cpu_s']:.2f} s CPU",
                  file=sys.stderr)

    def median(c: object, key: str) -> float:
        return statistics.median(x[key] for x in runs[c])

    start_wall, start_cpu = median("startup", "wall_s"), median("startup", "cpu_s")
    out = {"audio_s": audio_s, "files": len(labels[1.0]), "startup": {"wall_s": start_wall, "cpu_s": start_cpu,
                                                                         "runs": runs["startup"]}, "by_coverage": {}}
    for c in [1.0, *coverages]:
        wall, cpu = median(c, "wall_s"), median(c, "cpu_s")
        out["by_coverage"][str(c)] = {
            "wall_s": wall, "cpu_s": cpu, "xrt": audio_s / wall,
            "speed_ratio": median(1.0, "wall_s") / wall, "cpu_ratio": median(1.0, "cpu_s") / cpu,
            # the files' own share: what a scan costs past its start-up (the ratio a huge library tends to)
            "speed_ratio_past_startup": (median(1.0, "wall_s") - start_wall) / (wall - start_wall),
            "cpu_ratio_past_startup": (median(1.0, "cpu_s") - start_cpu) / (cpu - start_cpu),
            "runs": runs[c], "command": runs[c][0]["command"],
            "segments": segments[c], "share": segments[c] / segments[1.0],  # of the full scan's segments
            "labels": {k: sorted(v) for k, v in labels[c].items()},
        }
    return out


def agreement(full: dict[str, set[str]], quick: dict[str, set[str]]) -> dict:
    """How a quick pass's label sets agree with the full scan's, track by track."""
    names = sorted(full)
    jac = [len(full[n] & quick[n]) / len(full[n] | quick[n]) if full[n] | quick[n] else 1.0 for n in names]
    lost = [len(full[n] - quick[n]) for n in names]
    gained = [len(quick[n] - full[n]) for n in names]
    return {
        "exact_share": sum(full[n] == quick[n] for n in names) / len(names),
        "jaccard_mean": sum(jac) / len(names),
        "lost_per_track": sum(lost) / len(names), "gained_per_track": sum(gained) / len(names),
        "tracks": {n: {"full": sorted(full[n]), "quick": sorted(quick[n]), "lost": sorted(full[n] - quick[n]),
                       "gained": sorted(quick[n] - full[n])} for n in names},
    }


def versus_truth(found: dict[str, set[str]], truth: dict[str, set[str]]) -> dict:
    tp = sum(len(found[n] & truth[n]) for n in truth)
    return {"recall": tp / max(1, sum(len(t) for t in truth.values())),
            "precision": tp / max(1, sum(len(found[n]) for n in truth))}


# --- window cost and window size ----------------------------------------------------------


def window_cost(paths: list[Path], repeats: int) -> list[dict]:
    """CPU ms per file to decode windows of k segments covering 30 % of it, as a quick pass's
    worker does (tagger.decode.OpenFile: one open, each window sought), next to decoding
    the same seconds straight; the difference per window is what a window costs."""
    from tagger.coverage import plan_windows
    from tagger.decode import OpenFile, decode

    sr, seg = 22050, 66150
    sizes = (1, 2, 4, 8)
    cpu: dict[object, list[float]] = {}
    plans = {}
    for k in sizes:
        plans[k] = [(p, plan_windows(round(audio_seconds([p]) * sr), 0.3, seg, seg, k)) for p in paths]
    for _ in range(repeats):
        for k in sizes:
            t0 = time.process_time()
            for p, w in plans[k]:
                with OpenFile(p, sr) as opened:
                    for start in w.starts:
                        opened.decode(p, sr, start / sr, w.length / sr)
            cpu.setdefault(k, []).append((time.process_time() - t0) / len(paths))
        t0 = time.process_time()
        for p in paths:
            decode(p, sr, 0.0, 60.0)
        cpu.setdefault("straight", []).append((time.process_time() - t0) / len(paths) / 60.0)
    per_s = min(cpu["straight"])  # CPU s per second of audio decoded straight
    rows = []
    for k in sizes:
        n = statistics.mean(len(w.starts) for _, w in plans[k])
        audio = statistics.mean(len(w.starts) * w.length / sr for _, w in plans[k])
        overhead = (min(cpu[k]) - per_s * audio) / n
        rows.append({"segments": k, "window_s": k * 3.0, "windows": n, "cpu_ms_per_file": min(cpu[k]) * 1000,
                     "straight_ms_per_file": per_s * audio * 1000, "overhead_ms_per_window": overhead * 1000,
                     "overhead_share": overhead / (per_s * k * 3.0)})
    return rows


def window_sweep(lib: Path, model: Path, jobs: int, coverage: float, sizes: list[int], repeats: int,
                 full: dict[str, set[str]]) -> list[dict]:
    """The library API on the songs with ``window_segments`` = each of ``sizes``: agreement, time."""
    from tagger.scan import Scanner, ScanOptions, ScorerInBackground

    scorer = ScorerInBackground(model, "cpu")
    scorer.result()
    rows = []
    for k in sizes:
        walls, cpus = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), _cpu_with_children()
            results = list(Scanner(scorer, ScanOptions(jobs=jobs, coverage=coverage, window_segments=k)).scan([lib]))
            walls.append(time.perf_counter() - t0)
            cpus.append(_cpu_with_children() - c0)
        quick = {r.path.name: {label for label, _ in r.instruments} for r in results}
        agree = agreement(full, quick)
        rows.append({"window_segments": k, "wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus),
                     "share": statistics.mean(r.coverage for r in results), "segments": sum(r.segments for r in results),
                     **{key: agree[key] for key in ("exact_share", "jaccard_mean", "lost_per_track", "gained_per_track")}})
        print(f"  window {k} segments: {rows[-1]['wall_s']:.2f} s", file=sys.stderr)
    return rows


def _cpu_with_children() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# --- report ------------------------------------------------------------------------------


def print_report(result: dict, coverages: list[float]) -> None:
    songs_ = result["songs"]
    print(f"\nlabels of the quick passes against the full scan, {songs_['files']} multi-section songs "
          f"({songs_['audio_s'] / 60:.0f} min); recall and precision against what they really play:")
    print(f"{'coverage':>8} {'share':>5} {'same labels':>11} {'Jaccard':>7} {'lost/track':>10} {'gained/track':>12} "
          f"{'recall':>6} {'precision':>9}")
    for c in [1.0, *coverages]:
        a = result["agreement"].get(str(c), {"exact_share": 1.0, "jaccard_mean": 1.0, "lost_per_track": 0.0, "gained_per_track": 0.0})
        t = result["truth"][str(c)]
        print(f"{c:>8g} {songs_['by_coverage'][str(c)]['share']:>5.2f} {a['exact_share']:>11.0%} {a['jaccard_mean']:>7.3f} "
              f"{a['lost_per_track']:>10.2f} {a['gained_per_track']:>12.2f} {t['recall']:>6.2f} {t['precision']:>9.2f}")
    for c in coverages:
        for name, d in result["agreement"][str(c)]["tracks"].items():
            if d["lost"] or d["gained"]:
                print(f"  coverage {c:g}, {name}: lost {','.join(d['lost']) or '-'}; gained {','.join(d['gained']) or '-'}")
    print(f"\ntimes: tagger scan end to end, medians of {result['repeats']} interleaved runs, --jobs {result['jobs']}")
    for b in [songs_, *result.get("bench", [])]:
        name = f"songs ({b['files']} files)" if b is songs_ else f"bench: {b['files']} synthetic 3-minute MP3s (scripts/benchmark.py)"
        print(f"\n{name}, {b['audio_s'] / 60:.0f} min; start-up (a scan of one 5-s file): "
              f"{b['startup']['wall_s']:.2f} s wall, {b['startup']['cpu_s']:.2f} s CPU")
        print(f"{'coverage':>8} {'wall s':>7} {'CPU s':>7} {'x real time':>11} {'speed vs full':>13} {'CPU vs full':>11} "
              f"{'past start-up: speed':>20} {'CPU':>6}")
        for c in [1.0, *coverages]:
            row = b["by_coverage"][str(c)]
            print(f"{c:>8g} {row['wall_s']:>7.2f} {row['cpu_s']:>7.2f} {row['xrt']:>10.0f}x {row['speed_ratio']:>12.2f}x "
                  f"{row['cpu_ratio']:>10.2f}x {row['speed_ratio_past_startup']:>19.2f}x {row['cpu_ratio_past_startup']:>5.2f}x")
    if "window_cost" in result:
        print("\nwindow cost (CPU ms per 3-minute MP3 to decode windows covering 30 %, one open, each window sought):")
        for r in result["window_cost"]:
            print(f"  {r['segments']} segments ({r['window_s']:>2.0f} s) x {r['windows']:4.1f}: {r['cpu_ms_per_file']:5.1f} ms "
                  f"(straight: {r['straight_ms_per_file']:5.1f} ms); {r['overhead_ms_per_window']:4.2f} ms more per window "
                  f"= {r['overhead_share']:.0%} of decoding the window")
    if "windows" in result:
        print(f"\nwindow size at coverage {coverages[0]:g} (library API, songs):")
        for r in result["windows"]:
            print(f"  {r['window_segments']} segments: share {r['share']:.2f}, {r['segments']} segments, "
                  f"{r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} s CPU, same labels {r['exact_share']:.0%}, "
                  f"Jaccard {r['jaccard_mean']:.3f}, lost {r['lost_per_track']:.2f}, gained {r['gained_per_track']:.2f} per track")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coverage", type=float, nargs="+", default=[0.3, 0.5])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", type=int, default=4, help="renditions of each of the 8 songs")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tagger-coverage")
    ap.add_argument("--bench-files", type=int, nargs="*", default=[20, 60], help="library sizes (3-minute files)")
    ap.add_argument("--no-bench", action="store_true", help="skip the benchmark library")
    ap.add_argument("--window-cost", action="store_true")
    ap.add_argument("--windows", type=int, nargs="*", default=[], help="segments per window to compare (library API)")
    args = ap.parse_args(argv)

    import tagger
    from tagger.weights import bundled_model_path

    if Path(tagger.__file__).resolve().parent != ROOT / "tagger":
        print(f"error: imported tagger from {tagger.__file__}, not from {ROOT}", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    model = bundled_model_path()
    result: dict = {"repeats": args.repeats, "jobs": args.jobs, "coverages": args.coverage, "model": model.name,
                    "command": " ".join([Path(sys.executable).name, *sys.argv])}
    lib, made = build_songs(args.work, args.variants)
    truth = {s.track.file: s.labels for s in made}
    result["songs"] = timed_scans(lib, model, args.jobs, args.coverage, args.repeats, args.work, "songs")
    found = {float(c): {k: set(v) for k, v in row["labels"].items()} for c, row in result["songs"]["by_coverage"].items()}
    result["agreement"] = {str(c): agreement(found[1.0], found[c]) for c in args.coverage}
    result["truth"] = {str(c): versus_truth(found[c], truth) for c in [1.0, *args.coverage]}
    bench_lib = None
    if not args.no_bench:
        result["bench"] = []
        for files in args.bench_files:
            bench_lib, _ = build_library(args.work, files, 3.0, args.jobs)
            result["bench"].append(timed_scans(bench_lib, model, args.jobs, args.coverage, args.repeats, args.work, f"bench{files}"))
    if args.window_cost:
        files = sorted((bench_lib or lib).glob("*.mp3"))[:8]
        result["window_cost"] = window_cost(files, max(args.repeats, 5))
    if args.windows:
        result["windows"] = window_sweep(lib, model, args.jobs, args.coverage[0], args.windows, args.repeats, found[1.0])
    (args.work / "coverage.json").write_text(json.dumps(result, indent=1))
    print_report(result, args.coverage)
    print(f"\n(all values in {args.work / 'coverage.json'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
