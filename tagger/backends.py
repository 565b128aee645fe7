"""Where the decoding workers run: local processes, or an existing dask or ray cluster.

Only the workers move: they decode and segment; the driver still scores, and alone writes
the CSV and tags, so a task that an engine retries can never write twice. The engines are
optional extras, imported only when asked for:

- ``dask``: ``pip install 'tagger[dask]'``; connects to ``$DASK_SCHEDULER_ADDRESS`` when
  set (e.g. ``tcp://scheduler:8786``), else starts a local cluster of ``jobs`` processes.
- ``ray``: ``pip install 'tagger[ray]'``; connects to ``$RAY_ADDRESS`` when set (e.g.
  ``ray://head:10001`` or ``auto``), else starts a local ray with ``jobs`` CPUs.

Every worker needs tagger installed, at the same version, and read access to the files
at the same paths (a shared mount).

Ray's joblib backend cannot stream results, so on ray the tasks go through Ray's own API
(remote functions, a bounded window in flight, results taken in order); Ray retries a
task whose worker dies, and the driver still takes each result exactly once.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

import joblib

from .errors import TaggerError

log = logging.getLogger(__name__)
BACKENDS = ("local", "dask", "ray")


class BackendError(TaggerError):
    """A distributed engine was asked for but is not installed or not reachable."""


Mapper = Callable[[Callable, Iterable], Iterator]


@contextlib.contextmanager
def worker_pool(name: str, jobs: int) -> Iterator[Mapper]:
    """A function ``map(fn, items)`` that runs ``fn`` on ``name``'s workers, results in order.

    At most ``2 * jobs`` tasks are in flight, so results never pile up in memory.
    """
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "ray":
        with _ray(jobs):
            yield lambda fn, items: _ray_map(fn, items, 2 * jobs)
        return
    with _dask(jobs) if name == "dask" else contextlib.nullcontext():
        with joblib.Parallel(n_jobs=jobs, return_as="generator", pre_dispatch=f"{2 * jobs}") as parallel:
            yield lambda fn, items: parallel(joblib.delayed(fn)(item) for item in items)


@contextlib.contextmanager
def _dask(jobs: int) -> Iterator[None]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise BackendError("the dask backend needs: pip install 'tagger[dask]'") from None
    address = os.environ.get("DASK_SCHEDULER_ADDRESS")
    cluster = None
    if address:
        client = Client(address)
    else:
        logging.getLogger("distributed").setLevel(logging.WARNING)
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=":0")
        client = Client(cluster)
    log.info("dask: %s", client)
    try:
        with joblib.parallel_config(backend="dask"):
            yield
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def _ray(jobs: int) -> Iterator[None]:
    try:
        import ray
        from ray.util.joblib import register_ray
    except ImportError:
        raise BackendError("the ray backend needs: pip install 'tagger[ray]'") from None
    address = os.environ.get("RAY_ADDRESS")
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=None if address else jobs, include_dashboard=False, log_to_driver=False)
    register_ray()
    try:
        with joblib.parallel_config(backend="ray"):
            yield
    finally:
        if started:
            ray.shutdown()


def _ray_map(fn: Callable, items: Iterable, window: int) -> Iterator:
    import ray

    remote = ray.remote(max_retries=3)(_call)  # ray wants a plain function, not a partial
    fn_ref = ray.put(fn)
    todo = iter(items)
    in_flight = deque(remote.remote(fn_ref, item) for item in islice(todo, window))
    while in_flight:
        result = ray.get(in_flight.popleft())
        for item in islice(todo, 1):
            in_flight.append(remote.remote(fn_ref, item))
        yield result


def _call(fn: Callable, item: object) -> object:
    return fn(item)
