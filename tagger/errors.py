"""Typed errors. Each carries the file it concerns, so a row of the report can say why."""
from __future__ import annotations

from pathlib import Path


class TaggerError(Exception):
    """Base class: a one-line reason, and the file it concerns (if any)."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)
        self.message = message

    def __str__(self) -> str:  # one line, always
        return " ".join(self.message.split())


class AudioDecodeError(TaggerError):
    """A file could not be decoded into audio (corrupt, truncated, not audio, unreadable...)."""


class ModelLoadError(TaggerError):
    """A weights file is missing, corrupt, fails its checksum or does not match its config."""


class TagWriteError(TaggerError):
    """Tags could not be read or written (read-only file, unsupported container...)."""


class DatasetError(TaggerError):
    """A training or evaluation dataset is not in a layout we can read."""


class RunMismatchError(TaggerError):
    """A training run folder holds a run made with other settings or data than asked for."""


class CompileError(TaggerError):
    """``torch.compile`` could not compile the network (no C++ compiler, an unsupported device...)."""
