"""Read and write our three tag fields: instruments, their confidences, and provenance.

Each field is declared once (``INSTRUMENTS``, ``CONFIDENCE``, ``SOURCE`` below) with one
storage style per tag system, the way beets declares its custom fields (the beets plugin
builds its media fields from these same declarations):

============  =======================================  ================================
tag system    containers                               key of the instruments field
============  =======================================  ================================
ID3v2         MP3, WAV, AIFF                           ``TXXX:INSTRUMENTS``
Vorbis        FLAC, Ogg Vorbis, Opus                   ``INSTRUMENTS`` (repeated)
MP4           M4A (AAC, ALAC)                          ``----:com.apple.iTunes:INSTRUMENTS``
APEv2         Monkey's Audio, WavPack, Musepack        ``Instruments``
ASF           WMA (our extension)                      ``INSTRUMENTS``
============  =======================================  ================================

Multiple values (the labels, their confidences): Vorbis comments repeat the key, one
value per label; every other tag system gets one value, the labels joined with ``; ``
(``acoustic_guitar; piano``). That is the form every common reader shows whole: ffprobe
and exiftool show only the first of several values in an ID3v2.4 TXXX frame, an MP4
freeform atom or an APEv2 item, foobar2000 only the first data atom of an MP4 atom,
and the ID3 standard defines TXXX as a single string. Reading accepts both forms,
each value split at ``; ``, so files written by earlier versions (one value per label
everywhere) read the same.

A write only ever replaces these three fields, and a fourth, ``INSTRUMENTS_PREVIOUS``
(``Instruments_Previous`` in APEv2), where a user's own instruments tag was written over
(``--force``): it keeps the user's value, carried over by later writes, so that
:func:`remove_instruments` (``tagger untag``) can put it back. Every other frame, tag,
picture and the audio stream are left as they are. It goes to a temporary copy in the same folder which
is flushed to disk and then renamed over the original, so a crash or a kill at any
moment leaves either the old file or the new one. The copy gets the original's owner,
group and permission bits, or the write is refused (``cannot keep the owner``). It is
created exclusively and locked (``flock``) while it is written, so a second run
cleaning up the temporary files a killed run left (:func:`cleanup_leftovers`) never
removes one in use.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import math
import os
import re
import secrets
import shutil
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import mutagen
from mutagen.aiff import AIFF
from mutagen.apev2 import TEXT as APE_TEXT
from mutagen.asf import ASF, ASFUnicodeAttribute
from mutagen.flac import FLAC
from mutagen.id3 import TXXX, ID3v1SaveOptions
from mutagen.monkeysaudio import MonkeysAudio
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, AtomDataType, MP4FreeForm
from mutagen.musepack import Musepack
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE
from mutagen.wavpack import WavPack

from tagger.atomic import fsync_folder, remove_quietly
from tagger.discover import file_problem
from tagger.discover import show_path as _show
from tagger.errors import TagWriteError
from tagger.identity import FileIdentity

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

TEMP_MARKER = ".tagger-tmp"
# A temp file is f".{name}{TEMP_MARKER}-{8 hex digits}", next to the file it replaces; a
# name too long for that is cut and ends in "~" and 8 hex digits of its hash (see _temp_path).
_TEMP_NAME = re.compile(r"^\..+" + re.escape(TEMP_MARKER) + r"-[0-9a-f]{8}\Z", re.DOTALL)
NAME_MAX = 255  # bytes in a file name, when the file system does not say
# Joins the values of a multi-valued field into one (every tag system but Vorbis comments);
# labels never contain it. ID3v2.3 files have always been written this way.
VALUE_SEPARATOR = "; "
ID3V1_SIZE = 128  # bytes of an ID3v1 tag at the very end of an MP3


@dataclass(frozen=True)
class InstrumentTags:
    """What a run writes: ranked labels, their scores, and which tool and model wrote them."""

    instruments: list[str]  # ranked labels, highest score first
    confidences: dict[str, float]  # label -> score in [0, 1], written with 3 decimals
    source: str  # e.g. "tagger 0.1.0 resnet-1a2b3c4d"


@dataclass(frozen=True)
class ExistingTags:
    """What a file holds now, read before a write (the CSV's `previous_instruments`)."""

    instruments: list[str]  # current instruments tag values ([] if none)
    source: str | None  # current INSTRUMENTS_SOURCE value, None if absent
    previous: list[str] = field(default_factory=list)  # INSTRUMENTS_PREVIOUS: the user's value we wrote over

    @property
    def is_ours(self) -> bool:
        """True when tagger wrote the instruments tag (it has our INSTRUMENTS_SOURCE)."""
        return self.source is not None

    @property
    def is_users(self) -> bool:
        """True for an instruments tag we did not write: keep it unless --force."""
        return bool(self.instruments) and self.source is None


# --- storage styles: how one field is stored in one tag system -----------------------


class StorageStyle(Protocol):
    """Gets and sets the values of one field in a mutagen tag object."""

    def get(self, tags: Any) -> list[str]: ...

    def set(self, tags: Any, values: list[str]) -> None: ...


@dataclass(frozen=True)
class ID3Style:
    """A TXXX frame with description `desc`; one frame (its text values, as stored)."""

    desc: str

    def get(self, tags: Any) -> list[str]:
        return [str(v) for frame in tags.getall(f"TXXX:{self.desc}") for v in frame.text]

    def set(self, tags: Any, values: list[str]) -> None:
        tags.delall(f"TXXX:{self.desc}")
        if values:  # mutagen turns UTF-8 into UTF-16 when it saves a v2.3 tag
            tags.add(TXXX(encoding=3, desc=self.desc, text=values))


@dataclass(frozen=True)
class VorbisStyle:
    """A Vorbis comment `key`, repeated once per value; keys are case-insensitive."""

    key: str

    def get(self, tags: Any) -> list[str]:
        return list(tags.get(self.key, []))  # VCommentDict looks keys up case-insensitively

    def set(self, tags: Any, values: list[str]) -> None:
        if self.key in tags:
            del tags[self.key]  # deletes every casing of the key, keeps the others' order
        if values:
            tags[self.key] = values


@dataclass(frozen=True)
class MP4Style:
    """An iTunes freeform atom ``----:com.apple.iTunes:<name>``, one UTF-8 data atom per value."""

    name: str

    @property
    def key(self) -> str:
        return f"----:com.apple.iTunes:{self.name}"

    def get(self, tags: Any) -> list[str]:
        return [bytes(v).decode("utf-8", errors="replace") for v in tags.get(self.key, [])]

    def set(self, tags: Any, values: list[str]) -> None:
        tags.pop(self.key, None)
        if values:
            tags[self.key] = [
                MP4FreeForm(v.encode("utf-8"), dataformat=AtomDataType.UTF8) for v in values
            ]


@dataclass(frozen=True)
class APEStyle:
    """An APEv2 text item `key` holding a list; keys are case-insensitive."""

    key: str

    def get(self, tags: Any) -> list[str]:
        value = tags.get(self.key)  # APEv2 looks keys up case-insensitively
        if value is None or value.kind != APE_TEXT:
            return []
        return list(value)

    def set(self, tags: Any, values: list[str]) -> None:
        if self.key in tags:
            del tags[self.key]
        if values:
            tags[self.key] = values


@dataclass(frozen=True)
class ASFStyle:
    """A multi-valued ASF attribute `name`."""

    name: str

    def get(self, tags: Any) -> list[str]:
        return [str(v) for v in tags.get(self.name, [])]

    def set(self, tags: Any, values: list[str]) -> None:
        if self.name in tags:
            del tags[self.name]
        if values:
            tags[self.name] = [ASFUnicodeAttribute(v) for v in values]


# Tag systems that keep the values of a multi-valued field as repeated keys; the others
# get one value joined with VALUE_SEPARATOR (see the module's docstring for why).
REPEATED_KINDS = frozenset({"vorbis"})


def split_values(values: list[str]) -> list[str]:
    """Each stored value split at VALUE_SEPARATOR: reads the joined and the repeated form."""
    return [part for value in values for part in value.split(VALUE_SEPARATOR)]


def join_values(kind: str, values: list[str]) -> list[str]:
    """The values as a multi-valued field stores them in tag system `kind`."""
    if kind in REPEATED_KINDS or not values:
        return list(values)
    return [VALUE_SEPARATOR.join(values)]


@dataclass(frozen=True)
class TagField:
    """One of our fields, declared once with its storage style in each tag system.

    ``multi``: the field holds a list (joined or repeated, see ``join_values``); else
    one value, stored as it is.
    """

    styles: dict[str, StorageStyle]
    multi: bool = True

    def get(self, kind: str, tags: Any) -> list[str]:
        values = self.styles[kind].get(tags)
        return split_values(values) if self.multi else values

    def set(self, kind: str, tags: Any, values: list[str]) -> None:
        self.styles[kind].set(tags, join_values(kind, values) if self.multi else list(values))


def _field(upper: str, ape: str, multi: bool = True) -> TagField:
    return TagField(
        {
            "id3": ID3Style(upper),
            "vorbis": VorbisStyle(upper),
            "mp4": MP4Style(upper),
            "ape": APEStyle(ape),
            "asf": ASFStyle(upper),
        },
        multi=multi,
    )


INSTRUMENTS = _field("INSTRUMENTS", "Instruments")
CONFIDENCE = _field("INSTRUMENTS_CONFIDENCE", "Instruments_Confidence")
SOURCE = _field("INSTRUMENTS_SOURCE", "Instruments_Source", multi=False)
# The user's instruments tag we wrote over, kept verbatim (as many values, joined or not, as
# the user had) so that untag puts back exactly what was there.
PREVIOUS = _field("INSTRUMENTS_PREVIOUS", "Instruments_Previous", multi=False)
_INSTRUMENTS_VERBATIM = TagField(INSTRUMENTS.styles, multi=False)  # INSTRUMENTS, values as stored

# The tag system of each container mutagen recognises; anything else is unsupported.
_TAG_KIND: dict[type, str] = {
    MP3: "id3",
    WAVE: "id3",
    AIFF: "id3",
    FLAC: "vorbis",
    OggVorbis: "vorbis",
    OggOpus: "vorbis",
    MP4: "mp4",
    MonkeysAudio: "ape",
    WavPack: "ape",
    Musepack: "ape",
    ASF: "asf",
}
TAG_KINDS = _TAG_KIND  # public: the beets plugin picks its storage styles' formats by it


# --- opening files --------------------------------------------------------------------


# What mutagen says, and what we say instead (mutagen's messages name inner details).
_PLAIN_REASONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"can't sync to (an )?MPEG frame"), "no MPEG audio frame found"),
    (re.compile(r"is not a valid (\w+) file"), r"not a valid \1 file"),
    (re.compile(r"not an? (\w+) file"), r"not a valid \1 file"),
    (re.compile(r"file said (\d+) bytes, read (\d+) bytes"), r"truncated (a size field says \1 bytes, \2 are there)"),
    (re.compile(r"[Ii]nvalid chunk ID"), "damaged chunk header"),
    (re.compile(r"Vorbis comment"), "damaged Vorbis comment"),
    (re.compile(r"expected b'OggS'"), "damaged Ogg page"),
    (re.compile(r"format requires|argument out of range|read length must be non-negative|negative seek"),
     "a size field of the file is out of range"),
]


def _plain(exc: BaseException) -> str:
    """A plain one-line reason for what mutagen (or the OS) raised about a file's tags."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = " ".join(str(exc).split())
    for pattern, reason in _PLAIN_REASONS:
        match = pattern.search(text)
        if match:
            return match.expand(reason)
    if isinstance(exc, struct.error):
        return "a size field of the file is out of range"
    if not text or not text.isprintable() or len(text) > 120:  # empty, raw bytes, or a dump
        return f"damaged data ({type(exc).__name__})"
    return text


# Magic numbers of containers found behind an ID3v2 tag (which only MP3 and FLAC may have).
_MAGIC_BEHIND_ID3 = [
    (b"fLaC", "FLAC"), (b"RIFF", "WAV"), (b"FORM", "AIFF"), (b"OggS", "Ogg"), (b"wvpk", "WavPack"),
    (b"MAC ", "Monkey's Audio"), (b"MPCK", "Musepack"), (b"0&\xb2u", "WMA"),
]


def _behind_id3v2(path: Path) -> str | None:
    """The container behind a leading ID3v2 tag, if it is one we know by its magic number."""
    with open(path, "rb") as fh:
        header = fh.read(10)
        if len(header) < 10 or not header.startswith(b"ID3"):
            return None
        size = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(header[6:10]))
        if header[5] & 0x10:  # a footer follows the tag
            size += 10
        fh.seek(size)
        magic = fh.read(8)
    if magic[4:8] == b"ftyp":
        return "MP4"
    return next((name for prefix, name in _MAGIC_BEHIND_ID3 if magic.startswith(prefix)), None)


def _detect(path: Path) -> tuple[type, str]:
    """The mutagen class and tag system of `path`, judged by its content."""
    problem = file_problem(path)  # never let mutagen open a FIFO (blocks) or a device (endless)
    if problem:
        raise TagWriteError(problem, path)
    try:
        behind = _behind_id3v2(path)
        if behind == "FLAC":  # mutagen reads FLAC behind an ID3v2 tag, if it knows it is FLAC
            return FLAC, "vorbis"
        if behind is not None:  # mutagen would take it for an MP3 and fail to find a frame
            raise TagWriteError(f"unsupported container ({behind} data behind an ID3v2 tag)", path)
        audio = mutagen.File(path)
    except TagWriteError:
        raise
    except Exception as exc:  # mutagen raises more than MutagenError on damaged files
        raise TagWriteError(f"unreadable tags: {_plain(exc)}", path) from exc
    if audio is None or type(audio) not in _TAG_KIND:
        found = "unknown format" if audio is None else type(audio).__name__
        raise TagWriteError(f"unsupported container ({found})", path)
    return type(audio), _TAG_KIND[type(audio)]


def _open(path: Path, detected: tuple[type, str] | None = None) -> tuple[Any, str]:
    """Open `path` with mutagen for reading or editing its tags; return (file, tag system).

    ``detected``: the class and tag system to use, as :func:`_detect` found them (for a
    temp copy, whose name does not end like the original's). ID3 is loaded as it is on
    disk: not translated to v2.4 (so a v2.3 tag saves back as the same frames) and
    without ID3v1 values merged into it (so they are not copied into the ID3v2 tag on save).
    """
    cls, kind = detected or _detect(path)
    options = {"translate": False, "load_v1": False} if kind == "id3" else {}
    try:
        audio = cls(path, **options)
    except Exception as exc:  # mutagen raises more than MutagenError on damaged files
        raise TagWriteError(f"unreadable tags: {_plain(exc)}", path) from exc
    return audio, kind


def supports_tags(path: Path) -> bool:
    """True when `path` is, by its content, a container we can tag."""
    try:
        _detect(Path(path))
    except TagWriteError:
        return False
    return True


def read_instruments(path: Path) -> ExistingTags:
    """The instruments tag and its source as the file holds them now."""
    path = Path(path)
    audio, kind = _open(path)
    return _existing(audio, kind, path)


def _existing(audio: Any, kind: str, path: Path) -> ExistingTags:
    if audio.tags is None:
        return ExistingTags(instruments=[], source=None)
    try:
        instruments = INSTRUMENTS.get(kind, audio.tags)
        sources = SOURCE.get(kind, audio.tags)
        previous = PREVIOUS.get(kind, audio.tags)
    except Exception as exc:  # a value of an unexpected type in a damaged tag
        raise TagWriteError(f"unreadable tags: {_plain(exc)}", path) from exc
    source = sources[0] if sources and sources[0] else None  # an empty source is no source
    return ExistingTags(instruments=instruments, source=source, previous=split_values(previous) if source else [])


# --- writing --------------------------------------------------------------------------


def _check_values(tags: InstrumentTags) -> list[str]:
    """Validate `tags`; return the confidence values, `label:0.912`, in label order."""
    confidences = []
    for label in tags.instruments:
        if not label or any(c in label for c in ";:\n\x00"):
            raise ValueError(f"invalid label {label!r}")
        score = tags.confidences.get(label)
        if score is None or not math.isfinite(score) or not 0.0 <= score <= 1.0:
            raise ValueError(f"confidence of {label!r} is {score!r}, not in [0, 1]")
        confidences.append(f"{label}:{score:.3f}")
    if not tags.source:
        raise ValueError("empty source")
    return confidences


Fields = dict[str, list[str]]  # our fields by name (INSTRUMENTS...) -> their values ([]: absent)
_FIELDS = {"INSTRUMENTS": INSTRUMENTS, "INSTRUMENTS_CONFIDENCE": CONFIDENCE, "INSTRUMENTS_SOURCE": SOURCE,
           "INSTRUMENTS_PREVIOUS": PREVIOUS, "INSTRUMENTS_VERBATIM": _INSTRUMENTS_VERBATIM}


def _set_fields(audio: Any, kind: str, tags: InstrumentTags, confidences: list[str]) -> Fields:
    """Replace our fields in the loaded tags of `audio` (adding a tag if it has none); return them.

    A user's own instruments tag written over is kept in INSTRUMENTS_PREVIOUS, and a
    previous value kept there by an earlier write is carried over.
    """
    existing = _existing(audio, kind, Path(audio.filename))
    kept_field = PREVIOUS if existing.is_ours else _INSTRUMENTS_VERBATIM
    previous = kept_field.get(kind, audio.tags) if audio.tags is not None else []
    if audio.tags is None:
        audio.add_tags()  # ID3: a new tag is v2.4
    fields = {"INSTRUMENTS": list(tags.instruments), "INSTRUMENTS_CONFIDENCE": confidences,
              "INSTRUMENTS_SOURCE": [tags.source], "INSTRUMENTS_PREVIOUS": previous}
    for name, values in fields.items():
        _FIELDS[name].set(kind, audio.tags, values)
    return fields


def _restore_fields(audio: Any, kind: str) -> Fields:
    """Remove what tagger wrote from the loaded tags of `audio`, putting back the user's
    instruments tag kept in INSTRUMENTS_PREVIOUS (none if there was none); return the fields."""
    existing = _existing(audio, kind, Path(audio.filename))
    if not existing.is_ours:
        raise TagWriteError("no instruments tag written by tagger", audio.filename)
    fields = {"INSTRUMENTS_VERBATIM": PREVIOUS.get(kind, audio.tags), "INSTRUMENTS_CONFIDENCE": [],
              "INSTRUMENTS_SOURCE": [], "INSTRUMENTS_PREVIOUS": []}
    for name, values in fields.items():
        _FIELDS[name].set(kind, audio.tags, values)
    return fields


def _save(audio: Any, kind: str) -> None:
    """Save `audio`'s tags in place, keeping the ID3 version it had."""
    if kind != "id3":
        audio.save()
        return
    version = audio.tags.version
    if version < (2, 3, 0):  # mutagen cannot write v2.2; converting would touch every frame
        raise TagWriteError(f"ID3v2.{version[1]} tag cannot be kept as it is", audio.filename)
    if version[:2] == (2, 3):
        options = {"v2_version": 3, "v23_sep": VALUE_SEPARATOR}
    else:
        options = {"v2_version": 4}
    if isinstance(audio, MP3):
        options["v1"] = ID3v1SaveOptions.UPDATE  # keep an ID3v1 tag if there is one
    audio.save(**options)


def _tail(path: Path, size: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - size))
        return fh.read()


def _restore_id3v1(path: Path, original_tail: bytes) -> None:
    """Put back the original ID3v1 bytes of an MP3.

    mutagen's "keep" mode regenerates ID3v1 from the ID3v2 frames, which would change a
    v1 tag that did not match v2. The ID3v2 tag sits at the start of the file, so the last
    128 bytes are the same region before and after the save.
    """
    if len(original_tail) != ID3V1_SIZE or not original_tail.startswith(b"TAG"):
        return
    with open(path, "r+b") as fh:
        fh.seek(-ID3V1_SIZE, os.SEEK_END)
        fh.write(original_tail)


def _check_writable(path: Path, st: os.stat_result) -> None:
    """Refuse files a write must not touch: not regular, read-only, or hard-linked."""
    if not stat.S_ISREG(st.st_mode):
        raise TagWriteError("not a regular file", path)
    # A file with no write bit is read-only for us, even when we run as root.
    if not os.access(path, os.W_OK) or not st.st_mode & 0o222:
        raise TagWriteError("read-only file", path)
    # os.replace puts a new inode in place of the old: the other names of a hard-linked
    # file would keep the old content, so the links would silently diverge.
    if st.st_nlink > 1:
        raise TagWriteError(f"file has {st.st_nlink} hard links; refusing to break them", path)


def _temp_path(path: Path) -> Path:
    """``.<name>.tagger-tmp-<8 hex>`` next to ``path``, cut to fit the file system's NAME_MAX.

    A name too long for that keeps its first bytes and gets ``~`` and 8 hex digits of
    its hash instead of the rest (so temps of two long names that share a start differ).
    """
    suffix = f"{TEMP_MARKER}-{secrets.token_hex(4)}"
    try:
        name_max = os.pathconf(path.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = NAME_MAX
    name = os.fsencode(path.name)
    room = max(name_max - 1 - len(suffix), 10)  # bytes left for the name, after the dot
    if len(name) > room:
        name = name[: room - 9] + b"~" + hashlib.sha1(name).hexdigest()[:8].encode()
    return path.with_name("." + os.fsdecode(name) + suffix)  # a cut UTF-8 sequence survives as surrogates


TEMP_ATTEMPTS = 8  # fresh temp names tried before giving up (each collision is a 1 in 2**32 chance)


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new temp next to ``path``, only we can read, locked: ``(fd, its path)``.

    Created exclusively (never an existing file or a planted link). The lock tells a
    cleanup in another run that the temp is in use; one that got in between the creation
    and the lock has removed the name, so the name is checked to still be ours.
    """
    for _ in range(TEMP_ATTEMPTS):
        temp = _temp_path(path)
        try:
            fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _names(temp, fd):
                return fd, temp
        except BaseException:
            os.close(fd)
            remove_quietly(temp)
            raise
        os.close(fd)
    raise TagWriteError(f"could not create a temporary file next to it in {TEMP_ATTEMPTS} attempts", path)


def _names(path: Path, fd: int) -> bool:
    """True when ``path`` is still the name of the file open as ``fd``."""
    try:
        now = os.lstat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def _copy_to_temp(path: Path, temp_fd: int) -> None:
    """Copy `path` into the (empty) temp open as `temp_fd`."""
    with os.fdopen(temp_fd, "wb", closefd=False) as dst, open(path, "rb") as src:
        shutil.copyfileobj(src, dst, 1 << 20)


def _fsync_file(fd: int) -> None:
    os.fsync(fd)  # the file's data, whichever descriptor wrote it


_fsync_folder = fsync_folder


def _copy_owner(temp_fd: int, st: os.stat_result, path: Path) -> None:
    """Give the temp the original's owner and group, or refuse the write.

    The temp replaces the original's inode, so without this a file would silently change
    hands (say root's file written by ``nobody``). Only root may give a file away, so a
    user writing another user's file (world-writable, in a world-writable folder) is
    refused here, before anything is copied.
    """
    now = os.fstat(temp_fd)
    uid = st.st_uid if now.st_uid != st.st_uid else -1
    gid = st.st_gid if now.st_gid != st.st_gid else -1
    if (uid, gid) == (-1, -1):
        return
    try:
        os.fchown(temp_fd, uid, gid)
    except PermissionError:
        raise TagWriteError(f"cannot keep the owner (uid {st.st_uid}, gid {st.st_gid}) of the file; "
                            "only its owner or root can write its tags", path) from None


def _copy_mode(temp_fd: int, st: os.stat_result) -> None:
    """Give the temp the original's permission bits (after every write and chown, which clear set-id bits)."""
    os.fchmod(temp_fd, stat.S_IMODE(st.st_mode))


def _verify(temp: Path, fields: Fields, detected: tuple[type, str]) -> None:
    """Read the temp copy back: it must parse and hold exactly what we wrote."""
    audio, kind = _open(temp, detected)
    if audio.tags is None:  # e.g. a truncated WAV or AIFF: the new chunk is past what a reader sees
        if not any(fields.values()):
            return  # all removed, and the tag with them
        raise TagWriteError("damaged container: the tags written could not be read back", temp)
    written = {name: _FIELDS[name].get(kind, audio.tags) for name in fields}
    if written != fields:
        raise TagWriteError("tags read back differ from those written", temp)


def _unchanged(path: Path, before: os.stat_result) -> bool:
    return FileIdentity.of_path(path) == FileIdentity.of(before)


def _temp_lost(temp: Path, temp_fd: int) -> str | None:
    """Why the temp is not there any more (removed or replaced by another program), or None."""
    if _names(temp, temp_fd):
        return None
    return (f"its temporary copy {_show(temp.name)} was removed or replaced by another program "
            "while the tags were written; the file is unchanged")


def write_instruments(path: Path, tags: InstrumentTags, expected: FileIdentity | None = None) -> FileIdentity:
    """Replace our three fields in `path`, atomically; every other tag is kept.

    A user's own instruments tag written over is kept in INSTRUMENTS_PREVIOUS.
    ``expected``: the identity of the file as it was scanned; a file that is no longer
    that one (replaced, or changed) is refused: ``file changed since it was scanned``.
    Returns the identity of the file written. Raises TagWriteError (with a one-line
    reason) and leaves the file untouched when the file is read-only, hard-linked,
    unsupported, not the file scanned, its owner cannot be kept, or the write fails at
    any step.
    """
    path = Path(path)
    try:
        confidences = _check_values(tags)
    except ValueError as exc:
        raise TagWriteError(f"invalid tags: {exc}", path) from exc
    _, written = _rewrite(path, lambda audio, kind: _set_fields(audio, kind, tags, confidences), expected)
    log.debug("wrote instruments %s to %s", tags.instruments, path)
    return written


def remove_instruments(path: Path) -> list[str]:
    """Remove what tagger wrote into `path` and put back the user's instruments tag that a
    write kept (INSTRUMENTS_PREVIOUS), atomically; return the values put back ([]: none).

    Every other tag is kept. Raises TagWriteError, the file untouched, as
    :func:`write_instruments` does, and when the file holds no tags tagger wrote.
    """
    path = Path(path)
    fields, _ = _rewrite(path, _restore_fields)
    log.debug("removed tagger's instruments from %s", path)
    return split_values(fields["INSTRUMENTS_VERBATIM"])


def _rewrite(path: Path, edit: Callable[[Any, str], Fields],
             expected: FileIdentity | None = None) -> tuple[Fields, FileIdentity]:
    """Apply ``edit`` (it changes the loaded tags and returns our fields as they must
    read back) to `path`, atomically: a checked temporary copy replaces the file.

    ``expected``: the file's identity when it was read (None: no check). Returns the
    fields and the identity of the file written (what the resume cache is keyed on)."""
    # Work on the file a symlink points to, so the link itself stays a link.
    target = path.resolve() if path.is_symlink() else path
    try:
        st = target.stat()
    except OSError as exc:
        raise TagWriteError(f"cannot stat file: {exc.strerror or exc}", path) from exc
    if expected is not None and FileIdentity.of(st) != expected:
        raise TagWriteError("file changed since it was scanned", path)
    _check_writable(target, st)
    detected = _detect(target)  # fail on unsupported files before copying anything

    try:
        fd, temp = _create_temp(target)
    except OSError as exc:
        raise TagWriteError(f"cannot create a temporary file next to it: {exc.strerror or exc}", path) from exc
    try:
        try:
            _copy_owner(fd, st, path)  # refused before anything is copied
            _copy_to_temp(target, fd)
            audio, kind = _open(temp, detected)  # the temp's name does not end in .flac, .mp3...
            original_tail = _tail(temp, ID3V1_SIZE) if isinstance(audio, MP3) else b""
            fields = edit(audio, kind)
            _save(audio, kind)
            _restore_id3v1(temp, original_tail)
            _verify(temp, fields, detected)
            _fsync_file(fd)
            _copy_mode(fd, st)
            written = FileIdentity.of(os.fstat(fd))
            if not _unchanged(target, st):
                raise TagWriteError("file changed while its tags were written", path)
            if (lost := _temp_lost(temp, fd)) is not None:
                raise TagWriteError(lost, path)
            os.replace(temp, target)  # atomic on one filesystem: old file or new, never half
        except BaseException as exc:  # also on KeyboardInterrupt: never leave a temp behind
            lost = _temp_lost(temp, fd)
            if lost is None:
                remove_quietly(temp)
            if not isinstance(exc, Exception):
                raise
            if lost is not None:  # the true reason, not what that did to mutagen
                raise TagWriteError(lost, path) from exc
            if isinstance(exc, TagWriteError):
                raise TagWriteError(exc.message, path) from exc
            raise TagWriteError(f"tag write failed: {_plain(exc)}", path) from exc
    finally:
        os.close(fd)  # releases the lock, once the temp is renamed or removed
    try:
        _fsync_folder(target.parent)  # make the rename itself durable
    except OSError as exc:  # the file is already replaced; only durability is at stake
        log.warning("could not fsync folder %s: %s", target.parent, exc)
    return fields, written


def cleanup_leftovers(folder: Path) -> list[Path]:
    """Delete the temp files a killed run left in `folder` (not its subfolders); return them.

    A temp that another run is writing (it holds its lock) is left alone. Never raises:
    an unreadable or vanished folder, or a temp that cannot be removed, is logged as a
    warning and left.
    """
    removed = []
    try:
        entries = sorted(Path(folder).iterdir())
    except OSError as exc:
        log.warning("could not look for leftover temporary files in %s: %s", _show(folder), exc.strerror or exc)
        return removed
    for entry in entries:
        if not _TEMP_NAME.match(entry.name):
            continue
        try:
            if not _remove_if_abandoned(entry):
                continue
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not remove leftover temporary file %s: %s", _show(entry), exc.strerror or exc)
            continue
        log.info("removed leftover temp file %s", _show(entry))
        removed.append(entry)
    return removed


def _remove_if_abandoned(entry: Path) -> bool:
    """Remove the temp ``entry`` when no run is writing it (nobody holds its lock): True if removed.

    Never a symlink or anything but a regular file. The lock is held while the name is
    removed, and the name checked to still be the file locked.
    """
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink: not ours
            return False
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.debug("%s is being written by another run: left alone", _show(entry))
                return False
        if not _names(entry, fd):
            return False
        entry.unlink()
        return True
    finally:
        os.close(fd)

