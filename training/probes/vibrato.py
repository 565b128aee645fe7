"""Does the model need vibrato to hear a bowed string? Held-out physical variants, same
stems and seeds, vibrato as drawn vs forced off; top-1 share per label."""
import sys
from collections import Counter
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))  # test_physical's material helper
from training.corpus import physical as ph
from training.corpus.sources import Stem
from tagger.inference import Scorer
from test_physical import _material

orig = ph.voice_tracks
def novib(*a, **k):
    k["vib_cents"] = (0.0, 0.0)
    return orig(*a, **k)

cases = [("violin", 40), ("violin", 41), ("cello", 42)]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 20
scorers = [Scorer.from_path(p, "cpu") for p in sys.argv[1].split(",")]
for cond in ("as drawn", "no vibrato"):
    ph.voice_tracks = orig if cond == "as drawn" else novib
    segs, labels = [], []
    for label, prog in cases:
        for seed in range(N):
            stem = Stem(label, 0, prog, _material(label, prog, 1000 + seed))
            y = ph.render_physical(stem, 1000 + seed, heldout=seed % 2 == 0)
            segs.append(y[:66150]); labels.append(label)
    x = np.stack(segs).astype(np.float32)
    for sc, name in zip(scorers, sys.argv[1].split(",")):
        p = sc.score(x)
        top = [sc.labels[i] for i in p.argmax(1)]
        for lab in ("violin", "cello"):
            idx = [i for i, l in enumerate(labels) if l == lab]
            c = Counter(top[i] for i in idx)
            print(f"{name.split('/')[-2] if '/' in name else name} | {cond} | {lab}: top-1 {c[lab]/len(idx):.2f}; called {c.most_common(4)}")
