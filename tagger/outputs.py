"""Checks on where a command will write, made before anything is loaded or written.

An output never overwrites an input or another output, and never replaces an existing
file that is not the kind of file tagger writes there: ``tagger scan --csv a.mp3 b.flac``
(the report's name forgotten) is refused, not a song overwritten with a CSV report. Each
refusal is an :class:`OutputError` with one line naming the option and the path.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .discover import is_audio_name, show_path
from .errors import TaggerError


class OutputError(TaggerError):
    """An output option names a path that must not be written (one line: option, path, why)."""


@dataclass(frozen=True)
class OutputKind:
    """What tagger writes under an option, and how to recognise such a file by its start."""

    what: str  # "report": "give the report a name of its own"
    name: str  # "CSV report of tagger": "... exists and is not a CSV report of tagger"
    starts: bytes  # an existing file starts with these bytes (after a UTF-8 BOM)
    markup: bool = False  # HTML: leading blanks allowed, any case


CSV_REPORT = OutputKind("report", "CSV report of tagger", b"path,status,error,duration_s,segments,instruments")
TIMELINE_CSV = OutputKind("timeline", "segment timeline of tagger", b"path,start_s,end_s,loudness_db")
TIMELINE_PARQUET = OutputKind("timeline", "Parquet file", b"PAR1")
HTML_PAGE = OutputKind("HTML report", "HTML page", b"<!doctype html", markup=True)
_LONGEST_START = 64  # bytes read from an existing output to recognise it


@dataclass(frozen=True)
class Output:
    option: str  # "--csv"
    path: Path
    kind: OutputKind | None  # None: a file tagger keeps beside another output (a lock, a cache)


def check_outputs(inputs: Sequence[Path], outputs: Sequence[Output]) -> None:
    """Raise :class:`OutputError` when an output may not be written.

    Refused: a folder, a file in a folder that does not exist, one of ``inputs`` (the same
    file, by any name), a name with an audio extension (a report named ``x.mp3`` is a
    forgotten argument, and a later scan would take it for audio), an
    existing regular file that does not look like the output's kind (an empty file is
    fine; so is anything not a regular file, such as /dev/null), a file named by two
    outputs, and a symlink where tagger keeps a file of its own (``kind`` None: the
    report's lock and cache).
    """
    for out in outputs:
        if out.kind is None:
            if os.path.islink(out.path):  # planted: writing through it would change its target
                raise OutputError(f"{out.option} {show_path(out.path)} is a symlink; remove it", out.path)
            continue
        _check_place(out)
        _check_not_input(out, inputs)
        _check_kind(out)
        _check_name(out)
    for i, a in enumerate(outputs):
        for b in outputs[i + 1 :]:
            if _same_file(a.path, b.path) and (a.kind is not None or b.kind is not None):
                first, second = (a, b) if a.kind is not None else (b, a)
                raise OutputError(f"{first.option} {show_path(first.path)} is also {_named(second)}; "
                                  "give each output its own name", first.path)


def scan_outputs(csv_path: Path, segments_path: Path | None, html_path: Path | None) -> list[Output]:
    """What ``tagger scan`` writes: the report (and beside it its lock and resume cache),
    the timeline and the HTML report, when asked for."""
    from .cache import cache_path_for
    from .report import lock_path_for
    from .timeline import is_parquet

    outputs = [Output("--csv", csv_path, CSV_REPORT),
               Output("the report's lock", lock_path_for(csv_path), None),
               Output("the report's cache", cache_path_for(csv_path), None)]
    if segments_path is not None:
        outputs.append(Output("--segments", segments_path, TIMELINE_PARQUET if is_parquet(segments_path) else TIMELINE_CSV))
    if html_path is not None:
        outputs.append(Output("--html", html_path, HTML_PAGE))
    return outputs


def _named(out: Output) -> str:
    return f"the file of {out.option}" if out.kind is not None else out.option


def _check_place(out: Output) -> None:
    if out.path.is_dir():
        raise OutputError(f"{out.option} {show_path(out.path)} is a folder; give a file name", out.path)
    if not out.path.parent.is_dir():
        raise OutputError(f"{out.option} {show_path(out.path)}: no such folder {show_path(out.path.parent)}", out.path)


def _check_not_input(out: Output, inputs: Sequence[Path]) -> None:
    for given in inputs:
        if _same_file(out.path, given):
            raise OutputError(f"{out.option} {show_path(out.path)} is one of the files read; "
                              f"give the {out.kind.what} a name of its own", out.path)


def _check_name(out: Output) -> None:
    if is_audio_name(out.path.name) or is_audio_name(os.path.realpath(out.path)):
        raise OutputError(f"{out.option} {show_path(out.path)} has an audio file's name; "
                          f"give the {out.kind.what} a name of its own", out.path)


def _check_kind(out: Output) -> None:
    try:
        st = os.stat(out.path)
    except FileNotFoundError:
        return  # a new file
    except OSError as exc:
        raise OutputError(f"{out.option} {show_path(out.path)}: {exc.strerror or exc}", out.path) from None
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return  # /dev/null, a pipe, an empty file: nothing to lose
    try:
        with open(out.path, "rb") as f:
            start = f.read(_LONGEST_START)
    except OSError as exc:
        raise OutputError(f"{out.option} {show_path(out.path)}: {exc.strerror or exc}", out.path) from None
    start = start.removeprefix(b"\xef\xbb\xbf")
    if out.kind.markup:
        start = start.lstrip().lower()
    if not start.startswith(out.kind.starts):
        raise OutputError(f"{out.option} {show_path(out.path)} exists and is not a {out.kind.name}, so it is "
                          "not overwritten; remove it or give another name", out.path)


def _same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file: the same resolved path, or (both there) the same inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
