"""`tagger info`: the model card for people (generic over the card's keys) and as JSON; no torch."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import torch

from tagger.config import FrontendConfig, ModelConfig
from tagger.models import Tagger
from tagger.weights import Checkpoint, save_checkpoint
from test_cli import tagger

LABELS = ("piano", "saxophone", "voice")
CARD = {
    "description": "A test model that knows three sounds.",
    "corpus": [{"folder": "corpus_train", "clips": 1200, "clips_per_label": {"piano": 400, "saxophone": 390, "voice": 410},
                "sources": {"fluidr3": 800, "festival": 400}}],
    "validation": {"items": 90, "mAP": 0.812, "micro_f1": 0.7, "per_label": {"piano": {"f1": 0.91}, "saxophone": {"f1": 0.55}}},
    "voice_heldout": {"items": 40, "micro_f1": 0.66, "speaker_f1": 0.71, "per_label": {"voice": {"f1": 0.8}}},  # a new set
    "voice_heldout_about": "espeak-ng voices never heard in training",
    "heldout": {"voice_only": {"items": 30, "no_instrument_items": 30, "no_instrument_clean": 0.933, "about": "voices alone",
                               "top1_single": float("nan")}},  # a set without single clips has no top-1
    "speed": {"segments_per_s": 800, "threads": 2},
    "weaknesses": ["Confuses saxophone with voice."],
    "augmentations": {"reverb": {"rooms": 12}, "eq_db": 10.0},  # keys this tagger has never seen
    "voices": [{"engine": "festival", "voices": 3}, {"engine": "espeak-ng", "voices": 5}],
    "ablation": "| run | change | test micro-F1 |\n| --- | --- | ---: |\n| base | **none** | 0.745 |\n| voices | `+voice` | 0.741 |",
}


def _model(tmp_path):
    torch.manual_seed(0)
    config = ModelConfig("resnet", LABELS, width=8)
    net = Tagger(FrontendConfig(), config)
    return save_checkpoint(Checkpoint(FrontendConfig(), config, net.classifier.state_dict(),
                                      {"piano": 0.3, "saxophone": 0.25, "voice": 0.5}, card=CARD, name="cardtest"), tmp_path)


def test_info_reads_like_a_model_card(tmp_path):
    model = _model(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "tagger", "info", "--full", "--model", str(model)], capture_output=True, text=True,
                          timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", **_pythonpath()})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "{" not in out and "'" not in out and "| base |" not in out  # no raw dicts, no raw markdown
    for text in ("A test model that knows three sounds.", "threshold", "validation F1", "voice heldout F1",
                 "0.910", "0.800", "mAP", "speaker f1", "espeak-ng voices never heard in training",
                 "heldout voice only", "no instrument: share left unlabelled", "0.933", "heldout voice only: voices alone",
                 "corpus_train · 1,200 clips · 390–410 per label", "sources: festival 400, fluidr3 800",
                 "800 segments/s", "Confuses saxophone with voice.", "augmentations: eq db 10, reverb (rooms 12)",
                 "voices: engine festival, voices 3", "voices: engine espeak-ng, voices 5", "ablation", "test micro-F1", "+voice"):
        assert text in out, text
    assert not re.search(r"\bnan\b", out)  # a figure a set cannot have is a dash, like a missing one


def test_info_json_and_no_torch(tmp_path):
    model = _model(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "tagger", "info", "--model", str(model), "--json"], capture_output=True,
                          text=True, timeout=120)
    card = json.loads(proc.stdout)
    assert card["labels"] == list(LABELS) and card["thresholds"]["voice"] == 0.5
    assert json.dumps(card["card"], sort_keys=True) == json.dumps(CARD, sort_keys=True)  # NaN == NaN as text
    code = ("import sys\nfrom tagger.cli import app\ntry:\n    app(prog_name='tagger', args=['info', '--model', sys.argv[1]])\n"
            "except SystemExit:\n    pass\nassert 'torch' not in sys.modules, 'info imported torch'\nprint('no torch')")
    proc = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "no torch" in proc.stdout, proc.stderr


def _pythonpath() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "HOME", "LANG")}
