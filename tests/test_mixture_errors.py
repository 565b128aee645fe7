"""training.mixture_errors: where mixture errors come from, on score tables (no model)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.mixture_errors import markdown, mixture_errors, read_stems

LABELS = ("bass", "drums", "piano", "violin")


def test_mixture_errors_counts_misses_by_level_count_and_label():
    scores = np.array([
        [0.9, 0.0, 0.8, 0.0],  # bass 0 dB + piano -4 dB: both found
        [0.9, 0.9, 0.1, 0.6],  # bass, drums 0 dB, piano -2 dB missed; violin invented
        [0.0, 0.0, 0.9, 0.0],  # a single: skipped
    ], dtype=np.float32)
    stems = [[("bass", 0.0), ("piano", -4.0)], [("bass", 1.0), ("drums", 1.0), ("piano", -1.0)], [("piano", 0.0)]]
    e = mixture_errors(LABELS, scores, np.full(4, 0.5, np.float32), stems)
    assert e.mixtures == 2
    assert e.recall_by_level == {-6: (1.0, 1), -3: (0.0, 1), 0: (1.0, 3)}
    assert e.recall_by_count == {2: (1.0, 2), 3: (2 / 3, 3)}
    assert e.recall_by_label["piano"] == (0.5, 2) and e.recall_by_label["bass"] == (1.0, 2)
    assert list(e.recall_by_label)[0] == "piano"  # worst first
    assert e.invented == {"violin": 1}
    assert e.invented_next_to == {("bass", "violin"): 1, ("drums", "violin"): 1, ("piano", "violin"): 1}
    # top-2 of the first are right; the second's top-3 hold violin instead of piano
    assert np.isclose(e.precision_at_n, (1 + 2 / 3) / 2)
    assert "precision at n" in markdown(e)


def test_per_item_thresholds_are_used():
    scores = np.array([[0.6, 0.6, 0.0, 0.0]], dtype=np.float32)
    stems = [[("bass", 0.0), ("drums", 0.0)]]
    held_to = np.array([[0.5, 0.7, 0.5, 0.5]], dtype=np.float32)
    assert mixture_errors(LABELS, scores, held_to, stems).recall_by_label == {"drums": (0.0, 1), "bass": (1.0, 1)}


def test_a_voice_on_top_is_neither_invented_nor_ranked():
    labels = LABELS + ("voice",)
    scores = np.array([[0.9, 0.0, 0.6, 0.0, 0.95]], dtype=np.float32)  # bass + piano, a singer on top
    e = mixture_errors(labels, scores, np.full(5, 0.5, np.float32), [[("bass", 0.0), ("piano", -2.0)]])
    assert e.invented == {} and e.precision_at_n == 1.0


def test_stems_are_read_from_the_corpus_details(tmp_path):
    rows = [{"path": "clips/0.flac", "stems": [{"label": "bass", "gain_db": -2.5}, {"label": "drums", "gain_db": 0}]}]
    (tmp_path / "details.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_stems(tmp_path) == {"clips/0.flac": [("bass", -2.5), ("drums", 0.0)]}


def test_several_models_are_scored_as_the_mean_of_their_scores(tmp_path, capsys):
    """The CLI on a rendered corpus: one model prints its own table; two print the table
    of the mean of their scores (held to the mean threshold), and that mean's mAP."""
    import soundfile as sf
    import torch

    from audio_helpers import make_tiny_model
    from tagger.datasets import read_manifest
    from tagger.evaluate import evaluate
    from tagger.metrics import mean_average_precision
    from tagger.weights import load_checkpoint
    from training import recorded as rec
    from training.mixture_errors import main

    sr = 22050
    root = tmp_path / "samples"
    root.mkdir()
    t = np.arange(int(sr * 6.0)) / sr
    sf.write(root / "a.wav", (0.4 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
    sf.write(root / "b.wav", (0.4 * np.sign(np.sin(2 * np.pi * 330 * t))).astype(np.float32), sr)
    samples = (("pkg", "a.wav", "organ", "phrase"), ("pkg", "b.wav", "synthesizer", "phrase"))
    corpus = tmp_path / "corpus"
    rec.build(corpus, samples, singles=2, mixtures=6, seed=1, roots={"pkg": (root, "some-package")})
    one = make_tiny_model(tmp_path / "m1", seed=1, threshold=0.4)
    two = make_tiny_model(tmp_path / "m2", seed=2, threshold=0.6)

    assert main([str(one), "--corpus", str(corpus), "--jobs", "1"]) == 0
    alone = capsys.readouterr().out
    assert alone.startswith("6 mixtures; precision at n") and "the mean of" not in alone

    assert main([str(one), str(two), "--corpus", str(corpus), "--jobs", "1"]) == 0
    both = capsys.readouterr().out
    ds = read_manifest(corpus / "manifest.csv")
    evs = [evaluate(load_checkpoint(m), ds, torch.device("cpu"), 1, None) for m in (one, two)]
    mean = (evs[0].y_score + evs[1].y_score) / 2
    stems = {(corpus / p).resolve(): s for p, s in read_stems(corpus).items()}
    expected = mixture_errors(evs[0].labels, mean, np.full(mean.shape[1], 0.5), [stems[Path(i.path)] for i in ds.items])
    assert both.startswith(f"the mean of 2 models' scores: mAP {mean_average_precision(evs[0].y_true, mean):.4f}")
    assert markdown(expected) in both
