"""tagger untag: what tagger wrote goes, the user's own instruments tag comes back, nothing else moves."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import mutagen
import numpy as np
import pytest
from mutagen.apev2 import APEv2
from mutagen.asf import ASFUnicodeAttribute
from mutagen.id3 import TXXX
from mutagen.mp4 import AtomDataType, MP4FreeForm

import tagfixtures as fx
from audio_helpers import tone, write_audio
from tagger.decode import decode
from tagger.tags import read_instruments, write_instruments
from tagger.untag import untag, untag_file
from test_tags import TAGS_A, TAGS_B, by_id, make, other_tags, raw_fields  # noqa: F401 (make: a fixture)

USERS = ["kazoo", "banjo"]  # the user's own instruments tag
EMPTY = {"INSTRUMENTS": [], "INSTRUMENTS_CONFIDENCE": [], "INSTRUMENTS_SOURCE": []}
# Every container, and an MP3 with an ID3v2.3 tag besides the v2.4 one.
CASES = [pytest.param(c, 4, id=c.name) for c in fx.CONTAINERS] + [pytest.param(fx.CONTAINERS[0], 3, id="mp3-v2.3")]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def add_users_tag(path: Path, kind: str, values: list[str]) -> None:
    """The user's own instruments tag, written with mutagen as another tagger would."""
    if kind == "ape":
        ape = APEv2(path)
        ape["Instruments"] = values
        ape.save(path)
        return
    if kind == "id3":
        f = type(mutagen.File(path))(path, translate=False, load_v1=False)
        v23 = f.tags.version < (2, 4, 0)
        f.tags.add(TXXX(encoding=1 if v23 else 3, desc="INSTRUMENTS", text=["; ".join(values)] if v23 else values))
        f.save(v2_version=3 if v23 else 4, v23_sep="; ")
        return
    f = mutagen.File(path)
    if kind == "vorbis":
        f.tags["INSTRUMENTS"] = values
    elif kind == "mp4":
        f.tags["----:com.apple.iTunes:INSTRUMENTS"] = [MP4FreeForm(v.encode(), dataformat=AtomDataType.UTF8) for v in values]
    else:  # asf
        f.tags["INSTRUMENTS"] = [ASFUnicodeAttribute(v) for v in values]
    f.save()


@pytest.mark.parametrize(("container", "id3_version"), CASES)
def test_untag_puts_the_users_tag_back_and_nothing_else_moves(make, container: fx.Container, id3_version: int) -> None:
    path = make(container, id3_version=id3_version)
    add_users_tag(path, container.kind, USERS)
    before_tags, before_audio = other_tags(path, container.kind), fx.decode(path)
    users_raw = raw_fields(path, container.kind)  # as stored (ID3v2.3: one joined value)
    assert read_instruments(path).instruments == USERS and read_instruments(path).is_users

    write_instruments(path, TAGS_A)  # as scan --write-tags --force does
    write_instruments(path, TAGS_B)  # a later run over our own tag carries the user's value over
    assert read_instruments(path).previous == USERS

    written = digest(path)
    dry = untag_file(path, dry_run=True)
    assert (dry.status, dry.restored, dry.removed) == ("restored", USERS, TAGS_B.instruments)
    assert digest(path) == written  # a dry run changes nothing

    done = untag_file(path)
    assert (done.status, done.restored, done.removed) == ("restored", USERS, TAGS_B.instruments)
    assert raw_fields(path, container.kind) == users_raw
    assert other_tags(path, container.kind) == before_tags  # INSTRUMENTS_PREVIOUS gone, the rest as it was
    assert np.array_equal(fx.decode(path), before_audio)
    again = untag_file(path)  # now the tag is the user's: left alone
    assert again.status == "untouched" and read_instruments(path).is_users


@pytest.mark.parametrize("container", by_id(fx.CONTAINERS))
def test_untag_removes_our_fields_where_there_was_no_users_tag(make, container: fx.Container) -> None:
    path = make(container)
    before_tags = other_tags(path, container.kind)
    write_instruments(path, TAGS_A)
    assert read_instruments(path).previous == []
    done = untag_file(path)
    assert (done.status, done.restored, done.removed) == ("removed", [], TAGS_A.instruments)
    assert raw_fields(path, container.kind) == EMPTY
    assert other_tags(path, container.kind) == before_tags


@pytest.mark.parametrize("container", by_id([c for c in fx.CONTAINERS if c.name in ("mp3", "flac", "wav", "m4a")]))
def test_a_file_holding_only_our_tags_is_left_without_them(make, container: fx.Container) -> None:
    path = make(container, seed=False)
    before_audio = fx.decode(path)
    write_instruments(path, TAGS_A)
    assert untag_file(path).status == "removed"
    assert read_instruments(path).instruments == [] and np.array_equal(fx.decode(path), before_audio)


def test_files_tagger_never_touched_are_left_alone(make) -> None:
    plain = make(fx.CONTAINERS[3])  # flac, a title and a cover, no instruments
    users = plain.with_name("users.flac")
    users.write_bytes(plain.read_bytes())
    add_users_tag(users, "vorbis", USERS)
    before = {p: digest(p) for p in (plain, users)}
    results = list(untag([plain.parent]))
    assert sorted((r.path.name, r.status) for r in results) == [(plain.name, "untouched"), ("users.flac", "untouched")]
    assert before == {p: digest(p) for p in (plain, users)}


def test_untag_cli_after_scan_write_tags_force(tiny_model, tmp_path) -> None:
    lib = tmp_path / "lib"
    mine = write_audio(lib / "a_mine.flac", tone(3.0))
    add_users_tag(mine, "vorbis", USERS)
    plain = write_audio(lib / "b_plain.wav", tone(3.0, 330))
    never = write_audio(lib / "c_never.flac", tone(3.0, 550))
    (lib / "d_broken.mp3").write_bytes(b"not an mp3 at all" * 10)
    originals = {p: digest(p) for p in (mine, plain, never)}
    audio = decode(plain, 22050)

    def tagger(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tagger", *args], capture_output=True, text=True, timeout=300)

    scan = tagger("scan", str(mine), str(plain), "--model", str(tiny_model), "--csv", str(tmp_path / "r.csv"),
                  "--write-tags", "--force", "--threshold", "0", "--top-k", "2", "--jobs", "1")
    assert scan.returncode == 0, scan.stderr
    written = {p: digest(p) for p in (mine, plain)}
    assert all(written[p] != originals[p] for p in written)

    dry = tagger("untag", str(lib))
    assert dry.returncode == 1, dry.stderr  # the broken file: as scan, 1 when some files failed
    assert {p: digest(p) for p in (mine, plain)} == written  # dry run by default: nothing written
    lines = dry.stderr.splitlines()
    assert any(line.startswith("would restore: ") and "a_mine.flac: kazoo; banjo" in line for line in lines)
    assert any(line.startswith("would remove: ") and "b_plain.wav" in line for line in lines)
    assert any(line.startswith("untouched: ") and "c_never.flac" in line for line in lines)
    assert any(line.startswith("error: ") and "d_broken.mp3" in line for line in lines)

    done = tagger("untag", str(mine), str(plain), str(never), "--write-tags")
    assert done.returncode == 0, done.stderr
    assert "restored: " in done.stderr and "1 restored, 1 removed, 1 untouched" in done.stderr
    assert mutagen.File(mine)["INSTRUMENTS"] == USERS and read_instruments(mine).source is None
    assert read_instruments(plain).instruments == [] and read_instruments(plain).source is None
    assert digest(never) == originals[never]
    assert np.array_equal(decode(plain, 22050), audio)

