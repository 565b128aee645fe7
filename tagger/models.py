"""Networks that turn a log-Mel segment into one logit per label.

Every architecture takes features of shape (batch, 1, n_mels, frames) from
:mod:`tagger.frontend` and returns logits (batch, n_labels). They are built by
name from a :class:`ModelConfig`, which travels in the weights file.

- ``resnet`` (default): a small residual network, fast on a 2-core CPU.
- ``cnn``: three conv blocks of 64/128/256 filters, batch norm, max-pool, global average
  pooling, dense 256, dropout 0.5 (the classic IRMAS baseline).
- ``crnn``: conv blocks, then a bidirectional GRU over time.
- ``resnet18``: the ImageNet ResNet-18 layout (2-2-2-2 basic blocks, 64-512 channels)
  on one input channel.
- ``mfcc-mlp``: MFCC statistics (mean and std over time of 20 coefficients) into a small
  dense net.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import FrontendConfig, ModelConfig
from .frontend_torch import LogMel

ARCHITECTURES = ("resnet", "cnn", "crnn", "resnet18", "mfcc-mlp")


def power_of_two(k: int) -> bool:
    return k >= 1 and not k & (k - 1)


class MaxPool(nn.Module):
    """``nn.MaxPool2d((mels, frames))``, exactly (sizes floored), as pairwise maxima.

    Factors are powers of two. PyTorch's CPU kernel for NCHW max-pooling is about ten
    times slower than this; it was a seventh of the bundled model's time. No parameters,
    so weights load either way.
    """

    def __init__(self, mels: int = 2, frames: int = 2) -> None:
        super().__init__()
        if not (power_of_two(mels) and power_of_two(frames)):
            raise ValueError(f"max-pool factors must be powers of two, got {mels}x{frames}")
        self.halvings = (mels.bit_length() - 1, frames.bit_length() - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.halvings[1]):
            w = x.shape[-1] // 2 * 2
            x = torch.maximum(x[..., 0:w:2], x[..., 1:w:2])
        for _ in range(self.halvings[0]):
            h = x.shape[-2] // 2 * 2
            x = torch.maximum(x[..., 0:h:2, :], x[..., 1:h:2, :])
        return x


class InputNorm(nn.Module):
    """Batch norm over mel bins, as in PANNs: (batch, 1, mels, frames) -> same shape."""

    def __init__(self, n_mels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(n_mels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)  # (batch, mels, 1, frames)
        return self.bn(x).transpose(1, 2)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection; stride on the first conv."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


def fold_batch_norms(module: nn.Module) -> nn.Module:
    """An inference copy of ``module`` with each BatchNorm2d that follows a Conv2d folded into it.

    In eval mode a batch norm is an affine map per channel, so the conv before it can
    absorb it: the same outputs (to float rounding) for one layer less. Folds the pairs of
    a ``Sequential`` and a :class:`BasicBlock`'s ``conv1/bn1``, ``conv2/bn2``.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    module = copy.deepcopy(module).eval()
    for m in module.modules():
        if isinstance(m, BasicBlock):
            m.conv1, m.bn1 = fuse_conv_bn_eval(m.conv1, m.bn1), nn.Identity()
            m.conv2, m.bn2 = fuse_conv_bn_eval(m.conv2, m.bn2), nn.Identity()
        elif isinstance(m, nn.Sequential):
            for i in range(len(m) - 1):
                if isinstance(m[i], nn.Conv2d) and isinstance(m[i + 1], nn.BatchNorm2d):
                    m[i], m[i + 1] = fuse_conv_bn_eval(m[i], m[i + 1]), nn.Identity()
    return module


def global_pool(x: torch.Tensor) -> torch.Tensor:
    """(batch, channels, mels, frames) -> (batch, 2 * channels): mean and max over the map.

    Max over time keeps a short solo audible; mean keeps sustained sound.
    """
    x = x.mean(dim=2)  # (batch, channels, frames)
    return torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)


class ResNet(nn.Module):
    """Residual network over log-Mel; ``blocks`` basic blocks per stage, 4 stages."""

    def __init__(
        self, n_mels: int, n_labels: int, width: int, blocks: tuple[int, ...], dropout: float,
        stem_pool: tuple[int, int] = (2, 2),
    ) -> None:
        super().__init__()
        self.input_norm = InputNorm(n_mels)
        stem: list[nn.Module] = [
            nn.Conv2d(1, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        ]  # halves mels and frames
        if stem_pool != (1, 1):
            # (2, 2): halves them again, the first stage costs a quarter; (1, 4): keeps twice the
            # mel bands for the same cost, a quarter of the frames
            stem.append(MaxPool(*stem_pool))
        self.stem = nn.Sequential(*stem)
        stages, c_in = [], width
        for i, n in enumerate(blocks):
            c_out = width * 2**i
            for j in range(n):
                stages.append(BasicBlock(c_in, c_out, stride=2 if (j == 0 and i > 0) else 1))
                c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * c_in, n_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(x)  # (batch, 1, mels, frames)
        x = self.stem(x)  # (batch, width, mels/4, frames/4) with the default stem_pool
        x = self.stages(x)  # (batch, 8*width, mels/32, frames/32)
        return self.head(self.dropout(global_pool(x)))  # (batch, n_labels)


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        MaxPool(),
    )


class BaselineCNN(nn.Module):
    """Three conv blocks (64/128/256), global average pooling, dense 256, dropout 0.5."""

    def __init__(self, n_mels: int, n_labels: int) -> None:
        super().__init__()
        self.input_norm = InputNorm(n_mels)
        self.features = nn.Sequential(conv_block(1, 64), conv_block(64, 128), conv_block(128, 256))
        self.classifier = nn.Sequential(
            nn.Linear(256, 256), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(256, n_labels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.input_norm(x))  # (batch, 256, mels/8, frames/8)
        return self.classifier(x.mean(dim=(2, 3)))


class CRNN(nn.Module):
    """Conv blocks pooling frequency away, then a bidirectional GRU over time."""

    def __init__(self, n_mels: int, n_labels: int, hidden: int = 128) -> None:
        super().__init__()
        self.input_norm = InputNorm(n_mels)
        self.features = nn.Sequential(conv_block(1, 64), conv_block(64, 128), conv_block(128, 128))
        self.gru = nn.GRU(128, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, n_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.input_norm(x))  # (batch, 128, mels/8, frames/8)
        x = x.mean(dim=2).transpose(1, 2)  # (batch, frames/8, 128)
        x, _ = self.gru(x)  # (batch, frames/8, 2*hidden)
        return self.head(x.mean(dim=1))


class MfccMLP(nn.Module):
    """MFCC statistics from the log-Mel (DCT-II over mel bins) into a small dense net."""

    def __init__(self, n_mels: int, n_labels: int, n_mfcc: int = 20, hidden: int = 256) -> None:
        super().__init__()
        dct = torch.from_numpy(_dct_matrix(n_mfcc, n_mels))  # (n_mfcc, n_mels)
        self.register_buffer("dct", dct, persistent=False)
        self.norm = nn.BatchNorm1d(2 * n_mfcc)
        self.net = nn.Sequential(
            nn.Linear(2 * n_mfcc, hidden), nn.ReLU(inplace=True), nn.Dropout(0.3),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, n_labels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mfcc = torch.matmul(self.dct, x.squeeze(1))  # (batch, n_mfcc, frames)
        stats = torch.cat([mfcc.mean(dim=2), mfcc.std(dim=2)], dim=1)  # (batch, 2*n_mfcc)
        return self.net(self.norm(stats))


def _dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II basis (n_out, n_in), as librosa.feature.mfcc uses."""
    n = np.arange(n_in)
    basis = np.cos(np.pi / n_in * (n + 0.5)[None, :] * np.arange(n_out)[:, None])
    basis *= np.sqrt(2.0 / n_in)
    basis[0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


def stem_pool_factors(extra: dict) -> tuple[int, int]:
    """The resnet stem's max-pool (mels, frames) from a config's extras: (2, 2) by default.

    Weights files of older releases say ``true``/``false`` for (2, 2)/(1, 1).
    """
    pool = extra.get("stem_pool", (2, 2))
    if isinstance(pool, bool):
        return (2, 2) if pool else (1, 1)
    return (int(pool[0]), int(pool[1]))


def build_classifier(config: ModelConfig, frontend: FrontendConfig) -> nn.Module:
    """The network for ``config.arch``: features (batch, 1, mels, frames) -> logits."""
    n_mels, n = frontend.n_mels, config.n_labels
    if config.arch == "resnet":
        blocks = tuple(config.extra.get("blocks", (1, 1, 1, 1)))
        return ResNet(n_mels, n, config.width, blocks, config.dropout, stem_pool_factors(config.extra))
    if config.arch == "resnet18":
        return ResNet(n_mels, n, 64, (2, 2, 2, 2), config.dropout)
    if config.arch == "cnn":
        return BaselineCNN(n_mels, n)
    if config.arch == "crnn":
        return CRNN(n_mels, n)
    if config.arch == "mfcc-mlp":
        return MfccMLP(n_mels, n)
    raise ValueError(f"unknown architecture {config.arch!r}; choose one of {', '.join(ARCHITECTURES)}")


class Tagger(nn.Module):
    """Frontend + classifier: waveforms (batch, samples) -> logits (batch, n_labels)."""

    def __init__(self, frontend: FrontendConfig, config: ModelConfig) -> None:
        super().__init__()
        self.frontend_config = frontend
        self.config = config
        self.frontend = LogMel(frontend)
        self.classifier = build_classifier(config, frontend)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.config.labels

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.frontend(waveforms))
