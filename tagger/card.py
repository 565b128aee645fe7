"""The model card as a person reads it (``tagger info``, ``--full``, ``weights/MODEL_CARD.md``),
from a weights file's header only.

``tagger info`` is short enough to read at 80 columns: what the model is (one sentence),
the labels with their thresholds, the key held-out figures (one row per set), and the
known weaknesses (their first sentences). ``--full`` shows everything, and
:func:`card_markdown` writes all of it as markdown (the bundled model's is
``weights/MODEL_CARD.md``, kept current by a test).

Generic over what the card holds: the sections this module knows (description, per-label
table, held-out figures, data, training, speed, weaknesses) are laid out for reading, and
any other key is still shown, in a plain form, under "Also in the card". A held-out set is
any card entry that is a dict of metrics (with ``per_label`` or a figure like ``mAP``), so
a new one (a voice set, another corpus) gets its own column and row without code here.
No torch import: this runs in a fraction of a second.
"""
from __future__ import annotations

import math
import re

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
# The short card's held-out columns: figure -> heading (a legend under the table says what they are).
KEY_FIGURES = {"items": "files", "mAP": "mAP", "micro_f1": "micro-F1", "top1_single": "top-1",
               "mixtures_micro_f1": "mix F1", "no_instrument_clean": "no-instr."}
KEY_LEGEND = ("top-1: single-instrument clips whose best label is right; mix F1: micro-F1 on mixtures of 2-4 "
              "instruments; no-instr.: share of clips without an instrument (a voice alone) left unlabelled")
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


def _corpus_parts(entry: Any) -> tuple[str, list[str]]:
    """A corpus's name and its facts: clips, sources and kinds; per-label counts as a range."""
    if not isinstance(entry, Mapping):
        return "", [plain(entry)]
    name = str(entry.get("folder") or entry.get("name") or "corpus")
    parts = [f"{_num(entry['clips'])} clips"] if "clips" in entry else []
    for key, value in entry.items():
        if key in ("folder", "name", "clips"):
            continue
        if key == "clips_per_label" and isinstance(value, Mapping) and value:
            counts = [int(x) for x in value.values()]
            parts.append(f"{min(counts):,}–{max(counts):,} per label")
        elif isinstance(value, Mapping):
            parts.append(f"{_title(key)}: " + ", ".join(f"{k} {_num(x)}" for k, x in value.items()))
        else:
            parts.append(f"{_title(key)}: {plain(value)}")
    return name, parts


def _corpus_line(entry: Any) -> str:
    """One line of markup per corpus."""
    name, parts = _corpus_parts(entry)
    return " · ".join(([f"[bold]{escape(name)}[/]"] if name else []) + [escape(x) for x in parts])


def _speed_line(speed: Any, seg_s: float) -> str:
    if not isinstance(speed, Mapping):
        return plain(speed)
    head = f"{_num(speed['segments_per_s'])} segments/s" if "segments_per_s" in speed else ""
    if isinstance(speed.get("segments_per_s"), (int, float)):
        head += f" (≈ {speed['segments_per_s'] * seg_s / 60:,.0f} minutes of audio per second, model only)"
    rest = ", ".join(f"{_title(k)} {_num(v)}" for k, v in speed.items() if k != "segments_per_s")
    return f"{head}; {rest}" if head and rest else head or rest


def _first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (not one inside a number)."""
    return re.split(r"(?<=[.!?])\s+(?=[A-Z(`])", text.strip(), maxsplit=1)[0]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _label_f1(m: Mapping, label: str) -> str:
    """A label's F1 in a set, or a dash where the set has none (or no example of the label)."""
    entry = m["per_label"].get(label)
    if not isinstance(entry, Mapping) or entry.get("support") == 0 or not _number(entry.get("f1")):
        return "–"
    return f"{entry['f1']:.3f}"


def _about(card: Mapping[str, Any], key: str, name: str, m: Mapping) -> Any:
    """What a held-out set is: ``<key>_about`` (a text, or per set one level down), else its own ``about``."""
    about = card.get(f"{key}_about")
    if isinstance(about, Mapping):
        about = about.get(name.split(" ", 1)[1]) if " " in name else None
    return about or m.get("about") or m.get("data")


def _all_figures(sets: list[tuple[str, str, Mapping]]) -> list[str]:
    figures = [f for f in FIGURES if any(f in m for _, _, m in sets)]
    return figures + sorted({k for _, _, m in sets for k, v in m.items() if _number(v) and k not in FIGURES})


def _figures_line(m: Mapping, figures: list[str]) -> str:
    """``name value · ...`` of the figures a set has (a NaN, a figure it cannot have, left out)."""
    return " · ".join(f"{FIGURES.get(f, _title(f))} {_num(m[f])}" for f in figures if _number(m.get(f)) and m[f] == m[f])


def _key_rows(sets: list[tuple[str, str, Mapping]]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The key figures (:data:`KEY_FIGURES`) any set has, and a row of cells for each set
    that has one of them: ``(keys, [(set name, cells)])``, a dash where a set has none."""
    keys = [f for f in KEY_FIGURES if any(_number(m.get(f)) for _, _, m in sets)]
    rows = [(name, [_num(m[f]) if _number(m.get(f)) else "–" for f in keys])
            for _, name, m in sets if any(_number(m.get(f)) for f in keys)]
    return keys, rows


def _parts(info: Mapping[str, Any]) -> tuple[Mapping[str, Any], list[str], Mapping[str, float], list[tuple[str, str, Mapping]], dict, dict]:
    """What both views of a card read from :func:`card_dict`'s output: the card, labels,
    thresholds, held-out sets, frontend and aggregation."""
    card: Mapping[str, Any] = info.get("card") or {}
    return (card, list(info.get("labels", [])), info.get("thresholds", {}), heldout_sets(card),
            info.get("frontend", {}), info.get("aggregation", {}))


def render(info: Mapping[str, Any], console: Console, full: bool = False) -> None:
    """Print the card for people (``info`` is :func:`card_dict`'s output): short, or everything with ``full``."""
    card, labels, thresholds, sets, fe, agg = _parts(info)

    head = Text.assemble((str(info.get("model", "?")), "bold"), f"  {info.get('arch', '')} · {len(labels)} labels")
    console.print(head)
    console.print(Text(str(info.get("file", "")), "dim"), overflow="fold")  # a long path on a line of its own
    description = str(card.get("description") or "")
    if description and full:
        console.print(Panel(description, title="what it is", title_align="left", border_style="dim"))
    elif description:
        console.print(_first_sentence(description), highlight=False)
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
    if not full:
        with_labels = with_labels[:2]  # validation and test: four columns fit in 80
    for name, _ in with_labels:
        table.add_column(f"{_title(name)} F1", justify="right")
    for label in labels:
        table.add_row(label, f"{thresholds[label]:.3f}" if label in thresholds else "–", *[_label_f1(m, label) for _, m in with_labels])
    console.print(table)

    if sets and full:  # one line per set: any number of sets and figures reads at any width
        figures = _all_figures(sets)
        console.print("[bold]held-out figures[/]")
        _bullets(console, [f"[bold]{escape(_title(name))}[/]: {escape(_figures_line(m, figures))}" for _, name, m in sets])
        abouts = [(name, _about(card, key, name, m)) for key, name, m in sets]
        console.print("[bold]the held-out sets[/]")
        _bullets(console, [f"[dim]{escape(_title(n))}:[/] {escape(plain(a))}" for n, a in abouts if a])
    elif sets:  # one row per set, the key figures only
        keys, rows = _key_rows(sets)
        held = Table(title="held-out figures (never trained or tuned on)", title_justify="left", show_edge=False, pad_edge=False)
        held.add_column("set", overflow="fold")
        for f in keys:
            held.add_column(KEY_FIGURES[f], justify="right", no_wrap=True)
        for name, cells in rows:
            held.add_row(_title(name), *cells)
        console.print(held)
        console.print(f"[dim]{escape(KEY_LEGEND)}[/]")

    weaknesses = card.get("weaknesses")
    if weaknesses:
        items = weaknesses if isinstance(weaknesses, list) else [weaknesses]
        console.print("[bold]known weaknesses[/]")
        _bullets(console, [escape(plain(w) if full else _first_sentence(plain(w))) for w in items])
    if not full:
        console.print("[dim]the whole card: tagger info --full (and weights/MODEL_CARD.md for the bundled model)[/]")
        return

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
    others = _other_entries(card, sets)
    if others:
        tables = [(k, t) for k, v in others if (t := markdown_rows(v)) is not None]
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
        for k, rows in tables:  # e.g. an ablation table kept as markdown
            _table_bullets(console, _title(k), rows)


def _other_entries(card: Mapping[str, Any], sets: list[tuple[str, str, Mapping]]) -> list[tuple[str, Any]]:
    """Card entries no section above shows."""
    shown = SHOWN_ELSEWHERE | set(TRAINING_KEYS) | {k for k, _, _ in sets} | {f"{k}_about" for k, _, _ in sets}
    return [(k, v) for k, v in card.items() if k not in shown]


def _md(text: str) -> str:
    """A value as one markdown table cell or list item: no line breaks, no stray pipes."""
    return " ".join(str(text).split()).replace("|", "\\|")


def card_markdown(info: Mapping[str, Any]) -> str:
    """The whole card as markdown (``info`` is :func:`card_dict`'s output): what
    ``weights/MODEL_CARD.md`` holds for the bundled model (see :func:`write_model_card`)."""
    card, labels, thresholds, sets, fe, agg = _parts(info)
    out = [f"# Model card: {info.get('model', '?')}", "",
           f"Written from the weights file's own card by `tagger.card.write_model_card`; `tagger info --full` shows the "
           f"same. Architecture `{info.get('arch', '')}`, {len(labels)} labels.", ""]
    if card.get("description"):
        out += [" ".join(str(card["description"]).split()), ""]
    if fe:
        out += [f"Input: {fe.get('segment_seconds', '?'):g} s segments, {fe.get('n_mels', '?')}-band log-Mel at "
                f"{fe.get('sample_rate', 0):,} Hz. Track score: "
                + (f"mean of the best {agg['top_fraction']:.0%} of segments ({agg.get('method')})" if "top_fraction" in agg
                   else plain(agg))
                + (f"; a track of 2+ segments is held to {agg['track_threshold']:.3f} (the table's thresholds hold for "
                   "one 3-s clip and the timelines)" if "track_threshold" in agg else "") + ".", ""]
    with_labels = [(name, m) for _, name, m in sets if isinstance(m.get("per_label"), Mapping)]
    out += ["## Labels and thresholds", "",
            "| label | threshold | " + " | ".join(f"{_title(n)} F1" for n, _ in with_labels) + " |",
            "| --- | ---: |" + " ---: |" * len(with_labels)]
    for label in labels:
        cells = [f"{thresholds[label]:.3f}" if label in thresholds else "–"] + [_label_f1(m, label) for _, m in with_labels]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    if sets:
        keys, rows = _key_rows(sets)
        out += ["", "## Held-out figures", "", "Sound never trained or tuned on (the validation set selects the epoch "
                "and the thresholds). The key figures:", "", "| set | " + " | ".join(KEY_FIGURES[f] for f in keys) + " |",
                "| --- |" + " ---: |" * len(keys)]
        out += [f"| {_md(_title(name))} | " + " | ".join(cells) + " |" for name, cells in rows]
        out += ["", KEY_LEGEND + ".", "", "Every figure of each set:", ""]
        figures = _all_figures(sets)
        for key, name, m in sets:
            about = _about(card, key, name, m)
            out.append(f"- **{_md(_title(name))}**" + (f" ({_md(plain(about))})" if about else "") + f": {_md(_figures_line(m, figures))}")
    weaknesses = card.get("weaknesses")
    if weaknesses:
        out += ["", "## Known weaknesses", ""] + [f"- {_md(plain(w))}" for w in (weaknesses if isinstance(weaknesses, list) else [weaknesses])]
    corpus = card.get("corpus")
    if corpus:
        out += ["", "## Data", ""]
        for entry in corpus if isinstance(corpus, list) else [corpus]:
            name, parts = _corpus_parts(entry)
            out.append("- " + " · ".join(([f"`{name}`"] if name else []) + [_md(x) for x in parts]))
    training = [(k, card[k]) for k in TRAINING_KEYS if k in card]
    if training:
        out += ["", "## Training", ""] + [f"- {_title(k)}: {_md(plain(v))}" for k, v in training]
    if "speed" in card:
        out += ["", "## Speed", "", _md(_speed_line(card["speed"], float(fe.get("segment_seconds", 3.0))))]
    for k, v in _other_entries(card, sets):
        out += ["", f"## {_title(k).capitalize()}", ""]
        if markdown_rows(v) is not None:
            out.append(str(v).strip())
        elif isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v):
            out += [f"- {_md(plain(x))}" for x in v]
        else:
            out.append(_md(plain(v)))
    return "\n".join(out) + "\n"


def write_model_card(weights: Path | None = None, out: Path | None = None) -> Path:
    """Write :func:`card_markdown` of ``weights`` (default: the bundled model) to ``out``
    (default: ``MODEL_CARD.md`` next to the weights); returns ``out``.

    After a new bundled model: ``python -c "from tagger.card import write_model_card; write_model_card()"``.
    """
    from . import __version__
    from .weights import bundled_model_path, read_header

    weights = weights or bundled_model_path()
    out = out or Path(weights).parent / "MODEL_CARD.md"
    info = card_dict(read_header(weights), Path(weights).name, __version__)
    out.write_text(card_markdown(info), encoding="utf-8")
    return out


def markdown_rows(value: Any) -> list[list[str]] | None:
    """A card string that is a markdown table (``| a | b |`` lines) as rows of plain cells
    (the header first, the ``---`` line left out, ``**`` and backticks dropped), else None."""
    if not isinstance(value, str):
        return None
    lines = value.strip().splitlines()
    if len(lines) < 2 or not all(line.strip().startswith("|") for line in lines):
        return None
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    return [[c.replace("**", "").replace("`", "") for c in r] for r in rows if not all(set(c) <= set("-: ") for c in r)]


def markdown_table(value: Any, title: str) -> Table | None:
    """A card string that is a markdown table as a rich table, else None."""
    rows = markdown_rows(value)
    if rows is None:
        return None
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for cell in rows[0]:
        table.add_column(cell, overflow="fold")
    for r in rows[1:]:
        table.add_row(*[escape(c) for c in r])
    return table


def _table_bullets(console: Console, title: str, rows: list[list[str]]) -> None:
    """A wide table as one line per row (``first cell: heading value · ...``): reads at any width."""
    console.print(f"[bold]{escape(title)}[/]")
    head = rows[0]
    _bullets(console, [f"[bold]{escape(r[0])}[/]: " + escape(" · ".join(f"{h} {c}" for h, c in zip(head[1:], r[1:]) if c))
                       for r in rows[1:]])


def _bullets(console: Console, lines: list[str]) -> None:
    """Markup lines as an indented list whose wrapped lines stay indented."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=3, justify="right")
    grid.add_column(overflow="fold")
    for line in lines:
        grid.add_row("•", line)
    console.print(grid, highlight=False)
