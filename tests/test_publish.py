"""training/publish.py: publishing the same run again keeps the published file (make weights resumes)."""
from __future__ import annotations

import json
import shutil

from audio_helpers import make_tiny_model
from tagger.weights import load_checkpoint
from training import publish


def _corpus(folder):
    folder.mkdir()
    (folder / "manifest.csv").write_text("path,labels,source,kind\na.flac,piano,fluidr3,single\nb.flac,,negatives,tone\n")
    return folder


def test_a_second_publish_from_the_same_inputs_keeps_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(publish, "measure_speed", lambda ckpt: {"segments_per_s": 1})  # the probe is timing
    run, out = tmp_path / "run", tmp_path / "weights"
    make_tiny_model(run)
    corpus = _corpus(tmp_path / "corpus_train")
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"description": "a tiny model"}))
    argv = [str(run), "--corpus", str(corpus), "--out", str(out), "--card", str(card), "--ablation", str(tmp_path / "none.md")]
    publish.main(argv)
    (first,) = out.glob("*.safetensors")
    published = load_checkpoint(first).card
    assert published["published_from"]["weights"] == load_checkpoint(next(run.glob("*.safetensors"))).version
    assert published["corpus"][0]["clips_without_label"] == 1 and (out / "MODEL_CARD.md").exists()
    stamp = first.stat().st_mtime_ns

    monkeypatch.setattr(publish, "measure_speed", lambda ckpt: {"segments_per_s": 2})  # another speed: kept all the same
    publish.main(argv)
    assert "already published from the same inputs, kept" in capsys.readouterr().out
    assert list(out.glob("*.safetensors")) == [first] and first.stat().st_mtime_ns == stamp

    card.write_text(json.dumps({"description": "another text"}))  # other inputs: published again
    publish.main(argv)
    (second,) = out.glob("*.safetensors")
    assert second != first and load_checkpoint(second).card["description"] == "another text"


def test_another_run_replaces_the_published_file(tmp_path, monkeypatch):
    monkeypatch.setattr(publish, "measure_speed", lambda ckpt: {"segments_per_s": 1})
    out = tmp_path / "weights"
    for seed in (0, 1):
        run = tmp_path / f"run{seed}"
        make_tiny_model(run, seed=seed)
        publish.main([str(run), "--out", str(out), "--card", str(tmp_path / "none.json"),
                      "--ablation", str(tmp_path / "none.md")])
        shutil.rmtree(run)
    assert len(list(out.glob("*.safetensors"))) == 1
