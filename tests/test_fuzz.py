"""Fuzzing: a few hundred mutants of tiny real files of every container, scanned as a
dry run through the library and with --write-tags through the command line.

Each mutant costs exactly one row (``ok`` or ``error`` with a one-line reason), nothing
raises, no traceback is printed, no temp file is left, a file whose tags were not
written is byte for byte what it was, and every file that decoded before decodes to the
same audio after. Seeded: the same mutants on every machine.
"""
from __future__ import annotations

import csv
import io
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mutagen.id3 import ID3, TIT2

import tagfixtures as fx
from tagger.decode import decode
from tagger.errors import AudioDecodeError
from tagger.inference import Scorer
from tagger.scan import Scanner, ScanOptions

SEED = 8
MUTANTS_PER_CONTAINER = 30
RATE = 22050
SIZE_FIELDS = [b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00", b"\x00\x00\x00\x00", b"\xff\xff\xff\x7f"]


def id3v2_tag() -> bytes:
    tag = ID3()
    tag.add(TIT2(encoding=3, text=["prefixed"]))
    buffer = io.BytesIO()
    tag.save(buffer, padding=lambda info: 0)
    return buffer.getvalue()


def size_field_offsets(data: bytes) -> list[int]:
    """Where the size fields of the usual structures are: after RIFF/FORM/chunk ids, MP4 box
    types (before them), FLAC block headers, ID3 and ASF headers; plus the first bytes."""
    spots = {4, 6, 8, 12, 16, 24, 30, 46}
    for marker, shift in ((b"RIFF", 4), (b"FORM", 4), (b"data", 4), (b"SSND", 4), (b"COMM", 4), (b"id3 ", 4),
                          (b"ID3 ", 4), (b"fmt ", 4), (b"moov", -4), (b"mdat", -4), (b"trak", -4), (b"udta", -4),
                          (b"ilst", -4), (b"wvpk", 4), (b"APETAGEX", 12), (b"OggS", 22), (b"fLaC", 5)):
        at = data.find(marker)
        if at >= 0:
            spots.add(at + shift)
    return sorted(s for s in spots if 0 <= s <= len(data) - 4)


def mutate(data: bytes, others: list[bytes], rng: random.Random) -> tuple[str, bytes]:
    """One mutant of ``data``: its kind and its bytes."""
    kind = rng.choice(["flip", "truncate", "swap-header", "huge-size", "zeros", "id3-prefix", "duplicate"])
    d = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 16)):
            at = rng.randrange(len(d))
            d[at] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        d = d[: rng.randrange(len(d))]
    elif kind == "swap-header":
        other = rng.choice(others)
        n = rng.randint(4, 512)
        d[:n] = other[:n]
    elif kind == "huge-size":
        for _ in range(rng.randint(1, 3)):
            at = rng.choice(size_field_offsets(bytes(d)))
            d[at : at + 4] = rng.choice(SIZE_FIELDS)
    elif kind == "zeros":
        at = rng.randrange(len(d))
        n = rng.randint(1, 8192)
        d[at : at + n] = bytes(len(d[at : at + n]))
    elif kind == "id3-prefix":
        d = bytearray(id3v2_tag()) + d
    else:  # a run of the file copied into itself
        at, n = rng.randrange(len(d)), rng.randint(1, 4096)
        d[at:at] = d[rng.randrange(len(d)) :][:n]
    return kind, bytes(d)


def decoded(path: Path) -> np.ndarray | None:
    try:
        return decode(path, RATE)
    except AudioDecodeError:
        return None


def make_mutants(folder: Path) -> list[Path]:
    rng = random.Random(SEED)
    bases: list[tuple[fx.Container, bytes]] = []
    for container in fx.CONTAINERS:
        if fx.encoder_missing(container.codec):
            continue
        path = folder / f"base-{container.name}{container.suffix}"
        fx.make_audio(path, container, seconds=1.5)
        fx.seed_tags(path, container.kind)
        bases.append((container, path.read_bytes()))
        path.unlink()
    others = [data for _, data in bases]
    mutants = []
    for container, data in bases:
        for i in range(MUTANTS_PER_CONTAINER):
            kind, mutated = mutate(data, others, rng)
            path = folder / f"{container.name}-{i:02d}-{kind}{container.suffix}"
            path.write_bytes(mutated)
            mutants.append(path)
    return sorted(mutants)


PYTHON_INTERNALS = ("unexpected", "object has no attribute", "format requires", "argument out of range", "Errno",
                    "Traceback", "b'", "\\x", "NoneType", "Error(")


def one_line(text: str) -> bool:
    """A plain one-line reason: printable, not empty, no Python internals, no path in it."""
    return (bool(text) and text.isprintable() and not text.rstrip().endswith(":")
            and not any(word in text for word in PYTHON_INTERNALS) and "/mutants/" not in text)


def test_fuzzed_files_cost_one_row_each_and_lose_nothing(tiny_model, tmp_path, capfd):
    folder = tmp_path / "mutants"
    folder.mkdir()
    mutants = make_mutants(folder)
    assert len(mutants) >= 200
    audio_before = {p: decoded(p) for p in mutants}
    bytes_before = {p: p.read_bytes() for p in mutants}

    # a dry run through the library: one row each, in order, nothing raises, nothing changes
    scanner = Scanner(Scorer.from_path(tiny_model, "cpu"), ScanOptions(jobs=1))
    rows = list(scanner.scan([folder]))
    assert [r.path for r in rows] == mutants
    for r in rows:
        assert r.status in ("ok", "error")
        assert (r.status == "error") == bool(r.error) and (not r.error or one_line(r.error)), (r.path.name, r.error)
        assert r.status == "error" or set(r.scores) == set(scanner.scorer.labels)
    assert {p: p.read_bytes() for p in mutants} == bytes_before
    printed = capfd.readouterr().err  # FFmpeg and PyAV print nothing either
    assert "Traceback" not in printed and "exception" not in printed, printed[-2000:]
    ok_dry = {r.path for r in rows if r.status == "ok"}
    assert len(ok_dry) > len(mutants) // 4  # the mutants are not all trivially broken

    # --write-tags through the command line, in worker processes
    report = tmp_path / "report.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "tagger", "scan", str(folder), "--model", str(tiny_model), "--csv", str(report),
         "--write-tags", "--threshold", "0", "--top-k", "1", "--jobs", "2", "--no-resume", "--quiet"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr, proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert all(line.startswith("error: ") for line in error_lines), proc.stderr
    with open(report, newline="", encoding="utf-8") as f:
        written = list(csv.DictReader(f))
    assert [Path(r["path"]) for r in written] == mutants
    assert len(error_lines) == sum(r["status"] == "error" for r in written)
    for r in written:
        assert r["status"] in ("ok", "error") and (r["status"] == "error") == bool(r["error"]), r
        assert not r["error"] or one_line(r["error"]), r
        assert r["tags"] in (("written",) if r["status"] == "ok" else ("",)), r
    assert not [n for n in os.listdir(folder) if ".tagger-tmp" in n]

    # nothing lost: untouched unless written; every file that decoded decodes the same
    for r in written:
        path = Path(r["path"])
        if r["tags"] != "written":
            assert path.read_bytes() == bytes_before[path], path.name
        if audio_before[path] is not None:
            after = decoded(path)
            assert after is not None, (path.name, r)
            np.testing.assert_array_equal(after, audio_before[path], err_msg=path.name)
    n_written = sum(r["tags"] == "written" for r in written)
    assert n_written > len(mutants) // 4
