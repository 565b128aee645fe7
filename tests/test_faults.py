"""Faults around a scan, as a user meets them: a second run on the same report, a full
disk, a damaged cache, weights that do not load, kill -9 and SIGTERM, bad paths on the
command line, an internal error. Each runs the CLI in a subprocess.
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from audio_helpers import tone, write_audio
from tagger.decode import decode
from test_cli import read_csv, slow_writes_cli, tagger

# The CLI with some code run first (a patch that injects a fault).
PATCHED_CLI = """
import sys
{setup}
from tagger.cli import app
app(prog_name="tagger", args=sys.argv[1:])
"""


def patched_cli(setup: str) -> list[str]:
    return [sys.executable, "-c", PATCHED_CLI.format(setup=setup)]


def flac_library(folder: Path, n: int, seconds: float = 6.0) -> Path:
    for i in range(n):
        write_audio(folder / f"{i:02d}.flac", tone(seconds, 100 + 40 * i))
    return folder


def wait_for_rows(report: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if report.exists() and len(read_csv(report)) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"the run did not reach {n} rows while running (exit {proc.poll()})")


def live_processes_in_group(pgid: int) -> list[int]:
    """Processes of a process group that are alive (zombies left out), from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            pids.append(int(entry))
    return pids


def wait_for_group_to_end(pgid: int, timeout: float = 30) -> list[int]:
    """Wait (bounded) until no process of the group is alive; kill and return any left."""
    deadline = time.time() + timeout
    while (alive := live_processes_in_group(pgid)) and time.time() < deadline:
        time.sleep(0.1)
    for pid in alive:  # never leave orphans behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    return alive


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    return lines[0]


# -- 6: one report, one run at a time


def test_a_second_run_on_the_same_report_exits_2_and_leaves_the_first_alone(tiny_model, tmp_path):
    lib = flac_library(tmp_path / "lib", 10, 4.0)
    report = tmp_path / "r.csv"
    args = ["scan", str(lib), "--model", str(tiny_model), "--csv", str(report), "--write-tags", "--jobs", "1", "--quiet"]
    first = subprocess.Popen([*slow_writes_cli(0.5), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_rows(report, 2, first)
        second = tagger(*args)
        assert first.poll() is None, "the first run ended before the second one started"
    finally:
        _, first_err = first.communicate(timeout=300)
    assert second.returncode == 2, second.stderr
    assert "locked by another run" in one_error_line(second.stderr)
    assert first.returncode == 0, first_err
    text = report.read_bytes()
    assert b"\0" not in text
    rows = read_csv(report)
    assert [Path(r["path"]).name for r in rows] == [f"{i:02d}.flac" for i in range(10)]
    assert {r["tags"] for r in rows} == {"written"}


# -- 7: disk full


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A tmpfs with two pages (4 KB each) left free: one for the lock file, one for the report.

    Skipped where mounting is not allowed.
    """
    mnt = tmp_path / "full"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        filler = mnt / "filler"
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"x" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        os.truncate(filler, (filler.stat().st_size // 4096 - 2) * 4096)
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_disk_full_while_the_report_is_written_exits_3_with_whole_rows(tiny_model, tmp_path, tiny_filesystem):
    lib = tmp_path / "lib"
    for i in range(40):  # ~250 bytes a row: more than the 4 KB left
        write_audio(lib / f"{i:02d}.wav", tone(1.2, 100 + 20 * i))
    report = tiny_filesystem / "r.csv"
    proc = tagger("scan", str(lib), "--model", str(tiny_model), "--csv", str(report), "--jobs", "1", "--quiet", "--no-resume")
    assert proc.returncode == 3, proc.stderr
    line = one_error_line(proc.stderr)
    assert "cannot write the report" in line and "No space left on device" in line
    text = report.read_bytes()
    assert text.endswith(b"\n")
    rows = read_csv(report)
    assert 0 < len(rows) < 40 and all(r["status"] == "ok" and r["previous_instruments"] == "" for r in rows)
    assert [Path(r["path"]).name for r in rows] == [f"{i:02d}.wav" for i in range(len(rows))]


def test_a_cache_that_cannot_be_written_exits_3_and_leaves_the_report(tiny_model, tmp_path, tiny_filesystem):
    lib = tmp_path / "lib"
    for i in range(3):
        write_audio(lib / f"{i}.wav", tone(1.2, 100 + 20 * i))
    report = tiny_filesystem / "r.csv"
    old = "path,status,error,duration_s,segments,instruments\nold.wav,ok,,1.000,1,\n"  # a report's head (another file is not overwritten)
    report.write_text(old)  # takes one of the two free pages; the lock takes the other
    proc = tagger("scan", str(lib), "--model", str(tiny_model), "--csv", str(report), "--jobs", "1", "--quiet")
    assert proc.returncode == 3, proc.stderr
    assert "cannot use the cache" in one_error_line(proc.stderr)
    assert report.read_text() == old


# -- 8: damaged cache, weights that do not load: the old report stays until both are good


def _corrupt_page(db: Path, page: int) -> None:
    with open(db, "r+b") as f:
        f.seek(4096 * page)
        f.write(b"\xde\xad\xbe\xef" * 1024)


@pytest.mark.parametrize("damage", ["garbage", "bad page"])
def test_a_damaged_cache_is_set_aside_and_the_run_goes_on(tiny_model, tmp_path, damage):
    lib = tmp_path / "lib"
    for i in range(3):
        write_audio(lib / f"{i}.wav", tone(3.0, 200 + 100 * i))
    report = tmp_path / "r.csv"
    cache = tmp_path / "r.csv.cache.sqlite"
    args = ["scan", str(lib), "--model", str(tiny_model), "--csv", str(report), "--jobs", "1"]  # warnings shown
    assert tagger(*args).returncode == 0
    if damage == "garbage":
        cache.write_bytes(b"this is not a database" * 300)
    else:
        assert sqlite3.connect(cache).execute("PRAGMA page_count").fetchone()[0] >= 2
        _corrupt_page(cache, 1)  # page 2: the results table
    proc = tagger(*args)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "damaged" in proc.stderr
    aside = [p for p in tmp_path.iterdir() if re.fullmatch(r"r\.csv\.cache\.sqlite\.corrupt-\d{8}T\d{6}Z", p.name)]
    assert len(aside) == 1
    assert [r["status"] for r in read_csv(report)] == ["ok"] * 3
    again = tagger(*args)  # the new cache works
    assert again.returncode == 0 and [r["status"] for r in read_csv(report)] == ["skipped"] * 3


def test_weights_that_fail_to_load_leave_the_previous_report_untouched(tiny_model, tmp_path):
    from tagger.config import FrontendConfig, ModelConfig
    from tagger.labels import BUNDLED_LABELS
    from tagger.models import Tagger
    from tagger.weights import Checkpoint, save_checkpoint

    labels = tuple(BUNDLED_LABELS)
    wide = Tagger(FrontendConfig(), ModelConfig("resnet", labels, width=16))
    misfit = save_checkpoint(Checkpoint(FrontendConfig(), ModelConfig("resnet", labels, width=8),
                                        wide.classifier.state_dict(), {label: 0.5 for label in labels}, name="misfit"),
                             tmp_path / "model")
    lib = tmp_path / "lib"
    for i in range(3):
        write_audio(lib / f"{i}.wav", tone(3.0, 200 + 100 * i))
    report, segments = tmp_path / "r.csv", tmp_path / "s.csv"
    args = ["scan", str(lib), "--csv", str(report), "--segments", str(segments), "--jobs", "1", "--quiet"]
    assert tagger(*args, "--model", str(tiny_model)).returncode == 0
    before = report.read_bytes(), segments.read_bytes()
    for resume in ("--resume", "--no-resume"):
        proc = tagger(*args, "--model", str(misfit), resume)
        assert proc.returncode == 2, proc.stderr
        assert "weights do not match their config" in one_error_line(proc.stderr)
        assert (report.read_bytes(), segments.read_bytes()) == before  # the timeline too


# -- 9: the cache is keyed on the file, not on how its path was typed


def test_the_cache_knows_a_file_by_its_resolved_path(tiny_model, tmp_path):
    lib = tmp_path / "lib"
    for i in range(2):
        write_audio(lib / f"{i}.wav", tone(3.0, 300 + 100 * i))
    args = ["--model", str(tiny_model), "--csv", "r.csv", "--jobs", "1", "--quiet"]
    assert tagger("scan", "lib", *args, cwd=tmp_path).returncode == 0
    assert [r["path"] for r in read_csv(tmp_path / "r.csv")] == [os.path.join("lib", "0.wav"), os.path.join("lib", "1.wav")]
    (tmp_path / "link").symlink_to(lib)
    for spelled in (str(lib), "./link/"):
        proc = tagger("scan", spelled, *args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        rows = read_csv(tmp_path / "r.csv")
        assert [r["status"] for r in rows] == ["skipped", "skipped"]
        assert [r["path"] for r in rows] == [str(Path(spelled) / f"{i}.wav") for i in range(2)]  # as given


# -- 10: kill -9 and SIGTERM


@contextlib.contextmanager
def killable_run(tiny_model, tmp_path) -> Iterator[tuple[subprocess.Popen, Path, list[str], dict, Path]]:
    """A --write-tags run with two decoder workers, in its own process group, caught mid-run.

    Its stderr goes to a file, not a pipe: orphaned workers would hold a pipe open. Whatever
    happens in the test, no process of the group is left running afterwards.
    """
    lib = flac_library(tmp_path / "lib", 16)
    reference = {p: decode(p, 22050) for p in lib.iterdir()}
    report, stderr = tmp_path / "r.csv", tmp_path / "stderr.txt"
    args = ["scan", str(lib), "--model", str(tiny_model), "--csv", str(report), "--write-tags", "--jobs", "2", "--quiet"]
    with open(stderr, "w") as err:
        proc = subprocess.Popen([*slow_writes_cli(0.3), *args], stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)  # its own process group: the workers are in it too
    try:
        wait_for_rows(report, 2, proc)
        assert len(live_processes_in_group(proc.pid)) >= 3  # the driver and its decoder workers
        yield proc, report, args, reference, stderr
    finally:
        proc.kill()
        proc.wait()
        wait_for_group_to_end(proc.pid, timeout=0)


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes through /proc (Linux)")


@needs_proc
def test_kill_9_leaves_no_worker_behind(tiny_model, tmp_path):
    with killable_run(tiny_model, tmp_path) as (proc, report, args, reference, _):
        proc.kill()
        proc.wait(timeout=60)
        assert wait_for_group_to_end(proc.pid) == []
    for p, audio in reference.items():
        assert np.array_equal(decode(p, 22050), audio)
    final = tagger(*args)  # the lock died with the run
    assert final.returncode == 0, final.stderr
    assert len(read_csv(report)) == 16


@needs_proc
def test_sigterm_stops_like_ctrl_c_with_exit_143(tiny_model, tmp_path):
    with killable_run(tiny_model, tmp_path) as (proc, report, args, reference, stderr):
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert proc.returncode == 143, stderr.read_text()
        assert "terminated after" in one_error_line(stderr.read_text())
        assert wait_for_group_to_end(proc.pid) == []
    assert not [p for p in next(iter(reference)).parent.iterdir() if p.name.startswith(".")]  # no temp file left
    for p, audio in reference.items():
        assert np.array_equal(decode(p, 22050), audio)
    assert 2 <= len(read_csv(report)) < 16


# -- 11: bad paths are usage errors (2); anything unforeseen is an internal error (3)


def test_paths_that_cannot_be_resolved_are_usage_errors(tiny_model, tmp_path):
    (tmp_path / "dangling.flac").symlink_to(tmp_path / "gone.flac")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    write_audio(tmp_path / "lib" / "a.wav", tone(2.0))
    for bad, why in (("dangling.flac", "broken symlink"), ("loop", "symlink loop"), ("missing", "no such file or folder")):
        proc = tagger("scan", str(tmp_path / "lib"), str(tmp_path / bad), "--model", str(tiny_model),
                      "--csv", str(tmp_path / "r.csv"))
        assert proc.returncode == 2, proc.stderr
        assert why in one_error_line(proc.stderr) and bad in proc.stderr
    proc = tagger("scan", str(tmp_path / "lib"), "--model", str(tiny_model), "--csv", str(tmp_path / "nowhere" / "r.csv"))
    assert proc.returncode == 2 and "nowhere" in one_error_line(proc.stderr)
    proc = tagger("scan", str(tmp_path / "lib"), "--model", str(tmp_path / "nope.safetensors"), "--csv", str(tmp_path / "r.csv"))
    assert proc.returncode == 2 and "weights file not found" in one_error_line(proc.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling.flac", "lib", "loop"]  # no report, no lock


def test_an_internal_error_is_one_line_and_exit_3(tiny_model, tmp_path):
    write_audio(tmp_path / "lib" / "a.wav", tone(2.0))
    setup = "import tagger.scan\ndef boom(*a, **k): raise RuntimeError('boom')\ntagger.scan.Scanner._finish = boom"
    proc = subprocess.run([*patched_cli(setup), "scan", str(tmp_path / "lib"), "--model", str(tiny_model),
                           "--csv", str(tmp_path / "r.csv"), "--jobs", "1", "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr
    assert "internal error" in one_error_line(proc.stderr) and "boom" in proc.stderr


# -- the same, in process: a report on a disk that fills, a cache that cannot be opened


class FillingFile(io.FileIO):
    """A file on a disk with ``room`` bytes left, that takes at most ``piece`` bytes a write."""

    def __init__(self, path: Path, room: int, piece: int = 1 << 20) -> None:
        super().__init__(path, "wb")
        self.room, self.piece = room, piece

    def write(self, data) -> int:
        if self.room == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = super().write(bytes(data[: min(self.room, self.piece)]))  # short writes, like the OS
        self.room -= n
        return n


def _result(i: int):
    from tagger.labels import BUNDLED_LABELS
    from tagger.scan import TrackResult

    return TrackResult(Path(f"/music/{i:03d} ünïcode, \"quoted\".flac"), "ok", duration_s=12.5, segments=4,
                       scores={label: 0.5 for label in BUNDLED_LABELS}, instruments=[("piano", 0.5)], model="m", tags="dry-run")


@pytest.mark.parametrize("piece", [1 << 20, 7])
def test_a_full_disk_never_leaves_half_a_row(tmp_path, piece):
    from tagger.labels import BUNDLED_LABELS
    from tagger.report import CsvReport, ReportError

    path = tmp_path / "r.csv"
    report = CsvReport(FillingFile(path, room=1500, piece=piece), BUNDLED_LABELS, path)
    with pytest.raises(ReportError, match="No space left on device") as failed:
        for i in range(100):
            report.write(_result(i))
    report.close()
    assert failed.value.path == path
    rows = read_csv(path)
    assert 0 < report.rows == len(rows) < 100
    assert [r["path"] for r in rows] == [str(_result(i).path) for i in range(len(rows))]
    assert path.read_bytes().endswith(b"\n") and len(path.read_bytes()) <= 1500


def test_rows_are_whole_when_the_os_takes_each_write_in_pieces(tmp_path):
    from tagger.labels import BUNDLED_LABELS
    from tagger.report import CsvReport

    path = tmp_path / "r.csv"
    with CsvReport(FillingFile(path, room=1 << 30, piece=5), BUNDLED_LABELS, path) as report:
        for i in range(3):
            report.write(_result(i))
    assert [r["path"] for r in read_csv(path)] == [str(_result(i).path) for i in range(3)]


def test_a_cache_that_cannot_be_opened_is_not_mistaken_for_a_damaged_one(tmp_path):
    from tagger.cache import open_cache

    (tmp_path / "c.sqlite").mkdir()  # e.g. not a file, or a folder we cannot write
    with pytest.raises(sqlite3.OperationalError):
        open_cache(tmp_path / "c.sqlite", "key")
    assert [p.name for p in tmp_path.iterdir()] == ["c.sqlite"]  # nothing set aside


def test_a_damaged_cache_entry_is_scanned_again(tmp_path):
    from tagger.cache import open_cache

    audio = write_audio(tmp_path / "a.wav", tone(1.0))
    result = _result(0)
    result.path = audio
    with open_cache(tmp_path / "c.sqlite", "key") as cache:
        cache.put(result)
        assert cache.get(audio).status == "skipped"
        cache.db.execute("UPDATE results SET result = '{\"tags\": \"dry-run\", \"instr'")
        assert cache.get(audio) is None
        cache.put(result)
        stored = json.loads(cache.db.execute("SELECT result FROM results").fetchone()[0])
        stored["timeline"] = {"labels": ["piano"], "start_s": "not base64!", "end_s": "", "loudness_db": "", "scores_permille": ""}
        cache.db.execute("UPDATE results SET result = ?", (json.dumps(stored),))
        assert cache.get(audio) is None  # a stored timeline that does not decode: a miss too
