"""Reading labelled audio datasets in the layouts of DESIGN.md.

- folder per class: ``DATA/<label>/*.wav`` (IRMAS training set, Kaggle instrument set)
- IRMAS test layout: ``x.wav`` next to ``x.txt`` with one label per line
- manifest CSV: ``path,labels`` with labels joined by ``;`` (paths relative to the CSV),
  and an optional ``targets`` column of soft targets, ``label=value`` joined by ``;``
  (``drums=0.97;piano=0.81;violin=0.02``, values in [0, 1]): a teacher's scores for
  self-training (training/selftrain.py). An item with targets trains on them instead of
  its multi-hot labels: a label its targets do not list is 1 if in ``labels``, else 0.
  ``labels`` stays the hard labels (the targets >= 0.5 by convention); a row with an
  empty ``targets`` trains on its labels as before.

Labels are taken verbatim; IRMAS's three-letter codes can be mapped to the bundled
label names with ``label_map=IRMAS_CODES``.
"""
from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .discover import AUDIO_EXTENSIONS
from .errors import DatasetError

IRMAS_CODES: dict[str, str] = {
    "cel": "cello", "cla": "clarinet", "flu": "flute", "gac": "acoustic_guitar", "gel": "electric_guitar",
    "org": "organ", "pia": "piano", "sax": "saxophone", "tru": "trumpet", "vio": "violin", "voi": "voice",
}


@dataclass(frozen=True)
class Item:
    path: Path
    labels: tuple[str, ...]
    targets: tuple[tuple[str, float], ...] | None = None  # soft targets (label, value), sorted; None: the labels


@dataclass(frozen=True)
class Dataset:
    items: tuple[Item, ...]
    labels: tuple[str, ...]  # sorted union of the items' labels
    layout: str

    def targets(self, labels: Sequence[str] | None = None, soft: bool = False):
        """(items, labels) float32 matrix in the order of ``labels``: the multi-hot labels,
        with each item's soft targets written over them when ``soft`` (training; metrics
        take the hard labels). Targets naming a label outside ``labels`` are left out."""
        import numpy as np

        labels = list(labels or self.labels)
        index = {label: j for j, label in enumerate(labels)}
        y = np.zeros((len(self.items), len(labels)), dtype=np.float32)
        for i, item in enumerate(self.items):
            for label in item.labels:
                if label in index:
                    y[i, index[label]] = 1.0
            if soft and item.targets:
                for label, value in item.targets:
                    if label in index:
                        y[i, index[label]] = value
        return y


def _is_audio(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".")


def _make(items: list[Item], layout: str, source: Path) -> Dataset:
    if not items:
        raise DatasetError(f"no labelled audio found ({layout} layout)", source)
    labels = tuple(sorted({label for item in items for label in item.labels}))
    return Dataset(tuple(items), labels, layout)


def parse_targets(text: str, where: Path) -> tuple[tuple[str, float], ...] | None:
    """A ``targets`` cell (``drums=0.97;piano=0.81``) as sorted (label, value) pairs; None when empty."""
    pairs = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        label, sep, value = part.partition("=")
        try:
            number = float(value) if sep else float("nan")
        except ValueError:
            number = float("nan")
        if not label.strip() or not 0.0 <= number <= 1.0:
            raise DatasetError(f"bad soft target {part!r}: expected label=value with a value in [0, 1]", where)
        if label.strip() in pairs:
            raise DatasetError(f"soft target {label.strip()!r} given twice in {text!r}", where)
        pairs[label.strip()] = number
    return tuple(sorted(pairs.items())) or None


def read_manifest(csv_path: Path, keep: Callable[[dict], bool] | None = None) -> Dataset:
    """A manifest CSV's items; ``keep`` picks rows by any of their columns; the optional
    ``targets`` column gives soft targets (see the module's docstring)."""
    items = []
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"path", "labels"} <= set(reader.fieldnames):
            raise DatasetError("manifest needs the columns path,labels", csv_path)
        for row in reader:
            if keep is not None and not keep(row):
                continue
            labels = tuple(sorted({s.strip() for s in row["labels"].split(";") if s.strip()}))
            targets = parse_targets(row.get("targets") or "", csv_path)
            items.append(Item((csv_path.parent / row["path"]).resolve(), labels, targets))
    return _make(items, "manifest", csv_path)


def read_irmas_test(folder: Path) -> Dataset:
    items = []
    for audio in sorted(p for p in folder.rglob("*") if _is_audio(p)):
        txt = audio.with_suffix(".txt")
        if txt.is_file():
            labels = tuple(sorted({line.strip() for line in txt.read_text(encoding="utf-8").splitlines() if line.strip()}))
            items.append(Item(audio.resolve(), labels))
    return _make(items, "irmas-test", folder)


def read_class_folders(folder: Path) -> Dataset:
    items = []
    for class_dir in sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")):
        for audio in sorted(p for p in class_dir.rglob("*") if _is_audio(p)):
            items.append(Item(audio.resolve(), (class_dir.name,)))
    return _make(items, "class-folders", folder)


def read_dataset(path: str | Path, label_map: Mapping[str, str] | None = None) -> Dataset:
    """Read ``path`` in whichever layout it is in."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        ds = read_manifest(path)
    elif path.is_dir() and (path / "manifest.csv").is_file():
        ds = read_manifest(path / "manifest.csv")
    elif path.is_dir() and any(p.suffix == ".txt" for p in path.rglob("*.txt")):
        ds = read_irmas_test(path)
    elif path.is_dir():
        ds = read_class_folders(path)
    else:
        raise DatasetError("not a dataset: expected a folder or a manifest .csv", path)
    if label_map:
        items = [Item(i.path, tuple(sorted({label_map.get(l, l) for l in i.labels})),
                      i.targets and tuple(sorted((label_map.get(l, l), v) for l, v in i.targets))) for i in ds.items]
        ds = _make(items, ds.layout, path)
    return ds


def merge(datasets: Sequence[Dataset]) -> Dataset:
    items = [item for ds in datasets for item in ds.items]
    return _make(items, "+".join(sorted({ds.layout for ds in datasets})), Path("."))
