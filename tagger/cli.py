"""The command line: a thin layer over :mod:`tagger.scan`, :mod:`tagger.untag`, :mod:`tagger.train`, :mod:`tagger.evaluate`.

Progress and tables go to stderr; machine output (CSV file, ``--json`` lines) never
mixes with them. Exit codes (DESIGN.md): 0 every file handled, 1 some files failed, 2 bad
usage (missing path, bad model, report locked by another run), 3 the run could not go on
(report or cache not writable, internal error), 130 Ctrl-C, 143 SIGTERM.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import os
import shlex
import sqlite3
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

try:  # a recent typer carries its own click, and `click` itself may not be installed
    from typer.exceptions import TyperException

    _CLICK_ERRORS: tuple[type[BaseException], ...] = (TyperException,)  # usage errors, typer's Exit/Abort
except ImportError:  # an older typer is built on click
    import click

    _CLICK_ERRORS = (click.exceptions.Exit, click.ClickException, click.Abort)

from . import __version__, signals
from .discover import show_path
from .errors import CompileError, DatasetError, ModelLoadError, RunMismatchError, TaggerError

if TYPE_CHECKING:
    from .scan import Scanner, ScorerInBackground

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Find the instruments in every track of a music library.")
err = Console(stderr=True)
log = logging.getLogger(__name__)

EXIT_FAILED_FILES, EXIT_USAGE, EXIT_CANNOT_GO_ON = 1, 2, 3


def _command(fn: Callable) -> Callable:
    """Every command: SIGTERM stops it like Ctrl-C, and nothing ends in a traceback.

    Ctrl-C exits 130 and SIGTERM 143 with one line (commands with more to say catch them
    first; see :mod:`tagger.signals`); any other unexpected exception is a bug: one line on
    stderr and exit 3 (the traceback is logged at debug level, shown with --verbose).
    """

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            with signals.raising():
                return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, *_CLICK_ERRORS):
            raise  # typer.Exit (a RuntimeError) and usage errors: already handled
        except KeyboardInterrupt as exc:
            err.print(signals.stopped_word(exc), highlight=False)
            raise typer.Exit(signals.exit_code(exc)) from None
        except Exception as exc:
            log.debug("internal error", exc_info=True)
            raise _fail(f"internal error (a bug, please report it): {type(exc).__name__}: {_one_line(exc)}",
                        EXIT_CANNOT_GO_ON) from None

    return run


def _version_line() -> str:
    """``tagger <version> (model <name>)``: the bundled model's name read from its header (no torch)."""
    from .weights import bundled_model_path, read_header

    try:
        model = f"model {read_header(bundled_model_path()).version}"
    except ModelLoadError as exc:
        model = f"no bundled model: {exc}"
    return f"tagger {__version__} ({model})"


def _print_version(value: bool) -> None:
    if value:
        print(_version_line())
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print tagger's version and the bundled model's name, and exit."),
) -> None:
    """Find the instruments in every track of a music library."""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Backend(str, Enum):
    local = "local"
    dask = "dask"
    ray = "ray"


def _setup_logging(verbose: bool, quiet: bool, tagger_level: int | None = None) -> None:
    """Warnings (or errors with --quiet) from everyone; ``tagger_level`` for our own loggers."""
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    ours = min(level, tagger_level) if tagger_level is not None else level
    # The handler's level also filters loggers that set their own (dask's are at INFO).
    handler = RichHandler(console=err, show_path=False, show_time=False, level=ours)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
    logging.getLogger("tagger").setLevel(ours)


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _load_scorer(model: Optional[Path], device: Device, batch_size: int):
    from .inference import Scorer

    try:
        return Scorer.from_path(model, device.value, batch_size)
    except ModelLoadError as exc:
        raise _failed(exc) from None


def _resnet_ints(option: str, text: Optional[str], arch: str, valid: Callable[[tuple[int, ...]], bool],
                 wants: str) -> tuple[int, ...] | None:
    """A resnet-only option of comma-separated integers (``--blocks 1,1,1,2``): the tuple,
    None when not given, or one error line saying what it ``wants``."""
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not valid(values):
        raise _fail(f"{option} wants {wants} (got {text!r})")
    if arch != "resnet":
        raise _fail(f"{option} applies to --arch resnet only")
    return values


def _parse_stem_pool(text: Optional[str], arch: str) -> tuple[int, int] | None:
    """``--stem-pool 1,4`` -> (1, 4): the resnet stem's max-pool over (mels, frames)."""
    from .models import power_of_two

    return _resnet_ints("--stem-pool", text, arch, lambda p: len(p) == 2 and all(map(power_of_two, p)),
                        "two powers of two (mels,frames), like 1,4")  # type: ignore[return-value]


def _parse_blocks(text: Optional[str], arch: str) -> tuple[int, ...] | None:
    """``--blocks 1,1,1,2`` -> (1, 1, 1, 2): four stages of at least one block, resnet only."""
    return _resnet_ints("--blocks", text, arch, lambda b: len(b) == 4 and min(b) >= 1,
                        "four counts of at least 1, like 1,1,1,2")


def _failed(exc: TaggerError) -> typer.Exit:
    """Exit 2 with the error's one line, prefixed by the file it is about."""
    return _fail(f"{show_path(exc.path)}: {exc}" if exc.path else str(exc))


@app.command()
@_command
def scan(
    paths: list[Path] = typer.Argument(..., help="Music files or folders (searched recursively)."),
    write_tags: bool = typer.Option(False, "--write-tags", help="Write instruments into the files' tags (default: dry run)."),
    csv_path: Path = typer.Option(Path("instruments.csv"), "--csv", help="Where to write the CSV report."),
    segments_path: Optional[Path] = typer.Option(None, "--segments", help="Also write every scored segment (times, loudness, scores) to this CSV, or Parquet when it ends in .parquet."),
    html_path: Optional[Path] = typer.Option(None, "--html", help="Also write a self-contained HTML report (library and per-track heat maps) at the end."),
    threshold: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="One threshold for every label (default: per-label thresholds of the model)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, help="Keep at most K instruments per track."),
    coverage: float = typer.Option(1.0, "--coverage", metavar="F", help="Quick pass: decode and score only evenly spread windows of 4 segments (12 s) covering about this share of each long track, 0 < F <= 1 (default 1: everything)."),
    device: Device = typer.Option(Device.auto, help="auto: CUDA when present, else CPU."),
    batch_size: int = typer.Option(256, min=1, help="Segments per model call."),
    jobs: int = typer.Option(0, min=0, help="Decoding processes (0: one per core)."),
    model: Optional[Path] = typer.Option(None, help="Weights file (default: the bundled model)."),
    force: bool = typer.Option(False, help="Overwrite instruments tags that a user wrote, and rescan unchanged files."),
    backend: Backend = typer.Option(Backend.local, help="Where decoding runs: local processes, or a dask/ray cluster."),
    hop: Optional[float] = typer.Option(None, min=0.1, help="Seconds between segment starts (default: the segment length, 3 s)."),
    file_timeout: float = typer.Option(120.0, "--file-timeout", min=0.0, metavar="SECONDS", help="Give up on a file whose decoding takes longer (each 10-minute span of a long file); 0: no limit."),
    file_memory: int = typer.Option(2048, "--file-memory", min=0, metavar="MB", help="Memory cap of each decoding process (with --jobs 2 or more); a file that needs more fails alone; 0: no cap."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Reuse the results of files unchanged since a run with the same model and settings (cache next to the CSV); --write-tags after a dry run then only writes the tags."),
    json_lines: bool = typer.Option(False, "--json", help="Print one JSON line per file on stdout instead of the summary table."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no summary, errors only."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Tag every audio file under PATHS; write a CSV report (and tags with --write-tags)."""
    from .backends import BackendError
    from .cache import cache_path_for, open_cache
    from .discover import discover
    from .report import ReportError, ReportLockedError, report_lock
    from .scan import Scanner, ScanOptions, ScorerInBackground
    from .timeline import TimelineError
    from .weights import bundled_model_path, read_header, resolve_device

    _setup_logging(verbose, quiet)
    _check_paths(paths)
    _check_outputs(paths, csv_path, segments_path, html_path)
    try:
        if device == Device.cuda:
            resolve_device(device.value)  # asked for CUDA: say now if there is none
        model_path = model or bundled_model_path()
        header = read_header(model_path)  # checked before anything is written
    except ModelLoadError as exc:
        raise _failed(exc) from None
    cache_path = cache_path_for(csv_path)
    timeline_path = segments_path  # the one asked for (the HTML report alone uses a temporary one)
    tally = _Tally()
    files: list[Path] = []
    try:
        # Nothing touches the report, its timeline or its cache before the lock is ours (a
        # second run on the same report stops here, before loading torch), and the old
        # report and timeline are replaced only once the cache and the model are known good.
        with report_lock(csv_path), contextlib.ExitStack() as stack:
            # decoding starts while torch and the network load
            scorer = ScorerInBackground(model_path, device.value, batch_size, header=header)
            options = ScanOptions(
                write_tags=write_tags, force=force, threshold=threshold, top_k=top_k, hop_seconds=hop, jobs=jobs,
                backend=backend.value, file_timeout=file_timeout or None, file_memory_mb=file_memory or None,
                coverage=coverage,
            )
            try:
                scanner = Scanner(scorer, options)
            except ValueError as exc:
                raise _fail(str(exc)) from None
            try:
                files = list(discover(paths))
            except OSError as exc:  # a path named on the command line vanished since it was checked
                raise _fail(f"{show_path(exc.filename or '')}: {exc.strerror or exc}") from None
            if resume:
                try:
                    scanner.cache = stack.enter_context(open_cache(cache_path, scanner.result_key))
                except OSError as exc:  # e.g. a damaged cache that cannot be moved aside
                    raise _fail(f"cannot use the cache {show_path(cache_path)}: {exc.strerror or exc}",
                                EXIT_CANNOT_GO_ON) from None
            if html_path is not None and segments_path is None:  # the HTML report's heat maps need the segments
                segments_path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tagger-"))) / "segments.csv"
            _scan_into_report(scanner, scorer, files, csv_path, segments_path, tally, json_lines, quiet)
            if html_path is not None:
                _write_html(csv_path, segments_path, html_path, header.thresholds, threshold,
                            header.aggregation.get("track_threshold"))
    except ReportLockedError as exc:
        raise _fail(f"{show_path(csv_path)}: {exc}") from None
    except (ModelLoadError, BackendError) as exc:
        raise _failed(exc) from None
    except ReportError as exc:
        kept = f" (it holds the first {tally.rows} rows, each whole; {_finish_hint(force, resume)})" if tally.rows else ""
        raise _fail(f"cannot write the report {show_path(csv_path)}: {exc}{kept}", EXIT_CANNOT_GO_ON) from None
    except TimelineError as exc:
        raise _fail(f"cannot write the segment timeline {show_path(exc.path or '')}: {exc}", EXIT_CANNOT_GO_ON) from None
    except sqlite3.Error as exc:
        done = "the report is complete, only the cache was not saved; " if files and tally.rows == len(files) else ""
        raise _fail(f"cannot use the cache {show_path(cache_path)}: {_one_line(exc)} ({done}--no-resume runs without it)",
                    EXIT_CANNOT_GO_ON) from None
    except KeyboardInterrupt as exc:  # the workers are stopped; a tag write in progress was rolled back
        stopped = signals.stopped_word(exc)
        if files and tally.rows == len(files):
            left = f"; {show_path(html_path)} was not written" if html_path is not None else ""
            err.print(f"{stopped} after the last file; {show_path(csv_path)} holds all {tally.rows} rows{left}",
                      soft_wrap=True, highlight=False)
        elif tally.rows:
            err.print(f"{stopped} after {tally.rows} of {len(files)} files; their rows are in {show_path(csv_path)}; "
                      f"{_finish_hint(force, resume)}", soft_wrap=True, highlight=False)
        else:  # the report is opened with the first row
            err.print(f"{stopped} before the first file was done; {show_path(csv_path)} is unchanged", soft_wrap=True, highlight=False)
        raise typer.Exit(signals.exit_code(exc)) from None
    if not quiet and not json_lines:
        written = [("report", csv_path), ("timeline", timeline_path), ("HTML report", html_path)]
        _summary(tally.counts, tally.found, [(what, path) for what, path in written if path is not None], write_tags)
    raise typer.Exit(EXIT_FAILED_FILES if tally.counts["error"] else 0)


def _finish_hint(force: bool, resume: bool) -> str:
    """How to finish a scan cut short: the files already done are skipped by a rerun
    (the cache), except with --force (which rescans everything) or --no-resume (no cache)."""
    if not resume:
        return "run the same command again to scan every file (--no-resume keeps no cache)"
    if force:
        argv = [a for a in sys.argv[1:] if a != "--force"]
        return f"to finish, run it again without --force: tagger {shlex.join(argv)}"
    return "run the same command again to finish"


@dataclass
class _Tally:
    """What a scan has done so far."""

    counts: Counter = field(default_factory=Counter)  # status -> files
    found: Counter = field(default_factory=Counter)  # label -> files
    audio_seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


def _check_paths(paths: list[Path]) -> None:
    """Exit 2 (bad usage) for a path named on the command line that leads nowhere."""
    for path in paths:
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                why = "symlink loop"
            elif exc.errno == errno.ENOENT and os.path.islink(path):
                why = f"broken symlink (to {show_path(os.readlink(path))}, which does not exist)"
            elif exc.errno == errno.ENOENT:
                why = "no such file or folder"
            else:
                why = exc.strerror or str(exc)
            raise _fail(f"{show_path(path)}: {why}") from None


def _check_outputs(paths: list[Path], csv_path: Path, segments_path: Optional[Path], html_path: Optional[Path]) -> None:
    """Exit 2 (bad usage) when an output may not be written (see :func:`tagger.outputs.check_outputs`:
    a folder, an input, an existing file of another kind, another output), or for a Parquet
    timeline without pyarrow: before anything is loaded or written."""
    from .outputs import OutputError, check_outputs, scan_outputs
    from .timeline import ParquetMissing, is_parquet, require_pyarrow

    try:
        check_outputs(paths, scan_outputs(csv_path, segments_path, html_path))
    except OutputError as exc:
        raise _fail(str(exc)) from None
    if segments_path is not None and is_parquet(segments_path):
        try:
            require_pyarrow()
        except ParquetMissing as exc:
            raise _fail(str(exc)) from None


def _scan_into_report(scanner: Scanner, scorer: ScorerInBackground, files: list[Path], csv_path: Path,
                      segments_path: Optional[Path], tally: _Tally, json_lines: bool, quiet: bool) -> None:
    """Scan ``files``: a row per file into the report, its segments into the timeline (with
    ``segments_path``), a JSON line on stdout (with ``--json``); progress on stderr.

    The report and the timeline are opened (previous ones truncated) only once the model has
    loaded. However this ends, the decoder workers are stopped before it returns or raises,
    and then the files are closed: a Parquet timeline is finished, whole, even on Ctrl-C.
    """
    from .report import CsvReport, as_json
    from .timeline import TimelineWriter

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=err, disable=quiet, transient=False,
    )
    report: CsvReport | None = None
    timeline: TimelineWriter | None = None

    with contextlib.ExitStack() as outputs:  # closed after the workers have stopped

        def open_outputs() -> tuple[CsvReport, TimelineWriter | None]:
            if scorer.started:  # the model loads while the first files decode (none when all are cached)
                scorer.result()  # raises ModelLoadError
            opened = outputs.enter_context(CsvReport.open(csv_path, scorer.labels))
            if segments_path is None:
                return opened, None
            return opened, outputs.enter_context(TimelineWriter(segments_path, scorer.labels))

        results = scanner.scan_files(files)
        try:
            with progress:
                task = progress.add_task("scanning", total=len(files), rate="")
                for result in results:
                    if report is None:
                        report, timeline = open_outputs()
                    report.write(result)
                    if timeline is not None:
                        timeline.write(result.path, result.timeline)
                    tally.counts[result.status] += 1
                    tally.found.update(label for label, _ in result.instruments)
                    tally.audio_seconds += result.duration_s
                    if result.status == "error":
                        # one line whatever the name: control characters in the path are escaped
                        progress.console.print(f"error: {show_path(result.path)}: {result.error}", style="red", markup=False, highlight=False, soft_wrap=True)
                    elif not quiet:  # each file's result as it comes (above the progress bar)
                        progress.console.print(_result_line(result), highlight=False, soft_wrap=True)
                    if json_lines:
                        sys.stdout.write(as_json(result) + "\n")
                        sys.stdout.flush()
                    elapsed = max(progress.tasks[0].elapsed or 1e-9, 1e-9)
                    progress.update(task, advance=1, rate=f"{tally.rows / elapsed:.1f} files/s, {tally.audio_seconds / 60 / elapsed:.1f} audio-min/s")
                if report is None:  # no file found: a report (and a timeline) with its header only
                    report, timeline = open_outputs()
        finally:
            results.close()  # stops the workers (a tag write in progress was rolled back)


def _result_line(result) -> Text:  # noqa: ANN001 (a tagger.scan.TrackResult)
    """One file's result for the terminal: ``path: drums 0.93, bass 0.71``, and where it came from."""
    labels = ", ".join(f"{label} {score:.2f}" for label, score in result.instruments)
    line = Text(f"{show_path(result.path)}: ")
    line.append(labels or "no instrument", style="green" if labels else "dim")
    notes = (["from the cache"] if result.status == "skipped" else []) + (
        ["its own instruments tag kept"] if result.tags == "kept" else [])
    if notes:
        line.append(f" ({'; '.join(notes)})", style="dim")
    return line


def _write_html(csv_path: Path, segments_path: Optional[Path], html_path: Path, thresholds: Optional[dict],
                threshold: Optional[float], track_threshold: Optional[float] = None) -> None:
    from .html_report import write_report

    try:
        write_report(csv_path, segments_path, html_path, thresholds, threshold, track_threshold)
    except ValueError as exc:  # not a report or not a timeline: bad usage
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write the HTML report {show_path(html_path)}: {exc}", EXIT_CANNOT_GO_ON) from None


@app.command()
@_command
def report(
    csv_report: Path = typer.Argument(..., help="A CSV report written by tagger scan."),
    segments: Optional[Path] = typer.Option(None, "--segments", help="The segment timeline of that scan (CSV or Parquet): adds heat maps."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="Where to write the HTML file."),
    model: Optional[Path] = typer.Option(None, help="Weights whose thresholds mark where instruments play (default: the bundled model, when it made the report)."),
    threshold: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="One threshold for every label, as given to the scan."),
) -> None:
    """Write one self-contained HTML file (no server, no network) from a report and its timeline."""
    from .html_report import report_model
    from .outputs import HTML_PAGE, Output, OutputError, check_outputs
    from .weights import bundled_model_path, read_header

    _setup_logging(False, False)
    for p in (csv_report, segments):
        if p is not None and not p.is_file():
            raise _fail(f"{p}: no such file")
    try:
        check_outputs([p for p in (csv_report, segments) if p is not None], [Output("-o", out, HTML_PAGE)])
    except OutputError as exc:
        raise _fail(str(exc)) from None
    thresholds = track_threshold = None  # the model's: ticks on the track scores, where labels play on the heat maps
    try:
        header = read_header(model or bundled_model_path())
    except ModelLoadError as exc:
        if model is not None:
            raise _failed(exc) from None
        header = None
    try:
        made_by = report_model(csv_report)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if header is not None and (model is not None or made_by in (None, header.version)):
        thresholds, track_threshold = header.thresholds, header.aggregation.get("track_threshold")
    elif segments is not None:
        err.print(f"note: the report was made by {made_by}; pass --model with its weights to mark where instruments play", highlight=False)
    _write_html(csv_report, segments, out, thresholds, threshold, track_threshold)
    err.print(f"wrote {out}", highlight=False)


@app.command()
@_command
def untag(
    paths: list[Path] = typer.Argument(..., help="Music files or folders (searched recursively)."),
    write_tags: bool = typer.Option(False, "--write-tags", help="Change the files (default: a dry run that only says what it would do, as scan without --write-tags)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Errors only."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Undo tagger's tags: remove what it wrote and put back your own instruments tag where it wrote over one."""
    from .untag import untag as untag_files

    _setup_logging(verbose, quiet)
    _check_paths(paths)
    counts: Counter = Counter()
    try:
        for result in untag_files(paths, dry_run=not write_tags):
            counts[result.status] += 1
            line = _untag_line(result)
            if result.status == "error":
                err.print(line, style="red", markup=False, highlight=False, soft_wrap=True)
            elif not quiet:
                err.print(line, markup=False, highlight=False, soft_wrap=True)
    except OSError as exc:  # a path named on the command line vanished since it was checked
        raise _fail(f"{show_path(exc.filename or '')}: {exc.strerror or exc}") from None
    if not quiet:
        said = {"restored": "restored", "removed": "removed"} if write_tags else {"restored": "to restore", "removed": "to remove"}
        done = ", ".join(f"{counts[s]} {said.get(s, s)}" for s in ("restored", "removed", "untouched", "error") if counts[s])
        done = done or "no audio files found"
        mode = "" if write_tags else " (dry run: nothing written; use --write-tags to undo)"
        err.print(f"{done}{mode}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_FAILED_FILES if counts["error"] else 0)


def _untag_line(result) -> str:
    """One line per file: what was (or, in a dry run, would be) done."""
    path = show_path(result.path)
    if result.status == "error":
        return f"error: {path}: {result.error}"
    if result.status == "untouched":
        return f"untouched: {path}: no instruments tag written by tagger"
    verb = {"restored": "would restore" if result.dry_run else "restored",
            "removed": "would remove" if result.dry_run else "removed"}[result.status]
    removed = "; ".join(result.removed) or "none"
    if result.status == "restored":
        return f"{verb}: {path}: {'; '.join(result.restored)} (instead of tagger's {removed})"
    return f"{verb}: {path}: tagger's {removed}"


def _summary(counts: Counter, found: Counter, written: list[tuple[str, Path]], write_tags: bool) -> None:
    """The end of a scan: counts, the labels found most, every file written (``(what, path)``), the tags."""
    table = Table(title="tagger scan", show_header=False)
    cached = f" ({counts['skipped']} from the cache)" if counts["skipped"] else ""  # skipped: a result reused
    table.add_row("files ok", f"{counts['ok'] + counts['skipped']}{cached}")
    table.add_row("failed", f"[red]{counts['error']}[/]" if counts["error"] else "0")
    table.add_row("top instruments", ", ".join(f"{label} ({n})" for label, n in found.most_common(5)) or "-")
    table.add_row("tags", "written" if write_tags else "dry run (use --write-tags to write)")
    err.print(table)
    for what, path in written:  # whole, never cut to the table's width: a path to copy
        err.print(f"wrote {what}: {show_path(path)}", markup=False, highlight=False, soft_wrap=True)


@app.command()
@_command
def info(
    model: Optional[Path] = typer.Option(None, help="Weights file (default: the bundled model)."),
    full: bool = typer.Option(False, "--full", help="The whole card: every held-out figure, the data, training, ablation."),
    json_out: bool = typer.Option(False, "--json", help="The model card as JSON on stdout."),
) -> None:
    """Show the model card: labels, thresholds, key held-out figures, known weaknesses (--full: everything)."""
    from .card import card_dict, render
    from .weights import bundled_model_path, read_header

    try:
        path = model or bundled_model_path()
        ckpt = read_header(path)
    except ModelLoadError as exc:
        raise _failed(exc) from None
    info_dict = card_dict(ckpt, path, __version__)
    if json_out:
        print(json.dumps(info_dict, indent=2))
        return
    render(info_dict, Console(), full=full)


def _rich_progress() -> tuple[Progress, Callable[[str, int, int], None]]:
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err)
    tasks: dict[str, int] = {}

    def report(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=total)
        progress.update(tasks[stage], completed=done, total=total)

    return progress, report


@app.command()
@_command
def train(
    data: list[Path] = typer.Argument(..., help="Datasets: class folders, IRMAS test layout, or manifest CSVs."),
    out: Path = typer.Option(..., help="Run folder: weights, state for resuming, curves, history."),
    val: list[Path] = typer.Option([], help="Validation dataset(s) (default: a stratified split of DATA)."),
    test: list[Path] = typer.Option([], help="Test dataset(s): reported in the model card, never used to select."),
    arch: str = typer.Option("resnet", help="resnet, cnn, crnn, resnet18 or mfcc-mlp."),
    width: int = typer.Option(32, help="Channels of the first resnet stage."),
    blocks: Optional[str] = typer.Option(None, help="Residual blocks per resnet stage, e.g. 1,1,1,2 (default 1,1,1,1); with --init, blocks the source lacks start as the identity."),
    stem_pool: Optional[str] = typer.Option(None, help="The resnet stem's max-pool over mels,frames (default 2,2; 1,4 keeps twice the mel bands at the same cost)."),
    epochs: int = typer.Option(30, min=1),
    batch_size: int = typer.Option(64, min=2),
    lr: float = typer.Option(2e-3),
    patience: int = typer.Option(6, min=1, help="Stop after this many epochs without a better validation mAP."),
    val_fraction: float = typer.Option(0.1, min=0.0, max=0.9),
    mixup: float = typer.Option(0.5, min=0.0, max=1.0, help="Share of each batch mixed (as sound: mel powers added, within 6 dB) with another example; labels are the union."),
    specaugment: bool = typer.Option(True, "--specaugment/--no-specaugment"),
    eq_db: float = typer.Option(10.0, min=0.0, help="Random spectral-envelope augmentation, dB peak to peak (0: off)."),
    pitch_warp: float = typer.Option(0.0, min=0.0, help="Scale each example's frequencies by up to this many semitones, up or down (0: off)."),
    max_segments: int = typer.Option(4, min=1, help="3-second segments taken per training file."),
    thresholds: str = typer.Option("global", help="global: one threshold for all labels, tuned on validation micro-F1 (default); per-label: each label's own F1 (overfits small validation sets)."),
    init: Optional[Path] = typer.Option(None, help="Start from this checkpoint (fine-tuning; a new label set gets a new head)."),
    name: Optional[str] = typer.Option(None, help="Model name (default: the architecture)."),
    jobs: int = typer.Option(-1, help="Feature extraction processes (-1: all cores)."),
    device: Device = typer.Option(Device.auto),
    seed: int = typer.Option(0),
    cache: Optional[Path] = typer.Option(None, help="Feature cache folder (default OUT/cache); runs sharing one compute each dataset's features once."),
    compile_: bool = typer.Option(False, "--compile", help="Compile the training step with torch.compile (about 1.4x faster on CPU; needs a C++ compiler). A run may resume with or without it."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Train a model on your data; the best weights land in OUT/<name>-<sha8>.safetensors."""
    from .models import ARCHITECTURES
    from .train import THRESHOLD_TUNING, TrainConfig, train as run_training

    _setup_logging(verbose, False, tagger_level=logging.INFO)
    if thresholds not in THRESHOLD_TUNING:
        raise _fail(f"unknown --thresholds {thresholds!r}; choose {' or '.join(THRESHOLD_TUNING)}")
    if arch not in ARCHITECTURES:
        raise _fail(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    stages = _parse_blocks(blocks, arch)
    pool = _parse_stem_pool(stem_pool, arch)
    cfg = TrainConfig(
        data=[str(p) for p in data], out=str(out), val=[str(p) for p in val], test=[str(p) for p in test],
        val_fraction=val_fraction, arch=arch, width=width, blocks=stages, stem_pool=pool, epochs=epochs, batch_size=batch_size, lr=lr,
        patience=patience, mixup=mixup, specaugment=specaugment, eq_db=eq_db, pitch_warp=pitch_warp, max_segments=max_segments,
        init=str(init) if init else None, name=name, jobs=jobs, device=device.value, seed=seed,
        cache_dir=str(cache) if cache else None, thresholds=thresholds, compile=compile_,
    )
    progress, report = _rich_progress()
    try:
        with progress:
            result = run_training(cfg, report)
    except (CompileError, DatasetError, ModelLoadError, RunMismatchError) as exc:
        raise _failed(exc) from None
    err.print(f"best weights: [bold]{result.weights}[/]")
    for name_, metrics in (("validation", result.val), ("test", result.test)):
        if metrics:
            err.print(f"{name_}: mAP {metrics['mAP']:.3f}, micro-F1 {metrics['micro_f1']:.3f}, top-1 {metrics['top1_single']:.3f}")


@app.command("eval")
@_command
def eval_(
    data: Path = typer.Argument(..., help="A labelled dataset (class folders, IRMAS test layout, manifest CSV)."),
    model: Optional[Path] = typer.Option(None, help="Weights file (default: the bundled model)."),
    out: Optional[Path] = typer.Option(None, help="Folder for metrics.json and confusion.png."),
    irmas: bool = typer.Option(False, "--irmas", help="IRMAS protocol: 1.5 s hop, mean over the excerpt, one threshold; maps IRMAS label codes."),
    threshold: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="One threshold for every label."),
    device: Device = typer.Option(Device.auto),
    jobs: int = typer.Option(-1),
    json_out: bool = typer.Option(False, "--json", help="Metrics as JSON on stdout."),
) -> None:
    """Precision, recall, F1 per label, micro/macro F1, mAP, top-1, confusion matrix."""
    from .datasets import IRMAS_CODES, read_dataset
    from .evaluate import evaluate, plot_confusion
    from .weights import resolve_device

    _setup_logging(False, False)
    scorer = _load_scorer(model, device, 256)
    try:
        ds = read_dataset(data, IRMAS_CODES if irmas else None)
    except DatasetError as exc:
        raise _failed(exc) from None
    progress, report = _rich_progress()
    with progress:
        result = evaluate(scorer.checkpoint, ds, resolve_device(device.value), jobs, None,
                          "irmas" if irmas else "track", threshold, report)
    m = result.metrics
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(m, indent=2))
        plot_confusion(result, out / "confusion.png")
    if json_out:
        print(json.dumps(m, indent=2))
        return
    table = Table(title=f"{scorer.checkpoint.version} on {data} ({m['protocol']} protocol, {m['items']} files)")
    for col in ("label", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="left" if col == "label" else "right")
    for label, r in m["per_label"].items():
        table.add_row(label, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", str(r["support"]))
    Console().print(table)
    Console().print(", ".join(f"{k} {m[k]:.3f}" for k in ("mAP", "micro_f1", "macro_f1", "top1_single", "mixtures_micro_f1") if isinstance(m.get(k), float)))
    if m["failed_files"] or m["labels_not_in_model"]:
        err.print(f"{m['failed_files']} files could not be read; labels the model does not know: {', '.join(m['labels_not_in_model']) or 'none'}")


def main() -> None:  # pragma: no cover
    app()
