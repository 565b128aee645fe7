"""Tag writing: real files of every container, written, reopened and checked."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import mutagen
import numpy as np
import pytest
from mutagen.apev2 import APEv2
from mutagen.asf import ASFUnicodeAttribute
from mutagen.id3 import ID3, TSOP, TXXX, TYER
from mutagen.mp4 import AtomDataType

import tagfixtures as fx
from tagger import tags as tagmod
from tagger.errors import TagWriteError
from tagger.tags import (
    TEMP_MARKER,
    ExistingTags,
    InstrumentTags,
    cleanup_leftovers,
    read_instruments,
    supports_tags,
    write_instruments,
)

REPO = Path(__file__).resolve().parents[1]
TAGS_A = InstrumentTags(
    instruments=["acoustic_guitar", "piano"],
    confidences={"acoustic_guitar": 0.91234, "piano": 0.5},
    source="tagger 0.1.0 resnet-1a2b3c4d",
)
TAGS_B = InstrumentTags(
    instruments=["drums"], confidences={"drums": 0.7777}, source="tagger 0.1.1 resnet-deadbeef"
)
RAW_A = {
    "INSTRUMENTS": ["acoustic_guitar", "piano"],
    "INSTRUMENTS_CONFIDENCE": ["acoustic_guitar:0.912", "piano:0.500"],
    "INSTRUMENTS_SOURCE": ["tagger 0.1.0 resnet-1a2b3c4d"],
}
RAW_B = {
    "INSTRUMENTS": ["drums"],
    "INSTRUMENTS_CONFIDENCE": ["drums:0.778"],
    "INSTRUMENTS_SOURCE": ["tagger 0.1.1 resnet-deadbeef"],
}
OUR_NAMES = set(RAW_A)
MULTI_NAMES = ("INSTRUMENTS", "INSTRUMENTS_CONFIDENCE")


def stored(raw: dict[str, list[str]], kind: str) -> dict[str, list[str]]:
    """`raw` as tag system `kind` stores it: Vorbis repeats a key, the others join with "; "."""
    if kind == "vorbis":
        return raw
    return {k: (["; ".join(v)] if k in MULTI_NAMES and v else v) for k, v in raw.items()}

BY_NAME = {c.name: c for c in fx.CONTAINERS}
ID3_CONTAINERS = [c for c in fx.CONTAINERS if c.kind == "id3"]
# Where ffprobe shows our fields (it does not read the ID3 chunk of a WAV).
FFPROBE_CONTAINERS = [c for c in fx.CONTAINERS if c.name != "wav"]


def by_id(containers: list[fx.Container]) -> list:
    return [pytest.param(c, id=c.name) for c in containers]


@pytest.fixture
def make(tmp_path: Path):
    """Factory: a tiny real file of a container, seeded with a title, artist and cover."""

    def _make(container: fx.Container, seed: bool = True, id3_version: int = 4, **kw) -> Path:
        missing = fx.encoder_missing(container.codec)
        if missing:
            pytest.skip(missing)
        path = tmp_path / f"track_{container.name}{container.suffix}"
        fx.make_audio(path, container, **kw)
        if seed:
            fx.seed_tags(path, container.kind, id3_version=id3_version)
        return path

    return _make


# --- independent views of a file, not using tagger.tags --------------------------------


def _raw_id3(path: Path) -> ID3:
    """The ID3v2 tag as it is on disk: not translated, no ID3v1 merged in."""
    return type(mutagen.File(path))(path, translate=False, load_v1=False).tags


def raw_fields(path: Path, kind: str) -> dict[str, list[str]]:
    """Our three fields with their exact keys and storage types, read straight with mutagen."""
    f = mutagen.File(path)
    fields: dict[str, list[str]] = {}
    for name in OUR_NAMES:
        if kind == "id3":
            frames = _raw_id3(path).getall(f"TXXX:{name}")
            assert len(frames) <= 1, f"{name}: {len(frames)} frames"
            values = list(frames[0].text) if frames else []
        elif kind == "vorbis":
            values = [v for k, v in f.tags if k == name]  # exact case
            assert not [k for k, _ in f.tags if k.upper() == name and k != name]
        elif kind == "mp4":
            atoms = f.tags.get(f"----:com.apple.iTunes:{name}", [])
            assert all(a.dataformat == AtomDataType.UTF8 for a in atoms)
            values = [bytes(a).decode("utf-8") for a in atoms]
        elif kind == "ape":
            key = name.capitalize().replace("_c", "_C").replace("_s", "_S")
            assert [k for k in f.tags.keys() if k.upper() == name] in ([], [key])
            values = list(f.tags[key]) if key in f.tags else []
        else:  # asf
            attrs = f.tags.get(name, [])
            assert all(isinstance(a, ASFUnicodeAttribute) for a in attrs)
            values = [str(a) for a in attrs]
        fields[name] = values
    return fields


def _is_ours(key: str) -> bool:
    return str(key).upper().rsplit(":", 1)[-1] in OUR_NAMES


def other_tags(path: Path, kind: str) -> dict[str, str]:
    """Every tag item and picture that is not one of our fields, as comparable text."""
    f = mutagen.File(path)
    tags = _raw_id3(path) if kind == "id3" else f.tags
    pairs = tags.items() if tags is not None else []
    items = {str(k): repr(v) for k, v in pairs if not _is_ours(k)}
    if kind == "id3":
        items["<version>"] = repr(tags.version)
    for picture in getattr(f, "pictures", []):  # FLAC picture blocks
        items[f"<picture {picture.type}>"] = repr((picture.mime, picture.desc, picture.data))
    return items


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if TEMP_MARKER in p.name]


_COVER_KEYS = ("APIC", "covr", "Cover Art", "WM/Picture", "metadata_block_picture", "<picture")


def _cover_present(items: dict[str, str]) -> bool:
    return any(k.startswith(_COVER_KEYS) for k in items)


# --- every container: write, reopen, assert ---------------------------------------------


@pytest.mark.parametrize("container", by_id(fx.CONTAINERS))
def test_write_replaces_only_our_fields(make, container: fx.Container) -> None:
    path = make(container)
    before_tags = other_tags(path, container.kind)
    before_audio = fx.decode(path)
    assert fx.TITLE in str(before_tags) and _cover_present(before_tags)
    assert supports_tags(path)
    assert read_instruments(path) == ExistingTags(instruments=[], source=None)

    write_instruments(path, TAGS_A)
    assert raw_fields(path, container.kind) == stored(RAW_A, container.kind)
    assert other_tags(path, container.kind) == before_tags
    assert np.array_equal(fx.decode(path), before_audio)
    assert read_instruments(path) == ExistingTags(TAGS_A.instruments, TAGS_A.source)
    assert not read_instruments(path).is_users

    write_instruments(path, TAGS_B)  # replaced, not appended
    assert raw_fields(path, container.kind) == stored(RAW_B, container.kind)
    assert other_tags(path, container.kind) == before_tags
    assert np.array_equal(fx.decode(path), before_audio)
    assert read_instruments(path) == ExistingTags(TAGS_B.instruments, TAGS_B.source)
    assert temp_files(path.parent) == []


@pytest.mark.parametrize("container", by_id([BY_NAME["wav"], BY_NAME["flac"], BY_NAME["wavpack"]]))
def test_file_without_tags_gets_a_new_tag(make, container: fx.Container) -> None:
    path = make(container, seed=False)
    write_instruments(path, TAGS_A)
    assert raw_fields(path, container.kind) == stored(RAW_A, container.kind)
    if container.kind == "id3":
        assert _raw_id3(path).version == (2, 4, 0)


# --- second readers -----------------------------------------------------------------------


def _need(binary: str) -> None:
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed")


def _ffprobe_tags(path: Path) -> dict[str, str]:
    cmd = ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)]
    probe = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    found: dict[str, str] = {}
    for section in [probe["format"], *probe["streams"]]:
        found.update({k.upper(): v for k, v in section.get("tags", {}).items()})
    return found


@pytest.mark.parametrize("container", by_id(FFPROBE_CONTAINERS))
def test_ffprobe_shows_every_instrument(make, container: fx.Container) -> None:
    _need("ffprobe")
    path = make(container)
    write_instruments(path, TAGS_A)
    found = _ffprobe_tags(path)
    assert found["INSTRUMENTS_SOURCE"] == TAGS_A.source
    # ffmpeg joins repeated Vorbis comments with ";"; of a multi-valued ID3v2.4 frame,
    # MP4 atom, APEv2 or ASF item it shows only the first value, hence the joined value.
    sep = ";" if container.kind == "vorbis" else "; "
    assert found["INSTRUMENTS"] == sep.join(RAW_A["INSTRUMENTS"])
    assert found["INSTRUMENTS_CONFIDENCE"] == sep.join(RAW_A["INSTRUMENTS_CONFIDENCE"])


def test_metaflac_sees_repeated_fields(make) -> None:
    _need("metaflac")
    path = make(BY_NAME["flac"])
    write_instruments(path, TAGS_A)
    cmd = ["metaflac", "--export-tags-to=-", str(path)]
    lines = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
    assert [x for x in lines if x.startswith("INSTRUMENTS")] == [
        "INSTRUMENTS=acoustic_guitar",
        "INSTRUMENTS=piano",
        "INSTRUMENTS_CONFIDENCE=acoustic_guitar:0.912",
        "INSTRUMENTS_CONFIDENCE=piano:0.500",
        "INSTRUMENTS_SOURCE=tagger 0.1.0 resnet-1a2b3c4d",
    ]
    assert "TITLE=" + fx.TITLE in lines


# exiftool 12 reads neither WavPack files nor ASF attributes of its own naming.
EXIFTOOL_CONTAINERS = [c for c in fx.CONTAINERS if c.kind in ("id3", "vorbis", "mp4")]


def _exiftool_fields(path: Path) -> dict[str, list[str]]:
    """Our fields as exiftool prints them, every entry kept (its JSON keeps one per name)."""
    cmd = ["exiftool", "-a", "-s", "-G1", "-charset", "utf8", str(path)]
    lines = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
    names = {n.replace("_", "").upper(): n for n in OUR_NAMES}
    shown: dict[str, list[str]] = {}
    for line in lines:
        tag, _, value = line.split("]", 1)[1].partition(":")
        tag, value = tag.strip(), value.strip()
        if tag == "UserDefinedText":  # an ID3 TXXX frame: "(DESC) value"
            tag, _, value = value[1:].partition(") ")
        name = names.get(tag.replace("_", "").upper())
        if name:
            shown.setdefault(name, []).append(value)
    return shown


@pytest.mark.parametrize("container", by_id(EXIFTOOL_CONTAINERS))
def test_exiftool_shows_every_instrument(make, container: fx.Container) -> None:
    _need("exiftool")
    path = make(container)
    write_instruments(path, TAGS_A)
    # Vorbis: one entry per repeated comment; the others: the joined value, whole
    assert _exiftool_fields(path) == stored(RAW_A, container.kind)


@pytest.mark.parametrize("container", by_id(fx.CONTAINERS))
def test_beets_mediafile_reads_every_instrument(make, container: fx.Container) -> None:
    """beets reads a joined value as a list: its multi-value fields split at "; "."""
    pytest.importorskip("beets")
    from beets.dbcore.types import MULTI_VALUE_DSV
    from mediafile import MediaFile

    from beetsplug.instruments import media_fields

    class WithOurFields(MediaFile):  # what the plugin declares on beets' MediaFile
        pass

    for name, field in media_fields().items():
        WithOurFields.add_field(name, field)
    path = make(container)
    write_instruments(path, TAGS_A)
    f = WithOurFields(str(path))
    assert MULTI_VALUE_DSV.normalize(f.instruments) == TAGS_A.instruments
    assert MULTI_VALUE_DSV.normalize(f.instruments_confidence) == RAW_A["INSTRUMENTS_CONFIDENCE"]
    assert f.instruments_source == TAGS_A.source


def _write_legacy(path: Path, kind: str, raw: dict[str, list[str]]) -> None:
    """Our fields as earlier versions wrote them: one value per label in every tag system."""
    f = mutagen.File(path)
    for name, values in raw.items():
        if kind == "id3":
            f.tags.add(TXXX(encoding=3, desc=name, text=values))
        elif kind == "vorbis":
            f.tags[name] = values
        elif kind == "mp4":
            f.tags[f"----:com.apple.iTunes:{name}"] = [v.encode() for v in values]
        elif kind == "ape":
            f.tags[name.capitalize().replace("_c", "_C").replace("_s", "_S")] = values
        else:
            f.tags[name] = [ASFUnicodeAttribute(v) for v in values]
    f.save()


@pytest.mark.parametrize("container", by_id(fx.CONTAINERS))
def test_reads_what_earlier_versions_wrote(make, container: fx.Container) -> None:
    path = make(container)
    _write_legacy(path, container.kind, RAW_A)
    assert read_instruments(path) == ExistingTags(TAGS_A.instruments, TAGS_A.source)
    write_instruments(path, TAGS_B)  # rewritten in today's form
    assert raw_fields(path, container.kind) == stored(RAW_B, container.kind)


def test_a_joined_users_tag_reads_as_its_values(make) -> None:
    path = make(BY_NAME["flac"])
    f = mutagen.File(path)
    f["INSTRUMENTS"] = ["Kazoo; Banjo"]  # another tool's joined value, in a Vorbis comment
    f.save()
    assert read_instruments(path) == ExistingTags(["Kazoo", "Banjo"], None)


# --- ID3 versions and ID3v1 ------------------------------------------------------------------


@pytest.mark.parametrize("container", by_id(ID3_CONTAINERS))
def test_id3v23_stays_v23(make, container: fx.Container) -> None:
    path = make(container, id3_version=3)
    # Frames a careless v2.3 save would change: TYER (mutagen turns it into TDRC when it
    # translates) and TSOP (v2.4 only, but common in v2.3 tags; mutagen drops it).
    id3 = _raw_id3(path)
    id3.add(TYER(encoding=1, text=["2001"]))
    id3.add(TSOP(encoding=1, text=["Testers, The"]))
    id3.save(path, v2_version=3)
    before_tags = other_tags(path, "id3")
    before_audio = fx.decode(path)

    write_instruments(path, TAGS_A)
    id3 = _raw_id3(path)
    assert id3.version == (2, 3, 0)
    frame = id3.getall("TXXX:INSTRUMENTS")[0]
    assert frame.text == ["acoustic_guitar; piano"]
    assert frame.encoding != 3  # UTF-8 does not exist in v2.3
    confidence = id3.getall("TXXX:INSTRUMENTS_CONFIDENCE")[0]
    assert confidence.text == ["acoustic_guitar:0.912; piano:0.500"]
    assert other_tags(path, "id3") == before_tags
    assert np.array_equal(fx.decode(path), before_audio)
    assert read_instruments(path) == ExistingTags(TAGS_A.instruments, TAGS_A.source)

    write_instruments(path, TAGS_B)
    assert _raw_id3(path).version == (2, 3, 0)
    assert read_instruments(path) == ExistingTags(TAGS_B.instruments, TAGS_B.source)


@pytest.mark.parametrize("container", by_id(ID3_CONTAINERS))
def test_id3v24_stays_v24(make, container: fx.Container) -> None:
    path = make(container, id3_version=4)
    write_instruments(path, TAGS_A)
    id3 = _raw_id3(path)
    assert id3.version == (2, 4, 0)
    assert id3.getall("TXXX:INSTRUMENTS")[0].text == ["acoustic_guitar; piano"]


def test_id3v1_kept_byte_for_byte(make) -> None:
    path = make(BY_NAME["mp3"])
    # A v1 title unlike the v2 one: mutagen's "update" mode would rewrite it from v2.
    v1 = fx.add_id3v1(path, "Old v1 title")
    before_tags = other_tags(path, "id3")
    write_instruments(path, TAGS_A)
    assert path.read_bytes()[-128:] == v1
    assert other_tags(path, "id3") == before_tags


def test_id3v1_only_mp3_is_not_copied_into_v2(make) -> None:
    path = make(BY_NAME["mp3"], seed=False)
    ID3(path).delete(path)  # drop the encoder's ID3v2 tag
    v1 = fx.add_id3v1(path, "Only v1")
    write_instruments(path, TAGS_A)
    assert path.read_bytes()[-128:] == v1
    assert sorted(_raw_id3(path).keys()) == sorted(f"TXXX:{n}" for n in OUR_NAMES)


# --- users' own tags and case ----------------------------------------------------------------


@pytest.mark.parametrize("container", by_id([BY_NAME["mp3"], BY_NAME["flac"], BY_NAME["m4a"]]))
def test_users_own_tag_is_reported(make, container: fx.Container) -> None:
    path = make(container)
    f = mutagen.File(path)
    if container.kind == "id3":
        f.tags.add(TXXX(encoding=3, desc="INSTRUMENTS", text=["kazoo"]))
    elif container.kind == "vorbis":
        f.tags["INSTRUMENTS"] = ["kazoo"]
    else:
        f.tags["----:com.apple.iTunes:INSTRUMENTS"] = [b"kazoo"]
    f.save()
    existing = read_instruments(path)
    assert existing == ExistingTags(instruments=["kazoo"], source=None)
    assert existing.is_users


def test_vorbis_keys_read_and_replaced_in_any_case(make) -> None:
    path = make(BY_NAME["ogg"])
    f = mutagen.File(path)
    f.tags["instruments"] = ["kazoo", "banjo"]
    f.tags["Instruments_Source"] = ["tagger 0.0.9 old"]
    f.save()
    assert read_instruments(path) == ExistingTags(["kazoo", "banjo"], "tagger 0.0.9 old")
    write_instruments(path, TAGS_A)
    assert raw_fields(path, "vorbis") == RAW_A  # also: no other casing of our keys is left


def test_ape_keys_read_and_replaced_in_any_case(make) -> None:
    path = make(BY_NAME["wavpack"])
    ape = APEv2(path)
    ape["INSTRUMENTS"] = ["kazoo"]
    ape.save(path)
    existing = read_instruments(path)
    assert existing == ExistingTags(["kazoo"], None) and existing.is_users
    write_instruments(path, TAGS_A)
    assert raw_fields(path, "ape") == stored(RAW_A, "ape")


def test_empty_instruments_writes_only_the_source(make) -> None:
    path = make(BY_NAME["flac"])
    write_instruments(path, TAGS_A)
    write_instruments(path, InstrumentTags([], {}, "tagger 0.1.0 resnet-1a2b3c4d"))
    assert raw_fields(path, "vorbis") == {
        "INSTRUMENTS": [],
        "INSTRUMENTS_CONFIDENCE": [],
        "INSTRUMENTS_SOURCE": ["tagger 0.1.0 resnet-1a2b3c4d"],
    }
    assert not read_instruments(path).is_users


@pytest.mark.parametrize(
    "bad",
    [
        InstrumentTags(["piano"], {"piano": 1.5}, "tagger"),
        InstrumentTags(["piano"], {}, "tagger"),
        InstrumentTags(["pi;ano"], {"pi;ano": 0.5}, "tagger"),
        InstrumentTags(["piano"], {"piano": 0.5}, ""),
    ],
    ids=["score-above-1", "no-score", "separator-in-label", "no-source"],
)
def test_invalid_values_are_refused(make, bad: InstrumentTags) -> None:
    path = make(BY_NAME["flac"])
    before = path.read_bytes()
    with pytest.raises(TagWriteError, match="invalid tags"):
        write_instruments(path, bad)
    assert path.read_bytes() == before


# --- files a write must not harm ---------------------------------------------------------------


def test_read_only_file_is_refused_untouched(make) -> None:
    path = make(BY_NAME["flac"])
    before = path.read_bytes()
    path.chmod(0o444)
    with pytest.raises(TagWriteError, match="read-only file") as caught:
        write_instruments(path, TAGS_A)
    assert caught.value.path == path
    assert path.read_bytes() == before
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert temp_files(path.parent) == []


def test_permissions_and_owner_are_kept(make) -> None:
    path = make(BY_NAME["mp3"])
    path.chmod(0o640)
    before = path.stat()
    write_instruments(path, TAGS_A)
    after = path.stat()
    assert stat.S_IMODE(after.st_mode) == 0o640
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert after.st_ino != before.st_ino  # a new file was renamed into place


def test_hard_linked_file_is_refused(make) -> None:
    path = make(BY_NAME["flac"])
    before = path.read_bytes()
    os.link(path, path.with_name("other_name.flac"))
    with pytest.raises(TagWriteError, match="2 hard links"):
        write_instruments(path, TAGS_A)
    assert path.read_bytes() == before


def test_symlink_stays_a_link(make, tmp_path: Path) -> None:
    target = make(BY_NAME["flac"])
    link = tmp_path / "sub" / "link.flac"
    link.parent.mkdir()
    link.symlink_to(target)
    write_instruments(link, TAGS_A)
    assert link.is_symlink()
    assert raw_fields(target, "vorbis") == RAW_A
    assert temp_files(link.parent) == [] and temp_files(target.parent) == []


@pytest.mark.parametrize(
    "name, reason",
    [("notes.txt", "unsupported container"), ("notes.mp3", "unreadable tags")],
)
def test_unsupported_content_is_refused(tmp_path: Path, name: str, reason: str) -> None:
    path = tmp_path / name  # an audio suffix is not enough: mutagen tries, and fails
    content = b"just some text, not audio\n" * 100
    path.write_bytes(content)
    assert not supports_tags(path)
    with pytest.raises(TagWriteError, match=reason):
        read_instruments(path)
    with pytest.raises(TagWriteError, match=reason):
        write_instruments(path, TAGS_A)
    assert path.read_bytes() == content
    assert temp_files(tmp_path) == []


def test_container_is_judged_by_content(make) -> None:
    path = make(BY_NAME["flac"])
    renamed = path.rename(path.with_suffix(".dat"))
    assert supports_tags(renamed)
    write_instruments(renamed, TAGS_A)
    assert raw_fields(renamed, "vorbis") == RAW_A
    assert not supports_tags(renamed.parent / "missing.flac")


@pytest.mark.parametrize("step", ["replace", "fsync", "save"])
def test_failure_mid_write_leaves_original(make, monkeypatch, step: str) -> None:
    path = make(BY_NAME["mp3"])
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    target = {"replace": (os, "replace"), "fsync": (os, "fsync"), "save": (tagmod, "_save")}[step]
    monkeypatch.setattr(*target, boom)
    with pytest.raises(TagWriteError, match="No space left on device") as caught:
        write_instruments(path, TAGS_A)
    assert "\n" not in str(caught.value)
    assert caught.value.path == path
    assert path.read_bytes() == before
    assert temp_files(path.parent) == []


def test_file_changed_during_write_is_not_clobbered(make, monkeypatch) -> None:
    path = make(BY_NAME["flac"])
    real_fsync_file = tagmod._fsync_file

    def fsync_and_meddle(temp: Path) -> None:
        real_fsync_file(temp)
        with open(path, "ab") as fh:  # another program appends meanwhile
            fh.write(b"\x00")

    monkeypatch.setattr(tagmod, "_fsync_file", fsync_and_meddle)
    with pytest.raises(TagWriteError, match="changed while"):
        write_instruments(path, TAGS_A)
    assert path.read_bytes().endswith(b"\x00")  # the other program's change survives
    assert read_instruments(path) == ExistingTags([], None)
    assert temp_files(path.parent) == []


# --- leftovers and kills -------------------------------------------------------------------


def test_cleanup_leftovers_removes_only_our_temps(tmp_path: Path) -> None:
    planted = tmp_path / f".song.flac{TEMP_MARKER}-0123abcd"
    keep = [
        tmp_path / "song.flac",
        tmp_path / ".hidden",
        tmp_path / f"song.flac{TEMP_MARKER}-0123abcd",  # not hidden: not ours
        tmp_path / f".song.flac{TEMP_MARKER}-notahexx",
        tmp_path / "sub" / f".deep.flac{TEMP_MARKER}-0123abcd",  # not recursive
    ]
    for p in [planted, *keep]:
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"x")
    assert cleanup_leftovers(tmp_path) == [planted]
    assert not planted.exists()
    assert all(p.exists() for p in keep)
    assert cleanup_leftovers(tmp_path) == []


_KILL_CHILD = """
import os, signal, sys
from pathlib import Path
from tagger import tags as tagmod
from tagger.tags import InstrumentTags, write_instruments
source = sys.argv[2] + " " + "x" * int(sys.argv[3])  # grows the tag past its padding
tags = InstrumentTags(["piano", "drums"], {"piano": 0.9, "drums": 0.4}, source)
if len(sys.argv) > 4:  # die right after this step of the write
    owner = os if sys.argv[4] == "replace" else tagmod
    step = getattr(owner, sys.argv[4])
    def step_then_die(*args, **kwargs):
        step(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
    setattr(owner, sys.argv[4], step_then_die)
print("ready", flush=True)
write_instruments(Path(sys.argv[1]), tags)
print("done", flush=True)
"""
_WRITE_STEPS = [
    "_copy_owner", "_copy_to_temp", "_save", "_restore_id3v1", "_verify", "_fsync_file",
    "_copy_mode", "replace", "_fsync_folder",
]


def _start_writer(path: Path, attempt: int, *step: str) -> tuple[subprocess.Popen, ExistingTags]:
    """Start a child that writes a tag set unique to `attempt`; return it and that set."""
    filler = 20_000 * (attempt + 1)
    label = f"tagger test kill-{attempt}"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILL_CHILD, str(path), label, str(filler), *step],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout.readline().strip() == "ready"
    return child, ExistingTags(["piano", "drums"], f"{label} " + "x" * filler)


def _assert_whole(path: Path, audio: np.ndarray, allowed: tuple[ExistingTags, ...]) -> ExistingTags:
    """The file decodes to `audio`, keeps its title and holds one of the allowed tag sets."""
    now = read_instruments(path)
    assert now in allowed, f"tags are neither old nor new: {now.instruments} {now.source[:30]!r}"
    assert np.array_equal(fx.decode(path), audio), "audio changed"
    assert fx.TITLE in str(other_tags(path, "id3"))
    return now


@pytest.fixture
def big_wav(make) -> tuple[Path, np.ndarray]:
    """A 60 s WAV (~5 MB, so a write takes some milliseconds) and its decoded audio."""
    path = make(BY_NAME["wav"], seconds=60.0)
    return path, fx.decode(path)


def test_kill_at_random_moments_leaves_old_or_new_file(big_wav) -> None:
    """SIGKILL a writing process at random moments: the file is always whole.

    Every attempt grows the tag by more than mutagen's padding, so each save has to
    move the audio data. Kill delays are drawn within the time one write takes.
    """
    path, audio = big_wav
    child, new = _start_writer(path, 99)
    started = time.perf_counter()
    assert "done" in child.communicate(timeout=60)[0]
    write_time = time.perf_counter() - started
    current = _assert_whole(path, audio, (new,))

    rng = random.Random(20240611)
    killed_early = 0
    for attempt in range(15):
        child, new = _start_writer(path, attempt)
        time.sleep(rng.uniform(0.0, 1.2 * write_time) if attempt else 0.0)
        child.send_signal(signal.SIGKILL)
        killed_early += "done" not in child.communicate(timeout=60)[0]
        current = _assert_whole(path, audio, (current, new))
    assert killed_early > 0, "no kill landed before a write finished"

    leftovers = cleanup_leftovers(path.parent)
    assert all(TEMP_MARKER in p.name for p in leftovers)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize("step", _WRITE_STEPS)
def test_kill_after_each_step_leaves_old_or_new_file(big_wav, step: str) -> None:
    """SIGKILL the writer right after each step: old file before the rename, new after."""
    path, audio = big_wav
    old = read_instruments(path)
    child, new = _start_writer(path, 0, step)
    output, _ = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL and "done" not in output
    renamed = _WRITE_STEPS.index(step) >= _WRITE_STEPS.index("replace")
    _assert_whole(path, audio, (new,) if renamed else (old,))
    leftovers = cleanup_leftovers(path.parent)
    assert len(leftovers) == (0 if renamed else 1)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
