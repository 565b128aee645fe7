"""``python -m tagger`` and the ``tagger`` command (pyproject's entry point: :func:`main`).

The entry point lives here, not in :mod:`tagger.cli`, because the scan's decoding
workers are spawned: each one re-runs the top of the installed ``tagger`` script (as
``__mp_main__``) before its first file. Pointing that script at this module keeps typer,
rich and the CLI out of every worker (they need only :mod:`tagger.scan`).
"""
from __future__ import annotations


def main() -> None:
    from tagger import signals

    signals.exit_now()  # Ctrl-C or SIGTERM while the CLI loads, or after its command: one line, 130 or 143
    from tagger.cli import app

    try:
        app(prog_name="tagger")
    except SystemExit as exc:
        if exc.code in (signals.EXIT_INTERRUPTED, signals.EXIT_TERMINATED):
            # Stopped by a signal and already said so, everything closed: the interpreter's
            # shutdown would only wait on threads (a model still loading).
            signals.end_process(exc.code, exit_handlers=True)
        signals.shut_down(exc.code)


if __name__ == "__main__":
    main()
