"""Render multi-segment validation tracks from the training sound sources only.

    python -m training.val_tracks --out data/val_tracks [--tracks 100] [--seed 7] [--jobs 1]

The decision threshold and the track aggregation act on *track* scores (the mean of a
track's best segments, :mod:`tagger.aggregate`), so they are tuned on whole tracks, not
on single 3-s clips (``python -m training.tune_tracks``). These tracks are made by the
example-track machinery (:mod:`training.make_examples`: stems rendered per window,
levelled within +-3 dB, panned, room reverb, encoded) with the sources the bundled model
may train on (FluidR3_GM, sf_GMbank, freepats, the project's synthesiser and physical
models; never TimGM6mb nor the held-out physical variants, which stay held out), random
instrument mixes and random codecs. Each track draws:

- a source (fluidr3 35 %, sfgmbank 25 %, freepats 20 %, physical 12 %, synth 8 %);
- 1-5 instruments (20/20/25/20/15 %) of different labels that the source covers, drums
  among them in 40 % of the ensembles (a few drum solos), a random program for each;
- 9-20 s (3-7 segments), a tempo, key, mode, chord progression and metre;
- what each part plays: a Bach chorale from music21's corpus (one voice per instrument,
  all four on a keyboard solo) for a third of the tracks without drums, else the corpus
  generators (band roles in ensembles), drum grooves without fills;
- levels within +-3 dB, pan, and one of the eight example codecs.

A track whose render fails the level checks (a part silent in a segment) is re-drawn
(``attempt`` 1, 2, ...). Writes OUT/<NNN>_<source>.<ext>, OUT/labels.csv (``path,labels``,
what ``tagger eval`` and the tuner read) and OUT/tracks.jsonl (per track: source, codec,
tempo, parts with program, material, level, and each part's level per 3-s segment).
Deterministic for a seed, like the examples.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .corpus.material import BAND_ROLES, GENERATORS, LABEL_STYLES, PROGRESSIONS, SCALES, _parse_piece
from .corpus.sources import DRUM_BANK, SOUNDFONTS, Coverage, coverage_for
from .make_examples import SEGMENT_SECONDS, TRACKS, Part, Track, render_one, write_manifest
from .stamp import build_arguments, clear_stamp, kept, write_stamp

log = logging.getLogger("training.val_tracks")

# Training sources only, with the share of tracks each renders. TimGM6mb and
# physical_heldout are the held-out sources: never here.
VAL_SOURCES: dict[str, float] = {"fluidr3": 0.35, "sfgmbank": 0.25, "freepats": 0.20, "physical": 0.12, "synth": 0.08}
HELD_OUT_SOURCES = frozenset({"timgm6mb", "physical_heldout"})
N_TRACKS = 100
SEED = 7
MAX_ATTEMPTS = 6
MIN_SECONDS, MAX_SECONDS = 9.0, 20.0  # 3-7 segments of 3 s
INSTRUMENTS_P = {1: 0.20, 2: 0.20, 3: 0.25, 4: 0.20, 5: 0.15}  # instruments per track
DRUMS_P = 0.4  # ensembles with drums
DRUM_SOLO_P = 0.15  # solos that are drums, when the source has a kit
CHORALE_P = 0.35  # tracks without drums that play a chorale
# Grooves whose every bar has no toms or crashes (make_examples keeps fills out).
DRUM_STYLES = ("rock", "funk", "disco", "shuffle", "jazz", "halftime", "bossa", "latin")
KEYBOARDS = frozenset({"piano", "organ", "accordion"})
LEAD_STYLES = frozenset({"melody", "riff", "scale"})  # new material every window
# (extension, PyAV encoder, README format, rate, channels, bit rate): the examples' eight
CODECS = tuple((Path(t.file).suffix, t.codec, t.format, t.rate, t.channels, t.bit_rate) for t in TRACKS)
CHORALES = "bach"  # music21 corpus composer whose four-part chorales are drawn
if any(s in HELD_OUT_SOURCES for s in VAL_SOURCES):
    raise AssertionError("a held-out source among the validation sources")


def _pick(rng: np.random.Generator, weights: dict) -> object:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _chorales() -> list[str]:
    from music21 import corpus

    paths = sorted(str(p) for p in corpus.getComposer(CHORALES))
    rels = ["/".join(Path(p).parts[Path(p).parts.index("corpus") + 1:]) for p in paths]
    return [r for r in rels if r.endswith(".mxl") and Path(r).name.startswith("bwv")]


def _choose_chorale(rng: np.random.Generator, chorales: list[str], min_ql: float) -> str | None:
    """A four-part chorale at least ``min_ql`` quarter lengths long, or None."""
    for i in rng.permutation(len(chorales))[:20]:
        pieces = _parse_piece(chorales[int(i)])
        if pieces and len(pieces[0]["parts"]) >= 4:
            parts = pieces[0]["parts"][:4]
            if min(max(on + d for on, d, _ in p) for p in parts) >= min_ql:
                return chorales[int(i)]
    return None


def _preset_name(source: str, bank: int, program: int) -> str:
    if source in SOUNDFONTS:
        from .corpus.sources import _fluid

        synth, sfid = _fluid(SOUNDFONTS[source])
        return str(synth.sfpreset_name(sfid, bank, program) or "")
    return f"{source} {'kit' if bank == DRUM_BANK else 'program'} {program}"


def plan_track(ti: int, attempt: int, coverage: dict[str, Coverage], seed: int = SEED,
               chorales: list[str] | None = None) -> Track:
    """Track ``ti`` of the set (its ``attempt``-th draw): the sources' ``coverage`` -> a Track."""
    rng = np.random.default_rng([seed, ti, attempt, 17])
    sources = {s: w for s, w in VAL_SOURCES.items() if s in coverage}
    source = str(_pick(rng, sources))
    cov = coverage[source]
    pitched = [lab for lab in cov.labels if lab != "drums"]
    n = min(int(_pick(rng, INSTRUMENTS_P)), len(cov.labels))
    has_kit = "drums" in cov.labels
    drums = has_kit and ((n == 1 and rng.random() < DRUM_SOLO_P) or (n >= 2 and rng.random() < DRUMS_P))
    n_pitched = min(n - int(drums), len(pitched))
    labels = [pitched[i] for i in rng.choice(len(pitched), size=n_pitched, replace=False)]
    # tempo and harmony; a window holds whole chords and lasts <= 3 s
    beats_per_bar = 3 if rng.random() < 0.2 else 4
    chorale = None
    wants_chorale = not drums and bool(chorales) and rng.random() < CHORALE_P
    if wants_chorale:
        bpm = float(np.round(rng.uniform(60, 100)))
    else:
        bpm = float(np.round(rng.uniform(66, 170)))
    beat = 60.0 / bpm
    beats_per_chord = beats_per_bar if beats_per_bar * beat <= SEGMENT_SECONDS else 2
    window_beats = beats_per_chord * max(1, int(SEGMENT_SECONDS // (beats_per_chord * beat)))
    seconds = float(np.round(rng.uniform(MIN_SECONDS, MAX_SECONDS) * 2) / 2)
    if wants_chorale:
        chorale = _choose_chorale(rng, chorales, seconds / beat + 1)
    modes = list(SCALES)
    mode = str(rng.choice(modes, p=[0.4, 0.3, 0.1, 0.12, 0.08]))
    progression = tuple(PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))])
    key = int(rng.integers(12))
    ext, codec, fmt, rate, channels, bit_rate = CODECS[int(rng.integers(len(CODECS)))]
    parts = []
    all_labels = (["drums"] if drums else []) + labels
    for j, label in enumerate(all_labels):
        bank, program = cov.programs[label][int(rng.integers(len(cov.programs[label])))]
        vary = False
        if label == "drums":
            material: tuple = ("drums", str(rng.choice(DRUM_STYLES)))
        elif chorale is not None:
            voices = (0, 1, 2, 3) if n_pitched == 1 and label in KEYBOARDS else (labels.index(label) % 4,)
            material = ("score", chorale, voices, 0.0)
        else:
            if n_pitched > 1 and label in BAND_ROLES and rng.random() < 0.75:
                styles = {r: 1.0 for r in BAND_ROLES[label]}
            else:
                styles = {k: v for k, v in LABEL_STYLES[label].items() if k in GENERATORS}
            style = str(_pick(rng, styles))
            material = ("gen", style)
            vary = style in LEAD_STYLES and rng.random() < 0.6
        parts.append(Part(label, program, _preset_name(source, bank, program), material,
                          gain_db=float(np.round(rng.uniform(-3, 3), 1)),
                          pan=float(np.round(rng.uniform(-0.6, 0.6), 2)) if channels == 2 else 0.0,
                          dyn=float(np.round(rng.uniform(65, 110))), vary=vary))
    style = f"{source}, {'chorale ' + chorale if chorale else 'generated'}, {bpm:g} bpm"
    return Track(f"{ti:03d}_{source}{ext}", codec, fmt, rate, channels, bit_rate, seconds, bpm, window_beats,
                 tuple(parts), key=key, mode=mode, progression=progression, beats_per_chord=beats_per_chord,
                 beats_per_bar=beats_per_bar, style=style, source=source)


def _details(track: Track, attempt: int, row: dict) -> dict:
    d = {"path": track.file, "labels": ";".join(track.labels), "source": track.source, "attempt": attempt,
         "codec": track.codec, "seconds": track.seconds, "segments": math.ceil(track.seconds / SEGMENT_SECONDS),
         "bpm": track.bpm, "key": track.key, "mode": track.mode, "style": track.style}
    d["parts"] = [{**asdict(p), "material": list(p.material), "level_dbfs": [round(x, 1) for x in lv]}
                  for p, lv in zip(track.parts, row["levels"])]
    return d


def render_val_track(ti: int, coverage: dict[str, Coverage], out: Path, seed: int,
                     chorales: list[str]) -> tuple[Track, dict]:
    """Draw and render track ``ti``, re-drawing it when a render fails its checks."""
    errors = []
    for attempt in range(MAX_ATTEMPTS):
        track = plan_track(ti, attempt, coverage, seed, chorales)
        try:
            row = render_one(track, ti, coverage[track.source], out, seed)
        except RuntimeError as exc:  # a silent part, no groove of that style, a render error
            errors.append(f"attempt {attempt}: {exc}")
            log.debug("track %d attempt %d: %s", ti, attempt, exc)
            continue
        return track, _details(track, attempt, row)
    raise RuntimeError(f"track {ti}: no usable render in {MAX_ATTEMPTS} attempts: {'; '.join(errors)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.val_tracks", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output folder (e.g. data/val_tracks)")
    p.add_argument("--tracks", type=int, default=N_TRACKS)
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--reuse", action="store_true",
                   help="keep OUT when it holds finished tracks made with these arguments (OUT/build.json)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    arguments = build_arguments(args)
    if args.reuse and kept(args.out, arguments):
        return 0
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        coverage = {s: coverage_for(s) for s in VAL_SOURCES}
    except FileNotFoundError as exc:
        print(f"error: {exc} (bash scripts/setup_corpus.sh installs the sources)", file=sys.stderr)
        return 2
    chorales = _chorales()
    args.out.mkdir(parents=True, exist_ok=True)
    clear_stamp(args.out)
    t0 = time.monotonic()
    tracks, details = [], []
    for ti in range(args.tracks):
        track, d = render_val_track(ti, coverage, args.out, args.seed, chorales)
        tracks.append(track)
        details.append(d)
        log.info("%s: %.1f s, %s (attempt %d)", track.file, track.seconds, ",".join(track.labels), d["attempt"])
    write_manifest(args.out, tuple(tracks))
    with open(args.out / "tracks.jsonl", "w") as fh:
        for d in details:
            fh.write(json.dumps(d) + "\n")
    write_stamp(args.out, arguments)
    n_labels = [len(t.labels) for t in tracks]
    print(f"{len(tracks)} validation tracks ({sum(t.seconds for t in tracks) / 60:.1f} min of audio, "
          f"{np.mean(n_labels):.1f} labels per track) written to {args.out} in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
