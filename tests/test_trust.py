"""Issue 27: outputs never clobber inputs, a changed file never gets stale tags, fixed
names never follow symlinks, runs never remove each other's temporary files, the owner
of a file is kept, and a full disk leaves no debris."""
from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

from audio_helpers import noise, tone, write_audio
from tagger import tags as tagmod
from tagger.errors import TagWriteError
from tagger.identity import FileIdentity
from tagger.labels import BUNDLED_LABELS
from tagger.tags import TEMP_MARKER, InstrumentTags, cleanup_leftovers, read_instruments, write_instruments
from test_cli import read_csv, tagger
from test_faults import one_error_line, tiny_filesystem  # noqa: F401 (a fixture)

REPO = Path(__file__).resolve().parents[1]
TAGS = InstrumentTags(["piano"], {"piano": 0.8}, "tagger test")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TEMP_MARKER in p.name or p.name.startswith("."))


def write_report_csv(path: Path, n: int = 3) -> Path:
    """A real CSV report of ``n`` rows, as a scan writes it."""
    from tagger.report import CsvReport
    from tagger.scan import TrackResult

    with CsvReport.open(path, BUNDLED_LABELS) as report:
        for i in range(n):
            report.write(TrackResult(Path(f"/music/{i}.flac"), "ok", duration_s=9.0, segments=3,
                                     scores={label: 0.25 for label in BUNDLED_LABELS}, instruments=[("piano", 0.25)],
                                     model="m", tags="dry-run"))
    return path


# -- 1: an output never overwrites an input, another output, or a file of another kind


@pytest.fixture
def songs(tmp_path) -> tuple[Path, Path]:
    return write_audio(tmp_path / "a.wav", tone(2.0)), write_audio(tmp_path / "b.flac", noise(2.0))


def _refused(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)
    assert all(w in line for w in words), line
    return line


def test_a_forgotten_report_name_never_overwrites_a_song(tiny_model, songs, tmp_path):
    a, b = songs
    before = digest(a)
    # `tagger scan --csv a.wav b.flac`: the report's name forgotten, a.wav taken for it
    _refused(tagger("scan", "--csv", str(a), str(b), "--model", str(tiny_model)), "--csv", "is not a CSV report")
    assert digest(a) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.flac"]  # not even a lock file


@pytest.mark.parametrize("option", ["--csv", "--segments", "--html"])
def test_an_output_that_is_an_input_is_refused(songs, tmp_path, option):
    a, b = songs
    before = digest(b)
    link = tmp_path / "link.out"
    link.symlink_to(b.name)  # the same file by another name
    for out in (b, link):
        args = ["--csv", str(tmp_path / "r.csv")] if option != "--csv" else []
        _refused(tagger("scan", str(a), str(b), option, str(out), *args), option, "is one of the files read")
    assert digest(b) == before


def test_an_output_with_an_audio_name_inside_a_scanned_folder_is_refused(songs, tmp_path):
    _refused(tagger("scan", str(tmp_path), "--csv", str(tmp_path / "report.mp3")), "--csv", "audio file's name")


def test_an_output_with_an_audio_name_is_refused_wherever_it_is(songs, tmp_path):
    """`tagger scan one.flac --csv new.mp3`: no file is clobbered, but a report named like
    audio is a forgotten argument (and the next scan of that folder would take it for audio)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _refused(tagger("scan", str(songs[0]), "--csv", str(elsewhere / "new.mp3")), "--csv", "audio file's name")
    assert not (elsewhere / "new.mp3").exists()
    assert not (tmp_path / "report.mp3").exists()


@pytest.mark.parametrize("pair", [("--segments", "r.csv"), ("--html", "r.csv"), ("--segments", "r.csv.lock")])
def test_two_outputs_naming_one_file_are_refused(songs, tmp_path, pair):
    a, _ = songs
    option, name = pair
    _refused(tagger("scan", str(a), "--csv", str(tmp_path / "r.csv"), option, str(tmp_path / name)), "its own name")
    assert not (tmp_path / "r.csv").exists()


def test_an_existing_output_must_be_what_tagger_writes_there(songs, tmp_path):
    from tagger.outputs import CSV_REPORT, HTML_PAGE, TIMELINE_CSV, Output, OutputError, check_outputs

    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    for kind in (CSV_REPORT, TIMELINE_CSV, HTML_PAGE):
        with pytest.raises(OutputError, match="exists and is not a"):
            check_outputs([], [Output("--x", notes, kind)])
    report = write_report_csv(tmp_path / "r.csv")
    (tmp_path / "t.csv").write_text("path,start_s,end_s,loudness_db,piano\n")
    (tmp_path / "r.html").write_text("\n<!DOCTYPE html><html></html>")
    (tmp_path / "empty").touch()
    check_outputs([], [Output("--csv", report, CSV_REPORT), Output("--segments", tmp_path / "t.csv", TIMELINE_CSV),
                       Output("--html", tmp_path / "r.html", HTML_PAGE), Output("--x", tmp_path / "empty", CSV_REPORT),
                       Output("--y", Path(os.devnull), HTML_PAGE)])  # an old report, a device: fine


def test_report_never_writes_over_its_inputs(tmp_path, songs):
    report = write_report_csv(tmp_path / "r.csv")
    before = digest(report)
    _refused(tagger("report", str(report), "-o", str(report)), "-o", "is one of the files read")
    _refused(tagger("report", str(report), "-o", str(songs[0])), "-o", "is not a HTML page")
    assert digest(report) == before


# -- 2: a file replaced during a run never gets the labels of the file scanned


def _scanner(tiny_model, **options):
    from tagger.inference import Scorer
    from tagger.scan import Scanner, ScanOptions

    return Scanner(Scorer.from_path(tiny_model, "cpu"), ScanOptions(jobs=1, **options))


@pytest.mark.parametrize("write_tags", [True, False])
def test_a_file_replaced_after_it_was_decoded_is_not_tagged_nor_cached(tiny_model, tmp_path, monkeypatch, write_tags):
    from tagger.cache import open_cache
    from tagger.scan import Scanner

    song = write_audio(tmp_path / "lib" / "song.flac", tone(4.0, 220))
    other = write_audio(tmp_path / "elsewhere" / "other.flac", noise(5.0))
    other_digest = digest(other)
    finish = Scanner._finish

    def replaced_then_finished(self, st):  # `mv other.flac song.flac` while the driver was stopped
        os.replace(other, song)
        return finish(self, st)

    monkeypatch.setattr(Scanner, "_finish", replaced_then_finished)
    scanner = _scanner(tiny_model, write_tags=write_tags)
    with open_cache(tmp_path / "c.sqlite", scanner.result_key) as cache:
        scanner.cache = cache
        [result] = scanner.scan_files([song])
        if write_tags:
            assert (result.status, result.error) == ("error", "could not write tags: file changed since it was scanned")
            assert digest(song) == other_digest and read_instruments(song).instruments == []
        else:
            assert result.status == "ok"
        assert cache.get(song) is None  # the new file is scanned next time


def test_a_file_replaced_before_it_was_decoded_is_an_error_row(tiny_model, tmp_path, monkeypatch):
    from tagger.scan import Scanner

    song = write_audio(tmp_path / "lib" / "song.flac", tone(4.0, 220))
    other = write_audio(tmp_path / "elsewhere" / "other.flac", noise(5.0))
    plan = Scanner._plan_file

    def planned_then_replaced(self, st, file_id, path):
        tasks = plan(self, st, file_id, path)
        os.replace(other, song)
        return tasks

    monkeypatch.setattr(Scanner, "_plan_file", planned_then_replaced)
    [result] = _scanner(tiny_model, write_tags=True).scan_files([song])
    assert (result.status, result.error) == ("error", "file changed while it was scanned")
    assert read_instruments(song).instruments == []


def test_write_instruments_refuses_a_file_that_is_not_the_one_scanned(tmp_path):
    song = write_audio(tmp_path / "song.flac", tone(2.0))
    scanned = FileIdentity.of_path(song)
    write_audio(tmp_path / "new.flac", noise(2.0)).replace(song)
    with pytest.raises(TagWriteError, match="^file changed since it was scanned$"):
        write_instruments(song, TAGS, expected=scanned)
    assert read_instruments(song).instruments == [] and temps(tmp_path) == []
    written = write_instruments(song, TAGS, expected=FileIdentity.of_path(song))
    assert written == FileIdentity.of_path(song)  # what the cache is keyed on after a write


# -- 5: a second run never removes the temporary file of a write in progress


@pytest.fixture
def paused_write(tmp_path, monkeypatch):
    """A tag write in a thread, paused after its temp copy is made: ``(song, finish, errors)``;
    ``finish()`` lets it go on and waits for it to end."""
    song = write_audio(tmp_path / "song.flac", tone(2.0))
    started, release, errors = threading.Event(), threading.Event(), []
    save = tagmod._save

    def paused_save(*args, **kwargs):
        started.set()
        release.wait(60)
        return save(*args, **kwargs)

    monkeypatch.setattr(tagmod, "_save", paused_save)

    def write():
        try:
            write_instruments(song, TAGS)
        except TagWriteError as exc:
            errors.append(exc)

    def finish():
        release.set()
        thread.join(60)
        assert not thread.is_alive()

    thread = threading.Thread(target=write)
    thread.start()
    assert started.wait(60)
    yield song, finish, errors
    finish()


def test_a_temp_in_use_is_never_removed_as_a_leftover(paused_write):
    song, finish, errors = paused_write
    [temp] = [p for p in song.parent.iterdir() if TEMP_MARKER in p.name]
    assert cleanup_leftovers(song.parent) == []  # what a second run does first
    assert temp.exists()
    finish()
    assert errors == [] and read_instruments(song).instruments == ["piano"]
    assert [p.name for p in song.parent.iterdir()] == ["song.flac"]


def test_a_temp_removed_by_another_program_is_the_reason_given(paused_write):
    song, finish, errors = paused_write
    before = digest(song)
    [temp] = [p for p in song.parent.iterdir() if TEMP_MARKER in p.name]
    temp.unlink()  # an older tagger's cleanup, or a user
    finish()
    assert len(errors) == 1 and "temporary copy" in str(errors[0]) and "removed or replaced by another program" in str(errors[0])
    assert digest(song) == before


# -- 6: the owner of a file is kept, or the write refused


def test_owner_group_and_mode_are_kept(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root can give a file to another user")
    song = write_audio(tmp_path / "song.flac", tone(2.0))
    os.chown(song, 12345, 23456)
    os.chmod(song, 0o640)
    write_instruments(song, TAGS)
    st = song.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (12345, 23456, 0o640)
    assert read_instruments(song).instruments == ["piano"]


WRITE_AS_OTHER_USER = """
import sys
from pathlib import Path
from tagger.errors import TagWriteError
from tagger.tags import InstrumentTags, write_instruments
try:
    write_instruments(Path(sys.argv[1]), InstrumentTags(["piano"], {"piano": 0.8}, "tagger test"))
    print("written")
except TagWriteError as exc:
    print(exc)
"""


def test_a_user_writing_roots_world_writable_file_is_refused(tmp_path):
    """As ``nobody``, a root:root 0666 file in a 0777 folder: refused, the file untouched."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run a write as another user")
    nobody = pwd.getpwnam("nobody")
    as_nobody = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", sys.executable]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": "/"}
    probe = subprocess.run([*as_nobody, "-c", "import tagger.tags"], capture_output=True, timeout=120, cwd="/", env=env)
    if probe.returncode != 0:  # a clone inside a private folder (mktemp -d makes 0700 ones)
        pytest.skip("nobody cannot read this checkout or its Python, so cannot run tagger as another user")
    folder = Path(tempfile.mkdtemp(prefix="tagger-owner-", dir="/tmp"))  # reachable by nobody
    try:
        folder.chmod(0o777)
        song = write_audio(folder / "song.flac", tone(2.0))
        song.chmod(0o666)
        before = digest(song)
        proc = subprocess.run([*as_nobody, "-c", WRITE_AS_OTHER_USER, str(song)],
                              capture_output=True, text=True, timeout=120, cwd="/", env=env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("cannot keep the owner"), proc.stdout
        st = song.stat()
        assert (st.st_uid, st.st_gid) == (0, 0) and digest(song) == before
        assert sorted(p.name for p in folder.iterdir()) == ["song.flac"]
    finally:
        shutil.rmtree(folder)


# -- 7: fixed names never follow symlinks


def test_a_symlink_planted_as_the_report_lock_is_not_followed(tmp_path):
    from tagger.report import ReportError, report_lock

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "r.csv.lock").symlink_to(victim)
    with pytest.raises(ReportError, match="symlink"):
        with report_lock(tmp_path / "r.csv"):
            pass
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("name", ["r.csv.lock", "r.csv.cache.sqlite"])
def test_a_scan_never_writes_through_a_symlink_planted_beside_the_report(songs, tmp_path, name):
    victim = tmp_path / "victim.txt"
    victim.touch()  # empty: SQLite would make a database of it
    (tmp_path / name).symlink_to(victim)
    _refused(tagger("scan", str(songs[0]), "--csv", str(tmp_path / "r.csv")), name, "is a symlink")
    assert victim.read_bytes() == b""


def test_a_symlink_planted_as_the_html_temp_is_not_followed(tmp_path):
    from tagger.html_report import write_report

    report = write_report_csv(tmp_path / "r.csv")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / ".r.html.tmp").symlink_to(victim)
    write_report(report, None, tmp_path / "r.html")
    assert victim.read_text() == "precious\n"
    assert (tmp_path / "r.html").read_text().lower().startswith("<!doctype html")
    assert not (tmp_path / "r.html").is_symlink()


def test_a_symlink_planted_as_the_parquet_partial_is_not_followed(tmp_path):
    pytest.importorskip("pyarrow")
    from tagger.timeline import TimelineWriter, read_timelines

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "t.parquet.partial").symlink_to(victim)
    with TimelineWriter(tmp_path / "t.parquet", ("piano",)) as writer:
        writer.write("a.flac", _timeline(3))
    assert victim.read_text() == "precious\n"
    assert [p for p, _ in read_timelines(tmp_path / "t.parquet")] == ["a.flac"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet", "t.parquet.partial", "victim.txt"]


def test_an_output_that_is_a_device_is_written_to_not_replaced(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root can make a device node")
    from tagger.html_report import write_report

    null = tmp_path / "null"
    os.mknod(null, 0o666 | 0o020000, os.makedev(1, 3))  # like /dev/null
    write_report(write_report_csv(tmp_path / "r.csv"), None, null)
    assert null.is_char_device()


# -- 8: a full disk leaves no debris


def _timeline(n: int, labels=("piano",)):
    from tagger.timeline import Timeline

    starts = np.arange(n) * 3.0
    return Timeline(starts, starts + 3.0, np.full(n, -20.0, np.float32), np.full((n, len(labels)), 0.5, np.float32), tuple(labels))


def test_html_report_on_a_full_disk_exits_3_and_leaves_no_temp(tmp_path, tiny_filesystem):  # noqa: F811
    report = write_report_csv(tmp_path / "r.csv", 40)
    proc = tagger("report", str(report), "-o", str(tiny_filesystem / "r.html"))
    assert proc.returncode == 3, proc.stderr
    assert "No space left on device" in one_error_line(proc.stderr)
    assert sorted(p.name for p in tiny_filesystem.iterdir()) == ["filler"]


def test_a_csv_timeline_on_a_full_disk_is_cut_back_to_whole_tracks(tiny_filesystem):  # noqa: F811
    from tagger.timeline import TimelineError, TimelineWriter, read_timelines

    path = tiny_filesystem / "t.csv"
    labels = tuple(BUNDLED_LABELS)
    written = 0
    with pytest.raises(TimelineError, match="No space left on device"):
        with TimelineWriter(path, labels) as writer:
            for i in range(1000):
                writer.write(f"/music/{i:04d}.flac", _timeline(7, labels))
                written += 1
    text = path.read_bytes()
    assert text.endswith(b"\n")
    tracks = list(read_timelines(path, labels))
    assert len(tracks) == written > 0 and all(len(t) == 7 for _, t in tracks)
    assert len(read_csv(path)) == 7 * written
