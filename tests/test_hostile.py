"""Hostile but fair input: special files, long names, pathological files, damaged tags.

Each bad file costs exactly one row with a plain one-line reason, never the run, and no
file is ever opened that would block (a FIFO) or never end (a device).
"""
from __future__ import annotations

import csv
import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from audio_helpers import tone, write_audio
from tagger.discover import discover, file_problem
from tagger.errors import TagWriteError
from tagger.inference import Scorer
from tagger.scan import Scanner, ScanOptions, _Task, load_span
from tagger import tags as tagmod
from tagger.tags import InstrumentTags, cleanup_leftovers, read_instruments, write_instruments

TAGS = InstrumentTags(["piano"], {"piano": 0.9}, "tagger 0.0.0 test")
posix_only = pytest.mark.skipif(sys.platform != "linux", reason="needs Linux special files")


def run(model: Path, paths, **options) -> list:
    return list(Scanner(Scorer.from_path(model, "cpu"), ScanOptions(jobs=1, **options)).scan(paths))


def cli(*args: str, memory_gb: float = 6.0, timeout: float = 180, **kw) -> subprocess.CompletedProcess:
    """The CLI in a subprocess, with an address-space limit and a timeout: a regression
    that reads a device without end or blocks on a FIFO fails here, not the machine."""

    def limit() -> None:
        size = int(memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    return subprocess.run([sys.executable, "-m", "tagger", *args], capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limit, **kw)


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def special_folder(root: Path) -> Path:
    """A folder with one good file and every kind of entry that is not a regular file."""
    write_audio(root / "a-good.wav", tone(2.0))
    os.mkfifo(root / "b-pipe.mp3")
    os.mkfifo(root / "pipe-without-audio-name")
    (root / "c-zero.mp3").symlink_to("/dev/zero")
    (root / "d-gone.flac").symlink_to(root / "nowhere.flac")
    (root / "e-loop.ogg").symlink_to(root / "e-loop.ogg")
    (root / "loop-without-audio-name").symlink_to(root / "loop-without-audio-name")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.fspath(root / "f-sock.wav"))
    sock.close()
    return root


@posix_only
def test_special_entries_in_folders_get_one_row_each_with_the_true_reason(tiny_model, tmp_path, caplog):
    lib = special_folder(tmp_path / "lib")
    results = run(tiny_model, [lib])
    assert [r.path.name for r in results] == ["a-good.wav", "b-pipe.mp3", "c-zero.mp3", "d-gone.flac", "e-loop.ogg", "f-sock.wav"]
    assert results[0].status == "ok"
    assert [(r.status, r.error) for r in results[1:]] == [
        ("error", "not a regular file (FIFO)"),
        ("error", "not a regular file (character device via symlink -> /dev/zero)"),
        ("error", f"dangling symlink -> {lib / 'nowhere.flac'}"),
        ("error", "symlink loop"),
        ("error", "not a regular file (socket)"),
    ]
    assert "loop-without-audio-name: symlink loop" in caplog.text  # skipped, with its true reason
    assert "broken symlink" not in caplog.text
    assert [p.name for p in discover([lib])] == [r.path.name for r in results]  # deterministic, same again


@posix_only
def test_workers_and_the_tag_reader_never_open_special_files(tmp_path):
    """Each entry point checks the kind of file before opening it (the tag reader ran first)."""
    os.mkfifo(tmp_path / "pipe.mp3")
    (tmp_path / "zero.mp3").symlink_to("/dev/zero")
    for name, reason in [("pipe.mp3", "not a regular file (FIFO)"),
                         ("zero.mp3", "not a regular file (character device via symlink -> /dev/zero)")]:
        path = tmp_path / name
        assert file_problem(path) == reason
        loaded = load_span(_Task(0, str(path), 0, 0.0, None, True), 22050, 66150, 66150, skip_users_tags=True)
        assert loaded.error == reason
        with pytest.raises(TagWriteError, match="not a regular file"):
            read_instruments(path)


@posix_only
def test_cli_on_a_device_a_fifo_and_process_substitution(tiny_model, tmp_path):
    song = write_audio(tmp_path / "song.wav", tone(2.0))
    os.mkfifo(tmp_path / "x.mp3")
    (tmp_path / "zero.mp3").symlink_to("/dev/zero")
    report = tmp_path / "r.csv"
    proc = cli("scan", "/dev/zero", str(tmp_path / "x.mp3"), str(song), "--model", str(tiny_model),
               "--csv", str(report), "--jobs", "2", "--no-resume", "--quiet")
    assert proc.returncode == 1, proc.stderr
    rows = read_rows(report)
    assert [(r["path"], r["status"], r["error"]) for r in rows] == [
        ("/dev/zero", "error", "not a regular file (character device)"),
        (str(tmp_path / "x.mp3"), "error", "not a regular file (FIFO)"),
        (str(song), "ok", ""),
    ]
    # bash's <(cat song.wav) is a pipe named /dev/fd/63, which means nothing in a worker
    script = 'exec "$0" -m tagger scan <(cat "$1") --model "$2" --csv "$3" --jobs 2 --no-resume --quiet'
    proc = subprocess.run(["bash", "-c", script, sys.executable, str(song), str(tiny_model), str(report)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1, proc.stderr
    [row] = read_rows(report)
    assert row["path"].startswith("/dev/fd/") and row["error"] == "not a regular file (FIFO)"


# --- item 3: long file names --------------------------------------------------------------


def long_name(n_bytes: int, suffix: str) -> str:
    """A name of exactly ``n_bytes`` bytes in UTF-8, with 2-byte characters to cut through."""
    stem = "é" * ((n_bytes - len(suffix)) // 2) + "x" * ((n_bytes - len(suffix)) % 2)
    name = stem + suffix
    assert len(name.encode()) == n_bytes
    return name


@pytest.mark.parametrize("n_bytes", [235, 254, 255])
def test_long_names_are_tagged_and_their_temps_fit(tmp_path, n_bytes, monkeypatch):
    path = write_audio(tmp_path / long_name(n_bytes, ".flac"), tone(1.5))
    temps = []
    real = tagmod._temp_path
    monkeypatch.setattr(tagmod, "_temp_path", lambda p: temps.append(real(p)) or temps[-1])
    write_instruments(path, TAGS)
    assert read_instruments(path).instruments == ["piano"]
    [temp] = temps
    assert len(os.fsencode(temp.name)) <= 255 and tagmod._TEMP_NAME.match(temp.name)
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no temp left
    # a leftover of such a name (a killed run) is found and removed by the next run
    leftover = real(path)
    leftover.write_bytes(b"half a file")
    assert cleanup_leftovers(tmp_path) == [leftover]


def test_a_long_name_costs_no_row_and_later_files_are_tagged(tiny_model, tmp_path):
    lib = tmp_path / "lib"
    write_audio(lib / long_name(250, ".wav"), tone(2.0))
    write_audio(lib / "zz-later.wav", tone(2.0, 220))
    results = run(tiny_model, [lib], write_tags=True, threshold=0.0, top_k=1)
    assert [(r.status, r.tags) for r in results] == [("ok", "written"), ("ok", "written")]


def test_clean_up_never_raises(tmp_path, monkeypatch, caplog):
    assert cleanup_leftovers(tmp_path / "vanished") == []
    path = write_audio(tmp_path / "a.flac", tone(1.5))
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(36, "File name too long")

    monkeypatch.setattr(tagmod, "_fsync_file", fail)  # the write fails...
    monkeypatch.setattr(Path, "unlink", fail)  # ...and so does removing its temp
    with pytest.raises(TagWriteError, match="File name too long"):
        write_instruments(path, TAGS)
    assert path.read_bytes() == before
    assert "could not remove temporary file" in caplog.text
