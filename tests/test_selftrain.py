"""training/selftrain.py: game-music clips, a teacher's scores, a manifest of the confident ones."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_helpers import SR, noise, tone, write_audio
from tagger.datasets import read_dataset
from training import selftrain
from training.selftrain import ConfidenceRule, calibrated, combine_scores, main, uncertain


@pytest.fixture
def music(tmp_path) -> Path:
    """A tiny 'game package': three tracks of a few seconds, one with a silent stretch, and a non-audio file."""
    folder = tmp_path / "game"
    write_audio(folder / "theme.ogg", tone(10.0, 220) + tone(10.0, 660, amp=0.1))
    write_audio(folder / "sub" / "battle.wav", noise(8.0, seed=1) + tone(8.0, 110))
    write_audio(folder / "calm.flac", np.concatenate([np.zeros(4 * SR, np.float32), tone(6.0, 880)]))
    (folder / "readme.txt").write_text("not music")
    return folder


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def build(out: Path, music: Path, model: Path, *extra: str) -> None:
    assert main(["--out", str(out), "--teacher", str(model), "--music", str(music), "--per-track", "3", *extra]) == 0


def test_the_manifest_lists_only_the_confident_clips_with_soft_targets(music, tiny_model, tmp_path):
    out = tmp_path / "corpus"
    build(out, music, tiny_model)
    clips = rows(out / "clips.csv")
    assert list(clips[0]) == ["path", "source", "track", "start_s"]
    # 3 clips of each track, but the silent start of calm.flac (a quiet clip) is left out
    assert 6 <= len(clips) < 9 and all((out / c["path"]).is_file() for c in clips)
    audio, sr = sf.read(out / clips[0]["path"])
    assert sr == SR and audio.ndim == 1 and len(audio) == 3 * SR
    assert {Path(c["track"]).name for c in clips} == {"theme.ogg", "battle.wav", "calm.flac"}
    assert (out / "build.json").is_file()

    # a margin that splits the random model's scores: some clips kept, some not
    teacher = rows(out / "teacher.csv")
    labels = [c for c in teacher[0] if c != "path"]
    scores = np.array([[float(r[l]) for l in labels] for r in teacher])
    thresholds = json.loads((out / "thresholds.json").read_text())
    p = calibrated(scores, labels, thresholds)
    margin = float(np.median(np.abs(np.log(p) - np.log1p(-p)).min(axis=1))) + 1e-4
    before = {c["path"]: (out / c["path"]).stat().st_mtime_ns for c in clips}
    build(out, music, tiny_model, "--reuse", "--margin", str(margin), "--max-uncertain", "0")
    assert {c["path"]: (out / c["path"]).stat().st_mtime_ns for c in clips} == before  # clips kept, not cut again
    manifest = rows(out / "manifest.csv")
    assert list(manifest[0]) == ["path", "labels", "targets", "source", "kind", "programs"]
    confident = {t["path"] for t, u in zip(teacher, uncertain(p, margin).sum(axis=1)) if u == 0}
    assert 0 < len(manifest) < len(clips) and {m["path"] for m in manifest} == confident
    ds = read_dataset(out / "manifest.csv")
    soft = ds.targets(labels, soft=True)
    assert ((soft > 0) & (soft < 1)).any()
    assert np.array_equal(soft >= 0.5, ds.targets(labels).astype(bool))  # labels are the targets >= 0.5
    assert all(m["source"] == "game" and m["kind"] == "selftrain" for m in manifest)


def test_musicnn_tags_on_a_second_call_only_rewrite_the_manifest(music, tiny_model, tmp_path):
    out = tmp_path / "corpus"
    build(out, music, tiny_model, "--margin", "0")  # keep every clip
    clips = rows(out / "clips.csv")
    first = {m["path"]: m["targets"] for m in rows(out / "manifest.csv")}
    teacher_mtime = (out / "teacher.csv").stat().st_mtime_ns
    tags = out / "musicnn.csv"
    with open(tags, "w", newline="") as fh:  # musicnn sure of piano and of no drums on every clip but the last
        w = csv.writer(fh)
        w.writerow(["path", "piano", "drums", "beat", "guitar", "techno"])
        for c in clips[:-1]:
            w.writerow([c["path"], 0.99, 0.001, 0.001, 0.99, 0.5])
    build(out, music, tiny_model, "--margin", "0", "--reuse", "--teacher-tags", str(tags))
    assert (out / "teacher.csv").stat().st_mtime_ns == teacher_mtime
    second = {m["path"]: dict(kv.split("=") for kv in m["targets"].split(";")) for m in rows(out / "manifest.csv")}
    before = {p: dict(kv.split("=") for kv in t.split(";")) for p, t in first.items()}
    for c in clips[:-1]:
        assert float(second[c["path"]]["piano"]) > float(before[c["path"]]["piano"])
        assert float(second[c["path"]]["drums"]) < float(before[c["path"]]["drums"])
        assert second[c["path"]]["organ"] == before[c["path"]]["organ"]  # musicnn has no organ
    assert second[clips[-1]["path"]] == before[clips[-1]["path"]]  # no musicnn row: ours alone


def test_musicnn_guitar_only_confirms_or_denies_a_guitar_our_teacher_names():
    labels = ["acoustic_guitar", "electric_guitar", "piano"]
    ours = np.array([[0.9, 0.1, 0.5]], np.float32)
    theirs = np.array([[0.0, 0.0, np.nan]], np.float32)
    combined = combine_scores(ours, theirs, labels, 0.5)
    assert combined[0].tolist() == pytest.approx([0.45, 0.1, 0.5])


def test_the_default_rule_keeps_a_clip_with_two_uncertain_labels_of_many():
    rule = ConfidenceRule()
    p = np.array([[0.5, 0.6, 0.99, 0.01], [0.5, 0.6, 0.7, 0.01]], np.float32)
    assert (uncertain(p, rule.margin).sum(axis=1) <= rule.max_uncertain).tolist() == [True, False]


def test_a_game_package_gives_its_music_files_only():
    if shutil.which("dpkg") is None or not selftrain.installed("wesnoth-1.16-music"):
        pytest.skip("wesnoth-1.16-music is not installed (apt-get install wesnoth-1.16-music)")
    tracks = selftrain.package_tracks("wesnoth-1.16-music")
    assert len(tracks) > 10
    assert all(t.source == "wesnoth-1.16-music" and "music" in t.path.parts and t.path.suffix == ".ogg" for t in tracks)


def test_clips_cut_again_drop_the_other_teachers_tags_of_the_old_clips(music, tiny_model, tmp_path):
    """training.teacher completes musicnn.csv by clip name, and new clips may carry the old
    names: tags of audio that is gone must not be kept for the new clips."""
    out = tmp_path / "corpus"
    build(out, music, tiny_model, "--margin", "0")
    (out / "musicnn.csv").write_text("path,piano\n" + "".join(f"{c['path']},0.99\n" for c in rows(out / "clips.csv")))
    build(out, music, tiny_model, "--margin", "0", "--seed", "1")  # other clips, the same names
    assert not (out / "musicnn.csv").exists()


def test_a_package_dpkg_knows_but_that_is_not_installed_is_not_installed(monkeypatch):
    import subprocess

    for status, answer in (("install ok installed", True), ("deinstall ok config-files", False),
                           ("purge ok not-installed", False), ("unknown ok not-installed", False)):
        monkeypatch.setattr(subprocess, "run", lambda *a, _s=status, **k: subprocess.CompletedProcess(a, 0, _s, ""))
        assert selftrain.installed("naev-data") is answer
