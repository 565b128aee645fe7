"""The scan: files -> decoded segments (worker processes) -> batched scores -> track results.

Worker processes (see :mod:`tagger.backends`) read each file's existing tags, decode it,
cut it into segments and, when the model runs on the CPU, compute their log-Mel features
(:func:`tagger.frontend.logmel`: features are eight times smaller than waveforms, and the
frontend then runs on the decoding cores, not on the model's); on a GPU they send the
waveforms and the frontend runs there. The driver batches segments across files for the
model, aggregates them per track, and alone writes tags. Long files are decoded in spans
of ``chunk_seconds`` so memory does not grow with a file's length. A quick pass
(``coverage`` < 1) decodes only evenly spread windows of each long file, sought, not
decoded to (see :mod:`tagger.coverage`). Results come out in discovery order.
"""
from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import __version__
from .aggregate import decision_thresholds, pick_labels, track_scores
from .backends import Mapper, TaskTimeout, worker_pool
from .coverage import WINDOW_SEGMENTS, plan_windows
from .decode import AudioInfo, OpenFile, decode, probe
from .discover import discover, file_problem, show_path
from .config import FrontendConfig
from .errors import AudioDecodeError, TaggerError, TagWriteError
from .frontend import logmel
from .identity import FileIdentity
from .segments import SILENCE_DB, cut_segments, loudness_db, segment_starts
from .tags import InstrumentTags, cleanup_leftovers, read_instruments, write_instruments
from .timeline import Timeline, activity, make_timeline
from .weights import Checkpoint, bundled_model_path, cpu_without_torch, load_tensors, read_header

if TYPE_CHECKING:  # workers import this module: keep torch out of them
    from .inference import Scorer

log = logging.getLogger(__name__)

MIN_SECONDS = 1.0  # shorter files are reported as too short to tag
PROBE_BYTES = 1 << 20  # larger files are probed, and decoded in spans when long (1 MB is 17 min at 8 kb/s)
WINDOW_FILES = 512  # files planned and dispatched at a time (bounds the driver's memory)
FILE_TIMEOUT_S = 120.0  # default limit on decoding one file (or one span of a long file)
FILE_MEMORY_MB = 2048  # default cap on a decoding process's address space (a worker needs ~300 MB)
# A worker stuck where it cannot check the time limit (in a C call) is killed this much later.
KILL_GRACE_S = 30.0


@dataclass
class ScanOptions:
    write_tags: bool = False
    force: bool = False
    threshold: float | None = None
    top_k: int | None = None
    hop_seconds: float | None = None  # default: the segment length (no overlap)
    jobs: int = 0  # decoding processes; 0 = one per core
    chunk_seconds: float = 600.0
    backend: str = "local"
    # Per-file limits (None: none). The time limit holds for each span of a long file.
    file_timeout: float | None = FILE_TIMEOUT_S
    file_memory_mb: int | None = FILE_MEMORY_MB  # per local decoding process (jobs > 1)
    # Quick pass: decode and score only evenly spread windows covering about this fraction
    # of each long track (see tagger.coverage); 1.0 scans everything.
    coverage: float = 1.0
    window_segments: int = WINDOW_SEGMENTS  # segments per window when coverage < 1


@dataclass
class TrackResult:
    """One row of the report."""

    path: Path
    status: str  # ok | skipped | error
    error: str = ""
    duration_s: float = 0.0
    segments: int = 0
    scores: dict[str, float] = field(default_factory=dict)  # label -> track score
    instruments: list[tuple[str, float]] = field(default_factory=list)  # ranked (label, score)
    model: str = ""
    # What this run did with the file's tags: dry-run (nothing written, whatever an earlier
    # run wrote), written (the file holds these instruments: written by this run, or by an
    # earlier one when the result comes from the cache), kept (a user's own tag left as it
    # was; the analysis is in the row all the same), "" on an error.
    tags: str = ""
    previous_instruments: list[str] = field(default_factory=list)
    # Where the instruments play (None for an error or a kept file): every scored segment
    # with its start, end, loudness and scores, and per label the time ranges it is active.
    timeline: Timeline | None = None
    activity: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    # Share of the track decoded and scored: 1.0 for a whole file; with ScanOptions.coverage
    # < 1, the windows' share of a long track (at least the coverage asked for).
    coverage: float = 1.0

    @property
    def segment_scores(self) -> np.ndarray | None:
        """(segments, labels) scores in [0, 1], or None; times are in :attr:`timeline`."""
        return None if self.timeline is None else self.timeline.scores


@dataclass(frozen=True)
class _Task:
    file_id: int
    path: str
    chunk: int
    start_s: float
    span_s: float | None  # None: to the end of the file
    last: bool


@dataclass(frozen=True)
class _Windows:
    """A quick pass's task: windows of one file (plain span tasks, ascending), decoded from one open."""

    tasks: tuple[_Task, ...]


@dataclass
class _Loaded:
    file_id: int
    chunk: int
    last: bool
    # The model's inputs: log-Mel features (n, n_mels, frames) when the worker ran the
    # frontend, else waveform segments (n, samples); float32.
    inputs: np.ndarray | None = None
    loudness: np.ndarray | None = None  # (n,) dBFS
    starts_s: np.ndarray | None = None  # (n,) segment starts, seconds from the start of the file
    n_samples: int = 0  # samples this span owns (for the duration)
    previous: list[str] = field(default_factory=list)
    users_tag: bool = False
    error: str = ""
    # The file as the worker opened it (FileIdentity.portable), checked against the
    # identity the driver took before sending the task.
    identity: tuple[int, int, int] | None = None


@dataclass
class _FileState:
    path: Path
    loaded_last: bool = False
    n_samples: int = 0
    scores: list[np.ndarray] = field(default_factory=list)
    loudness: list[np.ndarray] = field(default_factory=list)
    starts_s: list[np.ndarray] = field(default_factory=list)
    unscored: int = 0  # segments waiting in the batch buffer
    previous: list[str] = field(default_factory=list)
    users_tag: bool = False
    error: str = ""
    cached: TrackResult | None = None  # an unchanged file's stored result
    coverage: float = 1.0  # share of the file in windows (1.0: the whole file)
    # Windows only: each window's first sample. The last is decoded to the end of the file,
    # so the file ends where the last window that decoded anything ends (the windows'
    # samples do not add up to the duration).
    window_starts: tuple[int, ...] | None = None
    # The file as it was scanned (taken before its first span is sent to a worker, or
    # before its cached result is looked up), and once its tags are written, as written:
    # tags are written, and the result stored in the cache, only against it (None: the
    # file could not be read). ``refreshed``: a cached result whose tags this run wrote
    # (or found kept), to store again.
    identity: FileIdentity | None = None
    refreshed: bool = False


class ScorerInBackground:
    """A :class:`tagger.inference.Scorer` that loads in a thread while the scan gets going.

    Importing torch and building the network take a second or two. The scanner needs only
    the weights' header (configs, labels, version; read without torch) to start decoding,
    so that is here at once. The model starts loading when :meth:`start` is called (the
    scanner calls it once some file needs scoring: a run whose files all come from the
    cache never loads it), and the first :meth:`score` waits for it. A failure to load
    (weights that do not fit their config, say) is raised by that first call.
    """

    def __init__(self, path: str | Path | None = None, device: str = "auto", batch_size: int = 256,
                 header: Checkpoint | None = None) -> None:
        """``header``: the file's :func:`tagger.weights.read_header`, when already read (and checked)."""
        path = Path(path) if path else bundled_model_path()
        self.checkpoint = header or read_header(path)  # a bad file fails here, before anything starts
        self.device = device
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._threads: int | None = None  # asked for before the model was there
        self._scorer: Scorer | None = None
        self._path = path
        self._future: Future[Scorer] | None = None

    def start(self) -> None:
        """Start loading the model in a thread, if not yet started."""
        with self._lock:
            if self._future is not None:
                return
            loader = ThreadPoolExecutor(1, thread_name_prefix="tagger-model")
            self._future = loader.submit(self._load, self._path, self.device, self.batch_size)
            loader.shutdown(wait=False)

    @property
    def started(self) -> bool:
        """True once the model has been asked for (it may still be loading)."""
        return self._future is not None

    def _load(self, path: Path, device: str, batch_size: int) -> Scorer:
        from .inference import Scorer

        scorer = Scorer(load_tensors(self.checkpoint, path), device, batch_size)  # same digest, or refused
        with self._lock:
            if self._threads is not None:
                scorer.set_threads(self._threads)
            self._scorer = scorer
        return scorer

    @property
    def labels(self) -> tuple[str, ...]:
        return self.checkpoint.labels

    @property
    def frontend_in_workers(self) -> bool:
        """As :attr:`Scorer.frontend_in_workers`; waits for the model only when a GPU may be there."""
        return cpu_without_torch(self.device) or self.result().frontend_in_workers

    def result(self) -> Scorer:
        """The loaded scorer; starts loading it if need be, and waits for it."""
        self.start()
        return self._future.result()

    def set_threads(self, n: int) -> int | None:
        """As :meth:`Scorer.set_threads`; before the model is there, kept for it (returns None)."""
        with self._lock:
            if self._scorer is None:
                self._threads = n
                return None
        return self._scorer.set_threads(n)

    def score(self, segments: np.ndarray) -> np.ndarray:
        return self.result().score(segments)

    def score_features(self, features: np.ndarray) -> np.ndarray:
        return self.result().score_features(features)


def load_span(
    task: _Task | _Windows, sample_rate: int, seg_len: int, hop: int,
    time_limit_s: float | None = None, memory_mb: int | None = None, frontend: FrontendConfig | None = None,
    decoder: Callable[..., np.ndarray] | None = None,
) -> _Loaded | list[_Loaded]:
    """Worker: read tags (first span), decode one span and cut it into segments.

    A file with a user's own instruments tag is decoded too: a run that keeps the tag
    still reports the file's analysis.

    With ``frontend``, the segments' log-Mel features are returned instead of waveforms.
    ``time_limit_s`` bounds the decode; ``memory_mb`` is only named in the reason when
    memory runs out (the cap itself is set on the worker process, see backends).
    ``decoder`` decodes the span (:func:`decode`'s signature; None: ``decode``). A quick
    pass's windows give one result per window, see :func:`load_windows`.
    """
    if isinstance(task, _Windows):
        return load_windows(task, sample_rate, seg_len, hop, time_limit_s, memory_mb, frontend)
    out = _Loaded(task.file_id, task.chunk, task.last)
    path = Path(task.path)
    try:
        problem = file_problem(path)  # before anything opens it: a FIFO blocks, a device never ends
        if problem:
            raise AudioDecodeError(problem, path)
        out.identity = FileIdentity.of_path(path).portable  # what is decoded is this file
        if task.chunk == 0:
            try:
                existing = read_instruments(path)
                out.previous, out.users_tag = existing.instruments, existing.is_users
            except TagWriteError:
                pass  # no tags we can read: nothing to keep, nothing to undo
        overlap = (seg_len - hop) / sample_rate if seg_len > hop else 0.0
        span = None if task.last else task.span_s + overlap
        audio = (decoder or decode)(path, sample_rate, task.start_s, span, time_limit_s=time_limit_s)
        if task.last:
            if task.chunk == 0 and len(audio) < MIN_SECONDS * sample_rate:
                raise TaggerError(f"too short to tag ({len(audio) / sample_rate:.2f} s; at least {MIN_SECONDS:g} s needed)")
            starts = segment_starts(len(audio), seg_len, hop, seg_len // 3)
            out.n_samples = len(audio)
        else:
            owned = round(task.span_s * sample_rate)
            starts = np.arange(0, owned, hop, dtype=np.int64)
            starts = starts[starts + seg_len <= len(audio)]
            out.n_samples = min(owned, len(audio))
        if len(starts):
            segments = cut_segments(audio, starts, seg_len)
            out.loudness = loudness_db(segments)
            out.starts_s = task.start_s + starts / sample_rate
            out.inputs = segments if frontend is None else logmel(segments, frontend)
    except TaggerError as exc:
        out.error = str(exc)
    except MemoryError:
        out = _Loaded(task.file_id, task.chunk, task.last)  # let go of what was decoded
        limit = f"the per-file memory limit ({memory_mb} MB)" if memory_mb else "the memory available"
        out.error = f"decoding needed more than {limit}"
    except Exception as exc:  # a decoder bug must cost one file, not the run
        log.debug("unexpected error on %s", path, exc_info=True)
        out.error = f"unexpected {type(exc).__name__}: {exc}"
    return out


def load_windows(
    windows: _Windows, sample_rate: int, seg_len: int, hop: int,
    time_limit_s: float | None = None, memory_mb: int | None = None, frontend: FrontendConfig | None = None,
) -> list[_Loaded]:
    """Worker, quick pass: :func:`load_span` on each window, the file opened once for all.

    Opening the file for each window would make FFmpeg read an MP3's packet headers from
    the start up to every window (see :class:`tagger.decode.OpenFile`). ``time_limit_s``
    holds for all the windows together. Stops after a window that failed (the file is
    done with).
    """
    first = windows.tasks[0]
    out = []
    with OpenFile(Path(first.path), sample_rate, time_limit_s) as opened:
        for task in windows.tasks:
            loaded = load_span(task, sample_rate, seg_len, hop, time_limit_s, memory_mb,
                               frontend, decoder=opened.decode)
            if loaded.n_samples == 0 and not loaded.error:  # past the end (a truncated file): no padded segment
                loaded = _Loaded(task.file_id, task.chunk, task.last, previous=loaded.previous, users_tag=loaded.users_tag)
            out.append(loaded)
            if loaded.error:
                break
    return out


def _flat(results: Iterable[_Loaded | list[_Loaded]]) -> Iterator[_Loaded]:
    for result in results:
        yield from result if isinstance(result, list) else (result,)


def _worker_failed(task: _Task | _Windows, exc: BaseException) -> _Loaded:
    """The result of a span whose worker process died twice (e.g. a decoder crash), or was stuck."""
    if isinstance(task, _Windows):
        task = replace(task.tasks[0], last=task.tasks[-1].last)
    if isinstance(exc, TaskTimeout):
        error = f"took longer than the per-file time limit; its decoder process was stopped after {exc.seconds:g} s"
    else:
        error = f"decoder process crashed ({type(exc).__name__})"
    return _Loaded(task.file_id, task.chunk, task.last, error=error)


def _failed(states: dict[int, _FileState], file_id: int) -> bool:
    """True when the file is done with (its row is out) or has failed."""
    st = states.get(file_id)
    return st is None or bool(st.error)


def _replaced(planned: FileIdentity | None, opened: tuple[int, int, int] | None) -> bool:
    """True when the file a worker opened is not the one the driver planned (replaced or changed)."""
    return planned is not None and opened is not None and opened != planned.portable


def _cache_identity(identity: FileIdentity | None) -> tuple[int, int] | None:
    """What the resume cache keys a result on: ``(size, mtime_ns)``."""
    return None if identity is None else (identity.size, identity.mtime_ns)


def _identity(path: Path) -> FileIdentity | None:
    try:
        return FileIdentity.of_path(path)
    except OSError:
        return None  # the decode (or the tag write) will say what is wrong


def _batched(iterable: Iterable, n: int) -> Iterator[list]:
    it = iter(iterable)
    while chunk := list(islice(it, n)):
        yield chunk


class Scanner:
    """Tag a library: ``for result in Scanner(scorer, options).scan(paths): ...``."""

    def __init__(self, scorer: Scorer | ScorerInBackground, options: ScanOptions | None = None, cache=None) -> None:
        """``cache``: a :class:`tagger.cache.ResultCache` to skip unchanged files, or None."""
        self.scorer = scorer
        self.options = options or ScanOptions()
        self.cache = cache
        ckpt = scorer.checkpoint
        self.sample_rate = ckpt.frontend.sample_rate
        self.seg_len = ckpt.frontend.segment_samples
        hop_s = self.options.hop_seconds or ckpt.frontend.segment_seconds
        self.hop = round(hop_s * self.sample_rate)
        if not 0 < self.hop <= self.seg_len:
            raise ValueError(f"hop must be in (0, {ckpt.frontend.segment_seconds}] seconds")
        if not 0 < self.options.coverage <= 1:  # NaN too
            raise ValueError(f"coverage must be in (0, 1], a share of each track (e.g. 0.3), not {self.options.coverage:g}")
        if self.options.window_segments < 1:
            raise ValueError(f"window_segments must be at least 1, not {self.options.window_segments}")
        self.source = f"tagger {__version__} {ckpt.version}"

    @property
    def keeps_users_tags(self) -> bool:
        """A user's own instruments tag is kept (not written over) when writing without --force."""
        return self.options.write_tags and not self.options.force

    @property
    def result_key(self) -> str:
        """What a stored result must have been made with to be reused."""
        o = self.options
        key = f"{self.scorer.checkpoint.version}|threshold={o.threshold}|top_k={o.top_k}|hop={self.hop}"
        if o.coverage < 1:  # a quick pass never stands in for a full scan (whose key is as it always was)
            key += f"|coverage={o.coverage!r}x{o.window_segments}"
        return key

    # -- planning

    def _plan(self, file_id: int, path: Path) -> list[_Task]:
        """One task per file, or spans of ``chunk_seconds`` for a large, long file."""
        try:
            big = os.stat(path).st_size > PROBE_BYTES
        except OSError:
            big = False  # the decode will say what is wrong
        info = self._probe(path) if big else None
        return self._spans(file_id, path, info.duration_s if info else None)

    def _probe(self, path: Path) -> AudioInfo | None:
        """What the container says about the file's audio; None when it cannot be read."""
        try:
            return probe(path, self.options.file_timeout)
        except (TaggerError, OSError, MemoryError):
            return None  # the decode will say what is wrong

    def _spans(self, file_id: int, path: Path, duration: float | None) -> list[_Task]:
        """One task for the file, or spans of ``chunk_seconds`` when it is known to be long."""
        chunk_s = self.options.chunk_seconds
        chunk_s = max(self.hop / self.sample_rate, round(chunk_s * self.sample_rate / self.hop) * self.hop / self.sample_rate)
        if not duration or duration <= 1.5 * chunk_s:
            return [_Task(file_id, str(path), 0, 0.0, None, True)]
        n = int(duration // chunk_s)
        return [_Task(file_id, str(path), k, k * chunk_s, None if k == n else chunk_s, k == n) for k in range(n + 1)]

    def _plan_file(self, st: _FileState, file_id: int, path: Path) -> list[_Task | _Windows]:
        """:meth:`_plan`, or with ``coverage`` < 1 the windows of a long enough file.

        Every file is probed then; a file whose duration is unknown, or that cannot be
        sought to the sample (Matroska, ASF), is scanned whole. To the worker a window is a
        plain span owning the starts of its ``window_segments`` segments (it decodes the
        overlap a longer segment needs past them); the last one runs to the end of the
        file. Windows go out in groups decoded from one open of the file, at most
        ``chunk_seconds`` of audio each (bounding a task's memory and time as spans do).
        The windows' share and starts are kept in ``st``: the file's duration is where the
        last window that decoded anything ends.
        """
        st.identity = _identity(path)  # before any worker reads it
        o = self.options
        if o.coverage >= 1:
            return self._plan(file_id, path)
        info = self._probe(path)
        duration = info.duration_s if info else None
        rate = self.sample_rate
        windows = (plan_windows(round(duration * rate), o.coverage, self.seg_len, self.hop, o.window_segments)
                   if duration and info.seekable else None)
        if windows is None:
            return self._spans(file_id, path, duration)
        st.coverage, st.window_starts = windows.share, windows.starts
        last = len(windows.starts) - 1
        span_s = o.window_segments * self.hop / rate
        tasks = [_Task(file_id, str(path), k, start / rate, None if k == last else span_s, k == last)
                 for k, start in enumerate(windows.starts)]
        per_group = max(1, int(o.chunk_seconds * rate // windows.length))
        return [_Windows(tuple(tasks[i : i + per_group])) for i in range(0, len(tasks), per_group)]

    # -- the run

    def scan(self, paths: Iterable[str | Path]) -> Iterator[TrackResult]:
        """Yield one :class:`TrackResult` per audio file found under ``paths``, in order."""
        return self.scan_files(list(discover(paths)))

    def scan_files(self, files: Sequence[Path]) -> Iterator[TrackResult]:
        """Like :meth:`scan` for an explicit list of files."""
        if self.options.write_tags:
            for folder in sorted({f.parent for f in files}):
                for leftover in cleanup_leftovers(folder):
                    log.warning("removed %s, left by an interrupted run", show_path(leftover))
        cpus = os.cpu_count() or 1
        jobs = self.options.jobs or cpus
        # Local decoding processes take cores from the model: give it what is left.
        local_workers = jobs if self.options.backend == "local" and jobs > 1 else 0
        previous = self.scorer.set_threads(cpus - local_workers)
        o = self.options
        timeout = None if o.file_timeout is None else o.file_timeout + KILL_GRACE_S
        try:
            with worker_pool(o.backend, jobs, memory_mb=o.file_memory_mb, task_timeout_s=timeout) as pool:
                for i, window in enumerate(_batched(files, WINDOW_FILES)):
                    yield from self._scan_window(pool, i * WINDOW_FILES, window)
        finally:
            if previous is not None:
                self.scorer.set_threads(previous)

    def _scan_window(self, pool: Mapper, offset: int, files: list[Path]) -> Iterator[TrackResult]:
        states = {offset + i: _FileState(path) for i, path in enumerate(files)}
        for st in states.values():
            # Checked here too, not only in the worker: a path like /dev/fd/63 (bash's
            # <(...)) names another file, or none, in a worker process.
            st.error = file_problem(st.path) or ""
        if self.cache is not None and not self.options.force:
            for st in states.values():
                if not st.error:
                    st.identity = _identity(st.path)  # a cached result's tags are written against it
                    st.cached = self.cache.get(st.path, _cache_identity(st.identity))
        todo = [(i, st.path) for i, st in states.items() if st.cached is None and not st.error]
        if todo:  # only now is the model needed: a window of cached files never loads it
            start = getattr(self.scorer, "start", None)  # a ScorerInBackground; a Scorer is loaded
            if start is not None:
                start()
        # On the CPU the workers run the frontend (asked once per window: a GPU may still be loading).
        in_workers = bool(todo) and self.scorer.frontend_in_workers
        score = self.scorer.score_features if in_workers else self.scorer.score
        # Planned (probed) as workers free up; the spans of a file that already failed are dropped.
        tasks = (task for i, path in todo for task in self._plan_file(states[i], i, path) if not _failed(states, i))
        order = deque(states)
        buffer: list[tuple[int, np.ndarray]] = []
        buffered = 0

        def flush() -> None:
            nonlocal buffered
            if not buffer:
                return
            scores = score(np.concatenate([segs for _, segs in buffer]))
            at = 0
            for file_id, segs in buffer:
                st = states.get(file_id)  # gone when the file failed in a later span
                if st is not None and not st.error:
                    st.scores.append(scores[at : at + len(segs)])
                    st.unscored -= len(segs)
                at += len(segs)
            buffer.clear()
            buffered = 0

        def ready() -> Iterator[TrackResult]:
            while order:
                st = states[order[0]]
                if not (st.cached or st.error or (st.loaded_last and st.unscored == 0)):
                    return
                result = self._finish(states.pop(order.popleft()))
                if self.cache is not None and (st.cached is None or st.refreshed):
                    self.cache.put(result, _cache_identity(st.identity))  # the file scanned (or written), not as it is now
                yield result

        results = pool(
            partial(load_span, sample_rate=self.sample_rate, seg_len=self.seg_len, hop=self.hop,
                    time_limit_s=self.options.file_timeout,
                    memory_mb=self.options.file_memory_mb, frontend=self.scorer.checkpoint.frontend if in_workers else None),
            tasks,
            _worker_failed,
        )
        for loaded in _flat(results):
            st = states.get(loaded.file_id)
            if st is None or st.error:
                continue  # a later span of a file that already failed
            if loaded.chunk == 0:
                st.previous, st.users_tag = loaded.previous, loaded.users_tag
            st.error = loaded.error
            if not st.error and _replaced(st.identity, loaded.identity):
                st.error = "file changed while it was scanned"
            st.loaded_last = loaded.last
            if st.window_starts is None:
                st.n_samples += loaded.n_samples
            elif loaded.n_samples:  # coverage windows: where the file ends, as far as decoded
                st.n_samples = st.window_starts[loaded.chunk] + loaded.n_samples
            if loaded.inputs is not None and not st.error:
                st.loudness.append(loaded.loudness)
                st.starts_s.append(loaded.starts_s)
                st.unscored += len(loaded.inputs)
                buffer.append((loaded.file_id, loaded.inputs))
                buffered += len(loaded.inputs)
                if buffered >= self.scorer.batch_size:
                    flush()
            if st.error:
                st.unscored = 0  # its buffered segments are scored but ignored
            yield from ready()
        flush()
        yield from ready()

    def _finish(self, st: _FileState) -> TrackResult:
        """Aggregate a file's scores, write its tags when asked, and make its row."""
        if st.cached is not None:
            return self._finish_cached(st)
        result = TrackResult(
            st.path, "ok", duration_s=st.n_samples / self.sample_rate, model=self.scorer.checkpoint.version,
            previous_instruments=st.previous, coverage=round(st.coverage, 3),
        )
        if st.error:
            result.status, result.error = "error", st.error
            return result
        labels = self.scorer.labels
        seg_scores = np.concatenate(st.scores) if st.scores else np.zeros((0, len(labels)), np.float32)
        loudness = np.concatenate(st.loudness) if st.loudness else np.zeros(0, np.float32)
        ckpt = self.scorer.checkpoint
        audible = loudness > SILENCE_DB
        scores = track_scores(seg_scores, audible, ckpt.aggregation["top_fraction"])
        result.segments = int(len(seg_scores))
        result.scores = {label: float(s) for label, s in zip(labels, scores)}
        held_to = decision_thresholds(ckpt.thresholds, ckpt.aggregation, int(audible.sum()))
        result.instruments = pick_labels(scores, labels, held_to, self.options.threshold, self.options.top_k)
        starts = np.concatenate(st.starts_s) if st.starts_s else np.zeros(0)
        result.timeline = make_timeline(starts, ckpt.frontend.segment_seconds, result.duration_s, loudness, seg_scores, labels)
        result.activity = activity(result.timeline, ckpt.thresholds, self.options.threshold)
        self._tag(st, result, st.users_tag)
        return result

    def _finish_cached(self, st: _FileState) -> TrackResult:
        """The row of a file whose result comes from the cache (status ``skipped``).

        Its ``tags`` say what this run did: ``dry-run`` in a dry run (whatever an earlier
        run wrote); in a ``--write-tags`` run ``written`` or ``kept`` as the file holds them,
        and a result stored by a dry run has its tags written now, without decoding.
        """
        result = st.cached
        if not self.options.write_tags:
            result.tags = "dry-run"
            return result
        if result.tags in ("written", "kept"):
            return result  # the file is unchanged since then: it holds what the row says
        try:
            existing = read_instruments(st.path)
        except TagWriteError as exc:
            result.status, result.error, result.tags = "error", f"could not write tags: {exc}", ""
            return result
        result.previous_instruments = existing.instruments
        self._tag(st, result, existing.is_users)
        st.refreshed = result.status != "error"
        return result

    def _tag(self, st: _FileState, result: TrackResult, users_tag: bool) -> None:
        """Write ``result``'s tags into its file when asked, and say so in ``result.tags``;
        a user's own tag is kept (without --force), the analysis stays in the row."""
        if not self.options.write_tags:
            result.tags = "dry-run"
            return
        if users_tag and self.keeps_users_tags:
            result.tags = "kept"
            return
        tags = InstrumentTags(
            [label for label, _ in result.instruments],
            {label: round(score, 3) for label, score in result.instruments},
            self.source,
        )
        try:
            st.identity = write_instruments(st.path, tags, expected=st.identity)  # the cache ties the result to the written file
            result.tags = "written"
        except TagWriteError as exc:
            result.status, result.error, result.tags = "error", f"could not write tags: {exc}", ""
        except Exception as exc:  # a bug in a tag writer must cost one file, not the run
            log.debug("unexpected error writing tags to %s", st.path, exc_info=True)
            result.status, result.error, result.tags = "error", f"could not write tags: unexpected {type(exc).__name__}: {exc}", ""
