"""The committed examples/ (rendered by training/make_examples.py) are what their README and
labels.csv say: each file decodes, in its stated codec, to its stated length, and the
manifest lists every audio file with valid labels. Nothing is rendered here."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tagger.datasets import read_manifest
from tagger.decode import decode, probe
from tagger.discover import discover
from tagger.labels import BUNDLED_LABELS
from training.make_examples import TRACKS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RATE = 22050
DECODER = {"libmp3lame": "mp3", "libopus": "opus"}  # encoder -> FFmpeg's decoder name


def _manifest() -> list[dict]:
    with open(EXAMPLES / "labels.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_manifest_lists_every_audio_file_with_valid_labels():
    rows = _manifest()
    assert rows and list(rows[0]) == ["path", "labels"]
    listed = [r["path"] for r in rows]
    assert len(listed) == len(set(listed))
    found = sorted(p.relative_to(EXAMPLES).as_posix() for p in discover([EXAMPLES]))
    assert sorted(listed) == found
    for r in rows:
        labels = r["labels"].split(";")
        assert labels and all(lab in BUNDLED_LABELS for lab in labels), r
        assert len(labels) == len(set(labels)), r
    dataset = read_manifest(EXAMPLES / "labels.csv")  # what `tagger eval examples/labels.csv` reads
    assert len(dataset.items) == len(rows)
    assert all(item.path.is_file() for item in dataset.items)


def test_manifest_and_readme_match_the_script():
    assert {r["path"]: r["labels"] for r in _manifest()} == {t.file: ";".join(t.labels) for t in TRACKS}
    assert len({t.codec for t in TRACKS}) == len(TRACKS)  # one codec per file
    assert len({t.labels for t in TRACKS}) == len(TRACKS)  # and one instrument mix
    readme = (EXAMPLES / "README.md").read_text()
    for t in TRACKS:
        assert f"| `{t.file}` | {t.format} | {t.seconds:g} s | {', '.join(t.labels)} |" in readme


@pytest.mark.parametrize("track", TRACKS, ids=[t.file for t in TRACKS])
def test_example_decodes_to_its_stated_length(track):
    path = EXAMPLES / track.file
    info = probe(path)
    assert info.codec == DECODER.get(track.codec, track.codec)
    assert (info.sample_rate, info.channels) == (track.rate, track.channels)
    audio = decode(path, RATE)
    assert audio.dtype == np.float32
    assert 10.0 <= track.seconds <= 15.0
    assert abs(len(audio) / RATE - track.seconds) < 0.05, len(audio) / RATE
    assert np.max(np.abs(audio)) <= 1.0
    seg = 3 * RATE  # every whole 3-s segment is audible (well above tagger's -60 dBFS floor)
    for a in range(0, len(audio) - seg + 1, seg):
        level = np.sqrt(np.mean(np.square(audio[a:a + seg], dtype=np.float64)))
        assert 20 * np.log10(level) > -35.0, (a / RATE, level)


def test_examples_stay_small():
    total = sum(p.stat().st_size for p in EXAMPLES.iterdir() if p.is_file())
    assert total < 3.5 * 1024 * 1024
