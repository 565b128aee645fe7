"""training.teacher's clip list, resume and tag mapping, and training.teacher_report: no TensorFlow.

The musicnn network itself runs only in its own venv (scripts/setup_teacher.sh checks it
there); these tests drive ``tag_clips`` with a stand-in teacher of fixed scores.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from training.teacher import (
    INSTRUMENT_TAGS, MTT_LABELS, SHARED_TAGS, done_paths, read_clip_list, read_teacher_csv,
    shared_scores, tag_clips, top_instrument,
)
from training.teacher_report import agreement, format_by_tag, shared_tag_auc


class FixedTeacher:
    """Scores one MTT tag high per clip, chosen by the clip's file name; counts its calls."""

    def __init__(self, top: dict[str, str]) -> None:
        self.top = top
        self.calls: list[Path] = []

    def clip_scores(self, path: Path) -> np.ndarray:
        self.calls.append(path)
        scores = np.full(len(MTT_LABELS), 0.1)
        scores[MTT_LABELS.index(self.top[path.name])] = 0.9
        return scores


def _clip_list(folder: Path, names: list[str]) -> Path:
    clip_csv = folder / "clips.csv"
    with clip_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "source"])
        for name in names:
            writer.writerow([f"clips/{name}", "game"])
    return clip_csv


def test_tag_clips_writes_every_clip_once_and_resumes_after_a_torn_write(tmp_path: Path) -> None:
    names = ["a.flac", "b.flac", "c.flac"]
    clip_csv = _clip_list(tmp_path, names)
    assert read_clip_list(clip_csv) == [f"clips/{n}" for n in names]

    first = FixedTeacher({"a.flac": "guitar", "b.flac": "piano", "c.flac": "synth"})
    out_csv = tag_clips(clip_csv, teacher=first)
    assert out_csv == tmp_path / "musicnn.csv"
    assert [p.name for p in first.calls] == names
    rows = read_teacher_csv(out_csv)
    assert list(rows) == [f"clips/{n}" for n in names]
    assert top_instrument(rows["clips/b.flac"]) == "piano"
    assert shared_scores(rows["clips/c.flac"])["synthesizer"] == pytest.approx(0.9)
    assert shared_scores(rows["clips/a.flac"])["electric_guitar"] == pytest.approx(0.9)

    # a kill in the middle of writing c's row: the torn line is cut, and only c is redone
    data = out_csv.read_bytes()
    out_csv.write_bytes(data[: data.rindex(b"clips/c.flac") + 9])
    assert done_paths(out_csv) == {"clips/a.flac", "clips/b.flac"}
    second = FixedTeacher(first.top)
    tag_clips(clip_csv, teacher=second)
    assert [p.name for p in second.calls] == ["c.flac"]
    assert list(read_teacher_csv(out_csv)) == [f"clips/{n}" for n in names]

    # all done: nothing is tagged, the file is unchanged
    before = out_csv.read_bytes()
    third = FixedTeacher(first.top)
    tag_clips(clip_csv, teacher=third)
    assert third.calls == [] and out_csv.read_bytes() == before


def test_done_paths_refuses_a_file_with_other_columns(tmp_path: Path) -> None:
    out_csv = tmp_path / "musicnn.csv"
    out_csv.write_text("path,guitar\nclips/a.flac,0.5\n")
    with pytest.raises(ValueError, match="header"):
        done_paths(out_csv)


def test_shared_tags_are_mtt_tags_and_the_report_counts_top_tags(tmp_path: Path) -> None:
    assert set(INSTRUMENT_TAGS) <= set(MTT_LABELS)
    assert {t for tags in SHARED_TAGS.values() for t in tags} <= set(MTT_LABELS)

    def scores(top: str) -> dict[str, float]:
        return {tag: (0.9 if tag == top else 0.1) for tag in MTT_LABELS}

    manifest = [
        {"path": "1", "labels": "cello", "kind": "single"},
        {"path": "2", "labels": "cello", "kind": "single"},
        {"path": "3", "labels": "organ", "kind": "single"},
        {"path": "4", "labels": "cello;piano", "kind": "mix"},  # not one label: left out
        {"path": "5", "labels": "piano", "kind": "mix"},  # not the asked kind
    ]
    teacher = {"1": scores("cello"), "2": scores("violin"), "3": scores("flute"),
               "4": scores("piano"), "5": scores("piano")}
    table = agreement(manifest, teacher, kind="single")
    assert list(table) == ["cello", "organ"]
    assert table["cello"].clips == 2 and table["cello"].agreeing == 1
    assert table["organ"].agreeing is None and table["organ"].top_tags == {"flute": 1}

    assert "| violin | 1 | 0 (0.00) | cello 1 |" in format_by_tag(table)
    # cello's score: 0.9 on clip 1, 0.1 on clip 2 (a cello heard as violin), 0.1 on the organ
    assert shared_tag_auc(manifest, teacher, kind="single")["cello"] == (2, 1, pytest.approx(0.75))
