"""The dask and ray backends on a local cluster give the same report as local processes."""
from __future__ import annotations

import os

import mutagen
import pytest

from audio_helpers import noise, tone, write_audio
from tagger.backends import BackendError, worker_pool
from tagger.inference import Scorer
from tagger.scan import Scanner, ScanOptions


@pytest.fixture
def small_library(tmp_path):
    lib = tmp_path / "lib"
    write_audio(lib / "a.flac", tone(4.0, 220))
    write_audio(lib / "b.wav", noise(5.0))
    (lib / "c.mp3").write_bytes(b"not audio")
    return lib


def scan(model, lib, backend, **options):
    scanner = Scanner(Scorer.from_path(model), ScanOptions(jobs=2, backend=backend, **options))
    return [(r.path, r.status, r.error, r.segments, r.scores, r.tags) for r in scanner.scan([lib])]


@pytest.mark.parametrize("backend", ["dask", "ray"])
def test_cluster_backend_matches_local_and_writes_once(tiny_model, small_library, backend, monkeypatch):
    pytest.importorskip("distributed" if backend == "dask" else "ray")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    local = scan(tiny_model, small_library, "local")
    remote = scan(tiny_model, small_library, backend)
    assert [r[:4] for r in remote] == [r[:4] for r in local]
    for a, b in zip(local, remote):
        assert a[4] == pytest.approx(b[4], abs=1e-6)
    written = scan(tiny_model, small_library, backend, write_tags=True, threshold=0.0, top_k=2)
    assert [r[5] for r in written] == ["written", "written", ""]
    assert len(mutagen.File(small_library / "a.flac")["INSTRUMENTS"]) == 2
    assert not [p for p in os.listdir(small_library) if p.startswith(".")]


def test_unknown_backend_is_an_error():
    with pytest.raises(BackendError, match="unknown backend"):
        with worker_pool("spark", 2):
            pass


@pytest.mark.parametrize("jobs", [2])
def test_a_dead_worker_costs_only_its_own_task(jobs):
    from audio_helpers import crash_on_three

    with worker_pool("local", jobs) as pool:
        results = list(pool(crash_on_three, range(8), lambda item, exc: f"failed {item}"))
    assert results == [0, 10, 20, "failed 3", 40, 50, 60, 70]


def test_results_in_flight_are_bounded():
    submitted = []

    def submit(item):
        submitted.append(item)
        return item

    from tagger.backends import _in_order

    it = _in_order(submit, lambda f: f, range(100), window=4, on_error=None)
    assert next(it) == 0 and len(submitted) == 5  # 4 in flight, 1 refilled when one was taken
    assert list(it) == list(range(1, 100))
