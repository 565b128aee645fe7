"""What every sound source shares: a clip's stem, a source's coverage, a failed render.

``sources`` (the soundfonts, freepats and the dispatch), ``synth`` and ``physical`` all
import these from here, so that none of them imports another for its types.
"""
from __future__ import annotations

from dataclasses import dataclass

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
