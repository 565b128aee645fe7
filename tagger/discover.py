"""Find the audio files under the paths a user gives.

Order (deterministic): the paths in the order given; inside a folder, its audio files
sorted by name (Python string order), then its subfolders sorted by name, each walked
the same way (depth first). Hidden entries (name starting with ".") and our own
temporary files (name containing ".tagger-tmp") are skipped.

What counts as a file found inside a folder is decided by its name alone: a non-hidden
entry with an audio extension is yielded, whatever it turns out to be, so that the report
gives it a row. A FIFO, socket or device file, a dangling symlink or a symlink loop named
like audio is therefore yielded, and :func:`file_problem` says why it cannot be read
(callers must never open such an entry: a FIFO blocks, a device never ends). Special
entries without an audio name are skipped (symlinks that lead nowhere with a warning),
as any other non-audio file is. Symlinked folders are
followed; a folder already walked (same st_dev, st_ino) is not walked again, so loops end
and a folder reached twice is reported under the first path that reached it. A file is
yielded once even when reached through several symlinks (deduplicated by real path).

Names are handled as the OS gives them: on Linux, bytes that are not UTF-8 arrive as
surrogate escapes (PEP 383) and ``os.fsencode(str(path))`` gives back the exact bytes.
"""
from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".mp3", ".mp2", ".mpga",  # MPEG audio
        ".flac", ".ogg", ".oga", ".opus", ".spx",  # Xiph
        ".m4a", ".m4b", ".mp4", ".aac", ".alac", ".3gp", ".caf",  # MPEG-4 / AAC / ALAC
        ".wav", ".wave", ".bwf", ".w64", ".aif", ".aiff", ".aifc", ".au", ".snd",  # PCM
        ".wma", ".asf",  # Windows Media
        ".ape", ".wv", ".mpc", ".tta", ".tak",  # other lossless / APE-tagged
        ".webm", ".mka",  # Matroska
        ".ac3", ".eac3", ".dts", ".amr", ".dsf", ".dff",
    }
)
TEMP_MARKER = ".tagger-tmp"  # part of the name of a tag write in progress (see DESIGN.md)


def is_audio_name(name: str) -> bool:
    """True when ``name`` has an audio extension (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


def discover(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Yield the audio files under ``paths``, each once, in a deterministic order.

    A path given as a file is yielded whatever its extension or kind (the user asked for
    it). Every path is checked before the walk starts: a missing one raises
    FileNotFoundError (other stat errors, e.g. PermissionError, propagate too). The walk
    itself is lazy and never raises: unreadable or vanished folders are logged as
    warnings and skipped. Entries named like audio are yielded even when they are not
    regular files (see the module's docstring); check them with :func:`file_problem`.
    """
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]  # one path, not an iterable of characters
    tops = [Path(os.fsdecode(p)) for p in paths]
    for top in tops:
        os.stat(top)  # raises FileNotFoundError for a missing path or a broken symlink
    return _walk_all(tops)


def _walk_all(tops: list[Path]) -> Iterator[Path]:
    """The lazy part of discover(): each top path in turn, files once each."""
    seen_files: set[str] = set()  # real paths already yielded
    seen_dirs: set[tuple[int, int]] = set()  # (st_dev, st_ino) of folders already walked
    for top in tops:
        try:
            is_dir = stat.S_ISDIR(os.stat(top).st_mode)
        except OSError as exc:  # vanished since discover() checked it
            log.warning("cannot read %s: %s", _show(top), exc.strerror or exc)
            continue
        if is_dir:
            yield from _walk(top, seen_files, seen_dirs)
        elif _first_time(os.path.realpath(top), seen_files):
            yield top


def _walk(top: Path, seen_files: set[str], seen_dirs: set[tuple[int, int]]) -> Iterator[Path]:
    """Depth first: a folder's files, then its subfolders. Iterative, so depth is unlimited."""
    stack = [top]
    while stack:
        folder = stack.pop()
        listing = _list_folder(folder, seen_dirs)
        if listing is None:
            continue
        real_folder, files, subfolders = listing
        for entry in files:
            if entry.is_symlink():
                real = os.path.realpath(entry.path)
            else:
                real = os.path.join(real_folder, entry.name)  # no extra system call
            if _first_time(real, seen_files):
                yield Path(entry.path)
        stack.extend(Path(entry.path) for entry in reversed(subfolders))


def _list_folder(
    folder: Path, seen_dirs: set[tuple[int, int]]
) -> tuple[str, list[os.DirEntry[str]], list[os.DirEntry[str]]] | None:
    """(real path, audio files, subfolders) of ``folder``, each list sorted by name.

    None when the folder was already walked (a symlink loop or a second way in) or
    cannot be read; the latter is logged as a warning.
    """
    try:
        info = os.stat(folder)
        key = (info.st_dev, info.st_ino)
        if key in seen_dirs:
            log.debug("already walked, skipping: %s", _show(folder))
            return None
        seen_dirs.add(key)
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        real_folder = os.path.realpath(folder)
    except OSError as exc:  # PermissionError, FileNotFoundError (vanished), NotADirectoryError, EIO...
        log.warning("skipping folder %s: %s", _show(folder), exc.strerror or exc)
        return None
    files: list[os.DirEntry[str]] = []
    subfolders: list[os.DirEntry[str]] = []
    for entry in entries:
        kind = _kind(entry)
        if kind == "dir":
            subfolders.append(entry)
        elif kind == "audio":
            files.append(entry)
    return real_folder, files, subfolders


def _kind(entry: os.DirEntry[str]) -> str:
    """'dir', 'audio' or 'skip' for one folder entry (symlinks followed).

    An entry with an audio name that is not a folder is 'audio' whatever it is (a FIFO,
    a device, a dangling link...): it gets a row, and file_problem() says what it is.
    """
    name = entry.name
    if name.startswith(".") or TEMP_MARKER in name:
        return "skip"
    try:
        if entry.is_dir():
            return "dir"
    except OSError:  # e.g. a symlink loop: not a folder, and said so below
        pass
    if is_audio_name(name):
        return "audio"
    if entry.is_symlink():  # a link that leads nowhere is worth a word, even unnamed
        problem = file_problem(entry.path)
        if problem and "symlink" in problem:
            log.warning("skipping %s: %s", _show(entry.path), problem)
    return "skip"


_FILE_KINDS = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def file_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a regular file we may open, in a few plain words; None when it is one.

    Never opens ``path`` (only stat and readlink), so it is safe on FIFOs and devices.
    Symlinks are followed: a link to ``/dev/zero`` is a character device, not a broken
    link. The reasons: "file not found", "permission denied", "is a directory",
    "symlink loop", "dangling symlink -> <target>", "not a regular file (FIFO)" (or
    socket, character device, block device; "... via symlink -> <target>" when a link
    led there), "cannot read file information (<reason>)".
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop"
        if exc.errno == errno.ENOENT and os.path.islink(path):
            try:
                return f"dangling symlink -> {_show(os.readlink(path))}"
            except OSError:
                return "dangling symlink"
        if exc.errno == errno.ENOENT:
            return "file not found"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "permission denied"
        return f"cannot read file information ({exc.strerror or exc})"
    if stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    kind = next((name for test, name in _FILE_KINDS if test(st.st_mode)), "unknown kind")
    via = ""
    if os.path.islink(path):  # e.g. a link to /dev/zero (not bash's /dev/fd/63 -> pipe:[...])
        target = os.path.realpath(path)
        via = f" via symlink -> {_show(target)}" if os.path.lexists(target) else ""
    return f"not a regular file ({kind}{via})"


def _first_time(real_path: str, seen: set[str]) -> bool:
    """True the first time ``real_path`` is offered (and remembers it)."""
    if real_path in seen:
        return False
    seen.add(real_path)
    return True


def show_path(path: str | Path) -> str:
    """A path made safe for a one-line message: as it is when printable, else with its
    control characters and odd bytes escaped (``new\\nline.mp3``), as Python's ascii()."""
    text = os.fspath(path)
    return text if text.isprintable() else ascii(text)[1:-1]


_show = show_path
