"""A finished build's stamp: the arguments that made a folder, written last.

``make weights`` (training/rebuild.sh) takes about two hours. With ``--reuse``, a corpus
or track folder whose stamp matches the arguments asked for is kept, so a rebuild killed
part way picks up where it stopped; any other folder is built again. The stamp goes away
before a folder is rebuilt and comes back only when the build has finished, so a half-built
folder is never taken for a finished one. It records arguments, not code: after changing
the renderer, build without ``--reuse``.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

STAMP = "build.json"
# Arguments that change how a folder is built, not what is in it.
NOT_CONTENT = frozenset({"jobs", "verbose", "overwrite", "reuse"})


def build_arguments(args: argparse.Namespace) -> dict:
    """``args`` as JSON-able values, without the ones that do not change the output."""
    return json.loads(json.dumps({k: v for k, v in sorted(vars(args).items()) if k not in NOT_CONTENT}, default=str))


def add_heldout_options(p: argparse.ArgumentParser) -> None:
    """The options of a held-out set's builder: ``--reuse``, ``--overwrite``, and
    ``--explain MODEL`` (print the model's figures on the set) with its ``--cache`` and ``--jobs``."""
    p.add_argument("--reuse", action="store_true", help="keep a finished build made with these arguments")
    p.add_argument("--overwrite", action="store_true", help="build again even when built (the default)")
    p.add_argument("--explain", type=Path, metavar="MODEL", help="build nothing: print MODEL's figures on --out")
    p.add_argument("--cache", type=Path, help="feature cache for --explain")
    p.add_argument("--jobs", type=int, default=1, help="feature processes for --explain")


def heldout_arguments(args: argparse.Namespace) -> dict:
    """:func:`build_arguments` of a builder with :func:`add_heldout_options` (``--explain``
    and ``--cache`` build nothing)."""
    return build_arguments(argparse.Namespace(**{k: v for k, v in vars(args).items() if k not in ("explain", "cache")}))


def is_built(out: Path, arguments: dict) -> bool:
    """True when ``out`` holds a finished build made with ``arguments``."""
    try:
        return json.loads((out / STAMP).read_text()) == arguments
    except (OSError, ValueError):
        return False


def kept(out: Path, arguments: dict) -> bool:
    """``--reuse``: True (and says so) when ``out`` is a finished build made with ``arguments``."""
    if not is_built(out, arguments):
        return False
    print(f"{out}: already built with these arguments ({out / STAMP}), kept")
    return True


def clear_stamp(out: Path) -> None:
    """Before (re)building ``out``: it is not a finished build until :func:`write_stamp`."""
    (out / STAMP).unlink(missing_ok=True)


def write_stamp(out: Path, arguments: dict) -> None:
    """The last step of a build: ``out`` is finished and was made with ``arguments``."""
    tmp = out / f".{STAMP}.tmp"
    tmp.write_text(json.dumps(arguments, indent=1) + "\n")
    os.replace(tmp, out / STAMP)
