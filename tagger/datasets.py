"""Reading labelled audio datasets in the layouts of DESIGN.md.

- folder per class: ``DATA/<label>/*.wav`` (IRMAS training set, Kaggle instrument set)
- IRMAS test layout: ``x.wav`` next to ``x.txt`` with one label per line
- manifest CSV: ``path,labels`` with labels joined by ``;`` (paths relative to the CSV)

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


@dataclass(frozen=True)
class Dataset:
    items: tuple[Item, ...]
    labels: tuple[str, ...]  # sorted union of the items' labels
    layout: str

    def targets(self, labels: Sequence[str] | None = None):
        """(items, labels) float32 multi-hot matrix in the order of ``labels``."""
        import numpy as np

        labels = list(labels or self.labels)
        index = {label: j for j, label in enumerate(labels)}
        y = np.zeros((len(self.items), len(labels)), dtype=np.float32)
        for i, item in enumerate(self.items):
            for label in item.labels:
                if label in index:
                    y[i, index[label]] = 1.0
        return y


def _is_audio(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".")


def _make(items: list[Item], layout: str, source: Path) -> Dataset:
    if not items:
        raise DatasetError(f"no labelled audio found ({layout} layout)", source)
    labels = tuple(sorted({label for item in items for label in item.labels}))
    return Dataset(tuple(items), labels, layout)


def read_manifest(csv_path: Path, keep: Callable[[dict], bool] | None = None) -> Dataset:
    """A manifest CSV's items; ``keep`` picks rows by any of their columns."""
    items = []
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"path", "labels"} <= set(reader.fieldnames):
            raise DatasetError("manifest needs the columns path,labels", csv_path)
        for row in reader:
            if keep is not None and not keep(row):
                continue
            labels = tuple(sorted({s.strip() for s in row["labels"].split(";") if s.strip()}))
            items.append(Item((csv_path.parent / row["path"]).resolve(), labels))
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
        items = [Item(i.path, tuple(sorted({label_map.get(l, l) for l in i.labels}))) for i in ds.items]
        ds = _make(items, ds.layout, path)
    return ds


def merge(datasets: Sequence[Dataset]) -> Dataset:
    items = [item for ds in datasets for item in ds.items]
    return _make(items, "+".join(sorted({ds.layout for ds in datasets})), Path("."))
