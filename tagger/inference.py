"""Scoring batches of segments with a loaded model on its device."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from .weights import Checkpoint, bundled_model_path, load_checkpoint, resolve_device

log = logging.getLogger(__name__)
CPU_PIECE = 32  # segments per network call on the CPU


class Scorer:
    """A model on a device: waveform segments (n, samples) -> sigmoid scores (n, labels).

    The segments stay on the CPU; only the current batch moves to the device. On CUDA
    the network runs under float16 autocast (the frontend's mel projection stays float32).
    On the CPU the network runs on pieces of :data:`CPU_PIECE` segments: its activations
    then fit in cache and reuse the same memory (twice the speed of whole batches of 256,
    and less memory), with identical scores.
    """

    def __init__(self, checkpoint: Checkpoint, device: str = "auto", batch_size: int = 256) -> None:
        self.checkpoint = checkpoint
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.model = checkpoint.build(self.device)
        self.autocast = self.device.type == "cuda"
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

    @torch.inference_mode()
    def score(self, segments: np.ndarray) -> np.ndarray:
        """(n, samples) float32 -> (n, labels) float32 in [0, 1], in batches of ``batch_size``."""
        out = []
        for i in range(0, len(segments), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(segments[i : i + self.batch_size])).to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.autocast):
                if self.device.type == "cpu":
                    logits = torch.cat([self.model(piece) for piece in batch.split(CPU_PIECE)])
                else:
                    logits = self.model(batch)  # (batch, labels)
            out.append(torch.sigmoid(logits.float()).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)
