"""The beets plugin `instruments` against a real beets library made here (beets is the `beets` extra)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mutagen
import pytest

from audio_helpers import noise, tone, write_audio

pytest.importorskip("beets")
REPO = Path(__file__).resolve().parent.parent


def beet(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BEETSDIR": str(home), "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    code = "import sys\nfrom beets.ui import main\nmain(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, env=env)


def _beets_home(tmp_path: Path, model: Path, write: bool, auto: bool) -> Path:
    home = tmp_path / "beets"
    home.mkdir()
    (home / "config.yaml").write_text(f"""
directory: {tmp_path / 'music'}
library: {home / 'library.db'}
plugins: instruments
import:
  copy: no
  move: no
  write: {'yes' if write else 'no'}
  autotag: no
instruments:
  auto: {'yes' if auto else 'no'}
  model: {model}
  threshold: 0.0
  top_k: 2
""")
    return home


def _music(tmp_path: Path) -> Path:
    music = tmp_path / "music"
    write_audio(music / "a.flac", tone(5.0, 330))
    write_audio(music / "b.wav", noise(5.0))
    write_audio(music / "c.flac", tone(4.0, 660))
    return music


def _field(home: Path, query: str, fmt: str) -> dict[str, str]:
    proc = beet(home, "ls", "-f", f"$path|{fmt}", *([query] if query else []))
    assert proc.returncode == 0, proc.stderr
    return {Path(line.split("|")[0]).name: line.split("|", 1)[1] for line in proc.stdout.splitlines()}


def test_beet_instruments_stores_queries_and_writes_only_when_asked(tiny_model, tmp_path):
    music = _music(tmp_path)
    home = _beets_home(tmp_path, tiny_model, write=False, auto=False)
    assert beet(home, "import", "-A", "-q", str(music)).returncode == 0
    assert len(_field(home, "", "$title")) == 3 and _field(home, "instruments::.", "$title") == {}  # auto: no
    proc = beet(home, "instruments")
    assert proc.returncode == 0, proc.stderr
    found = _field(home, "", "$instruments|$instruments_source|$instrument_piano")
    for name, line in found.items():
        labels, source, piano = line.split("|")
        assert len(labels.split(";")) == 2 and source.startswith("tagger ") and "tiny-" in source
        assert 0.0 <= float(piano) <= 1.0 and len(piano.split(".")[1]) == 3
    assert "INSTRUMENTS" not in (mutagen.File(music / "a.flac").tags or {})  # write: no
    label = found["a.flac"].split("|")[0].split(";")[0]
    assert "a.flac" in _field(home, f"instruments:{label}", "$title")  # beet ls instruments:<label>
    assert set(_field(home, f"instrument_{label}:0.0..", "$title")) == {"a.flac", "b.wav", "c.flac"}  # scores are numbers

    # done items are skipped unless -f; a file that fails is logged and the rest go on
    (music / "c.flac").write_bytes(b"broken now" * 100)
    proc = beet(home, "-v", "instruments")
    assert proc.returncode == 0 and "already have instruments" in proc.stderr and "c.flac" not in proc.stderr
    proc = beet(home, "-v", "-c", str(_write_on(home)), "instruments", "-f")
    assert proc.returncode == 0, proc.stderr
    assert "c.flac" in proc.stderr and "not an audio file" in proc.stderr
    tags = mutagen.File(music / "a.flac")
    assert tags["INSTRUMENTS"] == found["a.flac"].split("|")[0].split(";")  # written by tagger's writer
    assert tags["INSTRUMENTS_SOURCE"][0] == found["a.flac"].split("|")[1]
    assert mutagen.File(music / "b.wav").tags.getall("TXXX:INSTRUMENTS")


def _write_on(home: Path) -> Path:
    extra = home / "write.yaml"
    extra.write_text("import:\n  write: yes\n")
    return extra


def test_auto_runs_on_import(tiny_model, tmp_path):
    music = _music(tmp_path)
    home = _beets_home(tmp_path, tiny_model, write=True, auto=True)
    proc = beet(home, "import", "-A", "-q", str(music))
    assert proc.returncode == 0, proc.stderr
    found = _field(home, "", "$instruments")
    assert all(len(v.split(";")) == 2 for v in found.values()) and len(found) == 3
    assert mutagen.File(music / "a.flac")["INSTRUMENTS"] == found["a.flac"].split(";")
