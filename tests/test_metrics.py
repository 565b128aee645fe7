from __future__ import annotations

import numpy as np
import pytest

from tagger.metrics import (
    average_precision, classification_report, confusion_matrix, mean_average_precision, top1_accuracy, tune_thresholds,
)


def test_average_precision_hand_cases():
    assert average_precision(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == (1 + 2 / 3) / 2
    assert average_precision(np.array([1, 1]), np.array([0.2, 0.1])) == 1.0
    assert np.isnan(average_precision(np.array([0, 0]), np.array([0.2, 0.1])))


def test_report_micro_macro():
    y = np.array([[1, 0], [1, 1], [0, 1]])
    p = np.array([[1, 0], [0, 1], [1, 1]])
    r = classification_report(y, p, ["a", "b"])
    # a: tp1 fp1 fn1 -> f1 .5 ; b: tp2 fp0 fn0 -> f1 1 ; micro: tp3 fp1 fn1 -> .75
    assert r["per_label"]["a"]["f1"] == 0.5 and r["per_label"]["b"]["f1"] == 1.0
    assert r["micro_f1"] == 0.75 and r["macro_f1"] == 0.75
    assert mean_average_precision(y, np.array([[0.9, 0.1], [0.8, 0.7], [0.1, 0.9]])) == 1.0


def test_top1_and_confusion():
    y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    s = np.array([[0.9, 0.1, 0.0], [0.6, 0.5, 0.0], [0.0, 0.1, 0.8], [0.5, 0.5, 0.0]])
    assert top1_accuracy(y, s) == 2 / 3  # the multi-label row is not counted
    assert confusion_matrix(y, s).tolist() == [[1, 0, 0], [1, 0, 0], [0, 0, 1]]


def test_tuned_threshold_separates():
    y = np.array([[1], [1], [0], [0]])
    s = np.array([[0.4], [0.35], [0.3], [0.1]])
    t = tune_thresholds(y, s)[0]
    assert 0.3 < t <= 0.35
    assert tune_thresholds(np.zeros((2, 1)), s[:2])[0] == 0.5


def test_summary_reports_mixture_precision_recall_and_voice_only_items():
    from tagger.evaluate import summarise

    labels = ["bass", "piano", "voice"]
    y_true = np.array([[1, 1, 0], [1, 1, 1], [0, 0, 1], [0, 0, 1], [0, 1, 0]], dtype=np.float32)
    y_score = np.array([[.9, .2, .1], [.9, .9, .9], [.8, .1, .9], [.1, .1, .9], [.1, .9, .1]], dtype=np.float32)
    m = summarise(y_true, y_score, labels, np.full(3, 0.5, np.float32))
    # mixtures are items with 2+ instruments (voice is not one): rows 0 and 1
    assert m["mixtures_items"] == 2
    assert m["mixtures_precision"] == 1.0 and m["mixtures_recall"] == 0.75
    assert m["mixtures_invented_per_item"] == 0.0
    # voice-only rows 2 and 3: one has an invented bass
    assert m["no_instrument_items"] == 2 and m["no_instrument_clean"] == 0.5
    assert m["single_items"] == 1 and m["top1_single"] == 1.0
    assert 0 < m["micro_precision"] <= 1 and 0 < m["micro_recall"] <= 1


def test_global_threshold_maximises_micro_f1_and_is_one_value():
    from tagger.metrics import tune_global_threshold

    y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    s = np.array([[0.8, 0.1], [0.7, 0.6], [0.2, 0.65], [0.3, 0.35]])
    t = tune_global_threshold(y, s)
    assert t.shape == (2,) and t[0] == t[1]
    assert 0.35 < t[0] <= 0.6  # every positive above, every negative below


def test_micro_counts_and_f1_agree_with_the_classification_report():
    from tagger.metrics import f1_from_counts, micro_counts

    rng = np.random.default_rng(3)
    t, p = rng.random((50, 7)) < 0.3, rng.random((50, 7)) < 0.4
    tp, fp, fn = micro_counts(t, p)
    assert (tp, fp, fn) == (float((t & p).sum()), float((~t & p).sum()), float((t & ~p).sum()))
    assert f1_from_counts(tp, fp, fn) == pytest.approx(classification_report(t, p, list("abcdefg"))["micro_f1"])
    assert f1_from_counts(0.0, 3.0, 2.0) == 0.0
