#!/usr/bin/env bash
# Make the musicnn teacher's venv (default .venv-teacher in the clone; first argument overrides), apart from
# the project's venv: TensorFlow 2.15 (CPU) + Keras 2, librosa 0.9, numpy 1.26 and musicnn 0.1.0,
# all pinned in training/teacher-requirements.txt and installed with --no-deps (musicnn's own
# metadata asks for numpy<1.17, which its code does not need). Then checks that the model loads
# and tags one generated second of sound. Needs CPython 3.11 (TensorFlow 2.15 has no wheel for
# 3.12+): PYTHON overrides which one.
#   scripts/setup_teacher.sh [VENV]
#   VENV/bin/python -m training.teacher CLIPS.csv --jobs 1     # from the repository root
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv-teacher}"
PYTHON="${PYTHON:-python3.11}"
if [ ! -x "$VENV/bin/python" ]; then
  command -v "$PYTHON" >/dev/null || {
    echo "setup_teacher: $PYTHON is needed (TensorFlow 2.15 has no wheel for a newer Python); install it, or name another 3.9-3.11 with PYTHON=" >&2
    exit 1; }
  "$PYTHON" -m venv "$VENV" || { rm -rf "$VENV"; echo "setup_teacher: could not make a venv with $PYTHON (Debian: python3-venv)" >&2; exit 1; }
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q --no-deps -r "$ROOT/training/teacher-requirements.txt"
cd "$ROOT"
"$VENV/bin/python" - <<'PY'
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from training.teacher import MTT_LABELS, MusicnnTeacher

with tempfile.TemporaryDirectory() as tmp:
    clip = Path(tmp) / "tone.wav"
    t = np.arange(16000) / 16000
    sf.write(clip, 0.3 * np.sin(2 * np.pi * 440 * t), 16000)
    scores = MusicnnTeacher().clip_scores(clip)
assert scores.shape == (len(MTT_LABELS),) and np.all((scores >= 0) & (scores <= 1)), scores
print(f"setup_teacher: musicnn ready ({len(MTT_LABELS)} MTT tags)")
PY
