"""Training: cached log-Mel features -> a classifier -> a self-describing weights file.

The run directory holds everything needed to resume (``state.pt``), the history
(``history.json``), training curves (``curves.png``) and the best weights so far
(``<name>-<sha8>.safetensors``). Selection (early stopping, best checkpoint, per-label
thresholds) uses the validation set only; a test set, when given, is only reported.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import __version__
from .aggregate import DEFAULT_AGGREGATION
from .datasets import Dataset, Item, merge, read_dataset
from .errors import CompileError, DatasetError, RunMismatchError
from .evaluate import evaluate, item_scores, predict_features, summarise
from .features import FeatureSet, compute_features_by_part
from .frontend import FrontendConfig
from .metrics import classification_report, mean_average_precision, tune_global_threshold, tune_thresholds
from .models import ModelConfig, Tagger
from .segments import SILENCE_DB
from .weights import MODEL_NAME, Checkpoint, label_problem, load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)


# how the stored thresholds are tuned on validation (TrainConfig.thresholds)
THRESHOLD_TUNING = {"global": tune_global_threshold, "per-label": tune_thresholds}


@dataclass
class TrainConfig:
    data: list[str]
    out: str
    val: list[str] = field(default_factory=list)  # empty: a stratified split of data
    test: list[str] = field(default_factory=list)  # reported only, never used to select
    val_fraction: float = 0.1
    arch: str = "resnet"
    width: int = 32
    blocks: tuple[int, ...] | None = None  # resnet: basic blocks per stage (default 1,1,1,1)
    stem_pool: tuple[int, int] | None = None  # resnet: the stem's max-pool (mels, frames) (default 2,2)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    warmup_epochs: float = 1.0
    patience: int = 6
    mixup: float = 0.5  # share of each batch mixed, as sound, with another example (see mix_batch)
    specaugment: bool = True
    eq_db: float = 10.0  # random spectral envelope augmentation, dB peak to peak (0: off)
    pitch_warp: float = 0.0  # each example's frequencies scaled by up to this many semitones (0: off)
    max_segments: int = 4  # per training file; clips of 3 s have one
    thresholds: str = "global"  # "global": one tuned on validation for all labels; "per-label"
    init: str | None = None
    name: str | None = None
    seed: int = 0
    jobs: int = -1
    device: str = "auto"
    cache_dir: str | None = None  # default: <out>/cache
    compile: bool = False  # the training step's network through torch.compile (needs a C++ compiler on CPU)


# Settings a run may change when it resumes from its state.pt: more epochs, more patience,
# another device, another test set (only reported). Any other setting, or other data, is
# another run, which must not continue this one's weights.
RESUMABLE_CHANGES = frozenset({"epochs", "patience", "jobs", "device", "cache_dir", "out", "test", "compile"})


def _settings(cfg: TrainConfig | dict) -> dict:
    """A run's settings as stored in state.pt (JSON values), without RESUMABLE_CHANGES."""
    config = asdict(cfg) if isinstance(cfg, TrainConfig) else cfg
    return {k: v for k, v in json.loads(json.dumps(config)).items() if k not in RESUMABLE_CHANGES}


def run_inputs(cfg: TrainConfig, train_items: Sequence[Item], val_items: Sequence[Item]) -> dict:
    """What a run is made of: its settings but RESUMABLE_CHANGES, and a digest of its data
    (every training and validation file's path, labels, soft targets, size and modification time)."""
    settings = _settings(cfg)
    digest = hashlib.sha256()
    for role, items in (("train", train_items), ("val", val_items)):
        for item in items:
            st = os.stat(item.path)
            digest.update(f"{role}\0{item.path}\0{';'.join(item.labels)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            if item.targets:  # soft targets (a manifest without them digests as before)
                digest.update(f"targets\0{';'.join(f'{l}={v!r}' for l, v in item.targets)}\n".encode())
    return {"settings": settings, "data": digest.hexdigest()}


def _check_resumable(state: dict, inputs: dict, out: Path) -> None:
    """Raise RunMismatchError unless the run in ``out`` was made of ``inputs``."""
    # states written before inputs were recorded: their settings only
    before = state.get("inputs") or {"settings": _settings(state["config"]), "data": inputs["data"]}
    # a setting added since the state was written had its default then
    was = {**_settings(TrainConfig(data=[], out="")), **before["settings"]}
    now = inputs["settings"]
    differ = sorted(k for k in now.keys() | was.keys() if now.get(k) != was.get(k))
    what = [f"other settings ({', '.join(differ)})"] if differ else []
    if before["data"] != inputs["data"]:
        what.append("other training or validation files")
    if what:
        raise RunMismatchError(
            f"the run in this folder was made with {' and '.join(what)}; resuming it would mix two runs: "
            "choose another --out, or delete this state.pt to start over", out / "state.pt")


@dataclass
class TrainResult:
    weights: Path
    history: list[dict]
    val: dict
    test: dict


# ---------------------------------------------------------------- data


def stratified_split(items: Sequence[Item], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Train/validation indices; each label set ("piano", "bass;drums") split in proportion."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item.labels, []).append(i)
    rng = random.Random(seed)
    train, val = [], []
    for key in sorted(groups):
        idx = groups[key]
        rng.shuffle(idx)
        n_val = int(round(fraction * len(idx))) if len(idx) > 1 else 0
        val += idx[:n_val]
        train += idx[n_val:]
    return sorted(train), sorted(val)


def spec_augment(x: torch.Tensor, rng: torch.Generator, max_time: int = 20, max_freq: int = 8, masks: int = 2) -> torch.Tensor:
    """Time and frequency masking on (batch, 1, mels, frames), per example; masked cells become the mean (0)."""
    b, _, n_mels, n_frames = x.shape
    x = x.clone()
    for _ in range(masks):
        for size, axis, length in ((max_freq, 2, n_mels), (max_time, 3, n_frames)):
            width = torch.randint(0, size + 1, (b,), generator=rng)
            start = (torch.rand(b, generator=rng) * (length - width)).long()
            pos = torch.arange(length)
            mask = (pos[None, :] >= start[:, None]) & (pos[None, :] < (start + width)[:, None])  # (b, length)
            shape = (b, 1, length, 1) if axis == 2 else (b, 1, 1, length)
            x = x.masked_fill(mask.view(shape), 0.0)
    return x


def random_eq(x: torch.Tensor, rng: torch.Generator, max_db: float = 10.0, components: int = 4) -> torch.Tensor:
    """A random smooth spectral envelope per example, added to log-Mel (batch, 1, mels, frames).

    Another soundfont's (or microphone's, room's) version of an instrument differs mostly
    in its spectral envelope; a random sum of low-order cosines over the mel axis, up to
    about ``max_db`` dB peak to peak, teaches the network not to lean on one envelope.
    """
    b, _, n_mels, _ = x.shape
    amp = 0.1 * math.log(10) * max_db / 3  # dB -> natural log of power; p2p of the sum is ~max_db
    coef = (torch.rand(b, components, generator=rng) * 2 - 1) * amp  # (batch, components)
    pos = torch.linspace(0, math.pi, n_mels)
    basis = torch.cos(torch.arange(1, components + 1)[:, None] * pos[None, :])  # (components, mels)
    curve = coef @ basis  # (batch, mels)
    return x + curve.to(x.device)[:, None, :, None]


def band_centres(frontend: FrontendConfig) -> np.ndarray:
    """Centre frequency (Hz) of each mel band of ``frontend`` (Slaney mel, as the filterbank)."""
    import librosa

    return librosa.mel_frequencies(frontend.n_mels + 2, fmin=frontend.fmin, fmax=frontend.fmax)[1:-1]


def random_pitch_warp(x: torch.Tensor, rng: torch.Generator, max_semitones: float, centres: np.ndarray) -> torch.Tensor:
    """Scale each example's frequencies by a random factor of up to ``max_semitones``
    semitones up or down: (batch, 1, mels, frames), band ``i`` reads the (interpolated) band
    whose centre is ``centres[i] / factor``; edge bands repeat.

    A sound played faster, its resonances moved with its pitch: what a soundfont does when
    it stretches one sample over several keys, and one way another soundfont's instrument
    differs from the ones trained on. Harmonics stay harmonic (a shift along the mel axis
    would not keep them so below 1 kHz, where mel bands are linear in Hz).
    """
    b, _, n_mels, _ = x.shape
    factor = 2.0 ** ((torch.rand(b, generator=rng).double().numpy() * 2 - 1) * max_semitones / 12)  # (batch,)
    f = np.asarray(centres, dtype=np.float64)
    pos = torch.from_numpy(np.interp(f[None, :] / factor[:, None], f, np.arange(n_mels, dtype=np.float64)))  # source band
    lo = pos.floor().long().clamp(0, n_mels - 1)
    hi = (lo + 1).clamp(max=n_mels - 1)
    w = (pos - lo).float().clamp(0, 1).to(x.device)[:, None, :, None]
    lo, hi = lo.to(x.device), hi.to(x.device)
    frames = x.shape[3]
    warped = (torch.gather(x, 2, lo[:, None, :, None].expand(-1, 1, -1, frames)) * (1 - w)
              + torch.gather(x, 2, hi[:, None, :, None].expand(-1, 1, -1, frames)) * w)
    return warped - warped.mean(dim=(-2, -1), keepdim=True)


def mix_as_sound(xa: torch.Tensor, xb: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """The log-Mel of playing two sounds together, from their (segment-mean normalised) log-Mels.

    Mel power adds for independent sounds, so the mixture is ``logaddexp`` of the two with
    ``xb`` raised by ``gain`` (natural log of power, broadcastable to ``xb``), normalised again.
    Mixup's usual weighted average of log spectra is not the sound of a mixture; this is.
    """
    mixed = torch.logaddexp(xa, xb + gain)
    return mixed - mixed.mean(dim=(-2, -1), keepdim=True)


def mix_batch(x: torch.Tensor, y: torch.Tensor, rng: torch.Generator, prob: float, max_db: float = 6.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn a share ``prob`` of the batch into mixtures with another example of the batch.

    The partner plays within ``max_db`` dB of the example's (geometric mean) level, about
    the corpus's rule for a labelled instrument in a mix, so the labels are the union
    (soft targets: each label's larger value, the union's for 0/1).
    Partners come from any source, so a mix can pair timbres no single soundfont has.
    """
    b = len(x)
    chosen = (torch.rand(b, generator=rng) < prob).to(x.device)
    j = torch.randperm(b, generator=rng).to(x.device)
    gain_db = (torch.rand(b, 1, 1, 1, generator=rng) * 2 - 1) * max_db
    mixed = mix_as_sound(x, x[j], (0.1 * math.log(10)) * gain_db.to(x.device))
    x = torch.where(chosen[:, None, None, None], mixed, x)
    y = torch.where(chosen[:, None], torch.maximum(y, y[j]), y)
    return x, y


# ---------------------------------------------------------------- training


def training_forward(classifier: torch.nn.Module, compile: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """The classifier's forward for training steps: as it is, or through ``torch.compile``.

    Compiling fuses the small network's batch norms, ReLUs and additions into generated
    kernels: about 1.4x more training steps per second on a 2-core CPU
    (``python scripts/bench_train_step.py``). The weights stay in ``classifier``, so what is saved
    and validated is the ordinary module. A compiler failure is raised, never worked
    around: the first step tells it.
    """
    return torch.compile(classifier) if compile else classifier


def _compiled_step_failed(exc: Exception) -> CompileError:
    """One line for a compiler failure: its first line (a compiler's log can run to pages)."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return CompileError(f"torch.compile could not compile the training step ({reason}); train without --compile")


def _cosine(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def _output_layer(model: Tagger) -> set[str]:
    """State-dict names of the classifier's last linear layer (one row per label)."""
    name = [n for n, m in model.classifier.named_modules() if isinstance(m, torch.nn.Linear)][-1]
    return {f"{name}.weight", f"{name}.bias"}


def _init_from(model: Tagger, path: str) -> None:
    """Fine-tune: copy every tensor whose name and shape match, and the output layer by label.

    The output layer's rows are copied for the labels both models have, whatever their
    order (a label added to the bundled ones keeps what the others had learned); only the
    new labels' rows start from scratch.
    """
    src = load_checkpoint(path)
    own = model.classifier.state_dict()
    output = _output_layer(model)
    copied = {k: v for k, v in src.state_dict.items() if k in own and k not in output and own[k].shape == v.shape}
    src_index = {label: i for i, label in enumerate(src.labels)}
    shared = [(j, src_index[label]) for j, label in enumerate(model.labels) if label in src_index]
    for k in sorted(output):
        v = src.state_dict.get(k)
        if v is None or not shared or own[k].shape[1:] != v.shape[1:] or v.shape[0] != len(src.labels):
            continue
        rows = own[k].clone()
        for j, i in shared:
            rows[j] = v[i]
        copied[k] = rows
    skipped = sorted(set(own) - set(copied))
    model.classifier.load_state_dict({**own, **copied})
    grown = _start_new_blocks_as_identity(model, copied)
    new = [label for label in model.labels if label not in src_index]
    log.info("initialised %d tensors from %s (output layer: %d labels kept, new: %s); trained from scratch: %s%s",
             len(copied), path, len(shared), ", ".join(new) or "none", ", ".join(skipped) or "none",
             f"; new residual blocks starting as the identity: {', '.join(grown)}" if grown else "")


def _start_new_blocks_as_identity(model: Tagger, copied: dict) -> list[str]:
    """A residual block the source network did not have (``--blocks`` grew it) starts as the
    identity: its last batch norm's scale is zeroed, so the grown network computes exactly what
    the source did and fine-tuning starts from the source's accuracy, not from noise."""
    from .models import BasicBlock

    grown = []
    for name, block in model.classifier.named_modules():
        if (isinstance(block, BasicBlock) and isinstance(block.shortcut, torch.nn.Identity)
                and f"{name}.conv1.weight" not in copied):
            torch.nn.init.zeros_(block.bn2.weight)
            grown.append(name)
    return grown


def _plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(epochs, [h["train_loss"] for h in history], label="train")
    a.plot(epochs, [h["val_loss"] for h in history], label="validation")
    a.set(xlabel="epoch", ylabel="BCE loss", title="loss")
    a.legend()
    b.plot(epochs, [h["val_mAP"] for h in history], label="validation mAP")
    b.plot(epochs, [h["val_micro_f1"] for h in history], label="validation micro-F1 @0.5")
    b.set(xlabel="epoch", ylim=(0, 1), title="validation")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _atomic_torch_save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(cfg: TrainConfig, progress: Callable[[str, int, int], None] | None = None) -> TrainResult:
    """Train a model as ``cfg`` says; resume from ``cfg.out/state.pt`` when it exists."""
    from .weights import resolve_device

    if cfg.thresholds not in THRESHOLD_TUNING:
        raise ValueError(f"unknown thresholds {cfg.thresholds!r}; choose {' or '.join(THRESHOLD_TUNING)}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.set_num_threads(os.cpu_count() or 1)
    device = resolve_device(cfg.device)
    frontend = FrontendConfig()
    cache = Path(cfg.cache_dir) if cfg.cache_dir else out / "cache"
    report = progress or (lambda stage, done, total: None)

    datasets = [read_dataset(p) for p in cfg.data]
    data = merge(datasets)
    problem = label_problem(data.labels)  # refused now, not by the loader once the weights are trained
    if problem:
        raise DatasetError(f"{problem} (labels become CSV columns and tag values: rename it in the data)")
    if cfg.name is not None and not MODEL_NAME.fullmatch(cfg.name):
        raise DatasetError(f"model name {cfg.name!r} is not a plain name (letters, digits, . _ -)")
    if cfg.val:
        val_sets = [read_dataset(p) for p in cfg.val]
        train_parts, val_parts = [list(ds.items) for ds in datasets], [list(ds.items) for ds in val_sets]
    else:
        tr, va = stratified_split(data.items, cfg.val_fraction, cfg.seed)
        train_parts, val_parts = [[data.items[i] for i in tr]], [[data.items[i] for i in va]]
    train_items = [item for part in train_parts for item in part]
    val_items = [item for part in val_parts for item in part]
    if not val_items:
        raise DatasetError("no validation items: give --val DATA or more data")
    labels = data.labels
    test_ds = merge([read_dataset(p) for p in cfg.test]) if cfg.test else None
    state_path = out / "state.pt"
    inputs = run_inputs(cfg, train_items, val_items)
    state = torch.load(state_path, map_location=device, weights_only=True) if state_path.exists() else None
    if state is not None:  # before computing any feature: a mismatch is told at once
        _check_resumable(state, inputs, out)

    def features(parts: list[list[Item]], max_segments: int | None, stage: str) -> FeatureSet:
        """Each dataset's features are cached on their own: adding one computes only it."""
        done = [0]
        total = sum(map(len, parts))

        def tick(n: int) -> None:
            done[0] += n
            report(stage, done[0], total)

        return compute_features_by_part(parts, frontend, cache, cfg.jobs, max_segments=max_segments, progress=tick)

    train_fs = features(train_parts, cfg.max_segments, "features (train)")
    val_fs = features(val_parts, None, "features (validation)")
    # soft targets (a manifest's ``targets`` column) train; validation scores the hard labels
    y_train_items = Dataset(tuple(train_items), labels, "").targets(labels, soft=True)
    y_val = Dataset(tuple(val_items), labels, "").targets(labels)
    keep = train_fs.loudness > SILENCE_DB
    x_train = train_fs.features[keep]
    y_train = y_train_items[train_fs.item_index[keep]]
    log.info("training on %d segments of %d files; validating on %d files", len(x_train), len(train_items), len(val_items))

    extra = {"blocks": list(cfg.blocks)} if cfg.blocks else {}
    if cfg.stem_pool:
        extra["stem_pool"] = list(cfg.stem_pool)
    config = ModelConfig(cfg.arch, labels, width=cfg.width, extra=extra)
    model = Tagger(frontend, config).to(device)
    if cfg.init:
        _init_from(model, cfg.init)
    centres = band_centres(frontend) if cfg.pitch_warp else None
    opt = torch.optim.AdamW(model.classifier.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(x_train) // cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: _cosine(s, total_steps, int(cfg.warmup_epochs * steps_per_epoch))
    )
    name = cfg.name or cfg.arch
    history: list[dict] = []
    best = {"mAP": -1.0, "epoch": 0, "weights": None}  # weights: a file name in ``out``
    start_epoch = 0
    if state is not None:
        model.classifier.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history, best, start_epoch = state["history"], state["best"], state["epoch"]
        if best["weights"]:  # older states hold a full path: the file is in this run folder
            best["weights"] = Path(best["weights"]).name
        torch.set_rng_state(state["rng"])
        _remove_unsaved_best(out, name, best["weights"], state_path)
        log.info("resuming %s at epoch %d", out, start_epoch + 1)

    forward = training_forward(model.classifier, cfg.compile)
    compile_failure = torch._dynamo.exc.TorchDynamoException if cfg.compile else ()  # (): catch nothing
    rng = torch.Generator().manual_seed(cfg.seed + start_epoch)
    bad_epochs = start_epoch - best["epoch"]
    for epoch in range(start_epoch, cfg.epochs):
        if bad_epochs >= cfg.patience:
            log.info("early stop: validation mAP has not improved for %d epochs", cfg.patience)
            break
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(x_train), generator=rng)
        losses = []
        for step in range(steps_per_epoch):
            idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size].numpy()
            x = torch.from_numpy(x_train[idx].astype(np.float32)).unsqueeze(1).to(device)  # (batch, 1, mels, frames)
            y = torch.from_numpy(y_train[idx]).to(device)
            if cfg.pitch_warp:
                x = random_pitch_warp(x, rng, cfg.pitch_warp, centres)
            if cfg.eq_db:
                x = random_eq(x, rng, cfg.eq_db)
            if cfg.mixup:
                x, y = mix_batch(x, y, rng, cfg.mixup)
            if cfg.specaugment:
                x = spec_augment(x, rng)
            try:
                loss = F.binary_cross_entropy_with_logits(forward(x), y)  # forward: (batch, labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
            except compile_failure as exc:
                raise _compiled_step_failed(exc) from exc
            opt.step()
            sched.step()
            losses.append(loss.item())
            report(f"epoch {epoch + 1}/{cfg.epochs}", step + 1, steps_per_epoch)

        seg_scores = predict_features(model, val_fs.features, device)
        val_scores = item_scores(seg_scores, val_fs, len(val_items), DEFAULT_AGGREGATION["top_fraction"])
        val_loss = float(F.binary_cross_entropy(torch.from_numpy(val_scores).clamp(1e-6, 1 - 1e-6), torch.from_numpy(y_val)))
        val_map = mean_average_precision(y_val, val_scores)
        micro = classification_report(y_val, val_scores >= 0.5, list(labels))["micro_f1"]
        history.append({
            "epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": val_loss, "val_mAP": val_map,
            "val_micro_f1": micro, "lr": sched.get_last_lr()[0], "seconds": time.perf_counter() - t0,
        })
        log.info("epoch %d: train loss %.4f, val loss %.4f, val mAP %.4f", epoch + 1, history[-1]["train_loss"], val_loss, val_map)
        if val_map > best["mAP"]:
            thresholds = THRESHOLD_TUNING[cfg.thresholds](y_val, val_scores)
            ckpt = Checkpoint(
                frontend, config, {k: v.detach().cpu() for k, v in model.classifier.state_dict().items()},
                dict(zip(labels, map(float, thresholds))), name=name,
                card=_card(cfg, labels, train_items, val_items, summarise(y_val, val_scores, labels, thresholds), epoch + 1),
            )
            superseded = best["weights"]
            best = {"mAP": val_map, "epoch": epoch + 1, "weights": save_checkpoint(ckpt, out).name}
            bad_epochs = 0
        else:
            superseded = None
            bad_epochs += 1
        _atomic_torch_save({
            "config": json.loads(json.dumps(asdict(cfg))), "inputs": inputs, "model": model.classifier.state_dict(),
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "history": history, "best": best,
            "epoch": epoch + 1, "rng": torch.get_rng_state(),
        }, state_path)
        if superseded and superseded != best["weights"]:  # only once state.pt names the new best: a kill never
            (out / superseded).unlink(missing_ok=True)     # leaves a state whose best weights are gone
        (out / "history.json").write_text(json.dumps(history, indent=1))
        _plot_curves(history, out / "curves.png")

    best_path = out / best["weights"]
    best_ckpt = load_checkpoint(best_path)
    test_metrics: dict = {}
    if test_ds is not None:
        test_metrics = evaluate(best_ckpt, test_ds, device, cfg.jobs, cache, progress=report).metrics
        best_ckpt.card["test"] = test_metrics
        tested = save_checkpoint(best_ckpt, out)
        if tested != best_path:  # state.pt names the file first, so a resumed run finds it
            state = torch.load(state_path, map_location="cpu", weights_only=True)
            state["best"]["weights"] = tested.name
            _atomic_torch_save(state, state_path)
            best_path.unlink()
        best_path = tested
    return TrainResult(best_path, history, best_ckpt.card.get("validation", {}), test_metrics)


def _remove_unsaved_best(out: Path, name: str, best: str | None, state_path: Path) -> None:
    """Weights this run wrote after its last state.pt but state.pt does not name: a kill
    came between saving a new best and saving the state. That epoch runs again."""
    saved = state_path.stat().st_mtime_ns
    for path in out.glob(f"{name}-????????.safetensors"):
        if path.name != best and path.stat().st_mtime_ns >= saved:
            log.info("removing %s: written by an epoch that did not finish", path.name)
            path.unlink()


def _card(cfg: TrainConfig, labels, train_items, val_items, val_metrics: dict, epoch: int) -> dict:
    return {
        "tagger_version": __version__,
        "arch": cfg.arch,
        "labels": list(labels),
        "train_data": list(cfg.data),
        "train_files": len(train_items),
        "validation_data": list(cfg.val) or f"{cfg.val_fraction:.0%} stratified split of the training data",
        "validation_files": len(val_items),
        "epoch": epoch,
        "validation": val_metrics,
        "settings": {k: v for k, v in asdict(cfg).items() if k not in ("data", "val", "test", "out", "cache_dir")},
        "trained_at": time.strftime("%Y-%m-%d", time.gmtime()),
    }
