"""The command line: a thin layer over :mod:`tagger.scan`, :mod:`tagger.train`, :mod:`tagger.evaluate`.

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
import signal
import sqlite3
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import click
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from . import __version__
from .discover import show_path
from .errors import DatasetError, ModelLoadError

if TYPE_CHECKING:
    from .scan import Scanner, ScorerInBackground

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Find the instruments in every track of a music library.")
err = Console(stderr=True)
log = logging.getLogger(__name__)

EXIT_FAILED_FILES, EXIT_USAGE, EXIT_CANNOT_GO_ON = 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt, so both stop the same way:
    workers stopped, a tag write in progress rolled back, one line, exit 143."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _command(fn: Callable) -> Callable:
    """Every command: SIGTERM stops it like Ctrl-C, and nothing ends in a traceback.

    Ctrl-C exits 130 and SIGTERM 143 (commands with more to say catch them first); any
    other unexpected exception is a bug: one line on stderr and exit 3 (the traceback is
    logged at debug level, shown with --verbose).
    """

    @functools.wraps(fn)
    def run(*args, **kwargs):
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.Exit, click.ClickException, click.Abort):
            raise  # typer.Exit (a RuntimeError) and usage errors: already handled
        except KeyboardInterrupt as exc:
            terminated = isinstance(exc, Terminated)
            err.print("terminated" if terminated else "interrupted", highlight=False)
            raise typer.Exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED) from None
        except Exception as exc:
            log.debug("internal error", exc_info=True)
            raise _fail(f"internal error (a bug, please report it): {type(exc).__name__}: {_one_line(exc)}",
                        EXIT_CANNOT_GO_ON) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return run


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


def _failed(exc: ModelLoadError | DatasetError) -> typer.Exit:
    """Exit 2 with the error's one line, prefixed by the file it is about."""
    return _fail(f"{show_path(exc.path)}: {exc}" if exc.path else str(exc))


@app.command()
@_command
def scan(
    paths: list[Path] = typer.Argument(..., help="Music files or folders (searched recursively)."),
    write_tags: bool = typer.Option(False, "--write-tags", help="Write instruments into the files' tags (default: dry run)."),
    csv_path: Path = typer.Option(Path("instruments.csv"), "--csv", help="Where to write the CSV report."),
    threshold: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="One threshold for every label (default: per-label thresholds of the model)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, help="Keep at most K instruments per track."),
    device: Device = typer.Option(Device.auto, help="auto: CUDA when present, else CPU."),
    batch_size: int = typer.Option(256, min=1, help="Segments per model call."),
    jobs: int = typer.Option(0, min=0, help="Decoding processes (0: one per core)."),
    model: Optional[Path] = typer.Option(None, help="Weights file (default: the bundled model)."),
    force: bool = typer.Option(False, help="Overwrite instruments tags that a user wrote, and rescan unchanged files."),
    backend: Backend = typer.Option(Backend.local, help="Where decoding runs: local processes, or a dask/ray cluster."),
    hop: Optional[float] = typer.Option(None, min=0.1, help="Seconds between segment starts (default: the segment length, 3 s)."),
    file_timeout: float = typer.Option(120.0, "--file-timeout", min=0.0, metavar="SECONDS", help="Give up on a file whose decoding takes longer (each 10-minute span of a long file); 0: no limit."),
    file_memory: int = typer.Option(2048, "--file-memory", min=0, metavar="MB", help="Memory cap of each decoding process (with --jobs 2 or more); a file that needs more fails alone; 0: no cap."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip files unchanged since a run with the same model and settings (cache next to the CSV)."),
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
    from .weights import bundled_model_path, read_header, resolve_device

    _setup_logging(verbose, quiet)
    _check_paths(paths)
    _check_report_path(csv_path)
    try:
        if device == Device.cuda:
            resolve_device(device.value)  # asked for CUDA: say now if there is none
        model_path = model or bundled_model_path()
        header = read_header(model_path)  # checked before anything is written
    except ModelLoadError as exc:
        raise _failed(exc) from None
    cache_path = cache_path_for(csv_path)
    tally = _Tally()
    files: list[Path] = []
    try:
        # Nothing touches the report or its cache before the lock is ours (a second run
        # on the same report stops here, before loading torch), and the old report is
        # replaced only once the cache and the model are known good.
        with report_lock(csv_path), contextlib.ExitStack() as stack:
            # decoding starts while torch and the network load
            scorer = ScorerInBackground(model_path, device.value, batch_size, header=header)
            options = ScanOptions(
                write_tags=write_tags, force=force, threshold=threshold, top_k=top_k, hop_seconds=hop, jobs=jobs,
                backend=backend.value, file_timeout=file_timeout or None, file_memory_mb=file_memory or None,
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
            _scan_into_report(scanner, scorer, files, csv_path, tally, json_lines, quiet)
    except ReportLockedError as exc:
        raise _fail(f"{show_path(csv_path)}: {exc}") from None
    except (ModelLoadError, BackendError) as exc:
        raise _failed(exc) from None
    except ReportError as exc:
        kept = f" (it holds the first {tally.rows} rows, each whole; run the same command again to finish)" if tally.rows else ""
        raise _fail(f"cannot write the report {show_path(csv_path)}: {exc}{kept}", EXIT_CANNOT_GO_ON) from None
    except sqlite3.Error as exc:
        done = "the report is complete, only the cache was not saved; " if files and tally.rows == len(files) else ""
        raise _fail(f"cannot use the cache {show_path(cache_path)}: {_one_line(exc)} ({done}--no-resume runs without it)",
                    EXIT_CANNOT_GO_ON) from None
    except KeyboardInterrupt as exc:  # the workers are stopped; a tag write in progress was rolled back
        stopped = "terminated" if isinstance(exc, Terminated) else "interrupted"
        if tally.rows:
            err.print(f"{stopped} after {tally.rows} of {len(files)} files; their rows are in {show_path(csv_path)}; "
                      "run the same command again to finish", soft_wrap=True, highlight=False)
        else:  # the report is opened with the first row
            err.print(f"{stopped} before the first file was done; {show_path(csv_path)} is unchanged", soft_wrap=True, highlight=False)
        raise typer.Exit(EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED) from None
    if not quiet and not json_lines:
        _summary(tally.counts, tally.found, csv_path, write_tags)
    raise typer.Exit(EXIT_FAILED_FILES if tally.counts["error"] else 0)


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


def _check_report_path(csv_path: Path) -> None:
    """Exit 2 (bad usage) when --csv names a folder, or a file in a folder that does not exist."""
    if csv_path.is_dir():
        raise _fail(f"--csv {show_path(csv_path)} is a folder; give a file name")
    if not csv_path.parent.is_dir():
        raise _fail(f"--csv {show_path(csv_path)}: no such folder {show_path(csv_path.parent)}")


def _scan_into_report(scanner: Scanner, scorer: ScorerInBackground, files: list[Path], csv_path: Path, tally: _Tally,
                      json_lines: bool, quiet: bool) -> None:
    """Scan ``files``, a row per file into the report (and stdout with ``--json``), progress on stderr.

    The report is opened (the previous one truncated) only once the model has loaded.
    However this ends, the decoder workers are stopped before it returns or raises.
    """
    from .report import CsvReport, as_json

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=err, disable=quiet, transient=False,
    )
    report: CsvReport | None = None

    def open_report() -> CsvReport:
        scorer.result()  # the model loads while the first files decode: raises ModelLoadError
        return CsvReport.open(csv_path, scorer.labels)

    results = scanner.scan_files(files)
    try:
        with progress:
            task = progress.add_task("scanning", total=len(files), rate="")
            for result in results:
                report = report or open_report()
                report.write(result)
                tally.counts[result.status] += 1
                tally.found.update(label for label, _ in result.instruments)
                tally.audio_seconds += result.duration_s
                if result.status == "error":
                    # one line whatever the name: control characters in the path are escaped
                    progress.console.print(f"error: {show_path(result.path)}: {result.error}", style="red", markup=False, highlight=False, soft_wrap=True)
                if json_lines:
                    sys.stdout.write(as_json(result) + "\n")
                    sys.stdout.flush()
                elapsed = max(progress.tasks[0].elapsed or 1e-9, 1e-9)
                progress.update(task, advance=1, rate=f"{tally.rows / elapsed:.1f} files/s, {tally.audio_seconds / 60 / elapsed:.1f} audio-min/s")
            report = report or open_report()  # no file found: a report with its header only
    finally:
        results.close()  # stops the workers (a tag write in progress was rolled back)
        if report is not None:
            report.close()


def _summary(counts: Counter, found: Counter, csv_path: Path, write_tags: bool) -> None:
    table = Table(title="tagger scan", show_header=False)
    table.add_row("files ok", str(counts["ok"]))
    table.add_row("skipped", str(counts["skipped"]))
    table.add_row("failed", f"[red]{counts['error']}[/]" if counts["error"] else "0")
    table.add_row("top instruments", ", ".join(f"{label} ({n})" for label, n in found.most_common(5)) or "-")
    table.add_row("report", str(csv_path))
    table.add_row("tags", "written" if write_tags else "dry run (use --write-tags to write)")
    err.print(table)


@app.command()
@_command
def info(
    model: Optional[Path] = typer.Option(None, help="Weights file (default: the bundled model)."),
    json_out: bool = typer.Option(False, "--json", help="The model card as JSON on stdout."),
) -> None:
    """Show the model card: labels, thresholds, training data, held-out figures, speed."""
    from .weights import bundled_model_path, read_header

    try:
        path = model or bundled_model_path()
        ckpt = read_header(path)
    except ModelLoadError as exc:
        raise _failed(exc) from None
    card = {
        "model": ckpt.version, "file": str(path), "tagger": __version__, "arch": ckpt.config.arch,
        "labels": list(ckpt.labels), "thresholds": ckpt.thresholds, "frontend": ckpt.frontend.to_dict(),
        "aggregation": ckpt.aggregation, "card": ckpt.card,
    }
    if json_out:
        print(json.dumps(card, indent=2))
        return
    out = Console()
    out.print(f"[bold]{ckpt.version}[/]  ({path})")
    out.print(f"architecture: {ckpt.config.arch}; frontend: {ckpt.frontend.n_mels} mel bands, {ckpt.frontend.sample_rate} Hz, "
              f"{ckpt.frontend.segment_seconds:g} s segments; aggregation: {ckpt.aggregation}")
    c = ckpt.card
    for key in ("description", "train_data", "train_files", "validation_data", "validation_files", "corpus", "command", "speed", "trained_at"):
        if key in c:
            out.print(f"{key.replace('_', ' ')}: {c[key]}")
    table = Table(title="labels")
    table.add_column("label")
    table.add_column("threshold", justify="right")
    sets = [k for k in ("validation", "test") if isinstance(c.get(k), dict)]
    for k in sets:
        table.add_column(f"{k} F1", justify="right")
    for label in ckpt.labels:
        cells = [f"{c[k].get('per_label', {}).get(label, {}).get('f1', float('nan')):.3f}" for k in sets]
        table.add_row(label, f"{ckpt.thresholds[label]:.3f}", *cells)
    out.print(table)
    for k in sets:
        m = c[k]
        out.print(f"{k}: " + ", ".join(f"{name} {m[name]:.3f}" for name in ("mAP", "micro_f1", "macro_f1", "top1_single", "mixtures_micro_f1") if isinstance(m.get(name), float)) + f" ({m.get('items')} files{'; ' + m['data'] if 'data' in m else ''})")
    for line in c.get("weaknesses", []):
        out.print(f"weakness: {line}")


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
    epochs: int = typer.Option(30, min=1),
    batch_size: int = typer.Option(64, min=2),
    lr: float = typer.Option(2e-3),
    patience: int = typer.Option(6, min=1, help="Stop after this many epochs without a better validation mAP."),
    val_fraction: float = typer.Option(0.1, min=0.0, max=0.9),
    mixup: float = typer.Option(0.5, min=0.0, max=1.0, help="Share of each batch mixed (as sound: mel powers added, within 6 dB) with another example; labels are the union."),
    specaugment: bool = typer.Option(True, "--specaugment/--no-specaugment"),
    eq_db: float = typer.Option(10.0, min=0.0, help="Random spectral-envelope augmentation, dB peak to peak (0: off)."),
    max_segments: int = typer.Option(4, min=1, help="3-second segments taken per training file."),
    thresholds: str = typer.Option("global", help="global: one threshold for all labels, tuned on validation micro-F1 (default); per-label: each label's own F1 (overfits small validation sets)."),
    init: Optional[Path] = typer.Option(None, help="Start from this checkpoint (fine-tuning; a new label set gets a new head)."),
    name: Optional[str] = typer.Option(None, help="Model name (default: the architecture)."),
    jobs: int = typer.Option(-1, help="Feature extraction processes (-1: all cores)."),
    device: Device = typer.Option(Device.auto),
    seed: int = typer.Option(0),
    cache: Optional[Path] = typer.Option(None, help="Feature cache folder (default OUT/cache); runs sharing one compute each dataset's features once."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Train a model on your data; the best weights land in OUT/<name>-<sha8>.safetensors."""
    from .models import ARCHITECTURES
    from .train import TrainConfig, train as run_training

    _setup_logging(verbose, False, tagger_level=logging.INFO)
    if thresholds not in ("global", "per-label"):
        raise _fail(f"unknown --thresholds {thresholds!r}; choose global or per-label")
    if arch not in ARCHITECTURES:
        raise _fail(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    cfg = TrainConfig(
        data=[str(p) for p in data], out=str(out), val=[str(p) for p in val], test=[str(p) for p in test],
        val_fraction=val_fraction, arch=arch, width=width, epochs=epochs, batch_size=batch_size, lr=lr,
        patience=patience, mixup=mixup, specaugment=specaugment, eq_db=eq_db, max_segments=max_segments,
        init=str(init) if init else None, name=name, jobs=jobs, device=device.value, seed=seed,
        cache_dir=str(cache) if cache else None, thresholds=thresholds,
    )
    progress, report = _rich_progress()
    try:
        with progress:
            result = run_training(cfg, report)
    except (DatasetError, ModelLoadError) as exc:
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
