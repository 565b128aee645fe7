"""Scoring batches of segments with a loaded model on its device."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from .models import fold_batch_norms
from .weights import Checkpoint, bundled_model_path, load_checkpoint, resolve_device

log = logging.getLogger(__name__)
CPU_PIECE = 32  # segments per network call on the CPU


class Scorer:
    """A model on a device: segments -> sigmoid scores (n, labels).

    :meth:`score` takes waveform segments (n, samples) and runs the frontend on the
    device (:class:`tagger.frontend_torch.LogMel`); :meth:`score_features` takes log-Mel
    features (n, n_mels, frames) made by :func:`tagger.frontend.logmel`, as the scan's
    workers do on the CPU (:attr:`frontend_in_workers`), and runs only the network.
    The inputs stay on the CPU; only the current batch moves to the device. On CUDA
    the network runs under float16 autocast (the frontend's mel projection stays float32).
    On the CPU the network runs on pieces of :data:`CPU_PIECE` segments: its activations
    then fit in cache and reuse the same memory (twice the speed of whole batches of 256,
    and less memory), with identical scores; and :meth:`score_features` runs an inference
    copy of it, batch norms folded into the convolutions and channels-last tensors (a
    fifth less time, scores equal to 1e-4).
    """

    def __init__(self, checkpoint: Checkpoint, device: str = "auto", batch_size: int = 256) -> None:
        self.checkpoint = checkpoint
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.model = checkpoint.build(self.device)
        self.autocast = self.device.type == "cuda"
        self._network = self.model.classifier
        if self.device.type == "cpu":
            folded = fold_batch_norms(self.model.classifier).to(memory_format=torch.channels_last)
            self._network = lambda x: folded(x.contiguous(memory_format=torch.channels_last))
        log.info("model %s on %s", checkpoint.version, self.device)

    @classmethod
    def from_path(cls, path: str | Path | None = None, device: str = "auto", batch_size: int = 256) -> Scorer:
        """Load ``path``, or the bundled weights when ``path`` is None."""
        return cls(load_checkpoint(path or bundled_model_path()), device, batch_size)

    @staticmethod
    def set_threads(n: int) -> int:
        """Set torch's CPU threads; return the previous setting."""
        previous = torch.get_num_threads()
        torch.set_num_threads(max(1, n))
        return previous

    @property
    def labels(self) -> tuple[str, ...]:
        return self.checkpoint.labels

    @property
    def frontend_in_workers(self) -> bool:
        """True on the CPU: the scan's workers then compute features and call :meth:`score_features`."""
        return self.device.type == "cpu"

    def score(self, segments: np.ndarray) -> np.ndarray:
        """Waveforms (n, samples) float32 -> (n, labels) float32 in [0, 1], in batches of ``batch_size``."""
        return self._run(segments, self.model)

    def score_features(self, features: np.ndarray) -> np.ndarray:
        """Log-Mel (n, n_mels, frames) of :func:`tagger.frontend.logmel` -> (n, labels), as :meth:`score`."""
        return self._run(features, lambda x: self._network(x.unsqueeze(1)))

    @torch.inference_mode()
    def _run(self, inputs: np.ndarray, network) -> np.ndarray:
        out = []
        for i in range(0, len(inputs), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(inputs[i : i + self.batch_size], np.float32))
            batch = batch.to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.autocast):
                if self.device.type == "cpu":
                    logits = torch.cat([network(piece) for piece in batch.split(CPU_PIECE)])
                else:
                    logits = network(batch)  # (batch, labels)
            out.append(torch.sigmoid(logits.float()).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)
