"""The bundled model's labels and the General MIDI programs that stand for each.

The table is the contract in DESIGN.md ("Labels of the bundled model"). The trainer
accepts any label set; this one is only what the bundled weights predict.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BUNDLED_LABELS: tuple[str, ...] = (
    "accordion", "acoustic_guitar", "banjo", "bass", "cello", "clarinet", "drums",
    "electric_guitar", "flute", "mallet_percussion", "organ", "piano", "saxophone",
    "synthesizer", "trombone", "trumpet", "violin",
)

# Singing or speech as the predominant sound (DESIGN.md: a voice label may join the bundled
# labels once trained from the voice engines and checked on held-out voices). It is a
# label, never an instrument: evaluation counts it apart, and a voice must never bring
# an instrument label with it.
VOICE_LABEL = "voice"
NON_INSTRUMENT_LABELS: frozenset[str] = frozenset({VOICE_LABEL})


def instrument_columns(labels: Sequence[str]) -> np.ndarray:
    """Boolean mask over ``labels``: True for an instrument, False for ``voice`` and the like."""
    return np.array([label not in NON_INSTRUMENT_LABELS for label in labels])

# GM programs (bank 0, 0-based) used to render each label. "drums" is the percussion
# channel (MIDI channel 10, 0-based 9), not a program. Optional programs from DESIGN.md
# (electric pianos 4-5, viola 41, piccolo 72) are included: they are honest members of
# their label and add timbre variety.
GM_PROGRAMS: dict[str, tuple[int, ...]] = {
    "piano": (0, 1, 2, 3, 4, 5),
    "mallet_percussion": (8, 9, 10, 11, 12, 13),
    "organ": (16, 17, 18, 19, 20),
    "accordion": (21, 23),
    "acoustic_guitar": (24, 25),
    "electric_guitar": (26, 27, 28, 29, 30, 31),
    "bass": (32, 33, 34, 35, 36, 37, 38, 39),
    "violin": (40, 41),
    "cello": (42,),
    "trumpet": (56, 59),
    "trombone": (57,),
    "saxophone": (64, 65, 66, 67),
    "clarinet": (71,),
    "flute": (73, 72),
    "synthesizer": tuple(range(80, 96)),
    "banjo": (105,),
    "drums": (),
}
DRUM_CHANNEL = 9  # MIDI channel 10, 0-based

assert set(GM_PROGRAMS) == set(BUNDLED_LABELS)
