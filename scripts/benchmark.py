"""Throughput and memory of ``tagger scan`` on this machine, next to what bounds it.

    python scripts/benchmark.py [--model PATH | --random-model] [--files 20[,60...]]
        [--minutes-per-file 3] [--jobs N] [--device auto|cpu|cuda] [--coverage F]
        [--work DIR] [--repeats 3] [--long-file]

In one run, side by side and repeated (medians are reported, every value is kept in
the JSON), on each library of ``--files`` synthetic MP3s (44.1 kHz stereo, 160 kb/s,
built once and cached in ``--work``; ``--files 20,60`` measures a 1-hour and a 3-hour
library of 3-minute files in the same rounds):

- decode-only: ``tagger.decode.decode`` of every file to 22 050 Hz mono by ``--jobs``
  joblib processes, returning only the sample count (the ceiling for the scan); once
  with a warm pool in this process (the target's reference), once "cold" as its own
  program timed from spawn to exit, exactly as the scan is timed;
- naive: the published-notebook way, in one process: ``librosa.load``, then per 3 s
  segment ``librosa.feature.melspectrogram`` + log, one segment per model call, on
  ``--naive-files`` files of the first library, with ``--naive-threads`` torch threads
  (default 1: with torch's default of one thread per core, batch-1 calls on a busy
  machine are ~100x slower, which would make the baseline meaningless); always on the CPU;
- scan: the real CLI in a subprocess (``--device`` passed on), wall time from spawn to
  exit (startup, model load, worker start-up, CSV written included), with the peak RSS
  of its process tree (the tagger process and its decoding workers, sampled from /proc
  every 50 ms); ru_maxrss from wait4 is kept in the JSON only: Linux carries the spawning
  process's own peak (the benchmark's, with the 2-hour file in memory) into it at exec;
- ``--coverage F``: the same scan with ``--coverage F`` beside it, and its speed-up;
- model-only: segments/s of the model as the scan runs it, on random 3 s segments, batch
  256: on the CPU the network alone (``Scorer.score_features``, 2 and 1 torch threads;
  the decoding workers run the NumPy frontend, timed beside it on one thread). With CUDA (``--device cuda``, or
  ``auto`` on a machine that has it) also on the GPU, with its peak GPU memory
  (``torch.cuda.max_memory_allocated``: measured in this round only, the CLI does not
  report the scan's) and the decode-bound ratio: the GPU's segments/s over the segments/s
  that decode-only delivers (above 1, decoding bounds the scan);
- ``--long-file``: a 2-hour MP3 (44.1 kHz mono, 64 kb/s) scanned alone.

Rates are "x real time": seconds of audio handled per second of wall time. Because
the machine may be shared, CPU seconds are measured too (the process tree's user +
system time): "audio s per CPU s" does not depend on what else is running. Figures
are printed as a table with the targets (issue 10: scan / decode-only >= 0.6 on an
hour of audio, >= 0.7 on three; the scan's CPU seconds <= 1.5 x decode-only's; peak
memory <= 1 GB; ``--coverage 0.3`` >= 2x faster) and written to
``--work/benchmark.json``; the exit status is 1 when a target is missed, 2 when the
run cannot start (``--device cuda`` without CUDA, ``--coverage`` unknown to the CLI).
"""
from __future__ import annotations

import argparse
import json
import operator
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LIB_VERSION = 2  # bump when the synthetic content changes, so cached libraries are rebuilt
SRC_RATE = 44100  # Hz of the synthetic library files
LIB_BITRATE = 160_000  # b/s of the library MP3s
LONG_BITRATE = 64_000  # b/s of the 2-hour file
LONG_SECONDS = 2 * 3600.0
SAMPLE_EVERY_S = 0.05  # /proc sampling period for the scan's memory
RESCAN_EVERY_S = 0.25  # how often the whole /proc is walked for new descendants
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")
MB = 1 << 20

TARGETS = {  # figure -> (comparison, value, wording); the scan's and coverage's are per library
    "scan_xrt": (">=", 300.0, "scan >= 300x real time"),
    "scan_cpu_over_decode": ("<=", 1.5, "scan CPU s <= 1.5 x decode-only's"),
    "scan_peak_rss_mb": ("<=", 1024.0, "peak memory <= 1 GB"),
    "coverage_speedup": (">=", 2.0, "scan --coverage >= 2x the full scan's speed"),
    "long_peak_rss_mb": ("<=", 1024.0, "peak memory <= 1 GB (2-hour file)"),
    "model_seg_s_t2": (">=", 300.0, "model >= 300 segments/s"),
}
# scan / decode-only (warm) by the library's nominal length: the first that applies, none under an hour
SCAN_OVER_DECODE = ((180.0, 0.7), (60.0, 0.6))  # (minutes of audio at least, target)
LIBRARY_FIGURES = ("scan_xrt", "scan_over_decode", "scan_cpu_over_decode", "scan_peak_rss_mb", "coverage_speedup")
COMPARE = {">=": operator.ge, "<=": operator.le}


# --- the synthetic library -------------------------------------------------------------


def _midi_hz(note: np.ndarray) -> np.ndarray:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def _voice(rng: np.random.Generator, n: int, sr: int, beat: int, low: int, high: int,
           beats_per_note: tuple[int, ...], partials: int, decay_s: float) -> np.ndarray:
    """A monophonic line of harmonic notes: (n,) float32, notes change on beats.

    Wavetable synthesis (one gather per sample instead of a sine per partial) keeps a
    3-minute track well under a second to make.
    """
    scale = np.array([0, 2, 4, 7, 9])  # major pentatonic
    starts, notes = [0], []
    while starts[-1] < n:
        notes.append(low + 12 * rng.integers(0, (high - low) // 12 + 1) + rng.choice(scale))
        starts.append(starts[-1] + beat * int(rng.choice(beats_per_note)))
    lengths = np.diff(np.minimum(np.array(starts), n))
    table_n = 4096
    theta = 2 * np.pi * np.arange(table_n) / table_n
    table = sum(np.sin(k * theta) / k**1.3 for k in range(1, partials + 1)).astype(np.float32)
    step = np.repeat((_midi_hz(np.array(notes, dtype=np.float64)) * table_n / sr), lengths)
    index = (np.cumsum(step) % table_n).astype(np.int32)  # (n,) position in the table
    t = np.arange(int(lengths.max())) / sr
    env = ((1.0 - np.exp(-t / 0.01)) * np.exp(-t / decay_s)).astype(np.float32)  # attack, decay
    t_in = np.arange(n) - np.repeat(np.array(starts[:-1]), lengths)  # samples since the note began
    return table[index] * env[t_in]


def _drums(rng: np.random.Generator, n: int, sr: int, beat: int) -> np.ndarray:
    """Kick on beats 1 and 3, snare on 2 and 4, hi-hat on every half beat: (n,) float32."""
    t = np.arange(int(0.4 * sr)) / sr
    kick = np.sin(2 * np.pi * np.cumsum(50 + 90 * np.exp(-t / 0.03)) / sr) * np.exp(-t / 0.12)
    snare = rng.standard_normal(len(t)) * np.exp(-t / 0.07) * 0.6
    hat = np.diff(rng.standard_normal(len(t) + 1)) * np.exp(-t / 0.02) * 0.15
    out = np.zeros(n + len(t), dtype=np.float32)
    for i, pos in enumerate(range(0, n, beat // 2)):
        out[pos : pos + len(t)] += hat
        if i % 2 == 0:
            out[pos : pos + len(t)] += kick if (i // 2) % 2 == 0 else snare
    return out[:n]


def synth_track(seed: int, seconds: float, sr: int = SRC_RATE) -> np.ndarray:
    """Musical-ish stereo audio: melody, bass, drums, a noise burst now and then: (2, n)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    beat = int(sr * 60.0 / rng.uniform(80, 150))
    melody = _voice(rng, n, sr, beat, 60, 84, (1, 1, 2), 6, 0.6)
    bass = _voice(rng, n, sr, beat, 36, 48, (2, 4), 4, 1.5)
    drums = _drums(rng, n, sr, beat)
    left = 0.55 * melody + 0.5 * bass + 0.35 * drums
    right = 0.35 * melody + 0.5 * bass + 0.45 * drums
    stereo = np.stack([left, right])
    stereo *= 0.8 / max(float(np.abs(stereo).max()), 1e-9)
    return stereo.astype(np.float32)


def encode_mp3(path: Path, audio: np.ndarray, sr: int, bit_rate: int) -> None:
    """(channels, n) float32 -> an MP3 written with PyAV's libmp3lame (fastest setting)."""
    import av

    layout = "stereo" if audio.shape[0] == 2 else "mono"
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=sr, layout=layout)
        stream.bit_rate = bit_rate
        stream.codec_context.options = {"compression_level": "9"}  # lame -q 9: ~25% faster
        step = 1152 * 256
        for i in range(0, audio.shape[1], step):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, i : i + step]), format="fltp", layout=layout)
            frame.rate = sr
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    os.replace(tmp, path)


def _build_one(path: str, seed: int, seconds: float) -> None:
    encode_mp3(Path(path), synth_track(seed, seconds), SRC_RATE, LIB_BITRATE)


def build_library(work: Path, files: int, minutes: float, jobs: int) -> tuple[Path, float]:
    """The cached library folder and its build time (0 when reused)."""
    from joblib import Parallel, delayed

    lib = work / f"lib-v{LIB_VERSION}-{files}x{minutes:g}min"
    marker = lib / "complete.json"
    if marker.is_file():
        return lib, 0.0
    lib.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    todo = [(str(lib / f"track_{i:03d}.mp3"), i, minutes * 60) for i in range(files)]
    Parallel(n_jobs=jobs)(delayed(_build_one)(*t) for t in todo if not Path(t[0]).is_file())
    marker.write_text(json.dumps({"files": files, "minutes": minutes, "version": LIB_VERSION}))
    return lib, time.perf_counter() - t0


@dataclass
class Library:
    """One library of the run: ``files`` synthetic MP3s of ``minutes_per_file`` minutes."""

    files: int
    minutes_per_file: float
    folder: Path
    paths: list[Path]
    audio_s: float

    @property
    def name(self) -> str:
        return f"{self.files}x{self.minutes_per_file:g}min"

    @property
    def minutes(self) -> float:
        """Nominal minutes of audio: what picks the scan / decode-only target."""
        return self.files * self.minutes_per_file


def prepare_library(work: Path, files: int, minutes: float, jobs: int) -> Library:
    folder, build_s = build_library(work, files, minutes, jobs)
    paths = sorted(folder.glob("*.mp3"))
    lib = Library(files, minutes, folder, paths, audio_seconds(paths))
    print(f"library {folder}: {len(paths)} files, {lib.audio_s / 60:.1f} min"
          + (f" (built in {build_s:.1f} s)" if build_s else " (cached)"), flush=True)
    return lib


def build_long_file(work: Path) -> tuple[Path, float]:
    """A 2-hour MP3 (44.1 kHz mono, 64 kb/s): a few synthetic minutes, varied per repeat."""
    folder = work / f"long-v{LIB_VERSION}"
    path = folder / "two_hours.mp3"
    if path.is_file():
        return folder, 0.0
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    base = synth_track(12345, 240.0).mean(axis=0)
    reps = int(np.ceil(LONG_SECONDS / 240.0))
    gains = np.linspace(0.5, 1.0, reps, dtype=np.float32)
    audio = np.concatenate([base * g for g in gains])[: int(LONG_SECONDS * SRC_RATE)]
    encode_mp3(path, audio[None, :], SRC_RATE, LONG_BITRATE)
    return folder, time.perf_counter() - t0


def random_model(work: Path) -> Path:
    """Random weights, the architecture of the bundled model: resnet width 32, 17 labels."""
    import torch

    from tagger.frontend import FrontendConfig
    from tagger.labels import BUNDLED_LABELS
    from tagger.models import ModelConfig, Tagger
    from tagger.weights import Checkpoint, save_checkpoint

    folder = work / "random-model"
    found = sorted(folder.glob("*.safetensors"))
    if found:
        return found[0]
    torch.manual_seed(0)
    frontend, config = FrontendConfig(), ModelConfig("resnet", BUNDLED_LABELS, width=32)
    model = Tagger(frontend, config).eval()
    ckpt = Checkpoint(frontend, config, model.classifier.state_dict(), {label: 0.5 for label in BUNDLED_LABELS},
                      name="random-resnet32")
    return save_checkpoint(ckpt, folder)


def audio_seconds(paths: list[Path]) -> float:
    from tagger.decode import probe

    return sum(probe(p).duration_s or 0.0 for p in paths)


# --- decode-only ------------------------------------------------------------------------


def _decode_len(path: str, sample_rate: int) -> int:
    from tagger.decode import decode

    return len(decode(Path(path), sample_rate))


def tree_cpu_s(root: int | None = None) -> float:
    """User + system CPU seconds so far of ``root`` (default: this process) and its live descendants."""
    return sum(_cpu_ticks(pid) for pid in _descendants(root or os.getpid())) / TICK


def run_decode_only(paths: list[Path], jobs: int, sample_rate: int = 22050) -> dict:
    """Decode every file by ``jobs`` processes; only the sample count comes back."""
    from joblib import Parallel, delayed

    cpu0, t0 = tree_cpu_s(), time.perf_counter()
    n = Parallel(n_jobs=jobs)(delayed(_decode_len)(str(p), sample_rate) for p in paths)
    wall, cpu = time.perf_counter() - t0, tree_cpu_s() - cpu0
    audio = sum(n) / sample_rate
    return {"wall_s": wall, "audio_s": audio, "xrt": audio / wall, "cpu_s": cpu, "audio_per_cpu_s": audio / max(cpu, 1e-9)}


def run_decode_cold(lib: Path, jobs: int, audio_s: float) -> dict:
    """Decode-only as its own program, timed like the scan: from spawn to exit (interpreter,
    imports and the worker processes' start-up included)."""
    run = run_tree([sys.executable, str(Path(__file__).resolve()), "--decode-only", str(lib), "--jobs", str(jobs)])
    if run.returncode != 0:
        raise RuntimeError(f"decode-only child failed: {run.stderr}")
    return {"wall_s": run.wall_s, "audio_s": audio_s, "xrt": audio_s / run.wall_s, "cpu_s": run.cpu_s}


# --- naive (notebook-style) pipeline ---------------------------------------------------


def run_naive(paths: list[Path], model_path: Path, threads: int | None = None) -> dict:
    """librosa.load -> per-segment librosa melspectrogram + log -> the classifier, batch 1."""
    import librosa
    import torch

    from tagger.weights import load_checkpoint

    ckpt = load_checkpoint(model_path)
    fe = ckpt.frontend
    classifier = ckpt.build("cpu").classifier
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    seg = fe.segment_samples
    total, segments = 0.0, 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        for path in paths:
            y, sr = librosa.load(path, sr=fe.sample_rate, mono=True)
            total += len(y) / sr
            for start in range(0, len(y) - seg + 1, seg):
                mel = librosa.feature.melspectrogram(
                    y=y[start : start + seg], sr=sr, n_fft=fe.n_fft, hop_length=fe.hop_length,
                    n_mels=fe.n_mels, fmin=fe.fmin, fmax=fe.fmax,
                )
                logmel = np.log(mel + fe.log_offset)
                logmel -= logmel.mean()
                with torch.inference_mode():
                    torch.sigmoid(classifier(torch.from_numpy(logmel[None, None].astype(np.float32))))
                segments += 1
    finally:
        torch.set_num_threads(before)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"wall_s": wall, "audio_s": total, "segments": segments, "xrt": total / wall, "cpu_s": cpu,
            "audio_per_cpu_s": total / cpu, "threads": threads or before}


# --- the real CLI, with its memory ------------------------------------------------------


def _ppid_map() -> dict[int, int]:
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        out[int(name)] = int(stat[stat.rfind(b")") + 2 :].split()[1])  # fields after "(comm)"
    return out


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in _ppid_map().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` in clock ticks; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


@dataclass
class TreeRun:
    wall_s: float
    returncode: int
    peak_rss_mb: float  # max over samples of the summed RSS of the process tree
    ru_maxrss_mb: float  # from wait4: the largest single process of the tree
    cpu_s: float  # user + system CPU seconds of the whole tree (see run_tree)
    processes: int  # distinct processes seen in the tree
    stderr: str = ""
    samples: int = 0
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (s, MB) every ~0.5 s


def run_tree(cmd: list[str], env: dict | None = None) -> TreeRun:
    """Run ``cmd``; sample its process tree's RSS until it exits."""
    err = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
    tree, seen = {proc.pid}, {proc.pid}
    peak, samples, last_rescan, last_mark, timeline = 0, 0, 0.0, -1.0, []
    ticks: dict[int, int] = {}  # pid -> last CPU ticks seen (workers may exit unreaped by the tree)
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        now = time.perf_counter()
        if now - last_rescan >= RESCAN_EVERY_S:
            tree = _descendants(proc.pid)
            seen |= tree
            last_rescan = now
        rss = sum(_rss_bytes(p) for p in tree)
        for p in tree:
            ticks[p] = max(ticks.get(p, 0), _cpu_ticks(p))
        peak = max(peak, rss)
        samples += 1
        if now - last_mark >= 0.5:
            timeline.append((round(now - t0, 2), round(rss / MB, 1)))
            last_mark = now
        time.sleep(SAMPLE_EVERY_S)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err.seek(0)
    # wait4 counts the process and the children it reaped; the samples count every process
    # seen, up to its last sample. Whichever is larger is the better estimate of the tree.
    cpu = max(usage.ru_utime + usage.ru_stime, sum(ticks.values()) / TICK)
    return TreeRun(wall, proc.returncode, peak / MB, usage.ru_maxrss * 1024 / MB, cpu, len(seen),
                   err.read().decode(errors="replace")[-2000:], samples, timeline)


def scan_command(lib: Path, csv: Path, model: Path, jobs: int, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "tagger", "scan", str(lib), "--csv", str(csv), "--no-resume", "--quiet",
            "--model", str(model), "--jobs", str(jobs), *extra]


def run_scan(lib: Path, model: Path, jobs: int, audio_s: float, work: Path, extra: list[str] | None = None,
             env_extra: dict | None = None, tag: str = "scan") -> dict:
    """``tagger scan`` end to end in a subprocess; checks the CSV has one ok row per file."""
    import csv as csvmod

    out = work / f"{tag}.csv"
    out.unlink(missing_ok=True)
    cmd = scan_command(lib, out, model, jobs, extra or [])
    env = dict(os.environ, **(env_extra or {}))
    run = run_tree(cmd, env)
    rows = list(csvmod.DictReader(out.open(encoding="utf-8"))) if out.is_file() else []
    ok = sum(r["status"] == "ok" for r in rows)
    if run.returncode != 0 or not rows or ok != len(rows):
        raise RuntimeError(f"scan failed (exit {run.returncode}, {ok}/{len(rows)} ok): {shlex.join(cmd)}\n{run.stderr}")
    segments = sum(int(r["segments"]) for r in rows)
    return {
        "wall_s": run.wall_s, "audio_s": audio_s, "xrt": audio_s / run.wall_s, "rows": len(rows),
        "segments": segments, "seg_s": segments / run.wall_s,
        "peak_rss_mb": run.peak_rss_mb, "ru_maxrss_mb": run.ru_maxrss_mb, "processes": run.processes,
        "cpu_s": run.cpu_s, "audio_per_cpu_s": audio_s / run.cpu_s,
        "command": " ".join(f"{k}={v}" for k, v in (env_extra or {}).items()) + (" " if env_extra else "") + shlex.join(cmd),
        "timeline": run.timeline,
    }


# --- model only -------------------------------------------------------------------------


def run_model_only(model_path: Path, threads: int, device: str = "cpu", batch_size: int = 256, calls: int = 3) -> dict:
    """segments/s of the model as the scan runs it, on random 3 s segments, one batch per call.

    On the CPU the driver runs only the network (``Scorer.score_features``) and the decoding
    workers the NumPy frontend (``tagger.frontend.logmel``, one thread each): both are
    timed, the frontend on one thread whatever ``threads``. On CUDA the waveforms go to the
    GPU (``Scorer.score``: torch frontend + network), with the frontend's share and the
    peak GPU memory of the calls (MB).
    """
    import torch

    from tagger.frontend import logmel
    from tagger.inference import Scorer
    from tagger.weights import load_checkpoint

    cuda = device == "cuda"

    def timed(fn) -> float:  # seconds, with the GPU's queue drained before and after
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        scorer = Scorer(load_checkpoint(model_path), device, batch_size)
        frontend = scorer.checkpoint.frontend
        rng = np.random.default_rng(0)
        segments = (0.1 * rng.standard_normal((batch_size, frontend.segment_samples))).astype(np.float32)
        if cuda:  # the waveforms go to the GPU, the frontend runs there
            on_device = torch.from_numpy(segments).to(scorer.device)
            run = lambda: scorer.score(segments)  # noqa: E731
        else:  # the workers send features
            features = logmel(segments, frontend)
            run = lambda: scorer.score_features(features)  # noqa: E731
        run()  # warm-up
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        walls, front = [], []
        for _ in range(calls):
            walls.append(timed(run))
            if cuda:
                with torch.inference_mode():
                    front.append(timed(lambda: scorer.model.frontend(on_device)))
            else:
                front.append(timed(lambda: logmel(segments, frontend)))  # the workers' share, one thread
    finally:
        torch.set_num_threads(before)
    wall, fwall = statistics.median(walls), statistics.median(front)
    out = {"device": device, "threads": threads, "batch_size": batch_size, "seg_s": batch_size / wall,
           "frontend_seg_s": batch_size / fwall}
    if cuda:
        out["frontend_share"] = fwall / wall
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / MB
    return out


# --- figures and targets ----------------------------------------------------------------


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def ratio(runs: list[dict], others: list[dict], key: str) -> float:
    """Median over rounds of ``run[key] / other[key]``: side by side, under the same load."""
    return statistics.median(r[key] / o[key] for r, o in zip(runs, others))


def library_figures(lib_runs: dict[str, list[dict]], naive: list[dict]) -> dict:
    scan, decode, cold, coverage = lib_runs["scan"], lib_runs["decode"], lib_runs["decode_cold"], lib_runs["coverage"]
    fig = {f"decode_{k}": median_of(decode, k) for k in ("xrt", "audio_per_cpu_s", "cpu_s")}
    fig["decode_cold_xrt"] = median_of(cold, "xrt")
    fig |= {f"scan_{k}": median_of(scan, k)
            for k in ("xrt", "wall_s", "seg_s", "peak_rss_mb", "ru_maxrss_mb", "cpu_s", "audio_per_cpu_s")}
    fig["scan_over_decode_cpu"] = fig["scan_audio_per_cpu_s"] / fig["decode_audio_per_cpu_s"]
    fig["scan_over_decode"] = ratio(scan, decode, "xrt")
    fig["scan_over_decode_cold"] = ratio(scan, cold, "xrt")
    fig["scan_over_naive"] = ratio(scan, naive, "xrt")
    fig["scan_cpu_over_decode"] = ratio(scan, decode, "cpu_s")
    fig["scan_cpu_over_decode_cold"] = ratio(scan, cold, "cpu_s")
    if coverage:
        fig |= {"coverage_xrt": median_of(coverage, "xrt"), "coverage_wall_s": median_of(coverage, "wall_s"),
                "coverage_speedup": ratio(coverage, scan, "xrt")}
    return fig


MODEL_ROUNDS = (("model_t2", "model", "t2"), ("model_t1", "model", "t1"), ("model_cuda", "model", "cuda"),
                ("compare_t2", "compare_model", "t2"))  # run list, figure prefix, suffix


def run_figures(runs: dict[str, list[dict]]) -> dict:
    """Figures that do not depend on the library: naive, the 2-hour file, model-only."""
    fig = {"naive_xrt": median_of(runs["naive"], "xrt"), "naive_audio_per_cpu_s": median_of(runs["naive"], "audio_per_cpu_s")}
    if runs["long"]:
        fig |= {f"long_{k}": median_of(runs["long"], k) for k in ("xrt", "peak_rss_mb", "ru_maxrss_mb")}
    for name, prefix, suffix in MODEL_ROUNDS:
        for key in ("seg_s", "frontend_seg_s", "frontend_share", "peak_gpu_mb"):
            if runs[name] and key in runs[name][0]:
                fig[f"{prefix}_{key}_{suffix}"] = median_of(runs[name], key)
    if runs["compare_t2"]:
        fig["model_cost_over_compare"] = ratio(runs["compare_t2"], runs["model_t2"], "seg_s")
    return fig


def target(key: str, minutes: float = 0.0) -> tuple[str, float, str] | None:
    """(comparison, value, wording) for figure ``key`` (of a library of ``minutes``), or None."""
    if key != "scan_over_decode":
        return TARGETS.get(key)
    for at_least, value in SCAN_OVER_DECODE:
        if minutes >= at_least:
            return ">=", value, f"scan >= {value:g} x decode-only (libraries of {at_least / 60:g} h or more)"
    return None


def check(key: str, fig: dict, minutes: float = 0.0) -> dict | None:
    """The target of ``fig[key]`` with its value and whether it is met; None without a target or figure."""
    spec = target(key, minutes)
    if spec is None or key not in fig:
        return None
    op, value, what = spec
    return {"op": op, "target": value, "what": what, "value": fig[key], "met": COMPARE[op](fig[key], value)}


def all_targets(libraries: list[Library], lib_figs: list[dict], fig: dict) -> dict:
    """Every target with a figure: ``key[library]`` for a library's, ``key`` for the run's."""
    found = {f"{key}[{lib.name}]": check(key, lf, lib.minutes)
             for lib, lf in zip(libraries, lib_figs) for key in LIBRARY_FIGURES}
    found |= {key: check(key, fig) for key in TARGETS if key not in LIBRARY_FIGURES}
    return {key: t for key, t in found.items() if t is not None}


# --- report -----------------------------------------------------------------------------


def _verdict(key: str, fig: dict, minutes: float = 0.0) -> str:
    t = check(key, fig, minutes)
    return "" if t is None else f"{t['op']} {t['target']:g}  {'ok' if t['met'] else 'MISSED'}"


def library_rows(lib: Library, f: dict) -> list[tuple[str, str, str, str]]:
    m = lib.minutes
    rows = [
        ("decode-only (x real time)", f"{f['decode_xrt']:.0f}", "", "warm worker pool, in this process"),
        ("decode-only, cold (x real time)", f"{f['decode_cold_xrt']:.0f}", "", "own program, spawn to exit, like the scan"),
        ("tagger scan (x real time)", f"{f['scan_xrt']:.0f}", _verdict("scan_xrt", f, m),
         f"{f['scan_wall_s']:.1f} s wall, {f['scan_seg_s']:.0f} segments/s"),
        ("scan / decode-only", f"{f['scan_over_decode']:.2f}", _verdict("scan_over_decode", f, m),
         "" if target("scan_over_decode", m) else "no target under an hour of audio"),
        ("scan / decode-only, cold", f"{f['scan_over_decode_cold']:.2f}", "", "both timed from process start"),
        ("scan / naive", f"{f['scan_over_naive']:.0f}", "", ""),
        ("CPU cost: audio s per CPU s, decode-only", f"{f['decode_audio_per_cpu_s']:.0f}", "", "load-independent"),
        ("CPU cost: audio s per CPU s, scan", f"{f['scan_audio_per_cpu_s']:.0f}", "", ""),
        ("CPU s: scan / decode-only", f"{f['scan_cpu_over_decode']:.2f}", _verdict("scan_cpu_over_decode", f, m),
         f"{f['scan_cpu_s']:.1f} / {f['decode_cpu_s']:.1f} CPU s; / cold decode-only {f['scan_cpu_over_decode_cold']:.2f}"),
        ("scan peak RSS, process tree (MB)", f"{f['scan_peak_rss_mb']:.0f}", _verdict("scan_peak_rss_mb", f, m),
         "sum over the tree, sampled every 50 ms"),
    ]
    if "coverage_speedup" in f:
        rows += [
            ("scan --coverage (x real time)", f"{f['coverage_xrt']:.0f}", "", f"{f['coverage_wall_s']:.1f} s wall"),
            ("speed: scan --coverage / scan", f"{f['coverage_speedup']:.2f}", _verdict("coverage_speedup", f, m), ""),
        ]
    if "decode_bound_ratio" in f:
        rows.append(("decode-bound ratio: model on cuda / decode-only", f"{f['decode_bound_ratio']:.1f}", "",
                     "segments/s; above 1, decoding bounds the scan"))
    return rows


def run_rows(fig: dict, meta: dict) -> list[tuple[str, str, str, str]]:
    rows = [
        ("naive notebook pipeline (x real time)", f"{fig['naive_xrt']:.1f}", "",
         f"1 process, {meta['naive_files']} files, {meta['naive_threads']} torch thread(s), CPU"),
        ("CPU cost: audio s per CPU s, naive", f"{fig['naive_audio_per_cpu_s']:.0f}", "", ""),
    ]
    if "long_xrt" in fig:
        rows += [
            ("2-hour file: scan (x real time)", f"{fig['long_xrt']:.0f}", "", ""),
            ("2-hour file: peak RSS (MB)", f"{fig['long_peak_rss_mb']:.0f}", _verdict("long_peak_rss_mb", fig),
             "sum over the tree, sampled every 50 ms"),
        ]
    for suffix, where in (("t2", "CPU, 2 threads"), ("t1", "CPU, 1 thread"), ("cuda", "cuda")):
        if f"model_seg_s_{suffix}" not in fig:
            continue
        if suffix == "cuda":
            notes = [f"torch frontend on the GPU, {100 * fig['model_frontend_share_cuda']:.0f}% of it"]
        else:
            notes = [f"network only; the workers' NumPy frontend {fig[f'model_frontend_seg_s_{suffix}']:.0f} seg/s per core"]
        if f"model_peak_gpu_mb_{suffix}" in fig:
            notes.append(f"peak GPU memory {fig[f'model_peak_gpu_mb_{suffix}']:.0f} MB (this round; the scan's is not measured)")
        rows.append((f"model only, batch 256, {where} (seg/s)", f"{fig[f'model_seg_s_{suffix}']:.0f}",
                     _verdict(f"model_seg_s_{suffix}", fig), "; ".join(notes)))
    return rows


def print_table(libraries: list[Library], lib_figs: list[dict], fig: dict, meta: dict) -> None:
    blocks = [(f"{lib.files} files x {lib.minutes_per_file:g} min ({lib.audio_s / 60:.0f} min of audio)", library_rows(lib, lf))
              for lib, lf in zip(libraries, lib_figs)]
    blocks.append(("whatever the library", run_rows(fig, meta)))
    w = [max(len(r[i]) for _, rows in blocks for r in rows) for i in range(4)]
    print(f"\njobs={meta['jobs']}, device {meta['device']}, medians of {meta['repeats']} runs "
          f"(load before: {meta['loadavg_before']})")
    for title, rows in blocks:
        print(f"  {title}")
        for r in rows:
            print(f"    {r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:<{w[2]}}  {r[3]}")


# --- main -------------------------------------------------------------------------------


def _file_counts(text: str) -> list[int]:
    """``"20,60"`` -> [20, 60]: the files of each library."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected file counts separated by commas, e.g. 20,60; got {text!r}")
    return counts


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], e.g. 0.3; got {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, help="weights file (default: the bundled model)")
    ap.add_argument("--random-model", action="store_true",
                    help="use random weights of the bundled architecture (resnet, width 32, 17 labels)")
    ap.add_argument("--compare-model", type=Path, metavar="WEIGHTS",
                    help="also time this model's network in each round, beside --model: per-segment cost ratio")
    ap.add_argument("--files", type=_file_counts, default=[20], metavar="N[,N...]",
                    help="files per library; several counts measure several libraries in the same rounds "
                         "(20,60: an hour and three hours of 3-minute files)")
    ap.add_argument("--minutes-per-file", type=float, default=3.0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="decoding processes (scan and decode-only)")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="the scan's and the model-only round's (auto: CUDA when present); the naive pipeline stays on the CPU")
    ap.add_argument("--coverage", type=_fraction, metavar="F",
                    help="also time `tagger scan --coverage F` beside the full scan on each library (target: 2x faster at 0.3)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tagger-bench")
    ap.add_argument("--long-file", action="store_true", help="also scan a 2-hour MP3 alone")
    ap.add_argument("--repeats", type=int, default=3, help="side-by-side rounds; medians are reported")
    ap.add_argument("--naive-files", type=int, default=3, help="files the (slow) naive pipeline runs on")
    ap.add_argument("--naive-threads", type=int, default=1,
                    help="torch threads of the naive pipeline (0: torch's default; batch-1 calls with 2 threads "
                         "on a busy machine cost ~100x more)")
    ap.add_argument("--scan-args", default="", help="extra arguments for tagger scan, e.g. '--batch-size 512'")
    ap.add_argument("--decode-only", type=Path, metavar="DIR", help=argparse.SUPPRESS)  # the cold decode-only child
    return ap.parse_args(argv)


def scan_args(device: str, scan_args: str, coverage: float | None = None) -> list[str]:
    """The extra arguments of a timed scan: the full one, or with ``coverage`` the --coverage one."""
    return ["--device", device, *shlex.split(scan_args), *(["--coverage", f"{coverage:g}"] if coverage else [])]


def cannot_start(args: argparse.Namespace) -> str | None:
    """Why this run cannot start (one line), before anything is built; None when it can."""
    from tagger.errors import ModelLoadError
    from tagger.weights import resolve_device

    try:
        resolve_device(args.device)
    except ModelLoadError as exc:
        return str(exc)
    if args.coverage is not None:
        usage = subprocess.run([sys.executable, "-m", "tagger", "scan", "--help"], capture_output=True, text=True)
        if "--coverage" not in usage.stdout:
            return "--coverage was asked for, but this tagger's scan has no --coverage option"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.decode_only:
        run_decode_only(sorted(args.decode_only.glob("*.mp3")), args.jobs)
        return 0
    problem = cannot_start(args)
    if problem:
        print(f"benchmark: {problem}", file=sys.stderr)
        return 2

    import torch

    from tagger.weights import bundled_model_path, read_header, resolve_device

    device = resolve_device(args.device).type
    args.work.mkdir(parents=True, exist_ok=True)
    model = random_model(args.work) if args.random_model else (args.model or bundled_model_path())
    load_before = os.getloadavg()
    libraries = [prepare_library(args.work, n, args.minutes_per_file, args.jobs) for n in args.files]
    print(f"model {model}, device {device}", flush=True)
    long_dir = None
    if args.long_file:
        long_dir, long_build_s = build_long_file(args.work)
        long_audio_s = audio_seconds(sorted(long_dir.glob("*.mp3")))
        print(f"long file {long_dir}: {long_audio_s / 3600:.2f} h"
              + (f" (built in {long_build_s:.1f} s)" if long_build_s else " (cached)"), flush=True)

    extra = scan_args(device, args.scan_args)
    runs: dict[str, list[dict]] = {name: [] for name in ("naive", "long", *(r[0] for r in MODEL_ROUNDS))}
    lib_runs = {lib.name: {"decode": [], "decode_cold": [], "scan": [], "coverage": []} for lib in libraries}
    for r in range(args.repeats):
        for lib in libraries:
            lr = lib_runs[lib.name]
            lr["decode"].append(run_decode_only(lib.paths, args.jobs))
            lr["decode_cold"].append(run_decode_cold(lib.folder, args.jobs, lib.audio_s))
            lr["scan"].append(run_scan(lib.folder, model, args.jobs, lib.audio_s, args.work, extra))
            if args.coverage is not None:
                lr["coverage"].append(run_scan(lib.folder, model, args.jobs, lib.audio_s, args.work,
                                               scan_args(device, args.scan_args, args.coverage), tag="coverage"))
            s = lr["scan"][-1]
            print(f"round {r + 1}/{args.repeats}, {lib.name}: decode {lr['decode'][-1]['xrt']:.0f}x "
                  f"(cold {lr['decode_cold'][-1]['xrt']:.0f}x), scan {s['xrt']:.0f}x ({s['wall_s']:.1f} s, {s['peak_rss_mb']:.0f} MB)"
                  + (f", --coverage {lr['coverage'][-1]['xrt']:.0f}x" if lr["coverage"] else ""), flush=True)
        runs["naive"].append(run_naive(libraries[0].paths[: args.naive_files], model, args.naive_threads))
        if long_dir is not None:
            runs["long"].append(run_scan(long_dir, model, args.jobs, long_audio_s, args.work, extra, tag="long"))
        runs["model_t2"].append(run_model_only(model, 2))
        runs["model_t1"].append(run_model_only(model, 1))
        if device == "cuda":
            runs["model_cuda"].append(run_model_only(model, 2, "cuda"))
        if args.compare_model:
            runs["compare_t2"].append(run_model_only(args.compare_model, 2))
        print(f"round {r + 1}/{args.repeats}: naive {runs['naive'][-1]['xrt']:.1f}x"
              + (f", long {runs['long'][-1]['xrt']:.0f}x ({runs['long'][-1]['peak_rss_mb']:.0f} MB)" if long_dir else "")
              + f", model {runs['model_t2'][-1]['seg_s']:.0f}/{runs['model_t1'][-1]['seg_s']:.0f} seg/s (2/1 threads)"
              + (f", cuda {runs['model_cuda'][-1]['seg_s']:.0f} seg/s" if runs["model_cuda"] else ""), flush=True)

    fig = run_figures(runs)
    lib_figs = [library_figures(lib_runs[lib.name], runs["naive"]) for lib in libraries]
    if "model_seg_s_cuda" in fig:
        segment_s = read_header(model).frontend.segment_seconds
        for lf in lib_figs:  # segments/s the GPU takes over segments/s decoding delivers
            lf["decode_bound_ratio"] = fig["model_seg_s_cuda"] / (lf["decode_xrt"] / segment_s)
    targets = all_targets(libraries, lib_figs, fig)
    first = libraries[0]
    meta = {
        "files": len(first.paths), "audio_min": first.audio_s / 60, "library": str(first.folder),
        "libraries": [lib.name for lib in libraries], "jobs": args.jobs, "repeats": args.repeats, "device": device,
        "coverage": args.coverage, "model": str(model), "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(), "python": platform.python_version(),
        "torch": torch.__version__, "torch_threads_default": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "naive_files": args.naive_files, "naive_threads": runs["naive"][0]["threads"],
        "scan_command": lib_runs[first.name]["scan"][0]["command"],
        "ru_maxrss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    print_table(libraries, lib_figs, fig, meta)
    if "model_cost_over_compare" in fig:
        print(f"model-only, 2 threads: {model.name} {fig['model_seg_s_t2']:.0f} seg/s, {args.compare_model.name} "
              f"{fig['compare_model_seg_s_t2']:.0f} seg/s; per-segment cost ratio {fig['model_cost_over_compare']:.2f}")
    print(f"  scan command: {meta['scan_command']}")
    report = {
        "figures": lib_figs[0] | fig,  # the first library's, and the run's: the layout of one-library runs
        "libraries": [{"name": lib.name, "files": lib.files, "minutes_per_file": lib.minutes_per_file,
                       "audio_min": lib.audio_s / 60, "figures": lf, "runs": lib_runs[lib.name]}
                      for lib, lf in zip(libraries, lib_figs)],
        "targets": targets, "meta": meta, "runs": runs,
    }
    out = args.work / "benchmark.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"  figures written to {out}")
    return 0 if all(t["met"] for t in targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
