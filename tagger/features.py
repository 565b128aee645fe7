"""Log-Mel features of a whole dataset, computed once in worker processes and cached.

Training and evaluation read features from here; they are made by
:func:`tagger.frontend.logmel`, the code the scan's workers run on the CPU, so training
and inference share one frontend.
The cache is keyed by the frontend config, the segmenting settings and every file's
path, size and mtime, so a changed file or setting recomputes instead of going stale.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

from .datasets import Item
from .decode import decode
from .errors import TaggerError
from .frontend import FrontendConfig, logmel
from .segments import cut_segments, loudness_db, segment_starts
from .signals import ignore_interrupts

log = logging.getLogger(__name__)
CHUNK_ITEMS = 32  # items per worker task


@dataclass
class FeatureSet:
    features: np.ndarray  # (segments, n_mels, frames) float16
    item_index: np.ndarray  # (segments,) int: which item each segment comes from
    loudness: np.ndarray  # (segments,) dBFS
    failed: dict[int, str]  # item -> one-line reason it has no features


def _pick(starts: np.ndarray, max_segments: int | None) -> np.ndarray:
    if max_segments is None or len(starts) <= max_segments:
        return starts
    return starts[np.linspace(0, len(starts) - 1, max_segments).round().astype(int)]


def _chunk_features(
    chunk: Sequence[tuple[int, str]], frontend: FrontendConfig, hop_seconds: float, max_segments: int | None
) -> list[tuple[int, np.ndarray | None, np.ndarray | None, str]]:
    """Worker: decode and featurise some items; (item, features, loudness, error)."""
    seg_len = frontend.segment_samples
    hop = round(hop_seconds * frontend.sample_rate)
    out = []
    for index, path in chunk:
        try:
            audio = decode(Path(path), frontend.sample_rate)
            if len(audio) == 0:
                raise TaggerError("no audio in the file")
            segments = cut_segments(audio, _pick(segment_starts(len(audio), seg_len, hop, seg_len // 3), max_segments), seg_len)
            out.append((index, logmel(segments, frontend).astype(np.float16), loudness_db(segments), ""))
        except (TaggerError, OSError) as exc:
            out.append((index, None, None, str(exc)))
    return out


def _cache_key(items: Sequence[Item], frontend: FrontendConfig, hop_seconds: float, max_segments: int | None) -> str:
    h = hashlib.sha256(json.dumps([frontend.to_dict(), hop_seconds, max_segments], sort_keys=True).encode())
    for item in items:
        st = os.stat(item.path)
        h.update(f"{item.path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def compute_features(
    items: Sequence[Item],
    frontend: FrontendConfig,
    cache_dir: Path | None = None,
    jobs: int = -1,
    hop_seconds: float | None = None,
    max_segments: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> FeatureSet:
    """Features of every item's segments (all of them, or ``max_segments`` evenly spaced)."""
    hop_seconds = hop_seconds or frontend.segment_seconds
    cache_file = None
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache_file = cache_dir / f"features-{_cache_key(items, frontend, hop_seconds, max_segments)}.npz"
        if cache_file.exists():
            with np.load(cache_file, allow_pickle=False) as z:
                failed = dict(zip(z["failed_index"].tolist(), z["failed_reason"].tolist()))
                log.info("features from cache %s", cache_file)
                if progress:
                    progress(len(items))
                return FeatureSet(z["features"], z["item_index"], z["loudness"], failed)

    tasks = [(i, str(item.path)) for i, item in enumerate(items)]
    chunks = [tasks[i : i + CHUNK_ITEMS] for i in range(0, len(tasks), CHUNK_ITEMS)]
    feats, index, loud, failed = [], [], [], {}
    results = Parallel(n_jobs=jobs, return_as="generator", initializer=ignore_interrupts)(  # Ctrl-C is the driver's
        delayed(_chunk_features)(c, frontend, hop_seconds, max_segments) for c in chunks
    )
    for chunk_result in results:
        for i, f, l, err in chunk_result:
            if f is None:
                failed[i] = err
                log.warning("%s: %s", items[i].path, err)
                continue
            feats.append(f)
            loud.append(l)
            index.append(np.full(len(f), i, dtype=np.int64))
        if progress:
            progress(len(chunk_result))
    n_mels, n_frames = frontend.n_mels, frontend.n_frames
    fs = FeatureSet(
        np.concatenate(feats) if feats else np.zeros((0, n_mels, n_frames), np.float16),
        np.concatenate(index) if index else np.zeros(0, np.int64),
        np.concatenate(loud) if loud else np.zeros(0, np.float32),
        failed,
    )
    if cache_file is not None:
        tmp = cache_file.with_suffix(".tmp.npz")
        np.savez(
            tmp, features=fs.features, item_index=fs.item_index, loudness=fs.loudness,
            failed_index=np.array(list(failed), dtype=np.int64), failed_reason=np.array(list(failed.values()), dtype=str),
        )
        os.replace(tmp, cache_file)
    return fs


def concat_features(sets: Sequence[FeatureSet], sizes: Sequence[int]) -> FeatureSet:
    """One FeatureSet of several, whose items (``sizes[i]`` of them in set i) follow each other."""
    offsets = np.cumsum([0, *sizes[:-1]])
    return FeatureSet(
        np.concatenate([fs.features for fs in sets]),
        np.concatenate([fs.item_index + off for fs, off in zip(sets, offsets)]),
        np.concatenate([fs.loudness for fs in sets]),
        {i + int(off): reason for fs, off in zip(sets, offsets) for i, reason in fs.failed.items()},
    )


def compute_features_by_part(parts: Sequence[Sequence[Item]], frontend: FrontendConfig, cache_dir: Path | None = None,
                             jobs: int = -1, max_segments: int | None = None,
                             progress: Callable[[int], None] | None = None) -> FeatureSet:
    """Features of several item lists (e.g. one per dataset), each cached on its own, as one set.

    Adding a dataset to a training run then computes only that dataset's features.
    """
    sets = [compute_features(part, frontend, cache_dir, jobs, max_segments=max_segments, progress=progress)
            for part in parts]
    return concat_features(sets, [len(p) for p in parts])
