"""Voices for the corpus: festival sings the notes it is given, espeak-ng speaks, shaping is right.

Ear-free checks: the sung pitch (pYIN) is the asked-for note, the vocal-tract factor moves
pitch and keeps timing, vibrato modulates pitch, renders are deterministic, a missing
engine is one clear error, and a build with voices on top keeps its instrument parts.
"""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from training.corpus import voices
from training.corpus.audio import RENDER_SAMPLES, SAMPLE_RATE
from training.corpus.material import random_context

have_festival = shutil.which("text2wave") is not None and not voices.missing_tools()
pytestmark = pytest.mark.skipif(not have_festival, reason="needs festival, its festvox voices and espeak-ng "
                                f"(Debian: {' '.join(voices.DEBIAN_PACKAGES)})")


def _median_midi(audio: np.ndarray) -> float:
    f0, voiced, _ = librosa.pyin(audio, fmin=60, fmax=900, sr=SAMPLE_RATE, frame_length=1024)
    assert voiced.mean() > 0.5
    return float(np.median(librosa.hz_to_midi(f0[voiced])))


@pytest.mark.parametrize("voice,midi", [("kal_diphone", 55), ("pc_diphone", 50), ("lp_diphone", 67)])
def test_festival_sings_the_asked_pitch(voice, midi):
    hz = 440 * 2 ** ((midi - 69) / 12)
    audio = voices.festival_sing(voice, [(hz, 1.2, "la")])
    assert abs(_median_midi(audio) - midi) < 0.35  # within 35 cents


def test_singing_markup_uses_hz_and_seconds_and_rests():
    xml = voices.singing_xml([(196.0, 0.5, "oh"), (0.0, 0.25, ""), (220.0, 1.0, "love & you")], start=0.3)
    assert '<REST SECONDS="0.300">' in xml and '<REST SECONDS="0.250">' in xml
    assert 'FREQ="196.00"' in xml and 'SECONDS="0.500">oh<' in xml
    assert "love &amp; you" in xml  # escaped


def test_tract_factor_raises_pitch_and_keeps_time():
    hz = 440 * 2 ** ((52 - 69) / 12)
    factor = 1.2
    # sung at f / r for r times as long, then played r times faster: back to 1.0 s at f
    audio = voices.tract_resample(voices.festival_sing("kal_diphone", [(hz / factor, 1.0 * factor, "oh")]), factor)
    assert abs(len(audio) / SAMPLE_RATE - 1.0) < 0.15
    assert abs(_median_midi(audio) - 52) < 0.4


def test_vibrato_modulates_pitch_around_the_note():
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * 220 * t).astype(np.float32)
    wobbly = voices.vibrato(tone, np.random.default_rng(0), rate=5.5, cents=50, onset=0.1)
    f0, voiced, _ = librosa.pyin(wobbly, fmin=150, fmax=300, sr=SAMPLE_RATE, frame_length=2048)
    cents = 1200 * np.log2(f0[voiced][10:] / 220)
    assert abs(np.median(cents)) < 10  # centred on the note
    assert np.percentile(cents, 95) > 25 and np.percentile(cents, 5) < -25  # and moves about it
    assert len(wobbly) == len(tone) and np.isfinite(wobbly).all()


@pytest.mark.parametrize("style", ["sing", "choir", "speak", "espeak"])
@pytest.mark.parametrize("split", ["train", "heldout"])
def test_render_voice_is_deterministic_and_fits_the_render(style, split):
    a, desc_a = voices.render_voice(np.random.default_rng(3), random_context(np.random.default_rng(1)), split, style)
    b, desc_b = voices.render_voice(np.random.default_rng(3), random_context(np.random.default_rng(1)), split, style)
    assert a.shape == (RENDER_SAMPLES,) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert desc_a == desc_b
    assert 0.99 <= np.abs(a).max() <= 1.0 and np.sqrt(np.mean(a ** 2)) > 0.02


def test_held_out_voices_are_never_training_voices():
    train, held = voices.VOICE_SPLITS["train"], voices.VOICE_SPLITS["heldout"]
    assert not set(held["sing"]) & set(train["sing"]) and not set(held["sing"]) & set(train["speak"])
    assert not set(held["speak"]) & set(train["speak"]) and not set(held["espeak"]) & set(train["espeak"])


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_every_espeak_variant_is_one_espeak_ng_ships():
    """espeak-ng falls back to its default voice for an unknown variant without a word, so a
    misspelt name would silently make two splits share a voice."""
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True).stdout
    shipped = {p.name for p in (Path(version.split("Data at:")[1].strip()) / "voices" / "!v").iterdir()}
    names = voices.VOICE_SPLITS["train"]["espeak"] + voices.VOICE_SPLITS["heldout"]["espeak"]
    assert len(set(names)) == len(names) and set(names) <= shipped, sorted(set(names) - shipped)


def test_a_missing_engine_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(voices, "TEXT2WAVE", "/nonexistent/text2wave")
    with pytest.raises(voices.VoiceError, match="not installed"):
        voices.festival_sing("kal_diphone", [(220.0, 0.5, "la")])


@pytest.mark.parametrize("mode", ["speak", "sing"])
def test_festival_with_a_small_heap_renders_what_plain_text2wave_renders(tmp_path, mode):
    """The voices run text2wave in festival's batch mode with a smaller Lisp heap (2-4x faster):
    the sound must be bit for bit what the text2wave command itself writes."""
    if mode == "sing":
        (tmp_path / "in").write_text(voices.singing_xml([(196.0, 0.4, "oh"), (0.0, 0.2, ""), (247.0, 0.6, "love")]))
        args = ["-mode", "singing", "in", "-eval", "(voice_kal_diphone)"]
    else:
        (tmp_path / "in").write_text("the night is young\n")
        args = ["in", "-eval", "(voice_ked_diphone)"]
    subprocess.run(["text2wave", *args, "-o", "plain.wav"], cwd=tmp_path, check=True, capture_output=True)
    command = voices.text2wave([*args, "-o", "small.wav"])
    assert command[:3] == ["festival", "--heap", str(voices.FESTIVAL_HEAP)]
    subprocess.run(command, cwd=tmp_path, check=True, capture_output=True)
    plain, small = (tmp_path / "plain.wav").read_bytes(), (tmp_path / "small.wav").read_bytes()
    assert len(plain) > 20_000 and small == plain


def test_a_festival_error_is_one_voice_error():
    """text2wave itself exits 0 when its Scheme fails (an unknown voice) and writes no sound."""
    with pytest.raises(voices.VoiceError, match="festival failed: .*voice_nobody"):
        voices.festival_speak("nobody", "hello")


TIMGM = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")


@pytest.mark.skipif(not TIMGM.exists(), reason="needs the TimGM6mb soundfont (timgm6mb-soundfont)")
def test_vocals_on_top_keep_the_instrument_parts_and_add_the_voice_label(tmp_path):
    """A build with voices on every clip has the same instruments as one without (paired sets)."""
    from training.build_corpus import main

    def build(out: Path, vocals: str) -> list[dict]:
        args = ["--out", str(out), "--sources", "timgm6mb", "--labels", "piano,bass,flute", "--clips-per-label", "1",
                "--mixtures", "2", "--kinds", "single,mix,voice", "--seed", "5", "--score-pieces", "0",
                "--vocals", vocals, "--voice-split", "heldout", "--jobs", "1"]
        assert main(args) == 0
        with open(out / "manifest.csv", newline="") as fh:
            return list(csv.DictReader(fh))

    plain, sung = build(tmp_path / "plain", "0"), build(tmp_path / "sung", "1")
    assert [r["path"] for r in plain] == [r["path"] for r in sung]
    for p, s in zip(plain, sung):
        assert p["programs"] == s["programs"]  # the same instruments, notes and levels
        if p["kind"] == "voice":
            assert p["labels"] == s["labels"] == "voice"
        else:
            assert s["labels"].split(";") == sorted(p["labels"].split(";") + ["voice"])
            a, _ = sf.read(tmp_path / "plain" / p["path"], dtype="float32")
            b, _ = sf.read(tmp_path / "sung" / s["path"], dtype="float32")
            assert not np.allclose(a, b)  # the voice is there


@pytest.mark.skipif(not TIMGM.exists(), reason="needs the TimGM6mb soundfont (timgm6mb-soundfont)")
def test_voice_styles_choose_which_voices_a_build_draws(tmp_path):
    """--voice-styles espeak=1 puts only espeak-ng speech on the clips; the instruments stay."""
    from training.build_corpus import main
    from training.heldout import voice_styles

    def build(out: Path, *extra: str) -> list[dict]:
        args = ["--out", str(out), "--sources", "timgm6mb", "--labels", "piano,bass,flute", "--mixtures", "4",
                "--kinds", "mix", "--seed", "5", "--score-pieces", "0", "--vocals", "1", "--jobs", "1", *extra]
        assert main(args) == 0
        with open(out / "details.jsonl") as fh:
            return [json.loads(line) for line in fh]

    default, spoken = build(tmp_path / "default"), build(tmp_path / "spoken", "--voice-styles", "espeak=1")
    styles = voice_styles(tmp_path / "spoken"), voice_styles(tmp_path / "default")
    assert len(styles[0]) == len(spoken) == 4 and set(styles[0].values()) == {"espeak"}
    assert set(styles[1].values()) != {"espeak"}  # seed 5 draws a sung voice among its four
    assert [r["stems"] for r in spoken] == [r["stems"] for r in default]  # the same instrument parts


def test_voice_styles_are_parsed_and_checked():
    from training.build_corpus import parse_args

    args = parse_args(["--out", "x", "--voice-styles", "espeak=2,sing=0.5"])
    assert args.voice_styles == {"espeak": 2.0, "sing": 0.5}
    for bad in ("whisper=1", "espeak", "espeak=0", "sing=-1,espeak=2"):
        with pytest.raises(SystemExit):
            parse_args(["--out", "x", "--voice-styles", bad])


def test_high_notes_are_folded_below_festivals_limit():
    """festival segfaults above ~500 Hz; a soprano line is sung an octave down instead of failing."""
    ctx = random_context(np.random.default_rng(0))
    for seed in range(20):
        notes, _ = voices._sung_notes(np.random.default_rng(seed), ctx, voices.FESTIVAL_VOICES["lp_diphone"], 0.9, 7)
        assert all(hz <= voices.MAX_FESTIVAL_HZ for hz, _, _ in notes)
