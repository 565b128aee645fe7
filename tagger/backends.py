"""Where the decoding workers run: local processes, or an existing dask or ray cluster.

Only the workers move: they decode and segment; the driver still scores, and alone writes
the CSV and tags, so a task that an engine retries can never write twice. The engines are
optional extras, imported only when asked for:

- ``dask``: the ``dask`` extra (``pip install 'dask[distributed]'``); connects to ``$DASK_SCHEDULER_ADDRESS`` when
  set (e.g. ``tcp://scheduler:8786``), else starts a local cluster of ``jobs`` processes.
- ``ray``: the ``ray`` extra (``pip install ray``); connects to ``$RAY_ADDRESS`` when set (e.g.
  ``ray://head:10001`` or ``auto``), else starts a local ray with ``jobs`` CPUs.

Every worker needs tagger installed, at the same version, and read access to the files
at the same paths (a shared mount).

Each backend is used through its own futures API (a process pool, dask's
``client.submit``, ray's remote functions) with one bounded in-order window on top; the
engines retry a task whose worker dies, and the driver still takes each result once.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from itertools import islice

from .errors import TaggerError
from .signals import ignore_interrupts, signals_held

log = logging.getLogger(__name__)
BACKENDS = ("local", "dask", "ray")


class BackendError(TaggerError):
    """A distributed engine was asked for but is not installed or not reachable."""


Mapper = Callable[[Callable, Iterable, Callable[[object, BaseException], object]], Iterator]


class TaskTimeout(TimeoutError):
    """A task ran past its time limit and its worker processes were stopped (``seconds``)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no result after {seconds:g} s")
        self.seconds = seconds


@contextlib.contextmanager
def worker_pool(name: str, jobs: int, memory_mb: int | None = None, task_timeout_s: float | None = None) -> Iterator[Mapper]:
    """A function ``map(fn, items, on_error)`` running ``fn`` on ``name``'s workers, results in order.

    At most ``2 * jobs`` tasks are submitted and not yet taken by the caller, so results
    never pile up in memory when the caller (the model) is slower than the workers. A
    task whose worker died (a decoder crash takes its process with it) is retried once,
    alone; if it fails again, ``on_error(item, exception)`` stands in for its result.
    ``jobs == 1`` on the local backend runs everything in this process.

    Limits, for local worker processes only (``jobs > 1``): ``memory_mb`` caps each
    worker's address space (RLIMIT_AS: an allocation past it fails with MemoryError),
    and a task whose result has not come ``task_timeout_s`` seconds after the caller
    started waiting for it has its workers killed (the other tasks they held are retried)
    and ``on_error(item, TaskTimeout)`` stands in for its result, without a retry. This
    is a last resort for a worker stuck where it cannot check a time limit itself.
    """
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    window = 2 * jobs
    if name == "ray":
        with _ray(jobs):
            import ray

            def ray_map(fn: Callable, items: Iterable, on_error: Callable) -> Iterator:
                remote = ray.remote(max_retries=3)(_call)  # ray wants a plain function, not a partial
                fn_ref = ray.put(fn)
                return _in_order(lambda item: remote.remote(fn_ref, item), ray.get, items, window, on_error)

            yield ray_map
        return
    if name == "dask":
        with _dask(jobs) as client:
            yield lambda fn, items, on_error: _in_order(
                lambda item: client.submit(fn, item, pure=False), lambda f: f.result(), items, window, on_error
            )
        return
    if jobs == 1:
        yield lambda fn, items, on_error: map(fn, items)
        return
    with _LocalPool(jobs, memory_mb) as pool:
        yield lambda fn, items, on_error: _in_order(
            partial(pool.submit, fn), lambda f, timeout=None: f.result(timeout), items, window, on_error,
            task_timeout_s, pool.kill,
        )


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_POLL_S = 1.0  # how often a worker checks that its driver is still there


def _die_with_parent(parent: int) -> None:
    """Worker initializer: end this worker when the driver ends, however it ends (kill -9 too).

    Left alone, a worker whose driver was killed waits on its task queue forever, and the
    multiprocessing resource tracker with it. On Linux the kernel kills the worker when its
    parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``); everywhere, a daemon thread also
    checks every second that the parent is still the driver.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError) as exc:  # pragma: no cover - the thread below still works
            log.debug("prctl(PR_SET_PDEATHSIG) failed: %s", exc)
    if os.getppid() != parent:  # the driver died before we could ask
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="tagger-parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:  # re-parented: the driver is gone
            os._exit(1)


class _LocalPool:
    """Worker processes (spawned: the driver's threads and torch state stay out of them).

    A worker that dies breaks a ProcessPoolExecutor for good; the next submit then starts
    a fresh one, so the tasks after a crash still run. Workers end with the driver (see
    :func:`_die_with_parent`).
    """

    def __init__(self, jobs: int, memory_mb: int | None = None) -> None:
        self.jobs = jobs
        self.memory_mb = memory_mb
        self.executor = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
            initargs=(os.getpid(), self.memory_mb),
        )

    def kill(self) -> None:
        """Kill the worker processes now (a task is stuck) and start new ones.

        The tasks the old workers held fail (BrokenProcessPool, or cancelled), so the
        caller retries them.
        """
        old, self.executor = self.executor, self._new()
        for process in list((getattr(old, "_processes", None) or {}).values()):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                process.kill()
        old.shutdown(wait=False, cancel_futures=True)

    def submit(self, fn: Callable, item: object) -> Future:
        with signals_held():  # a submit may start worker processes: Ctrl-C is not theirs to see
            try:
                return self.executor.submit(fn, item)
            except BrokenProcessPool:
                self.executor.shutdown(wait=False, cancel_futures=True)
                self.executor = self._new()
                return self.executor.submit(fn, item)

    def stop(self) -> None:
        """Stop at once (an interrupt, or the caller gave up): kill the workers, wait for no task.

        Waiting would take as long as the slowest file being decoded, and could take for
        ever: a worker killed while sending a result leaves half of it in the result pipe
        (and may hold the queue's lock). So the workers are killed and reaped, and the
        driver's end of that pipe is closed too, so the executor's thread reading it meets
        the end of the pipe instead of waiting for the rest.
        """
        executor = self.executor
        processes = list((getattr(executor, "_processes", None) or {}).values())
        for process in processes:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                process.kill()
        for process in processes:
            with contextlib.suppress(OSError, ValueError, AttributeError, AssertionError):
                process.join(STOP_JOIN_S)
        with contextlib.suppress(OSError, AttributeError):
            executor._result_queue._writer.close()
        with contextlib.suppress(Exception):  # e.g. interrupted while its thread was being started
            executor.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> _LocalPool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.executor.shutdown(wait=True, cancel_futures=True)
        else:  # Ctrl-C, SIGTERM, the caller stopped early (GeneratorExit) or failed
            self.stop()


STOP_JOIN_S = 5.0  # a killed worker is gone within this; not waiting longer keeps an interrupt quick


def _init_worker(parent: int, memory_mb: int | None) -> None:
    """Worker initializer: leave Ctrl-C to the driver, end with it, keep to ``memory_mb`` and to one BLAS thread.

    Each worker is one of ``jobs`` processes sharing the cores with the model: the frontend's
    mel projection (a matrix product) must not start a thread per core in every worker.
    """
    ignore_interrupts()
    _die_with_parent(parent)
    _limit_memory(memory_mb)
    import numpy  # noqa: F401  (loads the BLAS library whose threads are limited next)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _limit_memory(memory_mb: int | None) -> None:
    """Worker initializer: cap this process's address space at ``memory_mb`` MB (None: no cap)."""
    if memory_mb is None:
        return
    import resource

    size = int(memory_mb) << 20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        size = min(size, hard)
    resource.setrlimit(resource.RLIMIT_AS, (size, hard))


def _in_order(
    submit: Callable,
    result: Callable,
    items: Iterable,
    window: int,
    on_error: Callable,
    timeout: float | None = None,
    kill: Callable[[], None] | None = None,
) -> Iterator:
    """Submit ``items`` with at most ``window`` in flight; yield their results in order.

    With ``timeout``, ``result(future, timeout)`` is asked for; when it times out, ``kill()``
    stops the workers and ``on_error(item, TaskTimeout)`` is the item's result.
    """
    todo = iter(items)
    in_flight = deque((item, submit(item)) for item in islice(todo, window))
    wait = {} if timeout is None or kill is None else {"timeout": timeout}

    def stuck(exc: Exception, future: Future) -> bool:  # not a TimeoutError the task raised itself
        return bool(wait) and isinstance(exc, TimeoutError) and not future.done()

    while in_flight:
        item, future = in_flight.popleft()
        try:
            done = result(future, **wait)
        except Exception as first:
            if stuck(first, future):
                log.warning("a worker took more than %g s on %s; stopping it", timeout, item)
                kill()
                done = on_error(item, TaskTimeout(timeout))
            else:
                log.warning("a worker failed on %s (%s); retrying it alone", item, type(first).__name__)
                again = submit(item)
                try:
                    done = result(again, **wait)
                except Exception as exc:
                    if stuck(exc, again):
                        kill()
                        exc = TaskTimeout(timeout)
                    done = on_error(item, exc)
        for nxt in islice(todo, 1):
            in_flight.append((nxt, submit(nxt)))
        yield done


def _call(fn: Callable, item: object) -> object:
    return fn(item)


@contextlib.contextmanager
def _dask(jobs: int) -> Iterator[object]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise BackendError("the dask backend needs: pip install 'dask[distributed]' (the dask extra)") from None
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
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def _ray(jobs: int) -> Iterator[None]:
    try:
        import ray
    except ImportError:
        raise BackendError("the ray backend needs: pip install ray (the ray extra)") from None
    address = os.environ.get("RAY_ADDRESS")
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=None if address else jobs, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        if started:
            ray.shutdown()

