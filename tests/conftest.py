"""Shared fixtures: a tiny random-weights model and a small library of good and bad files."""
from __future__ import annotations

from pathlib import Path

import pytest

from audio_helpers import make_tiny_model, noise, tone, write_audio


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture
def library(tmp_path) -> Path:
    """Good and bad files: tones and noise in WAV and FLAC, garbage, empty, too short, odd names."""
    lib = tmp_path / "lib"
    write_audio(lib / "tone.wav", tone(7.0))
    write_audio(lib / "sub dir" / "noise.flac", noise(4.0))
    write_audio(lib / "ünïcode – name.wav", tone(3.5, 220))
    write_audio(lib / "short.wav", tone(0.4))
    (lib / "garbage.mp3").write_bytes(b"this is not audio" * 100)
    (lib / "empty.ogg").write_bytes(b"")
    (lib / "notes.txt").write_text("not audio, not scanned")
    return lib
