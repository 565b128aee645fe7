"""How far musicnn's tags agree with a labelled set: its top instrument tag against our label.

    python -m training.teacher_report DIR/manifest.csv [--kind single]

Reads ``manifest.csv`` (``path``, ``labels`` and ``kind``, as training.recorded and
training.band write it) and the ``musicnn.csv`` that ``training.teacher`` wrote beside it.
For each clip of one label (optionally of one ``kind``), it takes the MTT instrument tag
musicnn scores highest (``INSTRUMENT_TAGS``) and counts it against the label, and prints
for each label the share of its clips whose top tag is the label's own shared tag
(``SHARED_TAGS``; "-" for labels musicnn has no tag for), then for each top tag the labels
of its clips (how specific the tag is), and each shared label's ROC AUC (its teacher
score ranking its own clips above the rest). Only for reporting: held-out
sets are never trained on. Needs no TensorFlow.
"""
from __future__ import annotations

import argparse
import csv
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .teacher import OUTPUT_NAME, SHARED_TAGS, read_teacher_csv, shared_scores, top_instrument


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


def format_by_tag(table: Mapping[str, LabelAgreement]) -> str:
    """A markdown table the other way round: for each top tag, the labels of its clips.

    Tells how specific a tag is: the share of the clips it ranks first whose label it stands for.
    """
    by_tag: dict[str, Counter[str]] = {}
    for entry in table.values():
        for tag, n in entry.top_tags.items():
            by_tag.setdefault(tag, Counter())[entry.label] += n
    lines = ["| musicnn's top tag | clips | of the labels it stands for | labels |",
             "| --- | --- | --- | --- |"]
    for tag, labels in sorted(by_tag.items(), key=lambda item: -sum(item[1].values())):
        total = sum(labels.values())
        own = sum(n for label, n in labels.items() if tag in SHARED_TAGS.get(label, ()))
        shown = ", ".join(f"{label} {n}" for label, n in labels.most_common())
        lines.append(f"| {tag} | {total} | {own} ({own / total:.2f}) | {shown} |")
    return "\n".join(lines)


def shared_tag_auc(manifest_rows: Iterable[Mapping[str, str]],
                   teacher: Mapping[str, Mapping[str, float]],
                   kind: str | None = None) -> dict[str, tuple[int, int, float]]:
    """Per shared label present among the single-label clips: (positives, negatives, ROC AUC).

    The label's teacher score (``shared_scores``) ranking its own clips above the other
    labels' clips; 0.5 is chance. Unlike top-1, it is what soft targets use: the score itself.
    """
    scored: list[tuple[str, dict[str, float]]] = []
    for row in manifest_rows:
        labels = [l for l in row["labels"].split(";") if l]
        if len(labels) == 1 and (kind is None or row.get("kind") == kind) and row["path"] in teacher:
            scored.append((labels[0], shared_scores(teacher[row["path"]])))
    result: dict[str, tuple[int, int, float]] = {}
    for label in sorted(SHARED_TAGS):
        pos = [s[label] for truth, s in scored if truth == label]
        neg = [s[label] for truth, s in scored if truth != label]
        if pos and neg:
            wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
            result[label] = (len(pos), len(neg), wins / (len(pos) * len(neg)))
    return result


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.teacher_report",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--kind", default=None, help="only clips of this kind (e.g. single)")
    args = parser.parse_args(None if argv is None else list(argv))
    with args.manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    teacher = read_teacher_csv(args.manifest.parent / OUTPUT_NAME)
    table = agreement(rows, teacher, args.kind)
    print(format_agreement(table))
    print()
    print(format_by_tag(table))
    auc = shared_tag_auc(rows, teacher, args.kind)
    if auc:
        print()
        print("| shared label | clips of it | other clips | ROC AUC of its teacher score |")
        print("| --- | --- | --- | --- |")
        for label, (pos, neg, value) in auc.items():
            print(f"| {label} | {pos} | {neg} | {value:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
