"""How far musicnn's tags agree with a labelled set: its top instrument tag against our label.

    python -m training.teacher_report DIR/manifest.csv [--kind single]

Reads ``manifest.csv`` (``path``, ``labels`` and ``kind``, as training.recorded and
training.band write it) and the ``musicnn.csv`` that ``training.teacher`` wrote beside it.
For each clip of one label (optionally of one ``kind``), it takes the MTT instrument tag
musicnn scores highest (``INSTRUMENT_TAGS``) and counts it against the label, and prints
for each label the share of its clips whose top tag is the label's own shared tag
(``SHARED_TAGS``; "-" for labels musicnn has no tag for). Only for reporting: held-out
sets are never trained on. Needs no TensorFlow.
"""
from __future__ import annotations

import argparse
import csv
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .teacher import OUTPUT_NAME, SHARED_TAGS, read_teacher_csv, top_instrument


@dataclass
class LabelAgreement:
    """One label's clips: how many, and musicnn's top instrument tag on them."""

    label: str
    top_tags: Counter[str]

    @property
    def clips(self) -> int:
        return sum(self.top_tags.values())

    @property
    def agreeing(self) -> int | None:
        """Clips whose top tag is one of the label's shared tags; None when it has none."""
        tags = SHARED_TAGS.get(self.label)
        return None if tags is None else sum(self.top_tags[t] for t in tags)


def agreement(manifest_rows: Iterable[Mapping[str, str]],
              teacher: Mapping[str, Mapping[str, float]],
              kind: str | None = None) -> dict[str, LabelAgreement]:
    """Per label, musicnn's top instrument tags on the single-label clips that ``teacher`` scored."""
    table: dict[str, LabelAgreement] = {}
    for row in manifest_rows:
        labels = [l for l in row["labels"].split(";") if l]
        if len(labels) != 1 or (kind is not None and row.get("kind") != kind):
            continue
        scores = teacher.get(row["path"])
        if scores is None:
            continue
        entry = table.setdefault(labels[0], LabelAgreement(labels[0], Counter()))
        entry.top_tags[top_instrument(scores)] += 1
    return dict(sorted(table.items()))


def format_agreement(table: Mapping[str, LabelAgreement]) -> str:
    """A markdown table: label, clips, musicnn agreeing, its top instrument tags."""
    lines = ["| label | clips | top tag is the shared tag | musicnn's top instrument tags |",
             "| --- | --- | --- | --- |"]
    for entry in table.values():
        agreeing = "-" if entry.agreeing is None else f"{entry.agreeing} ({entry.agreeing / entry.clips:.2f})"
        tops = ", ".join(f"{tag} {n}" for tag, n in entry.top_tags.most_common())
        lines.append(f"| {entry.label} | {entry.clips} | {agreeing} | {tops} |")
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.teacher_report",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--kind", default=None, help="only clips of this kind (e.g. single)")
    args = parser.parse_args(None if argv is None else list(argv))
    with args.manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    teacher = read_teacher_csv(args.manifest.parent / OUTPUT_NAME)
    print(format_agreement(agreement(rows, teacher, args.kind)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
