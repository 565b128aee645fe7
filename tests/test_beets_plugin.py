"""The beets plugin `instruments`, driven by beets' own commands on a real library made here.

Each test runs `beet` in a subprocess with its own BEETSDIR. Imports that must apply
metadata (beets writes tags at import only then) use `stubsource`, a metadata source
plugin written by the test that offers each track its own metadata: no network.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import mutagen
import pytest

import tagfixtures as fx
from audio_helpers import noise, tone, write_audio
from tagger.tags import InstrumentTags, read_instruments, write_instruments

pytest.importorskip("beets")
REPO = Path(__file__).resolve().parent.parent
BY_NAME = {c.name: c for c in fx.CONTAINERS}
STUB_SOURCE = '''
from beets.autotag.hooks import TrackInfo
from beets.metadata_plugins import MetadataSourcePlugin


class StubSourcePlugin(MetadataSourcePlugin):
    """Offers every track its own title, artist and length: a perfect match."""

    def album_for_id(self, album_id):
        return None

    def track_for_id(self, track_id):
        return None

    def candidates(self, items, artist, album, va_likely):
        return []

    def item_candidates(self, item, artist, title):
        return [TrackInfo(title=item.title, artist=item.artist, length=item.length,
                          track_id="stub-" + item.title, data_source="StubSource")]
'''


def beet(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BEETSDIR": str(home), "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    code = "import sys\nfrom beets.ui import main\nmain(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, env=env)


def _beets_home(tmp_path: Path, model: Path, write: bool, auto: bool, copy: bool = False) -> Path:
    home = tmp_path / "beets"
    home.mkdir()
    (home / "stubsource.py").write_text(STUB_SOURCE)
    (home / "config.yaml").write_text(f"""
directory: {tmp_path / 'library'}
library: {home / 'library.db'}
pluginpath: [{home}]
plugins: instruments stubsource info
import:
  copy: {'yes' if copy else 'no'}
  move: no
  write: {'yes' if write else 'no'}
  autotag: {'yes' if copy else 'no'}
  quiet_fallback: skip
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


def _tagged_sources(tmp_path: Path) -> Path:
    """Tiny real files of three tag systems, with a title, an artist and a cover each."""
    music = tmp_path / "music"
    music.mkdir()
    for name in ("flac", "mp3", "m4a"):
        container = BY_NAME[name]
        if fx.encoder_missing(container.codec):
            pytest.skip(fx.encoder_missing(container.codec))
        path = fx.make_audio(music / f"{name}{container.suffix}", container, seconds=4.0)
        fx.seed_tags(path, container.kind)
        f = mutagen.File(path)
        if container.kind == "id3":
            from mutagen.id3 import TIT2
            f.tags.add(TIT2(encoding=3, text=[f"song {name}"]))
        elif container.kind == "vorbis":
            f["TITLE"] = [f"song {name}"]
        else:
            f["\xa9nam"] = [f"song {name}"]
        f.save()
    return music


def _field(home: Path, query: str, fmt: str, *options: str) -> dict[str, str]:
    """`beet [options] ls -f fmt query`: file name -> the formatted line."""
    proc = beet(home, *options, "ls", "-f", f"$path\t{fmt}", *([query] if query else []))
    assert proc.returncode == 0, proc.stderr
    return {Path(line.split("\t")[0]).name: line.split("\t", 1)[1] for line in proc.stdout.splitlines()}


def _md5s(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _write_on(home: Path) -> Path:
    extra = home / "write.yaml"
    extra.write_text("import:\n  write: yes\n")
    return extra


def test_import_copy_write_leaves_the_sources_and_tags_the_copies(tiny_model, tmp_path):
    pytest.importorskip("beets.metadata_plugins")  # stubsource's base class (beets 2.4 and later)
    music = _tagged_sources(tmp_path)
    before = _md5s(music)
    home = _beets_home(tmp_path, tiny_model, write=True, auto=True, copy=True)
    proc = beet(home, "import", "-q", "-s", str(music))
    assert proc.returncode == 0, proc.stderr
    assert _md5s(music) == before  # the sources are not touched, not even their tags
    found = _field(home, "", "$instruments|$instruments_confidence|$instruments_source|$title")
    assert len(found) == 3
    copies = {p.name: p for p in (tmp_path / "library").rglob("*") if p.is_file()}
    assert sorted(copies) == sorted(found)  # every item is a copy in the library folder
    for name, line in found.items():
        labels, confidences, source, title = line.split("|")
        assert len(labels.split("; ")) == 2 and source.startswith("tagger ") and "tiny-" in source
        assert [c.split(":")[0] for c in confidences.split("; ")] == labels.split("; ")
        on_disk = read_instruments(copies[name])  # written by beets, read by tagger
        assert on_disk.instruments == labels.split("; ") and on_disk.source == source
        assert title.startswith("song ")


def test_a_tagged_file_imports_with_its_instruments_and_beets_edits_them(tiny_model, tmp_path):
    music = _tagged_sources(tmp_path)
    ours = InstrumentTags(["saxophone", "piano"], {"saxophone": 0.912, "piano": 0.5}, "tagger 9.9 resnet-cafe")
    for path in music.iterdir():
        write_instruments(path, ours)  # as `tagger scan --write-tags` leaves them
    home = _beets_home(tmp_path, tiny_model, write=False, auto=True)
    proc = beet(home, "-v", "import", "-A", "-q", str(music))
    assert proc.returncode == 0, proc.stderr
    assert "already has instruments" in proc.stderr  # auto: yes skips what tagger did
    found = _field(home, "", "$instruments|$instruments_confidence|$instruments_source")
    assert set(found.values()) == {"saxophone; piano|saxophone:0.912; piano:0.500|tagger 9.9 resnet-cafe"}
    assert set(_field(home, "instruments:saxophone", "$title")) == {"flac.flac", "mp3.mp3", "m4a.m4a"}
    assert _field(home, "instruments:banjo", "$title") == {}

    info = beet(home, "info", str(music / "mp3.mp3"))  # beets reads the file itself
    assert info.returncode == 0, info.stderr
    assert "instruments: saxophone; piano" in info.stdout
    assert "instruments_source: tagger 9.9 resnet-cafe" in info.stdout

    # Edited by hand: beets writes it, and it becomes the user's own tag (no source)
    assert beet(home, "modify", "-y", "title:song flac", "instruments=banjo; drums").returncode == 0
    assert beet(home, "modify", "-y", "title:song mp3", "instruments=kazoo").returncode == 0
    proc = beet(home, "write")
    assert proc.returncode == 0, proc.stderr
    assert mutagen.File(music / "flac.flac")["INSTRUMENTS"] == ["banjo", "drums"]
    assert mutagen.File(music / "mp3.mp3").tags.getall("TXXX:INSTRUMENTS")[0].text == ["kazoo"]
    for name, labels in (("flac.flac", ["banjo", "drums"]), ("mp3.mp3", ["kazoo"])):
        edited = read_instruments(music / name)
        assert edited.instruments == labels and edited.is_users  # tagger scan keeps it now
    assert read_instruments(music / "m4a.m4a").source == "tagger 9.9 resnet-cafe"  # untouched
    assert set(_field(home, "instruments:banjo", "$title")) == {"flac.flac"}
    assert _field(home, "title:song flac", "$instruments_source") == {"flac.flac": ""}

    # tagged again by tagger outside beets: `beet update` reads the new values
    write_instruments(music / "m4a.m4a", InstrumentTags(["violin"], {"violin": 0.7}, "tagger 9.9 resnet-beef"))
    # beets compares whole seconds of mtime: a write in the second of beets' own last write
    # would look unchanged to `beet update`, so date this one as a later edit
    later = (music / "m4a.m4a").stat().st_mtime + 5
    os.utime(music / "m4a.m4a", (later, later))
    (tmp_path / "library").mkdir()  # else `beet update` asks whether the library is gone
    assert beet(home, "update", "-M").returncode == 0
    assert _field(home, "title:song m4a", "$instruments|$instruments_source") == {"m4a.m4a": "violin|tagger 9.9 resnet-beef"}


def test_beet_instruments_stores_skips_forces_and_goes_on_after_a_failure(tiny_model, tmp_path):
    music = _music(tmp_path)
    home = _beets_home(tmp_path, tiny_model, write=False, auto=False)
    assert beet(home, "import", "-A", "-q", str(music)).returncode == 0
    assert len(_field(home, "", "$title")) == 3 and _field(home, "instruments::.", "$title") == {}  # auto: no
    before = _md5s(music)
    proc = beet(home, "instruments")
    assert proc.returncode == 0, proc.stderr
    assert _md5s(music) == before  # write: no
    found = _field(home, "", "$instruments|$instruments_confidence|$instruments_source")
    for line in found.values():
        labels, confidences, source = line.split("|")
        assert len(labels.split("; ")) == 2 and source.startswith("tagger ") and "tiny-" in source
        assert [c.split(":")[0] for c in confidences.split("; ")] == labels.split("; ")
        assert all(len(c.split(":")[1].split(".")[1]) == 3 for c in confidences.split("; "))
    label = found["a.flac"].split("|")[0].split("; ")[0]
    assert "a.flac" in _field(home, f"instruments:{label}", "$title")
    fields = beet(home, "info", "-l", "path:" + str(music / "a.flac"))
    assert "instruments_confidence:" in fields.stdout and "instrument_" not in fields.stdout.replace("instruments", "")

    # done items are skipped unless -f; a file that fails is logged and the rest go on
    (music / "c.flac").write_bytes(b"broken now" * 100)
    proc = beet(home, "-v", "instruments")
    assert proc.returncode == 0 and "already has instruments" in proc.stderr and "not an audio file" not in proc.stderr
    proc = beet(home, "-v", "-c", str(_write_on(home)), "instruments", "-f")
    assert proc.returncode == 0, proc.stderr
    assert "c.flac" in proc.stderr and "not an audio file" in proc.stderr
    found = _field(home, "", "$instruments|$instruments_source")
    for name in ("a.flac", "b.wav"):  # written by beets, read back by tagger
        on_disk = read_instruments(music / name)
        assert "; ".join(on_disk.instruments) + "|" + on_disk.source == found[name]

    # score_fields: yes also stores every label's score as a number, for range queries
    scores = home / "scores.yaml"
    scores.write_text("instruments:\n  score_fields: yes\n")
    assert beet(home, "-c", str(scores), "instruments", "-f").returncode == 0
    assert set(_field(home, "instrument_piano:0.0..1.0", "$title", "-c", str(scores))) == {"a.flac", "b.wav"}
    assert len(_field(home, "", "$instrument_piano", "-c", str(scores))["a.flac"].split(".")[1]) == 3


def test_a_users_own_tag_is_kept_unless_forced(tiny_model, tmp_path):
    music = _music(tmp_path)
    f = mutagen.File(music / "a.flac")
    f["INSTRUMENTS"] = ["kazoo"]
    f.save()
    home = _beets_home(tmp_path, tiny_model, write=True, auto=False)
    assert beet(home, "import", "-A", "-q", str(music)).returncode == 0
    proc = beet(home, "-v", "instruments")
    assert proc.returncode == 0 and "has its own instruments" in proc.stderr
    assert _field(home, "", "$instruments")["a.flac"] == "kazoo"
    assert mutagen.File(music / "a.flac")["INSTRUMENTS"] == ["kazoo"]
    assert beet(home, "instruments", "-f").returncode == 0
    assert _field(home, "", "$instruments")["a.flac"] != "kazoo"
    assert read_instruments(music / "a.flac").source.startswith("tagger ")


HOSTILE = ['<!--<script>', '</script><script>alert(1)</script>', '<img src=x onerror=alert(1)>',
           '=HYPERLINK("http:x","x")', "+cmd|' C calc'!A0", '@SUM(1+1)', '__proto__', 'ctl\x01\x1b[31m\x7f']


def test_hostile_names_and_tag_values(tiny_model, tmp_path):
    music = tmp_path / "music"
    for i, text in enumerate(HOSTILE):
        path = write_audio(music / f"{text}.flac", tone(3.0, 220 + 50 * i))
        f = mutagen.File(path)
        f["TITLE"], f["ARTIST"] = [text], [text]
        if i % 2:
            f["INSTRUMENTS"] = [text]  # an existing tag value, the user's
        f.save()
    odd = music / os.fsdecode(b"bad-\xff\xfe-utf8")  # not valid UTF-8
    odd.mkdir()
    os.rename(write_audio(tmp_path / "x.flac", tone(3.0, 900)), odd / "x.flac")  # soundfile wants UTF-8 names
    home = _beets_home(tmp_path, tiny_model, write=True, auto=True)
    proc = beet(home, "import", "-A", "-q", str(music))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    imported = _field(home, "", "$instruments|$instruments_source")
    for i, text in enumerate(HOSTILE):  # a user's value is read and kept as it is; the others analysed
        line = imported[Path(f"{text}.flac").name]  # a "/" in it made folders: hostile folder names
        assert line == f"{text}|" if i % 2 else line.split("|")[1].startswith("tagger "), repr(line)
    proc = beet(home, "-v", "instruments", "-f")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "\\x1b[31m" in proc.stderr and "\x1b" not in proc.stderr  # logged names are escaped
    found = _field(home, "", "$instruments|$instruments_source")
    assert len(found) == len(HOSTILE) + 1
    assert all(line.split("|")[1].startswith("tagger ") for line in found.values())
    for i, text in enumerate(HOSTILE):
        assert len(read_instruments(music / f"{text}.flac").instruments) == 2
    proc = beet(home, "ls", "instruments::.")
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == len(HOSTILE) + 1
