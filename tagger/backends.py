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
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import joblib

from .errors import TaggerError

log = logging.getLogger(__name__)
BACKENDS = ("local", "dask", "ray")


class BackendError(TaggerError):
    """A distributed engine was asked for but is not installed or not reachable."""


@contextlib.contextmanager
def worker_backend(name: str, jobs: int) -> Iterator[None]:
    """Run joblib work inside this block on ``name``'s workers."""
    if name == "local":
        yield
        return
    if name == "dask":
        with _dask(jobs):
            yield
        return
    if name == "ray":
        with _ray(jobs):
            yield
        return
    raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


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
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
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
