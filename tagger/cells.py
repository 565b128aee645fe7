"""Cells of the CSV files tagger writes (the report, the segment timeline), safe to open in a spreadsheet.

A spreadsheet takes a cell that begins with ``=``, ``+``, ``-`` or ``@`` (or a tab or a
carriage return before one) for a formula, and a formula can open links or run commands
(CSV injection). Text that comes from the files themselves (an existing tag value, a
decoder's message) follows OWASP's advice: such a cell gets a leading ``'``, which makes it
text. :func:`text_value` undoes it exactly, for programs that read the CSV back.

Paths are not changed that way, since programs need the exact path: a relative path that
begins with one of those characters (a file at the top of ``tagger scan .``) is written as
``./`` + the path, the same file for every program that opens it (``Path("./=x.mp3") ==
Path("=x.mp3")``) and no formula. Absolute paths begin with ``/`` and are written as they
are. The JSON output is never changed.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP's list of characters that start a formula


def text_cell(value: str) -> str:
    """``value`` as a cell that no spreadsheet runs as a formula.

    A value that begins with a formula character gets a leading ``'``; so does one that
    begins with quotes before one (``'=x`` -> ``''=x``), which keeps :func:`text_value` exact.
    """
    return "'" + value if value.lstrip("'").startswith(FORMULA_STARTS) else value


def text_value(cell: str) -> str:
    """The value that :func:`text_cell` made ``cell`` from."""
    return cell[1:] if cell.startswith("'") and cell.lstrip("'").startswith(FORMULA_STARTS) else cell


def list_cell(values: Iterable[str], sep: str = ";") -> str:
    """Values joined by ``sep``, each made safe: also safe where ``sep`` splits the cells."""
    return sep.join(text_cell(v) for v in values)


def list_values(cell: str, sep: str = ";") -> list[str]:
    """The values that :func:`list_cell` joined (none for an empty cell)."""
    return [text_value(v) for v in cell.split(sep)] if cell else []


def path_cell(path: str | os.PathLike) -> str:
    """A path as a cell: the same path, with ``./`` in front when it would start a formula."""
    text = os.fspath(path)
    return os.curdir + os.sep + text if text.startswith(FORMULA_STARTS) else text


class _LineFeedRows:
    """Forwards csv's rows to ``out``, each ending in ``\n`` instead of the writer's ``\r\n``."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def write(self, text: str) -> Any:
        return self.out.write(text[:-2] + "\n" if text.endswith("\r\n") else text)


# csv's writers quote a cell only for the characters of their line terminator: with "\n", a
# cell holding a lone "\r" (a file name may) goes out bare and readers end the row there.
# These writers quote a cell holding either, and end their rows in "\n" all the same.
def row_writer(out: TextIO) -> Any:
    """``csv.writer`` on ``out``: rows end in ``\n``; a cell with ``\r`` or ``\n`` is quoted."""
    return csv.writer(_LineFeedRows(out), lineterminator="\r\n")


def dict_row_writer(out: TextIO, fieldnames: Sequence[str]) -> csv.DictWriter:
    """``csv.DictWriter`` on ``out``, as :func:`row_writer`."""
    return csv.DictWriter(_LineFeedRows(out), fieldnames=fieldnames, lineterminator="\r\n")  # type: ignore[arg-type]
