"""Pop, jazz, folk and orchestral arrangements (training.genres, training/corpus/genres.py)."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tagger.labels import BUNDLED_LABELS, VOICE_LABEL
from training.corpus.audio import CLIP_SAMPLES, RENDER_SECONDS, SAMPLE_RATE, rms
from training.corpus.genres import (CONTRAST_LABELS, GENRES, STYLES, gen_comping, gen_walking, missing_material,
                                    render_genre_clip, swing)
from training.corpus.material import MusicContext, Note, Phrase

MISSING = missing_material(STYLES)
needs_material = pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} (scripts/setup_corpus.sh)")
LABELS = set(BUNDLED_LABELS) | {VOICE_LABEL}
CTX = MusicContext(120.0, 0, "major", (0, 3, 4, 0), 4, 4)


def test_every_role_of_every_genre_names_only_our_labels_and_a_level_near_the_reference():
    for genre in GENRES.values():
        assert genre.roles[0].level_db == (0.0, 0.0)  # the reference part
        for role in genre.roles:
            assert set(role.labels) <= LABELS, role
            lo, hi = role.level_db
            assert -6.0 <= lo <= hi <= 2.0, role  # a labelled level, as training.rock's parts
    assert set(CONTRAST_LABELS) <= set(BUNDLED_LABELS)


def test_a_walking_bass_plays_a_quarter_note_a_beat_in_the_bass_range():
    rng = np.random.default_rng(0)
    phrase = gen_walking(rng, CTX, 28, 55, 90.0)
    starts = [n.start for n in phrase.notes]
    assert np.allclose(np.diff(starts), CTX.beat) and len(starts) == int(np.ceil(RENDER_SECONDS / CTX.beat))
    assert all(28 <= n.pitch <= 55 for n in phrase.notes)


def test_comping_voices_seventh_chords_without_the_root_and_swing_delays_only_the_offbeats():
    rng = np.random.default_rng(1)
    phrase = gen_comping(rng, CTX, 21, 108, 80.0)
    assert phrase.notes
    first = [n.pitch % 12 for n in phrase.notes if abs(n.start - phrase.notes[0].start) < 0.02]
    assert 11 in first or 4 in first  # C major 7: its third (E) or seventh (B) is there
    straight = Phrase([Note(0.0, 0.2, 60, 90), Note(0.25, 0.45, 62, 90)], "test")
    swung = swing(straight, CTX, 0.66)
    assert swung.notes[0].start == 0.0 and swung.notes[1].start == pytest.approx(0.25 + 0.16 * CTX.beat)


@needs_material
@pytest.mark.parametrize("style", STYLES)
def test_a_clip_of_each_style_is_three_seconds_of_sound_labelled_by_the_parts_it_mixed(style):
    clip, _ = render_genre_clip(seed=0, index=0, style=style)
    assert clip.audio.shape == (CLIP_SAMPLES,) and clip.audio.dtype == np.float32
    assert rms(clip.audio) > 1e-3 and float(np.max(np.abs(clip.audio))) <= 1.0
    assert set(clip.labels) <= LABELS and clip.labels
    assert set(clip.labels) == {p["label"] for p in clip.parts}
    assert clip.parts[0]["gain_db"] == 0.0 and all(-6.0 <= p["gain_db"] <= 2.0 for p in clip.parts)
    assert {p["role"] for p in clip.parts} <= {r.name for r in GENRES[style].roles}
    again, _ = render_genre_clip(seed=0, index=0, style=style)
    assert np.array_equal(clip.audio, again.audio)  # a clip depends only on (seed, index, style)


@needs_material
def test_contrast_clips_give_the_reference_part_to_another_instrument_and_say_so():
    contrast = 0
    for i in range(8):
        clip, _ = render_genre_clip(seed=2, index=i, style="jazz", other=1.0)
        first = clip.parts[0]
        assert first["role"] == "head:contrast" and first["label"] in CONTRAST_LABELS
        assert first["label"] not in GENRES["jazz"].roles[0].labels and first["label"] in clip.labels
        contrast += 1
    assert contrast == 8
    plain, _ = render_genre_clip(seed=0, index=1, style="folk")
    again, _ = render_genre_clip(seed=0, index=1, style="folk", other=0.0)
    assert np.array_equal(plain.audio, again.audio)


@needs_material
def test_the_genres_cli_writes_every_style_in_turn_with_a_stamp_and_reuses_it(tmp_path):
    import soundfile as sf

    from training.genres import main

    out = tmp_path / "genres"
    assert main(["--out", str(out), "--clips", "4", "--seed", "3", "--styles", "orchestral,folk"]) == 0
    with open(out / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["kind"] for r in rows] == ["orchestral", "folk", "orchestral", "folk"]
    details = [json.loads(line) for line in (out / "details.jsonl").read_text().splitlines()]
    for row, d in zip(rows, details):
        assert set(row["labels"].split(";")) == {p["label"] for p in d["parts"]}
        info = sf.info(str(out / row["path"]))
        assert info.samplerate == SAMPLE_RATE and info.frames == CLIP_SAMPLES
    mtime = (out / "manifest.csv").stat().st_mtime_ns
    assert main(["--out", str(out), "--clips", "4", "--seed", "3", "--styles", "orchestral,folk", "--reuse"]) == 0
    assert (out / "manifest.csv").stat().st_mtime_ns == mtime
    with pytest.raises(SystemExit):
        main(["--out", str(out), "--styles", "polka"])


@needs_material
def test_a_voice_engine_that_fails_on_one_input_costs_the_part_not_the_build_but_a_missing_one_stops_it(monkeypatch):
    import training.corpus.genres as genres
    from training.corpus.voices import VoiceError

    def fails(*args, **kwargs):
        raise VoiceError("festival failed: SIOD ERROR")

    monkeypatch.setattr(genres, "render_voice", fails)
    from training.corpus.stems import RenderError

    rendered = 0
    for i in range(4):
        try:  # a clip whose every attempt drew a voice reference is given up (a warning), the build goes on
            clip, _ = render_genre_clip(seed=5, index=i, style="pop")
        except RenderError:
            continue
        assert VOICE_LABEL not in clip.labels and clip.labels
        rendered += 1
    assert rendered

    def missing(*args, **kwargs):
        raise VoiceError("text2wave is not installed (Debian: festival)")

    monkeypatch.setattr(genres, "render_voice", missing)
    with pytest.raises(genres.GenreError):
        for i in range(8):
            render_genre_clip(seed=5, index=i, style="pop")


def test_a_missing_source_of_any_role_is_named_not_left_out(monkeypatch):
    """Without avldrums (or timidity's freepats) the same seed would build another corpus
    under the same stamp: the build must stop and name it instead."""
    from training.corpus import genres

    real = genres._coverage
    monkeypatch.setattr(genres, "_coverage", lambda source: None if source == "avldrums" else real(source))
    assert "avldrums" in genres.missing_material(("pop",))
