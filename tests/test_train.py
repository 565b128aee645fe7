"""A short real training run on tiny synthetic data, resume, fine-tuning and eval."""
from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tagger.train
from audio_helpers import SR, write_audio
from tagger.datasets import read_dataset
from tagger.inference import Scorer
from tagger.scan import Scanner, ScanOptions
from tagger.train import TrainConfig, stratified_split, train
from tagger.weights import load_checkpoint


def synth_dataset(root: Path, n: int = 10) -> Path:
    """Three 'instruments' anyone can tell apart: a low hum, a high whistle, hiss."""
    rng = np.random.default_rng(0)
    t = np.arange(3 * SR) / SR
    for label, freq in (("hum", 110.0), ("whistle", 2000.0), ("hiss", None)):
        for i in range(n):
            if freq:
                x = 0.3 * np.sin(2 * np.pi * freq * (1 + 0.03 * rng.standard_normal()) * t)
            else:
                x = 0.1 * rng.standard_normal(len(t))
            write_audio(root / label / f"{i}.wav", (x + 0.005 * rng.standard_normal(len(t))).astype(np.float32))
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    data = synth_dataset(root / "data")
    cfg = TrainConfig(data=[str(data)], out=str(root / "run"), width=8, epochs=2, batch_size=8, jobs=1, lr=3e-3,
                      mixup=0.0, val_fraction=0.2, name="toy")
    return cfg, train(cfg)


def test_two_epoch_run_makes_a_checkpoint_that_scan_loads(trained):
    cfg, result = trained
    run = Path(cfg.out)
    assert len(result.history) == 2 and (run / "curves.png").stat().st_size > 0
    assert json.loads((run / "history.json").read_text())[-1]["epoch"] == 2
    ckpt = load_checkpoint(result.weights)
    assert ckpt.labels == ("hiss", "hum", "whistle") and set(ckpt.thresholds) == set(ckpt.labels)
    assert ckpt.card["train_files"] == 24 and ckpt.card["validation_files"] == 6
    results = list(Scanner(Scorer(ckpt), ScanOptions(jobs=1)).scan([Path(cfg.data[0]) / "hum"]))
    assert len(results) == 10 and all(r.status == "ok" and set(r.scores) == set(ckpt.labels) for r in results)


def test_resume_continues_where_it_stopped(trained, tmp_path, monkeypatch):
    """Resume a copy of the run: the shared run folder and its weights stay as they were.

    Whether a third epoch beats the first two depends on the CPU (training is not
    bit-identical across machines), so here every epoch is made to win: the resumed run
    replaces its best weights, in its own folder only.
    """
    cfg, first = trained
    copy = tmp_path / "run"
    shutil.copytree(cfg.out, copy)
    before = {p.name: p.read_bytes() for p in Path(cfg.out).iterdir() if p.is_file()}
    better = itertools.count(10)
    monkeypatch.setattr(tagger.train, "mean_average_precision", lambda *args: float(next(better)))
    again = train(dataclasses.replace(cfg, out=str(copy), epochs=3))
    assert [h["epoch"] for h in again.history] == [1, 2, 3]
    assert again.history[:2] == first.history
    assert again.weights.parent == copy and again.weights.exists() and load_checkpoint(again.weights).card["epoch"] == 3
    assert {p.name: p.read_bytes() for p in Path(cfg.out).iterdir() if p.is_file()} == before


def test_a_kill_while_saving_a_new_best_leaves_a_state_whose_weights_exist(trained, tmp_path, monkeypatch):
    """Killed after epoch 2's better weights were written but before state.pt was: the state
    still names epoch 1's weights, so they must still be there, and the run resumes."""
    import torch

    cfg, _ = trained
    better = itertools.count(10)
    monkeypatch.setattr(tagger.train, "mean_average_precision", lambda *args: float(next(better)))
    saves = itertools.count(1)
    real_save = tagger.train._atomic_torch_save

    def killed_at_second_save(obj, path):
        if next(saves) == 2:
            raise KeyboardInterrupt
        real_save(obj, path)

    monkeypatch.setattr(tagger.train, "_atomic_torch_save", killed_at_second_save)
    run = dataclasses.replace(cfg, out=str(tmp_path / "run"))
    with pytest.raises(KeyboardInterrupt):
        train(run)
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=True)
    assert state["epoch"] == 1 and (tmp_path / "run" / state["best"]["weights"]).exists()
    monkeypatch.setattr(tagger.train, "_atomic_torch_save", real_save)
    assert [h["epoch"] for h in train(run).history] == [1, 2]
    assert len(list((tmp_path / "run").glob("*.safetensors"))) == 1


def test_a_finished_run_with_a_test_set_resumes_to_its_own_weights(trained, tmp_path):
    """make weights run twice: the finished fine-tune (with --test, whose figures are added
    to the weights under a new name) resumes to the same weights instead of failing or
    deleting them."""
    cfg, _ = trained
    run = dataclasses.replace(cfg, out=str(tmp_path / "run"), test=[cfg.data[0]], epochs=1)
    first = train(run)
    again = train(run)
    assert again.weights == first.weights and again.weights.exists() and again.test == first.test
    assert [p.name for p in (tmp_path / "run").glob("*.safetensors")] == [first.weights.name]


def test_a_run_resumes_only_with_its_own_settings_and_data(trained, tmp_path):
    """Continuing a run's weights with other settings or data would make a model of neither
    (make weights resumes its stages this way): refused in one line before any feature is
    computed, the run folder untouched. More epochs or another device are the same run."""
    from tagger.errors import RunMismatchError

    cfg, first = trained
    copy = tmp_path / "run"
    shutil.copytree(cfg.out, copy)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    with pytest.raises(RunMismatchError, match=r"with other settings \(eq_db, lr\); resuming"):
        train(dataclasses.replace(cfg, out=str(copy), lr=1e-3, eq_db=20.0))
    data = tmp_path / "data"
    shutil.copytree(cfg.data[0], data)
    small = dataclasses.replace(cfg, out=str(tmp_path / "small"), data=[str(data)], epochs=1)
    train(small)
    (data / "hum" / "0.wav").write_bytes((data / "hum" / "1.wav").read_bytes())  # one file re-rendered
    with pytest.raises(RunMismatchError, match="made with other training or validation files;"):
        train(small)
    proc = subprocess.run([sys.executable, "-m", "tagger", "train", str(data), "--out", str(copy), "--width", "8",
                           "--epochs", "2", "--jobs", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "delete this state.pt to start over" in proc.stderr
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before
    again = train(dataclasses.replace(cfg, out=str(copy), epochs=2, patience=9, jobs=2))  # the same run
    assert again.history == first.history
    import torch  # a state written before `inputs` and a setting (here eq_db) existed: the same run too

    state = torch.load(copy / "state.pt", weights_only=True)
    del state["inputs"], state["config"]["eq_db"]
    torch.save(state, copy / "state.pt")
    assert train(dataclasses.replace(cfg, out=str(copy))).history == first.history


def test_fine_tune_to_new_labels_from_a_checkpoint(trained, tmp_path):
    cfg, first = trained
    data = tmp_path / "two"
    for label in ("hum", "hiss"):
        (data / label).mkdir(parents=True)
        for p in sorted((Path(cfg.data[0]) / label).glob("*.wav")):
            (data / label / p.name).symlink_to(p)
    tuned = TrainConfig(data=[str(data)], out=str(tmp_path / "ft"), width=8, epochs=1, batch_size=8, jobs=1,
                        init=str(first.weights), val_fraction=0.2)
    ckpt = load_checkpoint(train(tuned).weights)
    assert ckpt.labels == ("hiss", "hum")
    source = load_checkpoint(first.weights).state_dict
    assert np.array_equal(ckpt.state_dict["stem.0.weight"].numpy().shape, source["stem.0.weight"].numpy().shape)


def test_eval_cli_on_a_manifest(trained, tmp_path):
    cfg, result = trained
    data = Path(cfg.data[0])
    manifest = tmp_path / "m.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "labels"])
        for label in ("hum", "whistle", "hiss"):
            for p in sorted((data / label).glob("*.wav"))[:3]:
                w.writerow([str(p), label])
    proc = subprocess.run([sys.executable, "-m", "tagger", "eval", str(manifest), "--model", str(result.weights),
                           "--json", "--out", str(tmp_path / "ev"), "--jobs", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    assert m["items"] == 9 and 0 <= m["mAP"] <= 1 and set(m["per_label"]) == {"hiss", "hum", "whistle"}
    assert (tmp_path / "ev" / "confusion.png").stat().st_size > 0


def test_dataset_layouts_and_stratified_split(tmp_path):
    synth_dataset(tmp_path / "folders", n=4)
    ds = read_dataset(tmp_path / "folders")
    assert ds.layout == "class-folders" and ds.labels == ("hiss", "hum", "whistle") and len(ds.items) == 12
    irmas = tmp_path / "irmas"
    irmas.mkdir()
    for i, p in enumerate(sorted((tmp_path / "folders" / "hum").glob("*.wav"))):
        (irmas / f"x{i}.wav").write_bytes(p.read_bytes())
        (irmas / f"x{i}.txt").write_text("pia\t\ngel\n")
    from tagger.datasets import IRMAS_CODES

    ds = read_dataset(irmas, IRMAS_CODES)
    assert ds.layout == "irmas-test" and ds.items[0].labels == ("electric_guitar", "piano")
    train_idx, val_idx = stratified_split(read_dataset(tmp_path / "folders").items, 0.25, seed=0)
    assert len(val_idx) == 3 and not set(train_idx) & set(val_idx)


def test_augmentations_keep_shape_and_stay_in_range():
    import torch

    from tagger.train import random_eq, spec_augment

    x = torch.zeros(256, 1, 64, 130)
    rng = torch.Generator().manual_seed(0)
    eq = random_eq(x, rng, max_db=10.0)
    assert eq.shape == x.shape
    curve_db = eq[:, 0, :, 0] / (0.1 * np.log(10))  # back to dB
    p2p = (curve_db.max(dim=1).values - curve_db.min(dim=1).values).numpy()
    assert 5 < np.median(p2p) < 15 and p2p.max() < 25
    assert torch.equal(eq[:, :, :, 0], eq[:, :, :, 77])  # the same envelope in every frame
    masked = spec_augment(torch.ones(8, 1, 64, 130), rng)
    assert masked.shape == (8, 1, 64, 130) and 0 < (masked == 0).float().mean() < 0.5


def test_mixing_log_mels_as_sound_matches_the_log_mel_of_the_summed_audio():
    """mix_as_sound(frontend(a), frontend(b)) is close to frontend(a + b): mel powers add."""
    import torch

    from audio_helpers import noise, tone
    from tagger.frontend import FrontendConfig
    from tagger.frontend_torch import LogMel
    from tagger.train import mix_as_sound

    cfg = FrontendConfig()
    raw = LogMel(FrontendConfig(normalisation="none"))
    norm = LogMel(cfg)
    n = cfg.segment_samples
    a = torch.from_numpy(tone(3.0, 440.0, 0.3)[:n])[None]
    b = torch.from_numpy(noise(3.0, 0.05, seed=3)[:n])[None]
    gain = raw(b).mean() - raw(a).mean()  # b's level relative to a's, in log power
    mixed = mix_as_sound(norm(a), norm(b), gain)
    truth = norm(a + b)
    assert (mixed - truth).abs().mean() < 0.15  # nats; the cross terms of the sum average out
    naive = 0.5 * (norm(a) + norm(b))  # the usual mixup of log spectra is far from the real mix
    assert (naive - truth).abs().mean() > 4 * (mixed - truth).abs().mean()


def test_mix_batch_labels_are_the_union_and_only_chosen_examples_change():
    import torch

    from tagger.train import mix_batch

    x = torch.randn(16, 1, 8, 10)
    x = x - x.mean(dim=(2, 3), keepdim=True)
    y = torch.eye(16)
    rng = torch.Generator().manual_seed(0)
    mx, my = mix_batch(x, y, rng, prob=0.5)
    changed = (mx != x).flatten(1).any(1)
    assert 0 < changed.sum() < 16
    assert torch.equal(my[~changed], y[~changed])
    assert (my[changed].sum(1) == 2).all()  # its own label and its partner's
    assert torch.allclose(mx.mean(dim=(2, 3)), torch.zeros(16, 1), atol=1e-5)


def test_fine_tune_onto_more_labels_keeps_the_shared_labels_output_rows(tmp_path):
    """A label added to a model's set starts from scratch; the others keep their output rows,
    also when both sets have as many labels (the rows were copied by shape, mislabelled)."""
    from audio_helpers import make_tiny_model

    from tagger.frontend import FrontendConfig
    from tagger.models import ModelConfig, Tagger
    from tagger.train import _init_from
    from tagger.weights import load_checkpoint

    src_path = make_tiny_model(tmp_path / "src", labels=("bass", "drums", "piano"))
    src = load_checkpoint(src_path)
    model = Tagger(FrontendConfig(), ModelConfig(src.config.arch, ("piano", "bass", "voice"), width=src.config.width))
    fresh = {k: v.clone() for k, v in model.classifier.state_dict().items()}
    _init_from(model, str(src_path))
    weight = model.classifier.state_dict()["head.weight"]
    assert torch_equal(weight[0], src.state_dict["head.weight"][2])  # piano
    assert torch_equal(weight[1], src.state_dict["head.weight"][0])  # bass
    assert torch_equal(weight[2], fresh["head.weight"][2])  # voice: new


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_heldout_sets_pick_manifest_rows_by_any_column(tmp_path):
    """training.heldout splits one voice corpus into 'voice alone' and 'over accompaniment' by its programs column."""
    from training.heldout import HELDOUT_SETS, read_set

    (tmp_path / "manifest.csv").write_text("path,labels,source,kind,programs\n"
                                           "a.flac,voice,timgm6mb,voice,\n"
                                           "b.flac,voice,timgm6mb,voice,piano=0:1\n")
    alone = read_set(tmp_path, HELDOUT_SETS["voice_only"][1])
    accompanied = read_set(tmp_path, HELDOUT_SETS["voice_accomp"][1])
    assert [i.path.name for i in alone.items] == ["a.flac"] and alone.items[0].labels == ("voice",)
    assert [i.path.name for i in accompanied.items] == ["b.flac"]
    assert read_set(tmp_path / "not-built", None) is None


def test_voice_penalty_is_split_by_the_style_of_the_voice_on_top(tmp_path):
    """training.heldout: mixtures F1 of each clip without and with its voice, per voice style
    (a voice label is not an instrument, singles are not mixtures)."""
    from tagger.datasets import Dataset, Item
    from tagger.evaluate import Evaluation
    from training.heldout import penalty_by_style, voice_styles

    labels = ("bass", "drums", "piano", "voice")
    (tmp_path / "details.jsonl").write_text("".join(json.dumps({"path": f"clips/{n}", "effects": e}) + "\n" for n, e in [
        ("a.flac", ["sing lp_diphone x1.00 at -1.0 dB", "aac@128k"]),
        ("b.flac", ["eq(l60:-5.4)", "espeak f5 x1.02 at +0.0 dB"]),
        ("c.flac", ["choir of 4 at -2.0 dB"]),
    ]))
    styles = voice_styles(tmp_path)
    assert styles == {"a.flac": "sing", "b.flac": "espeak", "c.flac": "choir"}

    def pair(folder: str, truth: list, scores: list) -> tuple:
        items = tuple(Item(tmp_path / folder / n, ()) for n in ("a.flac", "b.flac", "c.flac"))
        ev = Evaluation(labels, np.array(truth, np.float32), np.array(scores, np.float32), np.full(4, 0.5), {}, {})
        return Dataset(items, labels, "manifest"), ev

    clean = pair("test", [[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 1, 0]], [[.9, .9, 0, 0], [.9, 0, .9, 0], [0, 0, .9, 0]])
    vocal = pair("vocal", [[1, 1, 0, 1], [1, 0, 1, 1], [0, 0, 1, 1]],
                 [[.9, .9, 0, .9], [.9, .9, .1, .9], [0, .9, .9, .9]])  # b: piano lost, drums invented
    out = penalty_by_style(clean, vocal, styles)
    assert set(out) == {"sing", "espeak"}  # c is a single: not a mixture
    assert out["sing"] == {"mixtures": 1, "without": 1.0, "with": 1.0, "penalty": 0.0}
    assert out["espeak"]["with"] == 0.5 and out["espeak"]["penalty"] == 0.5


def test_pooled_voice_figures_pool_the_mixtures_of_every_pair_and_every_voice_alone_clip(tmp_path):
    """training.heldout: the voice targets over several held-out voice sets at once: one F1 over
    all their mixtures (clips paired by name within a pair, singles left out), one share of
    clean voice-alone clips; two sets whose clips share names are not paired across."""
    from tagger.datasets import Dataset, Item
    from tagger.evaluate import Evaluation, summarise
    from training.heldout import pooled_voice_figures

    labels = ("bass", "drums", "piano", "voice")

    def scored(folder: str, names: tuple, truth: list, scores: list) -> tuple:
        items = tuple(Item(tmp_path / folder / n, ()) for n in names)
        y_true, y_score, thresholds = np.array(truth, np.float32), np.array(scores, np.float32), np.full(4, 0.5)
        ev = Evaluation(labels, y_true, y_score, thresholds, summarise(y_true, y_score, labels, thresholds), {})
        return Dataset(items, labels, "manifest"), ev

    ab = ("a.flac", "b.flac")
    first = (scored("t", ab, [[1, 1, 0, 0], [0, 0, 1, 0]], [[.9, .9, 0, 0], [0, 0, .9, 0]]),  # b: a single
             scored("tv", ab, [[1, 1, 0, 1], [0, 0, 1, 1]], [[.9, .9, .9, .9], [0, .9, .9, .9]]))  # a: piano invented
    second = (scored("t2", ab, [[1, 0, 1, 0], [0, 1, 1, 0]], [[.9, 0, .9, 0], [0, .9, .9, 0]]),
              scored("t2v", ab, [[1, 0, 1, 1], [0, 1, 1, 1]], [[.9, 0, .1, .9], [0, .9, .9, .9]]))  # a: piano lost
    alone = [scored("v", ab, [[0, 0, 0, 1]] * 2, [[0, 0, 0, .9], [0, .6, 0, .9]]),
             scored("v2", ("c.flac",), [[0, 0, 0, 1]], [[.4, 0, 0, .9]])]
    out = pooled_voice_figures([first, second], alone)
    # without: 6 of 6 right; with: tp 5, fp 1, fn 1
    assert out["mixtures_items"] == 3 and out["mixtures_f1_without_voice"] == 1.0
    assert out["mixtures_f1_with_voice"] == pytest.approx(5 / 6) and out["voice_penalty"] == pytest.approx(1 / 6)
    assert out["no_instrument_items"] == 3 and out["no_instrument_clean"] == pytest.approx(2 / 3)


def test_blocks_added_to_a_trained_network_start_as_the_identity(tmp_path):
    """--blocks 1,1,1,2 with --init: the grown network's outputs equal the source's exactly
    before any training, and the new block is really there (and is trained: not frozen)."""
    from audio_helpers import make_tiny_model

    import torch

    from tagger.frontend import FrontendConfig
    from tagger.models import ModelConfig, Tagger
    from tagger.train import _init_from
    from tagger.weights import load_checkpoint

    src_path = make_tiny_model(tmp_path / "src", labels=("bass", "drums", "piano"))
    src = load_checkpoint(src_path)
    grown = Tagger(FrontendConfig(), ModelConfig(src.config.arch, src.labels, width=src.config.width,
                                                  extra={"blocks": [1, 1, 1, 2]}))
    _init_from(grown, str(src_path))
    assert len(grown.classifier.stages) == len(src.build(torch.device("cpu")).classifier.stages) + 1
    x = torch.randn(3, 1, FrontendConfig().n_mels, 130)
    grown.eval()
    with torch.no_grad():
        assert torch.allclose(grown.classifier(x), src.build(torch.device("cpu")).classifier(x), atol=1e-6)
    new = grown.classifier.stages[-1]
    assert torch.count_nonzero(new.bn2.weight) == 0 and new.bn2.weight.requires_grad
    assert torch.count_nonzero(new.conv1.weight) > 0  # random, so it learns once bn2 moves


def test_a_grown_network_trains_and_its_weights_file_says_its_blocks(trained, tmp_path):
    cfg, first = trained
    grown = dataclasses.replace(cfg, out=str(tmp_path / "grown"), epochs=1, init=str(first.weights), blocks=(1, 1, 1, 2))
    ckpt = load_checkpoint(train(grown).weights)
    assert ckpt.config.extra["blocks"] == [1, 1, 1, 2]
    model = ckpt.build(torch_device_cpu())
    assert len(model.classifier.stages) == 5
    assert (model.classifier.stages[-1].bn2.weight != 0).any()  # it learned


def test_a_stem_pool_run_says_its_pool_and_loads_back_the_same_network(trained, tmp_path):
    cfg, _ = trained
    run = dataclasses.replace(cfg, out=str(tmp_path / "pool"), epochs=1, stem_pool=(1, 4))
    ckpt = load_checkpoint(train(run).weights)
    assert ckpt.config.extra["stem_pool"] == [1, 4]
    model = ckpt.build(torch_device_cpu())
    assert model.classifier.stem[-1].halvings == (0, 2)  # mel bands kept, frames quartered


def torch_device_cpu():
    import torch

    return torch.device("cpu")


@pytest.mark.parametrize("option, value, message", [
    *[("--blocks", v, "--blocks wants four counts") for v in ("1,2", "1,1,0,1", "a,b,c,d")],
    *[("--stem-pool", v, "--stem-pool wants two powers of two") for v in ("3,1", "2", "a,b")],
])
def test_train_rejects_a_bad_resnet_shape_in_one_line(tmp_path, option, value, message):
    proc = subprocess.run([sys.executable, "-m", "tagger", "train", str(tmp_path), "--out", str(tmp_path / "o"),
                           option, value], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_pitch_warp_moves_a_partial_by_the_drawn_interval():
    """A partial at 2 kHz, warped by up to 2 semitones, lands between 2000 * 2**(-2/12) and
    2000 * 2**(2/12), a different place per example, the same for the same seed."""
    import torch

    from tagger.frontend import FrontendConfig
    from tagger.train import band_centres, random_pitch_warp

    fe = FrontendConfig()
    centres = band_centres(fe)
    band = int(np.argmin(abs(centres - 2000)))
    x = torch.zeros(64, 1, fe.n_mels, 5)
    x[:, :, band, :] = 1.0
    out = random_pitch_warp(x, torch.Generator().manual_seed(0), 2.0, centres)
    assert out.shape == x.shape and torch.allclose(out.mean(dim=(2, 3)), torch.zeros(64, 1), atol=1e-6)
    lit = out[:, 0, :, 0] - out[:, 0, :, 0].amin(dim=1, keepdim=True)
    hz = (lit * torch.from_numpy(centres).float()).sum(1) / lit.sum(1)
    lo, hi = centres[band] * 2 ** (-2 / 12), centres[band] * 2 ** (2 / 12)
    assert hz.min() >= lo * 0.97 and hz.max() <= hi * 1.03 and hz.std() > 30
    assert torch.equal(random_pitch_warp(x, torch.Generator().manual_seed(0), 2.0, centres), out)


needs_a_cxx_compiler = pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None, reason="torch.compile needs a C++ compiler on the CPU")


@needs_a_cxx_compiler
def test_a_compiled_training_step_computes_what_the_eager_one_does():
    """--compile changes how the step runs, not what it computes: the same logits and
    gradients (to float rounding) from the same weights and batch, batch norms in training
    mode (no dropout: compiled code draws its random numbers another way)."""
    import torch

    from tagger.config import FrontendConfig, ModelConfig
    from tagger.models import Tagger
    from tagger.train import training_forward

    torch.manual_seed(0)
    eager = Tagger(FrontendConfig(), ModelConfig("resnet", ("a", "b", "c"), width=8, dropout=0.0)).classifier.train()
    twin = Tagger(FrontendConfig(), ModelConfig("resnet", ("a", "b", "c"), width=8, dropout=0.0)).classifier.train()
    twin.load_state_dict(eager.state_dict())
    x, y = torch.randn(8, 1, 64, 130), (torch.rand(8, 3) < 0.5).float()
    results = []
    for net, compiled in ((eager, False), (twin, True)):
        logits = training_forward(net, compiled)(x)
        torch.nn.functional.binary_cross_entropy_with_logits(logits, y).backward()
        results.append((logits.detach(), {n: p.grad for n, p in net.named_parameters()}))
    (a, grads_a), (b, grads_b) = results
    assert torch.allclose(a, b, atol=1e-4)
    assert grads_a.keys() == grads_b.keys()
    assert all(torch.allclose(grads_a[n], grads_b[n], atol=1e-4, rtol=1e-3) for n in grads_a)


@needs_a_cxx_compiler
def test_a_run_resumes_compiled_and_saves_weights_that_load(trained, tmp_path):
    cfg, first = trained
    copy = tmp_path / "run"
    shutil.copytree(cfg.out, copy)
    again = train(dataclasses.replace(cfg, out=str(copy), epochs=3, compile=True))
    assert [h["epoch"] for h in again.history] == [1, 2, 3] and again.history[:2] == first.history
    model = load_checkpoint(again.weights).build(torch_device_cpu())
    assert set(model.classifier.state_dict()) == set(load_checkpoint(first.weights).state_dict)


def test_train_says_in_one_line_when_torch_compile_cannot_compile(trained, tmp_path):
    """No C++ compiler (CXX names none, the compile cache is empty): one line, exit 2, no traceback."""
    cfg, _ = trained
    env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "tagger", "train", cfg.data[0], "--out", str(tmp_path / "o"),
                           "--width", "8", "--epochs", "1", "--batch-size", "8", "--jobs", "1", "--compile"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "torch.compile could not compile the training step" in last and "without --compile" in last
    assert "Traceback" not in proc.stderr


def test_label_free_clips_train_as_negatives_with_all_zero_targets(tmp_path):
    """A manifest row with empty labels (training.negatives) is a negative: it adds no label
    to the model and its target row is all zeros; the run trains on it like any other file."""
    data = synth_dataset(tmp_path / "data", n=6)
    rng = np.random.default_rng(1)
    t = np.arange(3 * SR) / SR
    rows = [(f"data/{label}/{i}.wav", label) for label in ("hum", "whistle") for i in range(6)]
    for i in range(6):  # a beep of its own pitch: not an instrument of the model
        write_audio(tmp_path / "neg" / f"{i}.wav", (0.2 * np.sin(2 * np.pi * 700 * t) * (rng.random() + 0.5)).astype(np.float32))
        rows.append((f"neg/{i}.wav", ""))
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "labels"])
        w.writerows(rows)
    ds = read_dataset(manifest)
    assert ds.labels == ("hum", "whistle") and len(ds.items) == 18
    y = ds.targets()
    negative = np.array([item.labels == () for item in ds.items])
    assert negative.sum() == 6 and not y[negative].any() and y[~negative].sum(axis=1).tolist() == [1.0] * 12
    cfg = TrainConfig(data=[str(manifest)], out=str(tmp_path / "run"), width=8, epochs=1, batch_size=4, jobs=1,
                      mixup=0.0, val_fraction=0.34, name="neg")
    result = train(cfg)
    ckpt = load_checkpoint(result.weights)
    assert ckpt.labels == ("hum", "whistle")
    assert ckpt.card["train_files"] + ckpt.card["validation_files"] == 18


def _soft_manifest(tmp_path: Path, with_targets: bool) -> Path:
    """hum/whistle clips; with ``with_targets``, a ``targets`` column of teacher-like scores
    (empty on two rows: those train on their labels)."""
    synth_dataset(tmp_path / "data", n=6)
    manifest = tmp_path / ("soft.csv" if with_targets else "hard.csv")
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "labels", "targets"] if with_targets else ["path", "labels"])
        for label, other in (("hum", "whistle"), ("whistle", "hum")):
            for i in range(6):
                row = [f"data/{label}/{i}.wav", label]
                if with_targets:
                    row.append("" if i == 5 else f"{label}={0.9 - 0.02 * i:.2f};{other}=0.1")
                w.writerow(row)
    return manifest


def test_a_manifest_with_soft_targets_trains_on_them_and_its_weights_carry_the_labels(tmp_path, monkeypatch):
    seen = []
    bce = tagger.train.F.binary_cross_entropy_with_logits

    def recording(logits, y):
        seen.append(y.detach().cpu().numpy().copy())
        return bce(logits, y)

    monkeypatch.setattr(tagger.train.F, "binary_cross_entropy_with_logits", recording)
    ds = read_dataset(_soft_manifest(tmp_path, with_targets=True))
    assert ds.labels == ("hum", "whistle")
    soft, hard = ds.targets(soft=True), ds.targets()
    first = next(i for i, item in enumerate(ds.items) if item.path.name == "0.wav" and "hum" in item.labels)
    assert soft[first].tolist() == pytest.approx([0.9, 0.1])
    assert hard[first].tolist() == [1.0, 0.0]  # metrics take the hard labels
    plain = [i for i, item in enumerate(ds.items) if item.targets is None]
    assert len(plain) == 2 and np.array_equal(soft[plain], hard[plain])
    cfg = TrainConfig(data=[str(tmp_path / "soft.csv")], out=str(tmp_path / "run"), width=8, epochs=1, batch_size=4,
                      jobs=1, mixup=0.5, val_fraction=0.34, name="soft")
    result = train(cfg)
    values = np.unique(np.concatenate(seen))
    assert len(seen) > 0 and set(values) - {0.0, 1.0}  # the training steps saw the soft values
    allowed = np.array([0.0, 0.1, 0.82, 0.84, 0.86, 0.88, 0.9, 1.0])  # the targets, mixup's maxima of them
    assert np.isclose(values[:, None], allowed[None], atol=1e-6).any(axis=1).all()
    ckpt = load_checkpoint(result.weights)
    assert ckpt.labels == ("hum", "whistle") and set(ckpt.thresholds) == {"hum", "whistle"}
    assert ckpt.card["labels"] == ["hum", "whistle"]


def test_a_manifest_without_targets_reads_and_digests_as_before(tmp_path):
    """No ``targets`` column: items carry none, the soft matrix is the multi-hot, and a run's
    data digest is the one it had before soft targets existed (its state.pt still resumes)."""
    import hashlib

    ds = read_dataset(_soft_manifest(tmp_path, with_targets=False))
    assert all(item.targets is None for item in ds.items)
    assert np.array_equal(ds.targets(soft=True), ds.targets())
    cfg = TrainConfig(data=[], out="")
    digest = hashlib.sha256()
    for item in ds.items:
        st = os.stat(item.path)
        digest.update(f"train\0{item.path}\0{';'.join(item.labels)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    assert tagger.train.run_inputs(cfg, ds.items, [])["data"] == digest.hexdigest()
    soft = read_dataset(_soft_manifest(tmp_path, with_targets=True))
    assert tagger.train.run_inputs(cfg, soft.items, [])["data"] != digest.hexdigest()


@pytest.mark.parametrize("cell, says", [("hum=1.5", "bad soft target"), ("hum", "bad soft target"),
                                        ("hum=x", "bad soft target"), ("=0.3", "bad soft target"),
                                        ("hum=0.2;hum=0.9", "given twice")])
def test_a_bad_soft_target_is_refused_in_one_line(tmp_path, cell, says):
    from tagger.errors import DatasetError

    write_audio(tmp_path / "a.wav", np.zeros(SR, np.float32))
    (tmp_path / "m.csv").write_text(f"path,labels,targets\na.wav,hum,{cell}\n")
    with pytest.raises(DatasetError, match=says):
        read_dataset(tmp_path / "m.csv")


def test_mix_batch_takes_the_larger_soft_target_of_the_two():
    import torch

    from tagger.train import mix_batch

    x = torch.randn(16, 1, 8, 10)
    x = x - x.mean(dim=(2, 3), keepdim=True)
    y = torch.rand(16, 5)
    rng = torch.Generator().manual_seed(0)
    mx, my = mix_batch(x, y, rng, prob=0.5)
    changed = (mx != x).flatten(1).any(1)
    assert 0 < changed.sum() < 16
    assert torch.equal(my[~changed], y[~changed])
    assert (my >= y).all() and (my <= 1).all()
    assert not torch.equal(my[changed], y[changed])
