"""The ``band`` held-out set: a metal band's songs as the band mixed them, never trained or tuned on.

    python -m training.band --out data/corpus_band [--within-db 10]
    python -m training.band --out data/corpus_band --explain MODEL   # recall, and what else it names

Debian's ``fretsonfire-songs-muldjord`` (DESIGN.md holds it out) has four songs of a metal
band, each as stems: ``guitar.ogg`` (the distorted lead and rhythm guitars), ``song.ogg``
(the rest: drums, bass, the other parts) and in some songs ``rhythm.ogg``. The game plays
them together at equal gain, and so do we: the backing is ``song.ogg`` plus ``rhythm.ogg``
when there is one, the clip is guitar plus backing.

Each song is cut into back-to-back 10-s windows; a window is kept when both stems play in
it (RMS above -50 dBFS) and the guitar's RMS is within ``--within-db`` (10) dB of the
backing's, above or below: the guitar is neither buried nor alone. Each kept window is one
clip (22 050 Hz mono, peak 0.5).

The truth is partial: ``electric_guitar`` is surely there, so that is each clip's one
label; drums, bass and whatever else the backing holds are not checked. Read the set's
figures as ``electric_guitar`` recall (labels after the model's thresholds) and what else
is named (``--explain``), not as precision. Writes DIR/clips/*.flac,
DIR/manifest.csv (``path,labels,source,kind,programs``, as ``training.recorded``),
DIR/details.jsonl (each clip's song, start and the two stems' levels) and a stamp.
"""
from __future__ import annotations

import argparse
import csv
import logging
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tagger.decode import decode
from tagger.errors import AudioDecodeError

from .corpus.audio import SAMPLE_RATE, rms
from .corpus.clips import write_details, write_manifest
from .stamp import add_heldout_options, clear_stamp, heldout_arguments, kept, write_stamp

log = logging.getLogger(__name__)

ROOT = Path("/usr/share/games/fretsonfire/data/songs/muldjord")
PACKAGE = "fretsonfire-songs-muldjord"
LABEL = "electric_guitar"
WINDOW_SECONDS = 10.0
WINDOW_SAMPLES = int(WINDOW_SECONDS * SAMPLE_RATE)  # 220 500 samples: one clip
PLAYS_DB = -50.0  # a stem below this RMS (dBFS) in a window does not play there
GUITAR = "guitar.ogg"
BACKING = ("song.ogg", "rhythm.ogg")  # summed; rhythm.ogg only where a song has one


@dataclass(frozen=True)
class Song:
    """One song's stems: the guitar and the backing files played with it."""
    name: str
    guitar: Path
    backing: tuple[Path, ...]


def songs(root: Path = ROOT) -> list[Song]:
    """The songs under ``root`` that have a guitar stem and a ``song.ogg``, by name."""
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if (folder / GUITAR).exists() and (folder / BACKING[0]).exists():
            out.append(Song(folder.name, folder / GUITAR, tuple(folder / b for b in BACKING if (folder / b).exists())))
    return out


def _read(path: Path) -> np.ndarray:
    try:
        return decode(path, SAMPLE_RATE)
    except AudioDecodeError as exc:
        raise SystemExit(f"training.band: {path}: {exc}") from None


def stems(song: Song) -> tuple[np.ndarray, np.ndarray]:
    """(guitar, backing) at the frontend's rate, mono, cut to the shorter one's length."""
    guitar = _read(song.guitar)
    parts = [_read(p) for p in song.backing]
    n = min(len(guitar), *(len(p) for p in parts))
    return guitar[:n], np.sum([p[:n] for p in parts], axis=0).astype(np.float32)


def level_db(x: np.ndarray) -> float:
    return float(20 * np.log10(max(rms(x), 1e-10)))


def band_windows(guitar: np.ndarray, backing: np.ndarray, within_db: float = 10.0,
                 n: int = WINDOW_SAMPLES) -> list[tuple[int, float, float]]:
    """(start sample, guitar dB, backing dB) of each back-to-back ``n``-sample window where
    both stems play (above PLAYS_DB) and the guitar is within ``within_db`` of the backing."""
    out = []
    for start in range(0, min(len(guitar), len(backing)) - n + 1, n):
        g, b = level_db(guitar[start:start + n]), level_db(backing[start:start + n])
        if g > PLAYS_DB and b > PLAYS_DB and abs(g - b) <= within_db:
            out.append((start, g, b))
    return out


def build(out: Path, root: Path = ROOT, within_db: float = 10.0) -> list[dict]:
    """Write the set to ``out``; returns its rows (the manifest columns and ``details``)."""
    if not root.is_dir():
        raise SystemExit(f"training.band: {root} not found: the Debian package {PACKAGE} "
                         f"(as root: apt-get install --no-install-recommends {PACKAGE}; or run scripts/setup_corpus.sh)")
    found = songs(root)
    if not found:
        raise SystemExit(f"training.band: no song under {root} has both {GUITAR} and {BACKING[0]}")
    clear_stamp(out)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    for f in (out / "clips").glob("*.flac"):
        f.unlink()
    rows = []
    for song in found:
        guitar, backing = stems(song)
        kept_windows = band_windows(guitar, backing, within_db)
        log.info("%s: %d of %d windows", song.name, len(kept_windows), len(guitar) // WINDOW_SAMPLES)
        for start, g_db, b_db in kept_windows:
            y = guitar[start:start + WINDOW_SAMPLES] + backing[start:start + WINDOW_SAMPLES]
            y = (y / max(float(np.max(np.abs(y))), 1e-9) * 0.5).astype(np.float32)
            start_s = start / SAMPLE_RATE
            path = f"clips/{len(rows):05d}_band_{song.name}_{int(start_s):04d}s.flac"
            sf.write(out / path, y, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
            backing_names = "+".join(p.name for p in song.backing)
            rows.append({"path": path, "labels": LABEL, "source": "band", "kind": "band",
                         "programs": f"{LABEL}=muldjord:{song.name}/{GUITAR};backing=muldjord:{song.name}/{backing_names}",
                         "details": {"song": song.name, "start_s": start_s, "guitar_db": round(g_db, 2),
                                     "backing_db": round(b_db, 2), "backing": [p.name for p in song.backing]}})
    write_manifest(out / "manifest.csv", rows)
    write_details(out / "details.jsonl", rows)
    return rows


def figures(labels: tuple[str, ...], y_pred: np.ndarray, songs_of: list[str] | None = None) -> dict:
    """The set's figures from predicted labels (items, labels) bool: ``electric_guitar``
    recall, the share of clips given ``synthesizer``, each label's share of clips, and the
    recall of each song (when ``songs_of`` names each clip's song)."""
    y_pred = np.asarray(y_pred, dtype=bool)
    share = {label: float(y_pred[:, j].mean()) for j, label in enumerate(labels)}
    out = {"items": int(len(y_pred)), "electric_guitar_recall": share.get(LABEL, 0.0),
           "synthesizer_share": share.get("synthesizer", 0.0),
           "labels_named": dict(sorted(share.items(), key=lambda kv: -kv[1])),
           "nothing_named": float((~y_pred.any(axis=1)).mean()) if len(y_pred) else 0.0}
    if songs_of is not None and LABEL in labels:
        j = labels.index(LABEL)
        out["recall_by_song"] = {s: float(y_pred[[k for k, t in enumerate(songs_of) if t == s], j].mean())
                                 for s in sorted(set(songs_of))}
    return out


def explain(folder: Path, model: Path, cache: Path | None = None, jobs: int = 1) -> str:
    """``model``'s figures on the set in ``folder``, as lines of text."""
    import torch

    from tagger.datasets import read_manifest
    from tagger.evaluate import evaluate
    from tagger.weights import load_checkpoint

    with open(folder / "manifest.csv", newline="") as fh:
        song_of = [row["programs"].split(":", 1)[1].split("/", 1)[0] for row in csv.DictReader(fh)]
    ev = evaluate(load_checkpoint(model), read_manifest(folder / "manifest.csv"), torch.device("cpu"), jobs, cache)
    f = figures(ev.labels, ev.y_pred, song_of)
    top1 = Counter(ev.labels[int(np.argmax(s))] for s in ev.y_score)
    lines = [f"{model.name} on {folder} ({f['items']} clips of {WINDOW_SECONDS:g} s):",
             f"electric_guitar recall {f['electric_guitar_recall']:.3f}; synthesizer on {f['synthesizer_share']:.3f}; "
             f"nothing named on {f['nothing_named']:.3f}",
             "labels named (share of clips): " + ", ".join(f"{k} {v:.3f}" for k, v in f["labels_named"].items() if v > 0),
             "highest score: " + ", ".join(f"{k} {v}" for k, v in top1.most_common()),
             "electric_guitar recall by song: " + ", ".join(f"{k} {v:.3f}" for k, v in f["recall_by_song"].items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.band", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--within-db", type=float, default=10.0, help="guitar RMS within this many dB of the backing's")
    add_heldout_options(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    if args.explain:
        print(explain(args.out, args.explain, args.cache, args.jobs))
        return 0
    arguments = heldout_arguments(args)
    if args.reuse and kept(args.out, arguments):
        return 0
    rows = build(args.out, within_db=args.within_db)
    write_stamp(args.out, arguments)
    print(f"{len(rows)} clips written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
