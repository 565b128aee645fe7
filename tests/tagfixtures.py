"""Tiny real audio files of every tag container, for the tag tests.

Files are encoded with PyAV (a sine, 0.5 s by default), then seeded with an unrelated
title/artist tag and, where the container has one, a cover picture, so a test can check
that writing our fields leaves them alone.
"""
from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from pathlib import Path

import av
import mutagen
import numpy as np
from mutagen.apev2 import APEValue, BINARY
from mutagen.asf import ASFByteArrayAttribute
from mutagen.flac import Picture
from mutagen.id3 import APIC, COMM, ID3, TIT2, TPE1, TXXX
from mutagen.mp4 import MP4Cover

# A 1x1 PNG: a real image, small enough to compare byte for byte.
COVER_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)
TITLE = "Überlied"  # non-ASCII on purpose
ARTIST = "The Testers"


@dataclass(frozen=True)
class Container:
    """How to make one container: file suffix, PyAV muxer, encoder, rate and tag kind."""

    name: str
    suffix: str
    muxer: str
    codec: str
    rate: int
    kind: str  # "id3", "vorbis", "mp4", "ape", "asf"
    channels: int = 1


CONTAINERS = [
    Container("mp3", ".mp3", "mp3", "libmp3lame", 44100, "id3"),
    Container("wav", ".wav", "wav", "pcm_s16le", 44100, "id3"),
    Container("aiff", ".aiff", "aiff", "pcm_s16be", 44100, "id3"),
    Container("flac", ".flac", "flac", "flac", 44100, "vorbis"),
    Container("ogg", ".ogg", "ogg", "vorbis", 44100, "vorbis", channels=2),
    Container("opus", ".opus", "ogg", "libopus", 48000, "vorbis"),
    Container("m4a", ".m4a", "ipod", "aac", 44100, "mp4"),
    Container("alac", ".m4a", "ipod", "alac", 44100, "mp4"),
    Container("wavpack", ".wv", "wv", "wavpack", 44100, "ape"),
    Container("wma", ".wma", "asf", "wmav2", 44100, "asf"),
]


def encoder_missing(codec: str) -> str | None:
    """Why `codec` cannot be used to encode here, or None when it can."""
    try:
        av.Codec(codec, "w")
    except Exception as exc:  # noqa: BLE001 - PyAV raises several types here
        return f"PyAV has no {codec!r} encoder ({exc})"
    return None


def make_audio(path: Path, container: Container, seconds: float = 0.5) -> Path:
    """Encode `seconds` of a 440 Hz sine into `path` with PyAV; return the path."""
    rate, channels = container.rate, container.channels
    t = np.arange(int(rate * seconds)) / rate
    wave = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    samples = np.tile(wave, (channels, 1))  # (channels, samples), planar float
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w", format=container.muxer) as out:
        stream = out.add_stream(container.codec, rate=rate, layout=layout)
        stream.codec_context.bit_rate = 96_000  # some encoders (wmav2) need one
        stream.codec_context.options = {"strict": "experimental"}  # the native vorbis encoder
        stream.codec_context.open()
        sample_fmt = stream.codec_context.format.name
        frame_size = stream.codec_context.frame_size or None  # fixed-size encoders
        resampler = av.AudioResampler(
            format=sample_fmt, layout=layout, rate=rate, frame_size=frame_size
        )
        chunk = 1024
        for start in range(0, samples.shape[1], chunk):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, start : start + chunk]),
                format="fltp",
                layout=layout,
            )
            frame.sample_rate = rate
            for resampled in resampler.resample(frame):
                out.mux(stream.encode(resampled))
        for resampled in resampler.resample(None):
            out.mux(stream.encode(resampled))
        out.mux(stream.encode(None))
    return path


def decode(path: Path) -> np.ndarray:
    """Decode every audio frame of `path` with PyAV; (channels, samples) in the codec's format."""
    with av.open(str(path)) as src:
        frames = [frame.to_ndarray() for frame in src.decode(audio=0)]
    return np.concatenate(frames, axis=-1)


def seed_tags(path: Path, kind: str, id3_version: int = 4) -> None:
    """Write a title, an artist and (where possible) a cover into `path`."""
    if kind == "id3":
        _seed_id3(path, id3_version)
        return
    f = mutagen.File(path)
    if f.tags is None:
        f.add_tags()
    if kind == "vorbis":
        f.tags["TITLE"] = [TITLE]
        f.tags["ARTIST"] = [ARTIST]
        picture = _flac_picture()
        if hasattr(f, "add_picture"):  # FLAC: a METADATA_BLOCK_PICTURE block
            f.add_picture(picture)
        else:  # Ogg: the base64 comment
            f.tags["METADATA_BLOCK_PICTURE"] = [base64.b64encode(picture.write()).decode("ascii")]
    elif kind == "mp4":
        f.tags["\xa9nam"] = [TITLE]
        f.tags["\xa9ART"] = [ARTIST]
        f.tags["covr"] = [MP4Cover(COVER_PNG, imageformat=MP4Cover.FORMAT_PNG)]
    elif kind == "ape":
        f.tags["Title"] = TITLE
        f.tags["Artist"] = ARTIST
        f.tags["Cover Art (Front)"] = APEValue(b"cover.png\x00" + COVER_PNG, BINARY)
    elif kind == "asf":
        f.tags["Title"] = [TITLE]
        f.tags["Author"] = [ARTIST]
        f.tags["WM/Picture"] = [ASFByteArrayAttribute(_asf_picture())]
    f.save()


def _seed_id3(path: Path, version: int) -> None:
    f = mutagen.File(path)
    if f.tags is None:
        f.add_tags()
    tags: ID3 = f.tags
    tags.add(TIT2(encoding=3, text=[TITLE]))
    tags.add(TPE1(encoding=3, text=[ARTIST]))
    tags.add(COMM(encoding=3, lang="eng", desc="", text=["a comment"]))
    tags.add(TXXX(encoding=3, desc="MOOD", text=["calm"]))
    tags.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=COVER_PNG))
    if version == 3:
        tags.update_to_v23()
    f.save(v2_version=version)


def _flac_picture() -> Picture:
    picture = Picture()
    picture.type = 3
    picture.mime = "image/png"
    picture.desc = "cover"
    picture.width = picture.height = 1
    picture.depth = 24
    picture.data = COVER_PNG
    return picture


def _asf_picture() -> bytes:
    """A WM/Picture blob: type, size, mime and description (UTF-16LE, NUL-ended), data."""
    mime = "image/png".encode("utf-16-le") + b"\x00\x00"
    desc = "cover".encode("utf-16-le") + b"\x00\x00"
    return struct.pack("<bI", 3, len(COVER_PNG)) + mime + desc + COVER_PNG


def add_id3v1(path: Path, title: str) -> bytes:
    """Append an ID3v1.1 tag with `title` to an MP3; return its 128 bytes."""
    block = b"TAG" + title.encode("latin-1").ljust(30, b"\x00") + b"v1 artist".ljust(30, b"\x00")
    block += b"\x00" * 30 + b"2001" + b"v1 comment".ljust(28, b"\x00") + b"\x00\x07" + b"\x0c"
    assert len(block) == 128
    with open(path, "ab") as fh:
        fh.write(block)
    return block
