"""A self-training corpus: game music clips with a teacher's confident labels as soft targets.

    python -m training.selftrain --out data/corpus_selftrain --teacher runs/stage4_tracks/MODEL.safetensors \\
        [--packages wesnoth-1.16-music warzone2100-music supertux-data] [--music DIR ...] \\
        [--per-track 40] [--seed 0] [--reuse] [--teacher-tags DIR/musicnn.csv]

Noisy student (issue 26): the music of Debian's game packages is unlabelled real music
(DESIGN.md, "Sound sources for training"); a teacher model labels it and a student trains
on the teacher's confident labels under the trainer's augmentation. Three steps, each
written to ``--out`` so a later call with ``--reuse`` redoes only what changed:

1. **Clips.** Every audio file under a ``music`` folder of each package (``dpkg -L``), or
   under each ``--music`` folder, is decoded at 22 050 Hz mono; up to ``--per-track``
   3-s clips spread evenly over the track (a seeded jitter inside each share) are written
   as ``clips/<source>_<track>_<k>.flac``, quieter ones (below ``QUIET_DB`` dBFS RMS)
   left out. ``clips.csv`` (``path,source,track,start_s``) lists them as soon as they are
   written, before any scoring, so another teacher can start on the same clips.
2. **Teacher scores.** The teacher (our own model, :class:`tagger.inference.Scorer`)
   scores each clip: ``teacher.csv`` (``path`` + one sigmoid score per label).
3. **Manifest.** Each score is calibrated to the teacher's own threshold ``t`` for that
   label and sharpened: ``target = sigmoid((logit(p) - logit(t)) / temperature)``, so a
   score at the threshold gives 0.5 and ``labels`` (targets >= 0.5) are exactly the
   teacher's decisions. With ``--teacher-tags CSV`` (musicnn's MagnaTagATune tags per
   clip, ``path`` + tag columns), the labels both teachers know are the mean of the two
   before sharpening (see :data:`training.teacher.SHARED_TAGS`; ``guitar`` only for a guitar our teacher
   names), musicnn's scores calibrated the same way to ``--musicnn-threshold`` (default
   0.2: its scores run low, MagnaTagATune's tags being sparse); a clip musicnn has no row
   for keeps our teacher's scores alone. **Confidence rule:** a label is uncertain when its calibrated logit is within
   ``--margin`` of 0 (default 1.5: calibrated probability between 0.18 and 0.82; for the
   bundled model's thresholds of 0.38, raw scores between 0.12 and 0.73); a clip is kept
   when at most ``--max-uncertain`` of its labels (default 2 of 18) are uncertain. The
   manifest (``path,labels,targets,source,kind,programs``) lists the kept clips,
   ``targets`` as ``label=value;...`` for every label of the teacher.

``--manifest NAME`` writes the manifest under another name (a second rule or teacher
beside the first; its summary goes to ``summary_<stem>.json``). A stamp
(training/stamp.py) of the last call's arguments is written last. ``--reuse`` keeps clips made with the same
clip arguments (``clips.json``) and teacher scores made by the same teacher file
(``teacher.json``); the manifest is always rewritten, so ``--teacher-tags`` on a second
call only rewrites it.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tagger.decode import decode
from tagger.discover import AUDIO_EXTENSIONS
from tagger.errors import TaggerError
from tagger.segments import loudness_db

from .corpus.audio import SAMPLE_RATE
from .stamp import build_arguments, clear_stamp, kept, write_stamp
from .teacher import OUTPUT_NAME as TEACHER_TAGS, SHARED_TAGS

log = logging.getLogger("training.selftrain")

# DESIGN.md's game packages (unlabelled real music); the default is those installed.
GAME_PACKAGES = ("wesnoth-1.16-music", "warzone2100-music", "supertux-data", "supertuxkart-data",
                 "widelands-data", "naev-data")
CLIP_SECONDS = 3.0
QUIET_DB = -45.0  # dBFS RMS: quieter clips (fades, silence) are not written
CLIPS_STAMP = "clips.json"
TEACHER_STAMP = "teacher.json"
CLIP_COLUMNS = ("path", "source", "track", "start_s")
MANIFEST_COLUMNS = ("path", "labels", "targets", "source", "kind", "programs")
# Our label -> the musicnn (MagnaTagATune) tags that name it: training.teacher.SHARED_TAGS (the
# label's musicnn score is the highest of those present). musicnn's ``guitar`` names both of
# our guitars, so our teacher decides which (see combine_scores).
GUITARS = ("acoustic_guitar", "electric_guitar")


@dataclass(frozen=True)
class Track:
    source: str  # package or folder name
    path: Path


@dataclass(frozen=True)
class ConfidenceRule:
    temperature: float = 0.5  # < 1 sharpens
    margin: float = 1.5  # calibrated logits within +-margin of 0 are uncertain
    max_uncertain: int = 2  # uncertain labels a kept clip may have
    musicnn_weight: float = 0.5  # musicnn's share in the mean of the two teachers
    musicnn_threshold: float = 0.2  # musicnn's tag score taken as 0.5 (its scores run low: MagnaTagATune's tags are sparse)


# --- step 1: clips -------------------------------------------------------------------

def installed(package: str) -> bool:
    res = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return res.returncode == 0 and res.stdout.strip() == "install ok installed"


def package_tracks(package: str) -> list[Track]:
    """The audio files of ``package`` under a folder named ``music`` (its sound effects are not music)."""
    res = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
    if res.returncode != 0:
        raise TaggerError(f"package {package} is not installed")
    files = sorted({Path(line) for line in res.stdout.splitlines() if line.strip()})
    return [Track(package, p) for p in files
            if p.suffix.lower() in AUDIO_EXTENSIONS and "music" in (s.lower() for s in p.parts[:-1]) and p.is_file()]


def folder_tracks(folder: Path) -> list[Track]:
    return [Track(folder.name, p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".")]


def clip_starts(n_samples: int, clip: int, per_track: int, rng: np.random.Generator) -> list[int]:
    """Up to ``per_track`` non-overlapping clip starts spread over ``n_samples``: the track
    is cut into that many equal shares, each clip starting at a random place in its share."""
    n = min(per_track, n_samples // clip)
    if n <= 0:
        return []
    share = n_samples // n
    return [i * share + int(rng.integers(0, share - clip + 1)) for i in range(n)]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def cut_track(out: Path, track: Track, number: int, per_track: int, seed: int) -> list[dict]:
    """Write the clips of one track; their clips.csv rows."""
    try:
        audio = decode(track.path, SAMPLE_RATE)
    except TaggerError as exc:
        log.warning("%s: %s", track.path, exc)
        return []
    clip = round(CLIP_SECONDS * SAMPLE_RATE)
    rng = np.random.default_rng([seed, number])
    rows = []
    for k, start in enumerate(clip_starts(len(audio), clip, per_track, rng)):
        piece = audio[start:start + clip]
        if loudness_db(piece[None])[0] < QUIET_DB:
            continue
        path = f"clips/{_slug(track.source)}_{number:03d}_{_slug(track.path.stem)[:40]}_{k:02d}.flac"
        sf.write(out / path, np.clip(piece, -1.0, 1.0), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        rows.append({"path": path, "source": track.source, "track": str(track.path), "start_s": round(start / SAMPLE_RATE, 3)})
    return rows


def write_rows(path: Path, columns: Sequence[str], rows: Iterable[Mapping]) -> None:
    """A CSV written whole or not at all (a temp file renamed)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def cut_clips(out: Path, tracks: Sequence[Track], per_track: int, seed: int) -> list[dict]:
    """Step 1: write every track's clips and ``clips.csv``; the rows. Another teacher's
    tags of earlier clips (``musicnn.csv``, which training.teacher completes by clip name)
    go with them: the new clips may carry the old names."""
    (out / "clips").mkdir(parents=True, exist_ok=True)
    for f in (out / "clips").glob("*.flac"):
        f.unlink()
    (out / TEACHER_TAGS).unlink(missing_ok=True)
    rows = []
    for number, track in enumerate(tracks):
        rows += cut_track(out, track, number, per_track, seed)
    write_rows(out / "clips.csv", CLIP_COLUMNS, rows)
    return rows


# --- step 2: teacher scores ----------------------------------------------------------

def score_clips(out: Path, rows: Sequence[Mapping], teacher: Path, batch: int = 64) -> tuple[tuple[str, ...], np.ndarray, dict[str, float]]:
    """The teacher's sigmoid scores (clips, labels) of every clip, its labels and thresholds."""
    from tagger.inference import Scorer

    scorer = Scorer.from_path(teacher, device="cpu")
    clip = scorer.checkpoint.frontend.segment_samples
    scores = []
    for i in range(0, len(rows), batch):
        waves = np.zeros((len(rows[i:i + batch]), clip), np.float32)
        for j, row in enumerate(rows[i:i + batch]):
            audio, sr = sf.read(out / row["path"], dtype="float32")
            if sr != scorer.checkpoint.frontend.sample_rate:
                raise TaggerError(f"{row['path']}: {sr} Hz, the teacher wants {scorer.checkpoint.frontend.sample_rate}")
            waves[j, :min(clip, len(audio))] = audio[:clip]
        scores.append(scorer.score(waves))
    labels = scorer.labels
    matrix = np.concatenate(scores) if scores else np.zeros((0, len(labels)), np.float32)
    return labels, matrix, dict(scorer.checkpoint.thresholds)


def write_scores(path: Path, paths: Sequence[str], labels: Sequence[str], scores: np.ndarray) -> None:
    write_rows(path, ("path", *labels),
               ({"path": p, **{l: f"{s:.5f}" for l, s in zip(labels, row)}} for p, row in zip(paths, scores)))


def read_scores(path: Path) -> tuple[list[str], tuple[str, ...], np.ndarray]:
    """A per-clip score table (``path`` + one column per label or tag): paths, columns, matrix."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = tuple(c for c in reader.fieldnames or () if c != "path")
        paths, rows = [], []
        for row in reader:
            paths.append(row["path"])
            rows.append([float(row[c]) for c in columns])
    return paths, columns, np.asarray(rows, np.float32).reshape(len(paths), len(columns))


# --- step 3: combine, sharpen, keep the confident -------------------------------------

def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def calibrated(scores: np.ndarray, labels: Sequence[str], thresholds: Mapping[str, float]) -> np.ndarray:
    """Scores moved so each label's threshold sits at 0.5: sigmoid(logit(p) - logit(t))."""
    t = np.array([thresholds.get(l, 0.5) for l in labels], np.float32)
    return 1 / (1 + np.exp(-(_logit(scores) - _logit(t))))


def _clip_key(path: str) -> str:
    """Match a clip across tables whether they hold relative, absolute or bare names."""
    return Path(path).name


def musicnn_scores(tags_csv: Path, clip_paths: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """(clips, labels) musicnn scores for our labels, NaN where musicnn has no tag or no row
    for the clip; our two guitars both get musicnn's ``guitar``."""
    paths, columns, matrix = read_scores(tags_csv)
    where = {_clip_key(p): i for i, p in enumerate(paths)}
    col = {c.strip().lower(): j for j, c in enumerate(columns)}
    tags = SHARED_TAGS
    out = np.full((len(clip_paths), len(labels)), np.nan, np.float32)
    for i, p in enumerate(clip_paths):
        r = where.get(_clip_key(p))
        if r is None:
            continue
        for j, label in enumerate(labels):
            present = [col[t] for t in tags.get(label, ()) if t in col]
            if present:
                out[i, j] = matrix[r, present].max()
    return out


def combine_scores(ours: np.ndarray, theirs: np.ndarray, labels: Sequence[str], weight: float) -> np.ndarray:
    """Our calibrated scores, each averaged with musicnn's where musicnn has one
    (``weight`` its share); musicnn's ``guitar`` only where our teacher names that guitar
    (calibrated >= 0.5): it can confirm or deny our guitar, never pick between the two."""
    out = ours.copy()
    has = ~np.isnan(theirs)
    for j, label in enumerate(labels):
        if label in GUITARS:
            has[:, j] &= ours[:, j] >= 0.5
    out[has] = (1 - weight) * ours[has] + weight * theirs[has]
    return out


def sharpen(p: np.ndarray, temperature: float) -> np.ndarray:
    return 1 / (1 + np.exp(-_logit(p) / temperature))


def uncertain(p: np.ndarray, margin: float) -> np.ndarray:
    """(clips, labels) True where a calibrated score is within ``margin`` logits of 0.5."""
    return np.abs(_logit(p)) < margin


def format_targets(labels: Sequence[str], values: np.ndarray) -> str:
    return ";".join(f"{l}={v:.3f}" for l, v in zip(labels, values))


def manifest_rows(clips: Sequence[Mapping], labels: Sequence[str], teacher_scores: np.ndarray,
                  thresholds: Mapping[str, float], rule: ConfidenceRule, musicnn: np.ndarray | None = None) -> list[dict]:
    """Step 3: the manifest rows of the confident clips."""
    p = calibrated(teacher_scores, labels, thresholds)
    if musicnn is not None:
        theirs = calibrated(musicnn, labels, dict.fromkeys(labels, rule.musicnn_threshold))
        p = combine_scores(p, theirs, labels, rule.musicnn_weight)
    keep = uncertain(p, rule.margin).sum(axis=1) <= rule.max_uncertain
    targets = sharpen(p, rule.temperature)
    rows = []
    for clip, row, ok in zip(clips, targets, keep):
        if ok:
            rows.append({"path": clip["path"], "labels": ";".join(l for l, v in zip(labels, row) if v >= 0.5),
                         "targets": format_targets(labels, row), "source": clip["source"], "kind": "selftrain",
                         "programs": Path(clip["track"]).name})
    return rows


# --- the build -------------------------------------------------------------------------

def find_tracks(packages: Sequence[str], folders: Sequence[Path]) -> list[Track]:
    tracks = [t for p in packages for t in package_tracks(p)]
    return tracks + [t for f in folders for t in folder_tracks(f)]


def _json_matches(path: Path, value: dict) -> bool:
    try:
        return json.loads(path.read_text()) == value
    except (OSError, ValueError):
        return False


def _write_json(path: Path, value: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    os.replace(tmp, path)


def build(out: Path, teacher: Path, tracks: Sequence[Track], per_track: int = 40, seed: int = 0,
          rule: ConfidenceRule = ConfidenceRule(), teacher_tags: Path | None = None, reuse: bool = False,
          manifest: str = "manifest.csv") -> dict:
    """Run the three steps into ``out`` (each kept under ``reuse`` when its inputs match),
    the manifest named ``manifest``; a summary."""
    from tagger.weights import sha256_file

    out.mkdir(parents=True, exist_ok=True)
    clear_stamp(out)
    clip_args = {"tracks": [[t.source, str(t.path)] for t in tracks], "per_track": per_track, "seed": seed,
                 "clip_seconds": CLIP_SECONDS, "quiet_db": QUIET_DB}
    if reuse and _json_matches(out / CLIPS_STAMP, clip_args) and (out / "clips.csv").is_file():
        clips = read_rows(out / "clips.csv")
        log.info("%d clips kept from %s", len(clips), out / "clips.csv")
    else:
        (out / CLIPS_STAMP).unlink(missing_ok=True)
        (out / TEACHER_STAMP).unlink(missing_ok=True)
        clips = cut_clips(out, tracks, per_track, seed)
        _write_json(out / CLIPS_STAMP, clip_args)
        log.info("%d clips of %d tracks written, listed in %s", len(clips), len(tracks), out / "clips.csv")
    teacher_args = {"teacher": str(teacher), "sha256": sha256_file(teacher), "clips": len(clips)}
    if reuse and _json_matches(out / TEACHER_STAMP, teacher_args) and (out / "teacher.csv").is_file():
        paths, labels, scores = read_scores(out / "teacher.csv")
        thresholds = json.loads((out / "thresholds.json").read_text())
    else:
        labels, scores, thresholds = score_clips(out, clips, teacher)
        write_scores(out / "teacher.csv", [c["path"] for c in clips], labels, scores)
        _write_json(out / "thresholds.json", thresholds)
        _write_json(out / TEACHER_STAMP, teacher_args)
        paths, labels, scores = read_scores(out / "teacher.csv")  # as a --reuse call will read them
    if paths != [c["path"] for c in clips]:
        raise TaggerError(f"{out / 'teacher.csv'} does not list the clips of {out / 'clips.csv'}: build without --reuse")
    musicnn = musicnn_scores(teacher_tags, paths, labels) if teacher_tags else None
    rows = manifest_rows(clips, labels, scores, thresholds, rule, musicnn)
    write_rows(out / manifest, MANIFEST_COLUMNS, rows)
    return summary(clips, rows, labels, musicnn)


def summary(clips: Sequence[Mapping], rows: Sequence[Mapping], labels: Sequence[str], musicnn: np.ndarray | None) -> dict:
    per_source = Counter(c["source"] for c in clips)
    tracks = Counter(s for s, _ in {(c["source"], c["track"]) for c in clips})
    kept_source = Counter(r["source"] for r in rows)
    label_counts = Counter(l for r in rows for l in r["labels"].split(";") if l)
    return {"clips": len(clips), "kept": len(rows),
            "sources": {s: {"tracks": tracks[s], "clips": per_source[s], "kept": kept_source[s]} for s in sorted(per_source)},
            "labels": {l: label_counts[l] for l in labels},
            "no_label": sum(1 for r in rows if not r["labels"]),
            "musicnn_clips": None if musicnn is None else int((~np.isnan(musicnn)).any(axis=1).sum())}


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text!r}")
    return value


def _not_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of at least 0, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.selftrain", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--teacher", type=Path, required=True, help="the teacher's weights (.safetensors)")
    p.add_argument("--packages", nargs="*", default=None,
                   help="game packages to read (default: those of DESIGN.md that are installed)")
    p.add_argument("--music", nargs="*", type=Path, default=[], help="folders of unlabelled music to read as well")
    p.add_argument("--per-track", type=int, default=40, help="most clips cut from one track (default 40)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=_positive, default=ConfidenceRule.temperature)
    p.add_argument("--margin", type=_not_negative, default=ConfidenceRule.margin)
    p.add_argument("--max-uncertain", type=int, default=ConfidenceRule.max_uncertain)
    p.add_argument("--teacher-tags", type=Path, help="musicnn's per-clip tags (path + tag columns)")
    p.add_argument("--musicnn-weight", type=float, default=ConfidenceRule.musicnn_weight)
    p.add_argument("--musicnn-threshold", type=float, default=ConfidenceRule.musicnn_threshold)
    p.add_argument("--manifest", default="manifest.csv",
                   help="the manifest's file name in --out (another name keeps a second rule's manifest beside it)")
    p.add_argument("--jobs", type=int, default=1, help="unused: the build runs in one process")
    p.add_argument("--reuse", action="store_true", help="keep clips and teacher scores made with these arguments")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.packages is None:
        args.packages = [pkg for pkg in GAME_PACKAGES if installed(pkg)] if not args.music else []
    arguments = build_arguments(args)
    if args.teacher_tags:  # the same table name may hold new tags on a second call
        from tagger.weights import sha256_file

        arguments["teacher_tags_sha256"] = sha256_file(args.teacher_tags)
    if args.reuse and kept(args.out, arguments):
        return 0
    import torch

    torch.set_num_threads(1)
    t0 = time.monotonic()
    rule = ConfidenceRule(args.temperature, args.margin, args.max_uncertain, args.musicnn_weight, args.musicnn_threshold)
    tracks = find_tracks(args.packages, args.music)
    if not tracks:
        raise SystemExit("no music found")
    info = build(args.out, args.teacher, tracks, args.per_track, args.seed, rule, args.teacher_tags, args.reuse,
                 args.manifest)
    _write_json(args.out / ("summary.json" if args.manifest == "manifest.csv" else f"summary_{Path(args.manifest).stem}.json"), info)
    write_stamp(args.out, arguments)
    print(json.dumps(info, indent=1), file=sys.stderr)
    print(f"{info['kept']} of {info['clips']} clips kept in {args.out / args.manifest} ({time.monotonic() - t0:.0f} s)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
