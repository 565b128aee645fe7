"""Ctrl-C and SIGTERM at any moment of a scan: while the model loads, mid-run, inside a
decoder's read, after the last row, during the interpreter's shutdown. Each ends within
seconds with exactly one line on stderr (no traceback, no ``Exception ignored``), exit 130
or 143, and no process of the run left alive.

Each signal goes to the run's whole process group, as a terminal's Ctrl-C does (the
decoder workers get it too), and only once the run has reached an observable state (a
marker file written by a patched step, rows in the report): no timing luck.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_cli import read_csv
from test_faults import flac_library, live_processes_in_group, needs_proc, wait_for_group_to_end

# The CLI through its entry point (tagger.__main__), with ``setup`` run first.
ENTRY = """
import sys
{setup}
from tagger.__main__ import main
sys.argv[0] = "tagger"
main()
"""
SIGNALS = {"SIGINT": (signal.SIGINT, 130, "interrupted"), "SIGTERM": (signal.SIGTERM, 143, "terminated")}
ENDS_WITHIN_S = 10.0


def _marker_then_wait(marker: Path, seconds: float = 60.0) -> str:
    """Python source: write ``marker``, then sleep (interruptibly) for ``seconds``."""
    return (f"__import__('pathlib').Path({str(marker)!r}).touch()\n"
            f"for _ in range({int(seconds * 20)}): __import__('time').sleep(0.05)")


def _indent(code: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in code.splitlines())


def start(setup: str, args: list[str], tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """The run in its own process group; stderr to a file (an orphan would hold a pipe open)."""
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", ENTRY.format(setup=setup), *args], stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)
    return proc, stderr


def wait_until(condition, proc: subprocess.Popen, what: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the run never got to {what} (exit {proc.poll()})")


def interrupt(proc: subprocess.Popen, stderr: Path, name: str, after: int = 0, bars: bool = False) -> str:
    """Send ``name`` to the run's process group; check how it ends; return its one line
    (the only one on stderr, or past its first ``after`` bytes; with ``bars``, besides
    the progress bars' last state)."""
    signum, code, word = SIGNALS[name]
    os.killpg(proc.pid, signum)
    sent = time.monotonic()
    try:
        proc.wait(timeout=60)
    finally:
        left = wait_for_group_to_end(proc.pid, timeout=5)
    took = time.monotonic() - sent
    text = stderr.read_bytes()[after:].decode()
    assert proc.returncode == code, text
    assert took < ENDS_WITHIN_S, f"ended {took:.1f} s after the signal"
    assert left == [], f"processes left: {left}"
    assert "Traceback" not in text and "Exception ignored" not in text and "Warning" not in text, text
    lines = [line for line in text.splitlines() if line.strip() and not (bars and "━" in line)]
    assert len(lines) == 1, text
    assert lines[0].startswith(word), text
    return lines[0]


def scan_args(lib: Path, model: Path, report: Path, *more: str) -> list[str]:
    return ["scan", str(lib), "--model", str(model), "--csv", str(report), "--quiet", *more]


@needs_proc
@pytest.mark.parametrize("name", SIGNALS)
def test_while_the_model_loads(tiny_model, tmp_path, name):
    """Workers decoding, the model still loading in its thread (for a minute): nothing waits for it."""
    lib = flac_library(tmp_path / "lib", 8)
    marker, report = tmp_path / "loading", tmp_path / "r.csv"
    setup = ("import tagger.scan\nload = tagger.scan.load_tensors\ndef slow_load(*a, **k):\n"
             f"{_indent(_marker_then_wait(marker), 4)}\n    return load(*a, **k)\ntagger.scan.load_tensors = slow_load")
    proc, stderr = start(setup, scan_args(lib, tiny_model, report, "--jobs", "2"), tmp_path)
    # the model loading, and the decoder workers started (the driver, the resource tracker, 2 workers)
    wait_until(lambda: marker.exists() and len(live_processes_in_group(proc.pid)) >= 4, proc, "the workers")
    line = interrupt(proc, stderr, name)
    assert "before the first file was done" in line and "unchanged" in line
    assert not report.exists()


@needs_proc
@pytest.mark.parametrize("name", SIGNALS)
def test_mid_run(tiny_model, tmp_path, name):
    lib = flac_library(tmp_path / "lib", 16)
    report = tmp_path / "r.csv"
    setup = ("import time, tagger.scan\nwrite = tagger.scan.write_instruments\n"
             "def slow_write(*a, **k):\n    time.sleep(0.3)\n    return write(*a, **k)\ntagger.scan.write_instruments = slow_write")
    proc, stderr = start(setup, scan_args(lib, tiny_model, report, "--jobs", "2", "--write-tags"), tmp_path)
    wait_until(lambda: report.exists() and len(read_csv(report)) >= 2, proc, "two rows")
    line = interrupt(proc, stderr, name)
    assert re.search(r"after \d+ of 16 files; their rows are in .*; run the same command again to finish", line), line
    assert 2 <= len(read_csv(report)) < 16
    assert not [p for p in lib.iterdir() if p.name.startswith(".")]  # no temporary file left


@needs_proc
@pytest.mark.parametrize("name", SIGNALS)
def test_inside_a_decoders_read(tiny_model, tmp_path, name):
    """--jobs 1 decodes in the driver: the signal lands in Python code PyAV calls to read
    the file, where an exception cannot pass (``Exception ignored in: 'av.container.pyio...'``)."""
    lib = flac_library(tmp_path / "lib", 6)
    marker, report = tmp_path / "reading", tmp_path / "r.csv"
    # the file object under the reader waits, so the signal lands inside the reader's own code
    setup = ("import pathlib, tagger.decode\ninit = tagger.decode._LimitedReader.__init__\n"
             "class SlowFile:\n    def __init__(self, f):\n        self.f = f\n"
             "    def __getattr__(self, name):\n        return getattr(self.f, name)\n"
             "    def readinto(self, buffer):\n"
             f"        if not pathlib.Path({str(marker)!r}).exists():\n"
             f"{_indent(_marker_then_wait(marker), 12)}\n"
             "        return self.f.readinto(buffer)\n"
             "def slow_init(self, path, deadline):\n    init(self, path, deadline)\n"
             "    if str(path).endswith('03.flac'):\n        self._file = SlowFile(self._file)\n"
             "tagger.decode._LimitedReader.__init__ = slow_init")
    proc, stderr = start(setup, scan_args(lib, tiny_model, report, "--jobs", "1", "--batch-size", "1"), tmp_path)
    wait_until(marker.exists, proc, "reading the fourth file")
    line = interrupt(proc, stderr, name)
    assert "after 3 of 6 files" in line, line
    assert [Path(r["path"]).name for r in read_csv(report)] == ["00.flac", "01.flac", "02.flac"]


@needs_proc
@pytest.mark.parametrize("name", SIGNALS)
def test_after_the_last_row(tiny_model, tmp_path, name):
    """Every row written, the command not yet returned (here: writing its summary)."""
    lib = flac_library(tmp_path / "lib", 4)
    marker, report = tmp_path / "summary", tmp_path / "r.csv"
    setup = f"import tagger.cli\ndef slow_summary(*a, **k):\n{_indent(_marker_then_wait(marker), 4)}\ntagger.cli._summary = slow_summary"
    proc, stderr = start(setup, ["scan", str(lib), "--model", str(tiny_model), "--csv", str(report), "--jobs", "2"], tmp_path)
    wait_until(marker.exists, proc, "the summary")
    progress = stderr.read_bytes()  # the progress bar: what follows must be one line
    line = interrupt(proc, stderr, name, after=len(progress))
    assert b"Traceback" not in progress
    assert len(read_csv(report)) == 4
    assert line in ("interrupted", "terminated")


@needs_proc
@pytest.mark.parametrize("name", SIGNALS)
def test_while_the_interpreter_shuts_down(tiny_model, tmp_path, name):
    """The command is over (exit 0 on its way), Python runs its exit handlers: still one line."""
    lib = flac_library(tmp_path / "lib", 3)
    marker, report = tmp_path / "exiting", tmp_path / "r.csv"
    setup = f"import atexit\ndef slow_exit():\n{_indent(_marker_then_wait(marker), 4)}\natexit.register(slow_exit)"
    proc, stderr = start(setup, scan_args(lib, tiny_model, report, "--jobs", "2"), tmp_path)
    wait_until(marker.exists, proc, "the interpreter's exit")
    interrupt(proc, stderr, name)
    assert len(read_csv(report)) == 3


@needs_proc
def test_after_force_the_hint_resumes_instead_of_rescanning(tiny_model, tmp_path):
    lib = flac_library(tmp_path / "lib", 12)
    report = tmp_path / "r.csv"
    setup = ("import time, tagger.scan\nwrite = tagger.scan.write_instruments\n"
             "def slow_write(*a, **k):\n    time.sleep(0.3)\n    return write(*a, **k)\ntagger.scan.write_instruments = slow_write")
    args = scan_args(lib, tiny_model, report, "--jobs", "1", "--write-tags", "--force")
    proc, stderr = start(setup, args, tmp_path)
    wait_until(lambda: report.exists() and len(read_csv(report)) >= 2, proc, "two rows")
    line = interrupt(proc, stderr, "SIGINT")
    done = len(read_csv(report))
    command = line.split("run it again without --force: ", 1)[1]
    assert command.startswith("tagger scan ") and "--force" not in command
    again = subprocess.run([sys.executable, "-m", "tagger", *shlex.split(command)[1:]], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    rows = read_csv(report)
    assert len(rows) == 12
    assert [r["status"] for r in rows].count("skipped") >= done  # the files done before were not scanned again



@needs_proc
@pytest.mark.parametrize("name", SIGNALS)
def test_eval_while_joblib_workers_run(tiny_model, tmp_path, name):
    """tagger eval (and train) extract features in joblib's worker processes: none is left."""
    from audio_helpers import tone, write_audio
    from tagger.weights import read_header

    for j, label in enumerate(read_header(tiny_model).labels[:2]):
        for i in range(40):  # two chunks of 32 files at least: workers are busy or waiting for more
            write_audio(tmp_path / "data" / label / f"{i}.wav", tone(2.0, 100 + 10 * i + j))
    marker = tmp_path / "features"
    setup = ("import tagger.cli\nmake = tagger.cli._rich_progress\ndef patched():\n    progress, report = make()\n"
             "    def slow_report(stage, done, total):\n        report(stage, done, total)\n"
             f"        if done:\n{_indent(_marker_then_wait(marker), 12)}\n"
             "    return progress, slow_report\ntagger.cli._rich_progress = patched")
    proc, stderr = start(setup, ["eval", str(tmp_path / "data"), "--model", str(tiny_model), "--jobs", "2"], tmp_path)
    wait_until(lambda: marker.exists() and len(live_processes_in_group(proc.pid)) >= 4, proc, "the first features")
    assert interrupt(proc, stderr, name, bars=True) == SIGNALS[name][2]
