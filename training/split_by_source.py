"""Split a corpus manifest by sound source: ``manifest.csv`` -> ``<name>.csv`` per group.

    python -m training.split_by_source DIR train=fluidr3,freepats,synth val=sfgmbank

Each output keeps the manifest's columns; paths stay relative to DIR, so the new files
sit next to ``manifest.csv`` and read as datasets with ``tagger train DIR/train.csv``.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path


def split(folder: Path, groups: dict[str, set[str]]) -> dict[str, int]:
    with open(folder / "manifest.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows, fields = list(reader), reader.fieldnames
    counts = {}
    for name, sources in groups.items():
        chosen = [r for r in rows if r["source"] in sources]
        with open(folder / f"{name}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(chosen)
        counts[name] = len(chosen)
    return counts


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    groups = {name: set(srcs.split(",")) for name, srcs in (arg.split("=", 1) for arg in sys.argv[2:])}
    print(split(folder, groups))
