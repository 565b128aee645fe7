"""The new training sources of issue 26: GeneralUser GS, the avldrums kits, band music (training.rock)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from training.corpus.audio import CLIP_SAMPLES, SAMPLE_RATE, rms
from training.corpus.material import Note, Phrase, random_context
from training.corpus.rock import RIFFS, impulse_responses, riff, render_rock_clip
from training.corpus.sources import AVLDRUMS_KITS, SOUNDFONTS, coverage_for, render_stems
from training.corpus.stems import Stem

GENERALUSER = SOUNDFONTS["generaluser"]
GUITARIX = Path("/usr/share/gx_head/sounds")
needs_generaluser = pytest.mark.skipif(not GENERALUSER.exists(), reason="needs minuet-data (GeneralUser GS)")
needs_avldrums = pytest.mark.skipif(not all(p.exists() for p in AVLDRUMS_KITS.values()),
                                    reason="needs avldrums.lv2-soundfont")
needs_band = pytest.mark.skipif(not (GENERALUSER.exists() and GUITARIX.exists()),
                                reason="needs minuet-data and guitarix-common")


def _phrase(keys, step=0.25) -> Phrase:
    return Phrase([Note(0.1 + step * i, 0.1 + step * (i + 0.8), k, 100) for i, k in enumerate(keys * 3)], "test")


@needs_generaluser
def test_generaluser_covers_every_pitched_label_and_renders_a_distortion_guitar():
    cov = coverage_for("generaluser")
    assert {"electric_guitar", "bass", "drums", "piano", "violin"} <= set(cov.labels)
    assert (0, 30) in cov.programs["electric_guitar"]
    audio = render_stems("generaluser", [Stem("electric_guitar", 0, 30, _phrase([40, 47, 52]))], cov, 0)[0]
    assert audio.dtype == np.float32 and rms(audio) > 1e-3


@needs_avldrums
def test_avldrums_is_a_drums_only_source_of_two_distinct_kits():
    cov = coverage_for("avldrums")
    assert cov.labels == ("drums",) and cov.programs["drums"] == ((0, 0), (0, 1))
    groove = _phrase([36, 42, 38, 42])
    kits = render_stems("avldrums", [Stem("drums", 0, k, groove) for k in (0, 1)], cov, 0)
    assert all(rms(a) > 1e-3 for a in kits)
    assert not np.allclose(kits[0], kits[1], atol=1e-3)  # two recorded kits, not one twice


@pytest.mark.parametrize("style", RIFFS)
def test_every_riff_style_plays_in_the_guitar_range_and_gives_the_bass_its_roots(style):
    rng = np.random.default_rng(3)
    phrase, roots = riff(rng, random_context(rng, bpm=140.0), style, 100.0)
    assert phrase.notes and roots
    assert all(38 <= n.pitch <= 72 and n.end > n.start for n in phrase.notes)
    assert all(38 <= r <= 58 for _, _, r in roots)  # the low strings (a passing chord moves up by <= 7)


@needs_band
def test_a_band_clip_is_three_loud_seconds_labelled_by_the_parts_it_mixed():
    assert any(p.parent.name == "bands" for p in impulse_responses())
    clip, attempt = render_rock_clip(seed=0, index=0)
    assert clip.audio.shape == (CLIP_SAMPLES,) and clip.audio.dtype == np.float32
    assert float(np.max(np.abs(clip.audio))) > 0.5  # mastered loud
    roles = {p["role"] for p in clip.parts}
    assert "electric_guitar" in clip.labels and "guitar_rhythm" in roles
    assert set(clip.labels) - {"electric_guitar"} == roles & {"drums", "bass"}
    assert any(e.startswith("amp(") and "ir=" in e for e in clip.effects)
    again, _ = render_rock_clip(seed=0, index=0)
    assert np.array_equal(clip.audio, again.audio)  # a clip depends only on (seed, index)


@needs_band
def test_the_rock_cli_writes_a_manifest_a_stamp_and_reuses_a_finished_build(tmp_path):
    from training.rock import main

    out = tmp_path / "rock"
    assert main(["--out", str(out), "--clips", "3", "--seed", "1"]) == 0
    with open(out / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and all("electric_guitar" in r["labels"].split(";") for r in rows)
    import soundfile as sf

    info = sf.info(str(out / rows[0]["path"]))
    assert info.samplerate == SAMPLE_RATE and info.frames == CLIP_SAMPLES
    mtime = (out / "manifest.csv").stat().st_mtime_ns
    assert main(["--out", str(out), "--clips", "3", "--seed", "1", "--reuse"]) == 0
    assert (out / "manifest.csv").stat().st_mtime_ns == mtime


def test_the_new_sources_name_their_files_and_packages_and_setup_installs_them():
    from training.build_corpus import FLUIDSYNTH_SOURCES, SOURCE_NEEDS

    assert SOURCE_NEEDS["generaluser"] == ((str(GENERALUSER), "minuet-data"),)
    assert {p for p, _ in SOURCE_NEEDS["avldrums"]} == {str(p) for p in AVLDRUMS_KITS.values()}
    assert {"generaluser", "avldrums"} <= set(FLUIDSYNTH_SOURCES)
    setup = (Path(__file__).parents[1] / "scripts" / "setup_corpus.sh").read_text()
    assert all(pkg in setup for pkg in ("minuet-data", "avldrums.lv2-soundfont", "guitarix-common"))


@needs_band
def test_contrast_clips_have_another_instrument_instead_of_or_along_the_guitars_and_say_so():
    from training.corpus.rock import OTHER_LABELS

    instead = along = 0
    for i in range(12):
        clip, _ = render_rock_clip(seed=1, index=i, other=0.4, along=0.5)
        others = set(clip.labels) & set(OTHER_LABELS)
        roles = {p["role"] for p in clip.parts}
        assert others <= roles and len(others) <= 1
        if "electric_guitar" not in clip.labels:
            instead += 1
            assert others and not any(r.startswith("guitar") for r in roles)
        elif others:
            along += 1
    assert instead and along
    plain, _ = render_rock_clip(seed=0, index=0)  # the defaults draw exactly what they drew before
    again, _ = render_rock_clip(seed=0, index=0, other=0.0, along=0.0)
    assert np.array_equal(plain.audio, again.audio)
