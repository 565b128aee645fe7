"""The `band` held-out set (training/band.py): a song's guitar and backing stems summed, cut into
10-s windows where the guitar is within 10 dB of the backing; built here from tiny stems."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from tagger.datasets import read_manifest
from training import band
from training.corpus.audio import SAMPLE_RATE

SR = SAMPLE_RATE
W = band.WINDOW_SAMPLES


def _tone(f: float, n: int, db: float) -> np.ndarray:
    t = np.arange(n) / SR
    return (np.sqrt(2) * 10 ** (db / 20) * np.sin(2 * np.pi * f * t)).astype(np.float32)  # RMS = db dBFS


def _song(root, name: str, guitar_db: list[float], backing_db: list[float], rhythm_db: list[float] | None = None):
    """A song folder of stems, one level per 10-s window (None: silent there)."""
    folder = root / name
    folder.mkdir(parents=True)

    def stem(f: float, levels: list[float | None]) -> np.ndarray:
        return np.concatenate([_tone(f, W, db) if db is not None else np.zeros(W, np.float32) for db in levels])

    sf.write(folder / "guitar.ogg", stem(330.0, guitar_db), SR)
    sf.write(folder / "song.ogg", stem(110.0, backing_db), SR)
    if rhythm_db is not None:
        sf.write(folder / "rhythm.ogg", stem(220.0, rhythm_db), SR)
    (folder / "song.ini").write_text("[song]\n")


def test_windows_keep_a_guitar_within_10_db_of_the_backing():
    guitar = np.concatenate([_tone(330, W, -20), _tone(330, W, -35), _tone(330, W, -5), np.zeros(W, np.float32),
                             _tone(330, W, -28)])
    backing = np.concatenate([_tone(110, W, -20)] * 4 + [_tone(110, W, -20)])
    kept = band.band_windows(guitar, backing)
    # window 0: 0 dB apart; 1: 15 dB below; 2: 15 dB above; 3: the guitar is silent; 4: 8 dB below
    assert [start // W for start, _, _ in kept] == [0, 4]
    assert kept[0][1] == pytest.approx(-20, abs=0.1) and kept[1][1] == pytest.approx(-28, abs=0.1)
    assert [s // W for s, _, _ in band.band_windows(guitar, backing, within_db=16)] == [0, 1, 2, 4]


def test_build_sums_the_stems_and_writes_a_manifest(tmp_path):
    root = tmp_path / "songs"
    _song(root, "alpha", [-20, -40, -22], [-20, -20, -20])            # windows 0 and 2
    _song(root, "beta", [-18, -18], [-30, -30], rhythm_db=[-20, None])  # backing = song + rhythm
    (root / "no_guitar").mkdir()
    (root / "no_guitar" / "song.ogg").write_bytes(b"")
    assert [s.name for s in band.songs(root)] == ["alpha", "beta"]
    assert [p.name for p in band.songs(root)[1].backing] == ["song.ogg", "rhythm.ogg"]

    out = tmp_path / "band"
    rows = band.build(out, root)
    ds = read_manifest(out / "manifest.csv")
    assert [item.labels for item in ds.items] == [("electric_guitar",)] * len(rows)
    details = [json.loads(line) for line in (out / "details.jsonl").read_text().splitlines()]
    # beta's second window: the backing is song.ogg alone at -30 dB, 12 dB under the guitar
    assert [(d["song"], d["start_s"]) for d in details] == [("alpha", 0.0), ("alpha", 20.0), ("beta", 0.0)]
    assert details[2]["backing_db"] == pytest.approx(10 * np.log10(10 ** -3 + 10 ** -2), abs=0.2)  # the two summed
    y, sr = sf.read(out / rows[0]["path"])
    assert sr == SR and len(y) == W and np.max(np.abs(y)) == pytest.approx(0.5, abs=1e-3)
    spectrum = np.abs(np.fft.rfft(y))
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    for f in (110.0, 330.0):  # both stems are in the clip, at the same level
        assert spectrum[np.argmin(np.abs(freqs - f))] > 0.3 * spectrum.max()
    assert rows[0]["programs"] == "electric_guitar=muldjord:alpha/guitar.ogg;backing=muldjord:alpha/song.ogg"


def test_figures_count_recall_synthesizer_and_what_else_is_named():
    labels = ("drums", "electric_guitar", "synthesizer")
    y_pred = np.array([[1, 1, 0], [1, 0, 1], [0, 0, 0], [1, 1, 1]], dtype=bool)
    f = band.figures(labels, y_pred, ["a", "a", "b", "b"])
    assert f["electric_guitar_recall"] == 0.5 and f["synthesizer_share"] == 0.5 and f["nothing_named"] == 0.25
    assert list(f["labels_named"]) == ["drums", "electric_guitar", "synthesizer"]
    assert f["recall_by_song"] == {"a": 0.5, "b": 0.5}


def test_build_says_which_package_is_missing(tmp_path):
    with pytest.raises(SystemExit, match="fretsonfire-songs-muldjord"):
        band.build(tmp_path / "out", tmp_path / "nowhere")
