"""scripts/gpu_check.sh where there is no GPU: one line, exit 0, nothing set up or run."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu_check.sh"


def fake_nvidia_smi(folder: Path, works: bool) -> dict:
    """An environment whose nvidia-smi (first on PATH) fails, or lists one GPU."""
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / "nvidia-smi"
    tool.write_text("#!/bin/sh\n" + ('echo "GPU 0: Fake GPU (UUID: GPU-0)"\n' if works else "echo 'NVIDIA-SMI has failed' >&2\nexit 9\n"))
    tool.chmod(0o755)
    return dict(os.environ, PATH=f"{folder}:{os.environ['PATH']}", VENV=str(Path(sys.executable).parent.parent))


def test_without_a_gpu_it_says_so_in_one_line_and_exits_0(tmp_path):
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60,
                          env=fake_nvidia_smi(tmp_path / "bin", works=False), cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0, "gpu_check: no NVIDIA GPU on this machine (nvidia-smi -L fails): nothing to check\n", "")


def test_a_gpu_that_torch_cannot_use_is_said_in_one_line_and_exits_0(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("torch sees a CUDA device here: the script would run the whole check")
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120,
                          env=fake_nvidia_smi(tmp_path / "bin", works=True), cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    [line] = proc.stdout.splitlines()
    assert line.startswith("gpu_check: nvidia-smi sees a GPU but torch ") and line.endswith(
        "has no CUDA device (a CPU build? remove the venv and run again): nothing to check")
