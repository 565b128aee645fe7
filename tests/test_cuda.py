"""The CUDA path, on a machine that has one (skipped elsewhere); scripts/gpu_check.sh runs these.

Every test here is named ``test_cuda_*``, so ``pytest -k cuda`` picks them with the CUDA
tests of the other files.
"""
from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
import torch

from audio_helpers import noise, tone, write_audio
from tagger.config import FrontendConfig
from tagger.frontend_torch import LogMel
from tagger.inference import Scorer
from tagger.weights import load_checkpoint

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def clips() -> np.ndarray:
    return np.stack([tone(3.0), noise(3.0, 0.2), 0.5 * tone(3.0, 880) + noise(3.0, 0.02, seed=1)])


def test_cuda_frontend_matches_the_cpu():
    cfg = FrontendConfig()
    audio = torch.from_numpy(clips())
    cpu = LogMel(cfg)(audio)
    gpu = LogMel(cfg).to("cuda")(audio.to("cuda")).cpu()
    assert gpu.dtype == torch.float32 and gpu.shape == cpu.shape
    assert (gpu - cpu).abs().max() < 2e-3  # cuFFT and the CPU's FFT differ by rounding


def test_cuda_scores_match_the_cpu_under_float16(tiny_model):
    ckpt = load_checkpoint(tiny_model)
    cpu = Scorer(ckpt, "cpu").score(clips())
    gpu = Scorer(ckpt, "cuda").score(clips())
    assert gpu.shape == cpu.shape and np.abs(gpu - cpu).max() < 2e-2  # the network runs in float16 on CUDA


def test_cuda_scan_from_the_command_line(tiny_model, tmp_path):
    write_audio(tmp_path / "lib" / "a.wav", tone(7.0))
    write_audio(tmp_path / "lib" / "b.flac", noise(4.0))
    proc = subprocess.run([sys.executable, "-m", "tagger", "scan", str(tmp_path / "lib"), "--model", str(tiny_model),
                           "--device", "cuda", "--csv", str(tmp_path / "r.csv"), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["ok", "ok"] and all(int(r["segments"]) >= 1 for r in rows)
