"""The corpus builder renders valid, honestly labelled, reproducible clips (real soundfont)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tagger.labels import BUNDLED_LABELS

TIMGM = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
pytestmark = pytest.mark.skipif(not TIMGM.exists(), reason=f"needs the TimGM6mb soundfont at {TIMGM} "
                                "(Debian package timgm6mb-soundfont)")


def _build(out: Path, jobs: int) -> list[dict]:
    from training.build_corpus import main

    rc = main(["--out", str(out), "--sources", "timgm6mb", "--labels", "piano,drums",
               "--clips-per-label", "2", "--mixtures", "2", "--kinds", "single,predominant,mix",
               "--seed", "3", "--score-pieces", "2", "--jobs", str(jobs)])
    assert rc == 0
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> tuple[Path, list[dict], Path, list[dict]]:
    a = tmp_path_factory.mktemp("corpus_a")
    b = tmp_path_factory.mktemp("corpus_b")
    return a, _build(a, jobs=1), b, _build(b, jobs=2)


def test_manifest_rows_and_labels(corpora):
    out, rows, _, _ = corpora
    with open(out / "manifest.csv", newline="") as fh:
        assert fh.readline().strip() == "path,labels,source,kind,programs"
    kinds = [r["kind"] for r in rows]
    assert kinds.count("single") == 4 and kinds.count("predominant") == 4 and kinds.count("mix") == 2
    for r in rows:
        labels = r["labels"].split(";")
        assert set(labels) <= set(BUNDLED_LABELS)
        assert r["source"] == "timgm6mb"
        if r["kind"] == "mix":
            assert 2 <= len(labels) <= 4 and len(set(labels)) == len(labels)
            # every label of a mix is one of its stems, and nothing else is
            assert sorted(p.split("=")[0] for p in r["programs"].split(";")) == sorted(labels)
        else:
            assert len(labels) == 1 and labels[0] in ("piano", "drums")
            assert r["programs"].split(";")[0].startswith(labels[0] + "=")
        if r["kind"] == "single":
            assert len(r["programs"].split(";")) == 1


def test_audio_is_3s_mono_22050_and_not_silent(corpora):
    out, rows, _, _ = corpora
    for r in rows:
        audio, sr = sf.read(out / r["path"], dtype="float32", always_2d=True)
        assert sr == 22050 and audio.shape == (66150, 1)
        assert np.sqrt(np.mean(audio ** 2)) > 1e-3
        assert np.abs(audio).max() <= 1.0


def test_same_seed_same_corpus_whatever_the_worker_count(corpora):
    a, rows_a, b, rows_b = corpora
    assert rows_a == rows_b
    for r in rows_a:
        xa, _ = sf.read(a / r["path"], dtype="int16")
        xb, _ = sf.read(b / r["path"], dtype="int16")
        np.testing.assert_array_equal(xa, xb)


def test_setup_corpus_names_the_missing_packages_in_one_line_when_it_cannot_install(tmp_path):
    """make weights on a machine without the Debian packages, not as root: one line naming
    them and exit 1, never a traceback from deep inside the build."""
    import os
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {"dpkg-query": "case \"$*\" in *festival*|*timidity*) exit 1;; esac\necho -n 'install ok installed'",
                       "id": "echo 1000"}.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    script = Path(__file__).resolve().parents[1] / "scripts" / "setup_corpus.sh"
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "install these Debian packages" in lines[0]
    assert "timidity" in lines[0] and "festival" in lines[0] and "freepats" not in lines[0]


def test_reuse_keeps_a_finished_build_and_rebuilds_anything_else(tmp_path, capsys):
    """make weights resumes with --reuse: a corpus finished with the same arguments is kept
    (whatever --jobs); other arguments, or a build killed before its stamp, build again."""
    import json

    from training.build_corpus import main

    out = tmp_path / "c"
    base = ["--out", str(out), "--sources", "timgm6mb", "--labels", "piano", "--clips-per-label", "1",
            "--mixtures", "0", "--kinds", "single", "--score-pieces", "0", "--reuse"]

    def build(*extra: str) -> tuple[str, dict[str, int]]:
        assert main([*base, *extra]) == 0
        clips = {p.name: p.stat().st_mtime_ns for p in (out / "clips").iterdir()}
        return capsys.readouterr().out, clips

    said, first = build("--seed", "1", "--jobs", "1")
    assert "clips written" in said and json.loads((out / "build.json").read_text())["seed"] == 1
    said, again = build("--seed", "1", "--jobs", "2")
    assert "already built" in said and again == first  # kept: not one clip rewritten
    said, other = build("--seed", "2", "--jobs", "1")
    assert "clips written" in said and json.loads((out / "build.json").read_text())["seed"] == 2
    (out / "build.json").unlink()  # as if killed before the end: never taken for finished
    said, _ = build("--seed", "2", "--jobs", "1")
    assert "clips written" in said and (out / "build.json").exists()
