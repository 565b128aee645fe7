"""Ctrl-C and SIGTERM for the command line: one line on stderr, exit 130 or 143, whenever they come.

Two regimes, main thread only:

- :func:`exit_now` (outside a command: while the CLI imports, and after a command has
  returned, during interpreter shutdown): nothing is open, so the handler writes one line
  and ends the process at once (``os._exit``), without a traceback from wherever the
  interpreter was (an atexit join, say).
- :func:`raising` (while a command runs): SIGINT raises KeyboardInterrupt and SIGTERM
  :class:`Terminated` (a KeyboardInterrupt), so both unwind the same way: workers stopped,
  a tag write in progress rolled back, the report closed whole. An interrupt raised inside
  a C callback that cannot pass it on (PyAV reading a file: ``Exception ignored in:
  'av.container.pyio.pyio_read_gil'``) would be printed and lost: it is swallowed and the
  signal sent again, so it lands at the next point that can raise.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt, so both stop the same way."""


def stopped_word(exc: BaseException | int) -> str:
    """``interrupted`` (Ctrl-C) or ``terminated`` (SIGTERM), for an exception or a signal number."""
    return "terminated" if isinstance(exc, Terminated) or exc == signal.SIGTERM else "interrupted"


def exit_code(exc: BaseException) -> int:
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


def end_process(code: int, line: str | None = None) -> None:
    """Flush what was printed, write ``line`` (if any) on stderr, and end the process now.

    Skips the interpreter's shutdown: its joins (a model still loading in a thread, a
    process pool's manager thread) could keep an interrupted run alive for long. Only
    for a process whose work is over or given up (everything written is closed).
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a reentrant call, a closed pipe: the exit matters more
            stream.flush()
    if "multiprocessing.util" in sys.modules:
        # What multiprocessing's own exit does, less its joins: free the pools' named
        # semaphores, or its resource tracker warns of "leaked semaphore objects".
        with contextlib.suppress(Exception):
            sys.modules["multiprocessing.util"]._run_finalizers(0)
    if line is not None:
        with contextlib.suppress(OSError):
            os.write(2, line.encode() + b"\n")
    os._exit(code)


def _end_now(signum: int, frame: object) -> None:
    end_process(128 + signum, stopped_word(signum))


def exit_now() -> None:
    """Outside a command: a signal ends the process with one line (see the module's docstring)."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _end_now)


def _raise(signum: int, frame: object) -> None:
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _unraisable(previous, unraisable) -> None:  # noqa: ANN001 (sys.UnraisableHookArgs)
    if isinstance(unraisable.exc_value, KeyboardInterrupt):  # ours, raised where it could not pass
        signal.raise_signal(signal.SIGTERM if isinstance(unraisable.exc_value, Terminated) else signal.SIGINT)
        return
    previous(unraisable)


@contextlib.contextmanager
def raising() -> Iterator[None]:
    """While a command runs: SIGINT raises KeyboardInterrupt, SIGTERM :class:`Terminated`.

    The handlers found are put back afterwards. Off the main thread (a command run from a
    thread) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _raise) for signum in SIGNALS}
    previous_hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: _unraisable(previous_hook, unraisable)
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT back in this thread (pending, not lost) while it starts worker processes.

    A process started meanwhile inherits the blocked signal: a Ctrl-C sent to the whole
    process group (the terminal's) never reaches it before it has set SIGINT aside itself
    (see :func:`ignore_interrupts`). Python's own resource tracker is started the same way.
    """
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def ignore_interrupts() -> None:
    """In a worker process: Ctrl-C is the driver's to handle; the driver stops its workers.

    SIGINT is ignored, then let through (one held back since the start is dropped). SIGTERM
    keeps its default: a worker told to end ends, silently.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
