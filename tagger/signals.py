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
EXIT_HANDLERS_S = 5.0  # the most an interrupted run's atexit clean-up may take
RESEND_AFTER_S = 0.05  # an interrupt lost in a C callback is sent again this much later


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt, so both stop the same way."""


def stopped_word(exc: BaseException | int) -> str:
    """``interrupted`` (Ctrl-C) or ``terminated`` (SIGTERM), for an exception or a signal number."""
    return "terminated" if isinstance(exc, Terminated) or exc == signal.SIGTERM else "interrupted"


def exit_code(exc: BaseException) -> int:
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


def end_process(code: int, line: str | None = None, exit_handlers: bool = False) -> None:
    """Flush what was printed, write ``line`` (if any) on stderr, and end the process now.

    Skips the interpreter's shutdown: its joins (a model still loading in a thread, a
    process pool's manager thread) could keep an interrupted run alive for long. Only
    for a process whose work is over or given up (everything written is closed). With
    ``exit_handlers``, the atexit functions run first (joblib's temporary folders,
    multiprocessing's clean-up), once joblib's workers are killed.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a reentrant call, a closed pipe: the exit matters more
            stream.flush()
    loky = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(loky, "_executor", None)  # joblib's workers (train, eval) wait for more work
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):  # killed, not shut down: loky's shutdown can wait for ever here
            if process.is_alive():  # still our child (an ended one is reaped here: its pid is not reused)
                os.kill(process.pid, signal.SIGKILL)
    if exit_handlers:
        import atexit

        watchdog = threading.Timer(EXIT_HANDLERS_S, os._exit, (code,))  # a clean-up that hangs ends here
        watchdog.daemon = True
        watchdog.start()
        with contextlib.suppress(Exception):
            atexit._run_exitfuncs()
        # joblib's folders are removed now; its resource tracker would still count the
        # killed workers' uses of them and warn of "leaked folder objects"
        tracker = getattr(sys.modules.get("joblib.externals.loky.backend.resource_tracker"), "_resource_tracker", None)
        if executor is not None and getattr(tracker, "_pid", None):
            with contextlib.suppress(OSError):  # ChildProcessError: not our child (any more)
                if os.waitpid(tracker._pid, os.WNOHANG) == (0, 0):  # still running, and ours
                    os.kill(tracker._pid, signal.SIGKILL)
    if "multiprocessing.util" in sys.modules:
        # What multiprocessing's own exit does, less its joins: free the pools' named
        # semaphores, or its resource tracker warns of "leaked semaphore objects".
        with contextlib.suppress(Exception):
            sys.modules["multiprocessing.util"]._run_finalizers(0)
    if line is not None:
        with contextlib.suppress(OSError):
            os.write(2, line.encode() + b"\n")
    os._exit(code)


def shut_down(code: int | str | None) -> None:
    """End the process as the interpreter would (threads joined, exit handlers run), with
    :func:`exit_now`'s handlers still in place, then at once.

    The interpreter's own finalization puts the default handlers back before it is done:
    a signal in those last moments would kill the process without a word (``-15``).
    """
    import atexit

    if isinstance(code, str):  # SystemExit("message"): printed, exit 1
        print(code, file=sys.stderr)
        code = 1
    with contextlib.suppress(Exception):
        threading._shutdown()  # type: ignore[attr-defined]  # joins non-daemon threads, runs concurrent.futures' exit
    atexit._run_exitfuncs()  # multiprocessing's and joblib's clean-up, logging's flush
    end_process(code or 0)


def _end_now(signum: int, frame: object) -> None:
    end_process(128 + signum, stopped_word(signum))


def exit_now() -> None:
    """Outside a command: a signal ends the process with one line (see the module's docstring)."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _end_now)


_held = 0  # depth of signals_held() in the main thread
_pending: int | None = None  # a signal that came while held


def _raise(signum: int, frame: object) -> None:
    global _pending
    if _held:
        _pending = signum
        return
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _print_uncaught(previous, kind, value, tb) -> None:  # noqa: ANN001
    if isinstance(value, KeyboardInterrupt):  # printed by a C callback that cannot pass it on (see _unraisable)
        return
    previous(kind, value, tb)


def _unraisable(previous, unraisable) -> None:  # noqa: ANN001 (sys.UnraisableHookArgs)
    if isinstance(unraisable.exc_value, KeyboardInterrupt):  # ours, raised where it could not pass
        # Sent again from a thread, a moment later: a handler run in this hook would raise in it.
        signum = signal.SIGTERM if isinstance(unraisable.exc_value, Terminated) else signal.SIGINT
        again = threading.Timer(RESEND_AFTER_S, os.kill, (os.getpid(), signum))
        again.daemon = True
        again.start()
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
    previous_hooks = sys.unraisablehook, sys.excepthook
    sys.unraisablehook = lambda unraisable: _unraisable(previous_hooks[0], unraisable)
    sys.excepthook = lambda *exc: _print_uncaught(previous_hooks[1], *exc)  # Cython prints some before
    try:
        yield
    finally:
        sys.unraisablehook, sys.excepthook = previous_hooks
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back (pending, not lost) while worker processes start.

    In the driver, a signal that comes meanwhile is raised once the block is left: a
    worker interrupted half-way through its start would print a traceback (``EOFError:
    Ran out of input``). A process started meanwhile inherits a blocked SIGINT, so a
    Ctrl-C sent to the whole process group (the terminal's) never reaches it before it
    has set SIGINT aside itself (see :func:`ignore_interrupts`); Python's own resource
    tracker is started the same way.
    """
    global _held, _pending
    main = threading.current_thread() is threading.main_thread()
    masked = hasattr(signal, "pthread_sigmask")
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if masked else None
    _held += main
    try:
        yield
    finally:
        _held -= main
        if masked:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        if main and not _held and _pending is not None:
            signum, _pending = _pending, None
            _raise(signum, None)


def ignore_interrupts() -> None:
    """In a worker process: Ctrl-C is the driver's to handle; the driver stops its workers.

    SIGINT is ignored, then let through (one held back since the start is dropped). SIGTERM
    keeps its default: a worker told to end ends, silently.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
