"""What one festival voice render costs, run as ``text2wave`` runs it and as the corpus runs it.

    python scripts/bench_voices.py [--repeats 8]

The corpus (``training.corpus.voices``) runs festival's ``text2wave`` script in batch mode
with a small Lisp heap (``voices.text2wave``) instead of the ``text2wave`` command, whose
default heap festival writes in full before every render. Each round renders the same
sung phrase and the same spoken sentence both ways, one after the other (so a busy
machine slows both alike), checks that the two sounds are the same bytes, and prints the
median wall and CPU time (user + system of the festival process) per render and the
ratio. Needs festival and its festvox voices (``scripts/setup_corpus.sh``).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training.corpus import voices  # noqa: E402

JOBS = {  # name: (input file's text, text2wave's arguments before -o)
    "sing 12 notes": (voices.singing_xml([(110.0 * 2 ** (k / 12), 0.35, "la") for k in range(12)]),
                      ["-mode", "singing", "in", "-eval", "(voice_kal_diphone)"]),
    "speak 12 words": ("the night is young and we are running through the city lights again\n",
                       ["in", "-eval", "(voice_ked_diphone)"]),
}


def timed(cmd: list[str], cwd: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``cmd``."""
    before = os.times()
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - t
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=8)
    args = p.parse_args()
    if voices.missing_tools():
        raise SystemExit("bench_voices: needs festival and its voices: bash scripts/setup_corpus.sh")
    print("| render | text2wave: wall / CPU | small heap: wall / CPU | ratio (wall, CPU) |\n| --- | --- | --- | --- |")
    for name, (text, front) in JOBS.items():
        times: dict[str, list[tuple[float, float]]] = {"plain": [], "small": []}
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "in").write_text(text)
            for _ in range(args.repeats):
                times["plain"].append(timed([voices.TEXT2WAVE, *front, "-o", "plain.wav"], tmp))
                times["small"].append(timed(voices.text2wave([*front, "-o", "small.wav"]), tmp))
                if Path(tmp, "plain.wav").read_bytes() != Path(tmp, "small.wav").read_bytes():
                    raise SystemExit(f"bench_voices: {name}: the two renders differ")
        (pw, pc), (sw, sc) = ((statistics.median(t[0] for t in times[k]), statistics.median(t[1] for t in times[k]))
                              for k in ("plain", "small"))
        print(f"| {name} | {pw:.3f} / {pc:.3f} s | {sw:.3f} / {sc:.3f} s | {pw / sw:.1f}x, {pc / sc:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
