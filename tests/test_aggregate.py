from __future__ import annotations

import numpy as np

from tagger.aggregate import pick_labels, track_scores
from tagger.segments import cut_segments, loudness_db, segment_starts


def test_top_mean_averages_the_best_third():
    seg = np.array([[0.9, 0.1], [0.8, 0.1], [0.1, 0.1], [0.0, 0.1], [0.0, 0.1], [0.0, 0.95]], dtype=np.float32)
    scores = track_scores(seg, top_fraction=0.34)  # k = ceil(0.34 * 6) = 3
    assert np.allclose(scores, [(0.9 + 0.8 + 0.1) / 3, (0.95 + 0.1 + 0.1) / 3])


def test_silent_segments_are_left_out_and_all_silent_gives_zeros():
    seg = np.array([[0.9], [0.2]], dtype=np.float32)
    assert np.allclose(track_scores(seg, audible=np.array([False, True]), top_fraction=1.0), [0.2])
    assert np.allclose(track_scores(seg, audible=np.array([False, False])), [0.0])


def test_single_segment_track():
    assert np.allclose(track_scores(np.array([[0.3, 0.7]]), top_fraction=0.34), [0.3, 0.7])


def test_pick_labels_thresholds_override_and_top_k():
    labels = ["bass", "drums", "piano"]
    scores = np.array([0.6, 0.9, 0.4])
    per_label = {"bass": 0.7, "drums": 0.5, "piano": 0.3}
    assert pick_labels(scores, labels, per_label) == [("drums", 0.9), ("piano", 0.4)]
    assert [l for l, _ in pick_labels(scores, labels, per_label, threshold=0.5)] == ["drums", "bass"]
    assert [l for l, _ in pick_labels(scores, labels, per_label, threshold=0.0, top_k=2)] == ["drums", "bass"]
    assert pick_labels(scores, labels, per_label, threshold=0.95) == []


def test_segment_starts_tail_rule():
    seg, hop = 300, 300
    assert segment_starts(100, seg, hop, 100).tolist() == [0]  # shorter than a segment: one, padded
    assert segment_starts(900, seg, hop, 100).tolist() == [0, 300, 600]
    assert segment_starts(950, seg, hop, 100).tolist() == [0, 300, 600]  # 50 left over: dropped
    assert segment_starts(1000, seg, hop, 100).tolist() == [0, 300, 600]  # exactly 100 left: dropped
    assert segment_starts(1001, seg, hop, 100).tolist() == [0, 300, 600, 701]  # more: one flush with the end
    assert segment_starts(600, seg, 150, 100).tolist() == [0, 150, 300]


def test_cut_segments_pads_and_overlaps():
    audio = np.arange(10, dtype=np.float32)
    assert cut_segments(audio, np.array([0]), 12).tolist() == [list(range(10)) + [0, 0]]
    assert cut_segments(audio, np.array([0, 5]), 5).tolist() == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert cut_segments(audio, np.array([0, 3]), 5).tolist() == [[0, 1, 2, 3, 4], [3, 4, 5, 6, 7]]


def test_loudness_db():
    full = np.ones((1, 100), dtype=np.float32)
    assert abs(loudness_db(full)[0]) < 1e-5
    assert loudness_db(np.zeros((1, 100), dtype=np.float32))[0] < -150


def test_a_track_of_several_segments_is_held_to_the_track_threshold():
    from tagger.aggregate import decision_thresholds

    clip = {"piano": 0.3, "drums": 0.25}
    assert decision_thresholds(clip, {"method": "top_mean", "top_fraction": 0.34}, 5) is clip  # none stored
    agg = {"method": "top_mean", "top_fraction": 0.34, "track_threshold": 0.45}
    assert decision_thresholds(clip, agg, 1) is clip  # one clip: the clip thresholds
    assert decision_thresholds(clip, agg, 2) == {"piano": 0.45, "drums": 0.45}
