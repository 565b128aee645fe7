"""``python -m tagger`` and the ``tagger`` command (pyproject's entry point: :func:`main`).

The entry point lives here, not in :mod:`tagger.cli`, because the scan's decoding
workers are spawned: each one re-runs the top of the installed ``tagger`` script (as
``__mp_main__``) before its first file. Pointing that script at this module keeps typer,
rich and the CLI out of every worker (they need only :mod:`tagger.scan`).
"""
from __future__ import annotations


def main() -> None:
    from tagger.cli import app

    app(prog_name="tagger")


if __name__ == "__main__":
    main()
