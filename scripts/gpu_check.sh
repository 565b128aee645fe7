#!/usr/bin/env bash
# The CUDA path, checked on a machine with an NVIDIA GPU, in under ten minutes:
#   1. the CUDA tests (every test file that mentions cuda, tests named *cuda*),
#   2. scripts/benchmark.py --device cuda on a small library (2 files of 1 min, one round),
#   3. a two-epoch `tagger train --device cuda` on a tiny dataset made here, and a scan on
#      cuda with the weights it wrote,
# then one summary line per step and an overall verdict. Exit 0 when all passed, 1 if not.
#
# Where there is no GPU (`nvidia-smi -L` fails, or torch sees no CUDA device) it says so in
# one line and exits 0. On a fresh copy of the repository it first makes .venv with
# scripts/setup.sh (the CUDA build of torch, since nvidia-smi sees a GPU) and the extras the
# checks need. Settings: VENV (default .venv), PYTHON (a Python that has torch with CUDA and
# tagger's dependencies already, used instead of VENV), GPU_CHECK_LIMIT_S (default 600: the whole run,
# setup included), GPU_CHECK_WORK (default a new temporary folder, removed at the end when
# all passed), GPU_CHECK_DEVICE=cpu (the same steps on the CPU: to try this script without a GPU).
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
LIMIT_S=${GPU_CHECK_LIMIT_S:-600}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
START=$(date +%s)

if [ "$DEVICE" = cuda ] && { ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; }; then
  echo "gpu_check: no NVIDIA GPU on this machine (nvidia-smi -L fails): nothing to check"
  exit 0
fi

left() { echo $(( LIMIT_S - ($(date +%s) - START) )); }
# A step's time limit: at most $1 seconds, and never past the whole run's limit.
cap() { local l; l=$(left); (( l < $1 )) && echo $(( l > 1 ? l : 1 )) || echo "$1"; }

PY=${PYTHON:-$VENV/bin/python}
if [ -z "${PYTHON:-}" ] && ! "$PY" -c "import torch, tagger, pytest, soundfile" >/dev/null 2>&1; then
  echo "gpu_check: setting up $VENV (scripts/setup.sh) ..." >&2
  if ! EXTRAS=${EXTRAS-test,train} VENV="$VENV" timeout "$(cap 420)" scripts/setup.sh >&2; then
    echo "gpu_check: FAILED: scripts/setup.sh did not finish (see above)"
    exit 1
  fi
fi
if ! cuda=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" 2>&1); then
  echo "gpu_check: FAILED: torch does not import in $PY: ${cuda##*$'\n'}"
  exit 1
fi
if [ "$DEVICE" = cpu ]; then
  cuda="the CPU (GPU_CHECK_DEVICE=cpu)"
elif [ -z "$cuda" ]; then
  echo "gpu_check: nvidia-smi sees a GPU but torch $("$PY" -c 'import torch; print(torch.__version__)') has no CUDA device (a CPU build? remove the venv and run again): nothing to check"
  exit 0
fi

WORK=${GPU_CHECK_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}
[ -n "${GPU_CHECK_WORK:-}" ] || trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
summary=()
failed=0
step() {  # step NAME LIMIT_S COMMAND...: run it (output in WORK/NAME.log), add one summary line
  local name=$1 limit; limit=$(cap "$2"); shift 2
  local t0=$SECONDS rc
  timeout "$limit" "$@" >"$WORK/$name.log" 2>&1
  rc=$?
  local took=$(( SECONDS - t0 ))
  if [ $rc -eq 0 ] || { [ "$name" = benchmark ] && [ $rc -eq 1 ] && [ -s "$WORK/bench/benchmark.json" ]; }; then
    summary+=("ok      $name (${took} s): $(detail "$name" $rc)")
  else
    failed=1
    local why="exit $rc"; [ $rc -eq 124 ] && why="stopped after its ${limit} s"
    summary+=("FAILED  $name (${took} s, $why): $(tail -n 3 "$WORK/$name.log" | tr '\n' ' ' | cut -c1-300)")
  fi
}
detail() {  # what a step that passed measured
  case $1 in
    tests) tail -n 1 "$WORK/tests.log" ;;
    benchmark) "$PY" - "$WORK/bench/benchmark.json" "$2" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
scan = r["libraries"][0]["runs"]["scan"][0]
model = r["runs"].get("model_cuda") or r["runs"]["model_t2"]
print(f"scan {scan['xrt']:.0f}x real time ({scan['wall_s']:.1f} s for {scan['audio_s'] / 60:.0f} min of audio), "
      f"model alone {model[0]['seg_s']:.0f} segments/s on {r['meta']['gpu'] or 'the CPU (2 threads)'}"
      + ("; some speed targets missed at this small size" if sys.argv[2] == "1" else ""))
EOF
    ;;
    train) "$PY" - "$WORK/train" <<'EOF'
import json, sys
from pathlib import Path
history = json.loads((Path(sys.argv[1]) / "history.json").read_text())
print(f"{len(history)} epochs, val mAP {history[-1]['val_mAP']:.3f}, last epoch {history[-1]['seconds']:.1f} s")
EOF
    ;;
    train_scan) "$PY" - "$WORK/train_scan.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
print(f"the trained weights scanned {sum(r['status'] == 'ok' for r in rows)}/{len(rows)} files")
EOF
    ;;
  esac
}

# 1. The CUDA tests.
mapfile -t cuda_tests < <(grep -l cuda tests/test_*.py)
step tests 180 "$PY" -m pytest -q -p no:cacheprovider -k cuda "${cuda_tests[@]}"

# 2. The benchmark on cuda, small (it exits 1 when a speed target is missed: still a run).
step benchmark 240 "$PY" scripts/benchmark.py --device "$DEVICE" --files 2 --minutes-per-file 1 --repeats 1 \
  --naive-files 1 --work "$WORK/bench"

# 3. A short training on cuda on a tiny dataset (3 classes of 8 three-second clips), and a
#    scan on cuda with the weights it wrote.
"$PY" - "$WORK/data" <<'EOF'
import sys
from pathlib import Path
import numpy as np
import soundfile as sf
sr, rng = 22050, np.random.default_rng(0)
t = np.arange(3 * sr) / sr
for label, freq in (("hum", 110.0), ("whistle", 2000.0), ("hiss", None)):
    (Path(sys.argv[1]) / label).mkdir(parents=True, exist_ok=True)
    for i in range(8):
        x = 0.3 * np.sin(2 * np.pi * freq * (1 + 0.03 * rng.standard_normal()) * t) if freq else 0.1 * rng.standard_normal(len(t))
        sf.write(Path(sys.argv[1]) / label / f"{i}.wav", x.astype(np.float32), sr)
EOF
step train 150 "$PY" -m tagger train "$WORK/data" --out "$WORK/train" --device "$DEVICE" --epochs 2 --width 8 \
  --batch-size 8 --jobs 2 --name gpucheck --val-fraction 0.25
weights=$(ls "$WORK"/train/gpucheck-*.safetensors 2>/dev/null | head -n 1)
if [ -n "$weights" ]; then
  step train_scan 60 "$PY" -m tagger scan "$WORK/data" --model "$weights" --device "$DEVICE" --csv "$WORK/train_scan.csv" --quiet
fi

driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1)
echo "gpu_check on $cuda${driver:+ (driver $driver)}," \
     "torch $("$PY" -c 'import torch; print(torch.__version__ + (f" (CUDA {torch.version.cuda})" if torch.version.cuda else ""))'), $(( $(date +%s) - START )) s:"
printf '  %s\n' "${summary[@]}"
if [ $failed -eq 0 ]; then echo "gpu_check: all passed"; else echo "gpu_check: FAILED (logs in $WORK)"; trap - EXIT; fi
exit $failed
