"""Score weights files on the held-out sets and print one table row per model.

    python -m training.heldout weights/a.safetensors runs/b/*.safetensors --data data [--json out.json]

The held-out sets are sound no model was trained or tuned on (see training/rebuild.sh):

| set | what |
| --- | --- |
| `test` | TimGM6mb (never trained on), seed 2: single instruments and 2-4-instrument mixtures |
| `test_vocal` | the very same clips with a held-out voice on top (festival's female `lp` voice, its HTS voice `slt`, unseen espeak-ng variants) |
| `voice_only` | held-out voices alone: no instrument label should be given |
| `voice_accomp` | held-out voices over quiet TimGM6mb accompaniment (14-24 dB down): labelled `voice` only |
| `test2`, `test2_vocal`, `voice_only2` | more of the same: 1500 TimGM6mb mixtures (seed 19) without and with a held-out voice, and more held-out voices alone (seed 20) |
| `physical` | the project's physical models in variants training never used (when built) |
| `recorded` | recorded instrument samples from Debian's lmms-common and sonic-pi-samples, alone and mixed (training/recorded.py; when built) |
| `recorded2` | more, longer recordings (gcompris-qt-data, grandorgue-demo, hydrogen-drumkits-effects, fretsonfire-songs-muldjord, csoundqt-examples), alone and mixed (training/recorded.py; when built) |
| `negatives` | label-free non-instrument sound (tones, sweeps, sine chords, noise, clicks, beeps, hum, held-out game sound effects): no instrument label should be given (training/negatives.py; when built) |
| `band` | a metal band's songs as mixed (fretsonfire-songs-muldjord's guitar and backing stems summed), 10-s windows; truth partial: `electric_guitar` (training/band.py; when built) |

Features are cached under ``DATA/cache``, so scoring another model costs only the network.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tagger.datasets import Dataset, read_manifest
from tagger.evaluate import Evaluation, evaluate
from tagger.labels import instrument_columns
from tagger.metrics import classification_report
from tagger.weights import load_checkpoint
from training.band import figures as band_figures
from training.corpus.voices import VOICE_STYLES

log = logging.getLogger("training.heldout")

RowFilter = Callable[[dict], bool]
# name -> (corpus folder under DATA, which manifest rows)
HELDOUT_SETS: dict[str, tuple[str, RowFilter | None]] = {
    "test": ("corpus_test", None),
    "test_vocal": ("corpus_test_vocal", None),
    "voice_only": ("corpus_voice_test", lambda row: row["programs"] == ""),
    "voice_accomp": ("corpus_voice_test", lambda row: row["programs"] != ""),
    "test2": ("corpus_test2", None),
    "test2_vocal": ("corpus_test2_vocal", None),
    "voice_only2": ("corpus_voice_test2", lambda row: row["programs"] == ""),
    "physical": ("corpus_physical_test", None),  # physical_heldout variants, classic effects
    "recorded": ("corpus_recorded", None),  # recorded samples, no effects (training/recorded.py)
    "recorded2": ("corpus_recorded2", None),  # more recorded phrases and notes, no effects (the same)
    "negatives": ("corpus_negatives_test", None),  # label-free negatives, held-out split (training/negatives.py)
    "band": ("corpus_band", None),  # a band's songs as mixed, truth partial (training/band.py)
}
# (without, with a voice on top): the same mixtures, the voice penalty is the F1 they lose
VOCAL_PAIRS = (("test", "test_vocal"), ("test2", "test2_vocal"))
VOICE_ONLY = ("voice_only", "voice_only2")
COLUMNS = ("top1_single", "mixtures_micro_f1", "mixtures_precision", "mixtures_recall",
           "mixtures_invented_per_item", "no_instrument_clean", "mAP")


def read_set(folder: Path, keep: RowFilter | None) -> Dataset | None:
    """The set's items (rows ``keep`` picks), or None when it has not been built."""
    manifest = folder / "manifest.csv"
    return read_manifest(manifest, keep) if manifest.exists() else None


def score(model: Path, data: Path, sets: list[str], jobs: int) -> dict[str, dict]:
    ckpt = load_checkpoint(model)
    out: dict[str, dict] = {}
    scored: dict[str, tuple[Dataset, Evaluation]] = {}
    for name in sets:
        folder, keep = HELDOUT_SETS[name]
        ds = read_set(data / folder, keep)
        if ds is None:
            log.info("%s: no %s, skipped", name, data / folder)
            continue
        ev = evaluate(ckpt, ds, torch.device("cpu"), jobs, data / "cache")
        scored[name] = (ds, ev)
        out[name] = {k: ev.metrics[k] for k in (*COLUMNS, "items", "per_label") if k in ev.metrics}
        if name == "band":  # partial truth: the guitar's recall and what else is named
            out[name].update(band_figures(ev.labels, ev.y_pred))
    if "test" in out and "test_vocal" in out:
        out["voice_penalty"] = {"mixtures_micro_f1": out["test"]["mixtures_micro_f1"]
                                - out["test_vocal"]["mixtures_micro_f1"]}
        styles = voice_styles(data / HELDOUT_SETS["test_vocal"][0])
        if styles:
            out["voice_penalty"]["by_style"] = penalty_by_style(scored["test"], scored["test_vocal"], styles)
    pairs = [(scored[a], scored[b]) for a, b in VOCAL_PAIRS if a in scored and b in scored]
    alone = [scored[name] for name in VOICE_ONLY if name in scored]
    if len(pairs) > 1 or len(alone) > 1:
        out["voices_pooled"] = pooled_voice_figures(pairs, alone)
    return out


Row = tuple[np.ndarray, np.ndarray]  # (instruments a clip has, instruments predicted)


def _instrument_table(pair: tuple[Dataset, Evaluation]) -> dict[str, Row]:
    """Clip file name -> its row."""
    ds, ev = pair
    instrument = instrument_columns(ev.labels)
    y_pred = ev.y_pred[:, instrument]
    return {item.path.name: (ev.y_true[i, instrument].astype(bool), y_pred[i]) for i, item in enumerate(ds.items)}


def _paired_mixtures(clean: tuple[Dataset, Evaluation], vocal: tuple[Dataset, Evaluation]) -> dict[str, tuple[Row, Row]]:
    """Clip file name -> (its row without the voice, with it), for the mixtures (2+ instruments)
    that are in both sets: the vocal set is the clean one with a voice on top, same names."""
    without, with_voice = _instrument_table(clean), _instrument_table(vocal)
    return {n: (row, with_voice[n]) for n, row in without.items() if n in with_voice and row[0].sum() >= 2}


def _micro_f1(rows: list[Row]) -> float:
    truth, pred = np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])
    return classification_report(truth, pred, [str(j) for j in range(truth.shape[1])])["micro_f1"]


def pooled_voice_figures(pairs: list[tuple[tuple[Dataset, Evaluation], tuple[Dataset, Evaluation]]],
                         alone: list[tuple[Dataset, Evaluation]]) -> dict:
    """The voice targets on every held-out voice set at once: the mixtures micro-F1 lost to a
    voice on top over the mixtures of all ``pairs``, and the share of all voice-alone clips
    that get no instrument label."""
    out: dict = {}
    if pairs:
        rows = [both for clean, vocal in pairs for both in _paired_mixtures(clean, vocal).values()]
        without, with_voice = _micro_f1([r[0] for r in rows]), _micro_f1([r[1] for r in rows])
        out.update(mixtures_items=len(rows), mixtures_f1_without_voice=without, mixtures_f1_with_voice=with_voice,
                   voice_penalty=without - with_voice)
    counted = [ev.metrics for _, ev in alone if "no_instrument_items" in ev.metrics]  # evaluate's own figure
    if counted:
        n = sum(m["no_instrument_items"] for m in counted)
        out.update(no_instrument_items=n,
                   no_instrument_clean=sum(m["no_instrument_clean"] * m["no_instrument_items"] for m in counted) / n)
    return out


def voice_styles(corpus: Path) -> dict[str, str]:
    """Clip file name -> the style of the voice on top of it (a key of VOICE_STYLES: the first
    word of the voice's description among the clip's effects)."""
    details = corpus / "details.jsonl"
    if not details.exists():
        return {}
    out = {}
    with open(details, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            words = [effect.split(" ", 1)[0] for effect in row["effects"]]
            style = next((w for w in words if w in VOICE_STYLES), None)
            if style:
                out[Path(row["path"]).name] = style
    return out


def penalty_by_style(clean: tuple[Dataset, Evaluation], vocal: tuple[Dataset, Evaluation],
                     styles: dict[str, str]) -> dict[str, dict]:
    """Mixtures micro-F1 of the clips without and with their voice, per style of that voice.

    The vocal set is the clean one with a voice on top of each clip, under the same file
    names; a mixture is a clip of 2+ instruments.
    """
    paired = _paired_mixtures(clean, vocal)
    out = {}
    for style in VOICE_STYLES:
        group = [rows for n, rows in paired.items() if styles.get(n) == style]
        if not group:
            continue
        without, with_voice = _micro_f1([r[0] for r in group]), _micro_f1([r[1] for r in group])
        out[style] = {"mixtures": len(group), "without": without, "with": with_voice, "penalty": without - with_voice}
    return out


def table(results: dict[str, dict[str, dict]]) -> str:
    """Markdown: one row per model, the headline figure of each set."""
    head = ("| model | test top-1 | test mix F1 (P / R) | invented per mix | with voice: mix F1 (P / R) "
            "| voice only: clean | voice + accomp.: clean of instruments | physical top-1 | recorded top-1 "
            "| recorded mix F1 (P / R) | recorded2 top-1 | recorded2 mix F1 (P / R) | band: electric_guitar recall "
            "| band: synthesizer share | negatives: clean |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for model, r in results.items():
        def f(name: str, key: str) -> str:
            v = r.get(name, {}).get(key)
            return "" if v is None else f"{v:.3f}"

        def prf(name: str) -> str:
            if name not in r:
                return ""
            return f"{f(name, 'mixtures_micro_f1')} ({f(name, 'mixtures_precision')} / {f(name, 'mixtures_recall')})"

        lines.append(f"| {model} | {f('test', 'top1_single')} | {prf('test')} | {f('test', 'mixtures_invented_per_item')} "
                     f"| {prf('test_vocal')} | {f('voice_only', 'no_instrument_clean')} "
                     f"| {f('voice_accomp', 'no_instrument_clean')} "
                     f"| {f('physical', 'top1_single')} | {f('recorded', 'top1_single')} | {prf('recorded')} "
                     f"| {f('recorded2', 'top1_single')} | {prf('recorded2')} "
                     f"| {f('band', 'electric_guitar_recall')} | {f('band', 'synthesizer_share')} "
                     f"| {f('negatives', 'no_instrument_clean')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.heldout", description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--data", type=Path, default=Path("data"), help="folder holding the corpora (default data)")
    p.add_argument("--sets", default=",".join(HELDOUT_SETS), help="comma-separated held-out sets")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", type=Path, help="write every figure here as JSON")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sets = [s for s in args.sets.split(",") if s]
    results = {m.stem: score(m, args.data, sets, args.jobs) for m in args.models}
    print(table(results))
    for model, r in results.items():
        by_style = r.get("voice_penalty", {}).get("by_style", {})
        if by_style:
            print(f"{model}: voice penalty {r['voice_penalty']['mixtures_micro_f1']:.3f}; by the voice on top: "
                  + ", ".join(f"{k} {v['penalty']:.3f} ({v['mixtures']} mixtures)" for k, v in by_style.items()))
        pooled = r.get("voices_pooled", {})
        if "voice_penalty" in pooled:
            print(f"{model}: every held-out voice set: voice penalty {pooled['voice_penalty']:.3f} on "
                  f"{pooled['mixtures_items']} mixtures ({pooled['mixtures_f1_without_voice']:.3f} -> "
                  f"{pooled['mixtures_f1_with_voice']:.3f})"
                  + (f"; voice alone clean {pooled['no_instrument_clean']:.3f} of {pooled['no_instrument_items']} clips"
                     if "no_instrument_clean" in pooled else ""))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
