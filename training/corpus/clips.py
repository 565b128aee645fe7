"""Plan the corpus (which clips, which labels, which source) and render one clip.

Label rule (see training/CORPUS.md):

- ``single``: one instrument alone; labels = that instrument.
- ``predominant``: one instrument over 1-3 others each 14-24 dB below it (RMS over the
  clip); labels = the predominant instrument only (IRMAS-style).
- ``mix``: 2-4 instruments, each stem's RMS within +-3 dB of a common level, so any two
  are within 6 dB; labels = all of them.
- ``voice``: a voice (singing, a choir, speech) alone, or over 1-3 instruments each 14-24
  dB below it; labels = ``voice`` only.
- ``vocals`` (a share of the other kinds, ``BuildConfig.vocals``): a voice on top of the
  clip at the instruments' level (-6 to +3 dB re the common level; re the predominant
  instrument for ``predominant``, where it is then not labelled, 14-24 dB down); the
  instruments' labels are unchanged and ``voice`` is added when the voice is at their level.
  The voice draws from its own random stream, so a build with ``vocals=1`` has the very
  same instrument parts as one with ``vocals=0`` (paired held-out sets).

Every stem is rendered on its own and mixed at the chosen level, so the rule is exact.

A sampler source of one label (``GUEST_SOURCES``: ``salamander``, the piano) has single
clips of its own, and, when it is among the build's sources, plays a share
``GUEST_SHARE`` of that label's parts in the other sources' predominant, mix and voice
clips (the manifest's ``programs`` names it, e.g. ``piano=salamander:0:0``). That choice
draws from a third random stream, so the other stems are those of a build without it.
Each clip's randomness comes from ``default_rng([seed, clip index, attempt])``: clips
render identically whatever the worker count or order.
"""
from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from tagger.labels import BUNDLED_LABELS, VOICE_LABEL

from .audio import (CLIP_SAMPLES, RENDER_SAMPLES, SAMPLE_RATE, SILENCE_RMS, active_fraction,
                    db_to_gain, rms)
from .effects import AugmentConfig, augment, produce_stem, random_lossy
from .material import (BAND_ROLES, GENERATORS, LABEL_STYLES, MusicContext, Phrase, ScoreLibrary,
                       add_bend, choose_window, drum_phrase, playable_range, random_context,
                       score_phrase)
from .sources import Coverage, RenderError, Stem, render_stems
from .voices import VoiceError, render_voice

log = logging.getLogger(__name__)

KINDS = ("single", "predominant", "mix", "voice")
VOCALS_DB = (-6.0, 3.0)  # a voice on top of a clip, re the instruments' common level
VOICE_ATTEMPTS = 4  # voice renders tried (own random stream) before the clip is re-drawn
MAX_ATTEMPTS = 6  # a silent or unusable render is retried with a new seed this many times
TARGET_ACTIVE_FRACTION = 0.3  # a labelled stem must sound in >= 30 % of the clip's frames
PREDOMINANT_ACCOMPANIMENT_DB = (-24.0, -14.0)  # each accompanying stem, re the predominant
MIX_SPREAD_DB = 3.0  # mix stems at 0 +- 3 dB: any two within 6 dB
PEAK_DBFS = (-20.0, -1.0)  # final peak level of a clip (levels vary across the corpus)
KEYBOARDS = ("piano", "organ", "accordion")
# source -> the one label it plays in the other sources' clips, and how often it takes that part
GUEST_SOURCES: dict[str, str] = {"salamander": "piano"}
GUEST_SHARE = 0.5
BENDING = {"electric_guitar": 0.3, "synthesizer": 0.15, "saxophone": 0.1, "bass": 0.1, "trombone": 0.1}


@dataclass(frozen=True)
class ClipSpec:
    index: int
    kind: str  # one of KINDS
    source: str
    labels: tuple[str, ...]  # the clip's labels (single/predominant: exactly one)


@dataclass(frozen=True)
class BuildConfig:
    out_dir: Path
    seed: int
    coverage: dict[str, Coverage]
    score_cache: Path | None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    audio_format: str = "flac"
    vocals: float = 0.0  # share of single/predominant/mix clips that get a voice on top
    voice_split: str = "train"  # voices.VOICE_SPLITS: "train", or "heldout" for evaluation sets
    voice_styles: dict[str, float] | None = None  # weights of voices.VOICE_STYLES (None: its own)


# ---------------------------------------------------------------------------- planning

# Share of a label's clips a source gets, relative to 1.0 for a soundfont. Our own
# synthesiser imitates only a few timbres per label, so it gets half a share, except
# for "synthesizer" where it is as genuine as any soundfont. The physical models draw a
# new instrument per stem (hundreds of timbres per label): a full share for every label
# they cover.
SOURCE_WEIGHTS: dict[str, float] = {"synth": 0.5, "physical": 1.0, "physical_heldout": 1.0}
FULL_WEIGHT_LABELS: dict[str, tuple[str, ...]] = {"synth": ("synthesizer",)}


def _source_weight(source: str, label: str | None) -> float:
    if label is not None and label in FULL_WEIGHT_LABELS.get(source, ()):
        return 1.0
    return SOURCE_WEIGHTS.get(source, 1.0)


def _weighted_round_robin(items: list[str], weights: list[float], n: int) -> list[str]:
    """n picks whose counts follow the weights, evenly interleaved (smooth WRR)."""
    current = [0.0] * len(items)
    total = sum(weights)
    out = []
    for _ in range(n):
        current = [c + w for c, w in zip(current, weights)]
        i = max(range(len(items)), key=lambda k: current[k])
        current[i] -= total
        out.append(items[i])
    return out



def plan_clips(sources: list[str], coverage: dict[str, Coverage], labels: list[str],
               kinds: list[str], clips_per_label: int, mixtures: int, seed: int) -> list[ClipSpec]:
    """Per label (of ``labels``) and kind, ``clips_per_label`` clips spread evenly over the sources that
    cover the label; then ``mixtures`` mixes spread over the sources, favouring labels
    that have appeared in fewer mixes so far (balanced co-occurrence)."""
    rng = np.random.default_rng([seed, 7919])
    specs: list[ClipSpec] = []
    for kind in ("single", "predominant"):
        if kind not in kinds:
            continue
        for li, label in enumerate(lab for lab in BUNDLED_LABELS if lab in labels):
            covering = [s for s in sources if label in coverage[s].labels]
            if kind == "predominant":  # needs something else to accompany it
                covering = [s for s in covering if len(coverage[s].labels) >= 2]
            if not covering:
                log.warning("no selected source covers %s (%s clips skipped)", label, kind)
                continue
            rotated = covering[li % len(covering):] + covering[:li % len(covering)]
            weights = [_source_weight(s, label) for s in rotated]
            for source in _weighted_round_robin(rotated, weights, clips_per_label):
                specs.append(ClipSpec(len(specs), kind, source, (label,)))
    if "voice" in kinds:  # as many as a label gets of each kind, over every source
        for source in _weighted_round_robin(list(sources), [1.0] * len(sources), clips_per_label):
            specs.append(ClipSpec(len(specs), "voice", source, (VOICE_LABEL,)))
    if "mix" in kinds and mixtures > 0 and len(labels) >= 2:
        usable = {s: [lab for lab in coverage[s].labels if lab in labels] for s in sources}
        mix_sources = [s for s in sources if len(usable[s]) >= 2]
        if not mix_sources:
            log.warning("no selected source covers two of the labels: no mixtures")
        counts: Counter[str] = Counter()
        order = _weighted_round_robin(mix_sources, [_source_weight(s, None) for s in mix_sources],
                                      mixtures if mix_sources else 0)
        for source in order:
            available = usable[source]
            k = min(int(rng.choice([2, 3, 4], p=[0.4, 0.35, 0.25])), len(available))
            w = np.array([1.0 / (1 + counts[lab]) ** 2 for lab in available])
            chosen = rng.choice(len(available), size=k, replace=False, p=w / w.sum())
            labels = tuple(sorted(available[i] for i in chosen))
            counts.update(labels)
            specs.append(ClipSpec(len(specs), "mix", source, labels))
    return specs


# ---------------------------------------------------------------------------- material per stem

_LIBRARIES: dict[Path, ScoreLibrary] = {}


def _library(cfg: BuildConfig) -> ScoreLibrary:
    if cfg.score_cache is None or not Path(cfg.score_cache).exists():
        return ScoreLibrary([])
    if cfg.score_cache not in _LIBRARIES:  # once per worker process
        _LIBRARIES[cfg.score_cache] = ScoreLibrary.load(cfg.score_cache)
    return _LIBRARIES[cfg.score_cache]


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _generated(rng, ctx, label, program, dyn, styles: dict[str, float]) -> Phrase:
    lo, hi = playable_range(label, program)
    styles = {k: v for k, v in styles.items() if k in GENERATORS} or {"melody": 1.0}
    return GENERATORS[_pick(rng, styles)](rng, ctx, lo, hi, dyn)


def _phrase_alone(rng, ctx, label, program, dyn, library) -> Phrase:
    """Material for an instrument heard on its own (or as the predominant one)."""
    lo, hi = playable_range(label, program)
    style = _pick(rng, LABEL_STYLES[label])
    if style in ("score", "score_poly") and len(library):
        n_parts = int(rng.integers(2, 5)) if style == "score_poly" else 1
        phrase = score_phrase(rng, library, ctx, lo, hi, dyn, n_parts=n_parts)
        if phrase is not None:
            return phrase
    return _generated(rng, ctx, label, program, dyn, LABEL_STYLES[label])


def _phrase_in_band(rng, ctx, label, program, dyn) -> Phrase:
    """Generated material that fits a shared chord progression (mixtures, accompaniment)."""
    if label in BAND_ROLES and rng.random() < 0.75:
        return _generated(rng, ctx, label, program, dyn, {r: 1.0 for r in BAND_ROLES[label]})
    styles = {k: v for k, v in LABEL_STYLES[label].items() if not k.startswith("score")}
    return _generated(rng, ctx, label, program, dyn, styles)


def make_stems(rng: np.random.Generator, ctx: MusicContext, labels: list[str], kind: str,
               coverage: Coverage, library: ScoreLibrary) -> list[Stem]:
    """Choose a program and material for each stem; stems of one clip share ``ctx``."""
    programs = [coverage.programs[lab][int(rng.integers(len(coverage.programs[lab])))] for lab in labels]
    dyns = [float(rng.uniform(40, 118)) for _ in labels]
    pitched = [i for i, lab in enumerate(labels) if lab != "drums"]
    ensemble = None  # (piece, start_ql, parts) when the stems play one score together
    if kind != "single" and len(library) and len(pitched) >= 2 and rng.random() < 0.45:
        pi = int(rng.integers(len(library)))
        parts = library.pieces[pi]["parts"]
        start = choose_window(rng, parts[0], ctx.bpm)
        if start is not None:
            ensemble = (pi, start, len(parts))
    stems = []
    for i, (label, (bank, program)) in enumerate(zip(labels, programs)):
        if label == "drums":
            phrase = drum_phrase(rng, ctx, dyns[i], coverage.drum_keys)
        elif ensemble is not None:
            pi, start, n_parts = ensemble
            j = pitched.index(i)
            part_indices = [j % n_parts]
            if label in KEYBOARDS and n_parts >= 3 and rng.random() < 0.5:
                part_indices = sorted({j % n_parts, (j + 1) % n_parts})
            lo, hi = playable_range(label, program)
            phrase = score_phrase(rng, library, ctx, lo, hi, dyns[i], piece_index=pi,
                                  part_indices=part_indices, start_ql=start)
            if phrase is None:
                phrase = _phrase_in_band(rng, ctx, label, program, dyns[i])
        elif kind == "single" or (kind == "predominant" and i == 0):
            phrase = _phrase_alone(rng, ctx, label, program, dyns[i], library)
        else:
            phrase = _phrase_in_band(rng, ctx, label, program, dyns[i])
        if rng.random() < BENDING.get(label, 0.0):
            phrase = add_bend(rng, phrase)
        stems.append(Stem(label, bank, program, phrase))
    return stems


# ---------------------------------------------------------------------------- rendering


@dataclass
class RenderedClip:
    audio: np.ndarray  # (CLIP_SAMPLES,) float32
    stems: list[Stem]
    gains_db: list[float]
    bpm: float
    effects: list[str]
    labels: tuple[str, ...]  # the spec's, plus ``voice`` when one was added at the instruments' level
    stem_sources: list[str]  # the source that rendered each stem


def _stem_labels(rng, spec: ClipSpec, coverage: Coverage) -> list[str]:
    if spec.kind == "single":
        return [spec.labels[0]]
    if spec.kind == "voice":  # the instruments under the voice, or none
        n = int(rng.integers(0, 4)) if rng.random() < 0.5 else 0
        n = min(n, len(coverage.labels))
        return [coverage.labels[i] for i in rng.choice(len(coverage.labels), size=n, replace=False)]
    if spec.kind == "predominant":
        others = [lab for lab in coverage.labels if lab != spec.labels[0]]
        n = min(int(rng.integers(1, 4)), len(others))
        return [spec.labels[0]] + [others[i] for i in rng.choice(len(others), size=n, replace=False)]
    return [spec.labels[i] for i in rng.permutation(len(spec.labels))]


def _voice_part(vrng: np.random.Generator, ctx, window: slice, cfg: BuildConfig) -> tuple[np.ndarray, float, str] | None:
    """A voice that sounds in enough of the clip: (audio, its RMS in the window, description)."""
    for _ in range(VOICE_ATTEMPTS):
        try:
            audio, desc = render_voice(vrng, ctx, cfg.voice_split, weights=cfg.voice_styles)
        except VoiceError as exc:
            raise RenderError(str(exc)) from exc
        level = rms(audio[window])
        if level >= SILENCE_RMS and active_fraction(audio[window]) >= TARGET_ACTIVE_FRACTION:
            return audio, level, desc
    return None


def guest_sources(spec: ClipSpec, cfg: BuildConfig, stems: list[Stem], grng: np.random.Generator) -> list[str]:
    """The source of each stem: the clip's own, or (a share GUEST_SHARE of its label's parts in
    the other sources' multi-part clips) a selected guest source of that label."""
    out = [spec.source] * len(stems)
    if spec.kind == "single":
        return out
    for i, stem in enumerate(stems):
        guests = [g for g, label in GUEST_SOURCES.items()
                  if label == stem.label and g in cfg.coverage and g != spec.source]
        if guests and grng.random() < GUEST_SHARE:
            out[i] = guests[int(grng.integers(len(guests)))]
    return out


def _render_parts(spec: ClipSpec, cfg: BuildConfig, stems: list[Stem], sources: list[str],
                  seed: int) -> tuple[list[Stem], list[np.ndarray]]:
    """Each stem rendered by its source (a guest plays its own program of the label)."""
    stems = [s if src == spec.source else Stem(s.label, *cfg.coverage[src].programs[s.label][0], s.phrase)
             for s, src in zip(stems, sources)]
    audio: list[np.ndarray | None] = [None] * len(stems)
    for src in dict.fromkeys(sources):
        idx = [i for i, s in enumerate(sources) if s == src]
        for i, a in zip(idx, render_stems(src, [stems[i] for i in idx], cfg.coverage[src], seed)):
            audio[i] = a
    return stems, audio


def _try_render(spec: ClipSpec, cfg: BuildConfig, rng: np.random.Generator,
                vrng: np.random.Generator, grng: np.random.Generator) -> RenderedClip | None:
    coverage = cfg.coverage[spec.source]
    ctx = random_context(rng)
    labels = _stem_labels(rng, spec, coverage)
    stems = make_stems(rng, ctx, labels, spec.kind, coverage, _library(cfg))
    if any(not s.phrase.notes for s in stems):
        return None
    seed = int(rng.integers(2**31)) if stems else 0
    sources = guest_sources(spec, cfg, stems, grng)
    stems, audio = _render_parts(spec, cfg, stems, sources, seed) if stems else ([], [])
    pre = int(rng.integers(0, RENDER_SAMPLES - CLIP_SAMPLES + 1))
    window = slice(pre, pre + CLIP_SAMPLES)
    levels = [rms(a[window]) for a in audio]
    if levels and min(levels) < SILENCE_RMS:
        log.debug("clip %d: silent stem %s", spec.index, [s.label for s, r in zip(stems, levels) if r < SILENCE_RMS])
        return None
    n_targets = len(stems) if spec.kind == "mix" else (0 if spec.kind == "voice" else 1)
    if any(active_fraction(audio[i][window]) < TARGET_ACTIVE_FRACTION for i in range(n_targets)):
        return None
    if spec.kind == "single":
        gains_db = [0.0]
    elif spec.kind in ("predominant", "voice"):
        first = [] if spec.kind == "voice" else [0.0]
        gains_db = first + [float(rng.uniform(*PREDOMINANT_ACCOMPANIMENT_DB)) for _ in stems[len(first):]]
    else:
        gains_db = [float(rng.uniform(-MIX_SPREAD_DB, MIX_SPREAD_DB)) for _ in stems]
    mix = np.zeros(RENDER_SAMPLES, dtype=np.float32)
    effects: list[str] = []
    for a, stem, level, g in zip(audio, stems, levels, gains_db):
        # per-stem production keeps the stem's RMS over the clip, so the levels hold
        a, stem_effects = produce_stem(a, stem.label, rng, cfg.augment, bpm=ctx.bpm, window=window)
        effects += stem_effects
        mix += a * np.float32(db_to_gain(g) / level)
    clip_labels = spec.labels
    if spec.kind == "voice" or vrng.random() < cfg.vocals:
        voice = _voice_part(vrng, ctx, window, cfg)
        if voice is None:
            return None
        voice_audio, voice_level, desc = voice
        # the voice's production draws from its own stream too, so paired builds stay paired
        voice_audio, voice_effects = produce_stem(voice_audio, VOICE_LABEL, vrng, cfg.augment, bpm=ctx.bpm, window=window)
        if spec.kind in ("voice", "predominant"):
            gain_db = 0.0 if spec.kind == "voice" else float(vrng.uniform(*PREDOMINANT_ACCOMPANIMENT_DB))
        else:
            gain_db = float(vrng.uniform(*VOCALS_DB))
        mix += voice_audio * np.float32(db_to_gain(gain_db) / voice_level)
        if spec.kind in ("single", "mix"):
            clip_labels = tuple(sorted(clip_labels + (VOICE_LABEL,)))
        effects += [f"{desc} at {gain_db:+.1f} dB", *voice_effects]
    mix, bus_effects = augment(mix, rng, cfg.augment)
    effects += bus_effects
    peak = float(np.max(np.abs(mix[window])))
    if peak <= 0:
        return None
    mix *= np.float32(db_to_gain(rng.uniform(*PEAK_DBFS)) / peak)
    if rng.random() < cfg.augment.lossy_prob:
        mix, desc = random_lossy(mix, rng)
        effects.append(desc)
    clip = np.clip(mix[window], -1.0, 1.0).astype(np.float32)
    if len(clip) != CLIP_SAMPLES or rms(clip) < SILENCE_RMS:
        return None
    return RenderedClip(clip, stems, gains_db, ctx.bpm, effects, clip_labels, sources)


def clip_path(spec: ClipSpec, audio_format: str) -> str:
    return f"clips/{spec.index:06d}_{spec.kind}_{spec.source}.{audio_format}"


def render_clip(spec: ClipSpec, cfg: BuildConfig) -> dict | None:
    """Render, check and write one clip; returns its manifest/details row, or None."""
    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng([cfg.seed, spec.index, attempt])
        vrng = np.random.default_rng([cfg.seed, spec.index, attempt, 1])  # the voice's own stream
        grng = np.random.default_rng([cfg.seed, spec.index, attempt, 2])  # which stems a guest plays
        try:
            result = _try_render(spec, cfg, rng, vrng, grng)
        except RenderError as exc:
            log.warning("clip %d attempt %d: %s", spec.index, attempt, exc)
            result = None
        if result is None:
            continue
        rel = clip_path(spec, cfg.audio_format)
        path = Path(cfg.out_dir) / rel
        if cfg.audio_format == "flac":
            sf.write(path, result.audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        else:
            sf.write(path, result.audio, SAMPLE_RATE, format="WAV", subtype="FLOAT")
        return {
            "path": rel,
            "labels": ";".join(result.labels),
            "source": spec.source,
            "kind": spec.kind,
            "programs": ";".join(f"{s.label}=" + (f"{src}:" if src != spec.source else "") + f"{s.bank}:{s.program}"
                                 for s, src in zip(result.stems, result.stem_sources)),
            "details": {
                "index": spec.index, "attempt": attempt, "bpm": round(result.bpm, 1),
                "stems": [{"label": s.label, "bank": s.bank, "program": s.program,
                           "origin": s.phrase.origin, "gain_db": round(g, 2),
                           **({"source": src} if src != spec.source else {})}
                          for s, g, src in zip(result.stems, result.gains_db, result.stem_sources)],
                "effects": result.effects,
            },
        }
    log.warning("clip %d (%s %s %s) gave up after %d attempts", spec.index, spec.kind,
                spec.source, ",".join(spec.labels), MAX_ATTEMPTS)
    return None


MANIFEST_COLUMNS = ("path", "labels", "source", "kind", "programs")


def write_manifest(path: Path, rows: list[dict]) -> None:
    """A corpus's manifest.csv: the MANIFEST_COLUMNS of each row (its other keys left out)."""
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def write_details(path: Path, rows: list[dict]) -> None:
    with open(path, "w") as fh:
        for row in rows:
            fh.write(json.dumps({"path": row["path"], **row["details"]}) + "\n")
