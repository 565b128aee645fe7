"""discover(): order, skipping rules, symlinks, odd names, unreadable folders."""
from __future__ import annotations

import logging
import os
import sys
import unicodedata
from pathlib import Path

import pytest

from tagger.discover import AUDIO_EXTENSIONS, discover, file_problem

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="needs Linux file-name semantics")


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def names(found, root: Path) -> list[str]:
    return [os.path.relpath(p, root) for p in found]


def test_extensions_are_lower_case_with_dot():
    assert all(e.startswith(".") and e == e.lower() for e in AUDIO_EXTENSIONS)
    assert {".mp3", ".flac", ".ogg", ".opus", ".m4a", ".wav", ".aiff", ".wma", ".wv"} <= AUDIO_EXTENSIONS


def test_order_files_before_subfolders_sorted_by_name(tmp_path):
    for rel in ["b.mp3", "a.flac", "z/c.ogg", "m/b.wav", "m/a.wav", "m/sub/x.opus", "C.MP3"]:
        touch(tmp_path / rel)
    expected = ["C.MP3", "a.flac", "b.mp3", "m/a.wav", "m/b.wav", "m/sub/x.opus", "z/c.ogg"]
    assert names(discover([tmp_path]), tmp_path) == expected
    assert names(discover([tmp_path]), tmp_path) == expected  # same again


def test_extension_is_case_insensitive_and_non_audio_skipped(tmp_path):
    for rel in ["a.FLAC", "b.Mp3", "cover.jpg", "notes.txt", "noext"]:
        touch(tmp_path / rel)
    assert names(discover([tmp_path]), tmp_path) == ["a.FLAC", "b.Mp3"]


def test_hidden_and_temp_files_skipped(tmp_path):
    for rel in [".hidden.mp3", ".git/a.mp3", "ok.mp3", "song.tagger-tmp.mp3", "x.mp3.tagger-tmp-123"]:
        touch(tmp_path / rel)
    assert names(discover([tmp_path]), tmp_path) == ["ok.mp3"]


def test_explicit_file_yielded_even_without_audio_extension(tmp_path):
    readme = touch(tmp_path / "README.txt")
    hidden = touch(tmp_path / ".secret.mp3")
    assert list(discover([readme, str(hidden)])) == [readme, hidden]


def test_single_path_accepted(tmp_path):
    song = touch(tmp_path / "a.mp3")
    assert list(discover(str(tmp_path))) == [song]
    assert list(discover(tmp_path)) == [song]


def test_missing_top_level_path_raises_before_walking(tmp_path):
    touch(tmp_path / "a.mp3")
    with pytest.raises(FileNotFoundError):
        discover([tmp_path, tmp_path / "missing"])  # eager check, no next() needed


def test_each_file_once_even_if_given_twice(tmp_path):
    song = touch(tmp_path / "a.mp3")
    assert list(discover([tmp_path, song, tmp_path])) == [song]


def test_symlink_loop_terminates(tmp_path):
    touch(tmp_path / "music" / "a.mp3")
    (tmp_path / "music" / "loop").symlink_to(tmp_path / "music", target_is_directory=True)
    (tmp_path / "music" / "sub").mkdir()
    (tmp_path / "music" / "sub" / "up").symlink_to(tmp_path, target_is_directory=True)
    assert names(discover([tmp_path]), tmp_path) == ["music/a.mp3"]


def test_symlinked_folder_followed_and_files_deduplicated(tmp_path):
    touch(tmp_path / "real" / "a.mp3")
    elsewhere = touch(tmp_path / "elsewhere" / "b.mp3")
    library = tmp_path / "library"
    library.mkdir()
    (library / "linked").symlink_to(tmp_path / "real", target_is_directory=True)
    (library / "b-link.mp3").symlink_to(elsewhere)
    assert names(discover([library]), tmp_path) == ["library/b-link.mp3", "library/linked/a.mp3"]
    # the real locations are not yielded a second time
    assert names(discover([library, tmp_path]), tmp_path) == ["library/b-link.mp3", "library/linked/a.mp3"]


def test_dangling_symlink_named_like_audio_is_found_and_says_why(tmp_path, caplog):
    """One row per file found: a dangling link named like audio is found (file_problem says
    why it cannot be read); one without an audio name is skipped with a warning."""
    touch(tmp_path / "ok.mp3")
    (tmp_path / "gone.mp3").symlink_to(tmp_path / "nowhere.mp3")
    (tmp_path / "gone").symlink_to("nowhere")
    with caplog.at_level(logging.WARNING, logger="tagger.discover"):
        assert names(discover([tmp_path]), tmp_path) == ["gone.mp3", "ok.mp3"]
    assert file_problem(tmp_path / "gone.mp3") == f"dangling symlink -> {tmp_path / 'nowhere.mp3'}"
    assert file_problem(tmp_path / "ok.mp3") is None
    assert "gone: dangling symlink -> nowhere" in caplog.text


@linux_only
def test_odd_names_found(tmp_path):
    nfc = unicodedata.normalize("NFC", "Beyoncé – Déjà vu.mp3")
    nfd = unicodedata.normalize("NFD", "Ánimo.flac")
    odd = [
        "with spaces .mp3",
        nfc,
        nfd,
        "new\nline.ogg",
        "-leading-dash.wav",
        "--help.mp3",
        "日本語の歌.m4a",
        "tab\tand 'quotes\".opus",
    ]
    for name in odd:
        touch(tmp_path / name)
    raw = os.fsencode(tmp_path) + b"/latin1-\xe9\xff.mp3"  # not UTF-8
    with open(raw, "wb") as f:
        f.write(b"x")
    found = list(discover([tmp_path]))
    assert sorted(p.name for p in found) == sorted(odd + [os.fsdecode(b"latin1-\xe9\xff.mp3")])
    assert os.fsencode(str(found[[p.name.startswith("latin1") for p in found].index(True)])) == raw
    assert all(p.exists() for p in found)


@linux_only
def test_non_utf8_folder_walked(tmp_path):
    folder = os.fsencode(tmp_path) + b"/dir-\xfe"
    os.mkdir(folder)
    with open(folder + b"/a.mp3", "wb") as f:
        f.write(b"x")
    [found] = discover([tmp_path])
    assert os.fsencode(str(found)) == folder + b"/a.mp3"
    assert list(discover([os.fsdecode(folder)])) == [found]  # as a top-level path too


@pytest.mark.parametrize("error", [PermissionError, FileNotFoundError, NotADirectoryError])
def test_unreadable_or_vanished_folder_skipped_with_warning(tmp_path, monkeypatch, caplog, error):
    touch(tmp_path / "a" / "1.mp3")
    touch(tmp_path / "b" / "2.mp3")
    touch(tmp_path / "c" / "3.mp3")
    real_scandir = os.scandir

    def scandir(path):
        if Path(path).name == "b":
            raise error(13, "simulated", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with caplog.at_level(logging.WARNING, logger="tagger.discover"):
        assert names(discover([tmp_path]), tmp_path) == ["a/1.mp3", "c/3.mp3"]
    assert "skipping folder" in caplog.text and "/b" in caplog.text


def test_folder_deleted_between_listing_and_walking(tmp_path, monkeypatch, caplog):
    touch(tmp_path / "a" / "1.mp3")
    touch(tmp_path / "b" / "2.mp3")
    found = discover([tmp_path])
    assert names([next(found)], tmp_path) == ["a/1.mp3"]
    (tmp_path / "b" / "2.mp3").unlink()
    (tmp_path / "b").rmdir()  # vanishes mid-walk
    with caplog.at_level(logging.WARNING, logger="tagger.discover"):
        assert list(found) == []
    assert "skipping folder" in caplog.text


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read any folder")
def test_chmod_000_folder_skipped(tmp_path, caplog):
    touch(tmp_path / "locked" / "a.mp3")
    touch(tmp_path / "open" / "b.mp3")
    (tmp_path / "locked").chmod(0)
    try:
        with caplog.at_level(logging.WARNING, logger="tagger.discover"):
            assert names(discover([tmp_path]), tmp_path) == ["open/b.mp3"]
    finally:
        (tmp_path / "locked").chmod(0o755)


def test_is_lazy(tmp_path, monkeypatch):
    touch(tmp_path / "a" / "1.mp3")
    touch(tmp_path / "b" / "2.mp3")
    calls = []
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda p: calls.append(Path(p).name) or real_scandir(p))
    found = discover([tmp_path])
    assert calls == []
    next(found)
    assert "b" not in calls
