"""Hostile but fair input: special files, long names, pathological files, damaged tags.

Each bad file costs exactly one row with a plain one-line reason, never the run, and no
file is ever opened that would block (a FIFO) or never end (a device).
"""
from __future__ import annotations

import csv
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from audio_helpers import tone, write_audio
from tagger import tags as tagmod
from tagger.discover import discover, file_problem
from tagger.errors import TagWriteError
from tagger.inference import Scorer
from tagger.scan import Scanner, ScanOptions, _Task, load_span
from tagger.tags import InstrumentTags, cleanup_leftovers, read_instruments, write_instruments

TAGS = InstrumentTags(["piano"], {"piano": 0.9}, "tagger 0.0.0 test")
posix_only = pytest.mark.skipif(sys.platform != "linux", reason="needs Linux special files")


def run(model: Path, paths, **options) -> list:
    return list(Scanner(Scorer.from_path(model, "cpu"), ScanOptions(jobs=1, **options)).scan(paths))


def cli(*args: str, memory_gb: float = 8.0, timeout: float = 180, **kw) -> subprocess.CompletedProcess:
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
    short = Path(tempfile.mkdtemp(prefix="s", dir="/tmp")) / "s"  # a socket's path is at most 107 bytes
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.fspath(short))
    sock.close()
    os.rename(short, root / "f-sock.wav")
    short.parent.rmdir()
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
        loaded = load_span(_Task(0, str(path), 0, 0.0, None, True), 22050, 66150, 66150)
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


# --- item 4: per-file limits on time and memory ----------------------------------------


def mp3_bytes(tmp_path: Path, seconds: float = 2.0) -> bytes:
    import av

    import tagfixtures as fx

    if fx.encoder_missing("libmp3lame"):
        pytest.skip("no MP3 encoder in this PyAV build")
    path = tmp_path / "source.mp3"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libmp3lame", rate=44100, layout="mono")
        wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(44100 * seconds)) / 44100)).astype(np.float32)
        for start in range(0, len(wave), 1152):
            frame = av.AudioFrame.from_ndarray(wave[None, start:start + 1152], format="fltp", layout="mono")
            frame.sample_rate = 44100
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    data = path.read_bytes()
    path.unlink()
    return data


DECODE_IN_A_SMALL_PROCESS = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from pathlib import Path
from tagger.decode import decode, probe
from tagger.errors import AudioDecodeError
for path in sys.argv[1:]:
    for name, call in (("probe", lambda: probe(Path(path))), ("decode", lambda: decode(Path(path), 22050))):
        try:
            call()
            print(name, "ok")
        except AudioDecodeError as exc:
            print(name, exc)
"""


@posix_only
def test_sparse_files_cost_neither_memory_nor_minutes(tmp_path):
    """A 4 GB all-zero .mp3, and a real MP3 frame followed by 4 GB of zeros: FFmpeg used to
    read either to the end into memory (2 GB and 6 s per 2 GB); now it gives up after
    READ_WITHOUT_AUDIO_LIMIT bytes, well inside a 1 GB address space."""
    zeros = tmp_path / "zeros.mp3"
    with open(zeros, "wb") as f:
        f.truncate(4 << 30)
    tail = tmp_path / "tail.mp3"
    head = mp3_bytes(tmp_path)
    with open(tail, "wb") as f:
        f.write(head)
        f.truncate(4 << 30)
    proc = subprocess.run([sys.executable, "-c", DECODE_IN_A_SMALL_PROCESS, str(zeros), str(tail)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["probe not an audio file (no valid mp3 audio stream found; nothing found in the first 128 MB)",
                         "decode not an audio file (no valid mp3 audio stream found; nothing found in the first 128 MB)"]
    assert lines[2] == "probe ok"
    assert lines[3].startswith("decode corrupt: 128 MB of data without audio at byte ")
    at = int(lines[3].rsplit(" ", 1)[1])
    assert len(head) - 2**16 <= at <= len(head) + 2**20  # where the zeros start, give or take a read


def test_time_limit_gives_one_row_per_file_and_the_run_goes_on(tiny_model, tmp_path):
    from tagger.decode import decode, probe
    from tagger.errors import AudioDecodeError

    song = write_audio(tmp_path / "lib" / "a.wav", tone(2.0))
    write_audio(tmp_path / "lib" / "b.flac", tone(2.0, 220))
    with pytest.raises(AudioDecodeError, match=r"^took longer than the per-file time limit \(1e-06 s\)$"):
        decode(song, 22050, time_limit_s=1e-6)  # past the deadline at the first check, whatever the machine
    with pytest.raises(AudioDecodeError, match="took longer"):
        probe(song, time_limit_s=1e-6)
    results = run(tiny_model, [tmp_path / "lib"], file_timeout=1e-6)
    assert [(r.path.name, r.status, r.error) for r in results] == [
        ("a.wav", "error", "took longer than the per-file time limit (1e-06 s)"),
        ("b.flac", "error", "took longer than the per-file time limit (1e-06 s)"),
    ]
    assert [r.status for r in run(tiny_model, [tmp_path / "lib"])] == ["ok", "ok"]  # the default limit is generous


def test_a_stuck_worker_is_killed_and_costs_only_its_task():
    """Item 3 sleeps for 10 minutes: its worker is killed after 10 s (the limit counts
    from when the driver waits for it, so it also covers the workers' start), the task
    the other worker held is retried, and the run goes on."""
    from tagger.backends import TaskTimeout, worker_pool
    from worker_tasks import stuck_on_three

    with worker_pool("local", 2, task_timeout_s=10.0) as pool:
        results = list(pool(stuck_on_three, range(7), lambda item, exc: (item, type(exc).__name__, str(exc))))
    assert results == [0, 10, 20, (3, "TaskTimeout", "no result after 10 s"), 40, 50, 60]
    assert issubclass(TaskTimeout, TimeoutError)


def test_decoding_workers_have_a_memory_cap_and_the_driver_does_not():
    from tagger.backends import worker_pool

    mb = 1 << 20
    with worker_pool("local", 2, memory_mb=1024) as pool:
        results = list(pool(bytearray, [mb, 1536 * mb, mb], lambda item, exc: type(exc).__name__))
    assert results == [bytearray(mb), "MemoryError", bytearray(mb)]
    assert len(bytearray(1536 * mb)) == 1536 * mb


def test_running_out_of_memory_costs_one_row(tmp_path, monkeypatch):
    import tagger.scan as scan_mod

    song = write_audio(tmp_path / "a.wav", tone(2.0))

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(scan_mod, "decode", no_memory)
    loaded = load_span(_Task(0, str(song), 0, 0.0, None, True), 22050, 66150, 66150, 120.0, 512)
    assert loaded.error == "decoding needed more than the per-file memory limit (512 MB)" and loaded.inputs is None
    assert scan_mod._worker_failed(_Task(0, str(song), 0, 0.0, None, True), scan_mod.TaskTimeout(150.0)).error == (
        "took longer than the per-file time limit; its decoder process was stopped after 150 s")


# --- item 12: plain reasons, one line ------------------------------------------------------


def fixture_file(tmp_path: Path, name: str, seconds: float = 1.5) -> Path:
    import tagfixtures as fx

    container = {c.name: c for c in fx.CONTAINERS}[name]
    missing = fx.encoder_missing(container.codec)
    if missing:
        pytest.skip(missing)
    path = tmp_path / f"base_{name}{container.suffix}"
    fx.make_audio(path, container, seconds=seconds)
    fx.seed_tags(path, container.kind)
    return path


def id3v2_tag() -> bytes:
    """An ID3v2.4 tag with a title, as some tools put in front of any file."""
    from test_fuzz import id3v2_tag as made_by_the_fuzz_test

    return made_by_the_fuzz_test()


def mutant(tmp_path: Path, source: Path, name: str, change) -> Path:
    path = tmp_path / name
    path.write_bytes(change(source.read_bytes()))
    return path


def set_u32(data: bytes, at: int, value: int, fmt: str) -> bytes:
    return data[:at] + struct.pack(fmt, value) + data[at + 4:]


CASES = {
    # name: (container, mutation, expected error of the tag write)
    "truncated AIFF": ("aiff", lambda d: d[: len(d) // 2],
                       "damaged container: the tags written could not be read back"),  # was 'NoneType' ... 'getall'
    "huge WAV chunk size": ("wav", lambda d: set_u32(d, d.index(b"id3 ") + 4, 0xFFFFFFFF, "<I"),
                            "tag write failed: a size field of the file is out of range"),  # was a struct error
    "negative ASF object size": ("wma", lambda d: d[:46] + struct.pack("<Q", 8) + d[54:],
                                 "unreadable tags: a size field of the file is out of range"),  # was an uncaught ValueError
    "ID3 in front of a WAV": ("wav", lambda d: id3v2_tag() + d,
                              "unsupported container (WAV data behind an ID3v2 tag)"),  # was "can't sync to MPEG frame"
    "truncated MP4": ("m4a", lambda d: d[:40], "unreadable tags: not a valid MP4 file"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_tag_writes_say_why_in_plain_words(tmp_path, case):
    container, change, expected = CASES[case]
    path = mutant(tmp_path, fixture_file(tmp_path, container), f"bad.{container}", change)
    before = path.read_bytes()
    with pytest.raises(TagWriteError) as caught:
        write_instruments(path, TAGS)
    assert str(caught.value) == expected and caught.value.path == path
    assert path.read_bytes() == before  # untouched
    assert not [n for n in os.listdir(tmp_path) if ".tagger-tmp" in n]


def test_an_id3_prefixed_flac_is_tagged(tmp_path):
    """mutagen reads FLAC behind an ID3v2 tag, but the temp copy's name does not end in
    .flac, so it was taken for an MP3 and refused ("can't sync to MPEG frame")."""
    from tagger.decode import decode

    source = fixture_file(tmp_path, "flac")
    for name in ("prefixed.flac", "prefixed.mp3"):  # judged by content, whatever its name
        path = mutant(tmp_path, source, name, lambda d: id3v2_tag() + d)
        audio = decode(path, 22050)
        write_instruments(path, TAGS)
        assert read_instruments(path).instruments == ["piano"]
        assert path.read_bytes().startswith(id3v2_tag())  # the user's ID3 tag is kept
        np.testing.assert_array_equal(decode(path, 22050), audio)


def test_plain_reasons_for_what_mutagen_raises():
    from mutagen import MutagenError

    from tagger.tags import _plain

    assert _plain(MutagenError()) == "damaged data (MutagenError)"  # was an empty "unreadable tags:"
    assert _plain(struct.error("'I' format requires 0 <= number <= 4294967295")) == "a size field of the file is out of range"
    assert _plain(MutagenError("'/x/y.flac' is not a valid FLAC file")) == "not a valid FLAC file"  # no path twice
    assert _plain(MutagenError("Invalid chunk ID '\x00\x00\x00'")) == "damaged chunk header"
    assert _plain(AttributeError("'NoneType' object has no attribute 'getall'")) == "'NoneType' object has no attribute 'getall'"


def test_error_lines_on_stderr_are_one_line_whatever_the_name(tiny_model, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    odd = lib / "new\nline\x1b[31m.mp3"
    odd.write_bytes(b"not audio at all" * 64)
    proc = cli("scan", str(lib), "--model", str(tiny_model), "--csv", str(tmp_path / "r.csv"), "--jobs", "1", "--quiet")
    assert proc.returncode == 1, proc.stderr
    [line] = [line for line in proc.stderr.splitlines() if line.strip()]
    assert line == f"error: {lib}/new\\nline\\x1b[31m.mp3: not an audio file (Invalid data found when processing input)"
    [row] = read_rows(tmp_path / "r.csv")
    assert row["path"] == str(odd)  # the report keeps the name as it is


# --- issue 27 item 9: crafted weights ------------------------------------------------------


def crafted_weights(tmp_path: Path, source: Path, change) -> Path:
    """``source`` with its metadata changed by ``change(meta)``: the same tensors, under a
    name without a digest (the loader warns that it cannot verify it, and reads it)."""
    import json

    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(source), framework="numpy") as f:
        meta = json.loads(f.metadata()["tagger"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    change(meta)
    out = tmp_path / "crafted.safetensors"
    save_file(tensors, str(out), metadata={"tagger": json.dumps(meta)})
    return out


def relabel(*labels):
    def change(meta):
        meta["model"]["labels"] = list(labels)
        meta["thresholds"] = {label: 0.5 for label in labels}
    return change


def threshold(value):
    def change(meta):
        meta["thresholds"]["piano"] = value
    return change


CRAFTED = {
    # case: (change, what the one line says)
    "label path": (relabel("piano", "path"), "label 'path' is the name of a report column"),
    "label status": (relabel("status", "piano"), "label 'status' is the name of a report column"),
    "label start_s": (relabel("piano", "start_s"), "label 'start_s' is the name of a report column"),
    "label __proto__": (relabel("piano", "__proto__"), "label '__proto__' is not a name of lowercase letters"),
    "label constructor": (relabel("constructor", "piano"), "label 'constructor' is a name every JavaScript object has"),
    "label with a capital": (relabel("Piano"), "label 'Piano' is not a name"),
    "label with a space": (relabel("acoustic guitar"), "label 'acoustic guitar' is not a name"),
    "label with markup": (relabel("</script>"), "label '</script>' is not a name"),
    "label formula": (relabel("=1+1"), "label '=1+1' is not a name"),
    "empty label": (relabel("piano", ""), "label '' is not a name"),
    "label twice": (relabel("piano", "drums", "piano"), "label 'piano' appears twice"),
    "no labels": (relabel(), "no labels"),
    "label not a string": (relabel("piano", 7), "label 7 is not a name"),
    "NaN threshold": (threshold(float("nan")), "threshold of 'piano' is nan, not a number in [0, 1]"),
    "infinite threshold": (threshold(float("inf")), "threshold of 'piano' is inf"),
    "threshold above 1": (threshold(1.5), "threshold of 'piano' is 1.5"),
    "negative threshold": (threshold(-0.1), "threshold of 'piano' is -0.1"),
    "threshold as text": (threshold("0.5"), "threshold of 'piano' is '0.5'"),
    "threshold true": (threshold(True), "threshold of 'piano' is True"),
    "threshold missing": (threshold(None), "threshold of 'piano' is None"),
    "NaN track threshold": (lambda m: m["aggregation"].update(track_threshold=float("nan")), "unknown aggregation"),
    "model name a formula": (lambda m: m.update(name='=HYPERLINK("http://x","x")'), "model name '=HYPERLINK"),
    "model name with markup": (lambda m: m.update(name="<img src=x onerror=alert(1)>"), "model name '<img"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_weights_are_refused_with_one_line(tiny_model, tmp_path, case):
    from tagger.errors import ModelLoadError
    from tagger.weights import read_header

    change, expected = CRAFTED[case]
    path = crafted_weights(tmp_path, tiny_model, change)
    with pytest.raises(ModelLoadError) as caught:
        read_header(path)
    assert expected in str(caught.value) and "\n" not in str(caught.value) and caught.value.path == path


def test_unchanged_metadata_loads_and_so_do_the_bundled_weights(tiny_model, tmp_path):
    from tagger.weights import bundled_model_path, load_checkpoint, read_header

    assert read_header(crafted_weights(tmp_path, tiny_model, lambda meta: None)).labels == read_header(tiny_model).labels
    bundled = load_checkpoint(bundled_model_path())
    assert len(bundled.labels) >= 17 and bundled.state_dict


def test_reserved_labels_are_every_column_of_the_report_and_the_timeline():
    from tagger import report, timeline
    from tagger.weights import RESERVED_LABELS

    assert RESERVED_LABELS == {*report.FIXED_HEAD, *report.FIXED_TAIL, *timeline.FIXED}


def test_cli_refuses_a_label_named_path_with_exit_2_and_one_line(tiny_model, tmp_path):
    song = write_audio(tmp_path / "lib" / "a.wav", tone(2.0))
    model = crafted_weights(tmp_path, tiny_model, relabel("piano", "path"))
    proc = cli("scan", str(song), "--model", str(model), "--csv", str(tmp_path / "r.csv"), "--jobs", "1", "--quiet")
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "could not be verified" not in line]
    assert lines == [f"error: {model}: bad weights file: label 'path' is the name of a report column"]
    assert not (tmp_path / "r.csv").exists()


def test_training_refuses_labels_the_loader_would_refuse_before_any_work(tmp_path):
    data = tmp_path / "data"
    for label in ("Sound_Guitar", "piano"):
        write_audio(data / label / "a.wav", tone(1.0))
    proc = cli("train", str(data), "--out", str(tmp_path / "run"), "--epochs", "1")
    assert proc.returncode == 2, proc.stderr
    assert "label 'Sound_Guitar' is not a name of lowercase letters, digits and _" in proc.stderr


# --- issue 27 item 4: no cell of the CSV files starts a formula -----------------------------


FORMULAS = ['=HYPERLINK("http://x","x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)", "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("value", FORMULAS)
def test_text_from_the_files_never_starts_a_formula_and_reads_back_exactly(value):
    from tagger.cells import list_cell, list_values, text_cell, text_value
    from tagger.report import row
    from tagger.scan import TrackResult

    result = TrackResult(Path("lib") / "a.wav", "error", error=value, model=value, previous_instruments=[value, "piano", value])
    cells = row(result, ["piano"])
    assert cells["error"] == cells["model"] == "'" + value  # OWASP: a leading '
    assert cells["previous_instruments"] == f"'{value};piano;'{value}"  # also safe where ; splits the cells
    assert text_value(cells["error"]) == value and list_values(cells["previous_instruments"]) == [value, "piano", value]
    for exact in (value, "'" + value, "''" + value, "'piano", "piano", "", "'", "a=b"):
        assert text_value(text_cell(exact)) == exact and list_values(list_cell([exact, exact])) == [exact, exact]
    assert text_cell("piano") == "piano" and text_cell("'piano") == "'piano"  # nothing else changes


@pytest.mark.parametrize("name", FORMULAS)
def test_a_path_that_would_start_a_formula_gets_dot_slash_and_stays_the_same_file(name):
    from tagger.cells import path_cell
    from tagger.report import as_json, row
    from tagger.scan import TrackResult

    path = Path(name + ".mp3")  # a file (or a folder, where the name holds a /) at the top of `tagger scan .`
    cell = row(TrackResult(path, "ok"), [])["path"]
    assert cell == "./" + str(path) and Path(cell) == path
    assert json.loads(as_json(TrackResult(path, "ok")))["path"] == str(path)  # the JSON output is exact
    for exact in ("/abs/" + str(path), "lib/" + str(path), "'" + str(path)):
        assert path_cell(Path(exact)) == exact


def test_the_timeline_writes_the_path_as_the_report_does(tmp_path):
    from tagger.timeline import Timeline, TimelineWriter, read_timelines

    t = Timeline(np.array([0.0]), np.array([3.0]), np.array([-20.0], dtype=np.float32),
                 np.array([[0.5]], dtype=np.float32), ("piano",))
    with TimelineWriter(tmp_path / "t.csv", ("piano",)) as writer:
        writer.write(Path("=HYPERLINK(1).mp3"), t)
    [(path, _)] = list(read_timelines(tmp_path / "t.csv"))
    assert path == "./=HYPERLINK(1).mp3"


# --- issue 27 item 3: the HTML report's embedded JSON cannot end or change its <script> ------


HOSTILE = {
    "comment-script": "<!--<script>",
    "end-script": "</script><script>alert(1)</script>",
    "img": "<img src=x onerror=alert(1)>",
    "hyperlink": '=HYPERLINK("http://x","x")',
    "cmd": "+cmd|' /C calc'!A0",
    "proto": "__proto__",
    "control": "c\x01\x07\x1b[31m\x7f\ttab\rcr",  # a lone CR: csv's writer left it bare, and readers split the row
    "newline": "new\nline",
    "bad-utf8": os.fsdecode(b"u\xff\xfe\xc3("),
}


def test_embedded_json_holds_no_markup_whatever_the_strings(tmp_path):
    from tagger.html_report import embedded_json

    data = {"strings": [*HOSTILE.values(), "& ]]> \u2028\u2029"]}
    text = embedded_json(data)
    assert json.loads(text) == data
    assert not set(text) & set("<>&\u2028\u2029") and text.isascii()


# --- issue 27 "Done when": hostile names through the scan, the CSV, the timeline, the HTML ----
# Each string of HOSTILE as a file name, a folder name and a user's instruments tag value, in
# one small library scanned once as `tagger scan .` (so the paths begin with the strings); the
# report is then opened in headless Chromium. A string holding "/" makes folders: the path
# still holds the string.


def _set_users_tag(path: Path, value: str) -> None:
    """A user's instruments tag (no INSTRUMENTS_SOURCE); a value that is not UTF-8 is patched in as bytes."""
    from mutagen.flac import FLAC

    raw = os.fsencode(value)
    stand_in = value if raw == value.encode("utf-8", "surrogatepass") else "Q" * len(raw)
    f = FLAC(path)
    f["INSTRUMENTS"] = [stand_in]
    f.save()
    if stand_in != value:
        data = path.read_bytes()
        assert data.count(b"INSTRUMENTS=" + stand_in.encode()) == 1
        path.write_bytes(data.replace(b"INSTRUMENTS=" + stand_in.encode(), b"INSTRUMENTS=" + raw))


def _hostile_library(lib: Path) -> dict[tuple[str, str], Path]:
    """(string, placement) -> the file's path relative to ``lib``."""
    made = {}
    for i, (key, value) in enumerate(HOSTILE.items()):
        made[key, "file"] = Path(value + ".wav")
        made[key, "folder"] = Path(value) / "in the folder.wav"
        made[key, "tag"] = Path(f"tagged-{key}.flac")
        for j, placement in enumerate(("file", "folder", "tag")):
            path = lib / made[key, placement]  # written under a plain name: libsndfile wants UTF-8 names
            path.parent.mkdir(parents=True, exist_ok=True)
            os.rename(write_audio(lib / f"plain{path.suffix}", tone(3.0, 200 + 40 * i + 10 * j)), path)
        _set_users_tag(lib / made[key, "tag"], value)
    return made


def _page_text(text: str) -> str:
    """``text`` as the page shows it: the HTML parser turns CR into LF, a lone surrogate into U+FFFD."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


@pytest.fixture(scope="module")
def hostile_scan(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    lib = root / "lib"
    made = _hostile_library(lib)
    out = {"csv": root / "r.csv", "seg": root / "seg.csv", "html": root / "r.html"}
    proc = cli("scan", ".", "--model", str(tiny_model), "--csv", str(out["csv"]), "--segments", str(out["seg"]),
               "--html", str(out["html"]), "--jobs", "1", "--quiet", "--no-resume", cwd=lib)
    assert proc.returncode == 0, proc.stderr
    with open(out["csv"], newline="", encoding="utf-8", errors="surrogateescape") as f:
        rows = list(csv.DictReader(f))
    with open(out["seg"], newline="", encoding="utf-8", errors="surrogateescape") as f:
        timeline = list(csv.DictReader(f))
    order = [Path(r["path"]) for r in rows]  # rows found by the file they name, whatever the cell's spelling
    browser = _browse(out["html"], [order.index(made[key]) for key in made]) if _has_browser() else None
    return {"lib": lib, "made": made, "rows": {Path(r["path"]): r for r in rows}, "timeline": timeline,
            "browser": None if browser is None else dict(zip(made, browser["tracks"])) | {"page": browser["page"]}}


def _has_browser() -> bool:
    from browser import find_browser

    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return find_browser() is not None


def _browse(html_path: Path, indices: list[int]) -> dict:
    """Open the report; record any alert, the page's state, and what each track's view shows."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    from browser import chromium, console_problems, file_url

    with chromium() as d:
        d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                          {"source": "window.__alerts = []; for (const k of ['alert', 'confirm', 'prompt'])"
                                     " window[k] = (m) => { window.__alerts.push(k + ': ' + m); };"})
        d.get(file_url(html_path))
        try:
            WebDriverWait(d, 20).until(lambda d: d.execute_script("return document.documentElement.dataset.ready"))
        except TimeoutException:  # the page's script never ran (a name broke it): every check says so
            return {"page": {"ready": False, "console": console_problems(d)}, "tracks": [{"ready": False}] * len(indices)}
        page = d.execute_script("""return {ready: true, alerts: window.__alerts, scripts: document.scripts.length,
            imgs: document.images.length, count: document.getElementById("count").textContent,
            rows: document.querySelectorAll("#rows tr[data-i]").length}""")
        page["console"] = console_problems(d)
        tracks = []
        for i in indices:
            d.execute_script("document.getElementById('track').innerHTML = ''; location.hash = 't' + arguments[0];", i)
            WebDriverWait(d, 10).until(lambda d: d.execute_script("return document.querySelector('#track h2') !== null"))
            # (a lone surrogate, from a name that is not UTF-8, cannot cross to selenium: U+FFFD)
            tracks.append(d.execute_script("""const t = document.getElementById("track"), w = (s) => s.toWellFormed();
                return {ready: true, name: w(t.querySelector("h2").textContent), folder: w(t.querySelector(".folder").textContent),
                        previous: [...t.querySelectorAll(".chip.prev")].map((c) => w(c.textContent)),
                        heat: t.querySelectorAll(".heat rect").length, shown: !t.classList.contains("hidden")}"""))
            d.execute_script("location.hash = ''")
        page["alerts_after"] = d.execute_script("return window.__alerts")
    return {"page": page, "tracks": tracks}


def _formula(cell: str) -> bool:
    """A cell a spreadsheet would take for a formula (a negative number is a number)."""
    from tagger.cells import FORMULA_STARTS

    try:
        float(cell)
        return False
    except ValueError:
        return cell.startswith(FORMULA_STARTS)


PLACED = [(key, placement) for key in HOSTILE for placement in ("file", "folder", "tag")]


@pytest.mark.parametrize("key,placement", PLACED)
def test_hostile_name_has_its_exact_row_and_no_formula_cell(hostile_scan, key, placement):
    from tagger.cells import list_values, path_cell
    from tagger.tags import read_instruments

    made = hostile_scan["made"][key, placement]
    row = hostile_scan["rows"][made]
    assert row["path"] == path_cell(made)  # the same file, with ./ in front where the name starts a formula
    assert (row["status"], row["error"], row["tags"]) == ("ok", "", "dry-run")
    assert not [cell for cell in row.values() if _formula(cell)]
    if placement == "tag":
        previous = list_values(row["previous_instruments"])
        assert previous == read_instruments(hostile_scan["lib"] / made).instruments
        assert previous == [HOSTILE[key] if key != "bad-utf8" else "u\ufffd\ufffd\ufffd("]  # mutagen replaces bad bytes


@pytest.mark.parametrize("key,placement", PLACED)
def test_hostile_name_has_its_timeline_rows_and_no_formula_cell(hostile_scan, key, placement):
    made = hostile_scan["made"][key, placement]
    rows = [r for r in hostile_scan["timeline"] if Path(r["path"]) == made]
    assert len(rows) == int(hostile_scan["rows"][made]["segments"]) >= 1
    assert {r["path"] for r in rows} == {hostile_scan["rows"][made]["path"]}  # spelt as in the report: their join key
    assert not [c for r in rows for c in r.values() if _formula(c)]


def test_hostile_report_page_ran_and_no_script_of_the_names_did(hostile_scan):
    if hostile_scan["browser"] is None:
        pytest.skip("chromium, chromium-driver and selenium are needed")
    page = hostile_scan["browser"]["page"]
    assert page["ready"], f"the page's script did not run: {page['console']}"
    assert page["alerts"] == [] and page["alerts_after"] == []
    assert page["scripts"] == 2 and page["imgs"] == 0  # the data and the page's own script, nothing injected
    n = len(PLACED)
    assert page["count"] == f"{n} of {n} tracks" and page["rows"] == n
    assert page["console"] == []


@pytest.mark.parametrize("key,placement", PLACED)
def test_hostile_name_has_its_track_view(hostile_scan, key, placement):
    from tagger.cells import list_values

    if hostile_scan["browser"] is None:
        pytest.skip("chromium, chromium-driver and selenium are needed")
    shown = hostile_scan["browser"][key, placement]
    assert shown["ready"], "the page's script did not run"
    row = hostile_scan["rows"][hostile_scan["made"][key, placement]]
    folder, _, name = row["path"].rpartition("/")
    assert shown["shown"] and (shown["name"], shown["folder"]) == (_page_text(name), _page_text(folder))
    assert shown["heat"] > 0  # the heat map of its timeline is drawn
    # the previous tag as the file held it: without the CSV's leading '
    assert shown["previous"] == [_page_text(v) for v in list_values(row["previous_instruments"])]
