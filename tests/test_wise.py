"""training/wise.py: the weight-space ensemble make weights' stage 4 publishes, written idempotently."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from audio_helpers import make_tiny_model
from tagger.weights import load_checkpoint
from training import wise

ROOT = Path(__file__).resolve().parents[1]


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    start = make_tiny_model(tmp_path / "start", seed=0, threshold=0.4)
    tuned = make_tiny_model(tmp_path / "tuned", seed=1, threshold=0.6)
    return start, tuned


def test_the_interpolation_is_tensor_by_tensor_with_the_start_thresholds(tmp_path):
    start, tuned = _pair(tmp_path)
    a, b = load_checkpoint(start), load_checkpoint(tuned)
    a.card["test"] = {"mAP": 0.9}  # a figure measured on the start model
    mixed = wise.interpolated(a, b, 0.7)
    for key, value in a.state_dict.items():
        if value.is_floating_point():
            assert torch.allclose(mixed.state_dict[key], 0.3 * value + 0.7 * b.state_dict[key])
        else:
            assert torch.equal(mixed.state_dict[key], value)
    assert set(mixed.thresholds.values()) == {0.4}
    assert mixed.card["wise"] == {"start": a.version, "finetuned": b.version, "share": 0.7}
    assert mixed.card["finetune"]["weights"] == b.version
    assert "test" not in mixed.card and mixed.name == "tiny-wise70"


def test_writing_the_same_ensemble_again_keeps_the_file(tmp_path):
    start, tuned = _pair(tmp_path)
    out = tmp_path / "wise"
    (out / "tiny-wise70-00000000.safetensors").parent.mkdir()
    (out / "tiny-wise70-00000000.safetensors").write_bytes(b"an older ensemble")
    assert wise.main([str(start), str(tuned), "--share", "0.7", "--out", str(out), "--only"]) == 0
    (first,) = out.glob("*.safetensors")
    stamp = first.stat().st_mtime_ns
    assert wise.main([str(start), str(tuned), "--share", "0.7", "--out", str(out), "--only"]) == 0
    assert list(out.glob("*.safetensors")) == [first] and first.stat().st_mtime_ns == stamp
    assert not list(out.glob(".wise.*"))


def test_the_experiment_script_still_writes_one_file_per_share(tmp_path):
    start, tuned = _pair(tmp_path)
    out = tmp_path / "runs"
    subprocess.run([sys.executable, str(ROOT / "training/experiments/wise.py"), str(start), str(tuned),
                    "--share", "0.3,0.7", "--out", str(out)], check=True, cwd=tmp_path, capture_output=True)
    assert sorted(p.name.split("-")[1] for p in out.glob("*.safetensors")) == ["wise30", "wise70"]
