"""Decode any audio file into float32 mono at a chosen sample rate, with PyAV (FFmpeg).

Timeline: output sample 0 is the first sample the decoder gives (encoder priming that
the file declares, e.g. a LAME header or an MP4 edit list, is already removed), and
output sample m sits m / sample_rate seconds after it. A span [start_s, start_s +
duration_s) is found by seeking 0.5 s before start_s (in stream time_base, backward),
decoding, placing the first frame by its timestamp and trimming, so decoding a file in
consecutive spans and joining them gives the samples of a whole decode (bounds per codec
are measured in tests/test_decode.py). Containers with millisecond timestamps
(Matroska/WebM, ASF/WMA) are not sought: they are decoded from the start, and only the
span is resampled. Known limit: a file whose sample rate or layout changes mid-stream
(concatenated MP3s) decodes whole, but its spans are not sample-accurate.

Down-mix: stereo becomes exactly (L + R) / 2. Other layouts use FFmpeg's standard
down-mix matrix scaled to unit gain (``rematrix_maxval=1``); for 5.1 that weighs the
centre more than the surrounds and leaves out the LFE channel.

Streaming: only the resampled mono output of the requested span is ever accumulated;
decoded source audio passes through a FIFO in chunks of ``_CHUNK_SAMPLES``.

Failures are AudioDecodeError with a one-line reason: "empty file (0 bytes)", "not an
audio file (<FFmpeg's reason>)", "no audio stream", "permission denied", "file not
found", "corrupt or truncated: no audio could be decoded", "took longer than the
per-file time limit (<N> s)", or why the path is not a regular file (see
:func:`tagger.discover.file_problem`: FIFOs and devices are never opened). Damaged
packets are skipped (and counted at debug level) as ffmpeg does; a truncated file
decodes what is there. Running out of memory raises MemoryError (never taken for the
end of the file).

Limits: FFmpeg reads the file through Python (:class:`_LimitedReader`), so that how much
it may read without finding audio (READ_WITHOUT_AUDIO_LIMIT, while opening or between two
packets) and for how long (``time_limit_s``) are bounded.
"""
from __future__ import annotations

import contextlib
import errno
import io
import itertools
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.logging
import numpy as np

from tagger.discover import file_problem
from tagger.errors import AudioDecodeError

log = logging.getLogger(__name__)

_Container = av.container.InputContainer
_AudioStream = av.audio.stream.AudioStream

# FFmpeg prints a line for every damaged packet; we count them and log at debug instead.
av.logging.set_level(av.logging.PANIC)

_PREROLL_S = 0.5  # seek this far before start_s, so decoders (MDCT overlap, MP3 bit
#                   reservoir, Opus pre-roll) have settled before the first kept sample
_RESAMPLER_WARMUP_S = 0.05  # source audio fed to the resampler before start_s (its FIR is ~1 ms)
_CHUNK_SAMPLES = 1 << 15  # source samples per resampler call (~0.7 s at 44.1 kHz)
_MIX_OPTIONS = {"rematrix_maxval": "1.0"}  # stereo -> (L + R) / 2 instead of (L + R) / sqrt(2)
# Bytes FFmpeg may read without giving us an audio packet: while it opens a file and looks
# for its streams, or between two packets. Real files need a few MB at most (cover art
# included); without a limit FFmpeg reads what it cannot make sense of to the end, and
# holds it in memory (a 2 GB file of zeros named .mp3: 2 GB and 6 s to open; a valid MP3
# frame followed by 4 GB of zeros: 4 GB and minutes of searching for the next frame).
READ_WITHOUT_AUDIO_LIMIT = 128 << 20


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about its audio stream, without decoding it."""

    duration_s: float | None  # from container/stream metadata; None when unknown
    sample_rate: int  # Hz, of the stored audio
    channels: int
    codec: str  # FFmpeg codec name, e.g. "mp3", "flac", "aac"
    container: str  # FFmpeg demuxer name, e.g. "mp3", "ogg", "mov,mp4,m4a,3gp,3g2,mj2"
    seekable: bool = True  # spans are sought; False: timestamps coarser than a sample (decoded from the start)


def probe(path: Path, time_limit_s: float | None = None) -> AudioInfo:
    """Read the stream parameters of ``path`` (opens the container, decodes nothing).

    Reads at most READ_WITHOUT_AUDIO_LIMIT bytes, for at most ``time_limit_s`` seconds (None: no
    limit). Raises AudioDecodeError with a one-line reason.
    """
    with _open(Path(path), _deadline(time_limit_s)) as (container, reader):
        stream = _audio_stream(container, Path(path), reader)
        cc = stream.codec_context
        return AudioInfo(
            duration_s=_duration_s(container, stream),
            sample_rate=int(cc.sample_rate),
            channels=int(cc.channels),
            codec=cc.codec.canonical_name,
            container=container.format.name,
            seekable=_sample_accurate_timestamps(stream),
        )


def decode(
    path: Path,
    sample_rate: int,
    start_s: float = 0.0,
    duration_s: float | None = None,
    time_limit_s: float | None = None,
) -> np.ndarray:
    """Decode ``path`` to float32 mono at ``sample_rate`` Hz, values in [-1, 1].

    Returns shape (samples,): the span [start_s, start_s + duration_s) in seconds, or to
    the end of the file when duration_s is None. Has exactly round(duration_s *
    sample_rate) samples unless the file ends first. Raises AudioDecodeError, also when
    decoding takes longer than ``time_limit_s`` seconds (None: no limit).
    """
    blocks = list(iter_decode(path, sample_rate, start_s, duration_s, block_samples=1 << 62,
                              time_limit_s=time_limit_s))
    if not blocks:
        return np.zeros(0, dtype=np.float32)
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def iter_decode(
    path: Path,
    sample_rate: int,
    start_s: float = 0.0,
    duration_s: float | None = None,
    block_samples: int = 1 << 18,
    time_limit_s: float | None = None,
) -> Iterator[np.ndarray]:
    """Stream the span of ``decode`` as float32 mono blocks of ``block_samples`` samples.

    Every block but the last has exactly ``block_samples`` samples (1 << 18 is ~12 s at
    22 050 Hz). Arguments are checked and AudioDecodeError raised lazily, from the first
    ``next()`` on. Closing the generator early closes the file. ``time_limit_s`` is wall
    time from the first ``next()``, checked at every read and every packet.
    """
    if sample_rate <= 0 or block_samples <= 0:
        raise ValueError("sample_rate and block_samples must be positive")
    if start_s < 0 or (duration_s is not None and duration_s < 0):
        raise ValueError("start_s and duration_s must be >= 0")
    path = Path(path)
    first_out = round(start_s * sample_rate)
    end_out = None if duration_s is None else first_out + round(duration_s * sample_rate)
    pieces = _span_pieces(path, sample_rate, first_out, end_out, start_s > 0, time_limit_s)
    yield from _blocks(pieces, block_samples)


class OpenFile:
    """:func:`decode` for several spans of one file, in ascending order, from one open of it.

    ``OpenFile(path, rate, time_limit_s).decode(path, rate, start_s, duration_s)`` gives
    what ``decode`` gives (same samples: each span is sought the same way), but the file is
    opened once and each seek goes on from what was read for the span before: FFmpeg
    places an MP3 seek by reading every packet header from the start of the file (about
    1 ms per minute of audio before the span on a fresh open; a few hundred ms for each
    span late in a 2-hour file). The time limit holds for all the spans together, from the
    first ``decode``; the file is opened then, so a failure to open is raised by the call,
    as ``decode`` raises it. A span that cannot be sought (at the start, or an overshoot)
    is decoded by ``decode`` itself. Use as a context manager (closes the file).
    """

    def __init__(self, path: Path, sample_rate: int, time_limit_s: float | None = None) -> None:
        self.path, self.sample_rate, self.time_limit_s = Path(path), sample_rate, time_limit_s
        self._files = contextlib.ExitStack()
        self._opened: tuple[_Container, _LimitedReader, _AudioStream, Fraction | None] | None = None
        self._unread: tuple[av.AudioFrame | None, Iterator[av.AudioFrame]] | None = None
        self._counts = _Counts()
        self._deadline: _Deadline | None = None

    def __enter__(self) -> OpenFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._unread is not None:
            self._unread[1].close()
        self._opened = self._unread = None
        self._files.close()

    def decode(self, path: Path, sample_rate: int, start_s: float = 0.0, duration_s: float | None = None,
               time_limit_s: float | None = None) -> np.ndarray:
        """``decode(path, sample_rate, start_s, duration_s)``; ``time_limit_s`` is the one given when opened."""
        if Path(path) != self.path or sample_rate != self.sample_rate:
            raise ValueError("OpenFile.decode: another file or rate than the one opened")
        if start_s < 0 or (duration_s is not None and duration_s < 0):
            raise ValueError("start_s and duration_s must be >= 0")
        if self._deadline is None:
            self._deadline = _deadline(self.time_limit_s)
        first_out = round(start_s * sample_rate)
        end_out = None if duration_s is None else first_out + round(duration_s * sample_rate)
        fresh = self._opened is None
        container, reader, stream, origin = self._open()
        counts, unread = self._counts, self._unread
        self._unread = None
        sought = start_s > 0 and origin is not None and _seek(container, stream, origin + Fraction(first_out, sample_rate))
        if sought:
            if unread is not None:
                unread[1].close()
            decoded = _frames(container, stream, self.path, counts, reader)
            frames: Iterator[av.AudioFrame] = decoded
        elif fresh:  # as decode without a seek: from the first frame on, counting samples
            first, decoded = unread
            frames = itertools.chain([first] if first is not None else [], decoded)
        else:  # the start of the file, again: decode opens it anew
            return decode(self.path, sample_rate, start_s, duration_s, self._remaining_s())
        try:
            pieces = list(_resampled_span(frames, sample_rate, first_out, end_out, origin if sought else None))
        except _Overshoot:
            log.debug("%s: seek overshot the start; decoding from the beginning", self.path)
            return decode(self.path, sample_rate, start_s, duration_s, self._remaining_s())
        finally:
            decoded.close()
        _check_counts(counts, self.path, sought)
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)

    def _open(self) -> tuple[_Container, _LimitedReader, _AudioStream, Fraction | None]:
        """The open container, its audio stream and the time of its first decodable sample
        (the first frame is kept in ``_unread`` for a first span that is not sought)."""
        if self._opened is None:
            container, reader = self._files.enter_context(_open(self.path, self._deadline))
            stream = _audio_stream(container, self.path, reader)
            self._counts = _Counts()  # one count for the file: nothing decoded at all is an error
            frames = _frames(container, stream, self.path, self._counts, reader)
            first = next(frames, None)
            self._unread = (first, frames)
            self._opened = (container, reader, stream, _frame_time(first))  # as decode places its spans
        return self._opened

    def _remaining_s(self) -> float | None:
        if self._deadline is None:
            return None
        left = self._deadline.at - time.monotonic()
        if left <= 0:
            raise AudioDecodeError(f"took longer than the per-file time limit ({self._deadline.limit_s:g} s)", self.path)
        return left


# --- opening -------------------------------------------------------------------------


class _Deadline:
    """When a decode must be over (time.monotonic() seconds), and what its limit was."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.at = time.monotonic() + limit_s

    def passed(self) -> bool:
        return time.monotonic() > self.at


def _deadline(limit_s: float | None) -> _Deadline | None:
    if limit_s is not None and limit_s <= 0:
        raise ValueError("time_limit_s must be positive (or None)")
    return None if limit_s is None else _Deadline(limit_s)


class _LimitedReader(io.RawIOBase):
    """The file as FFmpeg reads it, through Python, so that reading can be limited.

    FFmpeg may read READ_WITHOUT_AUDIO_LIMIT bytes while it opens the file, and as much
    between two audio packets (``packet()`` is called for each); past that, and past the
    deadline, every read sees the end of the file, and ``budget_spent`` or ``timed_out``
    is set: the caller must then raise, not take the audio so far for the whole file.
    """

    def __init__(self, path: Path, deadline: _Deadline | None) -> None:
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self.name = os.fspath(path)  # FFmpeg guesses the format from the extension too
        self.deadline = deadline
        self.budget = READ_WITHOUT_AUDIO_LIMIT
        self.budget_spent = False
        self.timed_out = False
        self.read_error: OSError | None = None
        # Ctrl-C during a read: PyAV cannot pass it on (it would print "Exception ignored"
        # and the file would fail as unreadable); kept, ending the file, and raised by check().
        self.interrupted: KeyboardInterrupt | None = None

    def packet(self) -> None:
        """An audio packet came out: FFmpeg may read as much again."""
        self.budget = READ_WITHOUT_AUDIO_LIMIT

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            return self._readinto(buffer)
        except KeyboardInterrupt as exc:  # SIGTERM too (tagger.signals.Terminated)
            self.interrupted = exc
            return 0

    def _readinto(self, buffer) -> int:
        if self.deadline is not None and self.deadline.passed():
            self.timed_out = True
            return 0
        if self.budget <= 0:
            self.budget_spent = True
            return 0
        try:
            n = self._file.readinto(memoryview(buffer)[: self.budget]) or 0
        except OSError as exc:  # raised from inside FFmpeg, PyAV would print and drop it
            self.read_error = exc
            return 0
        self.budget -= n
        return n

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """As a file's seek, but a bad offset (a damaged size field) is an error code for
        FFmpeg, as its own file reader returns, not an exception PyAV prints and drops."""
        try:
            return self._file.seek(offset, whence)
        except (OSError, ValueError, OverflowError) as exc:
            return -(getattr(exc, "errno", None) or errno.EINVAL)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()
        super().close()

    def check(self, path: Path) -> None:
        """Raise if the deadline has passed (checked between packets, and after the last), or
        the KeyboardInterrupt that came during a read."""
        if self.interrupted is not None:
            raise self.interrupted
        if self.timed_out or (self.deadline is not None and self.deadline.passed()):
            raise AudioDecodeError(f"took longer than the per-file time limit ({self.deadline.limit_s:g} s)", path)

    def check_end(self, path: Path) -> None:
        """At the end of the packets: raise if it came from a limit or an error, not from the file."""
        self.check(path)
        if self.read_error is not None:
            raise AudioDecodeError(_os_reason(self.read_error), path)
        if self.budget_spent:
            mb = READ_WITHOUT_AUDIO_LIMIT >> 20
            raise AudioDecodeError(f"corrupt: {mb} MB of data without audio at byte {self.tell() - mb * 2**20}", path)


@contextlib.contextmanager
def _open(path: Path, deadline: _Deadline | None = None) -> Iterator[tuple[_Container, _LimitedReader]]:
    """Open ``path`` for reading, turning every failure into one AudioDecodeError line."""
    problem = file_problem(path)  # a FIFO would block, a device never end: never open them
    if problem:
        raise AudioDecodeError(problem, path)
    try:
        info = os.stat(path)
        if info.st_size == 0:
            raise AudioDecodeError("empty file (0 bytes)", path)
        reader = _LimitedReader(path, deadline)
    except OSError as exc:
        raise AudioDecodeError(_os_reason(exc), path) from None
    with reader:
        try:
            container = av.open(reader, metadata_errors="replace")
        except MemoryError:
            raise
        except OSError as exc:  # av.error.FileNotFoundError, PermissionError... are OSErrors
            reader.check_end(path)
            raise AudioDecodeError(_os_reason(exc), path) from None
        except av.FFmpegError as exc:
            reader.check(path)
            if reader.read_error is not None:
                raise AudioDecodeError(_os_reason(reader.read_error), path) from None
            raise AudioDecodeError(f"not an audio file ({_ffmpeg_reason(exc)}{_gave_up(reader)})", path) from None
        reader.check(path)
        reader.packet()  # the packets FFmpeg keeps from its search are ours
        with container:
            yield container, reader


def _gave_up(reader: _LimitedReader) -> str:
    """Said after a reason when FFmpeg stopped looking because of READ_WITHOUT_AUDIO_LIMIT."""
    return f"; nothing found in the first {READ_WITHOUT_AUDIO_LIMIT >> 20} MB" if reader.budget_spent else ""


def _audio_stream(container: _Container, path: Path, reader: _LimitedReader) -> _AudioStream:
    """The container's main audio stream, checked to be decodable."""
    if not container.streams.audio:
        raise AudioDecodeError(f"no audio stream{_gave_up(reader)}", path)
    stream = container.streams.best("audio") or container.streams.audio[0]
    cc = stream.codec_context
    if cc is None:
        raise AudioDecodeError("unsupported audio codec (no decoder in this FFmpeg build)", path)
    if cc.sample_rate <= 0 or cc.channels <= 0:
        # What FFmpeg reports as "could not find codec parameters": typically random
        # bytes that a demuxer accepted because of the file's extension.
        raise AudioDecodeError(
            f"not an audio file (no valid {container.format.name} audio stream found{_gave_up(reader)})", path
        )
    return stream


def _os_reason(exc: OSError) -> str:
    """A short reason for an operating-system error."""
    if exc.errno == errno.ENOENT or isinstance(exc, FileNotFoundError):
        return "file not found"
    if exc.errno in (errno.EACCES, errno.EPERM) or isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == errno.EISDIR or isinstance(exc, IsADirectoryError):
        return "is a directory"
    return f"read error ({exc.strerror or exc})"


def _ffmpeg_reason(exc: av.FFmpegError) -> str:
    """FFmpeg's own short message, e.g. 'Invalid data found when processing input'."""
    return " ".join(str(exc.strerror or exc).split())


def _duration_s(container: _Container, stream: _AudioStream) -> float | None:
    """Duration in seconds from stream or container metadata; None when neither knows."""
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


# --- decoding ------------------------------------------------------------------------


@dataclass
class _Counts:
    """What happened while decoding one file."""

    frames: int = 0  # frames decoded
    bad_packets: int = 0  # packets the decoder rejected (skipped, like ffmpeg does)


class _Overshoot(Exception):
    """The seek landed after the requested start; decode from the beginning instead."""


def _span_pieces(
    path: Path, rate: int, first_out: int, end_out: int | None, seek: bool, time_limit_s: float | None
) -> Iterator[np.ndarray]:
    """Mono pieces (any length) of output samples [first_out, end_out) at ``rate`` Hz."""
    deadline = _deadline(time_limit_s)  # from the first next()
    try:
        yield from _span_pieces_once(path, rate, first_out, end_out, seek, deadline)
    except _Overshoot:
        log.debug("%s: seek overshot the start; decoding from the beginning", path)
        yield from _span_pieces_once(path, rate, first_out, end_out, False, deadline)


def _span_pieces_once(
    path: Path, rate: int, first_out: int, end_out: int | None, seek: bool, deadline: _Deadline | None
) -> Iterator[np.ndarray]:
    with _open(path, deadline) as (container, reader):
        stream = _audio_stream(container, path, reader)
        counts = _Counts()
        frames = _frames(container, stream, path, counts, reader)
        first = next(frames, None)
        origin = _frame_time(first)  # the output timeline starts at the first decoded sample
        if seek and origin is not None and _seek(container, stream, origin + Fraction(first_out, rate)):
            frames.close()
            frames = _frames(container, stream, path, counts, reader)
        else:
            seek = False
            frames = itertools.chain([first] if first is not None else [], frames)
        yield from _resampled_span(frames, rate, first_out, end_out, origin if seek else None)
        _check_counts(counts, path, seek)


def _frame_time(frame: av.AudioFrame | None) -> Fraction | None:
    """Time of the first sample of ``frame`` in stream seconds; None when unknown."""
    if frame is None or frame.pts is None or frame.time_base is None:
        return None
    return frame.pts * frame.time_base


def _seek(container: _Container, stream: _AudioStream, start: Fraction) -> bool:
    """Seek to a keyframe a little before ``start`` (stream seconds); False if not done.

    Containers whose timestamps are coarser than one sample (Matroska/WebM and ASF count
    milliseconds) cannot place a frame to the sample after a seek, so they are not
    sought: the span is found by decoding from the start (without resampling the part
    before it) and counting samples.
    """
    target = start - Fraction(_PREROLL_S)
    if stream.time_base is None or target <= (stream.start_time or 0) * stream.time_base:
        return False
    if not _sample_accurate_timestamps(stream):
        log.debug("%s timestamps are coarser than a sample: not seeking", container.format.name)
        return False
    try:
        container.seek(math.floor(target / stream.time_base), stream=stream, backward=True)
    except av.FFmpegError as exc:
        log.debug("seek failed (%s); decoding from the beginning", _ffmpeg_reason(exc))
        return False
    return True


def _sample_accurate_timestamps(stream: _AudioStream) -> bool:
    """True when the stream's timestamps can place a frame to the sample (so it can be sought)."""
    return stream.time_base is not None and stream.time_base * stream.codec_context.sample_rate <= 1


def _frames(
    container: _Container,
    stream: _AudioStream,
    path: Path,
    counts: _Counts,
    reader: _LimitedReader,
) -> Iterator[av.AudioFrame]:
    """Decoded frames; a packet the decoder rejects is skipped and counted.

    Raises AudioDecodeError when the time limit passes (checked at every packet, and when
    the demuxer stops: past the deadline, the reader ends the file early).
    """
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            reader.check_end(path)
            return
        except MemoryError:  # av.error.MemoryError is an FFmpegError too: never "end of file"
            raise
        except OSError as exc:  # includes av.error.* that are OS errors (EIO...)
            raise AudioDecodeError(_os_reason(exc), path) from None
        except av.FFmpegError as exc:  # a demuxer giving up on damaged data = end of file
            reader.check_end(path)
            log.debug("%s: demuxing stopped: %s", path, _ffmpeg_reason(exc))
            return
        reader.check(path)
        reader.packet()
        try:
            decoded = packet.decode()
        except MemoryError:
            raise
        except av.FFmpegError as exc:
            counts.bad_packets += 1
            log.debug("%s: skipped a bad packet at pts %s: %s", path, packet.pts, _ffmpeg_reason(exc))
            continue
        counts.frames += len(decoded)
        yield from decoded


def _check_counts(counts: _Counts, path: Path, seeked: bool) -> None:
    """Raise when nothing at all decoded; log skipped packets."""
    if counts.bad_packets:
        log.debug("%s: %d bad packets skipped", path, counts.bad_packets)
    if counts.frames == 0 and (counts.bad_packets or not seeked):
        raise AudioDecodeError("corrupt or truncated: no audio could be decoded", path)


def _resampled_span(
    frames: Iterator[av.AudioFrame],
    rate: int,
    first_out: int,
    end_out: int | None,
    origin: Fraction | None,
) -> Iterator[np.ndarray]:
    """Resample ``frames`` to mono ``rate`` Hz; keep output samples [first_out, end_out).

    Output sample m sits at m / rate seconds after ``origin``, the time of the first
    decodable sample. ``origin`` is None when ``frames`` start at the origin (no seek);
    after a seek the first frame is placed by its timestamp. Source samples are dropped
    before resampling, up to a point ``feed`` (in source samples) where feed * rate /
    source_rate is a whole number, so the resampler's output grid lines up with the
    whole-file grid exactly.
    """
    frame = next(frames, None)
    if frame is None:
        return
    src_rate = frame.sample_rate
    pos = 0 if origin is None else _source_position(frame, origin, src_rate)  # of frame's sample 0
    feed = _feed_point(pos, src_rate, rate, first_out)
    if feed * rate > first_out * src_rate and origin is not None:
        raise _Overshoot()
    out_pos = feed * rate // src_rate  # output index of the first resampled sample
    mixer = _MonoMixer(rate)
    while frame is not None:
        end = pos + frame.samples
        if end > feed:
            mixer.write(frame, skip=max(0, feed - pos))
            for piece in mixer.read():
                kept, out_pos = _trim(piece, out_pos, first_out, end_out)
                if kept is not None:
                    yield kept
                if end_out is not None and out_pos >= end_out:
                    return
        pos = end
        frame = next(frames, None)
    for piece in mixer.flush():
        kept, out_pos = _trim(piece, out_pos, first_out, end_out)
        if kept is not None:
            yield kept


def _source_position(frame: av.AudioFrame, origin: Fraction, src_rate: int) -> int:
    """Index (source samples after ``origin``) of the first sample of ``frame``."""
    time = _frame_time(frame)
    if time is None:
        raise _Overshoot()  # cannot place the frame after a seek: restart without seeking
    return round((time - origin) * src_rate)


def _feed_point(pos: int, src_rate: int, rate: int, first_out: int) -> int:
    """First source sample to resample: on the shared grid, a little before first_out."""
    step = src_rate // math.gcd(src_rate, rate)  # source samples per grid point
    warmup = round(_RESAMPLER_WARMUP_S * src_rate)
    start_src = first_out * src_rate // rate  # source sample at (or just before) first_out
    feed = (start_src - warmup) // step * step
    lowest = -(-max(pos, 0) // step) * step  # first grid point we have data for
    return max(feed, lowest)


def _trim(
    piece: np.ndarray, out_pos: int, first_out: int, end_out: int | None
) -> tuple[np.ndarray | None, int]:
    """The part of ``piece`` (starting at output index out_pos) inside [first_out, end_out)."""
    lo = max(0, first_out - out_pos)
    hi = len(piece) if end_out is None else min(len(piece), end_out - out_pos)
    kept = piece[lo:hi] if hi > lo else None
    return kept, out_pos + len(piece)


class _MonoMixer:
    """Source frames in, float32 mono at ``rate`` Hz out, in chunks of _CHUNK_SAMPLES.

    A FIFO gathers the decoder's small frames (1152 samples for MP3) into big chunks,
    so the per-call cost of the resampler and of numpy conversion is paid rarely.
    FFmpeg's swr does the down-mix and the resampling.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.fifo: av.AudioFifo | None = None
        self.resampler: av.AudioResampler | None = None
        self.pending: list[np.ndarray] = []  # output of a resampler replaced mid-stream

    def write(self, frame: av.AudioFrame, skip: int = 0) -> None:
        """Queue ``frame``, dropping its first ``skip`` samples."""
        if self.fifo is not None and not self._matches(frame):
            # The stream changed rate or layout mid-file: finish the old chain first.
            log.debug("audio format changed mid-stream to %s", frame.layout.name)
            self.pending.extend(self.flush())
        if self.fifo is None:
            self.fifo = av.AudioFifo()
            self.resampler = av.AudioResampler(
                format="fltp", layout="mono", rate=self.rate, options=_MIX_OPTIONS
            )
        frame.pts = None  # positions are counted by us; the FIFO would check them
        self.fifo.write(frame)
        if skip:
            self.fifo.read(skip)

    def read(self) -> Iterator[np.ndarray]:
        """Resampled output for every full chunk queued so far."""
        yield from self._take_pending()
        while self.fifo is not None and self.fifo.samples >= _CHUNK_SAMPLES:
            yield from self._resample(self.fifo.read(_CHUNK_SAMPLES))

    def flush(self) -> Iterator[np.ndarray]:
        """Everything still queued, then the resampler's tail; resets the chain."""
        yield from self._take_pending()
        if self.fifo is None:
            return
        if self.fifo.samples:
            yield from self._resample(self.fifo.read())
        yield from self._resample(None)
        self.fifo = self.resampler = None

    def _take_pending(self) -> Iterator[np.ndarray]:
        pending, self.pending = self.pending, []
        yield from pending

    def _matches(self, frame: av.AudioFrame) -> bool:
        fifo = self.fifo
        return (
            frame.sample_rate == fifo.sample_rate
            and frame.layout.name == fifo.layout.name
            and frame.format.name == fifo.format.name
        )

    def _resample(self, chunk: av.AudioFrame | None) -> Iterator[np.ndarray]:
        for out in self.resampler.resample(chunk):
            yield np.clip(out.to_ndarray()[0], -1.0, 1.0)


def _blocks(pieces: Iterator[np.ndarray], block_samples: int) -> Iterator[np.ndarray]:
    """Regroup ``pieces`` into float32 blocks of exactly block_samples (the last shorter)."""
    held: list[np.ndarray] = []
    held_n = 0
    for piece in pieces:
        held.append(piece)
        held_n += len(piece)
        if held_n >= block_samples:
            joined = np.concatenate(held)
            n_full = len(joined) // block_samples * block_samples
            yield from np.split(joined[:n_full], n_full // block_samples)
            held, held_n = [joined[n_full:]], len(joined) - n_full
    if held_n:
        yield held[0] if len(held) == 1 else np.concatenate(held)
