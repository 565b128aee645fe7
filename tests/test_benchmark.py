"""scripts/benchmark.py: what it parses, the targets it applies, and the run it refuses.

Nothing here is timed: speed is the benchmark's own business, on a quiet machine.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "benchmark.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmark"] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules["benchmark"]


def test_cuda_asked_for_without_cuda_exits_2_before_building_anything(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    work = tmp_path / "work"
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cuda", "--work", str(work), "--files", "1,2"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("benchmark: ") and "CUDA" in done.stderr
    assert done.stdout == "" and not work.exists()


def test_libraries_device_and_coverage_options(bench):
    args = bench.parse_args(["--files", "20,60", "--device", "cpu", "--coverage", "0.3", "--scan-args", "--batch-size 512"])
    assert args.files == [20, 60] and args.device == "cpu" and args.coverage == 0.3
    assert bench.parse_args([]).files == [20] and bench.parse_args([]).device == "auto"
    assert bench.scan_args("cuda", args.scan_args) == ["--device", "cuda", "--batch-size", "512"]
    assert bench.scan_args("cpu", "", args.coverage) == ["--device", "cpu", "--coverage", "0.3"]
    for bad in (["--files", "20,x"], ["--files", "0"], ["--files", ""], ["--coverage", "0"], ["--coverage", "1.5"],
                ["--device", "tpu"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


def test_targets_follow_the_length_of_each_library(bench):
    assert bench.target("scan_over_decode", 20 * 3.0)[:2] == (">=", 0.6)
    assert bench.target("scan_over_decode", 60 * 3.0)[:2] == (">=", 0.7)
    assert bench.target("scan_over_decode", 4 * 1.0) is None  # a smoke-test library has no speed target
    hour, small = (bench.Library(n, 3.0, Path("."), [], n * 180.0) for n in (20, 2))
    figures = {"scan_xrt": 500.0, "scan_over_decode": 0.65, "scan_cpu_over_decode": 1.6, "scan_peak_rss_mb": 1024.0}
    targets = bench.all_targets([hour, small], [figures, figures], {"long_peak_rss_mb": 1100.0})
    assert {k: t["met"] for k, t in targets.items()} == {
        "scan_xrt[20x3min]": True, "scan_over_decode[20x3min]": True, "scan_cpu_over_decode[20x3min]": False,
        "scan_peak_rss_mb[20x3min]": True, "scan_xrt[2x3min]": True, "scan_cpu_over_decode[2x3min]": False,
        "scan_peak_rss_mb[2x3min]": True, "long_peak_rss_mb": False,
    }  # no coverage or model figures measured: no such targets
