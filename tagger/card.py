"""The model card as a person reads it (``tagger info``), from a weights file's header only.

Generic over what the card holds: the sections this module knows (description, per-label
table, held-out figures, data, training, speed, weaknesses) are laid out for reading, and
any other key is still shown, in a plain form, under "Also in the card". A held-out set is
any card entry that is a dict of metrics (with ``per_label`` or a figure like ``mAP``), so
a new one (a voice set, another corpus) gets its own column and row without code here.
No torch import: this runs in a fraction of a second.
"""
from __future__ import annotations

import math

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .weights import Checkpoint

# Figures of a held-out set, in reading order, with their names for people.
FIGURES = {
    "items": "files", "mAP": "mAP", "micro_f1": "micro-F1", "micro_precision": "micro precision",
    "micro_recall": "micro recall", "macro_f1": "macro-F1", "top1_single": "top-1, single instrument",
    "mixtures_items": "mixtures (files)", "mixtures_micro_f1": "mixtures micro-F1", "mixtures_precision": "mixtures precision",
    "mixtures_recall": "mixtures recall", "mixtures_invented_per_item": "mixtures: labels invented per file",
    "no_instrument_items": "no instrument (files)", "no_instrument_clean": "no instrument: share left unlabelled",
}
METRIC_HINTS = ("mAP", "micro_f1", "macro_f1", "top1_single", "no_instrument_clean")
TRAINING_KEYS = ("train_data", "train_files", "validation_data", "validation_files", "command", "trained_at", "epoch",
                 "tagger_version", "settings")
SHOWN_ELSEWHERE = {"description", "corpus", "speed", "weaknesses", "labels", "arch"}


def card_dict(ckpt: Checkpoint, path: Path, tagger_version: str) -> dict:
    """What ``tagger info --json`` prints: the header's facts and the card as stored."""
    return {
        "model": ckpt.version, "file": str(path), "tagger": tagger_version, "arch": ckpt.config.arch,
        "labels": list(ckpt.labels), "thresholds": ckpt.thresholds, "frontend": ckpt.frontend.to_dict(),
        "aggregation": ckpt.aggregation, "card": ckpt.card,
    }


def _is_metrics(v: Any) -> bool:
    return isinstance(v, Mapping) and ("per_label" in v or any(isinstance(v.get(f), float) for f in METRIC_HINTS))


def heldout_sets(card: Mapping[str, Any]) -> list[tuple[str, str, Mapping]]:
    """(card key, name, figures) of every held-out set, validation and test first.

    A set is a card entry that is a dict of figures (``validation``, ``test``, ``test_vocal``),
    or such a dict one level down (``heldout: {voice_only: {...}}`` gives ``heldout voice_only``).
    """
    found: list[tuple[str, str, Mapping]] = []
    for k, v in card.items():
        if _is_metrics(v):
            found.append((k, k, v))
        elif isinstance(v, Mapping) and any(_is_metrics(x) for x in v.values()):
            found += [(k, f"{k} {name}", x) for name, x in v.items() if _is_metrics(x)]
    first = [f for key in ("validation", "test") for f in found if f[1] == key]
    return first + [f for f in found if f not in first]


def _title(key: str) -> str:
    return key.replace("_", " ")


def _num(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):  # a figure the set cannot have (top-1 of a set without single clips)
            return "–"
        return f"{v:.3f}" if abs(v) < 10 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def plain(v: Any) -> str:
    """Any card value as one readable line: lists joined, dicts as ``key value`` pairs."""
    if isinstance(v, Mapping):
        return ", ".join(f"{_title(str(k))} {plain(x)}" if not isinstance(x, Mapping) else f"{_title(str(k))} ({plain(x)})"
                         for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return "; ".join(plain(x) for x in v) if any(isinstance(x, Mapping) for x in v) else ", ".join(plain(x) for x in v)
    if v is None:
        return "–"
    return _num(v)


def _corpus_line(entry: Any) -> str:
    """One line per corpus: name, clips, sources and kinds; per-label counts as a range."""
    if not isinstance(entry, Mapping):
        return plain(entry)
    name = entry.get("folder") or entry.get("name") or "corpus"
    parts = [f"[bold]{escape(str(name))}[/]"]
    if "clips" in entry:
        parts.append(f"{_num(entry['clips'])} clips")
    for key, value in entry.items():
        if key in ("folder", "name", "clips"):
            continue
        if key == "clips_per_label" and isinstance(value, Mapping) and value:
            counts = [int(x) for x in value.values()]
            parts.append(f"{min(counts):,}–{max(counts):,} per label")
        elif isinstance(value, Mapping):
            parts.append(f"{_title(key)}: " + escape(", ".join(f"{k} {_num(x)}" for k, x in value.items())))
        else:
            parts.append(f"{_title(key)}: {escape(plain(value))}")
    return " · ".join(parts)


def _speed_line(speed: Any, seg_s: float) -> str:
    if not isinstance(speed, Mapping):
        return plain(speed)
    head = f"{_num(speed['segments_per_s'])} segments/s" if "segments_per_s" in speed else ""
    if isinstance(speed.get("segments_per_s"), (int, float)):
        head += f" (≈ {speed['segments_per_s'] * seg_s / 60:,.0f} minutes of audio per second, model only)"
    rest = ", ".join(f"{_title(k)} {_num(v)}" for k, v in speed.items() if k != "segments_per_s")
    return f"{head}; {rest}" if head and rest else head or rest


def render(info: Mapping[str, Any], console: Console) -> None:
    """Print the card for people (``info`` is :func:`card_dict`'s output)."""
    card: Mapping[str, Any] = info.get("card") or {}
    labels: list[str] = list(info.get("labels", []))
    thresholds: Mapping[str, float] = info.get("thresholds", {})
    sets = heldout_sets(card)
    fe = info.get("frontend", {})
    agg = info.get("aggregation", {})

    head = Text.assemble((str(info.get("model", "?")), "bold"), f"  {info.get('arch', '')} · {len(labels)} labels · ",
                         (str(info.get("file", "")), "dim"))
    console.print(head)
    if card.get("description"):
        console.print(Panel(str(card["description"]), title="what it is", title_align="left", border_style="dim"))
    if fe:
        console.print(f"[dim]input:[/] {fe.get('segment_seconds', '?'):g} s segments, {fe.get('n_mels', '?')}-band log-Mel at "
                      f"{fe.get('sample_rate', 0):,} Hz · [dim]track score:[/] "
                      + (f"mean of the best {agg['top_fraction']:.0%} of segments ({agg.get('method')})"
                         if "top_fraction" in agg else escape(plain(agg)))
                      + (f" · [dim]threshold of a track of 2+ segments:[/] {agg['track_threshold']:.3f} (the table's "
                         "thresholds hold for one 3-s clip and the timelines)" if "track_threshold" in agg else ""))

    table = Table(title="labels", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("label")
    table.add_column("threshold", justify="right")
    with_labels = [(name, m) for _, name, m in sets if isinstance(m.get("per_label"), Mapping)]
    for name, _ in with_labels:
        table.add_column(f"{_title(name)} F1", justify="right")
    for label in labels:
        cells = []
        for _, m in with_labels:
            f1 = (m["per_label"].get(label) or {}).get("f1") if isinstance(m["per_label"].get(label), Mapping) else None
            cells.append(f"{f1:.3f}" if isinstance(f1, (int, float)) else "–")
        table.add_row(label, f"{thresholds[label]:.3f}" if label in thresholds else "–", *cells)
    console.print(table)

    if sets:  # one column per set, one row per figure: a new set or figure needs no code
        number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
        figures = [f for f in FIGURES if any(f in m for _, _, m in sets)]
        figures += sorted({k for _, _, m in sets for k, v in m.items() if number(v) and k not in FIGURES})
        held = Table(title="held-out figures", title_justify="left", show_edge=False, pad_edge=False)
        held.add_column("")
        for _, name, _ in sets:
            held.add_column(_title(name), justify="right")
        for f in figures:
            held.add_row(FIGURES.get(f, _title(f)), *[_num(m[f]) if number(m.get(f)) else "–" for _, _, m in sets])
        console.print(held)
        abouts = [(name, card.get(f"{key}_about") if key == name else None) for key, name, _ in sets]
        abouts = [(name, a or m.get("about") or m.get("data")) for (name, a), (_, _, m) in zip(abouts, sets)]
        _bullets(console, [f"[dim]{escape(_title(n))}:[/] {escape(plain(a))}" for n, a in abouts if a])

    corpus = card.get("corpus")
    if corpus:
        console.print("[bold]data[/] (one line per corpus)")
        _bullets(console, [_corpus_line(e) for e in (corpus if isinstance(corpus, list) else [corpus])])
    training = [(k, card[k]) for k in TRAINING_KEYS if k in card]
    if training:
        console.print("[bold]training[/]")
        _bullets(console, [f"[dim]{_title(k)}:[/] {escape(plain(v))}" for k, v in training])
    if "speed" in card:
        console.print(f"[bold]speed[/] {escape(_speed_line(card['speed'], float(fe.get('segment_seconds', 3.0))))}", highlight=False)
    weaknesses = card.get("weaknesses")
    if weaknesses:
        console.print("[bold]known weaknesses[/]")
        _bullets(console, [escape(plain(w)) for w in (weaknesses if isinstance(weaknesses, list) else [weaknesses])])
    shown = SHOWN_ELSEWHERE | set(TRAINING_KEYS) | {k for k, _, _ in sets} | {f"{k}_about" for k, _, _ in sets}
    others = [(k, v) for k, v in card.items() if k not in shown]
    if others:
        tables = [(k, t) for k, v in others if (t := markdown_table(v, _title(k))) is not None]
        lines = []
        for k, v in others:
            if k in {k for k, _ in tables}:
                continue
            if isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v):
                lines += [f"[dim]{escape(_title(k))}:[/] {escape(plain(x))}" for x in v]  # one line per entry
            else:
                lines.append(f"[dim]{escape(_title(k))}:[/] {escape(plain(v))}")
        if lines:
            console.print("[bold]also in the card[/]")
            _bullets(console, lines)
        for _, table in tables:  # e.g. an ablation table kept as markdown
            console.print(table)


def markdown_table(value: Any, title: str) -> Table | None:
    """A card string that is a markdown table (``| a | b |`` lines) as a rich table, else None."""
    if not isinstance(value, str):
        return None
    rows = [line.strip().strip("|").split("|") for line in value.strip().splitlines()]
    if len(rows) < 2 or not all(line.strip().startswith("|") for line in value.strip().splitlines()):
        return None
    rows = [[cell.strip() for cell in r] for r in rows if not all(set(c.strip()) <= set("-: ") for c in r)]
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for cell in rows[0]:
        table.add_column(cell.replace("**", ""), overflow="fold")
    for r in rows[1:]:
        table.add_row(*[escape(c.replace("**", "").replace("`", "")) for c in r])
    return table


def _bullets(console: Console, lines: list[str]) -> None:
    """Markup lines as an indented list whose wrapped lines stay indented."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=3, justify="right")
    grid.add_column(overflow="fold")
    for line in lines:
        grid.add_row("•", line)
    console.print(grid, highlight=False)
