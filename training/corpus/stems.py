"""What every sound source shares: a clip's stem, a source's coverage, a failed render.

``sources`` (the soundfonts, freepats and the dispatch), ``synth`` and ``physical`` all
import these from here, so that none of them imports another for its types.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from tagger.labels import BUNDLED_LABELS

from .material import Phrase

DRUM_BANK = 128  # the General MIDI bank of drum kits


@dataclass(frozen=True)
class Stem:
    """One instrument part of a clip: label, where its sound comes from, what it plays."""

    label: str
    bank: int  # 0, or 128 for a drum kit
    program: int  # GM program (0-based) or drum kit number
    phrase: Phrase

    @property
    def is_drums(self) -> bool:
        return self.label == "drums"


@dataclass(frozen=True)
class Coverage:
    """What a source can honestly render: label -> [(bank, program)], and what it skips."""

    source: str
    programs: dict[str, tuple[tuple[int, int], ...]]
    skipped: dict[str, str]  # "label:program" -> reason
    drum_keys: frozenset[int] | None = None  # None: any GM percussion key

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label in BUNDLED_LABELS if self.programs.get(label))


class RenderError(RuntimeError):
    """A render that cannot be used (e.g. timidity loaded a non-freepats instrument)."""


RENDER_ATTEMPTS = 6  # a clip whose render is unusable is drawn again, on a new stream, this many times
T = TypeVar("T")


def first_usable(seed: int, index: int, render: Callable[[np.random.Generator], T | None], what: str) -> tuple[T, int]:
    """(the first render that is not None, its attempt) of clip ``index``, each attempt on its
    own stream ``[seed, index, attempt]``; RenderError naming ``what`` after RENDER_ATTEMPTS."""
    for attempt in range(RENDER_ATTEMPTS):
        clip = render(np.random.default_rng([seed, index, attempt]))
        if clip is not None:
            return clip, attempt
    raise RenderError(f"{what}: no usable render in {RENDER_ATTEMPTS} attempts")
