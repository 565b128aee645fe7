"""The weights file: a safetensors file that carries its own configs, labels and card.

Layout: tensors are the classifier's state dict; the safetensors metadata holds one key,
``tagger``, a JSON object with ``frontend`` (FrontendConfig), ``model`` (ModelConfig),
``thresholds`` (label -> decision threshold), ``aggregation`` and ``card`` (training data,
held-out figures...). safetensors cannot execute code when loaded, unlike a pickle.

Files are named ``<name>-<first 8 hex of their SHA-256>.safetensors``; the loader
checks the digest against the name before use. A file renamed without the digest loads
with one warning that it could not be verified.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError, safe_open

from .aggregate import DEFAULT_AGGREGATION
from .atomic import default_mode
from .config import FrontendConfig, ModelConfig, extra_problem
from .errors import ModelLoadError

if TYPE_CHECKING:  # torch loads only with the tensors: read_header() works without it
    import torch

    from .models import Tagger

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
# The bundled weights: the clone's weights/ (a checkout or an editable install), else where a
# wheel puts them (pyproject's data-files: <prefix>/share/instrument-tagger/weights).
_CLONE_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
_INSTALLED_WEIGHTS = Path(sys.prefix) / "share" / "instrument-tagger" / "weights"
BUNDLED_DIR = _CLONE_WEIGHTS if _CLONE_WEIGHTS.is_dir() else _INSTALLED_WEIGHTS
_HASHED_NAME = re.compile(r"^(?P<name>.+)-(?P<digest>[0-9a-f]{8})\.safetensors$")
# A label is a CSV column, a tag value and a key of the HTML report's JavaScript objects: a plain
# name, which cannot be __proto__; "constructor" is the one such name that JavaScript objects hold.
LABEL_NAME = re.compile(r"[a-z0-9][a-z0-9_]*")
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # goes into every CSV row and tag
# The columns of the CSV report and of the segment timeline: a label of that name would overwrite one.
RESERVED_LABELS = frozenset({"path", "status", "error", "duration_s", "segments", "instruments", "model", "tags",
                             "previous_instruments", "start_s", "end_s", "loudness_db"})


def label_problem(labels: Sequence[str]) -> str | None:
    """Why ``labels`` cannot be a model's label set, in one line (None when they can)."""
    if not labels:
        return "no labels"
    seen: set[str] = set()
    for label in labels:
        if not isinstance(label, str) or not LABEL_NAME.fullmatch(label):
            return f"label {label!r} is not a name of lowercase letters, digits and _ (starting with a letter or digit)"
        if label == "constructor":
            return f"label {label!r} is a name every JavaScript object has (the HTML report could not tell them apart)"
        if label in RESERVED_LABELS:
            return f"label {label!r} is the name of a report column"
        if label in seen:
            return f"label {label!r} appears twice"
        seen.add(label)
    return None


def threshold_problem(thresholds: object, labels: Sequence[str]) -> str | None:
    """Why ``thresholds`` (label -> threshold) are not usable for ``labels`` (None when they are)."""
    if not isinstance(thresholds, dict):
        return "thresholds are not a label -> number mapping"
    for label in labels:
        value = thresholds.get(label)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0 <= value <= 1:
            return f"threshold of {label!r} is {value!r}, not a number in [0, 1]"
    return None


@dataclass
class Checkpoint:
    """A model with everything needed to use it."""

    frontend: FrontendConfig
    config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    thresholds: dict[str, float]
    aggregation: dict = field(default_factory=lambda: dict(DEFAULT_AGGREGATION))
    card: dict = field(default_factory=dict)
    name: str = "model"
    digest: str = ""  # first 8 hex of the file's SHA-256, once saved or loaded

    @property
    def labels(self) -> tuple[str, ...]:
        return self.config.labels

    @property
    def version(self) -> str:
        """What the CSV and tags call this model: ``resnet-1a2b3c4d``."""
        return f"{self.name}-{self.digest}" if self.digest else self.name

    def build(self, device: str | torch.device = "cpu") -> Tagger:
        """The network in eval mode on ``device``, with these weights (strict)."""
        from .models import Tagger

        model = Tagger(self.frontend, self.config)
        try:
            model.classifier.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as exc:
            raise ModelLoadError(f"weights do not match their config: {str(exc).splitlines()[0]}") from exc
        return model.to(device).eval()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(ckpt: Checkpoint, folder: Path) -> Path:
    """Write ``folder/<name>-<sha8>.safetensors`` atomically; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT_VERSION,
        "name": ckpt.name,
        "frontend": ckpt.frontend.to_dict(),
        "model": ckpt.config.to_dict(),
        "thresholds": {label: float(ckpt.thresholds[label]) for label in ckpt.labels},
        "aggregation": ckpt.aggregation,
        "card": ckpt.card,
    }
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in ckpt.state_dict.items()}
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    os.close(fd)
    try:
        os.chmod(tmp, default_mode())  # an ordinary file, not mkstemp's 0600
        save_file(state, tmp, metadata={"tagger": json.dumps(meta, sort_keys=True)})
        digest = sha256_file(Path(tmp))[:8]
        final = folder / f"{ckpt.name}-{digest}.safetensors"
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    ckpt.digest = digest
    return final


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and verify a weights file; every failure is one ModelLoadError line."""
    return load_tensors(read_header(path), path)


def load_tensors(header: Checkpoint, path: str | Path) -> Checkpoint:
    """``header`` (from :func:`read_header`) with the tensors of ``path``.

    The tensors come from the very bytes whose digest is checked against the header's,
    so a file replaced since its header was read is refused, not half-mixed in.
    """
    from safetensors.torch import load

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read the weights file ({exc})", path) from exc
    if hashlib.sha256(data).hexdigest()[:8] != header.digest:
        raise ModelLoadError("the weights file changed while it was being loaded", path)
    try:
        state = load(data)
    except (SafetensorError, ValueError) as exc:
        raise ModelLoadError(f"not a readable safetensors file ({exc})", path) from exc
    return replace(header, state_dict=state)


def read_header(path: str | Path) -> Checkpoint:
    """Verify a weights file and read everything but its tensors (``state_dict`` is empty).

    Needs neither torch nor the time to import it: the configs, labels, thresholds, card
    and version are in the safetensors metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError("weights file not found", path)
    match = _HASHED_NAME.match(path.name)
    digest = sha256_file(path)
    if match and not digest.startswith(match["digest"]):
        raise ModelLoadError(
            f"checksum mismatch: file name says {match['digest']}, content is {digest[:8]} (corrupt or altered)",
            path,
        )
    if not match:
        log.warning("%s: no digest in the file name, so it could not be verified", path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            raw = (f.metadata() or {}).get("tagger")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"not a readable safetensors file ({exc})", path) from exc
    if raw is None:
        raise ModelLoadError("no tagger metadata in the weights file", path)
    try:
        meta = json.loads(raw)
        if meta.get("format") != FORMAT_VERSION:
            raise ModelLoadError(f"weights format {meta.get('format')} is not {FORMAT_VERSION}", path)
        agg = meta["aggregation"]
        if (agg.get("method") != "top_mean" or not 0 < float(agg["top_fraction"]) <= 1
                or not 0 <= float(agg.get("track_threshold", 0)) <= 1):
            raise ModelLoadError(f"unknown aggregation {agg} (this tagger knows top_mean, 0 < top_fraction <= 1, "
                                 "0 <= track_threshold <= 1)", path)
        config = ModelConfig.from_dict(meta["model"])
        problem = (label_problem(config.labels) or threshold_problem(meta["thresholds"], config.labels)
                   or extra_problem(config)
                   or (None if isinstance(meta["name"], str) and MODEL_NAME.fullmatch(meta["name"])
                       else f"model name {meta['name']!r} is not a plain name (letters, digits, . _ -)"))
        if problem:
            raise ModelLoadError(f"bad weights file: {problem}", path)
        ckpt = Checkpoint(
            frontend=FrontendConfig.from_dict(meta["frontend"]),
            config=config,
            state_dict={},
            thresholds={label: float(meta["thresholds"][label]) for label in config.labels},
            aggregation=meta["aggregation"],
            card=meta.get("card", {}),
            name=meta["name"],
            digest=digest[:8],
        )
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"bad metadata in the weights file ({type(exc).__name__}: {exc})", path) from exc
    return ckpt


def bundled_model_path() -> Path:
    """The one ``.safetensors`` file in the repository's ``weights/`` folder."""
    found = sorted(BUNDLED_DIR.glob("*.safetensors"))
    if len(found) != 1:
        raise ModelLoadError(
            f"expected exactly one bundled weights file in {BUNDLED_DIR}, found {len(found)}; pass --model PATH"
        )
    return found[0]


# Device nodes of the kernel drivers torch's CUDA (and ROCm) builds need; Linux and WSL2.
GPU_DEVICE_NODES = ("/dev/nvidiactl", "/dev/dxg", "/dev/kfd")


def cpu_without_torch(device: str) -> bool:
    """True when ``device`` surely resolves to the CPU, known without importing torch.

    ``cpu``, and ``auto`` on macOS or on a Linux without GPU device nodes. False means
    "ask torch" (:func:`resolve_device`), not "it is a GPU".
    """
    if device == "cpu":
        return True
    if device != "auto":
        return False
    if sys.platform == "darwin":
        return True
    return sys.platform.startswith("linux") and not any(os.path.exists(node) for node in GPU_DEVICE_NODES)


def resolve_device(device: str) -> torch.device:
    """``auto`` is CUDA when present, else CPU; asking for CUDA without one is an error."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(device)
